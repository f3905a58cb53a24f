"""
scorecard.py: README's scorecard, one row per paper claim, read from each paper file's results, never typed by hand.

    python scorecard.py            # rewrite the block between the scorecard markers in README.md
    python scorecard.py --check    # exit 1 if README's block differs from what the results say

Every paper file writes `out/<file>/results.json` with a `verdict` list; each entry has at least "claim",
"verdict" (supported / not supported / inconclusive, maybe with a reason), "control" (the positive control's
result), "seeds" and "command", and may have "paper_says". Quick runs write to `out/<file>_quick/` and mark their
entries "quick": they never reach the scorecard. A file with no results yet gets one row that says how to run it.
"""
import json
import sys
from pathlib import Path

import train

START, END = "<!-- scorecard:start (python scorecard.py writes this block) -->", "<!-- scorecard:end -->"
HEADER = ["| file | claim (the paper says) | our verdict | positive control | seeds | command |",
          "|---|---|---|---|---|---|"]


def cell(text):
    """One markdown table cell: no pipes or newlines inside."""
    return " ".join(str(text).replace("|", "/").split())


def verdict_rows(name, results):
    """The scorecard rows of one file's results.json (a dict), or one 'not run' row when there are none."""
    entries = [v for v in (results or {}).get("verdict") or [] if isinstance(v, dict) and not v.get("quick")]
    if not entries:
        return [f"| `{name}.py` | (no results yet) | not run | - | - | `python {name}.py` |"]
    rows = []
    for v in entries:
        seeds = len(v["seeds"]) if isinstance(v.get("seeds"), list) else v.get("seeds", "-")
        claim = cell(v["claim"]) + (f" ({cell(v['paper_says'])})" if v.get("paper_says") else "")
        rows.append(f"| `{name}.py` | {claim} | **{cell(v['verdict'])}** | {cell(v.get('control', '-'))} | {seeds} "
                    f"| `{cell(v.get('command', 'python ' + name + '.py'))}` |")
    return rows


def scorecard(out_root="out"):
    """The whole table, for every paper file next to train.py, in file order."""
    lines = list(HEADER)
    for name in train.paper_files():
        path = Path(out_root) / name / "results.json"
        lines += verdict_rows(name, json.loads(path.read_text()) if path.exists() else None)
    return "\n".join(lines)


def with_scorecard(readme, table):
    """README's text with the block between the markers replaced by `table`."""
    if readme.count(START) != 1 or readme.count(END) != 1 or readme.index(START) > readme.index(END):
        raise ValueError(f"README.md needs exactly one '{START}' line followed by one '{END}' line")
    head, rest = readme.split(START)
    return head + START + "\n" + table + "\n" + END + rest.split(END, 1)[1]


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
        print("README's scorecard is up to date" if updated == readme else "README's scorecard differs from out/")
        return 0 if updated == readme else 1
    train.atomic_write(readme_path, updated.encode("utf-8"))
    print(f"wrote the scorecard ({updated.count(chr(10)) - readme.count(chr(10)):+d} lines) into {readme_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
