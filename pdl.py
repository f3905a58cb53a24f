"""
Power-Law Decay Loss (PDL), arXiv:2505.16900, on the shared small GPT.

The idea. Cross-entropy lets frequent tokens ("the", ",", "\\n") dominate the gradient. PDL weights each target's
cross-entropy by a power-law decay of its count in the training targets, so rare, informative tokens count more:

    w(t) = (count(t) + eps)^(-alpha),      L = sum_i w(y_i) l_i / sum_i w(y_i),   l_i = -log p(y_i | x_i)

alpha = 0 is cross-entropy; the authors' defaults: alpha = 1, eps = 1e-7, range [0.25, 1.5]. Their claim: more
informative and diverse generation. The paper has no experiments (its released trainer overrides a method the Hugging
Face Trainer never calls, so the weights were never applied): all measurements are ours. The weights are the inverse
token frequency (ITF) loss of Nakamura, Sudoh, Yoshino and Nakamura (arXiv:1811.08100, 2018), raised to a power and
normalised per batch. Its optimum (our derivation, tested): minimising sum_y P(y|x) w(y) (-log q(y|x)) over q gives
q* = P w / sum P w, the data tilted towards rare tokens with no mass on never-seen ones: the post-hoc logit adjustment
of Menon et al. (ICLR 2021, arXiv:2007.07314), logits - alpha log count, read the other way round. So PDL changes the
target, and must pay in ordinary perplexity.

Ours. Does PDL buy more than temperature sampling of the plain model (alpha = 0, finetuned the same steps, same seed)
at equal perplexity? Per PDL model and seed, T* is where that seed's plain model has PDL's cross-entropy on the same
validation batches, by bisection (T doubles from 1 to a bracket, then bisection in log T to 1e-3 nats; never T < 1 or
past --max_temperature, nothing interpolated or extrapolated: out of range is refused, and said); the plain model is
then scored and sampled at exactly T*. Measured per sampler: validation perplexity (top-p: inf, so the share of true
tokens it excludes), sample diversity (unigram entropy, distinct-1/2, rare share), probability and cross-entropy of
true rare next tokens (bottom half of the training frequency mass; also against the plain model at T = 1), mass on
never-seen tokens. A zero-training arm: the plain model logit-adjusted, q = p count^-alpha renormalised over the tokens
seen in training, never-seen ones keeping the plain model's probability (no count to tilt by; clipped at 1 they would
get the largest boost), scored like PDL; a verdict asks if PDL gains more over temperature than it does. The positive
control: logit adjustment at --control_alpha must put more of its samples on rare tokens than temperature at its
perplexity, its effect by construction (seen tokens' odds times count^-alpha, never-seen mass kept; temperature spreads
mass over all 50,304 ids, most never seen). No sampler we know beats temperature on unigram entropy at equal
perplexity by construction: for that row the control checks the pipeline only.

    python pdl.py --num_threads=1                                   # results/pdl.json: 3 seeds, alpha 0 and 1
    python pdl.py --num_threads=1 --alphas=0,0.5,1 --seeds=3        # and alpha 0.5
    python pdl.py --quick=true                                      # from a 40-step baseline: see QUICK_NOTE
    python pdl.py --alphas=0,0.25,0.5,1,1.5 --seeds=5 --steps=1000  # on a GPU (used when present)
    python train.py --variant=pdl --pdl_alpha=0.5                   # train one model with PDL
"""
import dataclasses, functools, math, sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import lab, train

# -----------------------------------------------------------------------------
# The loss

def target_counts(train_tokens, vocab_size):
    """How often each token id is a supervised target in the training split (every token but the first), so every target
    the loss sees has count >= 1: an unseen one would get weight (0 + eps)^(-alpha) = 1e7 and swamp the batch."""
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

def logit_adjusted(logits, counts, alpha):
    """Log-probabilities of the plain model logit-adjusted (Menon et al.'s post-hoc form, tau = alpha) among the tokens
    seen in training: their mass tilted by count^-alpha, so q = p w / sum p w there, PDL's optimum with the model's p
    for the data's P. Never-seen tokens (count 0: no weight to give them) keep the plain model's probability."""
    logp, counts = F.log_softmax(logits.float(), -1), counts.to(logits.device)
    outside = torch.where(counts > 0, 0.0, -math.inf)  # adds -inf to never-seen tokens: out of the sums below
    # z'_t = z_t - alpha log count(t), renormalised to the seen tokens' mass sum_seen p
    tilted = logp - alpha * counts.clamp(min=1).log().float()
    tilted = tilted - (tilted + outside).logsumexp(-1, keepdim=True) + (logp + outside).logsumexp(-1, keepdim=True)
    return torch.where(counts > 0, tilted, logp)

# -----------------------------------------------------------------------------
# Samplers, and what they give

def nucleus_drop(logits, top_p, k=4096):
    """True outside the nucleus: the smallest set of most likely tokens whose probability reaches top_p. Read off each
    row's k most likely tokens (a partial sort, several times cheaper than sorting V); rows whose nucleus is larger
    than k are read again from their 4k most likely, up to the whole row. The same set either way."""
    logits, k = logits.float(), min(k, logits.size(-1))
    top, order = logits.topk(k, -1)                                   # each row's k largest, in descending order
    p = torch.exp(top - logits.logsumexp(-1, keepdim=True))
    drop_top = p.cumsum(-1) - p >= top_p  # the mass before this token already reaches top_p
    drop = torch.ones_like(logits, dtype=torch.bool).scatter(-1, order, drop_top)
    if k < logits.size(-1) and (larger := ~drop_top[..., -1]).any():   # nucleus not closed within k: 4k
        drop[larger] = nucleus_drop(logits[larger], top_p, 4 * k)
    return drop

class SamplingHead(nn.Module):
    """The output head as GPT.generate samples from it: through `adjust` (e.g. logit_adjusted), then the nucleus."""
    def __init__(self, head, top_p=1.0, adjust=None):
        super().__init__()
        self.head, self.top_p, self.adjust = head, top_p, adjust

    def forward(self, h):
        logits = self.head(h) if self.adjust is None else self.adjust(self.head(h))
        return logits.masked_fill(nucleus_drop(logits, self.top_p), -float("inf")) if self.top_p < 1 else logits

@torch.no_grad()
def validation_logits(model, val_data, block_size, n_batches):
    """[(logits (12 block_size, V) float32, true next tokens)] on fixed validation windows, the same for every model;
    each row's logits shifted so that the largest is 0 (the softmax does not change, exp cannot overflow)."""
    was_training, device, gen, batches = model.training, next(model.parameters()).device, torch.Generator(), []
    gen.manual_seed(0)
    for _ in range(n_batches):
        x, y = train.get_batch(val_data, torch.randint(len(val_data) - block_size - 1, (12,), generator=gen),
                               block_size, device)
        logits = model.eval()(x)[0].float().flatten(0, 1)
        batches.append((logits - logits.max(-1, keepdim=True).values, y.flatten()))
    model.train(was_training)
    return batches

@torch.no_grad()
def score_logits(batches, rare, unseen, settings, adjust=None):
    """For each (temperature, top_p) on these batches (logits through `adjust` when given): the cross-entropy of the
    sampled distribution (inf once top-p excludes a true token), the share of true tokens excluded, the mean probability
    of the true token where it is rare and where it is not, the cross-entropy on rare tokens only, and the mass on
    tokens never seen in training."""
    sums = {s: np.zeros(7) for s in settings}
    for logits, y in batches:
        logits = logits if adjust is None else adjust(logits)
        is_rare = rare.to(logits.device)[y]
        for temperature, top_p in settings:
            # q(y | x) = softmax(logits / T), renormalised inside the nucleus when top_p < 1
            logq = F.log_softmax(logits / temperature, -1)
            if top_p < 1:
                logq = F.log_softmax(logq.masked_fill(nucleus_drop(logits, top_p), -float("inf")), -1)
            true = logq.gather(1, y[:, None])[:, 0]
            q_true = true.exp()  # the sums of: CE, excluded, p rare, rare count, p common, CE rare, never-seen mass
            sums[(temperature, top_p)] += [-true.mean().item(), (q_true == 0).float().mean().item(),
                                           q_true[is_rare].sum().item(), is_rare.sum().item(),
                                           q_true[~is_rare].sum().item(), -true[is_rare].sum().item(),
                                           (logq.exp() @ unseen.to(logq.device, logq.dtype)).mean().item()]
    n, positions = len(batches), sum(len(y) for _, y in batches)
    return {s: {"cross_entropy": v[0] / n, "excluded": v[1] / n, "rare_prob": v[2] / max(v[3], 1),
                "common_prob": v[4] / max(positions - v[3], 1), "rare_cross_entropy": v[5] / max(v[3], 1),
                "unseen_mass": v[6] / n} for s, v in sums.items()}

def score(model, val_data, rare, unseen, settings, block_size, n_batches=10):  # on the model's validation_logits
    return score_logits(validation_logits(model, val_data, block_size, n_batches), rare, unseen, settings)

def cross_entropy_at(batches, temperature):
    """score_logits' cross-entropy at T on validation_logits' batches, only that, in one buffer: for the bisection."""
    total, buffer = 0.0, torch.empty_like(batches[0][0])
    for logits, y in batches:
        q = torch.mul(logits, 1 / temperature, out=buffer[:len(logits)]).exp_()  # each row's largest is exp(0) = 1
        # CE(T) = mean_i [ log sum_v exp(z_iv / T) - z_{i, y_i} / T ]
        total += (q.sum(-1).log() - logits.gather(1, y[:, None])[:, 0] / temperature).mean().item()
    return total / len(batches)

class NoMatch(ValueError):
    """No temperature in [1, max_temperature] gives the cross-entropy asked for (the comparison is refused)."""

def matched_temperature(cross_entropy, target, max_temperature, tol=1e-3, max_evals=40):
    """(T, cross_entropy(T), evaluations), T in [1, max_temperature], |cross_entropy(T) - target| <= tol: T doubles from
    1 to a bracket, then bisection in log T. Never T < 1 (that sharpens), never extrapolated: NoMatch when the target
    is below the cross-entropy at T = 1, above the one at max_temperature, or not reached in max_evals evaluations."""
    lo, hi, f_hi, evals = 1.0, 1.0, cross_entropy(1.0), 1
    if f_hi > target + tol:
        raise NoMatch(f"cross-entropy {target:.4f} is below the plain model's at T = 1 ({f_hi:.4f}): only T < 1 "
                      "could match, outside the search")
    while f_hi < target - tol:  # the bracket: cross_entropy(lo) < target - tol <= cross_entropy(hi)
        if hi >= max_temperature:
            raise NoMatch(f"cross-entropy {target:.4f} is above the plain model's at T = {max_temperature:g} "
                          f"({f_hi:.4f}), the largest searched: not extrapolated")
        lo, hi = hi, min(2 * hi, max_temperature)
        f_hi, evals = cross_entropy(hi), evals + 1
    while abs(f_hi - target) > tol:  # bisection in log T, keeping the bracket
        if evals >= max_evals:
            raise NoMatch(f"no temperature within {tol:g} nats of {target:.4f} after {evals} evaluations")
        mid = math.sqrt(lo * hi)
        f_mid, evals = cross_entropy(mid), evals + 1
        lo, hi, f_hi = (mid, hi, f_hi) if f_mid < target - tol else (lo, mid, f_mid)
    return hi, f_hi, evals

def rare_token_set(counts):
    """Token ids in the bottom 50% of the training frequency mass (the rarest tokens first)."""
    order = torch.argsort(counts, stable=True)
    order = order[counts[order] > 0]
    cumulative = torch.cumsum(counts[order], 0) / counts.sum()
    return set(order[cumulative <= 0.5].tolist())

def diversity(token_lists, rare, seen):
    """distinct-1, distinct-2 (unique n-grams over all n-grams), unigram entropy (nats), share of rare
    tokens, and share of tokens never seen in training."""
    tokens, bigrams = [t for seq in token_lists for t in seq], [b for seq in token_lists for b in zip(seq, seq[1:])]
    p = np.unique(np.array(tokens), return_counts=True)[1] / len(tokens)
    return {"distinct_1": len(set(tokens)) / len(tokens), "distinct_2": len(set(bigrams)) / max(1, len(bigrams)),
            "sample_entropy": float(-(p * np.log(p)).sum()),
            "rare_share": sum(t in rare for t in tokens) / len(tokens),
            "unseen_share": sum(t not in seen for t in tokens) / len(tokens)}

@torch.no_grad()
def sample_from_val(model, val_data, n, prompt_len, new_tokens, seed, temperature=1.0, top_p=1.0, adjust=None):
    """n continuations of random validation prompts, at this temperature and top-p, the logits through `adjust`."""
    offsets = torch.randint(len(val_data) - prompt_len, (n,), generator=torch.Generator().manual_seed(seed))
    prompts = torch.stack([torch.from_numpy(val_data[i:i + prompt_len].astype(np.int64)) for i in offsets.tolist()])
    head, device = model.lm_head, next(model.parameters()).device
    model.eval().lm_head = SamplingHead(head, top_p, adjust) if top_p < 1 or adjust is not None else head
    try:
        gen = torch.Generator(device=device).manual_seed(seed)
        out = model.generate(prompts.to(device), new_tokens, temperature=temperature, generator=gen)
    finally:
        model.lm_head = head
    return out[:, prompt_len:].tolist()

# -----------------------------------------------------------------------------
# The experiment: PDL against the plain model sampled flatter, and against the plain model logit-adjusted

@dataclass
class Experiment:
    alphas: str = "0,1"                          # alphas to finetune with (0, plain cross-entropy, is always run)
    temperatures: str = "1,2"                    # the alpha = 0 model sampled at these temperatures too (table, figure)
    top_ps: str = "0.9"                          # and with these top-p values (at temperature 1)
    control_alpha: float = 1.0                   # the control: the plain model logit-adjusted at this alpha
    max_temperature: float = 16.0                # the bisection for equal perplexity searches T in [1, this]
    seeds: int = 3                               # seeds per alpha: 0 .. seeds - 1 (a verdict needs 3)
    steps: int = 100                             # finetuning steps per run (the same for every alpha)
    learning_rate: float = 1e-3                  # finetuning peak learning rate (10 warmup steps, cosine to a tenth)
    eval_every: int = 20                         # mass on never-seen tokens tracked every this many steps
    eval_batches: int = 10                       # validation batches of 12 x 64 tokens for every score and bisection
    n_samples: int = 48                          # sampled continuations per sampler
    sample_len: int = 48                         # tokens per continuation (after a 16-token validation prompt)
    num_threads: int = 0                         # CPU threads (0 = torch's default); results/pdl.json: 1
    baseline: str = "out/baseline/ckpt.pt"       # checkpoint to finetune (trained first if missing)
    out_dir: str = "out/pdl"
    quick: bool = False                          # a one-minute version of the default run (see QUICK); flags given win
    # --quick=true starts from QUICK, and from a baseline of its own: QUICK_BASELINE, not train.py's 3-minute default.
    QUICK: ClassVar[dict] = dict(temperatures="1", seeds=1, steps=25, eval_every=10, eval_batches=2, n_samples=16,
                                 sample_len=24, baseline="out/pdl_quick/baseline/ckpt.pt", out_dir="out/pdl_quick")
    QUICK_BASELINE: ClassVar[dict] = dict(max_iters=40, warmup_iters=4, batch_size=4, eval_iters=5, sample_tokens=0,
                                          learning_rate=3e-3, min_lr=3e-4)
    QUICK_NOTE: ClassVar[str] = ("quick run: 1 seed x 25 steps per alpha from a 40-step baseline, far less trained "
                                 "than the full run's; the full run: 3 seeds x 100 steps, 48 samples x 48 tokens. Here "
                                 "sample entropy saturates at log(16 x 24) = 5.9 nats, and one seed has no spread.")

    def validate(self):
        lists = [s.split(",") for s in (self.alphas, self.temperatures, self.top_ps)]
        ok = all(v.replace(".", "", 1).isdigit() for v in sum(lists, [])) and "1" in [f"{float(t):g}" for t in lists[1]]
        alphas, temps, top_ps = ([float(v) for v in vs] if ok else [] for vs in lists)
        if not (ok and min(temps) > 0 and all(0 < p < 1 for p in top_ps) and 0 < self.control_alpha < math.inf and
                1 < self.max_temperature < math.inf and min(self.steps, self.eval_every, self.eval_batches,
                                                              self.n_samples, self.sample_len) >= 1):
            raise lab.ConfigError("--alphas takes comma-separated numbers >= 0 (e.g. 0,0.5,1); --temperatures numbers "
                                  "> 0 including 1; --top_ps numbers in (0, 1); --control_alpha > 0; --max_temperature "
                                  "> 1; --steps and the other counts >= 1")

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

def label(r):
    """The sampler a row measures: 'PDL alpha 1', 'logit-adjusted alpha 1', 'plain, T 2', 'plain at PDL alpha 1'."""
    return (f"{r['arm']} alpha {r['alpha']:g}" if r["arm"] != "temperature" else f"plain at {r['matches']}" if
            r["matches"] else f"plain, top-p {r['top_p']:g}" if r["top_p"] < 1 else f"plain, T {r['temperature']:g}")

def run_experiment(exp):
    alphas = sorted({float(a) for a in exp.alphas.split(",")} - {0.0})
    settings = [(float(t), 1.0) for t in exp.temperatures.split(",")] + [(1.0, float(p)) for p in exp.top_ps.split(",")]
    baseline = lab.load_baseline(exp.baseline, train.TrainConfig(**exp.QUICK_BASELINE) if exp.quick else None)
    val_data, block = baseline["val_data"], baseline["config"]["block_size"]
    counts = target_counts(baseline["train_data"], 50304)
    rare, seen = rare_token_set(counts), set(torch.nonzero(counts).flatten().tolist())
    rare_mask, unseen = torch.zeros(50304, dtype=torch.bool), counts == 0
    rare_mask[list(rare)] = True
    rows, tracks = [], []

    def add(model, seed, stats, arm, alpha=0.0, temperature=1.0, top_p=1.0, adjust=None, matches=""):
        samples = sample_from_val(model, val_data, exp.n_samples, 16, exp.sample_len, seed, temperature, top_p, adjust)
        rows.append({"arm": arm, "alpha": alpha, "temperature": temperature, "top_p": top_p, "seed": seed,
                     "matches": matches, "match_error": "", **stats, **diversity(samples, rare, seen),
                     "sample": train.gpt2_encoding().decode(samples[0])})
        lab.say(f"  seed {seed} {label(rows[-1])} (T {temperature:.4g}): perplexity "
                f"{math.exp(stats['cross_entropy']):.0f}, sample entropy {rows[-1]['sample_entropy']:.3f}, "
                f"p(true rare token) {stats['rare_prob']:.5f}")
        return rows[-1]
    for seed in range(exp.seeds):
        plain, track = finetune(exp, baseline, 0.0, seed, unseen)
        tracks.append({"alpha": 0.0, "seed": seed, "unseen_mass": track})
        cached = validation_logits(plain, val_data, block, exp.eval_batches)  # reused for every T below
        for t, p in settings:
            add(plain, seed, score_logits(cached, rare_mask, unseen, [(t, p)])[(t, p)], "temperature", 0.0, t, p)
        arms = []
        for alpha in alphas:
            model, track = finetune(exp, baseline, alpha, seed, unseen)
            tracks.append({"alpha": alpha, "seed": seed, "unseen_mass": track})
            arms.append(add(model, seed, score(model, val_data, rare_mask, unseen, [(1.0, 1.0)], block,
                                               exp.eval_batches)[(1.0, 1.0)], "PDL", alpha))
        for alpha in sorted({*alphas, exp.control_alpha}):  # no training: the plain model, logits - alpha log count
            adjust = functools.partial(logit_adjusted, counts=counts, alpha=alpha)
            arms.append(add(plain, seed, score_logits(cached, rare_mask, unseen, [(1.0, 1.0)], adjust)[(1.0, 1.0)],
                            "logit-adjusted", alpha, adjust=adjust))
        for arm in arms:  # the plain model at each arm's perplexity: T* by bisection, then scored and sampled at T*
            try:
                t, _, evals = matched_temperature(functools.partial(cross_entropy_at, cached), arm["cross_entropy"],
                                                  exp.max_temperature)
            except NoMatch as e:
                arm["match_error"] = f"{label(arm)}, seed {seed}: {e}"
                lab.say(f"  refused: {arm['match_error']}")
                continue
            lab.say(f"  bisection: T* {t:.4f} for {label(arm)} in {evals} evaluations")
            add(plain, seed, score_logits(cached, rare_mask, unseen, [(t, 1.0)])[(t, 1.0)], "temperature", 0.0, t,
                matches=label(arm))
        cached = None  # 12 x 64 x V floats a batch: freed before the next seed finetunes
    stride = len(val_data) // exp.n_samples  # the same statistics of validation text, in windows of the sample length
    return rows, tracks, diversity([val_data[i:i + exp.sample_len].astype(np.int64).tolist()
                                    for i in range(0, stride * exp.n_samples, stride)], rare, seen)

def paired(rows, key, name, other):
    """`key` of sampler `name` and of sampler `other`, per seed in seed order (so that they pair), and for each seed
    without `other` why not (no temperature in range reached `name`'s perplexity)."""
    a, b = ({r["seed"]: r for r in rows if label(r) == n} for n in (name, other))
    seeds = [s for s in sorted(a) if s in b]
    return [a[s][key] for s in seeds], [b[s][key] for s in seeds], [
        a[s]["match_error"] or f"{other}: none for seed {s}" for s in sorted(a) if s not in b]

def versus(rows, key, name, other, side="above", gain=False):
    """lab.condition on `key` of sampler `name` minus that of sampler `other`, paired by seed; gain=True: on name's gain
    over the plain model at its perplexity minus other's gain over the plain model at its own."""
    a, b, why = paired(rows, key, name, other)
    if gain:
        (a, a0, why), (b, b0, why_b) = (paired(rows, key, n, f"plain at {n}") for n in (name, other))
        a, b, why = np.subtract(a, a0), np.subtract(b, b0), why + why_b + ["not the same seeds"] * (len(a) != len(b))
    if why:  # nothing to compare
        return lab.condition(lab.Difference(math.nan, math.nan, math.nan, len(a), "paired"), side, 0.0, "; ".join(why))
    at = (f" (T* {lab.estimate(paired(rows, 'temperature', name, other)[1])}, perplexity "
          f"{math.exp(np.mean(paired(rows, 'cross_entropy', name, other)[0])):.0f})" if "plain at" in other else "")
    what = "'s gain over temperature at its perplexity" if gain else ""
    return lab.condition(lab.difference(a, b, paired=True), side, 0.0,
                         f"{name}{what} {lab.estimate(a)} minus {other}{what}{at} {lab.estimate(b)}")

def verdicts(rows, exp):
    """Control: the plain model logit-adjusted at control_alpha must put more of its samples on rare tokens than
    temperature does at its perplexity (lab.py's rule, seed-paired). Then, for each alpha > 0, PDL against temperature
    at the same perplexity (sample entropy, rare share, probability of true rare tokens), against the plain model at
    T = 1 (probability and cross-entropy of true rare tokens), and against the logit adjustment with its alpha (gains
    over temperature). Each difference pairs samplers of the same seed (baseline, validation batches, prompts)."""
    control = f"logit-adjusted alpha {exp.control_alpha:g}"
    gate = lab.control(f"rare-token share of samples of the plain model logit-adjusted at alpha {exp.control_alpha:g} "
                       "minus at T* (its perplexity)", versus(rows, "rare_share", control, f"plain at {control}"),
                       exp.seeds, exp.quick)
    out, command = [], lab.command("pdl", exp)
    for alpha in sorted({r["alpha"] for r in rows if r["arm"] == "PDL"}):
        pdl, matched = f"PDL alpha {alpha:g}", f"plain at PDL alpha {alpha:g}"
        claims = [(claim, says, versus(rows, key, pdl, other, side)) for claim, says, key, other, side in (
            ("more diverse samples (unigram entropy) than temperature at equal perplexity",
             "more diverse (no experiments)", "sample_entropy", matched, "above"),
            ("more rare tokens in its samples than temperature at equal perplexity", "more informative", "rare_share",
             matched, "above"),
            ("more probability on true rare next tokens than temperature at equal perplexity", "more informative",
             "rare_prob", matched, "above"),
            ("more probability on true rare next tokens than the plain model at T = 1", "rare tokens count more",
             "rare_prob", "plain, T 1", "above"),
            ("lower cross-entropy on true rare next tokens than the plain model at T = 1", "rare tokens count more",
             "rare_cross_entropy", "plain, T 1", "below"))]
        for key, what in (("sample_entropy", "sample entropy"), ("rare_prob", "probability on true rare next tokens")):
            test = versus(rows, key, pdl, f"logit-adjusted alpha {alpha:g}", gain=True)
            if test["outcome"] != "supported":
                test["text"] += ("; the logit-adjusted plain model matches or beats it" if test["outcome"] ==
                                 "not supported" else "; not shown to beat it") + \
                    ": the finetuning buys nothing that a one-line change to sampling does not"
            claims.append((f"a larger gain in {what} over temperature at equal perplexity than the plain model "
                           f"logit-adjusted at alpha {alpha:g} (no training)", "", test))
        out += [lab.verdict(f"PDL alpha = {alpha:g}: {claim}", says, test, gate, exp.seeds, command, exp.quick)
                for claim, says, test in claims]
    return out, gate

def report(rows, tracks, reference, exp):
    """Mean (sample sd) over seeds per sampler: a markdown table, results.json with the verdicts, and a PNG."""
    out, (verdict_list, gate) = Path(exp.out_dir), verdicts(rows, exp)
    names, keys = list(dict.fromkeys(label(r) for r in rows)), ["temperature", "cross_entropy", "excluded",
        "rare_prob", "common_prob", "unseen_mass", "rare_cross_entropy", "sample_entropy", "distinct_2", "rare_share",
        "unseen_share"]
    mean = {n: {k: lab.estimate([r[k] for r in rows if label(r) == n]) for k in keys} for n in names}
    lines = [f"Finetuned {exp.steps} steps per alpha, {exp.seeds} seeds, {exp.num_threads or torch.get_num_threads()} "
             "thread(s); mean (sample sd over seeds). 'plain at X': the alpha = 0 model at T*, where its perplexity is "
             "X's (bisection, per seed).", "", "| sampler | T | val perplexity | p(true), rare | p(true), common | "
             "never-seen mass | cross-entropy, rare | sample entropy | distinct-2 | rare share | never-seen share |",
             "|---" * 11 + "|"]
    for n, m in mean.items():
        ppl = f"{math.exp(m['cross_entropy'].mean):.0f}" if m["excluded"].mean == 0 else \
            f"inf ({m['excluded'].mean:.0%} excluded)"
        lines.append(f"| {n} | {m['temperature'].mean:.3f} | {ppl} | " + " | ".join(
            [f"{m[k].mean:.4f} ({m[k].sd:.4f})" for k in keys[3:6]] + [f"{m[k].mean:.3f} ({m[k].sd:.3f})"
                                                                      for k in keys[6:]]) + " |")
    mass = lambda a, i: np.mean([t["unseen_mass"][i][1] for t in tracks if t["alpha"] == a])
    lines += ["| validation text | - | - | - | - | - | - | " + " | ".join(f"{reference[k]:.3f}" for k in keys[7:]) +
              " |", "", "Mass on never-seen tokens during finetuning (mean over seeds): " + "; ".join(
                  f"alpha {a:g}: " + ", ".join(f"{it} {mass(a, i):.3f}" for i, (it, _) in enumerate(
                      tracks[0]["unseen_mass"])) for a in sorted({t["alpha"] for t in tracks})), "", "Verdicts:"]
    lines += [lab.verdict_line(v) for v in verdict_list] + [f"- control: {gate['text']}"] + [
        f"- refused: {r['match_error']}" for r in rows if r["match_error"]]
    lab.write_results(out, "\n".join(lines), {"config": dataclasses.asdict(exp), "verdict": verdict_list, "runs": rows,
                                              "unseen_mass_during_training": tracks, "validation_text": reference})
    lab.record("pdl", exp, verdict_list, {"samplers": {n: {k: dataclasses.asdict(e) for k, e in m.items()}
                                                       for n, m in mean.items()}, "control": gate})
    plot(rows, tracks, reference, out / "pdl.png")
    print("\n" + "\n".join(lines) + f"\n\nwrote {out / 'results.json'}, {out / 'results.md'}, {out / 'pdl.png'}")

def plot(rows, tracks, reference, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), dpi=100)
    for ax, key in zip(axes[:2], ("sample_entropy", "rare_prob")):
        for seed in sorted({r["seed"] for r in rows}):  # each seed's plain model at every temperature it was run at
            curve = sorted((r["temperature"], math.exp(r["cross_entropy"]), r[key]) for r in rows
                           if r["seed"] == seed and r["arm"] == "temperature" and r["top_p"] == 1)
            ax.plot(*list(zip(*curve))[1:], "o:", color="C0", ms=4, label=None if seed else "plain, T (grid and T*)")
        for i, (arm, alpha) in enumerate(sorted({(r["arm"], r["alpha"]) for r in rows if r["alpha"] > 0})):
            sel = [(math.exp(r["cross_entropy"]), r[key]) for r in rows if r["arm"] == arm and r["alpha"] == alpha]
            ax.scatter(*zip(*sel), color=f"C{i + 1}", marker="s^"[arm != "PDL"], label=f"{arm} alpha {alpha:g}")
    axes[0].axhline(reference["sample_entropy"], color="k", ls=":", lw=1, label="validation text")
    for a in sorted({t["alpha"] for t in tracks}):
        sel = [t["unseen_mass"] for t in tracks if t["alpha"] == a]
        axes[2].plot([it for it, _ in sel[0]], np.mean([[m for _, m in s] for s in sel], 0), "o-", label=f"alpha {a:g}")
    x = "perplexity of the sampled distribution on validation text"
    for ax, (xlabel, ylabel, title, scale) in zip(axes, (
            (x, "unigram entropy of samples (nats)", "diversity against perplexity", "x"),
            (x, "mean p(true next token), rare tokens", "the paper's motivation, on validation text", "x"),
            ("finetuning step", "mass on never-seen tokens", "mass the tilted optimum does not have", "y"))):
        ax.set(xlabel=xlabel, ylabel=ylabel, title=title, **{f"{scale}scale": "log"})
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    lab.save_figure(fig, path)

def bench():
    """pdl_step_ratio: one PDL training step over one plain cross-entropy step, default GPT, GPT-2 vocabulary."""
    import bench as bench_module
    cfg, counts, seconds = train.TrainConfig(), torch.randint(1, 1000, (50304,)).double(), []
    for weights in (None, pdl_weights(counts, 1.0)):
        torch.manual_seed(0)
        model = train.build_baseline(cfg)
        model.loss_fn = model.loss_fn if weights is None else PowerLawDecayLoss(weights)
        seconds.append(bench_module.train_step_seconds(model, 50257, cfg.batch_size, cfg.block_size))
    return {"pdl_step_ms": 1e3 * seconds[1], "ce_step_ms": 1e3 * seconds[0], "pdl_step_ratio": seconds[1] / seconds[0]}

def run(argv):
    try:
        exp = lab.parse_args(argv, Experiment, __doc__)
    except lab.ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
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
