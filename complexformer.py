"""
ComplexFormer: Complex Multi-Head Attention (CMHA) against RoPE, arXiv:2505.10222, on the shared GPT.

What the paper says. ComplexFormer's abstract proposes Complex Multi-Head Attention: each head maps its real query/key
projections to complex vectors in polar form (an "Euler transform") and scores them with a per-head adaptive
differential rotation exp[i(Adapt(AS_mn, i) + Delta(P_mn, i))], claiming lower perplexity and better long-context
coherence than RoPE Transformers. The arXiv paper was withdrawn (27 May 2025); only the abstract remains. The best
evidence of what CMHA computes is the authors' public code, which is EulerFormer (SIGIR 2024) applied per head; that
is the reading we implement. (Every public version of that code also lacks a causal mask on the complex path, so its
reported perplexities cannot be trusted; ours is causal, through the shared attention.)

What CMHA computes (our implementation of that reading). Per head h and frequency pair j, read q and k as adjacent
(re, im) pairs, the same layout as train.py's RoPE, and
- Euler transform, no parameters: r = hypot(re, im), phi = atan2(im, re);
- adaptive differential rotation: the score between positions m and n is

      s_mn = Re( sum_j r_q r_k exp(i( delta_hj (phi_q - phi_k) + b_hj + (m - n) omega_j )) ) / sqrt(d)

  with learnable per-head, per-frequency delta and b, and omega_j the RoPE frequencies of the shared GPT.
- Factorised: rotate q to r e^{i(delta phi + b + m omega)} and k to r e^{i(delta phi + n omega)}; their real dot
  product is s_mn, so the shared causal attention (F.scaled_dot_product_attention, 1/sqrt(d)) runs unchanged.
  `pairwise_scores` keeps the direct T x T form as the reference in the tests.
- With delta = 1 and b = 0 the rotated q is exactly RoPE's: CMHA reduces to the baseline (a test). We initialise
  there by default (`--positions=cmha`); `--positions=cmha_authors` draws delta ~ N(0, s^2) with s = (D/2)^(-1/2),
  D the head size, and b = 0 (our reading of their init, "N(0, (D/2)^-1/2)").

Two things to know about the parameters.
- The branch cut. atan2 jumps from +pi to -pi as a pair crosses the negative real axis. With integer delta,
  e^{i delta phi} is continuous across the cut; with non-integer delta it is not: the score jumps by a rotation of
  2 pi delta there, so CMHA's score is a discontinuous function of q and k along a half-hyperplane per frequency (and
  atan2's gradient blows up near r = 0). The tests keep inputs away from both.
- b adds nothing when delta = 1: r e^{i(phi + b)} = (re + i im) e^{ib} is a fixed rotation of each (re, im) pair of
  the query, which a learned W_q can represent by rotating its rows. b only matters together with delta != 1.

What is the paper's and what is ours.
- Paper (abstract) and authors' code: the Euler transform, the adaptive per-head, per-frequency angle
  delta (phi_q - phi_k) + b, a relative position term Delta(P_mn, i) in the angle, the real part, their delta start.
- Ours: the causal mask (their complex path has none); the 1/sqrt(d) of the shared attention, which their complex
  path does not apply (`--cmha_scale=none` follows them by scaling the rotated query by sqrt(d)); the delta = 1
  start that makes CMHA exactly RoPE at step 0; weight decay off for delta and b; the adjacent-pair layout of the
  shared RoPE; everything in the experiment below.
- Ours: the positional term. The abstract's Delta(P_mn, i) is per head i; ours is RoPE's (m - n) omega_j, fixed,
  with the same frequencies omega_j (the shared GPT's tables) in every head and layer. Only delta_hj and b_hj, which
  act on the phase difference phi_q - phi_k and not on m - n, are per head (and per layer and frequency).

The experiment. Positions only matter once a model uses context; after 100 CPU steps of GPT-2 BPE at 128 wide no model
did. So: the same plays one token per character (`--dataset=shakespeare_char`), 4 layers x 128 wide, 500 steps from
scratch. Arms: RoPE; CMHA from the authors' start; that start frozen (`cmha_authors_fixed`: delta and b are buffers, b
stays 0, so the arm learns nothing CMHA adds); delta = 0 frozen (`cmha_delta0`, magnitudes and positions only: the
score is sum_j r_q r_k cos((m - n) omega_j) / sqrt(d)); CMHA from delta = 1 (`cmha`); no positions (`none`). At a seed
every arm draws the same weights and batches, and both authors' arms the same delta: arms pair by seed.
- (a) The search: every arm at every `--lrs` rate; each arm's best rate (lowest mean loss at the training context)
  is printed, flagged when it sits at the grid's edge, and copied into `arm_lrs`. It is run for the headline pair;
  the frozen arms take the authors' rate (an ablation at one rate: only whether delta and b train differs).
- (b) The default run: each arm at its rate from (a); 5 seeds for RoPE and the authors' start (the headline pair),
  3 for the others (`--arm_seeds`), to fit 10 minutes of one CPU thread. Seeds 0-1 are the search's rows, reused
  (same settings, same training code): the rates were picked on them.
- Positive control: RoPE beats no positions (lab.py's rule on the seed-paired difference), or no verdict is judged.
  Claims: (1) lower loss than RoPE at the training context; (2) on positions 2x-4x of windows 4x the training length;
  (3) the gain is the start: the frozen start matches the trained arm (paired interval within `--match_margin`) and
  beats RoPE; (4) delta = 0 matches the authors' arm. Plus heat maps of delta and b.

    python complexformer.py --lrs=2e-3,4e-3,8e-3 --seeds=2 --variants=rope,cmha_authors   # (a) 12 runs
    python complexformer.py                       # (b) 19 runs at the rates from (a), 1 thread
    python complexformer.py --quick=true          # 1 seed x 120 steps: what it cannot show, see QUICK_NOTE
    python complexformer.py --iters=3000 --block_size=256 --lrs=5e-4,1e-3,2e-3 --seeds=2   # (a) at GPU scale
    python train.py --variant=complexformer --dataset=shakespeare_char   # train one CMHA model
"""
import dataclasses, hashlib, inspect, json, math, sys, time
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
    """q -> r e^{i(delta phi + b + m omega)}, k -> r e^{i(delta phi + n omega)}, per head and frequency.
    init: rope (delta = 1), authors (delta ~ N(0, 1/(D/2))) or zero (delta = 0); b starts at 0. trainable=False keeps
    delta and b as buffers, frozen at their start (the optimizer never sees them)."""

    def __init__(self, n_head, head_dim, init="rope", generator=None, scale="sqrt_d", trainable=True):
        super().__init__()
        half = head_dim // 2
        # the shared attention divides q.k by sqrt(D); the authors' complex path does not: undo it on q
        self.query_scale = 1.0 if scale == "sqrt_d" else math.sqrt(head_dim)
        if init in ("rope", "zero"):
            delta = torch.full((n_head, half), 1.0 if init == "rope" else 0.0)
        else:  # the authors' random start
            delta = torch.randn(n_head, half, generator=generator) * (head_dim / 2) ** -0.5
        b = torch.zeros(n_head, half)
        if trainable:
            self.delta, self.b = nn.Parameter(delta), nn.Parameter(b)  # (nh, D/2) each
            self.delta.no_weight_decay = self.b.no_weight_decay = True  # decay would pull delta from 1 to 0
        else:
            self.register_buffer("delta", delta)  # (nh, D/2), saved with the model, never trained
            self.register_buffer("b", b)

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


# CMHA arms: (start of delta, delta and b trained); b starts at 0 in each
CMHA_ARMS = {"cmha": ("rope", True), "cmha_authors": ("authors", True),
             "cmha_authors_fixed": ("authors", False),  # the authors' start, frozen: delta and b never trained
             "cmha_delta0": ("zero", False)}            # delta = 0, b = 0, frozen: s = r_q r_k cos((m - n) omega)
POSITIONS = ("rope", *CMHA_ARMS, "none")


@dataclass
class Config(train.TrainConfig):
    positions: str = "cmha"     # rope, none or a CMHA arm: cmha (delta = 1 start), cmha_authors (random delta), ...
    cmha_scale: str = "sqrt_d"  # sqrt_d (ours: the shared attention's 1/sqrt(d)) or none (the authors' complex path)

    def validate(self):
        if self.positions not in POSITIONS or self.cmha_scale not in ("sqrt_d", "none"):
            raise lab.ConfigError(f"--positions={self.positions} / --cmha_scale={self.cmha_scale} is not valid; "
                                    f"choose one of: {', '.join(POSITIONS)} / sqrt_d, none")


def build_model(cfg, train_data=None):
    """The shared GPT with every block's position step replaced. The random start is drawn from seed + 7, so
    cmha_authors and cmha_authors_fixed start from the same delta (and the same weights) at the same seed."""
    model = train.build_baseline(cfg)
    gen = torch.Generator().manual_seed(cfg.seed + 7)
    for block in model.blocks:
        if cfg.positions in CMHA_ARMS:
            init, trainable = CMHA_ARMS[cfg.positions]
            block.attn.rotate = CMHARotation(cfg.n_head, cfg.n_embd // cfg.n_head, init, gen, cfg.cmha_scale,
                                             trainable)
        elif cfg.positions == "none":
            block.attn.rotate = train.NoRotation()
    return model


# -----------------------------------------------------------------------------
# The experiment: (a) a learning-rate search, (b) the default run at each arm's rate from (a)


@dataclass
class Experiment:
    variants: str = "rope,cmha_authors,cmha_authors_fixed,cmha_delta0,none"  # the position steps compared (POSITIONS)
    seeds: int = 5                   # seeds 0 .. seeds - 1 per arm and learning rate (a verdict needs 3)
    arm_seeds: str = "cmha_authors_fixed:3,cmha_delta0:3,cmha:3,none:3"  # at most this many for arms off the headline
    lrs: str = ""                    # (a) a grid: every arm at each rate, its best one reported; empty: arm_lrs
    # (b) each arm's peak learning rate: rope's and cmha_authors' from command (a) in the docstring; the frozen arms
    # at cmha_authors' rate; none's from the earlier 1e-3, 2e-3, 4e-3 grid; cmha at RoPE's (it starts as RoPE)
    arm_lrs: str = "rope:4e-3,cmha_authors:4e-3,cmha_authors_fixed:4e-3,cmha_delta0:4e-3,cmha:4e-3,none:2e-3"  # per arm
    match_margin: float = 0.01       # "matches": the 95% interval of the paired difference within ± this (nats)
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
    num_threads: int = 1             # CPU threads (results/complexformer.json: 1)
    out_dir: str = "out/complexformer"
    quick: bool = False              # a one-minute version of the default run (see QUICK); flags given still win
    # --quick=true starts from these values (lab.parse_args): the same runs, smaller, in a folder of their own
    # the quick run keeps the second edition's four arms at one rate (WORKSHOP C1 reads cmha against cmha_authors)
    QUICK: ClassVar[dict] = dict(seeds=1, iters=120, variants="rope,cmha,cmha_authors,none",
                                 arm_lrs="rope:2e-3,cmha:2e-3,cmha_authors:2e-3,none:2e-3",
                                 out_dir="out/complexformer_quick")
    QUICK_NOTE: ClassVar[str] = "quick run: 1 seed x 120 steps per arm: no spread, so no control and no verdicts"


# the fields of Experiment that change one run (a row is reused only when these, its arm, rate, seed and code match)
RUN_KEYS = tuple(f.name for f in dataclasses.fields(Experiment) if f.name not in (
    "variants", "seeds", "arm_seeds", "lrs", "arm_lrs", "match_margin", "out_dir", "quick"))


def arm_map(text, what):
    """'rope:4e-3,none:2e-3' -> {"rope": 0.004, "none": 0.002}; arms must be known, values positive."""
    pairs = [item.partition(":") for item in text.split(",") if item]
    if any(not sep or arm not in POSITIONS for arm, sep, _ in pairs):
        raise ValueError(f"--{what} takes arm:value pairs, arms among {', '.join(POSITIONS)}; got '{text}'")
    out = {arm: float(value) for arm, _, value in pairs}
    if any(not 0 < v < math.inf for v in out.values()):
        raise ValueError(f"--{what} takes positive values, got '{text}'")
    return out


def planned_runs(exp):
    """(arm, lr, seed) per run: (a) each arm at every --lrs rate, (b) at its --arm_lrs rate; --arm_seeds caps."""
    rates, caps = arm_map(exp.arm_lrs, "arm_lrs"), arm_map(exp.arm_seeds, "arm_seeds")
    grid = [float(lr) for lr in exp.lrs.split(",")] if exp.lrs else None
    return [(v, lr, seed) for v in exp.variants.split(",") for lr in (grid or [rates[v]])
            for seed in range(min(exp.seeds, int(caps.get(v, exp.seeds))))]


def training_code():
    """A hash of the code a run depends on: train.py and this file's model and training (not the report)."""
    source = repr(CMHA_ARMS) + "".join(inspect.getsource(f) for f in (CMHARotation, Config, build_model,
                                                                       loss_per_position, train_one))
    return lab.code_hash(train) + hashlib.sha256(source.encode()).hexdigest()[:12]


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


def train_one(exp, variant, lr, seed, run_dir):
    """One arm at one rate and seed, from scratch: its row (losses per position out to 4x the training length)."""
    cpu = time.process_time()
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
    if variant in CMHA_ARMS:
        row["delta"] = [b.attn.rotate.delta.tolist() for b in model.blocks]  # (layer, head, frequency)
        row["b"] = [b.attn.rotate.b.tolist() for b in model.blocks]
    return {**row, "cpu_seconds": time.process_time() - cpu}


def run_experiment(exp):
    rows, runs, code = [], planned_runs(exp), training_code()
    for i, (variant, lr, seed) in enumerate(runs):
        print(f"\n=== run {i + 1}/{len(runs)}: {variant}, lr {lr:g}, seed {seed}", flush=True)
        run_dir = Path(exp.out_dir) / f"{variant}_lr{lr:g}_seed{seed}"
        settings = {**{k: getattr(exp, k) for k in RUN_KEYS}, "variant": variant, "lr": lr, "seed": seed,
                    "code": code}  # an edit of the training code: rerun; a search's rows serve the default run
        earlier = not exp.quick and (run_dir / "row.json").exists()  # a quick run reuses nothing: an edit must show
        if earlier and (row := json.loads((run_dir / "row.json").read_text()))["settings"] == settings:
            rows.append(row)  # a run of an earlier sweep: reused
            print(f"reused {run_dir / 'row.json'}: same settings, same training code", flush=True)
            continue
        row = train_one(exp, variant, lr, seed, run_dir)
        train.atomic_write(run_dir / "row.json", json.dumps({**row, "settings": settings}).encode())
        rows.append(row)
    return rows


def summarise(rows, exp):
    """Per arm at its best rate (lowest mean loss at the training context): seeds and losses in seed order, the mean at
    each rate, `edge` when it ran at 2+ rates and the best is the lowest or highest (the grid does not bracket it)."""
    T, stats = exp.block_size, {}
    ranges = {"1x": (0, T), "2x": (T, 2 * T), "4x": (2 * T, 4 * T)}
    for v in dict.fromkeys(r["variant"] for r in rows):
        by_lr = {}
        for lr in sorted({r["lr"] for r in rows if r["variant"] == v}):
            rs = sorted((r for r in rows if r["variant"] == v and r["lr"] == lr), key=lambda r: r["seed"])
            by_lr[lr] = {"seeds": [r["seed"] for r in rs],
                         **{k: [float(np.mean(r["per_position"][a:b])) for r in rs] for k, (a, b) in ranges.items()}}
        means = {lr: float(np.mean(d["1x"])) for lr, d in by_lr.items()}
        best = min(means, key=means.get)
        stats[v] = {"lr": best, "edge": len(means) > 1 and best in (min(means), max(means)), "lr_means": means,
                    "params": next(r["params"] for r in rows if r["variant"] == v), **by_lr[best]}
    return stats


def paired(stats, a, b, key):
    """Arm a's and arm b's values on the seeds both ran, in seed order: the pairs of a seed-paired difference."""
    common = sorted(set(stats[a]["seeds"]) & set(stats[b]["seeds"]))
    return tuple([s[key][s["seeds"].index(seed)] for seed in common] for s in (stats[a], stats[b]))


# (arm, against, range, side, the claim, what the paper says); "within" uses --match_margin, "below" 0
PAPER = (("1x", "lower loss than RoPE within the training context", "lower perplexity than RoPE"),
         ("4x", "lower loss than RoPE past it (positions {a}-{b})", "better long-context coherence"))
CLAIMS = tuple((arm, "rope", key, "below", claim, paper) for key, claim, paper in PAPER
               for arm in ("cmha_authors", "cmha")) + (
    ("cmha_authors_fixed", "cmha_authors", "1x", "within", "delta and b frozen at the authors' start match the "
     "trained arm within the training context (if so, the gain is the start)", ""),
    ("cmha_authors_fixed", "rope", "1x", "below", "the authors' start frozen: lower loss than RoPE", ""),
    ("cmha_delta0", "cmha_authors", "1x", "within", "delta = 0 (magnitude and position only) matches the authors'", ""))


def verdicts(stats, exp):
    """lab's rule on seed-paired differences: the control (RoPE below none), then each claim whose two arms ran."""
    command = lab.command("complexformer", exp)
    if "rope" not in stats or "none" not in stats:
        return [], {"passed": False, "text": "not run: the positive control needs the rope and none variants"}
    rope, none = paired(stats, "rope", "none", "1x")
    gate = lab.control("RoPE minus no positions, loss at the training context", lab.condition(
        lab.difference(rope, none, paired=True), "below"), len(rope), exp.quick)
    out, T = [], exp.block_size
    for arm, against, key, side, claim, paper in CLAIMS:
        if arm in stats and against in stats:
            a, b = paired(stats, arm, against, key)
            gap = lab.condition(lab.difference(a, b, paired=True), side, exp.match_margin if side == "within" else 0,
                                f"{arm} {lab.estimate(a)} minus {against} {lab.estimate(b)}")
            out.append(lab.verdict(f"{arm}: {claim.format(a=2 * T, b=4 * T - 1)}", paper, gap, gate, len(a), command,
                                   exp.quick))
    return out, gate


def report(rows, exp):
    """Table, verdicts, results.{md,json}, figures: (a) in out_dir/lr_search; (b) also results/complexformer.json."""
    search, T = bool(exp.lrs), exp.block_size
    out = Path(exp.out_dir) / ("lr_search" if search else "")
    stats = summarise(rows, exp)
    grid = sorted({lr for s in stats.values() for lr in s["lr_means"]})
    verdict, gate = verdicts(stats, exp)
    lines = [f"| positions | params | lr | seeds | loss, positions < {T} | {T}-{2 * T} (2x) | {2 * T}-{4 * T} (4x) |",
             "|---|---|---|---|---|---|---|"]
    for v, s in stats.items():
        lr = f"{s['lr']:g}" + (" (grid edge: not bracketed)" if s["edge"] else "")
        lines.append(f"| {v} | {s['params']:,} | {lr} | {len(s['seeds'])} | " +
                     " | ".join(str(lab.estimate(s[k])) for k in ("1x", "2x", "4x")) + " |")
    lines.append(f"\nnats per character, mean ± sample sd over seeds, {exp.iters} steps of {exp.batch_size} x {T}; "
                 f"CPU of these runs (each row's own, reused ones too): {sum(r['cpu_seconds'] for r in rows):.0f} s")
    if search:  # the grid: mean loss at the training context per arm and rate, the best in bold
        lines += ["", "| positions | " + " | ".join(f"lr {lr:g}" for lr in grid) + " |", "|---|" + "---|" * len(grid)]
        for v, s in stats.items():
            lines.append(f"| {v} | " + " | ".join(("**{:.3f}**" if lr == s["lr"] else "{:.3f}").format(
                s["lr_means"][lr]) if lr in s["lr_means"] else "" for lr in grid) + " |")
        lines.append("best rates, for --arm_lrs: " + ",".join(f"{v}:{s['lr']:g}" for v, s in stats.items()))
        lines += [f"NOT BRACKETED: {v}'s best rate {s['lr']:g} is at the grid's edge; extend --lrs"
                  for v, s in stats.items() if s["edge"]]
    lines += ["", f"positive control: {gate['text']}"] + [lab.verdict_line(d) for d in verdict]
    table = "\n".join(lines)
    lab.write_results(out, table, {"config": dataclasses.asdict(exp), "runs": rows, "summary": stats,
                                   "verdict": verdict})
    if not search:
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
    cmha = [r for r in rows if r["variant"] in CMHA_ARMS and r["seed"] == 0 and r["lr"] == stats[r["variant"]]["lr"]]
    if cmha:
        fig, axes = plt.subplots(2, len(cmha), figsize=(4.5 * len(cmha), 6), dpi=100, squeeze=False)
        for j, r in enumerate(cmha):
            for i, key in enumerate(("delta", "b")):
                grid = np.array(r[key]).reshape(-1, np.array(r[key]).shape[-1])  # (layer x head, frequency)
                lim = 2 if key == "delta" else 1
                image = axes[i, j].imshow(grid, aspect="auto", cmap="coolwarm", vmin=-lim, vmax=lim)
                axes[i, j].set(title=f"{r['variant']}: {key}", xlabel="frequency j (fast to slow)",
                               ylabel="layer x head")
                fig.colorbar(image, ax=axes[i, j])
        lab.save_figure(fig, out / "complexformer_heads.png")


def bench():
    """cmha_step_ratio: a CMHA training step over a RoPE step at the yardstick config (65 symbols: attention shows)."""
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
        if exp.lrs and any(not 0 < float(lr) < math.inf for lr in exp.lrs.split(",")):
            raise ValueError("--lrs takes comma-separated positive learning rates")
        if not exp.lrs and (missing := set(exp.variants.split(",")) - set(arm_map(exp.arm_lrs, "arm_lrs"))):
            raise ValueError(f"--arm_lrs has no rate for {', '.join(sorted(missing))} (or give a grid with --lrs)")
        if min(exp.seeds, exp.iters, exp.block_size, exp.batch_size, exp.eval_windows) < 1 or exp.match_margin <= 0:
            raise ValueError("--seeds, --iters, --block_size, --batch_size, --eval_windows: >= 1; --match_margin > 0")
        arm_map(exp.arm_seeds, "arm_seeds")
    except (lab.ConfigError, ValueError) as e:
        print(f"error: {e}" if "could not convert" not in str(e) else "error: --lrs, --arm_lrs and --arm_seeds take "
              "numbers, e.g. 1e-3,2e-3 or rope:4e-3", file=sys.stderr)
        return 2
    report(run_experiment(exp), exp)
    if exp.quick:
        print(exp.QUICK_NOTE)
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
