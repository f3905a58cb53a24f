"""
ComplexFormer: Complex Multi-Head Attention (CMHA) against RoPE, arXiv:2505.10222, on the shared GPT.

What the paper says. ComplexFormer's abstract proposes Complex Multi-Head Attention: each head maps its
real query/key projections to complex vectors in polar form (an "Euler transform") and scores them with
a per-head adaptive differential rotation exp[i(Adapt(AS_mn, i) + Delta(P_mn, i))], claiming lower
perplexity and better long-context coherence than RoPE Transformers. The arXiv paper was withdrawn
(27 May 2025); only the abstract remains. The best evidence of what CMHA computes is the authors'
public code, which is EulerFormer (SIGIR 2024) applied per head; that is the reading we implement.
(Every public version of that code also lacks a causal mask on the complex path, so its reported
perplexities cannot be trusted; ours is causal, through the shared attention.)

What CMHA computes (our implementation of that reading). Per head h and frequency pair j, read q and
k as adjacent (re, im) pairs, the same layout as train.py's RoPE, and
- Euler transform, no parameters: r = hypot(re, im), phi = atan2(im, re);
- adaptive differential rotation: the score between positions m and n is

      s_mn = Re( sum_j r_q r_k exp(i( delta_hj (phi_q - phi_k) + b_hj + (m - n) omega_j )) ) / sqrt(d)

  with learnable per-head, per-frequency delta and b, and omega_j the RoPE frequencies of the shared GPT.
- Factorised: rotate q to r e^{i(delta phi + b + m omega)} and k to r e^{i(delta phi + n omega)}; their
  real dot product is s_mn, so the shared causal attention (F.scaled_dot_product_attention, 1/sqrt(d))
  runs unchanged. `pairwise_scores` keeps the direct T x T form as the reference in the tests.
- With delta = 1 and b = 0 the rotated q is exactly RoPE's: CMHA reduces to the baseline (a test).
  We initialise there by default; `--cmha_init=authors` draws delta ~ N(0, s^2) with s = (D/2)^(-1/2),
  D the head size, and b = 0 (our reading of their init, "N(0, (D/2)^-1/2)").

Two things to know about the parameters.
- The branch cut. atan2 jumps from +pi to -pi as a pair crosses the negative real axis. With integer
  delta, e^{i delta phi} is continuous across the cut; with non-integer delta it is not: the score jumps
  by a rotation of 2 pi delta there, so CMHA's score is a discontinuous function of q and k along a
  half-hyperplane per frequency (and atan2's gradient blows up near r = 0). The tests keep inputs away
  from both.
- b adds nothing when delta = 1: r e^{i(phi + b)} = (re + i im) e^{ib} is a fixed rotation of each
  (re, im) pair of the query, which a learned W_q can represent by rotating its rows. b only matters
  together with delta != 1.

The experiment (`python complexformer.py`): same data, steps and parameter budget (CMHA adds
2 x n_head x D/2 numbers per layer, reported) for RoPE, CMHA (delta = 1 start), CMHA (authors' start) and
no positional encoding, 3 seeds each; validation loss at the training context and at 2x and 4x it
(length extrapolation, the abstract's "long-context coherence").

    python complexformer.py                       # < 10 min on a 2-core CPU
    python complexformer.py --iters=1000 --seeds=5 --block_size=128   # GPU scale
    python train.py --variant=complexformer       # train one CMHA model
"""
import dataclasses
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

import train

# -----------------------------------------------------------------------------
# CMHA: the position step of attention, replacing train.RoPE in each block


class CMHARotation(nn.Module):
    """q -> r e^{i(delta phi + b + m omega)}, k -> r e^{i(delta phi + n omega)}, per head and frequency."""

    def __init__(self, n_head, head_dim, init="rope", generator=None):
        super().__init__()
        half = head_dim // 2
        if init == "rope":
            delta = torch.ones(n_head, half)
        else:  # the authors' random start
            delta = torch.randn(n_head, half, generator=generator) * (head_dim / 2) ** -0.5
        self.delta = nn.Parameter(delta)                    # (nh, D/2)
        self.b = nn.Parameter(torch.zeros(n_head, half))    # (nh, D/2)
        self.delta.no_weight_decay = self.b.no_weight_decay = True  # decay would pull delta from 1 to 0

    def euler(self, x, with_bias):
        """(re, im) -> r (cos a, sin a) with a = delta phi (+ b): the rotated pair before positions."""
        re, im = x.unflatten(-1, (-1, 2)).unbind(-1)        # (B, T, nh, D/2) each: adjacent pairs, as in train.py
        # Euler transform: r = |z|, phi = arg z (atan2's branch cut on the negative real axis)
        r, phi = torch.hypot(re, im), torch.atan2(im, re)
        # adaptive angle: delta_hj phi (+ b_hj); delta and b are (nh, D/2)
        angle = self.delta.to(x.dtype) * phi + (self.b.to(x.dtype) if with_bias else 0.0)
        return torch.stack([r * torch.cos(angle), r * torch.sin(angle)], dim=-1).flatten(-2)

    def forward(self, q, k, cos, sin):
        # then the positional rotation m omega_j / n omega_j with the shared GPT's own RoPE tables
        return (train.apply_rope(self.euler(q, with_bias=True), cos, sin),
                train.apply_rope(self.euler(k, with_bias=False), cos, sin))


def pairwise_scores(q, k, delta, b, omega):
    """Reference T x T form of the CMHA score (before the causal mask and softmax):
    s_mn = sum_j r_q r_k cos(delta_j (phi_q - phi_k) + b_j + (m - n) omega_j) / sqrt(D).
    q, k: (B, T, nh, D), adjacent (re, im) pairs; delta, b: (nh, D/2); omega: (D/2,). Returns (B, nh, T, T)."""
    T, D = q.size(1), q.size(-1)
    (qr, qi), (kr, ki) = (x.transpose(1, 2).unflatten(-1, (-1, 2)).unbind(-1) for x in (q, k))  # (B, nh, T, D/2)
    r_q, phi_q = torch.hypot(qr, qi), torch.atan2(qi, qr)
    r_k, phi_k = torch.hypot(kr, ki), torch.atan2(ki, kr)
    m_minus_n = (torch.arange(T)[:, None] - torch.arange(T)[None, :]).to(q.dtype)  # (T, T)
    angle = (delta[:, None, None, :] * (phi_q[:, :, :, None, :] - phi_k[:, :, None, :, :])  # (B, nh, T, T, D/2)
             + b[:, None, None, :] + m_minus_n[:, :, None] * omega)
    return (r_q[:, :, :, None, :] * r_k[:, :, None, :, :] * torch.cos(angle)).sum(-1) / math.sqrt(D)


# -----------------------------------------------------------------------------
# Variant protocol: python train.py --variant=complexformer


POSITIONS = ("rope", "cmha", "cmha_authors", "none")


@dataclass
class Config(train.TrainConfig):
    positions: str = "cmha"   # rope, cmha (delta = 1, b = 0 start), cmha_authors (random delta), none

    def validate(self):
        if self.positions not in POSITIONS:
            raise train.ConfigError(f"--positions={self.positions} is not valid; choose one of: {', '.join(POSITIONS)}")


def build_model(cfg, train_data=None):
    """The shared GPT with every block's position step replaced."""
    model = train.build_baseline(cfg)
    gen = torch.Generator().manual_seed(cfg.seed + 7)
    for block in model.blocks:
        if cfg.positions in ("cmha", "cmha_authors"):
            block.attn.rotate = CMHARotation(cfg.n_head, cfg.n_embd // cfg.n_head,
                                             "rope" if cfg.positions == "cmha" else "authors", gen)
        elif cfg.positions == "none":
            block.attn.rotate = train.NoRotation()
    return model


# -----------------------------------------------------------------------------
# The experiment


@dataclass
class Experiment:
    variants: str = "rope,cmha,cmha_authors,none"  # which position steps to compare
    seeds: int = 3                 # seeds per variant
    iters: int = 100               # training steps per run (from scratch)
    block_size: int = 64           # training context; evaluated again at 2x and 4x
    batch_size: int = 8
    eval_batches: int = 8          # validation batches at the training context (x2 at 2x, x4 at 4x)
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dataset: str = "shakespeare"   # or a path to a .txt file
    data_dir: str = "out/data"
    out_dir: str = "out/complexformer"


def run_experiment(exp):
    variants = exp.variants.split(",")
    rows = []
    threads = 0
    for variant in variants:
        for seed in range(exp.seeds):
            print(f"\n=== {variant}, seed {seed}: {exp.iters} steps from scratch", flush=True)
            cfg = Config(positions=variant, seed=seed, max_iters=exp.iters, block_size=exp.block_size,
                         n_layer=exp.n_layer, n_head=exp.n_head, n_embd=exp.n_embd, dataset=exp.dataset,
                         data_dir=exp.data_dir,
                         batch_size=exp.batch_size, warmup_iters=max(1, exp.iters // 10),
                         eval_interval=max(1, exp.iters // 2), eval_iters=10, log_interval=max(1, exp.iters // 4),
                         ckpt_interval=exp.iters, sample_tokens=0, num_threads=threads, variant="complexformer",
                         out_dir=str(Path(exp.out_dir) / f"{variant}_seed{seed}"))
            summary = train.train(cfg, build_model)
            threads = torch.get_num_threads()  # measured once, by the first run
            model = summary["model"]
            val_data = train.load_tokens(train.prepare_data(cfg.dataset, cfg.data_dir), "val", 4 * exp.block_size + 2)
            row = {"variant": variant, "seed": seed, "params": model.param_counts()["total"],
                   "curve": summary["history"]["val"]}
            for factor in (1, 2, 4):
                row[f"val_loss_{factor}x"] = train.val_loss(model, val_data, factor * exp.block_size,
                                                            batch_size=max(1, exp.batch_size // factor),
                                                            n_batches=exp.eval_batches * factor)
            rows.append(row)
    return rows


def report(rows, exp):
    out = Path(exp.out_dir)
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    stats = {}
    for v in variants:
        rs = [r for r in rows if r["variant"] == v]
        stats[v] = {"params": rs[0]["params"], "n_seeds": len(rs)}
        for f in (1, 2, 4):
            losses = [r[f"val_loss_{f}x"] for r in rs]
            stats[v][f"{f}x"] = (float(np.mean(losses)), float(np.std(losses)))
    lines = [f"| positions | params | val loss @{exp.block_size} | @{2 * exp.block_size} (2x) | @{4 * exp.block_size} (4x) |",
             "|---|---|---|---|---|"]
    for v in variants:
        s = stats[v]
        cells = " | ".join(f"{s[f'{f}x'][0]:.3f} ± {s[f'{f}x'][1]:.3f}" for f in (1, 2, 4))
        lines.append(f"| {v} | {s['params']:,} | {cells} |")
    lines.append(f"\nmean ± std over {stats[variants[0]]['n_seeds']} seeds, {exp.iters} steps of "
                 f"{exp.batch_size} x {exp.block_size} tokens each")
    table = "\n".join(lines)
    train.write_results(out, table, {"config": dataclasses.asdict(exp), "runs": rows, "summary": stats})

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=100)
    for i, v in enumerate(variants):
        color = f"C{i}"
        for r in (r for r in rows if r["variant"] == v):
            ax1.plot(*zip(*r["curve"]), color=color, alpha=0.7, label=v if r["seed"] == 0 else None)
        means = [stats[v][f"{f}x"][0] for f in (1, 2, 4)]
        stds = [stats[v][f"{f}x"][1] for f in (1, 2, 4)]
        ax2.errorbar([1, 2, 4], means, yerr=stds, color=color, marker="o", capsize=3, label=v)
    ax1.set_xlabel("iteration")
    ax1.set_ylabel("val loss (nats)")
    ax1.set_title("training curves")
    ax2.set_xscale("log", base=2)
    ax2.set_xlabel("evaluation context / training context")
    ax2.set_title("length extrapolation")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    train.save_figure(fig, out / "complexformer.png")
    print("\n" + table + f"\n\nwrote {out / 'results.json'}, {out / 'results.md'}, {out / 'complexformer.png'}")
    return stats


def bench():
    """cmha_step_ratio: a CMHA training step over a RoPE step at the yardstick config (65 symbols, so
    the attention's share of the step is visible rather than hidden under a 50k output layer)."""
    import bench as bench_module
    times = {}
    for positions in ("rope", "cmha"):
        torch.manual_seed(0)
        cfg = Config(positions=positions, n_layer=4, n_head=4, n_embd=128, block_size=64)
        model = build_model(cfg)
        model.lm_head = nn.Linear(128, 65, bias=False)
        model.wte = nn.Embedding(65, 128)
        times[positions] = bench_module.train_step_seconds(model, 65)
    return {"cmha_step_ms": 1e3 * times["cmha"], "rope_step_ms": 1e3 * times["rope"],
            "cmha_step_ratio": times["cmha"] / times["rope"]}


def run(argv):
    try:
        exp = train.parse_args(argv, Experiment, __doc__)
        if any(v not in POSITIONS for v in exp.variants.split(",")):
            raise ValueError(f"--variants takes a comma-separated subset of: {', '.join(POSITIONS)}")
        if min(exp.seeds, exp.iters, exp.block_size, exp.batch_size, exp.eval_batches) < 1:
            raise ValueError("--seeds, --iters, --block_size, --batch_size and --eval_batches must be >= 1")
    except (train.ConfigError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    report(run_experiment(exp), exp)
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
