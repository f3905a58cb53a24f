"""
VQ-Logits, arXiv:2505.10202, on the shared small GPT: a codebook output layer against the full softmax.

The idea. The output layer of a language model is a V x d matrix W; its logits h W^T cost O(V d) per
position and, for a small model with a large vocabulary, most of the model. VQ-Logits replaces W with a
codebook C of K << V vectors and a fixed map M from each token to one code:

    L_code = h C^T          (K logits)          logits[v] = L_code[M(v)]          softmax over V

The paper (abstract) claims up to 99% fewer output-layer parameters, 6x faster logit computation and
only +4% perplexity on WikiText-103 and C4. Its code fixes M before training (k-means over pretrained
output embeddings, random (their default), or contiguous blocks) and trains C by plain backprop: no
hidden state is quantised, so there is no commitment loss, EMA or straight-through estimator.

The honest part (our derivation). Tokens that share a code get identical logits, hence identical
probabilities. Write c = M(y) and n_c for the number of tokens in code c. The best a VQ model can do
is predict the code perfectly and spread it uniformly over the code's n_c members, so its best loss is
H(c | x) + E[log n_c], against H(y | x) = H(c | x) + H(y | c, x) for the full softmax. The rise is

    rise = E[log n_c] - H(y | c, x)  >=  E[log n_c] - H(y | c)  =: floor   (conditioning lowers entropy)

Both E[log n_c] and H(y | c) are computable on validation text for any M; we print the floor next to
each measured result. It depends strongly on the map. For a random map (the paper's default) at
K = 1024 (V/49) E[log n_c] is log 49 = 3.9 nats and the floor is 3.2 nats, a 25x perplexity; for
contiguous blocks 2.0 nats, for k-means 0.8. Only a map built from frequencies (every frequent token
its own code, the rare ones pooled) gets low: 0.23 nats at K = 1024, still 6x the 0.039 nats of a 4%
perplexity rise. The +4% claim contradicts the method as described for every map we tried.
The floor bounds the rise between the two heads' BEST achievable losses; a small, briefly trained
model is far from both optima, so a measured gap can be smaller than the floor (see the results).

What we implement: the codebook head (the shared GPT's `lm_head` seam); the four maps (k-means over
the baseline's output embeddings, random, contiguous blocks of token ids, and frequency-balanced codes
of equal token mass); C initialised at the k-means centroids where there are any, otherwise at the
mean of each code's baseline embeddings (our choice; the paper trains C from its init by backprop);
the exact O(K) loss `logsumexp_j(L_code[j] + log n_j) - L_code[M(y)]` and O(K) sampling; and, clearly
labelled as OUR ADDITION, an optional per-token bias b_v that breaks the ties inside a code (logits
L_code[M(v)] + b_v; O(V) parameters again, but no O(V d) matmul), to measure how much of the floor it
recovers. The experiment finetunes the baseline with each head for the same steps and reports
validation perplexity, output-layer parameters and the floor, and times logits and sampling.

    python vq_logits.py                               # the experiment (< 10 min on a 2-core CPU)
    python vq_logits.py --ks=64,256,1024,4096 --ft_iters=200
    python train.py --variant=vq_logits --vq_k=1024   # train one model with a codebook head
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

MAPPINGS = ("kmeans", "random", "contiguous", "frequency")

# -----------------------------------------------------------------------------
# The codebook head


class VQHead(nn.Module):
    """Codebook output layer: logits[v] = (h C^T)[M(v)] (+ b_v, our optional per-token bias)."""

    def __init__(self, code_of, codebook, token_bias=False):
        super().__init__()
        K = codebook.size(0)
        self.codebook = nn.Parameter(codebook.clone())                  # C, (K, d)
        self.register_buffer("code_of", code_of.long())                 # M, (V,)
        n = torch.bincount(code_of.long(), minlength=K).to(codebook.dtype)
        self.register_buffer("log_n", torch.log(n))                     # log n_j, (K,); -inf for an empty code
        self.token_bias = nn.Parameter(torch.zeros(len(code_of), dtype=codebook.dtype)) if token_bias else None

    def code_logits(self, h):
        # L_code = h C^T
        return h @ self.codebook.t()                                    # (..., K)

    def forward(self, h):
        # logits[v] = L_code[M(v)]: scatter the K code logits to the V tokens
        logits = self.code_logits(h).index_select(-1, self.code_of)     # (..., V)
        return logits if self.token_bias is None else logits + self.token_bias

    def code_log_mass(self):
        """B_j = log sum_{v in code j} exp(b_v), one O(V) pass; without the bias this is log n_j."""
        if self.token_bias is None:
            return self.log_n
        b = self.token_bias
        # subtract each code's largest bias before exp (the result does not depend on the shift)
        shift = torch.full_like(self.log_n, -float("inf")).scatter_reduce(0, self.code_of, b.detach(), "amax")
        total = torch.zeros_like(self.log_n).index_add(0, self.code_of, torch.exp(b - shift[self.code_of]))
        return shift + torch.log(total)

    def loss(self, h, targets):
        """Cross-entropy over V in O(K) per position (plus one O(V) pass for the bias, per batch):
        -log p(y) = logsumexp_j(L_code[j] + B_j) - L_code[M(y)] - b_y."""
        L_code = self.code_logits(h).reshape(-1, self.codebook.size(0))
        targets = targets.reshape(-1)
        keep = targets != -1
        L_code, y = L_code[keep], targets[keep]
        nll = torch.logsumexp(L_code + self.code_log_mass(), dim=-1) - L_code.gather(1, self.code_of[y, None])[:, 0]
        if self.token_bias is not None:
            nll = nll - self.token_bias[y]
        return nll.mean()

    @torch.no_grad()
    def sample(self, h, generator=None):
        """Sample tokens in O(K) per row (no bias): a code with probability proportional to
        n_j exp(L_code[j]), then a token uniformly among the code's members."""
        if self.token_bias is not None:
            raise ValueError("O(K) sampling needs the paper's head; with the token bias sample from forward(h)")
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
    gen = torch.Generator().manual_seed(seed)
    x = x.float()
    centroids = x[torch.randperm(len(x), generator=gen)[:K]].clone()
    for _ in range(iters):
        assign, dist = [], []
        for i in range(0, len(x), chunk):
            d = torch.cdist(x[i:i + chunk], centroids)                   # (chunk, K)
            m = d.min(dim=1)
            assign.append(m.indices)
            dist.append(m.values)
        assign, dist = torch.cat(assign), torch.cat(dist)
        counts = torch.bincount(assign, minlength=K)
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        centroids = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], centroids)
        for j in torch.nonzero(counts == 0).flatten().tolist():
            worst = int(dist.argmax())
            centroids[j], dist[worst] = x[worst], -1.0
            assign[worst] = j
    return assign, centroids


def frequency_balanced(counts, K):
    """Codes of (about) equal token mass: tokens sorted by frequency, cut where the cumulative mass
    passes j/K; every code keeps at least one token, and tokens never seen share the last codes."""
    order = torch.argsort(counts, descending=True, stable=True)
    cumulative_before = (torch.cumsum(counts[order], 0) - counts[order]) / counts.sum()
    V = len(counts)
    code_sorted = torch.empty(V, dtype=torch.long)
    code = 0
    for i in range(V):
        left_tokens, left_codes = V - i, K - 1 - code
        if i > 0 and code < K - 1 and (cumulative_before[i] * K >= code + 1 or left_tokens <= left_codes):
            code += 1
        code_sorted[i] = code
    code_of = torch.empty(V, dtype=torch.long)
    code_of[order] = code_sorted
    return code_of


def make_mapping(name, K, V, embeddings=None, counts=None, seed=0):
    """(code_of (V,), centroids (K, d) or None) for one of MAPPINGS."""
    if not 1 <= K <= V:
        raise ValueError(f"K must be in [1, V={V}], got {K}")
    if name == "kmeans":
        return kmeans(embeddings[:V], K, seed=seed)
    if name == "random":  # balanced: every code gets floor(V/K) or ceil(V/K) tokens
        gen = torch.Generator().manual_seed(seed)
        return torch.randperm(V, generator=gen) % K, None
    if name == "contiguous":
        return torch.arange(V) * K // V, None
    if name == "frequency":
        return frequency_balanced(counts[:V].double(), K), None
    raise ValueError(f"unknown mapping '{name}'; choose one of: {', '.join(MAPPINGS)}")


def code_floor(code_of, tokens):
    """On a token sample: E[log n_c], H(y | c) and the floor E[log n_c] - H(y | c) (nats).
    The best loss of a codebook head (no bias) is at least `floor` above the full softmax's."""
    K = int(code_of.max()) + 1
    n = torch.bincount(code_of, minlength=K).double()
    y = torch.as_tensor(np.asarray(tokens, dtype=np.int64))
    c = code_of[y]
    within_code_cost = torch.log(n[c]).mean().item()
    token_counts = torch.bincount(y, minlength=len(code_of)).double()
    code_counts = torch.bincount(c, minlength=K).double()
    p_token = token_counts[y] / len(y)
    p_code = code_counts[c] / len(y)
    h_token_given_code = -(torch.log(p_token / p_code)).mean().item()   # H(y|c) = -E log p(y)/p(c)
    return {"within_code_cost": within_code_cost, "h_token_given_code": h_token_given_code,
            "floor": within_code_cost - h_token_given_code}


# -----------------------------------------------------------------------------
# Variant protocol: python train.py --variant=vq_logits --vq_k=1024


@dataclass
class Config(train.TrainConfig):
    vq_k: int = 1024                # codebook size K
    vq_mapping: str = "random"      # kmeans (needs --init_from), random, contiguous, frequency
    vq_bias: bool = False           # OUR ADDITION: a per-token bias that breaks the ties inside a code

    def validate(self):
        if not 1 <= self.vq_k <= 50257:
            raise train.ConfigError(f"--vq_k must be in [1, 50257], got {self.vq_k}")
        if self.vq_mapping not in MAPPINGS:
            raise train.ConfigError(f"--vq_mapping={self.vq_mapping} is not valid; choose one of: {', '.join(MAPPINGS)}")
        if self.vq_mapping == "kmeans" and not self.init_from:
            raise train.ConfigError("--vq_mapping=kmeans clusters a trained model's embeddings: give --init_from=CKPT")


def build_model(cfg, train_data, embeddings=None):
    """The shared GPT with its output head replaced by a codebook head over the 50,257 real tokens
    (the padding ids up to 50,304 get a code too, and are never targets)."""
    model = train.build_baseline(cfg)
    V = model.config.vocab_size
    if embeddings is None and cfg.init_from:
        embeddings = train.load_checkpoint(cfg.init_from)["model"]["wte.weight"]
    counts = torch.from_numpy(np.bincount(np.asarray(train_data), minlength=V)) if train_data is not None else None
    code_of, centroids = make_mapping(cfg.vq_mapping, cfg.vq_k, V, embeddings, counts, cfg.seed)
    if centroids is None:  # each code starts at the mean embedding of its members (or the fresh ones)
        source = embeddings.float() if embeddings is not None else model.wte.weight.detach()
        centroids = torch.zeros(cfg.vq_k, source.size(1)).index_add_(0, code_of, source[:V])
        centroids /= torch.bincount(code_of, minlength=cfg.vq_k).clamp(min=1)[:, None]
    model.lm_head = VQHead(code_of, centroids, token_bias=cfg.vq_bias)
    return model


# -----------------------------------------------------------------------------
# Speed: logits and sampling, codebook against the full head


def time_heads(K=1024, V=50257, d=128, N=1024, repeats=10):
    """Median seconds of: full logits h W^T, code logits h C^T, code logits scattered to V, and sampling
    one token per row from the full softmax versus in O(K)."""
    from bench import median_seconds
    torch.manual_seed(0)
    h, W = torch.randn(N, d), torch.randn(V, d) * 0.02
    head = VQHead(torch.randperm(V) % K, torch.randn(K, d) * 0.02)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        t = {"full_logits": median_seconds(lambda: h @ W.t(), repeats),
             "code_logits": median_seconds(lambda: head.code_logits(h), repeats),
             "scattered_logits": median_seconds(lambda: head(h), repeats),
             "full_sample": median_seconds(lambda: torch.multinomial(F.softmax(h @ W.t(), -1), 1, generator=gen), repeats),
             "code_sample": median_seconds(lambda: head.sample(h, generator=gen), repeats)}
    return t


def bench():
    t = time_heads()
    return {"vq_logits_speedup": t["full_logits"] / t["code_logits"],
            "vq_scattered_logits_speedup": t["full_logits"] / t["scattered_logits"],
            "vq_sample_speedup": t["full_sample"] / t["code_sample"]}


# -----------------------------------------------------------------------------
# The experiment


@dataclass
class Experiment:
    runs: str = "full,1024:kmeans,1024:random,1024:contiguous,1024:frequency,64:kmeans,4096:kmeans,1024:kmeans+bias"
    floor_ks: str = "64,256,1024,4096"   # K values at which the floor is computed for every mapping
    ft_iters: int = 40                   # finetuning steps per run (the same for every head)
    learning_rate: float = 1e-3
    seed: int = 0
    baseline: str = "out/baseline/ckpt.pt"  # checkpoint to finetune (trained first if missing)
    out_dir: str = "out/vq_logits"


def parse_runs(text):
    """'full' or 'K:mapping' or 'K:mapping+bias', comma-separated."""
    runs = []
    for item in text.split(","):
        if item == "full":
            runs.append(("full", None, None, False))
            continue
        k, _, rest = item.partition(":")
        mapping, _, bias = rest.partition("+")
        if not k.isdigit() or mapping not in MAPPINGS or bias not in ("", "bias"):
            raise ValueError(f"bad run '{item}': use full, K:mapping or K:mapping+bias with mapping in "
                             f"{', '.join(MAPPINGS)}")
        runs.append((item, int(k), mapping, bias == "bias"))
    return runs


def run_experiment(exp):
    runs = parse_runs(exp.runs)
    baseline = train.load_baseline(exp.baseline)
    base_path, base_cfg = baseline["path"], baseline["config"]
    train_data, val_data = baseline["train_data"], baseline["val_data"]
    embeddings = baseline["state"]["wte.weight"]
    V, d = embeddings.shape
    counts = torch.from_numpy(np.bincount(np.asarray(train_data), minlength=V))

    print("floor of each map on validation text: E[log n_c] - H(y|c), nats", flush=True)
    floors = []
    for K in [int(k) for k in exp.floor_ks.split(",")]:
        for mapping in MAPPINGS:
            code_of, _ = make_mapping(mapping, K, V, embeddings, counts, exp.seed)
            f = code_floor(code_of, val_data)
            floors.append({"K": K, "mapping": mapping, **f})
            print(f"  K={K:5d} {mapping:10s} E[log n_c]={f['within_code_cost']:.3f}  H(y|c)={f['h_token_given_code']:.3f}"
                  f"  floor={f['floor']:.3f}", flush=True)

    rows = []
    for name, K, mapping, bias in runs:
        print(f"\n=== {name}: finetune {exp.ft_iters} steps from {base_path}", flush=True)
        cfg = Config(**{**base_cfg, "max_iters": exp.ft_iters, "warmup_iters": 5, "learning_rate": exp.learning_rate,
                        "min_lr": exp.learning_rate / 10, "eval_interval": exp.ft_iters, "ckpt_interval": exp.ft_iters,
                        "log_interval": max(1, exp.ft_iters // 4), "seed": exp.seed, "init_from": str(base_path),
                        "resume": False, "sample_tokens": 0, "variant": "vq_logits",
                        "vq_k": K or V, "vq_mapping": mapping or "random", "vq_bias": bias,
                        "out_dir": str(Path(exp.out_dir) / name.replace(":", "_").replace("+", "_"))})
        build = train.build_baseline if K is None else (lambda c, data: build_model(c, data, embeddings))
        model = train.train(cfg, build)["model"]
        base_cfg["num_threads"] = torch.get_num_threads()  # measured once, by the first run
        val = train.val_loss(model, val_data, cfg.block_size, n_batches=40)
        head_params = V * d if K is None else K * d + (V if bias else 0)
        floor = None if K is None else code_floor(model.lm_head.code_of, val_data)["floor"]
        rows.append({"run": name, "K": K or V, "mapping": mapping or "full softmax", "bias": bias, "val_loss": val,
                     "perplexity": math.exp(val), "head_params": head_params, "floor": floor})
    return rows, floors, time_heads(N=1024, d=d)


def report(rows, floors, timings, exp):
    out = Path(exp.out_dir)
    full = next((r for r in rows if r["mapping"] == "full softmax"), None)
    lines = ["| head | K | output-layer params | val loss | perplexity | vs full | floor (nats) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        vs = f"{r['perplexity'] / full['perplexity'] - 1:+.0%}" if full else "-"
        name = r["mapping"] + (" + token bias (ours)" if r["bias"] else "")
        lines.append(f"| {name} | {r['K']} | {r['head_params'] / 1e6:.3f}M | {r['val_loss']:.3f} | {r['perplexity']:.0f} | "
                     f"{vs} | {'-' if r['floor'] is None else format(r['floor'], '.3f')} |")
    lines.append("\nfloor = E[log n_c] - H(y|c) on validation text: a lower bound on how much the BEST achievable loss "
                 "rises over the full softmax's (the paper's +4% perplexity is 0.039 nats). It bounds optima, not "
                 "these briefly finetuned models, which are far from theirs.")
    t = timings
    lines += ["", f"Logits for 1024 positions, d={128}, V=50257, K=1024: full {1e3 * t['full_logits']:.1f} ms, "
              f"code logits {1e3 * t['code_logits']:.2f} ms ({t['full_logits'] / t['code_logits']:.0f}x), scattered to V "
              f"{1e3 * t['scattered_logits']:.1f} ms ({t['full_logits'] / t['scattered_logits']:.1f}x); sampling one token "
              f"per row: full {1e3 * t['full_sample']:.1f} ms, O(K) {1e3 * t['code_sample']:.2f} ms "
              f"({t['full_sample'] / t['code_sample']:.0f}x)."]
    table = "\n".join(lines)
    train.write_results(out, table, {"config": dataclasses.asdict(exp), "runs": rows, "floors": floors, "timings_s": timings})

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=100)
    colors = dict(zip(MAPPINGS, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for mapping in MAPPINGS:
        pts = sorted((f["K"], f["floor"]) for f in floors if f["mapping"] == mapping)
        ax1.plot(*zip(*pts), "o-", color=colors[mapping], label=mapping)
    ax1.axhline(math.log(1.04), color="k", ls=":", lw=1, label="+4% perplexity (the paper's claim)")
    ax1.set_ylabel("floor: least rise of the best loss (nats)")
    ax1.set_title("what the ties inside codes must cost")
    if full:
        ax2.axhline(full["perplexity"], color="k", lw=1, label="full softmax")
        ax2.axhline(full["perplexity"] * 1.04, color="k", ls=":", lw=1, label="full + 4%")
    for r in rows:
        if r["mapping"] in colors:
            ax2.plot(r["K"], r["perplexity"], "s" if r["bias"] else "o", color=colors[r["mapping"]], ms=7,
                     mfc="none" if r["bias"] else colors[r["mapping"]],
                     label=f"{r['mapping']}{' + token bias (ours)' if r['bias'] else ''}")
    handles = dict(zip(*reversed(ax2.get_legend_handles_labels())))
    ax2.legend(handles.values(), handles.keys(), fontsize=7)
    ax2.set_yscale("log")
    ax2.set_ylabel("validation perplexity (measured)")
    ax2.set_title(f"after {exp.ft_iters} finetuning steps")
    ax1.legend(fontsize=7)
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_xlabel("codebook size K")
        ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    train.save_figure(fig, out / "vq_logits.png")
    print("\n" + table + f"\n\nwrote {out / 'results.json'}, {out / 'results.md'}, {out / 'vq_logits.png'}")


def run(argv):
    try:
        exp = train.parse_args(argv, Experiment, __doc__)
        parse_runs(exp.runs)
        if exp.ft_iters < 1 or not all(k.isdigit() and int(k) >= 1 for k in exp.floor_ks.split(",")):
            raise ValueError("--ft_iters must be >= 1 and --floor_ks comma-separated positive integers")
    except (train.ConfigError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rows, floors, timings = run_experiment(exp)
    report(rows, floors, timings, exp)
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
