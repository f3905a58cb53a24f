"""Tests for WORKSHOP.md: every exercise there is graded by what it names, read from WORKSHOP.md itself.

Re-implementation exercises ("#### X. Re-implement `file.py::function`" with a `python -m pytest ...` line): in a
temporary copy of the repository the selection passes on the real code, and fails once the function's body is
replaced by `raise NotImplementedError` (so the exercise really is graded by those tests).
Predict-change-run exercises ("#### X. Predict ...") and fool-the-verdict exercises ("#### X. Fool the verdict: ...",
one per paper file: the case that flips a verdict, run quick): a ```bash block of quick runs, and in the solutions
one or more lines "Measured: `EXPR` from LO to HI". The runs are made in a temporary copy, each run's results.json (or
train.py's summary.json) becomes A, B, ... in the order of the block, and every EXPR must land in its stated range. In
EXPR, `A.runs` reads A["runs"], and `pick(rows, key=value, ...)` is the one row of a list that matches.
Marked `workshop`: README's test command leaves them out (`-m "not workshop"`), `.ci/run` runs them as its second step.

    python -m pytest -m workshop           # every exercise (about 20 minutes on a 2-core CPU)
"""
import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import lab

ROOT = Path(__file__).resolve().parents[1]
EXERCISE = re.compile(r"^#### (?P<id>[A-Z]+\d+)\. (?P<title>.+)$", re.M)
REIMPLEMENT = re.compile(r"Re-implement `(?P<file>\w+\.py)::(?P<function>[\w.]+)`")
GRADED_BY = re.compile(r"`(?P<command>python -m pytest [^`]+)`")
RUNS = re.compile(r"```bash\n(?P<body>.*?)```", re.S)
MEASURED = re.compile(r"^Measured: `(?P<expr>[^`]+)` from (?P<lo>[-+\d.e]+) to (?P<hi>[-+\d.e]+)", re.M)
GRADED_KINDS = ("Predict", "Fool the verdict: ")  # the titles of the exercises graded by their quick runs


def exercises(text=None):
    """{id: (title, body)} for the exercises, and {id: body} for their solutions (after '## Solutions')."""
    text = (ROOT / "WORKSHOP.md").read_text(encoding="utf-8") if text is None else text
    tasks, _, solutions = text.partition("\n## Solutions\n")

    def sections(part):
        found = list(EXERCISE.finditer(part))
        return {m["id"]: (m["title"], part[m.end():found[i + 1].start() if i + 1 < len(found) else len(part)])
                for i, m in enumerate(found)}
    return sections(tasks), {k: body for k, (_, body) in sections(solutions).items()}


def reimplementations():
    return [(k, REIMPLEMENT.search(title), GRADED_BY.search(body)["command"])
            for k, (title, body) in exercises()[0].items() if REIMPLEMENT.search(title)]


def predictions(kinds=GRADED_KINDS):
    """(id, quick runs, Measured lines) of every exercise whose title starts with one of `kinds`."""
    tasks, solutions = exercises()
    return [(k, [line.split("#")[0].strip() for line in RUNS.search(body)["body"].splitlines() if line.strip()],
             list(MEASURED.finditer(solutions.get(k, "")))) for k, (title, body) in tasks.items()
            if title.startswith(kinds)]


def copy_repository(dest):
    """The working tree without outputs, environments or git: what a participant has after cloning."""
    skip = shutil.ignore_patterns("out", ".git", ".venv*", "__pycache__", ".pytest_cache", "assets")
    shutil.copytree(ROOT, dest, ignore=skip)
    return dest


def without_body(source, qualname):
    """`source` with the body of the function `qualname` (f or Class.f) replaced by raise NotImplementedError,
    its signature and docstring kept."""
    tree, (*owners, name) = ast.parse(source), qualname.split(".")
    scope = tree
    for owner in owners:
        scope = next(n for n in scope.body if isinstance(n, ast.ClassDef) and n.name == owner)
    node = next(n for n in scope.body if isinstance(n, ast.FunctionDef) and n.name == name)
    keep = 1 if ast.get_docstring(node) is not None else 0
    if keep == len(node.body):
        raise ValueError(f"{qualname} has nothing but a docstring")
    lines = source.splitlines(keepends=True)
    first, last = node.body[keep].lineno - 1, node.end_lineno
    indent = " " * node.body[keep].col_offset
    return "".join(lines[:first] + [f"{indent}raise NotImplementedError('workshop exercise')\n"] + lines[last:])


def pytest_selection(command, cwd):
    args = shlex.split(command)[3:]  # after `python -m pytest`
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=900, env=env)


def test_workshop_md_parses_into_exercises():
    """Cheap, in README's command too: WORKSHOP.md names real functions and real test selections."""
    tasks, solutions = exercises()
    assert len(reimplementations()) >= 8 and len(predictions(("Predict",))) >= 8
    for key, match, command in reimplementations():
        source = (ROOT / match["file"]).read_text(encoding="utf-8")
        assert "raise NotImplementedError" in without_body(source, match["function"]), key
        assert command.startswith("python -m pytest tests/test_"), key
    for key, runs, measured in predictions():
        assert runs and all(run.startswith("python ") and "--quick=true" in run for run in runs), key
        assert measured and all(float(m["lo"]) <= float(m["hi"]) for m in measured), key
    assert set(solutions) == set(tasks), "every exercise has a solution and every solution an exercise"


PAPER_FILES = ("complexformer", "vq_logits", "pdl", "vapo", "cot_probe", "rationality", "infoflow")


def test_one_fool_the_verdict_exercise_per_paper_file():
    """Cheap: the collector finds exactly one fool-the-verdict exercise per paper file, in that file's section and
    running that file, graded like a predict exercise (Measured lines); no other title takes the name."""
    fooled = predictions(("Fool the verdict: ",))
    files = [{shlex.split(run)[1].removesuffix(".py") for run in runs} for _, runs, _ in fooled]
    assert all(len(f) == 1 for f in files), "each fool-the-verdict exercise runs one paper file"
    files = [f.pop() for f in files]
    assert sorted(files) == sorted(PAPER_FILES) == sorted(lab.paper_files()), "one per paper file"
    graded = {key for key, _, _ in predictions()}
    assert all(key in graded and measured for key, _, measured in fooled)
    text = (ROOT / "WORKSHOP.md").read_text(encoding="utf-8")
    tasks = text.partition("\n## Solutions\n")[0]
    for (key, _, _), file in zip(fooled, files):
        section = re.findall(r"^## (\w+)\.py", tasks[:tasks.index(f"\n#### {key}. ")], re.M)[-1]
        assert section == file, f"{key} runs {file}.py but sits in {section}.py's section"
    assert len(re.findall(r"^#### [A-Z]+\d+\. Fool the verdict: ", text, re.M)) == 2 * len(PAPER_FILES), \
        "a title that starts 'Fool the verdict' but is not collected (or a solution without its exercise)"


def test_predictions_collects_every_measured_line():
    text = ("#### A1. Predict: x\n```bash\npython a.py --quick=true   # A\n```\n#### A2. Fool the verdict: y\n"
            "```bash\npython a.py --quick=true\npython a.py --quick=true --b=1  # B\n```\n#### A3. Open question\n"
            "\n## Solutions\n#### A1. Predict: x\nMeasured: `A.v` from 0 to 1\n#### A2. Fool the verdict: y\n"
            "Measured: `A.v` from -1 to 0\nsome words\nMeasured: `B.v - A.v` from 0.5 to 2\n#### A3. Open question\n")
    tasks, solutions = exercises(text)
    assert list(tasks) == ["A1", "A2", "A3"] and set(solutions) == set(tasks)
    lines = {k: [m["expr"] for m in MEASURED.finditer(solutions[k])] for k in tasks}
    assert lines == {"A1": ["A.v"], "A2": ["A.v", "B.v - A.v"], "A3": []}


def test_without_body_keeps_signature_and_docstring():
    source = ('class A:\n    def f(self, x):\n        """doc"""\n        y = x + 1\n        return y\n\n'
              'def g():\n    return 2\n')
    assert without_body(source, "A.f") == ('class A:\n    def f(self, x):\n        """doc"""\n'
                                           "        raise NotImplementedError('workshop exercise')\n\ndef g():\n"
                                           "    return 2\n")
    assert without_body(source, "g").endswith("def g():\n    raise NotImplementedError('workshop exercise')\n")


@pytest.mark.workshop
@pytest.mark.parametrize("key, match, command", reimplementations(), ids=[r[0] for r in reimplementations()])
def test_reimplementation_is_graded_by_its_tests(tmp_path, key, match, command):
    repo = copy_repository(tmp_path / "repo")
    real = pytest_selection(command, repo)
    assert real.returncode == 0, f"{key}: `{command}` fails on the real code:\n{real.stdout[-2000:]}"
    path = repo / match["file"]
    path.write_text(without_body(path.read_text(encoding="utf-8"), match["function"]), encoding="utf-8")
    emptied = pytest_selection(command, repo)
    assert emptied.returncode == 1, f"{key}: `{command}` does not fail without the body:\n{emptied.stdout[-2000:]}"


def run_results(run, repo):
    """Run one quick command in the copy; return the results it wrote (the newest results.json or summary.json)."""
    env, start = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}, time.time()
    done = subprocess.run(shlex.split(run), cwd=repo, capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, f"`{run}` failed:\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}"
    for name in ("results.json", "summary.json"):  # a paper file's results; train.py writes only a summary
        written = sorted((p for p in (repo / "out").rglob(name) if p.stat().st_mtime >= start - 1),
                         key=lambda p: p.stat().st_mtime)
        if written:
            return json.loads(written[-1].read_text())
    raise AssertionError(f"`{run}` wrote no results.json or summary.json under out/")


def pick(rows, **match):
    """The one row of a list of dicts whose fields equal `match`: pick(A.floors, K=64, map="random")."""
    found = [row for row in rows if all(row.get(k) == v for k, v in match.items())]
    assert len(found) == 1, f"{len(found)} rows match {match}"
    return Results(found[0])


class Results(dict):
    """results.json as an object: A.summary.cot.in_range reads A["summary"]["cot"]["in_range"]."""
    def __getattr__(self, key):
        value = self[key]
        return Results(value) if isinstance(value, dict) else value


@pytest.mark.workshop
@pytest.mark.parametrize("key, runs, measured", predictions(), ids=[p[0] for p in predictions()])
def test_prediction_outcome_is_what_workshop_md_says(tmp_path, key, runs, measured):
    """A predict or fool-the-verdict exercise: its quick runs, then every Measured line in its range."""
    repo = copy_repository(tmp_path / "repo")
    outcomes = {chr(ord("A") + i): Results(run_results(run.replace("python ", f"{sys.executable} ", 1), repo))
                for i, run in enumerate(runs)}
    builtins = {"__builtins__": {"min": min, "max": max, "abs": abs, "len": len}, "pick": pick}
    values = [(m, eval(m["expr"], builtins, outcomes)) for m in measured]
    wrong = [f"{m['expr']} = {value:.4g}, WORKSHOP.md says {m['lo']} to {m['hi']}" for m, value in values
             if not float(m["lo"]) <= value <= float(m["hi"])]
    assert not wrong, f"{key}: " + "; ".join(wrong)
