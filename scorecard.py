"""
scorecard.py: the tables in README.md and docs/<file>.md, read from the committed results/<file>.json, never typed.

    python scorecard.py            # rewrite every generated block
    python scorecard.py --check    # exit 1 if any block differs from what results/ says (CI runs it)

A full run of a paper file records results/<file>.json (lab.record): its command, config, verdicts, the numbers they
rest on ("summary") and, since lab.record writes them, the run's CPU minutes and threads. Each block sits between a
start and an end marker (`markers`), and this script owns what is between them:
- README.md "files": one row per file: the paper, the command that recorded its results, that run's CPU time, and
  its verdicts counted ("3 supported · 1 inconclusive"). The non-paper files are the fixed rows of OTHER_FILES.
- README.md "scorecard": per paper file a row with its command and controls, then one short row per claim: the
  claim, our verdict, the interval that decided it (the first deciding one where several conditions decide).
- docs/<file>.md "results": the run, every control and claim in full (the paper's words, the evidence, n) and the
  file's key numbers: the tables its function in NUMBERS builds from the summary, each cell a mean ± sample sd over
  seeds or one recorded number.
A file with no results/<file>.json yet says so.
"""
import json
import math
import re
import statistics
import sys
from pathlib import Path

import lab

HERE = Path(__file__).resolve().parent
PAPERS = {  # what each paper file reproduces (the files table's second column)
    "complexformer": "ComplexFormer, arXiv:2505.10222",
    "cot_probe": "\"CoT imitates the form of reasoning\", arXiv:2506.02878",
    "infoflow": "\"SURPRISE! and When to Schedule It\", arXiv:2106.02851",
    "pdl": "Power-Law Decay Loss, arXiv:2505.16900",
    "rationality": "GPT economic rationality, arXiv:2305.12763; choice consistency, arXiv:2505.05275",
    "vapo": "VAPO, arXiv:2504.05118; critiques arXiv:2505.17997, arXiv:2506.03038",
    "vq_logits": "VQ-Logits, arXiv:2505.10202",
}
OTHER_FILES = [  # file, what it is, command, time: fixed rows, not from results/
    ("train.py", "the shared GPT, data, training loop ([notes](docs/train.md))", "`python train.py`",
     "about 4 min (2 threads)"),
    ("lab.py", "command line, baseline, results, the one verdict rule", "(imported)", "-"),
    ("csvtools.py", "CSV files in and out, for rationality.py and infoflow.py", "(imported)", "-"),
    ("bench.py", "speed targets as ratios ([table](docs/train.md#benchmarks-python-benchpy))", "`python bench.py`",
     "about 2.5 min"),
]
VERDICTS = ("supported", "not supported", "inconclusive")


def markers(name):
    """The two lines around block `name`."""
    return f"<!-- {name}:start (python scorecard.py writes this block) -->", f"<!-- {name}:end -->"


START, END = markers("scorecard")


def cell(text, limit=None):
    """One markdown table cell: no pipes or newlines inside, no "(95% paired t, n=3)" (every interval is a 95% one;
    its kind is in results/ and on the docs page, n has its own column); at most `limit` characters."""
    text = re.sub(r" \(95% [^,()]*, n=\d+\)", "", " ".join(str(text).replace("|", "/").split()))
    return text if limit is None or len(text) <= limit else text[:limit - 1] + "…"


def decided_by(v):
    """A verdict's deciding conditions and how many of how many: all of them when all hold, else the failing ones
    (or, if none fails, the undecided ones)."""
    conditions = v.get("conditions") or [{"outcome": v["verdict"], "text": v["evidence"]}]
    if len(conditions) == 1:
        return "", conditions
    if all(c["outcome"] == "supported" for c in conditions):  # a claim against them is then not supported
        return f"all {len(conditions)} hold: ", conditions
    decided = [c for c in conditions if c["outcome"] == "not supported"] or \
        [c for c in conditions if c["outcome"] == "inconclusive"]
    return f"{len(decided)} of {len(conditions)}: ", decided


def interval(v):
    """The shortest deciding evidence: the first deciding condition's interval and margin, and how many decided."""
    head, conditions = decided_by(v)
    return ("not judged: " if v.get("why") else "") + head + conditions[0].get("interval", conditions[0]["text"])


def tally(results):
    """'3 supported · 2 not supported · 1 inconclusive' (zero counts left out)."""
    counts = [(sum(v["verdict"] == name for v in results["verdicts"]), name) for name in VERDICTS]
    return " · ".join(f"{n} {name}" for n, name in counts if n) or "no verdicts"


def control_row(text, label, seeds):
    """A positive control as a docs table row: its name, its state (passed, FAILED, not judged), every condition."""
    name, rest = text.split(": ", 1)
    conditions, state = rest.rsplit(": ", 1)
    seeds = min(map(int, re.findall(r", n=(\d+)\)", conditions)), default=seeds)  # the seeds it was judged on
    evidence = conditions.replace("|", "/")
    return f"| control{' ' + label if label else ''}: {cell(name)} | **{state}** | {evidence} | {seeds} |"


def controls_of(results):
    """The file's distinct controls in order, and the label function (c1, c2, ... when there are several)."""
    controls = list(dict.fromkeys(v["control"] for v in results["verdicts"]))
    return controls, (lambda c: f"c{controls.index(c) + 1}") if len(controls) > 1 else (lambda c: "")


def file_rows(results):
    """The docs page's scorecard rows of one paper file: each control, each claim, every word, the evidence whole."""
    verdicts, seeds = results["verdicts"], results["config"].get("seeds", "-")
    controls, label = controls_of(results)
    rows = [control_row(c, label(c), seeds) for c in controls]
    for v in verdicts:
        paper = f" ({cell(v['paper_says'])})" if v.get("paper_says") else ""
        why = f" ({v['why'].replace('the positive control did not pass', 'control failed')})" if v.get("why") else ""
        gate = f" ({label(v['control'])})" if len(controls) > 1 else ""
        evidence = v["evidence"].replace("|", "/")
        rows.append(f"| {cell(v['claim'])}{paper} | **{v['verdict']}**{why}{gate} | {evidence} | {v['seeds']} |")
    return rows


def short_rows(name, results):
    """README's rows for one paper file: its command and controls, then per claim the verdict and deciding interval."""
    if results is None:
        return [f"| **`{name}.py`**: no `results/{name}.json` yet | | | |"]
    controls, label = controls_of(results)
    states = ", ".join(f"{label(c) + ' ' if label(c) else ''}{c.rsplit(': ', 1)[1]}" for c in controls)
    plural = "s" * (len(controls) > 1)
    rows = [f"| **[`{name}.py`](docs/{name}.md)** · `{results['command']}` · control{plural}: {states} | | | |"]
    for v in results["verdicts"]:
        why = " (control failed)" if "control" in v.get("why", "") else f" ({v['why']})" if v.get("why") else ""
        rows.append(f"| {cell(v['claim'], 52)} | **{v['verdict']}**{why} | {cell(interval(v), 48)} | {v['seeds']} |")
    return rows


def load(name, root=lab.RESULTS):
    """results/<name>.json, or None when the file has not recorded one yet."""
    path = Path(root) / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def cpu_time(results):
    """The recording run's CPU minutes and threads, or '-' where its results predate lab.record writing them."""
    if results is None or "cpu_minutes" not in results:
        return "-"
    threads = results.get("threads", "?")
    return f"{results['cpu_minutes']:g} min ({threads} thread{'s' * (threads != 1)})"


def files_table(root=lab.RESULTS):
    """README's files table: the fixed rows, then one row per paper file from its results."""
    lines = ["| file | paper | command (recorded `results/`) | CPU time | verdicts |", "|---|---|---|---|---|"]
    lines += [f"| `{f}` | {what} | {cmd} | {time} | |" for f, what, cmd, time in OTHER_FILES]
    for name in lab.paper_files():
        results = load(name, root)
        cmd = f"`{results['command']}`" if results else f"`python {name}.py`"
        lines.append(f"| [`{name}.py`](docs/{name}.md) | {PAPERS.get(name, '')} | {cmd} | {cpu_time(results)} | "
                     f"{tally(results) if results else '-'} |")
    note = ("CPU time: of the process that recorded the results, all threads (rows it reused from earlier runs not "
            "counted); \"-\": the results predate lab.record writing it ([CHANGELOG.md](CHANGELOG.md) has the times "
            "measured by hand).")
    return "\n".join(lines + ["", note])


def scorecard(root=lab.RESULTS):
    """README's scorecard: one table, every paper file in file order, one short row per claim."""
    lines = ["| claim | verdict | deciding 95% interval, margin | n |", "|---|---|---|---|"]
    for name in lab.paper_files():
        lines += short_rows(name, load(name, root))
    return "\n".join(lines)


# Key numbers per paper file: tables built from results/<file>.json's summary --------------------------------------
def mean_sd(values, digits=3):
    """'mean ± sd' (sample sd) of the finite values, one value as itself, '-' when there are none; a dict with
    "mean" and "sd" (a summary's own statistics) as it is."""
    if isinstance(values, dict):
        mean, sd = values["mean"], values["sd"]
        return f"{mean:.{digits}f} ± {sd:.{digits}f}" if math.isfinite(mean) and math.isfinite(sd) else str(mean)
    values = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if len(values) < 2:
        return f"{values[0]:.{digits}f}" if values else "-"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def table(headers, rows, note=""):
    """Markdown table lines (and a note under it)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines + (["", note] if note else [])


def complexformer_numbers(s):
    names = {"rope": "RoPE", "cmha_authors": "CMHA from the authors' start", "cmha": "CMHA from delta = 1",
             "cmha_authors_fixed": "the authors' start, delta and b frozen", "cmha_delta0": "delta = 0, frozen",
             "none": "no positional encoding"}
    rows = [[names.get(arm, arm), f"{st['lr']:g}", len(st["seeds"]), st["params"], mean_sd(st["1x"]),
             mean_sd(st["2x"]), mean_sd(st["4x"])] for arm, st in s["stats"].items()]
    return table(["arm", "lr", "seeds", "params", "loss, positions < 64", "64-127 (past training)", "128-255"], rows,
                 "nats per character on 48 validation windows of 4x the training length, mean ± sample sd over seeds.")


def cot_probe_numbers(s):
    rows, probes = [], []
    for regime in (r for r in s if r != "control"):
        mean, sd = s[regime]["mean"], s[regime]["sd"]
        for cond in mean:
            m, d = mean[cond], sd[cond]
            pm = [f"{m[key]:.3f} ± {d[key]:.3f}" if key in m else "-" for key in ("in_range", "long", "aoc")]
            two = [f"{m[a]:.2f} / {m[b]:.2f}" if a in m else "-"
                   for a, b in (("follow_rate", "truth_rate"), ("form_long", "content_long"))]
            rows.append([regime, cond] + pm + two)
            probes += [[regime, cond, probe, f"{acc:.3f}"] for probe, acc in m.get("linear_probe", {}).items()]
    failures = [[regime, mode, f"{share:.3f}"] for regime in (r for r in s if r != "control")
                for mode, share in s[regime]["mean"]["cot"].get("failure_modes_long", {}).items()]
    steps = [[regime, ", ".join(f"{a:.2f}" for a in s[regime]["mean"]["cot"]["step_accuracy_longest"])]
             for regime in (r for r in s if r != "control")]
    return (table(["regime", "condition", "accuracy in range", "longer", "AOC", "follow / truth after a mistake",
                   "well-formed / right values, longer"], rows,
                  "Mean ± sample sd over seeds (follow/truth and the shares: means).") + [""] +
            table(["regime", "the chain model on longer problems", "share"], failures) + [""] +
            table(["regime", "step accuracy at the longest length, given the true chain so far, step 1, 2, ..."],
                  steps) + [""] + table(["regime", "condition", "linear probe", "accuracy"], probes))


def infoflow_numbers(s):
    generating = {"late": "late surprise", "suspense": "mean suspense", "total": "total surprise"}
    rows = []
    for beliefs, runs in (("exact", s["part2_recovery"]), ("viewer reports", s["part2_recovery_reported"])):
        for model, predictor in generating.items():
            found = sum(max(run[model], key=run[model].get) == predictor for run in runs)
            rows.append([model, beliefs] + [mean_sd([run[model][p] for run in runs]) for p in runs[0][model]] +
                        [f"{found} of {len(runs)}"])
    fits = s["part2_fits"]
    coef = [[beliefs] + [mean_sd([f[beliefs]["coef"][i] for f in fits]) for i in range(4)] +
            [mean_sd([f[beliefs]["r2"] for f in fits])] for beliefs in fits[0]]
    losses = [[key.removeprefix("loss_").replace("_", " "), mean_sd([run[key] for run in s["part3"]])]
              for key in s["part3"][0]]
    return (table(["ratings generated by", "beliefs"] + [f"R^2, {p}" for p in s["part2_recovery"][0]["late"]] +
                  ["generating model wins"], rows, f"Mean ± sample sd over {len(s['part2_recovery'])} seeds.") + [""] +
            table(["late model, OLS from", "intercept (true 5)", "early (1)", "middle (2)", "late (6)", "R^2"], coef)
            + [""] + table(["win probability on held-out games", "cross-entropy"], losses,
                           f"Mean ± sample sd over {len(s['part3'])} seeds."))


def pdl_numbers(s):
    keys = [("temperature", "T"), ("rare_prob", "p(true), rare"), ("rare_cross_entropy", "cross-entropy, rare"),
            ("sample_entropy", "sample entropy"), ("rare_share", "rare share"), ("unseen_share", "never-seen share")]
    rows = [[name, f"{math.exp(m['cross_entropy']['mean']):.0f}"] +
            [mean_sd(m[k], 4 if k == "rare_prob" else 3) for k, _ in keys] for name, m in s["samplers"].items()]
    return table(["sampler", "val perplexity"] + [label for _, label in keys], rows,
                 "Mean ± sample sd over seeds; perplexity: exp of the mean validation cross-entropy.")


def rationality_numbers(s):
    domains = {"risk": "risk", "time": "time", "soci": "social", "food": "food"}
    per_seed = s["part2"]
    ccei = ["people", "random", "gpt_plain_T0", "gpt_plain_T1", "gpt_price_T0", "gpt_discrete_T0"]
    slope = ["people", "constant50", "median", "gpt_plain_T0", "gpt_plain_T1"]

    def col(domain, key):
        return [seed[domain][key] for seed in per_seed]
    rows = [[label] + [mean_sd(col(d, k)) for k in ccei] for d, label in domains.items()]
    slopes = [[label] + [f"{mean_sd(col(d, k + '_slope'))} [{statistics.mean(col(d, k + '_distinct')):.1f}]"
                         for k in slope] for d, label in domains.items()]
    part3 = [[weight] + [mean_sd([run[k] for run in runs], 2) for k in runs[0]] for weight, runs in s["part3"].items()]
    return (table(["CCEI", "people", "random", "our GPT, T=0", "T=1", "price frame, T=0", "11 options, T=0"], rows,
                  f"Mean ± sample sd over {len(per_seed)} seeds.") + [""] +
            table(["demand slope [distinct answers per run]", "people", "always 50", "people's median",
                   "our GPT, T=0", "T=1"], slopes) + [""] +
            table(["common weight in shopping"] + [k.replace("_", " ") for k in s["part3"]["0.0"][0]], part3))


def vapo_numbers(s):
    names = {"sft_greedy": "SFT, greedy", "sft_t0.3": "SFT at T = 0.3 (sharpening)", "sft_t1": "SFT at T = 1",
             "mc": "Monte Carlo returns", "ppo": "PPO", "grpo": "GRPO", "vapo": "VAPO"}
    keys = ["reward", "greedy", "clipfrac", "approx_kl", "critic_ev"]
    rows = [[names.get(run, run)] + [mean_sd(m[k], 4 if k in ("clipfrac", "approx_kl") else 3) if k in m else "-"
                                      for k in keys] for run, m in s["per_seed"].items()]
    evs = [["the pretrained critic", mean_sd(s["pretrained_critic_ev"])]] + \
        [[f"a lookup table on {key.replace('_', ' ')}", mean_sd(evs)] for key, evs in s["tables"].items()]
    task = [[key.replace("_", " "), f"{value:.3f}"] for key, value in s["task"].items()]
    return (table(["run", "sampled reward, last iterations", "held-out success, greedy", "clipfrac", "approx-KL",
                   "critic EV"], rows, "Mean ± sample sd over seeds.") + [""] +
            table(["held-out explained variance of the outcome", "EV"], evs) + [""] + table(["the task", ""], task))


def vq_logits_numbers(s):
    heads = [[head, mean_sd(loss), mean_sd(s["gap"][head]) if head in s["gap"] else "-"]
             for head, loss in s["final_val_loss"].items()]
    floors = [[f["K"], f["map"], f"{f['floor']:.3f} [{f['low']:.3f}, {f['high']:.3f}]",
               mean_sd(s["projected_cost"].get(f"{f['map']}@{f['K']}", []))] for f in s["floors"]]
    speed = [[key, mean_sd([t["full_logits"] / t[key] for t in s["timings_s"]], 1)]
             for key in s["timings_s"][0] if key != "full_logits"]
    return (table(["head", "val loss", "gap to the full head (nats)"], heads,
                  f"Mean ± sample sd over seeds; the add-one unigram model of the validation text: "
                  f"{s['unigram_val']:.3f}.") + [""] +
            table(["K", "map", "floor [95%]", "projected cost"], floors,
                  "Nats; floors with block-bootstrap intervals, projections over the trained full heads.") + [""] +
            table(["timing (h W^T over)", "speedup"], speed))


NUMBERS = {"complexformer": complexformer_numbers, "cot_probe": cot_probe_numbers, "infoflow": infoflow_numbers,
           "pdl": pdl_numbers, "rationality": rationality_numbers, "vapo": vapo_numbers,
           "vq_logits": vq_logits_numbers}


def docs_block(name, root=lab.RESULTS):
    """docs/<name>.md's block: the run, the full scorecard of the file, its key numbers."""
    results = load(name, root)
    if results is None:
        return f"No `results/{name}.json` yet: run `python {name}.py` to record one."
    head = (f"Recorded by `{results['command']}` (CPU time {cpu_time(results)}) in "
            f"[results/{name}.json](../results/{name}.json); n: the seeds a row was judged on.")
    card = ["| claim (the paper says) | verdict | evidence | n |", "|---|---|---|---|"] + \
        file_rows(results)
    try:
        numbers = NUMBERS[name](results["summary"]) if name in NUMBERS else []
    except (KeyError, IndexError, TypeError) as e:
        raise ValueError(f"results/{name}.json's summary lacks what scorecard.{name}_numbers reads: {e!r}") from None
    return "\n".join([head, ""] + card + ([""] + numbers if numbers else []))


def blocks(root=lab.RESULTS):
    """Every generated block: (file, block name, text)."""
    return [(HERE / "README.md", "files", files_table(root)), (HERE / "README.md", "scorecard", scorecard(root))] + \
        [(HERE / "docs" / f"{name}.md", "results", docs_block(name, root)) for name in lab.paper_files()]


def with_block(text, block, name="scorecard"):
    """The text with block `name` (between its markers) replaced."""
    start, end = markers(name)
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise ValueError(f"needs exactly one '{start}' line followed by one '{end}' line")
    head, rest = text.split(start)
    return head + start + "\n" + block + "\n" + end + rest.split(end, 1)[1]


def updated_files(root=lab.RESULTS):
    """{path: (text now, text with every block current)}."""
    files = {}
    for path, name, block in blocks(root):
        if path not in files:
            if not path.exists():
                raise ValueError(f"{path.relative_to(HERE)} is missing")
            text = path.read_text(encoding="utf-8")
            files[path] = (text, text)
        try:
            files[path] = (files[path][0], with_block(files[path][1], block, name))
        except ValueError as e:
            raise ValueError(f"{path.relative_to(HERE)} {e}") from None
    return files


def main(argv):
    if argv not in ([], ["--check"]):
        print(f"error: unknown arguments {' '.join(argv)}; use no argument, or --check", file=sys.stderr)
        return 2
    try:
        files = updated_files()
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    stale = [path.relative_to(HERE) for path, (now, current) in files.items() if now != current]
    if argv == ["--check"]:
        print(f"generated blocks differ from results/ in: {', '.join(map(str, stale))} (run python scorecard.py)"
              if stale else "every generated block is up to date")
        return 1 if stale else 0
    for path, (now, current) in files.items():
        if now != current:
            lab.atomic_write(path, current.encode("utf-8"))
    print(f"rewrote {', '.join(map(str, stale))}" if stale else "every generated block was up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
