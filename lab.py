"""
lab.py: what every paper file shares beyond train.py's model, data and loop: 1. the command line; 2. load_baseline,
fit, caches keyed on code; 3. results, figures, a train.py run's end; 4. the one verdict rule. CSV tools: csvtools.py.
"""
import ast, contextlib, dataclasses, functools, hashlib, importlib, inspect, json, math, os, re, shlex, sys, time
import warnings
from pathlib import Path

import numpy as np
import torch

import train
from train import ConfigError, DataError, NonFiniteLoss, TrainConfig, atomic_write

RESULTS = train.HERE / "results"  # the committed summaries: the scorecard and README read these
say = functools.partial(print, flush=True)  # progress that shows at once, even when the output is piped

# 1. The command line ---------------------------------------------------------
CHOICES = {"device": ("auto", "cpu", "cuda", "mps"), "dtype": ("auto", "float32", "bfloat16"),
           "compile": ("auto", "true", "false")}
AT_LEAST_1 = ("n_layer", "n_head", "n_embd", "block_size", "batch_size", "gradient_accumulation_steps", "eval_interval",
              "eval_iters", "log_interval", "ckpt_interval")
AT_LEAST_0 = ("max_iters", "warmup_iters", "sample_tokens", "num_threads", "weight_decay", "grad_clip", "min_lr")

def check_config(cfg):
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
    bools = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    try:
        return bools[text.lower()] if typ is bool else typ(text)
    except (KeyError, ValueError):
        kind = {int: "an integer", float: "a number", bool: "true or false"}.get(typ, typ.__name__)
        raise ConfigError(f"--{key} expects {kind}, got '{text}'") from None

def parse_args(argv, cfg_cls=TrainConfig, doc=None):
    """A checked cfg_cls from --key=value pairs (--quick=true: from cfg_cls.QUICK) or ConfigError; --help: the keys."""
    if "--help" in argv or "-h" in argv:
        doc, comments = doc or train.__doc__, {}
        print("\n".join(line.strip() for line in doc.splitlines() if line.strip().startswith(("python ", "torchrun "))))
        if issubclass(cfg_cls, TrainConfig):
            print(f"variants (--variant=NAME): baseline, {', '.join(paper_files())}")
        print("\nkeys (--key=value):")
        for klass in reversed([k for k in cfg_cls.__mro__ if dataclasses.is_dataclass(k)]):  # a subclass's comment wins
            with contextlib.suppress(OSError, TypeError):  # no source: no comments
                source = inspect.getsource(klass)
                comments.update(re.findall(r"^[ \t]+(\w+): [\w\[\], ]+ = .*?[ \t]#[ \t]*(.*)$", source, re.M))
        for f in dataclasses.fields(cfg_cls):
            print(f"  {'--' + f.name + '=' + str(f.default):<36} {comments.get(f.name, '')}")
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

def paper_files(defining=("build_model", "run")):
    """The .py files next to train.py that define one of these functions at top level (read, not imported)."""
    return [p.stem for p in sorted(train.HERE.glob("*.py")) if p.stem not in ("train", "lab") and any(
        isinstance(node, ast.FunctionDef) and node.name in defining for node in ast.parse(p.read_text("utf-8")).body)]

def main(argv=None):
    """`python train.py [--variant=NAME] [--key=value ...]`: the baseline, or a paper file's model in the loop (a file
    with `Config` and `build_model(cfg, train_data)`); a file with only `run(argv) -> int` gets the rest of argv."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        name = ([a.split("=", 1)[1] for a in argv if a.startswith("--variant=")] or ["baseline"])[-1]
        if name != "baseline" and name not in paper_files():
            raise ConfigError(f"unknown variant '{name}'; valid variants: baseline, {', '.join(paper_files())}")
        if str(train.HERE) not in sys.path:
            sys.path.insert(0, str(train.HERE))
        module = importlib.import_module(name) if name != "baseline" else None
        if module is not None and hasattr(module, "run") and not hasattr(module, "build_model"):
            return module.run([a for a in argv if not a.startswith("--variant=")])  # it takes over its command line
        cfg = parse_args(argv, getattr(module, "Config", TrainConfig), module.__doc__ if module else None)
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

# 2. Shared steps: the baseline, fit, caches ----------------------------------
def code_hash(*modules):
    """sha256 (12 hex digits) of these modules' code without comments and docstrings: only edits that can matter."""
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
    """The cache key of train.train(cfg)'s checkpoint: its settings (not where or how it ran) and train.py's code."""
    return cache_key({k: v for k, v in dataclasses.asdict(cfg).items() if k not in RUN_ONLY}, train)

def load_baseline(path="out/baseline/ckpt.pt", config=None):
    """{"path", "config" (TrainConfig fields), "state", "train_data", "val_data"} of the baseline checkpoint, trained
    first (with `config`, default `python train.py`'s) when absent or its cache key differs; with no key: as given."""
    path, config = Path(path), dataclasses.replace(config or TrainConfig(), out_dir=str(Path(path).parent),
                                                   sample_tokens=0)
    key, key_file = baseline_key(config), path.parent / "cache_key.txt"
    stale = key_file.exists() and key_file.read_text().strip() != key
    if not path.exists() or stale:
        say(f"baseline: {f'{path} is stale (its cache key)' if stale else f'none at {path}'}; training one first")
        train.train(config)
        atomic_write(key_file, key.encode())
    else:
        why = f"cache key {key}: same settings, same train.py code" if key_file.exists() else "no cache key: as given"
        say(f"baseline: reusing {path} ({why})")
    ckpt = train.load_checkpoint(path)
    say(f"baseline: {ckpt['iter_num']} iterations, val loss {ckpt['history']['val'][-1][1]:.4f}")
    config = {k: v for k, v in ckpt["config"].items() if k in {f.name for f in dataclasses.fields(TrainConfig)}}
    _, _, (train_data, val_data) = train.load_data(TrainConfig(**config), 0, 1)  # the splits it was trained on
    return {"path": path, "config": config, "state": ckpt["model"], "train_data": train_data, "val_data": val_data}

def fit(model, next_batch, steps, learning_rate=3e-3, warmup_iters=None, log_every=None, name="fit"):
    """The loop's step on next_batch() -> (x, y) (targets -1: no loss): AdamW, warmup, cosine to lr / 10, NaN check."""
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
            say(train.progress_line(name, it, steps, seconds, f"loss {recent:.4f}", f"{1e3 * seconds:.0f} ms"))
    model.eval()
    return torch.stack(losses).tolist()

# 3. Outputs ------------------------------------------------------------------
def write_results(out_dir, table, data):
    atomic_write(Path(out_dir) / "results.md", (table + "\n").encode())
    atomic_write(Path(out_dir) / "results.json", json.dumps(data, indent=1, default=str).encode())

def record(name, exp, verdicts, summary):
    """results/<name>.json: a full run's command, config, verdicts, their numbers (not for quick or --out_dir runs)."""
    if exp.quick or exp.out_dir != type(exp)().out_dir:
        return None
    path = RESULTS / f"{name}.json"
    data = {"file": f"{name}.py", "command": command(name, exp), "config": dataclasses.asdict(exp),
            "cpu_minutes": round(time.process_time() / 60, 1), "threads": torch.get_num_threads(),  # the whole run
            "verdicts": verdicts, "summary": summary}
    plain = lambda v: v.tolist() if hasattr(v, "tolist") else str(v)  # numpy numbers and arrays
    atomic_write(path, (json.dumps(data, indent=1, default=plain) + "\n").encode())
    say(f"recorded {path} (committed; the scorecard and README read it)")
    return path

def unigram_entropies(train, val, n_symbols):
    """Train unigram entropy, val cross-entropy under add-one unigrams (nats): a model that learns ends below both."""
    counts = np.bincount(np.asarray(train), minlength=n_symbols).astype(np.float64)
    p, smoothed = counts[counts > 0] / counts.sum(), (counts + 1) / (counts.sum() + len(counts))
    return float(-(p * np.log(p)).sum()), float(-np.log(smoothed[np.asarray(val)]).mean())

def report_run(cfg, summary):
    """The end of `python train.py`: the final loss against unigram yardsticks, the loss curve and a sample."""
    out_dir, history, model, val = Path(summary["out_dir"]), summary["history"], summary["model"], summary["val_loss"]
    if int(os.environ.get("RANK", 0)) or not history["val"]:
        return
    folder = train.prepare_data(cfg.dataset, cfg.data_dir)
    encode, decode, n_symbols = train.codec(folder)
    h_train, h_val = unigram_entropies(*(train.load_tokens(folder, s, 0) for s in ("train", "val")), n_symbols)
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
    import matplotlib.pyplot as plt
    fig.tight_layout()
    atomic_write(path, functools.partial(fig.savefig, format=Path(path).suffix.lstrip(".")))
    plt.close(fig)

# 4. Statistics and the verdict rule, stated once -----------------------------
# An Estimate is a mean, a sample SD (ddof 1) and n; a Difference of two arms carries its 95% t-interval (paired when
# the arms share seeds, Welch otherwise, one-sample against a number). A claim is supported when the whole interval lies
# on the claim's side of its margin, not supported when it lies on the other side, inconclusive otherwise; never from
# fewer than MIN_SEEDS seeds or a quick run, and only when the file's positive control, judged by the same rule, passed.

MIN_SEEDS = 3
VERDICTS = ("supported", "not supported", "inconclusive", "quick: not a verdict")
NEEDS = {"above": "> {:.3g}", "below": "< {:.3g}", "within": "within ±{:.3g}"}  # the claim: d > m, d < m or |d| < m

def decimals(scale):
    """Decimals to print a number whose uncertainty is `scale`: 3, or more when the scale is smaller."""
    return 3 if not np.isfinite(scale) or scale < 1e-9 else int(np.clip(-math.floor(math.log10(scale)), 3, 6))

@dataclasses.dataclass(frozen=True)
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

@dataclasses.dataclass(frozen=True)
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
    """a - b over seeds with its 95% t-interval: paired (the arms share seeds), Welch, or one-sample (b a number)."""
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
    """The rule on one interval: touching the margin counts against; no interval (NaN compares false): inconclusive."""
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

def control(text, conditions, seeds, quick=False, note=""):
    """A positive control, judged as a claim with no control of its own: {"passed", "text"}; text: no ": " inside."""
    v = verdict(text, "", conditions, {"passed": True, "text": ""}, seeds, "", quick)
    passed = v["verdict"] == "supported"
    return {"passed": passed, "text": f"{text}: {v['evidence']}{note}: " +
            ("passed" if passed else f"not judged ({v['why']})" if v["why"] else "FAILED")}

def verdict(claim, paper_says, conditions, gate, seeds, command, quick=False, against=False):
    """The record every paper file's verdicts() returns: the claim's conditions together (supported when every one is,
    not supported when any one is not; mirrored when against), gated by quick, the seeds and the control `gate`."""
    conditions = [conditions] if isinstance(conditions, dict) else conditions
    seeds = min([seeds] + [c["n"] for c in conditions])  # the seeds the data hold, not only the ones asked for
    why = ("quick run" if quick else f"{seeds} seed(s); a verdict needs {MIN_SEEDS}" if seeds < MIN_SEEDS
           else "" if gate["passed"] else "the positive control did not pass")
    got = {c["outcome"] for c in conditions}
    outcome = "not supported" if "not supported" in got else "supported" if got <= {"supported"} else "inconclusive"
    outcome = {"supported": "not supported", "not supported": "supported"}.get(outcome, outcome) if against else outcome
    return {"claim": claim, "paper_says": paper_says,
            "verdict": "quick: not a verdict" if quick else "inconclusive" if why else outcome, "why": why,
            "evidence": "; ".join(c["text"] for c in conditions), "conditions": conditions, "against": against,
            "control": gate["text"], "seeds": seeds, "command": command, "quick": quick}

def per_seed(rows, key, **match):
    """One number per seed, in seed order (so that two arms pair by seed), of the rows whose fields equal `match`."""
    return [r[key] for r in sorted((r for r in rows if all(r[k] == v for k, v in match.items())),
                                   key=lambda r: r["seed"])]

def verdict_line(v):
    why, paper = f" ({v['why']})" if v["why"] else "", f" (paper: {v['paper_says']})" if v["paper_says"] else ""
    return f"- {v['verdict'].upper()}{why}: {v['claim']}{paper}; {v['evidence']}"

def command(name, exp):
    """`python NAME.py` and every field of `exp` that differs from the defaults (the quick ones when exp.quick)."""
    cls = type(exp)
    default = dataclasses.replace(cls(), **cls.QUICK, quick=True) if exp.quick else cls()
    flags = ["--quick=true"] * exp.quick + [
        f"--{f.name}={str(v).lower() if isinstance(v, bool) else v}" for f in dataclasses.fields(cls)
        if f.name != "quick" and (v := getattr(exp, f.name)) != getattr(default, f.name)]
    return " ".join(["python", f"{name}.py"] + [shlex.quote(f) for f in flags])
