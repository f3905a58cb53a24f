"""
VQ-Logits, arXiv:2505.10202, on the shared small GPT: a codebook output layer against the full softmax.

The idea. The output layer is a V x d matrix W whose logits h W^T cost O(V d) per position: for a small
model with a large vocabulary, most of the model. VQ-Logits replaces W with a codebook C of K << V
vectors and a fixed map M from each token to one code:  L_code = h C^T (K logits), logits[v] = L_code[M(v)].
The paper (abstract) claims up to 99% fewer output-layer parameters, 6x faster logit computation and
only +4% perplexity on WikiText-103 and C4. Its code fixes M before training (k-means over pretrained
output embeddings, random (their default), or contiguous blocks) and trains C by plain backprop.

What ties must cost (our derivation). Tokens sharing a code get equal probabilities. With c = M(y) and
n_c the size of code c, the best codebook head predicts the code and spreads it uniformly over its
members, so its best loss rises over the full softmax's by

    rise = E[log n_c] - H(y | c, x)  >=  E[log n_c] - H(y | c)  =: floor   (conditioning lowers entropy)

We estimate the floor with map and p(y | c) fitted on the training split, evaluated on validation text (a
held-out cross-entropy over-estimates H(y | c), so the estimate errs low), with a block-bootstrap interval.
It depends on the corpus (these plays use 18.6k of the 50,257 ids): our numbers do not transfer to
WikiText-103 or C4 as they are. For +4% (0.039 nats) to be possible there, the tokens of each code would
have to be, given the context, within 0.039 nats of equally likely. A random map at K = V/49 puts 49 ids
in a code, one of which usually dominates; codes of equal-frequency tokens have a floor near zero by
construction, and what they lose, H(y | c) - H(y | c, x), only training shows.

Ours and the paper's. The paper's: the codebook head (the `lm_head` seam); random, contiguous and k-means
maps; C trained by backprop. OURS: the frequency-balanced map (codes of equal training-token mass: the
frequency binning of class-based RNN language models, Mikolov et al., ICASSP 2011); the
floor and its estimate; the identity map (K = V), exactly the full softmax, as the reference head; the
O(K) training loss  -log p(y) = logsumexp_j(L_code[j] + log n_j) - L_code[M(y)]  (the paper's speed claim
needs it; evaluation scatters to V, sampling is O(K)). What we changed and why: every head starts alike,
from the baseline's trunk and input embedding with the head at zeros (loss log V), and trains the same
steps, seeds and batches. So every head is untied (the full one has its own 6.44M parameters); the
baseline GPT ties its head, and against that model a codebook adds K d parameters and saves none.

    python vq_logits.py --num_threads=1           # 3 seeds, 100 steps, 2 maps, 1 thread; next: README's table
    python vq_logits.py --quick=true              # about 1 min, from a 40-step baseline of its own: see QUICK_NOTE
    python vq_logits.py --num_threads=1 --seeds=3 --steps=150 --maps=frequency,kmeans,random --floor_ks=64,256,1024,4096
    python vq_logits.py --steps=2000 --seeds=5              # on a GPU (used when present): nearer the optima
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
# The floor, estimated on held-out text

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
        if sampling:  # multinomial over V: about 1.6 s per call here
            full_sample = lambda: torch.multinomial(F.softmax(h @ W.t(), -1), 1, generator=gen)  # noqa: E731
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
# The experiment: every head from the same start, the same steps and seeds

@dataclass
class Experiment:
    maps: str = "frequency,random"       # maps trained against the full head, at K = vq_k (README's: +kmeans)
    vq_k: int = 1024                     # codebook size K (V/49)
    seeds: int = 3                       # seeds per head: 0 .. seeds - 1 (a verdict needs 3)
    steps: int = 100                     # training steps per head, the same for every head (README's: 150)
    learning_rate: float = 3e-3          # peak learning rate (10% warmup, cosine to a tenth), the same for every head
    eval_every: int = 25                 # validation loss of every head every this many steps (the gap curve)
    eval_batches: int = 10               # validation batches of 12 x 64 tokens per evaluation, the same windows for all
    floor_ks: str = "64,256,1024"        # K values at which every map's floor is estimated (k-means at 4096: +50 s)
    bootstrap: int = 1000                # block-bootstrap resamples for the floor's 95% interval
    num_threads: int = 0                 # CPU threads (0 = torch's default); README's numbers: 1
    baseline: str = "out/baseline/ckpt.pt"  # the trunk every head starts from (trained first if missing)
    out_dir: str = "out/vq_logits"
    quick: bool = False                  # a one-minute run: QUICK, from a baseline of QUICK_BASELINE; flags still win
    QUICK: ClassVar[dict] = dict(seeds=1, steps=30, eval_every=10, eval_batches=4, floor_ks="64,256", bootstrap=200,
                                 baseline="out/vq_logits_quick/baseline/ckpt.pt", out_dir="out/vq_logits_quick")
    QUICK_BASELINE: ClassVar[dict] = dict(max_iters=40, warmup_iters=4, batch_size=4, eval_iters=5, sample_tokens=0,
                                          learning_rate=3e-3, min_lr=3e-4)
    QUICK_NOTE: ClassVar[str] = ("quick run: 1 seed x 30 steps per head from a 40-step baseline; the full run: 3 seeds "
                                 "x 100 from train.py's 400-step one. The random, contiguous and frequency floors are "
                                 "the full run's (no training); no head nears its optimum, so the control fails.")

def train_head(exp, baseline, mapping, seed, code_of):
    """One head on the baseline's trunk (head at zeros): {"curve": [(step, val loss)], "params", "ms_per_iter"}."""
    name = f"{mapping}_seed{seed}"
    cfg = Config(**{**baseline["config"], "max_iters": exp.steps, "warmup_iters": max(1, exp.steps // 10),
                    "learning_rate": exp.learning_rate, "min_lr": exp.learning_rate / 10, "seed": seed,
                    "eval_interval": exp.eval_every, "eval_iters": exp.eval_batches, "ckpt_interval": exp.steps,
                    "log_interval": max(1, exp.steps // 6), "init_from": str(baseline["path"]), "resume": False,
                    "sample_tokens": 0, "num_threads": exp.num_threads, "variant": "vq_logits", "vq_k": exp.vq_k,
                    "vq_mapping": mapping, "vq_init": "zeros", "out_dir": str(Path(exp.out_dir) / "runs" / name)})
    print(f"\n=== {name}: {exp.steps} steps from the baseline trunk, head at zeros", flush=True)
    summary = train.train(cfg, lambda c, data: build_model(c, data, mapping=(code_of, None)))
    (Path(cfg.out_dir) / "ckpt.pt").unlink(missing_ok=True)  # 50-160 MB each; the summary stays
    return {"map": mapping, "seed": seed, "K": summary["model"].lm_head.codebook.size(0), "params": summary["params"],
            "curve": summary["history"]["val"], "ms_per_iter": summary["ms_per_iter"]}

def run_experiment(exp):
    baseline = lab.load_baseline(exp.baseline, train.TrainConfig(**exp.QUICK_BASELINE) if exp.quick else None)
    train_data, val_data, embeddings = baseline["train_data"], baseline["val_data"], baseline["state"]["wte.weight"]
    V, maps, floors = embeddings.size(0), exp.maps.split(","), []
    trained = {"identity": torch.arange(V)}
    counts = torch.from_numpy(np.bincount(np.asarray(train_data), minlength=V))
    print("floor of each map (fitted on train, estimated on validation, 95% block bootstrap), nats", flush=True)
    for K in sorted({exp.vq_k, *(int(k) for k in exp.floor_ks.split(","))}):
        for mapping in MAPPINGS:
            code_of, _ = make_mapping(mapping, K, V, embeddings, counts)
            if K == exp.vq_k:
                trained[mapping] = code_of  # one map per name, the same for every seed
            f = floor_estimate(code_of, train_data, val_data, exp.bootstrap)
            floors.append({"K": K, "map": mapping, **f})
            print(f"  K={K:5d} {mapping:10s} E[log n_c] {f['within_code_cost']:.3f} - H(y|c) "
                  f"{f['h_token_given_code']:.3f} = {f['floor']:.3f} [{f['low']:.3f}, {f['high']:.3f}]", flush=True)
    runs = [train_head(exp, baseline, mapping, seed, trained[mapping])
            for seed in range(exp.seeds) for mapping in ["identity"] + maps]
    unigram = lab.unigram_entropies(train_data, val_data, 50257)[1]
    timings = [time_heads(d=embeddings.size(1), sampling=False) for _ in range(3)]  # 3 repeats: an interval
    return runs, floors, unigram, timings

def final_loss(runs, mapping):
    """The last validation loss of each seed's head, in seed order (heads pair by seed: same trunk and batches)."""
    return [r["curve"][-1][1] for r in sorted((r for r in runs if r["map"] == mapping), key=lambda r: r["seed"])]

def gap_curves(runs, mapping):
    """Per evaluation step: (step, per-seed differences val loss(map) - val loss(full)), paired by seed."""
    by_seed = {r["seed"]: dict(r["curve"]) for r in runs if r["map"] == "identity"}
    curves = [[dict(r["curve"])[s] - by_seed[r["seed"]][s] for s, _ in r["curve"]]
              for r in sorted((r for r in runs if r["map"] == mapping), key=lambda r: r["seed"])]
    steps = [s for s, _ in next(r["curve"] for r in runs if r["map"] == mapping)]
    return [(s, list(col)) for s, col in zip(steps, zip(*curves))]

def exact(value, n, test):
    """A number with no sampling error to speak of (a count), as a zero-width lab.Difference."""
    return lab.Difference(value, value, value, n, test)  # printed "(95% count, n=...)": no sampling to speak of

def verdicts(runs, floors, unigram, timings, exp):
    """The control, then one verdict per claim by lab.py's rule, the burden of proof on the claim: "within +4%"
    is supported only when the whole 95% interval of the seed-paired gap lies below 0.039 nats."""
    maps, n, command = exp.maps.split(","), exp.seeds, lab.command("vq_logits", exp)
    gap = {m: gap_curves(runs, m)[-1][1] for m in maps}
    floor = {f["map"]: f for f in floors if f["K"] == exp.vq_k}
    checks = [lab.condition(lab.difference(final_loss(runs, "identity"), unigram, True), "below", -0.1,
                            f"the full head's val loss minus the add-one unigram model's {unigram:.3f}")]
    if {"random", "frequency"} <= set(gap):
        checks.append(lab.condition(lab.difference(gap["random"], gap["frequency"], True), "above", 0.0,
                                    "the random map's gap minus the frequency map's"))
    gate = lab.control("the full head learns context, and the gaps follow the floors", checks, n, exp.quick)
    out = [lab.verdict(f"{m} map{' (ours)' * (m == 'frequency')}, K = {exp.vq_k}: within +4% perplexity of the full head",
                       "+4% on WikiText-103 and C4",
                       lab.condition(
                           lab.difference(gap[m], 0.0, True), "below", PAPER_PERPLEXITY_RISE,
                           f"gap, {math.exp(np.mean(gap[m])) - 1:+.1%} perplexity"), gate, n, command, exp.quick)
           for m in maps]
    out += [lab.verdict(f"{m} map, K = {exp.vq_k}: its floor (least gap at the optimum) below +4%",
                        "+4% perplexity", lab.condition(lab.Difference(
                            floor[m]["floor"], floor[m]["low"], floor[m]["high"], exp.bootstrap, "block bootstrap"),
                            "below", PAPER_PERPLEXITY_RISE, "floor"), gate, n, command, exp.quick) for m in maps]
    head = {m: next(r["params"]["head"] for r in runs if r["map"] == m) for m in ["identity"] + maps}
    out.append(lab.verdict("fewer output-layer parameters than an untied full head", "up to 99% fewer", lab.condition(
        exact(1 - head[maps[0]] / head["identity"], n, "count"), "above", 0.0,
        f"share saved: {head[maps[0]] / 1e6:.3f}M against {head['identity'] / 1e6:.3f}M; against the baseline's tied "
        f"head the codebook ADDS {head[maps[0]] / 1e6:.3f}M"), gate, n, command, exp.quick))
    speedup = [t["full_logits"] / t["code_logits"] for t in timings]
    out.append(lab.verdict(f"code logits h C^T alone 6x faster than full logits ({len(timings)} x a 10-call median)",
                           "6x faster",
                           lab.condition(lab.difference(speedup, 6.0, True), "above", 0.0, "speedup - 6"), gate, n,
                           command, exp.quick))
    return out, gate

def report(runs, floors, unigram, timings, exp):
    out, maps = Path(exp.out_dir), exp.maps.split(",")
    verdict_list, gate = verdicts(runs, floors, unigram, timings, exp)
    lines = [f"Heads trained {exp.steps} steps from the baseline trunk (head at zeros), seeds {exp.seeds}, "
             f"{exp.num_threads or torch.get_num_threads()} thread(s); mean ± sample sd over seeds; the gap is "
             "paired by seed", "",
             "| head | K | head params | model params | val loss | gap to full (nats) | floor [95%] | ms/step |",
             "|---|---|---|---|---|---|---|---|"]
    for m in ["identity"] + maps:
        r = next(r for r in runs if r["map"] == m)
        f = next((f for f in floors if f["K"] == exp.vq_k and f["map"] == m), {})
        cells = ["full softmax (untied)" if m == "identity" else m, r["K"],
                 f"{r['params']['head'] / 1e6:.3f}M", f"{r['params']['total'] / 1e6:.2f}M",
                 lab.estimate(final_loss(runs, m)),
                 "-" if m == "identity" else lab.estimate(gap_curves(runs, m)[-1][1]),
                 "{floor:.3f} [{low:.3f}, {high:.3f}]".format(**f) if f else "-",
                 f"{np.median([x['ms_per_iter'] for x in runs if x['map'] == m]):.0f}"]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    curves = {m: gap_curves(runs, m) for m in maps}
    lines += ["", "Gap to the full head over training (nats, mean ± sample sd):", "",
              "| step | " + " | ".join(maps) + " |", "|---" * (len(maps) + 1) + "|"]
    lines += [f"| {s} | " + " | ".join(str(lab.estimate(curves[m][i][1])) for m in maps) + " |"
              for i, (s, _) in enumerate(curves[maps[0]])]
    lines += ["", "Verdicts:"] + [lab.verdict_line(v) for v in verdict_list]
    lines.append(f"- control: {gate['text']}")
    table = "\n".join(lines)
    lab.write_results(out, table, {"config": dataclasses.asdict(exp), "verdict": verdict_list, "runs": runs,
                                   "floors": floors, "unigram_val": unigram, "timings_s": timings})
    lab.record("vq_logits", exp, verdict_list, {"final_val_loss": {m: final_loss(runs, m) for m in ["identity"] + maps},
                                                "gap": {m: curves[m][-1][1] for m in maps}, "floors": floors,
                                                "unigram_val": unigram, "timings_s": timings, "control": gate})
    plot(runs, floors, exp, curves, out / "vq_logits.png")
    print("\n" + table + f"\n\nwrote {out / 'results.json'}, {out / 'results.md'}, {out / 'vq_logits.png'}")

def plot(runs, floors, exp, curves, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 4.2), dpi=100)
    colors = dict(zip(("identity",) + MAPPINGS, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for m in MAPPINGS:
        pts = sorted((f["K"], f["floor"], f["low"], f["high"]) for f in floors if f["map"] == m)
        K, mid, low, high = map(np.array, zip(*pts))
        ax1.errorbar(K, mid, yerr=[mid - low, high - mid], fmt="o-", color=colors[m], label=m, capsize=3)
    ax1.set(xscale="log", xlabel="codebook size K", ylabel="floor (nats)", title="least rise of the best loss (95%)")
    for m in ["identity"] + exp.maps.split(","):
        steps = [s for s, _ in next(r["curve"] for r in runs if r["map"] == m)]
        vals = np.array([[v for _, v in r["curve"]] for r in runs if r["map"] == m])
        ax2.plot(steps, vals.mean(0), "o-", color=colors[m], label="full softmax" if m == "identity" else m)
        ax2.fill_between(steps, vals.min(0), vals.max(0), color=colors[m], alpha=0.2)
    ax2.set(xlabel="training step", ylabel="validation loss (nats)", title="same trunk, head from zeros")
    for m, curve in curves.items():
        steps = np.array([s for s, _ in curve])
        mean, sd = (np.array([f(d) for _, d in curve]) for f in (np.mean, lambda d: lab.estimate(d).sd if len(d) > 1
                                                                    else 0.0))
        f = next(f for f in floors if f["K"] == exp.vq_k and f["map"] == m)
        ax3.plot(steps, mean, "o-", color=colors[m], label=f"{m}: measured gap")
        ax3.fill_between(steps, mean - sd, mean + sd, color=colors[m], alpha=0.2)
        ax3.axhspan(f["low"], f["high"], color=colors[m], alpha=0.25, lw=0)
        ax3.axhline(f["floor"], color=colors[m], ls="--", lw=1)
    ax3.set(xlabel="training step", ylabel="val loss(map) - val loss(full), nats",
            title=f"gap over training (dashed: floor, K = {exp.vq_k})")
    for ax in (ax1, ax3):
        ax.axhline(PAPER_PERPLEXITY_RISE, color="k", ls=":", lw=1, label="+4% perplexity (paper)")
    for ax in (ax1, ax2, ax3):
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    lab.save_figure(fig, path)

def run(argv):
    try:
        exp = lab.parse_args(argv, Experiment, __doc__)
        maps, ks = exp.maps.split(","), exp.floor_ks.split(",") + [str(exp.vq_k)]
        counts = (exp.seeds, exp.steps, exp.eval_every, exp.eval_batches, exp.bootstrap)
        if any(m not in MAPPINGS for m in maps) or len(set(maps)) < len(maps) or min(counts) < 1 or not all(
                k.isdigit() and 1 <= int(k) <= 50257 for k in ks):
            raise ValueError(f"--maps takes distinct names from: {', '.join(MAPPINGS)}; --vq_k and --floor_ks are in "
                             f"[1, 50257]; --seeds, --steps, --eval_every, --eval_batches, --bootstrap >= 1")
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
