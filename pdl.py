"""
Power-Law Decay Loss (PDL), arXiv:2505.16900, on the shared small GPT.

The idea. Standard cross-entropy lets frequent tokens ("the", ",", "\\n") dominate the gradient of
text generation. PDL re-weights each target token's cross-entropy by a power-law decay of how often the
token occurs in the training targets, so rare, informative tokens count more:

    w(t) = (count(t) + eps)^(-alpha),      L = sum_i w(y_i) l_i / sum_i w(y_i),   l_i = -log p(y_i | x_i)

alpha = 0 is standard cross-entropy; the authors' defaults are alpha = 1 and eps = 1e-7 and they
suggest alpha in [0.25, 1.5]. Their claim: generation becomes more informative and diverse. The paper
has no experiments (its released trainer overrides a method the Hugging Face Trainer never calls, so
the released code never applied the weights): everything measured here is ours. The weights are the
inverse-token-frequency (ITF) loss of Nakamura, Sudoh, Yoshino and Nakamura (arXiv:1811.08100, 2018), raised to
a power and normalised per batch; the tilted optimum below is the logit-adjustment result of Menon et al.
(ICLR 2021, arXiv:2007.07314) read the other way round.

What the loss optimises (our derivation, checked by a test). Minimising the expected PDL numerator
sum_y P(y|x) w(y) (-log q(y|x)) over q gives  q*(y | x) = P(y | x) w(y) / sum_y' P(y' | x) w(y'):  the
data distribution tilted towards rare tokens, with no mass on tokens the training targets never contain.
So PDL is a different target, not a better estimate of the same one: it must pay in ordinary perplexity.

The fair comparison (ours). Any flatter sampler buys diversity, so the question is whether PDL buys more
of it than temperature (or top-p) sampling of the plain model does at the same unweighted perplexity of
the distribution sampled from. We finetune the baseline with each alpha for the same steps and seeds,
sample the alpha = 0 model at several temperatures and top-p values, and measure, for every sampler:
the perplexity of its distribution on validation text (top-p: infinite, so we give the share of true
tokens it excludes), the diversity of its samples (unigram entropy, distinct-1/2, rare-token share), and
the paper's motivation directly: the probability it gives to the true next token where that token is
rare (bottom half of the training frequency mass). Also tracked: the mass on tokens never seen in
training during finetuning (the optimum puts none there). Interpretation: counts over the supervised
targets of the training split (every training token but the first); sum_i w(y_i) normalised per batch.

    python pdl.py --num_threads=1                                   # 3 seeds, alpha 0 and 1, 1 thread
    python pdl.py --num_threads=1 --alphas=0,0.5,1 --seeds=3        # README's table (21 min)
    python pdl.py --quick=true                                      # 1 min, from a 40-step baseline: see QUICK_NOTE
    python pdl.py --alphas=0,0.25,0.5,1,1.5 --seeds=5 --steps=1000  # on a GPU (used when present)
    python train.py --variant=pdl --pdl_alpha=0.5                   # train one model with PDL
"""
import dataclasses
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import lab
import train

# -----------------------------------------------------------------------------
# The loss

def target_counts(train_tokens, vocab_size):
    """How often each token id is a supervised target in the training split (every token but the first).
    Every target the loss ever sees in training therefore has count >= 1: an unseen token would get
    weight (0 + eps)^(-alpha) = 1e7 at the defaults and swamp the batch."""
    return torch.from_numpy(np.bincount(np.asarray(train_tokens[1:]), minlength=vocab_size).astype(np.float64))

def pdl_weights(counts, alpha, eps=1e-7):
    # w(t) = (freq(t) + eps)^(-alpha)
    return (counts.double() + eps) ** (-alpha)

class PowerLawDecayLoss(nn.Module):
    """Weighted cross-entropy sum_i w(y_i) l_i / sum_i w(y_i) over targets that are not -1."""

    def __init__(self, weights):
        super().__init__()
        self.register_buffer("weights", weights.float())  # (V,); only their ratios matter

    def forward(self, logits, targets):
        logits, targets = logits.reshape(-1, logits.size(-1)), targets.reshape(-1)
        # l_i = -log softmax(logits_i)[y_i]  (0 where the target is ignored; no copy of the logits)
        token_loss = F.cross_entropy(train.at_least_float32(logits), targets, ignore_index=-1, reduction="none")
        w = torch.where(targets != -1, self.weights.to(token_loss.dtype)[targets.clamp(min=0)], 0.0)
        # L = sum_i w(y_i) l_i / sum_i w(y_i)
        return (w * token_loss).sum() / w.sum()

@dataclass
class Config(train.TrainConfig):
    pdl_alpha: float = 1.0          # power of the decay: 0 = plain cross-entropy; authors' default 1
    pdl_eps: float = 1e-7           # added to counts before the power (authors' default)

    def validate(self):
        if not (self.pdl_alpha >= 0 and math.isfinite(self.pdl_alpha)):
            raise lab.ConfigError(f"--pdl_alpha must be >= 0, got {self.pdl_alpha}")
        if not self.pdl_eps > 0:
            raise lab.ConfigError(f"--pdl_eps must be > 0, got {self.pdl_eps}")

def build_model(cfg, train_data):
    """The shared GPT with its loss replaced by PDL (the `loss_fn` seam)."""
    model = train.build_baseline(cfg)
    counts = target_counts(train_data, model.config.vocab_size)
    model.loss_fn = PowerLawDecayLoss(pdl_weights(counts, cfg.pdl_alpha, cfg.pdl_eps))
    return model

# -----------------------------------------------------------------------------
# Samplers, and what they give

def nucleus_drop(logits, top_p):
    """True outside the nucleus: the smallest set of most likely tokens whose probability reaches top_p."""
    sorted_logits, order = logits.float().sort(-1, descending=True)
    p = F.softmax(sorted_logits, -1)
    drop_sorted = p.cumsum(-1) - p >= top_p  # the mass before this token already reaches top_p
    return torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)

class TopP(nn.Module):
    """Top-p sampling as a wrapper of the output head, so that GPT.generate samples from the nucleus."""
    def __init__(self, head, top_p):
        super().__init__()
        self.head, self.top_p = head, top_p

    def forward(self, h):
        logits = self.head(h)
        return logits.masked_fill(nucleus_drop(logits, self.top_p), -float("inf"))

@torch.no_grad()
def score(model, val_data, rare, unseen, settings, block_size, n_batches=10):
    """For each (temperature, top_p), on fixed validation windows: the cross-entropy of the sampled distribution
    (inf once top-p excludes a true token), the share of true tokens excluded, the mean probability of the true
    token where it is rare and where it is not, the cross-entropy on rare tokens only, and the mass on tokens never
    seen in training."""
    was_training, device, gen = model.training, next(model.parameters()).device, torch.Generator().manual_seed(0)
    model.eval()
    sums = {s: np.zeros(7) for s in settings}
    for _ in range(n_batches):
        offsets = torch.randint(len(val_data) - block_size - 1, (12,), generator=gen)
        x, y = train.get_batch(val_data, offsets, block_size, device)
        logits, y = model(x)[0].float().flatten(0, 1), y.flatten()
        is_rare = rare.to(device)[y]
        for temperature, top_p in settings:
            # q(y | x) = softmax(logits / T), renormalised inside the nucleus when top_p < 1
            logq = F.log_softmax(logits / temperature, -1)
            if top_p < 1:
                logq = F.log_softmax(logq.masked_fill(nucleus_drop(logits, top_p), -float("inf")), -1)
            true = logq.gather(1, y[:, None])[:, 0]
            q_true = true.exp()
            sums[(temperature, top_p)] += [-true.mean().item(), (q_true == 0).float().mean().item(),
                                           q_true[is_rare].sum().item(), is_rare.sum().item(),
                                           q_true[~is_rare].sum().item(), -true[is_rare].sum().item(),
                                           (logq.exp() @ unseen.to(device, logq.dtype)).mean().item()]
    model.train(was_training)
    return {s: {"cross_entropy": v[0] / n_batches, "excluded": v[1] / n_batches, "rare_prob": v[2] / max(v[3], 1),
                "common_prob": v[4] / max(len(y) * n_batches - v[3], 1), "rare_cross_entropy": v[5] / max(v[3], 1),
                "unseen_mass": v[6] / n_batches}
            for s, v in sums.items()}

def rare_token_set(counts):
    """Token ids in the bottom 50% of the training frequency mass (the rarest tokens first)."""
    order = torch.argsort(counts, stable=True)
    order = order[counts[order] > 0]
    cumulative = torch.cumsum(counts[order], 0) / counts.sum()
    return set(order[cumulative <= 0.5].tolist())

def diversity(token_lists, rare, seen):
    """distinct-1, distinct-2 (unique n-grams over all n-grams), unigram entropy (nats), share of rare
    tokens, and share of tokens never seen in training."""
    tokens = [t for seq in token_lists for t in seq]
    bigrams = [b for seq in token_lists for b in zip(seq, seq[1:])]
    _, freq = np.unique(np.array(tokens), return_counts=True)
    p = freq / freq.sum()
    return {"distinct_1": len(set(tokens)) / len(tokens), "distinct_2": len(set(bigrams)) / max(1, len(bigrams)),
            "sample_entropy": float(-(p * np.log(p)).sum()),
            "rare_share": sum(t in rare for t in tokens) / len(tokens),
            "unseen_share": sum(t not in seen for t in tokens) / len(tokens)}

@torch.no_grad()
def sample_from_val(model, val_data, n, prompt_len, new_tokens, seed, temperature=1.0, top_p=1.0):
    """n continuations of random validation prompts, at this temperature and top-p."""
    offsets = torch.randint(len(val_data) - prompt_len, (n,), generator=torch.Generator().manual_seed(seed))
    prompts = torch.stack([torch.from_numpy(val_data[i:i + prompt_len].astype(np.int64)) for i in offsets.tolist()])
    head, device = model.lm_head, next(model.parameters()).device
    model.eval().lm_head = TopP(head, top_p) if top_p < 1 else head
    try:
        gen = torch.Generator(device=device).manual_seed(seed)
        out = model.generate(prompts.to(device), new_tokens, temperature=temperature, generator=gen)
    finally:
        model.lm_head = head
    return out[:, prompt_len:].tolist()

# -----------------------------------------------------------------------------
# The experiment: PDL against the plain model sampled flatter

@dataclass
class Experiment:
    alphas: str = "0,1"                          # alphas to finetune with (0, plain cross-entropy, is always run)
    temperatures: str = "0.85,1,1.2,1.5,2,3,4"   # the alpha = 0 model sampled at these temperatures
    top_ps: str = "0.9"                          # and with these top-p values (at temperature 1)
    seeds: int = 3                               # seeds per alpha: 0 .. seeds - 1 (a verdict needs 3)
    steps: int = 100                             # finetuning steps per run (the same for every alpha)
    learning_rate: float = 1e-3                  # finetuning peak learning rate (10 warmup steps, cosine to a tenth)
    eval_every: int = 20                         # mass on never-seen tokens tracked every this many steps
    eval_batches: int = 10                       # validation batches of 12 x 64 tokens for every score
    n_samples: int = 48                          # sampled continuations per sampler
    sample_len: int = 48                         # tokens per continuation (after a 16-token validation prompt)
    num_threads: int = 0                         # CPU threads (0 = torch's default); README's numbers: 1
    baseline: str = "out/baseline/ckpt.pt"       # checkpoint to finetune (trained first if missing)
    out_dir: str = "out/pdl"
    quick: bool = False                          # a one-minute version of the default run (see QUICK); flags given win
    # --quick=true starts from QUICK, and from a baseline of its own: QUICK_BASELINE, not train.py's 3-minute default.
    # Its PDL model is far from trained (perplexity about 20,000): temperature 8 keeps it inside the temperatures' range
    QUICK: ClassVar[dict] = dict(temperatures="0.85,1,2,4,8", seeds=1, steps=25, eval_every=10, eval_batches=2,
                                 n_samples=16, sample_len=24, baseline="out/pdl_quick/baseline/ckpt.pt",
                                 out_dir="out/pdl_quick")
    QUICK_BASELINE: ClassVar[dict] = dict(max_iters=40, warmup_iters=4, batch_size=4, eval_iters=5, sample_tokens=0,
                                          learning_rate=3e-3, min_lr=3e-4)
    QUICK_NOTE: ClassVar[str] = ("quick run: 1 seed x 25 steps per alpha from a 40-step baseline (perplexity 900, the "
                                 "full run's 240); the full run: 3 seeds x 100 steps, 48 samples x 48 tokens. Here "
                                 "sample entropy saturates at log(16 x 24) = 5.9 nats, and one seed has no spread.")

def finetune(exp, baseline, alpha, seed, unseen):
    """Finetune the baseline with PDL at alpha; returns (model, [(step, mass on never-seen tokens)])."""
    cfg = Config(**{**baseline["config"], "pdl_alpha": alpha, "max_iters": exp.steps, "warmup_iters": 10,
                    "learning_rate": exp.learning_rate, "min_lr": exp.learning_rate / 10, "eval_interval": exp.steps,
                    "eval_iters": exp.eval_batches, "log_interval": max(1, exp.steps // 5), "ckpt_interval": exp.steps,
                    "seed": seed, "init_from": str(baseline["path"]), "resume": False, "sample_tokens": 0,
                    "num_threads": exp.num_threads, "variant": "pdl",
                    "out_dir": str(Path(exp.out_dir) / "runs" / f"alpha{alpha:g}_seed{seed}")})
    built, track = [], []

    def on_step(it, info):  # the optimum puts no mass on never-seen tokens: watch it leave
        if it % exp.eval_every == 0:
            s = score(built[0], baseline["val_data"], torch.zeros_like(unseen), unseen, [(1.0, 1.0)], cfg.block_size, 2)
            track.append((it, s[(1.0, 1.0)]["unseen_mass"]))
    print(f"\n=== PDL alpha={alpha:g} seed={seed}: finetune {exp.steps} steps", flush=True)
    model = train.train(cfg, lambda c, data: built.append(build_model(c, data)) or built[0], on_step)["model"]
    (Path(cfg.out_dir) / "ckpt.pt").unlink(missing_ok=True)  # 80 MB each; summary.json stays
    return model, track

def run_experiment(exp):
    alphas = sorted({0.0, *(float(a) for a in exp.alphas.split(","))})
    temperatures, top_ps = [float(t) for t in exp.temperatures.split(",")], [float(p) for p in exp.top_ps.split(",")]
    baseline = lab.load_baseline(exp.baseline, train.TrainConfig(**exp.QUICK_BASELINE) if exp.quick else None)
    val_data, block = baseline["val_data"], baseline["config"]["block_size"]
    counts = target_counts(baseline["train_data"], 50304)
    rare, seen = rare_token_set(counts), set(torch.nonzero(counts).flatten().tolist())
    rare_mask, unseen = torch.zeros(50304, dtype=torch.bool), counts == 0
    rare_mask[list(rare)] = True
    rows, tracks = [], []
    for seed in range(exp.seeds):
        for alpha in alphas:
            model, track = finetune(exp, baseline, alpha, seed, unseen)
            tracks.append({"alpha": alpha, "seed": seed, "unseen_mass": track})
            settings = [(t, 1.0) for t in temperatures] + [(1.0, p) for p in top_ps] if alpha == 0 else [(1.0, 1.0)]
            for (t, p), s in score(model, val_data, rare_mask, unseen, settings, block, exp.eval_batches).items():
                samples = sample_from_val(model, val_data, exp.n_samples, 16, exp.sample_len, seed, t, p)
                rows.append({"alpha": alpha, "temperature": t, "top_p": p, "seed": seed, **s,
                             **diversity(samples, rare, seen), "sample": train.gpt2_encoding().decode(samples[0])})
                print(f"  alpha {alpha:g} T {t:g} top-p {p:g}: perplexity {math.exp(s['cross_entropy']):.0f}, "
                      f"sample entropy {rows[-1]['sample_entropy']:.2f}, p(true rare token) {s['rare_prob']:.4f}",
                      flush=True)
    stride = len(val_data) // exp.n_samples  # the same statistics of validation text, in windows of the sample length
    windows = [val_data[i:i + exp.sample_len].astype(np.int64).tolist()
               for i in range(0, stride * exp.n_samples, stride)]
    return rows, tracks, diversity(windows, rare, seen)

def family(r):
    return "top-p" if r["top_p"] < 1 else "PDL" if r["alpha"] > 0 else "temperature"

def at_equal_perplexity(rows, seed, cross_entropy, key):
    """The alpha = 0 model's `key` at temperature >= 1, interpolated at this cross-entropy (None outside the range)."""
    curve = sorted((r["cross_entropy"], r[key]) for r in rows if r["seed"] == seed and r["alpha"] == 0
                   and r["top_p"] == 1 and r["temperature"] >= 1)
    x, y = zip(*curve)
    return float(np.interp(cross_entropy, x, y)) if x[0] <= cross_entropy <= x[-1] else None

def verdicts(rows, exp):
    """Control: temperature must raise sample entropy (lab.py's rule, seed-paired). Then, for each alpha > 0: does PDL
    give more diversity, and more probability to true rare tokens, than temperature does at the same perplexity?
    Both sides of each difference come from the same seed's baseline, batches and validation windows: paired."""
    temps = sorted({r["temperature"] for r in rows if r["alpha"] == 0 and r["top_p"] == 1})
    low = temps[0]
    high = min([t for t in temps if t > max(1.0, low)] or [low])  # a temperature above both 1 and the lowest
    plain = lambda t: lab.per_seed(rows, "sample_entropy", alpha=0.0, top_p=1.0, temperature=t)  # noqa: E731
    gate = lab.control(f"sample entropy at temperature {high:g} minus at {low:g}", lab.condition(
        lab.difference(plain(high), plain(low), paired=True), "above", 0.0), exp.seeds, exp.quick)
    out, command = [], lab.command("pdl", exp)
    for alpha in sorted({r["alpha"] for r in rows if r["alpha"] > 0}):
        pdl = sorted((r for r in rows if r["alpha"] == alpha), key=lambda r: r["seed"])
        ppl = float(np.mean([math.exp(r["cross_entropy"]) for r in pdl]))
        for key, claim in (("sample_entropy", "more diverse samples"),
                           ("rare_prob", "more probability on true rare next tokens")):
            matched = [at_equal_perplexity(rows, r["seed"], r["cross_entropy"], key) for r in pdl]
            if any(t is None for t in matched):  # no temperature reaches PDL's perplexity: nothing to compare
                test = lab.condition(lab.Difference(math.nan, math.nan, math.nan, len(pdl), "paired"), "above", 0.0,
                                     f"PDL's perplexity {ppl:.0f} is outside the temperatures' range")
            else:
                test = lab.condition(lab.difference([r[key] for r in pdl], matched, paired=True), "above", 0.0,
                                     f"at perplexity {ppl:.0f}: PDL {lab.estimate([r[key] for r in pdl])} minus "
                                     f"temperature {lab.estimate(matched)}")
            out.append(lab.verdict(f"PDL alpha = {alpha:g}: {claim} than temperature at equal perplexity",
                                   "more diverse, informative (no experiments)", test, gate, exp.seeds, command,
                                   exp.quick))
    return out, gate

def report(rows, tracks, reference, exp):
    """Mean (sample sd) over seeds per sampler: a markdown table, results.json with the verdicts, and a PNG."""
    out, (verdict_list, gate) = Path(exp.out_dir), verdicts(rows, exp)
    samplers = sorted({(r["alpha"], r["temperature"], r["top_p"]) for r in rows}, key=lambda s: (s[0] > 0, s[2] < 1, s))
    keys = ["cross_entropy", "excluded", "rare_prob", "common_prob", "unseen_mass", "rare_cross_entropy",
            "sample_entropy", "distinct_2", "rare_share", "unseen_share"]
    mean = {s: {k: lab.estimate([r[k] for r in rows if (r["alpha"], r["temperature"], r["top_p"]) == s])
                for k in keys} for s in samplers}
    lines = [f"Finetuned {exp.steps} steps per alpha, seeds {exp.seeds}, {exp.num_threads or torch.get_num_threads()} "
             "thread(s); mean (sample sd over seeds). Validation: perplexity of the sampled distribution, "
             "p(true token) where it is rare / common, mass on never-seen tokens, cross-entropy on rare tokens. "
             "Samples: unigram entropy, distinct-2, rare and never-seen shares.", "",
             "| sampler | val perplexity | p(true), rare | p(true), common | never-seen mass | cross-entropy, rare | "
             "sample entropy | distinct-2 | rare share | never-seen share |", "|---" * 10 + "|"]
    for s in samplers:
        m = mean[s]
        name = f"PDL alpha {s[0]:g}" if s[0] > 0 else f"alpha 0, top-p {s[2]:g}" if s[2] < 1 else f"alpha 0, T {s[1]:g}"
        ppl = (f"{math.exp(m['cross_entropy'].mean):.0f}" if m["excluded"].mean == 0
               else f"inf ({m['excluded'].mean:.0%} excluded)")
        lines.append(f"| {name} | {ppl} | " + " | ".join(f"{m[k].mean:.4f} ({m[k].sd:.4f})" for k in keys[2:5]) +
                     " | " + " | ".join(f"{m[k].mean:.3f} ({m[k].sd:.3f})" for k in keys[5:]) + " |")
    lines.append("| validation text | - | - | - | - | - | " + " | ".join(
        f"{reference[k]:.3f}" for k in ("sample_entropy", "distinct_2", "rare_share", "unseen_share")) + " |")
    lines += ["", "Mass on never-seen tokens during finetuning (mean over seeds): " + "; ".join(
        f"alpha {a:g}: " + ", ".join(f"{it} {np.mean([t['unseen_mass'][i][1] for t in tracks if t['alpha'] == a]):.3f}"
                                     for i, (it, _) in enumerate(tracks[0]["unseen_mass"]))
        for a in sorted({t["alpha"] for t in tracks}))]
    lines += ["", "Verdicts:"] + [lab.verdict_line(v) for v in verdict_list]
    lines += [f"- control: {gate['text']}"]
    table = "\n".join(lines)
    lab.write_results(out, table, {"config": dataclasses.asdict(exp), "verdict": verdict_list, "runs": rows,
                                   "unseen_mass_during_training": tracks, "validation_text": reference})
    lab.record("pdl", exp, verdict_list, {"samplers": {f"alpha {s[0]:g}, T {s[1]:g}, top-p {s[2]:g}": {
        k: dataclasses.asdict(e) for k, e in m.items()} for s, m in mean.items()}, "control": gate})
    plot(rows, tracks, reference, out / "pdl.png")
    print("\n" + table + f"\n\nwrote {out / 'results.json'}, {out / 'results.md'}, {out / 'pdl.png'}")

def plot(rows, tracks, reference, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), dpi=100)
    for fam, style in (("temperature", "o-"), ("PDL", "s-")):
        plain = lambda r: r["alpha"] == 0 and r["temperature"] == 1 and r["top_p"] == 1  # noqa: E731 (in both)
        points = sorted({(r["alpha"], r["temperature"]) for r in rows if family(r) == fam or plain(r)})
        labels = [f"T {t:g}" if fam == "temperature" else f"alpha {a:g}" for a, t in points]
        for ax, key in zip(axes[:2], ("sample_entropy", "rare_prob")):
            xs, ys, errs = [], [], []
            for a, t in points:
                sel = [r for r in rows if r["alpha"] == a and r["temperature"] == t and r["top_p"] == 1]
                xs.append(np.exp(np.mean([r["cross_entropy"] for r in sel])))
                e = lab.estimate([r[key] for r in sel])
                ys.append(e.mean)
                errs.append(e.sd if e.n > 1 else 0.0)
            ax.errorbar(xs, ys, yerr=errs, fmt=style, capsize=3,
                        label=f"{fam}: " + ", ".join(labels))
    axes[0].axhline(reference["sample_entropy"], color="k", ls=":", lw=1, label="validation text")
    axes[0].set(ylabel="unigram entropy of samples (nats)", title="diversity against perplexity")
    axes[1].set(ylabel="mean p(true next token), rare tokens", title="the paper's motivation, on validation text")
    for ax in axes[:2]:
        ax.set(xscale="log", xlabel="perplexity of the sampled distribution on validation text")
    for a in sorted({t["alpha"] for t in tracks}):
        sel = [t["unseen_mass"] for t in tracks if t["alpha"] == a]
        axes[2].plot([it for it, _ in sel[0]], np.mean([[m for _, m in s] for s in sel], 0), "o-", label=f"alpha {a:g}")
    axes[2].set(xlabel="finetuning step", ylabel="probability mass on never-seen tokens", yscale="log",
                title="mass the tilted optimum does not have")
    for ax in axes:
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    lab.save_figure(fig, path)

def bench():
    """pdl_step_ratio: one PDL training step over one plain cross-entropy step, default GPT, GPT-2 vocabulary."""
    import bench as bench_module
    cfg = train.TrainConfig()
    counts = torch.randint(1, 1000, (50304,)).double()
    torch.manual_seed(0)
    plain = train.build_baseline(cfg)
    torch.manual_seed(0)
    weighted = train.build_baseline(cfg)
    weighted.loss_fn = PowerLawDecayLoss(pdl_weights(counts, 1.0))
    t_plain = bench_module.train_step_seconds(plain, 50257, cfg.batch_size, cfg.block_size)
    t_pdl = bench_module.train_step_seconds(weighted, 50257, cfg.batch_size, cfg.block_size)
    return {"pdl_step_ms": 1e3 * t_pdl, "ce_step_ms": 1e3 * t_plain, "pdl_step_ratio": t_pdl / t_plain}

def run(argv):
    try:
        exp = lab.parse_args(argv, Experiment, __doc__)
        alphas, temps, top_ps = ([float(v) for v in s.split(",")] for s in (exp.alphas, exp.temperatures, exp.top_ps))
        counts = (exp.seeds, exp.steps, exp.eval_every, exp.eval_batches, exp.n_samples, exp.sample_len)
        if not (all(0 <= a < math.inf for a in alphas) and all(0 < t < math.inf for t in temps) and 1.0 in temps
                and all(0 < p < 1 for p in top_ps) and min(counts) >= 1):
            raise ValueError
    except lab.ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ValueError:
        print("error: --alphas takes comma-separated numbers >= 0 (e.g. 0,0.5,1); --temperatures numbers > 0 including "
              "1; --top_ps numbers in (0, 1); --seeds, --steps and the other counts >= 1", file=sys.stderr)
        return 2
    if exp.num_threads:
        torch.set_num_threads(exp.num_threads)
    print(f"{torch.get_num_threads()} thread(s)", flush=True)
    report(*run_experiment(exp), exp)
    if exp.quick:
        print(exp.QUICK_NOTE)
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
