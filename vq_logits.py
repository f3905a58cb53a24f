"""
VQ-Logits, arXiv:2505.10202, on the shared small GPT: a codebook output layer against the full softmax.

The idea. The output layer is a V x d matrix W whose logits h W^T cost O(V d) per position. VQ-Logits
replaces W with a codebook C of K << V vectors and a fixed map M from each token to one code:
L_code = h C^T (K logits), logits[v] = L_code[M(v)]. The paper (abstract) claims up to 99% fewer
output-layer parameters, 6x faster logit computation and only +4% perplexity on WikiText-103 and C4. Its
code fixes M before training (k-means over output embeddings, random (their default), or contiguous
blocks) and trains C by plain backprop.

The price of a map (our derivation). Tokens sharing a code get equal probabilities. With c = M(y) and n_c
the size of code c, the best codebook head predicts the code and spreads it evenly over its members, so
its best loss rises over the full softmax's by  E[log n_c] - H(y | c, x)  >=  E[log n_c] - H(y | c) (the
floor, from counts: a lower bound). Two estimates, no training: the floor with p(y | c) counted on the
training split and evaluated on validation text (block-bootstrap interval); and the trained full model
projected onto the map, q(v | x) = p(M(v) | x) / n_M(v), whose validation loss minus the model's own is
the rise at that model's code probabilities. Both depend on the corpus (these plays use a small part of
the 50,257 ids): they do not transfer to WikiText-103 or C4 as they are.

The experiment. Every arm continues the baseline for the same steps, seeds (batches) and learning rate:
the reference is the baseline's own head (tied to the input embedding, as the model was trained); each
map's codebook starts from the mean of its member tokens' embeddings (the zero start, where the head
begins at the uniform distribution, is an ablation row). "Within +4%" is judged by lab.py's rule with the
burden of proof on the claim: supported only when the whole 95% interval of the seed-paired gap lies
below log 1.04. The control: the full head learns context, and the random map's gap exceeds the
frequency map's (as their floors say).

Ours and the paper's. The paper's: the codebook head (the `lm_head` seam); random, contiguous and k-means
maps; C trained by backprop. OURS: the frequency-balanced map (codes of equal training-token mass: the
frequency binning of class-based RNN language models, Mikolov et al., ICASSP 2011); the floor, the
projection and the member-mean start; the O(K) training loss
-log p(y) = logsumexp_j(L_code[j] + log n_j) - L_code[M(y)] (the speed claim needs it; evaluation
scatters to V, sampling is O(K)). Parameters: against an untied V x d head a codebook saves nearly all;
against the tied head our baseline has, it adds K d. Speed: the verdict times the code logits h C^T alone
against h W^T (time_heads, in the same run); the table's ms/step is the whole training step.

    python vq_logits.py --num_threads=1           # results/vq_logits.json: 3 seeds, 100 steps, 2 maps, zero start
    python vq_logits.py --quick=true              # from a 40-step baseline of its own: see QUICK_NOTE
    python vq_logits.py --steps=2000 --seeds=5    # on a GPU (used when present): nearer the optima
    python train.py --variant=vq_logits --vq_k=1024 --vq_mapping=frequency   # one model with a codebook head
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

MAPPINGS = ("kmeans", "random", "contiguous", "frequency")  # lossy maps; "identity" (K = V) is the full softmax
PAPER_PERPLEXITY_RISE = math.log(1.04)                       # the paper's +4% perplexity, in nats (0.039)

# -----------------------------------------------------------------------------
# The codebook head

class VQHead(nn.Module):
    """Codebook output layer: logits[v] = (h C^T)[M(v)].
    In a training forward (train mode, gradients on) it returns the K code logits, which `model_loss` turns
    into the O(K) loss; everywhere else (evaluation, sampling) the V token logits."""

    def __init__(self, code_of, codebook):
        super().__init__()
        self.codebook = nn.Parameter(codebook.clone())                  # C, (K, d)
        self.register_buffer("code_of", code_of.long())                 # M, (V,)
        n = torch.bincount(code_of.long(), minlength=codebook.size(0)).to(codebook.dtype)
        self.register_buffer("log_n", torch.log(n))                     # log n_j, (K,); -inf for an empty code

    def code_path(self):
        return self.training and torch.is_grad_enabled()

    def code_logits(self, h):
        # L_code = h C^T
        return h @ self.codebook.t()                                    # (..., K)

    def token_logits(self, h):
        # logits[v] = L_code[M(v)]: scatter the K code logits to the V tokens
        return self.code_logits(h).index_select(-1, self.code_of)       # (..., V)

    def forward(self, h):
        return self.code_logits(h) if self.code_path() else self.token_logits(h)

    def code_loss(self, L_code, targets):
        """Cross-entropy over V from the K code logits, O(K) per position."""
        L_code, targets = train.at_least_float32(L_code).reshape(-1, L_code.size(-1)), targets.reshape(-1)
        keep = targets != -1
        L_code, y = L_code[keep], targets[keep]
        # -log p(y) = logsumexp_j(L_code[j] + log n_j) - L_code[M(y)]
        return (torch.logsumexp(L_code + self.log_n, dim=-1) - L_code.gather(1, self.code_of[y, None])[:, 0]).mean()

    def model_loss(self, logits, targets):
        """The model's `loss_fn` seam: O(K) on code logits from a training forward, plain cross-entropy otherwise."""
        return self.code_loss(logits, targets) if self.code_path() else train.cross_entropy_loss(logits, targets)

    @torch.no_grad()
    def sample(self, h, generator=None):
        """Sample tokens in O(K) per row: a code with probability proportional to
        n_j exp(L_code[j]), then a token uniformly among the code's members."""
        if not hasattr(self, "_members"):
            order = torch.argsort(self.code_of, stable=True)           # tokens grouped by code
            counts = torch.bincount(self.code_of, minlength=self.codebook.size(0))
            self._members, self._start = order, torch.cumsum(counts, 0) - counts
        code = torch.multinomial(F.softmax(self.code_logits(h).float() + self.log_n.float(), -1), 1,
                                 generator=generator)[:, 0]
        n = torch.exp(self.log_n[code]).round().long()
        u = torch.rand(code.shape, generator=generator, device=h.device)
        return self._members[self._start[code] + (u * n).long().clamp(max=n - 1)]

# -----------------------------------------------------------------------------
# The maps M: token -> code

def kmeans(x, K, iters=15, seed=0, chunk=8192):
    """Lloyd's k-means on the rows of x (V, d); returns (assignment (V,), centroids (K, d)).
    Starts from K distinct random rows; an emptied cluster is re-seeded at the worst-fit point."""
    x = x.float()
    centroids = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:K]].clone()
    for _ in range(iters):
        nearest = [torch.cdist(x[i:i + chunk], centroids).min(dim=1) for i in range(0, len(x), chunk)]  # (chunk, K)
        assign, dist = torch.cat([m.indices for m in nearest]), torch.cat([m.values for m in nearest])
        for j in torch.nonzero(torch.bincount(assign, minlength=K) == 0).flatten().tolist():
            worst = int(dist.argmax())
            dist[worst], assign[worst] = -1.0, j
        centroids = member_means(assign, x, K)
    return assign, centroids

def member_means(code_of, vectors, K):
    """Row j: the mean of the vectors of code j's members (zeros for an empty code)."""
    sums = torch.zeros(K, vectors.size(1), dtype=vectors.dtype).index_add_(0, code_of, vectors[:len(code_of)])
    return sums / torch.bincount(code_of, minlength=K).clamp(min=1)[:, None].to(vectors.dtype)

def frequency_balanced(counts, K):
    """OURS: codes of (about) equal token mass. Tokens sorted by frequency, cut where the cumulative mass
    passes j/K; every code keeps at least one token, and tokens never seen share the last codes."""
    order = torch.argsort(counts, descending=True, stable=True)
    cumulative_before, V = (torch.cumsum(counts[order], 0) - counts[order]) / counts.sum(), len(counts)
    code_sorted, code = torch.empty(V, dtype=torch.long), 0
    for i in range(V):
        left_tokens, left_codes = V - i, K - 1 - code
        if i > 0 and code < K - 1 and (cumulative_before[i] * K >= code + 1 or left_tokens <= left_codes):
            code += 1
        code_sorted[i] = code
    return torch.empty(V, dtype=torch.long).scatter_(0, order, code_sorted)

def make_mapping(name, K, V, embeddings=None, counts=None, seed=0):
    """(code_of (V,), centroids (K, d) or None) for one of MAPPINGS, or "identity" (one code per token, K = V)."""
    if name == "identity":
        return torch.arange(V), None
    if not 1 <= K <= V:
        raise ValueError(f"K must be in [1, V={V}], got {K}")
    if name == "kmeans":
        return kmeans(embeddings[:V], K, seed=seed)
    if name == "random":  # balanced: every code gets floor(V/K) or ceil(V/K) tokens
        return torch.randperm(V, generator=torch.Generator().manual_seed(seed)) % K, None
    if name == "contiguous":
        return torch.arange(V) * K // V, None
    if name == "frequency":
        return frequency_balanced(counts[:V].double(), K), None
    raise ValueError(f"unknown mapping '{name}'; choose one of: identity, {', '.join(MAPPINGS)}")

# -----------------------------------------------------------------------------
# The price of a map: its floor, estimated on held-out text, and a trained model projected onto it

def floor_terms(code_of, train_tokens, eval_tokens, smoothing=1.0):
    """Per evaluated token: (log n_c, log p_train(y | c)), with p(y | c) counted on the training tokens
    (add-`smoothing`). Their means are E[log n_c] and -H(y | c); their sum's mean is the floor."""
    V, K = len(code_of), int(code_of.max()) + 1
    n = torch.bincount(code_of, minlength=K).double()
    token_counts = torch.bincount(torch.as_tensor(np.asarray(train_tokens, dtype=np.int64)), minlength=V).double()
    code_counts = torch.zeros(K, dtype=torch.float64).index_add_(0, code_of, token_counts[:V])
    y = torch.as_tensor(np.asarray(eval_tokens, dtype=np.int64))
    c = code_of[y]  # (N,) the code of each evaluated token
    # p_train(y | c) = (count(y) + a) / (count(c) + a n_c)
    p = (token_counts[y] + smoothing) / (code_counts[c] + smoothing * n[c])
    return torch.log(n[c]), torch.log(p)

def floor_estimate(code_of, train_tokens, eval_tokens, resamples=1000, blocks=100, seed=0):
    """The floor E[log n_c] - H(y | c) on eval_tokens, and a 95% block-bootstrap interval (contiguous blocks
    of text are resampled, since neighbouring tokens are not independent)."""
    log_n, log_p = floor_terms(code_of, train_tokens, eval_tokens)
    # floor = E[log n_c] - H(y | c),  H(y | c) estimated as the held-out cross-entropy -E log p_train(y | c)
    terms = (log_n + log_p).numpy()
    block_means = np.array([b.mean() for b in np.array_split(terms, blocks)])
    draws = np.random.default_rng(seed).integers(0, blocks, (resamples, blocks))
    low, high = np.percentile(block_means[draws].mean(axis=1), [2.5, 97.5])
    return {"floor": float(terms.mean()), "low": float(low), "high": float(high),
            "within_code_cost": float(log_n.mean()), "h_token_given_code": float(-log_p.mean())}

@torch.no_grad()
def projection_costs(model, data, block_size, code_maps, n_batches, batch_size=12):
    """OURS, training-free: what each map costs a trained full model. The model is projected onto the map,
    q(v | x) = p(M(v) | x) / n_M(v) (the code's mass, spread evenly over its members: the best a codebook head
    can do with the full model's code probabilities), and loss(q) - loss(p) is measured on train.val_loss's
    windows. code_maps: {name: code_of (V,)}; returns {name: nats}."""
    was_training, gen, device = model.training, torch.Generator().manual_seed(0), next(model.parameters()).device
    model.eval()
    totals, count = dict.fromkeys(code_maps, 0.0), 0
    for _ in range(n_batches):
        offsets = torch.randint(len(data) - block_size - 1, (batch_size,), generator=gen)
        x, y = train.get_batch(data, offsets, block_size, device)
        log_p = F.log_softmax(model(x)[0].float(), -1).flatten(0, -2).cpu()
        y, rows = y.flatten().cpu(), torch.arange(y.numel())
        p, count = log_p.exp(), count + len(y)
        for name, code_of in code_maps.items():
            K, c = int(code_of.max()) + 1, code_of[y]
            n = torch.bincount(code_of, minlength=K).float()
            code_mass = torch.zeros(len(y), K).index_add_(1, code_of, p)            # p(c | x), (N, K)
            # log p(y | x) - log q(y | x) = log n_c + log p(y | x) - log p(c | x)
            totals[name] += float((torch.log(n[c]) + log_p[rows, y] - torch.log(code_mass[rows, c])).sum())
    model.train(was_training)
    return {name: total / count for name, total in totals.items()}

# -----------------------------------------------------------------------------
# Variant protocol: python train.py --variant=vq_logits --vq_k=1024

@dataclass
class Config(train.TrainConfig):
    vq_k: int = 1024                # codebook size K (ignored by the identity map, whose K is V)
    vq_mapping: str = "random"      # identity (full softmax), kmeans (needs --init_from), random, contiguous, frequency
    vq_init: str = "mean"           # codebook start: mean of each code's member embeddings, or zeros

    def validate(self):
        if not 1 <= self.vq_k <= 50257:
            raise lab.ConfigError(f"--vq_k must be in [1, 50257], got {self.vq_k}")
        for key, allowed in (("vq_mapping", ("identity",) + MAPPINGS), ("vq_init", ("mean", "zeros"))):
            if getattr(self, key) not in allowed:
                raise lab.ConfigError(f"--{key}={getattr(self, key)} is not valid; "
                                        f"choose one of: {', '.join(allowed)}")
        if self.vq_mapping == "kmeans" and not self.init_from:
            raise lab.ConfigError("--vq_mapping=kmeans clusters a trained model's embeddings: give --init_from=CKPT")

def build_model(cfg, train_data, embeddings=None, mapping=None):
    """The shared GPT with a codebook head over its V ids (padding ids get a code too, and are never targets),
    trained with the O(K) loss, untied from the input embedding. mapping: (code_of, centroids) made already."""
    model = train.build_baseline(cfg)
    V = model.config.vocab_size
    if embeddings is None and cfg.init_from:
        embeddings = train.load_checkpoint(cfg.init_from)["model"]["wte.weight"]
    if mapping is None:
        counts = torch.from_numpy(np.bincount(np.asarray(train_data), minlength=V)) if train_data is not None else None
        mapping = make_mapping(cfg.vq_mapping, cfg.vq_k, V, embeddings, counts, cfg.seed)
    code_of, centroids = mapping
    K, source = int(code_of.max()) + 1, (embeddings if embeddings is not None else model.wte.weight).detach().float()
    # zeros: every head starts at the uniform distribution over V; mean: k-means centroids, or each code's member mean
    codebook = torch.zeros(K, source.size(1)) if cfg.vq_init == "zeros" else (
        centroids if centroids is not None else member_means(code_of, source, K))
    model.lm_head = VQHead(code_of, codebook)
    model.loss_fn = model.lm_head.model_loss
    return model

# -----------------------------------------------------------------------------
# Speed: logits, sampling, a training step

def time_heads(K=1024, V=50257, d=128, N=1024, repeats=10, sampling=True):
    """Median seconds of: full logits h W^T, code logits h C^T, code logits scattered to V, and (sampling=True)
    sampling one token per row from the full softmax versus in O(K)."""
    from bench import median_seconds
    torch.manual_seed(0)
    h, W = torch.randn(N, d), torch.randn(V, d) * 0.02
    head = VQHead(torch.randperm(V) % K, torch.randn(K, d) * 0.02)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        t = {"full_logits": median_seconds(lambda: h @ W.t(), repeats),
             "code_logits": median_seconds(lambda: head.code_logits(h), repeats),
             "scattered_logits": median_seconds(lambda: head.token_logits(h), repeats)}
        if sampling:  # multinomial over V: the slow timing, hence optional
            full_sample = lambda: torch.multinomial(F.softmax(h @ W.t(), -1), 1, generator=gen)
            t["full_sample"] = median_seconds(full_sample, repeats)
            t["code_sample"] = median_seconds(lambda: head.sample(h, generator=gen), repeats)
    return t

def bench():
    """Logit and sampling speedups (K = 1024, V = 50,257), and vq_train_step_ratio: one training step of the
    default GPT (full softmax, tied) over one of the same GPT with a K = 1024 codebook head and the O(K) loss."""
    import bench as bench_module
    t = time_heads()
    torch.manual_seed(0)
    full = train.build_baseline(train.TrainConfig())
    torch.manual_seed(0)
    codebook = build_model(Config(vq_k=1024, vq_mapping="random"), None)
    t_full, t_vq = (bench_module.train_step_seconds(m, 50257) for m in (full, codebook))
    return {"vq_logits_speedup": t["full_logits"] / t["code_logits"],
            "vq_scattered_logits_speedup": t["full_logits"] / t["scattered_logits"],
            "vq_sample_speedup": t["full_sample"] / t["code_sample"],
            "vq_train_step_ms": 1e3 * t_vq, "vq_train_step_ratio": t_full / t_vq}

# -----------------------------------------------------------------------------
# The experiment: every head from the baseline, the same steps, seeds and batches

@dataclass
class Experiment:
    maps: str = "frequency,random"       # maps trained against the full head, at K = vq_k (the rest: projected only)
    zero_start: str = "frequency"        # maps also trained from a codebook of zeros, an ablation row ("" for none)
    vq_k: int = 1024                     # codebook size K (V/49)
    seeds: int = 3                       # seeds per head: 0 .. seeds - 1 (a verdict needs 3)
    steps: int = 100                     # training steps per head, the same for every head
    learning_rate: float = 3e-3          # peak learning rate (10% warmup, cosine to a tenth), the same for every head
    eval_every: int = 25                 # validation loss of every head every this many steps (the gap curve)
    eval_batches: int = 10               # validation batches of 12 x 64 tokens per evaluation, the same windows for all
    floor_ks: str = "64,256,1024"        # K values at which every map's floor and projected cost are estimated
    bootstrap: int = 1000                # block-bootstrap resamples for the floor's 95% interval
    num_threads: int = 0                 # CPU threads (0 = torch's default); results/vq_logits.json: 1
    baseline: str = "out/baseline/ckpt.pt"  # the model every head starts from (trained first if missing)
    out_dir: str = "out/vq_logits"
    quick: bool = False                  # a one-minute run: QUICK, from a baseline of QUICK_BASELINE; flags still win
    QUICK: ClassVar[dict] = dict(seeds=1, steps=30, eval_every=10, eval_batches=4, floor_ks="64,256", bootstrap=200,
                                 baseline="out/vq_logits_quick/baseline/ckpt.pt", out_dir="out/vq_logits_quick")
    QUICK_BASELINE: ClassVar[dict] = dict(max_iters=40, warmup_iters=4, batch_size=4, eval_iters=5, sample_tokens=0,
                                          learning_rate=3e-3, min_lr=3e-4)
    QUICK_NOTE: ClassVar[str] = ("quick run: 1 seed x 30 steps per head from a 40-step baseline; the full run: 3 seeds "
                                 "x 100 from train.py's default one. One seed has no spread: nothing is judged.")

def arms(exp):
    """(arm, map, codebook start) in training order: the full head first, the maps, then the zero-start ablations."""
    return ([("full", "identity", "tied")] + [(m, m, "mean") for m in exp.maps.split(",")] +
            [(f"{m}@zeros", m, "zeros") for m in exp.zero_start.split(",") if m])

def train_head(exp, baseline, arm, seed, code_of=None):
    """One arm, continued from the baseline for exp.steps: {"arm", "seed", "K", "params", "curve", "ms_per_iter"},
    and for the full head the projected cost of every map in code_of ({name: code_of}) at its last step."""
    name, mapping, init = arm
    common = {**baseline["config"], "max_iters": exp.steps, "warmup_iters": max(1, exp.steps // 10), "seed": seed,
              "learning_rate": exp.learning_rate, "min_lr": exp.learning_rate / 10, "eval_interval": exp.eval_every,
              "eval_iters": exp.eval_batches, "ckpt_interval": exp.steps, "log_interval": max(1, exp.steps // 6),
              "init_from": str(baseline["path"]), "resume": False, "sample_tokens": 0, "num_threads": exp.num_threads,
              "out_dir": str(Path(exp.out_dir) / "runs" / f"{name}_seed{seed}")}
    print(f"\n=== {name}, seed {seed}: {exp.steps} steps from the baseline, "
          + ("its tied head" if init == "tied" else f"codebook from {init}"), flush=True)
    if init == "tied":  # the reference: the baseline's own head (tied to the input embedding), trained on
        summary = train.train(train.TrainConfig(**common))
    else:               # the same trunk and batches, the head replaced by a codebook over the map
        cfg = Config(**{**common, "variant": "vq_logits", "vq_k": exp.vq_k, "vq_mapping": mapping, "vq_init": init})
        summary = train.train(cfg, lambda c, data: build_model(c, data, mapping=(code_of[mapping], None)))
    (Path(common["out_dir"]) / "ckpt.pt").unlink(missing_ok=True)  # 30-160 MB each; the summary stays
    model = summary["model"]
    out = {"arm": name, "map": mapping, "seed": seed, "params": summary["params"], "curve": summary["history"]["val"],
           "K": model.lm_head.codebook.size(0) if init != "tied" else model.config.vocab_size,
           "ms_per_iter": summary["ms_per_iter"]}
    if init == "tied":
        out["projection"] = projection_costs(model, baseline["val_data"], model.config.block_size,
                                             {k: v for k, v in code_of.items() if "@" in k}, exp.eval_batches)
    return out

def run_experiment(exp):
    baseline = lab.load_baseline(exp.baseline, train.TrainConfig(**exp.QUICK_BASELINE) if exp.quick else None)
    train_data, val_data, embeddings = baseline["train_data"], baseline["val_data"], baseline["state"]["wte.weight"]
    V, floors, maps = embeddings.size(0), [], {}
    counts = torch.from_numpy(np.bincount(np.asarray(train_data), minlength=V))
    print("floor of each map (fitted on train, estimated on validation, 95% block bootstrap), nats", flush=True)
    for K in sorted({exp.vq_k, *(int(k) for k in exp.floor_ks.split(","))}):
        for mapping in MAPPINGS:
            code_of, _ = make_mapping(mapping, K, V, embeddings, counts)
            maps[f"{mapping}@{K}"] = code_of  # one map per name and K, the same for every seed
            f = floor_estimate(code_of, train_data, val_data, exp.bootstrap)
            floors.append({"K": K, "map": mapping, **f})
            print(f"  K={K:5d} {mapping:10s} E[log n_c] {f['within_code_cost']:.3f} - H(y|c) "
                  f"{f['h_token_given_code']:.3f} = {f['floor']:.3f} [{f['low']:.3f}, {f['high']:.3f}]", flush=True)
    code_of = {**maps, **{m: maps[f"{m}@{exp.vq_k}"] for m in MAPPINGS}}
    runs = [train_head(exp, baseline, arm, seed, code_of) for seed in range(exp.seeds) for arm in arms(exp)]
    unigram = lab.unigram_entropies(train_data, val_data, 50257)[1]
    timings = [time_heads(d=embeddings.size(1), sampling=False) for _ in range(3)]  # 3 repeats: an interval
    return runs, floors, unigram, timings

def by_seed(runs, arm, value):
    """value(run) for each seed of `arm`, in seed order (arms pair by seed: same start and batches)."""
    return [value(r) for r in sorted((r for r in runs if r["arm"] == arm), key=lambda r: r["seed"])]

def final_loss(runs, arm):
    return by_seed(runs, arm, lambda r: r["curve"][-1][1])

def gap_curves(runs, arm):
    """Per evaluation step: (step, per-seed differences val loss(arm) - val loss(full head)), paired by seed."""
    full = {r["seed"]: dict(r["curve"]) for r in runs if r["arm"] == "full"}
    curves = by_seed(runs, arm, lambda r: [v - full[r["seed"]][s] for s, v in r["curve"]])
    steps = by_seed(runs, arm, lambda r: [s for s, _ in r["curve"]])[0]
    return [(s, list(col)) for s, col in zip(steps, zip(*curves))]

def projected(runs, name):
    """The projected cost of map `name` (e.g. "random@1024"), one per seed of the trained full head."""
    return by_seed(runs, "full", lambda r: r["projection"][name])

def exact(value, n, test):
    """A number with no sampling error to speak of (a count), as a zero-width lab.Difference."""
    return lab.Difference(value, value, value, n, test)  # printed "(95% count, n=...)": no sampling to speak of

def verdicts(runs, unigram, timings, exp):
    """The control, then one verdict per claim by lab.py's rule, the burden of proof on the claim: "within +4%"
    is supported only when the whole 95% interval of the seed-paired gap lies below 0.039 nats."""
    maps, n, command = exp.maps.split(","), exp.seeds, lab.command("vq_logits", exp)
    gap = {m: gap_curves(runs, m)[-1][1] for m in maps}
    checks = [lab.condition(lab.difference(final_loss(runs, "full"), unigram, True), "below", -0.1,
                            f"the full head's val loss minus the add-one unigram model's {unigram:.3f}")]
    if {"random", "frequency"} <= set(gap):
        checks.append(lab.condition(lab.difference(gap["random"], gap["frequency"], True), "above", 0.0,
                                    "the random map's gap minus the frequency map's"))
    gate = lab.control("the full head learns context, and the gaps follow the floors", checks, n, exp.quick)
    out = []
    for m in maps:
        own = " (ours)" * (m == "frequency")
        out.append(lab.verdict(f"{m} map{own}, K = {exp.vq_k}, trained: within +4% perplexity of the full head",
                               "+4% on WikiText-103 and C4", lab.condition(
                                   lab.difference(gap[m], 0.0, True), "below", PAPER_PERPLEXITY_RISE,
                                   f"gap, {math.exp(np.mean(gap[m])) - 1:+.1%} perplexity"),
                               gate, n, command, exp.quick))
        out.append(lab.verdict(f"{m} map, K = {exp.vq_k}: the full head projected onto it, within +4%",
                               "+4% perplexity", lab.condition(lab.difference(
                                   projected(runs, f"{m}@{exp.vq_k}"), 0.0, True), "below", PAPER_PERPLEXITY_RISE,
                                   "projected cost"), gate, n, command, exp.quick))
    head = {r["arm"]: r["params"]["head"] for r in runs}
    untied = runs[0]["params"]["embedding"]  # an untied V x d head has as many as the input embedding
    saved = exact((head["full"] - head[maps[0]]) / 1e6, n, "count")
    out.append(lab.verdict("fewer output-layer parameters than the full head (the baseline's, tied)",
                           "up to 99% fewer", lab.condition(saved, "above", 0.0,
                                                            f"M saved (an untied head has {untied / 1e6:.2f}M)"),
                           gate, n, command, exp.quick))
    speedup = [t["full_logits"] / t["code_logits"] for t in timings]
    out.append(lab.verdict(f"logits 6x faster: h C^T alone against h W^T (time_heads, {len(timings)} x 10 calls)",
                           "6x faster", lab.condition(lab.difference(speedup, 6.0, True), "above", 0.0,
                                                      "speedup - 6"), gate, n, command, exp.quick))
    return out, gate

def report(runs, floors, unigram, timings, exp):
    out, names = Path(exp.out_dir), [a for a, _, _ in arms(exp)]
    verdict_list, gate = verdicts(runs, unigram, timings, exp)
    curves = {a: gap_curves(runs, a) for a in names[1:]}
    threads = exp.num_threads or torch.get_num_threads()
    lines = [f"Heads trained {exp.steps} steps from the baseline, seeds {exp.seeds}, {threads} thread(s); "
             "mean ± sample sd over seeds; gaps paired by seed", "",
             "| head | K | head params | model params | val loss | gap to full (nats) | ms/step |", "|---" * 7 + "|"]
    for a in names:
        r = next(r for r in runs if r["arm"] == a)
        cells = ["full softmax (the baseline's tied head)" if a == "full" else a, r["K"],
                 f"{r['params']['head'] / 1e6:.3f}M", f"{r['params']['total'] / 1e6:.2f}M",
                 lab.estimate(final_loss(runs, a)), "-" if a == "full" else lab.estimate(curves[a][-1][1]),
                 f"{np.median(by_seed(runs, a, lambda r: r['ms_per_iter'])):.0f}"]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    lines += ["", "The price of each map (nats): the floor from counts (a lower bound), the trained full head "
              "projected onto the map (no training), and the trained gap:", "",
              "| K | map | floor [95%] | projected cost | trained gap |", "|---" * 5 + "|"]
    for f in floors:
        trained = f["K"] == exp.vq_k and f["map"] in curves
        lines.append(f"| {f['K']} | {f['map']} | {f['floor']:.3f} [{f['low']:.3f}, {f['high']:.3f}] | "
                     f"{lab.estimate(projected(runs, f['map'] + '@' + str(f['K'])))} | "
                     f"{lab.estimate(curves[f['map']][-1][1]) if trained else '-'} |")
    lines += ["", "Gap to the full head over training (nats, mean ± sample sd):", "",
              "| step | " + " | ".join(names[1:]) + " |", "|---" * len(names) + "|"]
    lines += [f"| {s} | " + " | ".join(str(lab.estimate(curves[a][i][1])) for a in names[1:]) + " |"
              for i, (s, _) in enumerate(curves[names[1]])]
    lines += ["", "Verdicts:"] + [lab.verdict_line(v) for v in verdict_list] + [f"- control: {gate['text']}"]
    table = "\n".join(lines)
    projections = {name: projected(runs, name) for name in runs[0]["projection"]}
    lab.write_results(out, table, {"config": dataclasses.asdict(exp), "verdict": verdict_list, "runs": runs,
                                   "floors": floors, "unigram_val": unigram, "timings_s": timings})
    lab.record("vq_logits", exp, verdict_list, {"final_val_loss": {a: final_loss(runs, a) for a in names},
                                                "gap": {a: curves[a][-1][1] for a in names[1:]}, "floors": floors,
                                                "projected_cost": projections, "unigram_val": unigram,
                                                "timings_s": timings, "control": gate})
    plot(runs, floors, exp, curves, projections, out / "vq_logits.png")
    print("\n" + table + f"\n\nwrote {out / 'results.json'}, {out / 'results.md'}, {out / 'vq_logits.png'}")

def plot(runs, floors, exp, curves, projections, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 4.2), dpi=100)
    colors = dict(zip(("full",) + MAPPINGS, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for m in MAPPINGS:
        K, floor, cost = map(np.array, zip(*sorted((f["K"], f["floor"], np.mean(projections[f"{m}@{f['K']}"]))
                                                   for f in floors if f["map"] == m)))
        ax1.plot(K, cost, "o-", color=colors[m], label=f"{m}: projected")
        ax1.plot(K, floor, "x--", color=colors[m], lw=1, label=f"{m}: floor")
    ax1.set(xscale="log", xlabel="codebook size K", ylabel="nats", title="price of a map, no training")
    for a in ["full"] + list(curves):
        steps = [s for s, _ in next(r["curve"] for r in runs if r["arm"] == a)]
        vals = np.array(by_seed(runs, a, lambda r: [v for _, v in r["curve"]]))
        style = dict(color=colors[a.split("@")[0]], ls=":" if "@" in a else "-")
        ax2.plot(steps, vals.mean(0), marker="o", label=a, **style)
        if a != "full":
            ax3.plot(steps, [np.mean(d) for _, d in curves[a]], marker="o", label=f"{a}: trained gap", **style)
    ax2.set(xlabel="training step", ylabel="validation loss (nats)", title="every head from the baseline")
    for m in exp.maps.split(","):
        ax3.axhline(np.mean(projections[f"{m}@{exp.vq_k}"]), color=colors[m], ls="--", lw=1, label=f"{m}: projected")
    ax3.set(xlabel="training step", ylabel="val loss(head) - val loss(full), nats", title=f"gap, K = {exp.vq_k}")
    for ax in (ax1, ax3):
        ax.axhline(PAPER_PERPLEXITY_RISE, color="k", ls=":", lw=1, label="+4% perplexity (paper)")
        ax.set_yscale("symlog", linthresh=0.05)
    for ax in (ax1, ax2, ax3):
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    lab.save_figure(fig, path)

def run(argv):
    try:
        exp = lab.parse_args(argv, Experiment, __doc__)
        maps, ks = exp.maps.split(","), exp.floor_ks.split(",") + [str(exp.vq_k)]
        zeros = [m for m in exp.zero_start.split(",") if m]
        counts = (exp.seeds, exp.steps, exp.eval_every, exp.eval_batches, exp.bootstrap)
        if any(m not in MAPPINGS for m in maps + zeros) or len(set(maps)) < len(maps) or min(counts) < 1 or not all(
                k.isdigit() and 1 <= int(k) <= 50257 for k in ks):
            raise ValueError(f"--maps and --zero_start take distinct names from: {', '.join(MAPPINGS)}; --vq_k and "
                             "--floor_ks are in [1, 50257]; --seeds, --steps, --eval_every, --eval_batches, "
                             "--bootstrap >= 1")
    except (lab.ConfigError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    torch.set_num_threads(exp.num_threads or torch.get_num_threads())  # train.train prints the count for each run
    report(*run_experiment(exp), exp)
    if exp.quick:
        print(exp.QUICK_NOTE)
    return 0

if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
