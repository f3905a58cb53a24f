"""
Power-Law Decay Loss (PDL), arXiv:2505.16900, on the shared small GPT.

The idea. Standard cross-entropy lets frequent tokens ("the", ",", "\\n") dominate the gradient of
text generation. PDL re-weights each target token's cross-entropy by a power-law decay of how often the
token occurs in the training targets, so rare, informative tokens count more:

    w(t) = (count(t) + eps)^(-alpha),      L = sum_i w(y_i) l_i / sum_i w(y_i),   l_i = -log p(y_i | x_i)

alpha = 0 is standard cross-entropy; the authors' defaults are alpha = 1 and eps = 1e-7 and they
suggest alpha in [0.25, 1.5]. The paper is a method description with no experiments of its own (its
released trainer overrides a method that the Hugging Face Trainer never calls, so the released code
never applied the weights): everything measured here is ours.

What the loss optimises (our derivation, checked by a test). For a context x with next-token
distribution P(y | x), the expected PDL numerator is sum_y P(y|x) w(y) (-log q(y|x)); minimised over
the distribution q it gives

    q*(y | x) = P(y | x) w(y) / sum_y' P(y' | x) w(y')

the data distribution tilted towards rare tokens. So PDL buys diversity (more rare tokens, flatter
unigram statistics of samples) with a worse unweighted perplexity: it is a different target, not a
better estimate of the same one. At alpha = 1 the tilt cancels frequency entirely in the unigram
limit (P(y) w(y) = const for every seen token).

What we implement: the weights from token counts over the training targets; the loss as a module
(the shared GPT's `loss_fn` seam); finetuning the baseline checkpoint with alpha in {0, 0.25, 0.5, 1}
for the same steps and seeds; unweighted validation loss and diversity of samples (distinct-1/2,
unigram entropy, share of rare tokens against the same share in validation text).
Our interpretation: counts are taken over the supervised targets of the training split (for a
language model, every training token but the first); the normalisation by sum_i w(y_i) is per batch.

    python pdl.py                                   # the experiment (< 10 min on a 2-core CPU)
    python pdl.py --ft_iters=300 --seeds=3          # longer, more seeds (a GPU makes this seconds)
    python train.py --variant=pdl --pdl_alpha=0.5   # train one model with PDL
"""
import dataclasses
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

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
            raise train.ConfigError(f"--pdl_alpha must be >= 0, got {self.pdl_alpha}")
        if not self.pdl_eps > 0:
            raise train.ConfigError(f"--pdl_eps must be > 0, got {self.pdl_eps}")


def build_model(cfg, train_data):
    """The shared GPT with its loss replaced by PDL (the `loss_fn` seam)."""
    model = train.build_baseline(cfg)
    counts = target_counts(train_data, model.config.vocab_size)
    model.loss_fn = PowerLawDecayLoss(pdl_weights(counts, cfg.pdl_alpha, cfg.pdl_eps))
    return model


# -----------------------------------------------------------------------------
# Diversity of sampled text

def rare_token_set(counts):
    """Token ids in the bottom 50% of the training frequency mass (the rarest tokens first)."""
    order = torch.argsort(counts, stable=True)
    order = order[counts[order] > 0]
    cumulative = torch.cumsum(counts[order], 0) / counts.sum()
    return set(order[cumulative <= 0.5].tolist())


def diversity(token_lists, rare, seen):
    """distinct-1, distinct-2 (unique n-grams over all n-grams), unigram entropy (nats), share of rare
    tokens, and share of tokens never seen in training (PDL can push mass there through tied embeddings)."""
    tokens = [t for seq in token_lists for t in seq]
    bigrams = [b for seq in token_lists for b in zip(seq, seq[1:])]
    _, freq = np.unique(np.array(tokens), return_counts=True)
    p = freq / freq.sum()
    return {"distinct_1": len(set(tokens)) / len(tokens), "distinct_2": len(set(bigrams)) / max(1, len(bigrams)),
            "sample_entropy": float(-(p * np.log(p)).sum()),
            "rare_share": sum(t in rare for t in tokens) / len(tokens),
            "unseen_share": sum(t not in seen for t in tokens) / len(tokens)}


@torch.no_grad()
def sample_from_val(model, val_data, n, prompt_len, new_tokens, seed):
    """n continuations (temperature 1, the model's own distribution) of random validation prompts."""
    gen = torch.Generator().manual_seed(seed)
    offsets = torch.randint(len(val_data) - prompt_len, (n,), generator=gen)
    prompts = torch.stack([torch.from_numpy(val_data[i:i + prompt_len].astype(np.int64)) for i in offsets.tolist()])
    model.eval()
    out = model.generate(prompts, new_tokens, temperature=1.0, generator=gen)
    return out[:, prompt_len:].tolist()


# -----------------------------------------------------------------------------
# The experiment

@dataclass
class Experiment:
    alphas: str = "0,0.25,0.5,1"   # comma-separated alphas to finetune with
    seeds: int = 1                 # seeds per alpha
    ft_iters: int = 80             # finetuning steps per run
    learning_rate: float = 1e-3    # finetuning peak learning rate
    n_samples: int = 32            # sampled continuations per model
    sample_len: int = 48           # tokens per continuation
    baseline: str = "out/baseline/ckpt.pt"  # checkpoint to finetune (trained first if missing)
    out_dir: str = "out/pdl"


def run_experiment(exp):
    alphas = [float(a) for a in exp.alphas.split(",")]
    baseline = train.load_baseline(exp.baseline)
    base_path, base_cfg = baseline["path"], baseline["config"]
    train_data, val_data = baseline["train_data"], baseline["val_data"]
    counts = target_counts(train_data, 50257)
    rare, seen = rare_token_set(counts), set(torch.nonzero(counts).flatten().tolist())
    rows = []
    for alpha in alphas:
        for seed in range(exp.seeds):
            print(f"\n=== PDL alpha={alpha:g} seed={seed}: finetune {exp.ft_iters} steps from {base_path}", flush=True)
            cfg = Config(**{**base_cfg, "pdl_alpha": alpha, "max_iters": exp.ft_iters, "warmup_iters": 10,
                            "learning_rate": exp.learning_rate, "min_lr": exp.learning_rate / 10,
                            "eval_interval": exp.ft_iters, "log_interval": max(1, exp.ft_iters // 4),
                            "ckpt_interval": exp.ft_iters, "seed": seed, "init_from": str(base_path),
                            "resume": False, "sample_tokens": 0, "variant": "pdl",
                            "out_dir": str(Path(exp.out_dir) / f"alpha{alpha:g}_seed{seed}")})
            summary = train.train(cfg, build_model)
            base_cfg["num_threads"] = torch.get_num_threads()  # measured once, by the first run
            model = summary["model"]
            samples = sample_from_val(model, val_data, exp.n_samples, 16, exp.sample_len, seed)
            rows.append({"alpha": alpha, "seed": seed, "val_loss": train.val_loss(model, val_data, cfg.block_size),
                         "train_loss_weighted": summary["train_loss"], **diversity(samples, rare, seen),
                         "sample": train.gpt2_encoding().decode(samples[0])})
    # the same statistics of validation text itself, in windows of the sample length
    stride = len(val_data) // exp.n_samples
    windows = [val_data[i:i + exp.sample_len].astype(np.int64).tolist() for i in range(0, stride * exp.n_samples, stride)]
    return rows, diversity(windows, rare, seen)


def report(rows, reference, exp):
    """Mean over seeds per alpha: a markdown table, results.json and a PNG."""
    alphas = sorted({r["alpha"] for r in rows})
    keys = ["val_loss", "distinct_1", "distinct_2", "sample_entropy", "rare_share", "unseen_share"]
    mean = {a: {k: float(np.mean([r[k] for r in rows if r["alpha"] == a])) for k in keys} for a in alphas}
    lines = ["| alpha | val loss (unweighted) | perplexity | distinct-1 | distinct-2 | sample entropy | rare share | unseen share |",
             "|---|---|---|---|---|---|---|---|"]
    for a in alphas:
        m = mean[a]
        lines.append(f"| {a:g} | {m['val_loss']:.3f} | {math.exp(m['val_loss']):.0f} | {m['distinct_1']:.3f} | "
                     f"{m['distinct_2']:.3f} | {m['sample_entropy']:.2f} | {m['rare_share']:.3f} | {m['unseen_share']:.3f} |")
    lines.append(f"| validation text | - | - | {reference['distinct_1']:.3f} | {reference['distinct_2']:.3f} | "
                 f"{reference['sample_entropy']:.2f} | {reference['rare_share']:.3f} | {reference['unseen_share']:.3f} |")
    table = "\n".join(lines)
    out = Path(exp.out_dir)
    train.write_results(out, table, {"config": dataclasses.asdict(exp), "runs": rows, "mean_by_alpha": mean,
                                     "validation_text": reference})

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4), dpi=100)
    ax1.plot(alphas, [mean[a]["val_loss"] for a in alphas], "o-")
    ax1.set_xlabel("alpha")
    ax1.set_ylabel("unweighted val loss (nats)")
    ax1.set_title("what PDL costs")
    for key, label in [("distinct_2", "distinct-2"), ("rare_share", "rare-token share"),
                       ("unseen_share", "share never seen in training")]:
        ax2.plot(alphas, [mean[a][key] for a in alphas], "o-", label=label)
        ax2.axhline(reference[key], ls=":", color=ax2.lines[-1].get_color(), lw=1)
    ax2.set_xlabel("alpha")
    ax2.set_title("what it buys (dotted: validation text)")
    ax2.legend()
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    train.save_figure(fig, out / "pdl.png")
    print("\n" + table)
    for r in rows:
        if r["seed"] == 0:
            print(f"\n--- sample, alpha={r['alpha']:g}:\n{r['sample']}")
    print(f"\nwrote {out / 'results.json'}, {out / 'results.md'}, {out / 'pdl.png'}")


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
        exp = train.parse_args(argv, Experiment, __doc__) if argv else Experiment()
        alphas = [float(a) for a in exp.alphas.split(",")]
        if any(a < 0 or not math.isfinite(a) for a in alphas) or exp.seeds < 1 or exp.ft_iters < 1:
            raise ValueError
    except train.ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ValueError:
        print("error: --alphas takes comma-separated numbers >= 0 (e.g. 0,0.5,1); --seeds and --ft_iters >= 1",
              file=sys.stderr)
        return 2
    rows, reference = run_experiment(exp)
    report(rows, reference, exp)
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
