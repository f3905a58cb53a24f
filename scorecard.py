"""
scorecard.py: README's scorecard, read from the committed results/<file>.json, never typed by hand.

    python scorecard.py            # rewrite the block between the scorecard markers in README.md
    python scorecard.py --check    # exit 1 if README's block differs from what results/ says

A full run of a paper file records results/<file>.json (lab.record): its command, config, verdicts and the numbers
they rest on. Per file the block shows the command and the seeds once, each positive control once, then one line per
claim: the claim (what the paper says), our verdict, the evidence that decided it (the 95% interval against the
claim's margin). A file with no results/<file>.json yet says so.
"""
import json
import re
import sys
from pathlib import Path

import lab

START, END = "<!-- scorecard:start (python scorecard.py writes this block) -->", "<!-- scorecard:end -->"


def cell(text, limit=None):
    """One markdown table cell: no pipes or newlines inside, no "(95% paired t, n=3)" (every interval is a 95% one;
    its kind is in results/, n has its own column); at most `limit` characters."""
    text = re.sub(r" \(95% [^,()]*, n=\d+\)", "", " ".join(str(text).replace("|", "/").split()))
    return text if limit is None or len(text) <= limit else text[:limit - 1] + "…"


def deciding(v):
    """The evidence that decided a verdict: the one condition, or of several the ones that decided it; for a
    verdict withheld (control, seeds), the reason first."""
    conditions = v.get("conditions") or [{"outcome": v["verdict"], "text": v["evidence"]}]
    head = "not judged: " if v.get("why") else ""  # why: in the verdict column
    if len(conditions) == 1:  # the claim says what is compared: the interval and the margin are the evidence
        return head + conditions[0].get("interval", conditions[0]["text"])
    if all(c["outcome"] == "supported" for c in conditions):  # a claim against them is then not supported
        return head + f"all {len(conditions)} hold: " + conditions[0]["text"]
    decided = [c for c in conditions if c["outcome"] == "not supported"] or \
        [c for c in conditions if c["outcome"] == "inconclusive"]
    return head + f"{len(decided)} of {len(conditions)}: " + "; ".join(c["text"] for c in decided[:2])


def control_row(text, label, seeds):
    """A positive control as a table row: its name, its state (passed, FAILED, not judged), its first interval."""
    name, rest = text.split(": ", 1)
    conditions, state = rest.rsplit(": ", 1)
    more = f" (+{conditions.count('; ')} more)" if "; " in conditions else ""
    seeds = min(map(int, re.findall(r", n=(\d+)\)", conditions)), default=seeds)  # the seeds it was judged on
    return f"| control{' ' + label if label else ''}: {cell(name, 60)} | **{state}** | " \
           f"{cell(conditions.split('; ')[0], 60)}{more} | {seeds} |"


def file_rows(name, results):
    """The scorecard rows of one paper file: a row naming it and its command, each control, each claim."""
    if results is None:
        return [f"| **`{name}.py`**: not rerun under the new rule (no `results/{name}.json` yet) | | | |"]
    verdicts, seeds = results["verdicts"], results["config"].get("seeds", "-")
    controls = list(dict.fromkeys(v["control"] for v in verdicts))
    label = (lambda c: f"c{controls.index(c) + 1}") if len(controls) > 1 else (lambda c: "")
    rows = [f"| **`{name}.py`** · `{results['command']}` | | | |"]
    rows += [control_row(c, label(c), seeds) for c in controls]
    for v, before in zip(verdicts, [{}] + verdicts):
        said = v.get("paper_says") and v["paper_says"] != before.get("paper_says")  # said once for a run of claims
        paper = f" ({cell(v['paper_says'], 36)})" if said else ""
        why = f" ({v['why'].replace('the positive control did not pass', 'control failed')})" if v.get("why") else ""
        gate = f" ({label(v['control'])})" if len(controls) > 1 else ""
        rows.append(f"| {cell(v['claim'], 60)}{paper} | **{v['verdict']}**{why}{gate} | {cell(deciding(v), 58)} | "
                    f"{v['seeds']} |")
    return rows


def scorecard(root=lab.RESULTS):
    """The whole block, one table, every paper file in file order."""
    lines = ["| claim (the paper says) | verdict | evidence: 95% interval, margin | n |",
             "|---|---|---|---|"]
    for name in lab.paper_files():
        path = Path(root) / f"{name}.json"
        lines += file_rows(name, json.loads(path.read_text()) if path.exists() else None)
    return "\n".join(lines)


def with_scorecard(readme, block):
    """README's text with the block between the markers replaced."""
    if readme.count(START) != 1 or readme.count(END) != 1 or readme.index(START) > readme.index(END):
        raise ValueError(f"README.md needs exactly one '{START}' line followed by one '{END}' line")
    head, rest = readme.split(START)
    return head + START + "\n" + block + "\n" + END + rest.split(END, 1)[1]


def main(argv):
    if argv not in ([], ["--check"]):
        print(f"error: unknown arguments {' '.join(argv)}; use no argument, or --check", file=sys.stderr)
        return 2
    readme_path = Path(__file__).resolve().parent / "README.md"
    readme = readme_path.read_text(encoding="utf-8")
    try:
        updated = with_scorecard(readme, scorecard())
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if argv == ["--check"]:
        print("README's scorecard is up to date" if updated == readme else "README's scorecard differs from results/")
        return 0 if updated == readme else 1
    lab.atomic_write(readme_path, updated.encode("utf-8"))
    print(f"wrote the scorecard ({updated.count(chr(10)) - readme.count(chr(10)):+d} lines) into {readme_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
