"""Tests for scorecard.py: a block per file from results/<file>.json, the deciding evidence, the README block."""
import json

import pytest

import lab
import scorecard


def entry(**fields):
    gate = {"passed": True, "text": "C minus D: +1.000 [+0.900, +1.100] (95% paired t, n=3), needs > 0: passed"}
    one = lab.condition(lab.difference([1.0, 1.1, 0.9], 0.0, True), "above", 0.0, "A minus B")
    return {**lab.verdict("A beats B", "+4%", one, gate, 3, "python x.py --seeds=3"), **fields}


def test_a_row_per_file_control_and_claim_each_with_its_own_interval():
    results = {"command": "python x.py", "config": {"seeds": 3},
               "verdicts": [entry(), entry(claim="B | C", paper_says="")]}
    rows = scorecard.short_rows("x", results)
    assert rows[0] == "| **[`x.py`](docs/x.md)** · `python x.py` · control: passed | | | |"
    assert rows[1] == "| A beats B | **supported** | +1.000 [+0.752, +1.248], needs > 0 | 3 |"
    assert rows[2].startswith("| B / C | **supported**") and len(rows) == 3
    second = dict(entry(), control="E: +1.000 [+0.900, +1.100], needs > 0; +2.000 [+1.9, +2.1], needs > 0: FAILED")
    rows = scorecard.short_rows("x", {**results, "verdicts": [entry(), second]})
    assert rows[0].endswith("controls: c1 passed, c2 FAILED | | | |")


def test_docs_rows_give_every_control_and_claim_whole():
    results = {"command": "python x.py", "config": {"seeds": 3},
               "verdicts": [entry(), entry(claim="B | C", paper_says="")]}
    rows = scorecard.file_rows(results)
    assert rows[0] == "| control: C minus D | **passed** | +1.000 [+0.900, +1.100] (95% paired t, n=3), needs > 0 | 3 |"
    assert rows[1].startswith("| A beats B (+4%) | **supported** | A minus B: +1.000 [+0.752, +1.248]")
    assert rows[2].startswith("| B / C | **supported**") and len(rows) == 3
    second = dict(entry(), control="E: +1.000 [+0.900, +1.100], needs > 0; +2.000 [+1.9, +2.1], needs > 0: FAILED")
    rows = scorecard.file_rows({**results, "verdicts": [entry(), second]})
    assert rows[1].startswith("| control c2: E | **FAILED** |") and "+2.000 [+1.9, +2.1]" in rows[1]
    assert "(c2)" in rows[3] and "(c1)" in rows[2]


def test_several_conditions_show_the_ones_that_decided():
    hold = lab.condition(lab.difference([1.0, 1.1, 0.9], 0.0, True), "above", 0.0, "first")
    fail = lab.condition(lab.difference([-1.0, -1.1, -0.9], 0.0, True), "above", 0.0, "second")
    gate = {"passed": True, "text": "ok"}
    v = lab.verdict("both", "", [hold, fail], gate, 3, "python x.py")
    assert v["verdict"] == "not supported" and scorecard.interval(v) == "1 of 2: " + fail["interval"]
    assert scorecard.interval(lab.verdict("both", "", [hold, hold], gate, 3, "c")).startswith("all 2 hold")


def test_missing_results_say_so():
    assert "no `results/x.json` yet" in scorecard.short_rows("x", None)[0]
    assert "No `results/x.json` yet" in scorecard.docs_block("x")


def test_scorecard_reads_each_paper_file_in_order(tmp_path):
    (tmp_path / "vapo.json").write_text(json.dumps({"command": "python vapo.py", "config": {"seeds": 3},
                                                    "verdicts": [entry(claim="VAPO beats PPO")]}))
    block = scorecard.scorecard(tmp_path)
    names = [line.split("`")[1] for line in block.splitlines() if line.startswith("| **")]
    assert names == [f"{n}.py" for n in lab.paper_files()] and "VAPO beats PPO" in block
    assert block.count("no `results/") == len(names) - 1


def test_block_is_replaced_and_the_rest_kept():
    readme = f"top\n{scorecard.START}\nold\nrows\n{scorecard.END}\nbottom\n"
    assert scorecard.with_block(readme, "new") == f"top\n{scorecard.START}\nnew\n{scorecard.END}\nbottom\n"
    start, end = scorecard.markers("files")
    both = f"{start}\na\n{end}\n{scorecard.START}\nb\n{scorecard.END}\n"
    assert scorecard.with_block(both, "new", "files") == f"{start}\nnew\n{end}\n{scorecard.START}\nb\n{scorecard.END}\n"
    with pytest.raises(ValueError, match="exactly one"):
        scorecard.with_block("no markers", "new")
    with pytest.raises(ValueError, match="exactly one"):
        scorecard.with_block(f"{scorecard.END}\n{scorecard.START}\n", "new")


def test_the_committed_block_is_small():
    """README's scorecard: one short row per claim, so that README fits in 15 KB with the files table beside it."""
    assert len(scorecard.scorecard().encode()) <= 7 * 1024


def test_tally_counts_each_verdict_and_leaves_out_zeros():
    results = {"verdicts": [entry(), entry(), entry(verdict="inconclusive"), entry(verdict="not supported")]}
    assert scorecard.tally(results) == "2 supported · 1 not supported · 1 inconclusive"
    assert scorecard.tally({"verdicts": [entry(verdict="inconclusive")]}) == "1 inconclusive"


def test_cpu_time_is_the_recorded_one_or_a_dash():
    assert scorecard.cpu_time({"cpu_minutes": 12.5, "threads": 1}) == "12.5 min (1 thread)"
    assert scorecard.cpu_time({"cpu_minutes": 3.0, "threads": 2}) == "3 min (2 threads)"
    assert scorecard.cpu_time({"command": "python x.py"}) == "-" and scorecard.cpu_time(None) == "-"


def test_files_table_has_the_fixed_rows_then_one_row_per_paper_file(tmp_path):
    (tmp_path / "vapo.json").write_text(json.dumps({"command": "python vapo.py --seeds=3", "config": {"seeds": 3},
                                                    "cpu_minutes": 7.5, "threads": 1, "verdicts": [entry()]}))
    rows = [r for r in scorecard.files_table(tmp_path).splitlines() if r.startswith(("| `", "| ["))]
    assert [r.split("`")[1] for r in rows] == [f for f, *_ in scorecard.OTHER_FILES] + \
        [f"{n}.py" for n in lab.paper_files()]
    vapo = next(r for r in rows if "vapo.py" in r)
    assert "`python vapo.py --seeds=3`" in vapo and "7.5 min (1 thread)" in vapo and vapo.endswith("1 supported |")


def test_readme_rows_are_short_and_name_the_controls_state():
    failed = dict(entry(), control="C: +1.0 [+0.9, +1.1], needs > 0: FAILED", why="the positive control did not pass",
                  verdict="inconclusive")
    rows = scorecard.short_rows("x", {"command": "python x.py", "config": {}, "verdicts": [entry(), failed]})
    assert rows[0].startswith("| **[`x.py`](docs/x.md)** · `python x.py` · controls: c1 passed, c2 FAILED |")
    assert rows[1] == "| A beats B | **supported** | +1.000 [+0.752, +1.248], needs > 0 | 3 |"
    assert "**inconclusive** (control failed)" in rows[2] and "not judged: " in rows[2]
    assert all(len(r) < 160 for r in rows[1:])


def test_docs_block_shows_every_word_and_the_key_numbers(tmp_path):
    long_claim = "A beats B " + "and more words " * 10
    results = {"command": "python complexformer.py", "config": {"seeds": 3}, "cpu_minutes": 2.0, "threads": 1,
               "verdicts": [entry(claim=long_claim)],
               "summary": {"stats": {"rope": {"lr": 0.004, "seeds": [0, 1, 2], "params": 10, "1x": [2.0, 2.1, 2.2],
                                              "2x": [2.0], "4x": [2.0, 2.0, 2.0]}}}}
    (tmp_path / "complexformer.json").write_text(json.dumps(results))
    block = scorecard.docs_block("complexformer", tmp_path)
    assert "`python complexformer.py` (CPU time 2 min (1 thread))" in block
    assert long_claim.strip() in block and "(95% paired t, n=3)" in block  # nothing cut, the interval's kind kept
    assert "| RoPE | 0.004 | 3 | 10 | 2.100 ± 0.100 | 2.000 | 2.000 ± 0.000 |" in block
    del results["summary"]["stats"]["rope"]["4x"]
    (tmp_path / "complexformer.json").write_text(json.dumps(results))
    with pytest.raises(ValueError, match="summary lacks what scorecard.complexformer_numbers reads"):
        scorecard.docs_block("complexformer", tmp_path)


def test_mean_sd_of_lists_dicts_and_nothing():
    assert scorecard.mean_sd([1.0, 2.0, 3.0]) == "2.000 ± 1.000"
    assert scorecard.mean_sd([1.0, float("nan")]) == "1.000" and scorecard.mean_sd([float("nan")]) == "-"
    assert scorecard.mean_sd({"mean": 0.5, "sd": 0.25, "n": 3}, 2) == "0.50 ± 0.25"
    assert scorecard.mean_sd({"mean": float("inf"), "sd": float("nan"), "n": 3}) == "inf"


def test_check_exits_1_when_a_block_is_stale(tmp_path, monkeypatch, capsys):
    page = tmp_path / "README.md"
    page.write_text(f"{scorecard.START}\nold\n{scorecard.END}\n")
    monkeypatch.setattr(scorecard, "blocks", lambda root=None: [(page, "scorecard", "new")])
    monkeypatch.setattr(scorecard, "HERE", tmp_path)
    assert scorecard.main(["--check"]) == 1 and "README.md" in capsys.readouterr().out
    assert scorecard.main([]) == 0 and "new" in page.read_text()
    assert scorecard.main(["--check"]) == 0
    assert scorecard.main(["--bad"]) == 2


def test_evidence_of_a_mirrored_or_withheld_verdict_is_what_decided_it():
    hold = lab.condition(lab.difference([1.0, 1.1, 0.9], 0.0, True), "above", 0.0, "first")
    fail = lab.condition(lab.difference([-1.0, -1.1, -0.9], 0.0, True), "above", 0.0, "second")
    ok, bad = {"passed": True, "text": "ok"}, {"passed": False, "text": "bad"}
    broken = lab.verdict("not all hold", "", [hold, fail], ok, 3, "c", against=True)
    assert broken["verdict"] == "supported" and scorecard.interval(broken) == "1 of 2: " + fail["interval"]
    holds = lab.verdict("not all hold", "", [hold, hold], ok, 3, "c", against=True)
    assert holds["verdict"] == "not supported" and scorecard.interval(holds).startswith("all 2 hold")
    withheld = lab.verdict("one", "", hold, bad, 3, "c")
    assert scorecard.interval(withheld).startswith("not judged: ")


def test_a_control_row_shows_the_seeds_it_was_judged_on():
    text = ("recovery: late: +0.1 [+0.0, +0.2] (95% one-sample t, n=20), needs > 0; b: +1 [+0, +2] (95% paired t, "
            "n=20), needs > 0: passed")
    row = scorecard.control_row(text, "c1", 3)
    assert row.endswith("| 20 |") and "**passed**" in row and "b: +1 [+0, +2]" in row
    assert scorecard.control_row("name: +1 (no interval from n=1), needs > 0: not judged (quick run)", "", 1) \
        .endswith("| 1 |")
