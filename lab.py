"""
lab.py: what every paper file shares beyond the model (train.py has the model, the data and the training loop):
1. the command line: `--key=value` checked against a config dataclass, `--help`, `--quick=true`, and
   `python train.py --variant=NAME` (a file with `Config` and `build_model(cfg, train_data)` is trained by the
   loop; a file with only `run(argv) -> int` is handed the rest of the command line);
2. shared steps: `load_baseline` (the checkpoint vq_logits and pdl finetune), `fit`, caches keyed on code;
3. outputs: results in out/<file>/ and the committed results/<file>.json, figures, the end of a train.py run;
4. the one statistics and verdict rule (see `verdict`). The economics files' CSV tools are in csvtools.py.
"""
import ast, contextlib, dataclasses, functools, hashlib, importlib, inspect, json, math, os, re, shlex, sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import train
from train import ConfigError, DataError, NonFiniteLoss, TrainConfig, atomic_write

HERE = train.HERE
RESULTS = HERE / "results"  # the committed summaries: the scorecard and README read these


# -----------------------------------------------------------------------------
# 1. The command line

CHOICES = {"device": ("auto", "cpu", "cuda", "mps"), "dtype": ("auto", "float32", "bfloat16"),
           "compile": ("auto", "true", "false")}
AT_LEAST_1 = ("n_layer", "n_head", "n_embd", "block_size", "batch_size", "gradient_accumulation_steps", "eval_interval",
              "eval_iters", "log_interval", "ckpt_interval")
AT_LEAST_0 = ("max_iters", "warmup_iters", "sample_tokens", "num_threads", "weight_decay", "grad_clip", "min_lr")

def check_config(cfg):
    """Raise ConfigError for a TrainConfig no run could use (parse_args calls it)."""
    for key, allowed in CHOICES.items():
        if getattr(cfg, key) not in allowed:
            raise ConfigError(f"--{key}={getattr(cfg, key)} is not valid; choose one of: {', '.join(allowed)}")
    for key in AT_LEAST_1 + AT_LEAST_0:
        if getattr(cfg, key) < (key in AT_LEAST_1):
            raise ConfigError(f"--{key} must be at least {int(key in AT_LEAST_1)}, got {getattr(cfg, key)}")
    if not (0 < cfg.learning_rate < math.inf and 0 < cfg.rope_base < math.inf):
        raise ConfigError(f"--learning_rate and --rope_base must be positive, got {cfg.learning_rate}, {cfg.rope_base}")
    if not 0 <= cfg.dropout < 1:
        raise ConfigError(f"--dropout must be in [0, 1), got {cfg.dropout}")
    if cfg.dataset != "shakespeare_char" and cfg.vocab_size < 50257:
        raise ConfigError(f"--vocab_size={cfg.vocab_size} is below GPT-2's 50,257 tokens")
    if cfg.n_embd % cfg.n_head or (cfg.n_embd // cfg.n_head) % 2:
        raise ConfigError(f"--n_embd={cfg.n_embd} must be n_head={cfg.n_head} times an even head size (RoPE)")

def parse_value(key, text, typ):
    try:
        if typ is bool and text.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError
        return text.lower() in ("true", "1", "yes") if typ is bool else typ(text)
    except ValueError:
        kind = {int: "an integer", float: "a number", bool: "true or false"}.get(typ, typ.__name__)
        raise ConfigError(f"--{key} expects {kind}, got '{text}'") from None

def parse_args(argv, cfg_cls=TrainConfig, doc=None):
    """--key=value pairs typed from cfg_cls; returns a validated config, or raises ConfigError. --quick=true starts
    from cfg_cls.QUICK (the flags given still win). --help (or -h) prints the usage lines of `doc` and every key
    with its default and comment, then exits 0."""
    if "--help" in argv or "-h" in argv:
        print_help(cfg_cls, doc or train.__doc__)
        sys.exit(0)
    cfg, types = cfg_cls(), {f.name: f.type for f in dataclasses.fields(cfg_cls)}
    if "quick" in types and any(a.startswith("--quick=") and parse_value("quick", a[8:], bool) for a in argv):
        if "QUICK" not in vars(cfg_cls):
            raise ConfigError("--quick is not defined here; a paper file has its own: python <file>.py --quick=true")
        cfg = dataclasses.replace(cfg, **cfg_cls.QUICK)  # the quick run's defaults; the flags below still win
    for arg in argv:
        key, eq, text = arg[2:].partition("=") if arg.startswith("--") else ("", "", "")
        if not eq or not key.isidentifier():
            raise ConfigError(f"arguments look like --key=value, got '{arg}'; see --help")
        if key not in types:
            raise ConfigError(f"unknown key '{key}'; valid keys: {', '.join(sorted(types))}")
        setattr(cfg, key, parse_value(key, text, types[key]))
    if isinstance(cfg, TrainConfig):
        check_config(cfg)
    if "seeds" in types and cfg.seeds < 1:
        raise ConfigError(f"--seeds is a number of seeds (runs 0 .. seeds - 1), at least 1; got {cfg.seeds}")
    if hasattr(cfg, "validate"):  # a paper file's own checks on its keys
        cfg.validate()
    return cfg

def field_comments(cls):
    """The `# comment` after each field of a dataclass and of the dataclasses it extends (for --help)."""
    comments = {}
    for klass in reversed([k for k in cls.__mro__ if dataclasses.is_dataclass(k)]):
        with contextlib.suppress(OSError, TypeError):
            for line in inspect.getsource(klass).splitlines():
                if m := re.match(r"\s+(\w+): [\w\[\], ]+ = .*?\s#\s*(.*)$", line):
                    comments[m[1]] = m[2]
    return comments

def print_help(cfg_cls, doc):
    """The `python ...` command lines of a module docstring, then each key, its default and its comment."""
    print("\n".join(line.strip() for line in doc.splitlines() if line.strip().startswith(("python ", "torchrun "))))
    if issubclass(cfg_cls, TrainConfig):
        print(f"variants (--variant=NAME): baseline, {', '.join(paper_files())}")
    print("\nkeys (--key=value):")
    comments = field_comments(cfg_cls)
    for f in dataclasses.fields(cfg_cls):
        print(f"  {'--' + f.name + '=' + str(f.default):<36} {comments.get(f.name, '')}")

def paper_files(defining=("build_model", "run")):
    """The .py files next to train.py that define one of these functions at top level (read, not imported)."""
    return [p.stem for p in sorted(HERE.glob("*.py")) if p.stem not in ("train", "lab") and any(
        isinstance(node, ast.FunctionDef) and node.name in defining for node in ast.parse(p.read_text("utf-8")).body)]

def load_variant(name):
    if name == "baseline":
        return None
    if name not in paper_files():
        raise ConfigError(f"unknown variant '{name}'; valid variants: baseline, {', '.join(paper_files())}")
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    return importlib.import_module(name)

def main(argv=None):
    """`python train.py [--variant=NAME] [--key=value ...]`: the baseline, or a paper file's model in the loop."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        name = ([a.split("=", 1)[1] for a in argv if a.startswith("--variant=")] or ["baseline"])[-1]
        module, rest = load_variant(name), [a for a in argv if not a.startswith("--variant=")]
        if module is not None and hasattr(module, "run") and not hasattr(module, "build_model"):
            return module.run(rest)  # a file with its own outer loop takes over its command line
        cfg = parse_args(rest, getattr(module, "Config", TrainConfig), module.__doc__ if module else None)
        cfg = dataclasses.replace(cfg, variant=name)
        summary = train.train(cfg, getattr(module, "build_model", None))
        if module is None and int(os.environ.get("RANK", 0)) == 0:  # the key load_baseline reads (rank 0 writes)
            atomic_write(Path(summary["out_dir"]) / "cache_key.txt", baseline_key(cfg).encode())
        report_run(cfg, summary)
        if getattr(cfg, "quick", False):
            print(type(cfg).QUICK_NOTE)
        return 0
    except (ConfigError, DataError, NonFiniteLoss) as e:
        print(f"error: {e}", file=sys.stderr)
        return {ConfigError: 2, DataError: 1, NonFiniteLoss: 3}[type(e)]
    finally:
        if train.dist.is_initialized():  # a run stopped early under torchrun leaves cleanly too
            train.dist.destroy_process_group()


# -----------------------------------------------------------------------------
# 2. Shared steps: the baseline, fit, caches

def code_hash(*modules):
    """sha256 (12 hex digits) of these modules' code, without comments and docstrings: only an edit that can change
    a result invalidates a cache."""
    digest = hashlib.sha256()
    for tree in (ast.parse(Path(m.__file__).read_text(encoding="utf-8")) for m in modules):
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and ast.get_docstring(node) is not None:
                node.body = node.body[1:] or [ast.Pass()]
        digest.update(ast.dump(tree).encode())
    return digest.hexdigest()[:12]

def cache_key(settings, *modules):
    """One key for a cached result: its settings (a JSON-able dict) and the code of the modules that made it."""
    text = json.dumps([settings, code_hash(*modules)], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]

RUN_ONLY = ("out_dir", "sample_tokens", "sample_prompt", "num_threads", "device", "compile", "resume", "log_interval")

def baseline_key(cfg):
    """The cache key of a checkpoint trained by train.train(cfg): its settings (not where or how fast it ran) and
    train.py's code. `python train.py` writes it beside ckpt.pt; load_baseline checks it."""
    return cache_key({k: v for k, v in dataclasses.asdict(cfg).items() if k not in RUN_ONLY}, train)

def load_baseline(path="out/baseline/ckpt.pt", config=None):
    """What a finetuning experiment needs from the baseline checkpoint: {"path", "config" (its TrainConfig fields),
    "state", "train_data", "val_data"}. It trains one first (with `config`, a TrainConfig; by default
    `python train.py`'s) when there is none at `path`, or when the cache key beside it says that other settings or
    another train.py made it. A checkpoint with no key (trained by hand) is used as given."""
    path, config = Path(path), dataclasses.replace(config or TrainConfig(), out_dir=str(Path(path).parent),
                                                   sample_tokens=0)
    key, key_file = baseline_key(config), path.parent / "cache_key.txt"
    stale = key_file.exists() and key_file.read_text().strip() != key
    if not path.exists() or stale:
        print(f"baseline: {f'{path} is stale (its cache key)' if stale else f'none at {path}'}; training one first",
              flush=True)
        train.train(config)
        atomic_write(key_file, key.encode())
    else:
        why = f"cache key {key}: same settings, same train.py code" if key_file.exists() else "no cache key: as given"
        print(f"baseline: reusing {path} ({why})", flush=True)
    ckpt = train.load_checkpoint(path)
    print(f"baseline: {ckpt['iter_num']} iterations, val loss {ckpt['history']['val'][-1][1]:.4f}", flush=True)
    config = {k: v for k, v in ckpt["config"].items() if k in {f.name for f in dataclasses.fields(TrainConfig)}}
    folder = train.prepare_data(config["dataset"], config["data_dir"])
    return {"path": path, "config": config, "state": ckpt["model"],
            **{f"{s}_data": train.load_tokens(folder, s, config["block_size"] + 2) for s in ("train", "val")}}

def fit(model, next_batch, steps, learning_rate=3e-3, warmup_iters=None, log_every=None, name="fit"):
    """The loop's train_step on in-memory batches, for paper files with their own data (task text, RL warm starts):
    AdamW, warmup and cosine to learning_rate / 10, clipping at 1.0, and every log_every steps a progress line with
    ETA and the NaN check. next_batch() -> (x, y) with targets -1 where there is no loss. Returns the losses."""
    cfg = TrainConfig(max_iters=steps, learning_rate=learning_rate, min_lr=learning_rate / 10,
                      warmup_iters=max(1, steps // 10) if warmup_iters is None else warmup_iters)
    optimizer = train.make_optimizer(model, cfg, next(model.parameters()).device)
    log_every, losses, timer = log_every or max(1, steps // 10), [], train.time.time()
    model.train()
    for it in range(1, steps + 1):
        losses.append(train.train_step(model, optimizer, next_batch, train.lr_at(it - 1, cfg), grad_clip=cfg.grad_clip))
        if it % log_every == 0 or it == steps:
            if not math.isfinite(recent := torch.stack(losses[-log_every:]).mean().item()):
                raise NonFiniteLoss(f"{name}: loss is {recent} by step {it}")
            seconds = (train.time.time() - timer) / it
            print(train.progress_line(name, it, steps, seconds, f"loss {recent:.4f}", f"{1e3 * seconds:.0f} ms"),
                  flush=True)
    model.eval()
    return torch.stack(losses).tolist()


# -----------------------------------------------------------------------------
# 3. Outputs

def write_results(out_dir, table, data):
    """A paper file's outputs: results.md (the markdown table) and results.json, both atomically."""
    atomic_write(Path(out_dir) / "results.md", (table + "\n").encode())
    atomic_write(Path(out_dir) / "results.json", json.dumps(data, indent=1, default=str).encode())

def record(name, exp, verdicts, summary):
    """The committed summary of a full run, results/<name>.json: its command, config, verdicts and the numbers they
    rest on (no rows, no checkpoints). A quick run, or one with its own --out_dir, records nothing here."""
    if exp.quick or exp.out_dir != type(exp)().out_dir:
        return None
    path = RESULTS / f"{name}.json"
    data = {"file": f"{name}.py", "command": command(name, exp), "config": dataclasses.asdict(exp),
            "verdicts": verdicts, "summary": summary}
    plain = lambda v: v.tolist() if hasattr(v, "tolist") else str(v)  # noqa: E731  (numpy numbers and arrays)
    atomic_write(path, (json.dumps(data, indent=1, default=plain) + "\n").encode())
    print(f"recorded {path} (committed; the scorecard and README read it)", flush=True)
    return path

def unigram_entropies(train, val, n_symbols):
    """Entropy (nats) of the train unigram distribution, and val cross-entropy under add-one unigrams.
    A model that learns anything beyond symbol frequencies ends well below both."""
    counts = np.bincount(np.asarray(train), minlength=n_symbols).astype(np.float64)
    p, smoothed = counts[counts > 0] / counts.sum(), (counts + 1) / (counts.sum() + len(counts))
    return float(-(p * np.log(p)).sum()), float(-np.log(smoothed[np.asarray(val)]).mean())

def report_run(cfg, summary):
    """The end of `python train.py`: the final loss against unigram yardsticks, the loss curve and a sample."""
    out_dir, history, model = Path(summary["out_dir"]), summary["history"], summary["model"]
    if int(os.environ.get("RANK", 0)) or not history["val"]:
        return
    folder = train.prepare_data(cfg.dataset, cfg.data_dir)
    encode, decode, n_symbols = train.codec(folder)
    h_train, h_val = unigram_entropies(*(train.load_tokens(folder, s, 0) for s in ("train", "val")), n_symbols)
    val = summary["val_loss"]
    print(f"val {val:.4f}: {h_train - val:+.3f} nats against the train unigram entropy ({h_train:.3f}), "
          f"{h_val - val:+.3f} against an add-one unigram model of the val text ({h_val:.3f})")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
    ax.plot(*zip(*history["train"]), label="train", lw=1)
    ax.plot(*zip(*history["val"]), "o-", label="val", ms=3)
    ax.set(xlabel="iteration", ylabel="loss (nats/token)", title=f"{cfg.variant} ({summary['params']['total']:,})")
    ax.legend()
    ax.grid(alpha=0.3)
    save_figure(fig, out_dir / "loss.png")
    print(f"loss curve: {out_dir / 'loss.png'}")
    if cfg.sample_tokens:
        device, gen = next(model.parameters()).device, torch.Generator(next(model.parameters()).device)
        prompt = torch.tensor([encode(cfg.sample_prompt) or [0]], device=device)
        text = decode(model.eval().generate(prompt, cfg.sample_tokens, 0.8, 200, gen.manual_seed(cfg.seed))[0].tolist())
        atomic_write(out_dir / "sample.txt", text.encode())  # temperature 0.8, top_k 200
        print("-" * 60 + "\n" + text + "\n" + "-" * 60)

def save_figure(fig, path):
    """Save a matplotlib figure atomically (tight layout) and close it."""
    import matplotlib.pyplot as plt
    fig.tight_layout()
    atomic_write(path, functools.partial(fig.savefig, format=Path(path).suffix.lstrip(".")))
    plt.close(fig)


# -----------------------------------------------------------------------------
# 4. Statistics and the verdict rule, stated once. An Estimate is a mean, a sample SD (ddof 1) and n; a Difference
# of two arms carries its 95% t-interval (paired when the arms share seeds, Welch otherwise, one-sample against a
# number). A claim is supported when the whole interval lies on the claim's side of its margin, not supported when
# it lies on the other side, inconclusive otherwise; never from fewer than MIN_SEEDS seeds or a quick run, and only
# when the file's positive control, judged by the same rule, passed.

MIN_SEEDS = 3
VERDICTS = ("supported", "not supported", "inconclusive", "quick: not a verdict")
NEEDS = {"above": "> {:.3g}", "below": "< {:.3g}", "within": "within ±{:.3g}"}  # the claim: d > m, d < m or |d| < m

def decimals(scale):
    """Decimals to print a number whose uncertainty is `scale`: 3, or more when the scale is smaller."""
    return 3 if not np.isfinite(scale) or scale < 1e-9 else int(np.clip(-math.floor(math.log10(scale)), 3, 6))

@dataclass(frozen=True)
class Estimate:
    mean: float
    sd: float   # sample standard deviation (ddof 1); NaN with one value
    n: int

    def __str__(self):
        d = decimals(self.sd)
        return f"{self.mean:.{d}f} ± {self.sd:.{d}f} (sd, n={self.n})" if self.n > 1 else f"{self.mean:.3f} (n=1)"

def estimate(values):
    v = np.asarray(values, dtype=np.float64).ravel()
    return Estimate(float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else math.nan, len(v))

@dataclass(frozen=True)
class Difference:
    mean: float
    low: float   # the 95% t-interval; NaN when it cannot be formed (one value)
    high: float
    n: int
    test: str    # paired, Welch, one-sample (or how else the interval was formed)

    def __str__(self):
        if not np.isfinite(self.high - self.low):
            return f"{self.mean:+.3f} (no interval from n={self.n})"
        d = decimals((self.high - self.low) / 2)
        kind = f"{self.test} t" if self.test in ("paired", "Welch", "one-sample") else self.test
        return f"{self.mean:+.{d}f} [{self.low:+.{d}f}, {self.high:+.{d}f}] (95% {kind}, n={self.n})"

def difference(a, b, paired):
    """a - b with its 95% t-interval. a, b: values over seeds. paired=True: the arms share seeds (same starts and
    batches), the interval of the per-seed differences; False: Welch's interval; b a number: one-sample."""
    from scipy import stats
    a, one = np.asarray(a, dtype=np.float64).ravel(), np.ndim(b) == 0
    b = np.full(len(a), float(b)) if one else np.asarray(b, dtype=np.float64).ravel()
    if (paired or one) and len(a) != len(b):
        raise ValueError(f"paired arms need the same seeds, got {len(a)} and {len(b)} values")
    test, mean, n = "one-sample" if one else "paired" if paired else "Welch", float(a.mean() - b.mean()), \
        min(len(a), len(b))
    if n < 2 or (np.ptp(a - b) if paired or one else np.ptp(a) + np.ptp(b)) == 0:  # no interval, or no variation
        return Difference(mean, *(2 * [math.nan if n < 2 else mean]), n, test)
    # mean ± t_{0.975, df} se (Welch: Welch-Satterthwaite df)
    with warnings.catch_warnings():  # scipy warns when values are nearly equal; the interval is still right
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.ttest_1samp(a - b, 0.0) if paired or one else stats.ttest_ind(a, b, equal_var=False)
    return Difference(mean, *map(float, result.confidence_interval()), n, test)

def judge(diff, side="above", margin=0.0):
    """supported: the whole interval on the claim's side of the margin; not supported: the whole interval on the
    other side (touching the margin counts there); inconclusive otherwise, or without an interval (NaN compares
    false both ways)."""
    low, high = diff.low, diff.high
    claims, against = {"above": (low > margin, high <= margin), "below": (high < margin, low >= margin),
                       "within": (-margin < low and high < margin, low >= margin or high <= -margin)}[side]
    return "supported" if claims else "not supported" if against else "inconclusive"

def condition(diff, side="above", margin=0.0, label=""):
    """One judged condition of a claim: {"outcome" (the rule's), "n", "text" (the interval and the margin)}."""
    if side not in NEEDS:
        raise ValueError(f"side must be one of {', '.join(NEEDS)}, got '{side}'")
    interval = f"{diff}, needs {NEEDS[side].format(margin)}"
    return {"outcome": judge(diff, side, margin), "n": diff.n, "interval": interval,
            "text": f"{label}: {interval}" if label else interval}

def judge_all(conditions, against=False):
    """Several conditions: supported when every one is, not supported when any one is not. against=True: the
    claim is that they do not all hold, so the outcome is mirrored."""
    outcomes = [c["outcome"] for c in conditions]
    outcome = "supported" if all(o == "supported" for o in outcomes) else \
        "not supported" if "not supported" in outcomes else "inconclusive"
    return {"supported": "not supported", "not supported": "supported"}.get(outcome, outcome) if against else outcome

def gate_reason(conditions, seeds, quick):
    """(conditions as a list, why no verdict may be given: a quick run, or fewer seeds than MIN_SEEDS in the data)."""
    conditions = [conditions] if isinstance(conditions, dict) else conditions
    seeds = min([seeds] + [c["n"] for c in conditions])  # the seeds the data hold, not only the ones asked for
    return conditions, seeds, "quick run" if quick else f"{seeds} seed(s); a verdict needs {MIN_SEEDS}" * (
        seeds < MIN_SEEDS)

def control(text, conditions, seeds, quick=False, note=""):
    """A positive control judged by the same rule: {"passed", "text"}; it passes only where a claim would be
    supported (never from a quick run or too few seeds). text: its name (no ": " inside); note: printed after."""
    conditions, seeds, why = gate_reason(conditions, seeds, quick)
    passed = judge_all(conditions) == "supported" and not why
    return {"passed": passed, "text": f"{text}: {'; '.join(c['text'] for c in conditions)}{note}: " +
            ("passed" if passed else f"not judged ({why})" if why else "FAILED")}

def verdict(claim, paper_says, conditions, gate, seeds, command, quick=False, against=False):
    """The one verdict record every paper file's verdicts() returns: the claim's condition(s) judged by the rule,
    gated by the seeds, the quick flag and the positive control `gate` ({"passed", "text"})."""
    conditions, seeds, why = gate_reason(conditions, seeds, quick)
    why = why or ("" if gate["passed"] else "the positive control did not pass")
    outcome = "quick: not a verdict" if quick else "inconclusive" if why else judge_all(conditions, against)
    return {"claim": claim, "paper_says": paper_says, "verdict": outcome, "why": why,
            "evidence": "; ".join(c["text"] for c in conditions),
            "conditions": conditions, "against": against, "control": gate["text"], "seeds": seeds, "command": command,
            "quick": quick}

def per_seed(rows, key, **match):
    """One number per seed, in seed order (so that two arms pair by seed), of the rows whose fields equal `match`."""
    return [r[key] for r in sorted((r for r in rows if all(r[k] == v for k, v in match.items())),
                                   key=lambda r: r["seed"])]

def verdict_line(v):
    """How every file's report prints a verdict: VERDICT (why): claim (paper: ...); the evidence."""
    why, paper = f" ({v['why']})" if v["why"] else "", f" (paper: {v['paper_says']})" if v["paper_says"] else ""
    return f"- {v['verdict'].upper()}{why}: {v['claim']}{paper}; {v['evidence']}"

def command(name, exp):
    """The shell command that reproduces `exp`: `python NAME.py` and every field that differs from the default
    (from the quick defaults when exp.quick)."""
    cls = type(exp)
    default = dataclasses.replace(cls(), **cls.QUICK, quick=True) if exp.quick else cls()
    flags = ["--quick=true"] * exp.quick + [
        f"--{f.name}={str(v).lower() if isinstance(v, bool) else v}" for f in dataclasses.fields(cls)
        if f.name != "quick" and (v := getattr(exp, f.name)) != getattr(default, f.name)]
    return " ".join(["python", f"{name}.py"] + [shlex.quote(f) for f in flags])
