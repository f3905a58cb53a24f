"""
The docs stay true: links resolve, numbers trace to results/, README stays short, the generated blocks are current.

1. Links. Every relative link and image in README.md, WORKSHOP.md, CHANGELOG.md and docs/*.md names a file that
   exists, and a '#anchor' names a heading of that file by GitHub's rule: lowercase; drop every character that is not
   a letter, digit, space, '-' or '_'; spaces to '-'; a repeated heading gets -1, -2, ... Links inside code are not
   links; web addresses are not checked.
2. Numbers. Every decimal number that docs/<file>.md prints outside its generated block traces to
   results/<file>.json. The rule, strict and simple:
   - A decimal is digits, a point, digits: 5.437, +0.012, 0.42, 1.2%, 6.44M. Integers ("3 seeds", "2 x 64", "1,024"),
     scientific notation (4e-3), version numbers (2.13.0) and arXiv ids are config or names, not checked.
   - It traces when a number of the results file, printed to the same number of decimals, gives the same digits:
     with its sign when the page writes one (+0.012 needs +0.012; a '-' between two numbers is a range, not a sign),
     by size otherwise ("0.301 nats behind" matches +0.301); a number with '%' may also be a results number x 100.
   - The numbers of a results file: every number in it, every decimal inside its texts (the verdicts' evidence), the
     mean and sample sd of every list of numbers, and of every field across a list of records (the per-seed rows).
     A sample sd, a number under a key "sd" and a number after '±' in a text are spreads: they trace unsigned prints
     only.
     The single fields of a list of more than 5 records are not among them: with 20 seeds of R^2 values almost any
     0.xyz would trace.
   - Not checked: code (inline and fenced: commands, flags, identifiers), link targets, block quotes (`> ...`: the
     paper's own words and numbers), and a paragraph, list item or table that names a command in backticks
     (`python ...`, `OMP_NUM_THREADS=1 python ...`, `torchrun ...`), in its own text or in its section's heading,
     other than the one that recorded results/<file>.json: its numbers come from that command. docs/train.md has no
     results file, so each of its numbers must stand under a command.
   The check is as strong as a file's numbers are sparse at the printed precision; print three decimals where it
   matters. test_a_changed_number_is_caught shows that it catches a changed number.
3. README.md is at most 15 KB.
4. The generated blocks are what results/ says (`python scorecard.py --check`).
"""
import json
import math
import re
import statistics
from pathlib import Path

import scorecard

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", ROOT / "WORKSHOP.md", ROOT / "CHANGELOG.md"] + sorted((ROOT / "docs").glob("*.md"))
FENCE = re.compile(r"^```.*?^```[ \t]*$", re.MULTILINE | re.DOTALL)
CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")
COMMAND = re.compile(r"`(?:OMP_NUM_THREADS=\d+ )?((?:python|torchrun) [^`]*)`")
DECIMAL = re.compile(r"(?<![\w.])(\d+\.\d+)(?!\d|\.\d|[eE][-+]?\d)(%?)")
GENERATED = re.compile(r"<!-- (\w+):start .*?<!-- \1:end -->", re.DOTALL)


def anchor(heading):
    """GitHub's anchor for a heading line ('## Benchmarks (`python bench.py`)' -> 'benchmarks-python-benchpy')."""
    return re.sub(r"[^\w\- ]", "", heading.lstrip("#").strip().lower()).replace(" ", "-")


def anchors(text):
    """Every heading's anchor in a markdown text, repeats numbered as GitHub numbers them."""
    seen, out = {}, set()
    for line in FENCE.sub("", text).splitlines():
        if re.match(r"#{1,6} ", line):
            base = anchor(line)
            out.add(base if base not in seen else f"{base}-{seen[base]}")
            seen[base] = seen.get(base, 0) + 1
    return out


def broken_links(path):
    """The relative links of a markdown file that name no file, or no heading of it."""
    text = CODE.sub("", FENCE.sub("", path.read_text(encoding="utf-8")))
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        file, _, fragment = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if not dest.exists():
            broken.append(f"{path.name}: {target} (no such file)")
        elif fragment and (dest.is_dir() or fragment not in anchors(dest.read_text(encoding="utf-8"))):
            broken.append(f"{path.name}: {target} (no such heading)")
    return broken


def decimals(text):
    """(sign, digits, '%', after '±') of every decimal in a text; the sign '' unless a '+' or '-' stands right
    before it and not after a letter or digit (in 0.96-0.98 the '-' makes a range)."""
    for m in DECIMAL.finditer(text):
        before = text[max(0, m.start() - 3):m.start()]
        sign = before[-1:] if before[-1:] in ("+", "-") and not before[-2:-1].isalnum() else ""
        yield sign, m.group(1), m.group(2), "±" in before


def finite(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def fields(record, path=()):
    """(path, number) for every number inside a record, however deep."""
    if finite(record):
        yield path, record
    elif isinstance(record, (dict, list)):
        for key, value in (record.items() if isinstance(record, dict) else enumerate(record)):
            yield from fields(value, path + (key,))


def reported(x, values, spreads, single=True, spread=False):
    """Add to `values` and `spreads` the numbers a results file reports (the rule in the module docstring); a sample
    sd, a number under a key "sd" and a number after '±' in a text are spreads."""
    if finite(x):
        if single:
            (spreads if spread else values).add(x)
    elif isinstance(x, str):
        for sign, digits, _, after_pm in decimals(x):
            (spreads if spread or after_pm else values).add(float(sign + digits))
    elif isinstance(x, dict):
        for key, value in x.items():
            reported(value, values, spreads, single, spread or key == "sd")
    elif isinstance(x, list):
        numbers = [v for v in x if finite(v)]
        records = [v for v in x if isinstance(v, (dict, list))]
        for value in x:
            reported(value, values, spreads, single and (len(records) <= 5 or not records), spread)
        columns = {}
        for record in records:
            for path, number in fields(record):
                columns.setdefault(path, []).append(number)
        for column in [numbers] + list(columns.values()):
            if len(column) >= 2:
                (spreads if spread else values).add(statistics.mean(column))
                spreads.add(statistics.stdev(column))
    return values, spreads


def traces(digits, percent, sign, values, spreads):
    """Does a printed decimal (its digits, its '%', its sign or '') come from the results' numbers? A signed one
    from a value, an unsigned one from a value's size or a spread."""
    places = len(digits.split(".")[1])
    scaled = [(n * s, spread) for s in ((1, 100) if percent else (1,))
              for numbers, spread in ((values, False), (spreads, True)) for n in numbers]
    if sign:
        return sign + digits in {f"{n:+.{places}f}" for n, spread in scaled if not spread}
    return digits in {f"{abs(n):.{places}f}" for n, _ in scaled}


def units(text):
    """(heading, text) for every paragraph, list item and table of a page, fenced code and generated blocks removed."""
    heading, out = "", []
    for block in re.split(r"\n[ \t]*\n", FENCE.sub("", GENERATED.sub("", text))):
        if block.lstrip().startswith("#"):
            heading = block.strip().splitlines()[0]
            block = "\n".join(block.strip().splitlines()[1:])
        for item in re.split(r"\n(?=[-*] |\d+\. )", block):
            if item.strip():
                out.append((heading, item))
    return out


def untraced(text, results):
    """The decimals of a docs page that trace to none of its results' numbers and stand under no other command."""
    values, spreads = reported(results, set(), set()) if results else (set(), set())
    own = results["command"] if results else None
    missing = []
    for heading, unit in units(text):
        if any(c != own for c in COMMAND.findall(heading + "\n" + unit)):
            continue  # its numbers come from the command it names
        prose = "\n".join(line for line in unit.splitlines() if not line.lstrip().startswith(">"))
        prose = re.sub(r"arXiv:\d{4}\.\d{4,5}", "", re.sub(r"\]\([^)]*\)", "]", CODE.sub("", prose)))
        for sign, digits, percent, _ in decimals(prose):
            if not traces(digits, percent, sign, values, spreads):
                missing.append(f"{sign}{digits}{percent} in: {' '.join(unit.split())[:90]}")
    return missing


def page_results(page):
    path = ROOT / "results" / f"{page.stem}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def test_every_relative_link_resolves():
    broken = [b for page in PAGES for b in broken_links(page)]
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_anchor_rule_is_githubs():
    assert anchor("## Benchmarks (`python bench.py`)") == "benchmarks-python-benchpy"
    assert anchor("### VQ-Logits: a codebook output_layer, K = 1024") == "vq-logits-a-codebook-output_layer-k--1024"
    assert anchors("# A\n## A\n```\n# not a heading\n```\n") == {"a", "a-1"}


def test_a_broken_link_or_anchor_is_caught(tmp_path):
    (tmp_path / "b.md").write_text("# Top part\n")
    page = tmp_path / "a.md"
    page.write_text("[ok](b.md) [ok](b.md#top-part) [no](c.md) [no](b.md#bottom) `[code](x.md)` [web](https://x.y/z)\n")
    assert [b.split(": ")[1] for b in broken_links(page)] == ["c.md (no such file)", "b.md#bottom (no such heading)"]


def test_every_docs_number_traces_to_results():
    missing = [f"{page.name}: {m}" for page in sorted((ROOT / "docs").glob("*.md"))
               for m in untraced(page.read_text(encoding="utf-8"), page_results(page))]
    assert not missing, "numbers in docs/ neither in their results file nor under a command:\n" + "\n".join(missing)


def test_a_changed_number_is_caught():
    results = {"command": "python x.py", "verdicts": [{"evidence": "gap: +0.012 [-0.007, +0.032], needs < 0.0392"}],
               "summary": {"loss": [5.373, 5.365, 5.370], "seeds": [{"r2": 0.1 * i} for i in range(20)]}}
    assert untraced("The gap is +0.012 [-0.007, +0.032]; loss 5.369 ± 0.004, mean R^2 0.950, 1.2% and 0.0392.",
                    results) == []
    assert len(untraced("The gap is +0.013 [-0.007, +0.032].", results)) == 1  # a changed digit
    assert len(untraced("The gap is -0.012.", results)) == 1  # a changed sign
    assert len(untraced("Seed 3 has R^2 0.300.", results)) == 1  # a single field of 20 records is not reported
    assert len(untraced("A gain of +0.004.", results)) == 1  # an sd (0.004) is never a signed number
    assert untraced("A range 0.007-0.012, the paper's `0.123`, arXiv:2505.10222, torch 2.13.0, lr 4e-3.", results) == []
    assert untraced("> The paper: 60.4 on AIME24.\n\nOurs: `python x.py --steps=9` gives 7.77.", results) == []
    assert len(untraced("## Run (`python x.py`)\n\nIt gives 7.77.", results)) == 1  # its own command is no excuse
    assert untraced("## Run (`python y.py`)\n\nIt gives 7.77.\n\n- and 8.88", results) == []
    assert len(untraced("Generated: <!-- results:start (x) -->\n9.99\n<!-- results:end --> then 9.99.", results)) == 1


def test_readme_fits_in_15_kb():
    assert len((ROOT / "README.md").read_bytes()) <= 15 * 1024


def test_generated_blocks_are_current():
    files = scorecard.updated_files()
    stale = [str(path.relative_to(ROOT)) for path, (now, current) in files.items() if now != current]
    assert not stale, f"run python scorecard.py: its blocks differ from results/ in {stale}"


def test_every_paper_file_has_a_docs_page():
    assert {p.stem for p in (ROOT / "docs").glob("*.md")} >= set(scorecard.lab.paper_files()) | {"train"}
