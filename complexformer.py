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
  We initialise there by default (`--positions=cmha`); `--positions=cmha_authors` draws delta ~ N(0, s^2) with
  s = (D/2)^(-1/2), D the head size, and b = 0 (our reading of their init, "N(0, (D/2)^-1/2)").

Two things to know about the parameters.
- The branch cut. atan2 jumps from +pi to -pi as a pair crosses the negative real axis. With integer
  delta, e^{i delta phi} is continuous across the cut; with non-integer delta it is not: the score jumps
  by a rotation of 2 pi delta there, so CMHA's score is a discontinuous function of q and k along a
  half-hyperplane per frequency (and atan2's gradient blows up near r = 0). The tests keep inputs away
  from both.
- b adds nothing when delta = 1: r e^{i(phi + b)} = (re + i im) e^{ib} is a fixed rotation of each
  (re, im) pair of the query, which a learned W_q can represent by rotating its rows. b only matters
  together with delta != 1.

What is the paper's and what is ours.
- Paper (abstract) and authors' code: the Euler transform, the adaptive per-head, per-frequency angle
  delta (phi_q - phi_k) + b, a relative position term Delta(P_mn, i) in the angle, the real part as the
  score, their random start for delta.
- Ours: the causal mask (their complex path has none); the 1/sqrt(d) of the shared attention, which their
  complex path does not apply (`--cmha_scale=none` follows them by scaling the rotated query by sqrt(d));
  the delta = 1 start that makes CMHA exactly RoPE at step 0; weight decay off for delta and b; the
  adjacent-pair layout of the shared RoPE; everything in the experiment below.
- Ours: the positional term. The abstract's Delta(P_mn, i) is per head i; ours is RoPE's (m - n) omega_j, fixed,
  with the same frequencies omega_j (the shared GPT's tables) in every head and layer. Only delta_hj and b_hj,
  which act on the phase difference phi_q - phi_k and not on m - n, are per head (and per layer and frequency).

The experiment (`python complexformer.py`). Position schemes only matter once a model uses context, and
after 100 CPU steps of GPT-2 BPE at 128 wide no model did (they all sat at the unigram loss). So we
train where positions matter within a CPU budget: the same plays one token per character
(`--dataset=shakespeare_char`, 15x cheaper per token), 4 layers x 128 wide, from scratch. Variants: RoPE,
CMHA from delta = 1, CMHA from the authors' start, and no positional encoding, 3 seeds each, with a
learning-rate grid behind `--lrs` (each variant at its own best rate).
- Positive control: RoPE must beat no positional encoding (lab.py's rule: the 95% interval of the seed-paired
  difference below 0), or every verdict is inconclusive.
- Claims tested: (1) lower loss than RoPE at the training context; (2) better long context: loss per
  position on windows 4x the training length, read separately on the positions past the training length.
- What the heads learn: delta and b per layer, head and frequency, from both starts (a heat map).

    python complexformer.py                       # 3 seeds x 4 variants, < 10 min on a 2-core CPU (1 thread)
    python complexformer.py --quick=true          # 1 seed x 120 steps, about 1 min: what it cannot show, see QUICK_NOTE
    python complexformer.py --lrs=1e-3,2e-3,4e-3  # the learning-rate grid README's table comes from
    python complexformer.py --iters=3000 --seeds=5 --block_size=256 --lrs=5e-4,1e-3,2e-3   # GPU scale
    python train.py --variant=complexformer --dataset=shakespeare_char   # train one CMHA model
"""
import dataclasses
import json
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
# CMHA: the position step of attention, replacing train.RoPE in each block


class CMHARotation(nn.Module):
    """q -> r e^{i(delta phi + b + m omega)}, k -> r e^{i(delta phi + n omega)}, per head and frequency."""

    def __init__(self, n_head, head_dim, init="rope", generator=None, scale="sqrt_d"):
        super().__init__()
        half = head_dim // 2
        # the shared attention divides q.k by sqrt(D); the authors' complex path does not: undo it on q
        self.query_scale = 1.0 if scale == "sqrt_d" else math.sqrt(head_dim)
        if init == "rope":
            delta = torch.ones(n_head, half)
        else:  # the authors' random start
            delta = torch.randn(n_head, half, generator=generator) * (head_dim / 2) ** -0.5
        self.delta = nn.Parameter(delta)                    # (nh, D/2)
        self.b = nn.Parameter(torch.zeros(n_head, half))    # (nh, D/2)
        self.delta.no_weight_decay = self.b.no_weight_decay = True  # decay would pull delta from 1 to 0

    def euler(self, x, with_bias):
        """(re, im) -> r (cos a, sin a) with a = delta phi (+ b): the rotated pair before positions. Computed in at
        least float32 (bf16/fp16 inputs, e.g. under autocast, are upcast, as train.apply_rope does) and returned in
        x's dtype, so at delta = 1, b = 0 it rounds back to x and CMHA matches RoPE to the rounding of the output."""
        xf = train.at_least_float32(x)
        re, im = xf.unflatten(-1, (-1, 2)).unbind(-1)       # (B, T, nh, D/2) each: adjacent pairs, as in train.py
        # Euler transform: r = |z|, phi = arg z (atan2's branch cut on the negative real axis)
        r, phi = torch.hypot(re, im), torch.atan2(im, re)
        # adaptive angle: delta_hj phi (+ b_hj); delta and b are (nh, D/2)
        angle = self.delta.to(xf.dtype) * phi + (self.b.to(xf.dtype) if with_bias else 0.0)
        return torch.stack([r * torch.cos(angle), r * torch.sin(angle)], dim=-1).flatten(-2).type_as(x)

    def forward(self, q, k, cos, sin):
        # then the positional rotation m omega_j / n omega_j with the shared GPT's own RoPE tables
        return (train.apply_rope(self.euler(q, with_bias=True) * self.query_scale, cos, sin),
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
    positions: str = "cmha"     # rope, cmha (delta = 1, b = 0 start), cmha_authors (random delta), none
    cmha_scale: str = "sqrt_d"  # sqrt_d (ours: the shared attention's 1/sqrt(d)) or none (the authors' complex path)

    def validate(self):
        if self.positions not in POSITIONS or self.cmha_scale not in ("sqrt_d", "none"):
            raise lab.ConfigError(f"--positions={self.positions} / --cmha_scale={self.cmha_scale} is not valid; "
                                    f"choose one of: {', '.join(POSITIONS)} / sqrt_d, none")


def build_model(cfg, train_data=None):
    """The shared GPT with every block's position step replaced."""
    model = train.build_baseline(cfg)
    gen = torch.Generator().manual_seed(cfg.seed + 7)
    for block in model.blocks:
        if cfg.positions in ("cmha", "cmha_authors"):
            init = "rope" if cfg.positions == "cmha" else "authors"
            block.attn.rotate = CMHARotation(cfg.n_head, cfg.n_embd // cfg.n_head, init, gen, cfg.cmha_scale)
        elif cfg.positions == "none":
            block.attn.rotate = train.NoRotation()
    return model


# -----------------------------------------------------------------------------
# The experiment


@dataclass
class Experiment:
    variants: str = "rope,cmha,cmha_authors,none"  # which position steps to compare
    seeds: int = 3                   # seeds 0 .. seeds - 1 per variant and learning rate (a verdict needs 3)
    lrs: str = "2e-3"                # peak learning rates to try; each variant is reported at its best one
    iters: int = 500                 # training steps per run, from scratch
    block_size: int = 64             # training context; loss per position is measured out to 4x this
    batch_size: int = 12             # sequences per step
    eval_windows: int = 48           # validation windows of 4 x block_size for the per-position loss
    cmha_scale: str = "sqrt_d"       # sqrt_d (ours) or none (the authors' complex path: no 1/sqrt(d))
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dataset: str = "shakespeare_char"  # positions matter here within a CPU budget; shakespeare for GPT-2 BPE
    data_dir: str = "out/data"
    num_threads: int = 1             # README's numbers: 1 thread
    out_dir: str = "out/complexformer"
    quick: bool = False              # a one-minute version of the default run (see QUICK); flags given still win
    # --quick=true starts from these values (lab.parse_args): the same runs, smaller, in a folder of their own
    QUICK: ClassVar[dict] = dict(seeds=1, iters=120, out_dir="out/complexformer_quick")
    QUICK_NOTE: ClassVar[str] = (
        "quick run: 1 seed x 120 steps per variant. The full run trains 3 seeds x 500 steps (7 min): one seed has no "
        "spread, so the control and the verdicts are not judged, and CMHA's 0.03 nats against RoPE are not settled.")


@torch.no_grad()
def loss_per_position(model, data, length, n_windows):
    """Mean cross-entropy at each position 0 .. length-1 over fixed validation windows (seed 0)."""
    gen = torch.Generator().manual_seed(0)
    offsets = torch.randint(len(data) - length - 1, (n_windows,), generator=gen)
    x, y = train.get_batch(data, offsets, length, torch.device("cpu"))
    total = torch.zeros(length, dtype=torch.float64)
    for xb, yb in zip(x.split(8), y.split(8)):
        logits, _ = model.eval()(xb)
        total += F.cross_entropy(logits.transpose(1, 2), yb, reduction="none").double().sum(0)
    return (total / n_windows).tolist()


def run_experiment(exp):
    rows, lrs = [], [float(lr) for lr in exp.lrs.split(",")]
    runs = [(v, lr, seed) for v in exp.variants.split(",") for lr in lrs for seed in range(exp.seeds)]
    for i, (variant, lr, seed) in enumerate(runs):
        print(f"\n=== run {i + 1}/{len(runs)}: {variant}, lr {lr:g}, seed {seed}", flush=True)
        run_dir = Path(exp.out_dir) / f"{variant}_lr{lr:g}_seed{seed}"
        settings = {**dataclasses.asdict(exp), "variants": variant, "lrs": lr, "seeds": seed, "out_dir": None,
                    "quick": None, "code": lab.code_hash(train, sys.modules[__name__])}  # an edit of the code: rerun
        reusable = not exp.quick and (run_dir / "row.json").exists()  # a quick run reuses nothing: an edit must show
        if reusable and json.loads((run_dir / "row.json").read_text())["settings"] == settings:
            rows.append(json.loads((run_dir / "row.json").read_text()))  # a run of an earlier sweep: reused
            print(f"reused {run_dir / 'row.json'}: same settings, same code of train.py and complexformer.py",
                  flush=True)
            continue
        cfg = Config(positions=variant, cmha_scale=exp.cmha_scale, seed=seed, max_iters=exp.iters, learning_rate=lr,
                     min_lr=lr / 10, warmup_iters=max(1, exp.iters // 10), block_size=exp.block_size,
                     batch_size=exp.batch_size, n_layer=exp.n_layer, n_head=exp.n_head, n_embd=exp.n_embd,
                     dataset=exp.dataset, data_dir=exp.data_dir, eval_interval=max(1, exp.iters // 5), eval_iters=10,
                     log_interval=max(1, exp.iters // 5), ckpt_interval=exp.iters, sample_tokens=0,
                     num_threads=exp.num_threads, variant="complexformer", out_dir=str(run_dir))
        summary = train.train(cfg, build_model)
        model, folder = summary["model"], train.prepare_data(cfg.dataset, cfg.data_dir)
        per_position = loss_per_position(model, train.load_tokens(folder, "val", 4 * exp.block_size + 2),
                                         4 * exp.block_size, exp.eval_windows)
        row = {"variant": variant, "lr": lr, "seed": seed, "params": model.param_counts()["total"],
               "curve": summary["history"]["val"], "per_position": per_position}
        if variant.startswith("cmha"):
            row["delta"] = [b.attn.rotate.delta.tolist() for b in model.blocks]  # (layer, head, frequency)
            row["b"] = [b.attn.rotate.b.tolist() for b in model.blocks]
        train.atomic_write(run_dir / "row.json", json.dumps({**row, "settings": settings}).encode())
        rows.append(row)
    return rows


def summarise(rows, exp):
    """Per variant at its best learning rate: the per-seed loss on the training context and on the positions past
    it (lists in seed order, so that arms pair by seed), plus the ranking at every learning rate."""
    T, stats, ranking = exp.block_size, {}, {}
    ranges = {"1x": (0, T), "2x": (T, 2 * T), "4x": (2 * T, 4 * T)}
    for v in dict.fromkeys(r["variant"] for r in rows):
        by_lr = {}
        for lr in dict.fromkeys(r["lr"] for r in rows):
            rs = sorted((r for r in rows if r["variant"] == v and r["lr"] == lr), key=lambda r: r["seed"])
            by_lr[lr] = {k: [float(np.mean(r["per_position"][a:b])) for r in rs] for k, (a, b) in ranges.items()}
        best = min(by_lr, key=lambda lr: np.mean(by_lr[lr]["1x"]))
        stats[v] = {"lr": best, "params": next(r["params"] for r in rows if r["variant"] == v), **by_lr[best]}
        for lr, d in by_lr.items():
            ranking.setdefault(lr, {})[v] = float(np.mean(d["1x"]))
    ranking = {lr: sorted(d, key=d.get) for lr, d in ranking.items()}
    return stats, ranking


CLAIMS = (("lower loss than RoPE within the training context", "1x", "lower perplexity than RoPE"),
          ("lower loss than RoPE past it (positions 128-255)", "4x", "better long-context coherence"))


def verdicts(stats, exp):
    """lab's rule on seed-paired differences: the control (RoPE below no positions), then CMHA minus RoPE per claim,
    supported when the whole 95% interval lies below 0."""
    command, n = lab.command("complexformer", exp), exp.seeds
    if "rope" not in stats or "none" not in stats:
        return [], {"passed": False, "text": "not run: the positive control needs the rope and none variants"}
    gate = lab.control("RoPE minus no positions, loss at the training context", lab.condition(
        lab.difference(stats["rope"]["1x"], stats["none"]["1x"], paired=True), "below"), n, exp.quick)
    out = []
    for claim, key, paper in CLAIMS:
        for v in (v for v in ("cmha_authors", "cmha") if v in stats):
            gap = lab.condition(lab.difference(stats[v][key], stats["rope"][key], paired=True), "below", 0.0,
                                f"{v} {lab.estimate(stats[v][key])} minus RoPE {lab.estimate(stats['rope'][key])}")
            out.append(lab.verdict(f"{v}: {claim}", paper, gap, gate, n, command, exp.quick))
    return out, gate


def report(rows, exp):
    out, T = Path(exp.out_dir), exp.block_size
    stats, ranking = summarise(rows, exp)
    verdict, gate = verdicts(stats, exp)
    lines = [f"| positions | params | best lr | loss, positions < {T} | {T}-{2 * T} (2x) | {2 * T}-{4 * T} (4x) |",
             "|---|---|---|---|---|---|"]
    for v, s in stats.items():
        lines.append(f"| {v} | {s['params']:,} | {s['lr']:g} | " + " | ".join(str(lab.estimate(s[k]))
                                                                        for k in ("1x", "2x", "4x")) + " |")
    lines.append(f"\nnats per character, mean ± sample sd over {exp.seeds} seeds, {exp.iters} steps of "
                 f"{exp.batch_size} x {T}; ranking at each lr: " +
                 "; ".join(f"{lr:g}: {' < '.join(r)}" for lr, r in ranking.items()))
    lines += ["", f"positive control: {gate['text']}"] + [lab.verdict_line(d) for d in verdict]
    table = "\n".join(lines)
    lab.write_results(out, table, {"config": dataclasses.asdict(exp), "runs": rows, "summary": stats,
                                   "ranking": ranking, "verdict": verdict})
    lab.record("complexformer", exp, verdict, {"stats": stats, "control": gate})
    plot(rows, stats, exp, out)
    print("\n" + table + f"\n\nwrote {out / 'results.json'}, {out / 'results.md'}, {out / 'complexformer.png'}")
    return stats


def plot(rows, stats, exp, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8), dpi=100)
    for i, (v, s) in enumerate(stats.items()):
        rs = [r for r in rows if r["variant"] == v and r["lr"] == s["lr"]]
        for r in rs:
            ax1.plot(*zip(*r["curve"]), color=f"C{i}", alpha=0.6, label=v if r is rs[0] else None)
        curve = np.convolve(np.mean([r["per_position"] for r in rs], 0), np.ones(8) / 8, mode="valid")
        ax2.plot(np.arange(len(curve)) + 4, curve, color=f"C{i}", label=v)
    ax2.axvline(exp.block_size, color="k", ls=":", lw=1)
    ax1.set(xlabel="iteration", ylabel="val loss (nats/char)", title="training curves (best lr)")
    ax2.set(xlabel="position in a window of 4x the training length", ylabel="loss (8-position mean)",
            title="length extrapolation (dotted: training length)")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    lab.save_figure(fig, out / "complexformer.png")
    cmha = [r for r in rows if r["variant"].startswith("cmha") and r["seed"] == 0 and r["lr"] == stats[r["variant"]]["lr"]]
    if cmha:
        fig, axes = plt.subplots(2, len(cmha), figsize=(4.5 * len(cmha), 6), dpi=100, squeeze=False)
        for j, r in enumerate(cmha):
            for i, key in enumerate(("delta", "b")):
                grid = np.array(r[key]).reshape(-1, np.array(r[key]).shape[-1])  # (layer x head, frequency)
                image = axes[i, j].imshow(grid, aspect="auto", cmap="coolwarm", vmin=-2 if key == "delta" else -1,
                                          vmax=2 if key == "delta" else 1)
                axes[i, j].set(title=f"{r['variant']}: learned {key}", xlabel="frequency j (fast to slow)",
                               ylabel="layer x head")
                fig.colorbar(image, ax=axes[i, j])
        lab.save_figure(fig, out / "complexformer_heads.png")


def bench():
    """cmha_step_ratio: a CMHA training step over a RoPE step at the yardstick config (65 symbols, so
    the attention's share of the step is visible rather than hidden under a 50k output layer)."""
    import bench as bench_module
    times = {}
    for positions in ("rope", "cmha"):
        torch.manual_seed(0)
        model = build_model(Config(positions=positions, vocab_size=65, n_layer=4, n_head=4, n_embd=128, block_size=64))
        times[positions] = bench_module.train_step_seconds(model, 65)
    return {"cmha_step_ms": 1e3 * times["cmha"], "rope_step_ms": 1e3 * times["rope"],
            "cmha_step_ratio": times["cmha"] / times["rope"]}


def run(argv):
    try:
        exp = lab.parse_args(argv, Experiment, __doc__)
        if any(v not in POSITIONS for v in exp.variants.split(",")) or exp.cmha_scale not in ("sqrt_d", "none"):
            raise ValueError(f"--variants takes a comma-separated subset of: {', '.join(POSITIONS)}; "
                             f"--cmha_scale is sqrt_d or none")
        if any(float(lr) <= 0 for lr in exp.lrs.split(",")):
            raise ValueError("--lrs takes comma-separated positive learning rates")
        if min(exp.seeds, exp.iters, exp.block_size, exp.batch_size, exp.eval_windows) < 1:
            raise ValueError("--seeds, --iters, --block_size, --batch_size and --eval_windows must be >= 1")
    except (lab.ConfigError, ValueError) as e:
        print(f"error: {e}" if "could not convert" not in str(e) else "error: --lrs takes numbers, e.g. 1e-3,2e-3",
              file=sys.stderr)
        return 2
    report(run_experiment(exp), exp)
    if exp.quick:
        print(exp.QUICK_NOTE)
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
