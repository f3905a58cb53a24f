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
    rows = scorecard.file_rows("x", results)
    assert rows[0] == "| **`x.py`** · `python x.py` | | | |"
    assert rows[1] == "| control: C minus D | **passed** | +1.000 [+0.900, +1.100], needs > 0 | 3 |"
    assert rows[2] == "| A beats B (+4%) | **supported** | +1.000 [+0.752, +1.248], needs > 0 | 3 |"
    assert rows[3].startswith("| B / C | **supported**") and len(rows) == 4
    second = dict(entry(), control="E: +1.000 [+0.900, +1.100], needs > 0; +2.000 [+1.9, +2.1], needs > 0: FAILED")
    rows = scorecard.file_rows("x", {**results, "verdicts": [entry(), second]})
    assert rows[2].startswith("| control c2: E | **FAILED** |") and rows[2].endswith("(+1 more) | 3 |")
    assert "(c2)" in rows[4] and "(c1)" in rows[3]


def test_several_conditions_show_the_ones_that_decided():
    hold = lab.condition(lab.difference([1.0, 1.1, 0.9], 0.0, True), "above", 0.0, "first")
    fail = lab.condition(lab.difference([-1.0, -1.1, -0.9], 0.0, True), "above", 0.0, "second")
    gate = {"passed": True, "text": "ok"}
    v = lab.verdict("both", "", [hold, fail], gate, 3, "python x.py")
    assert v["verdict"] == "not supported" and scorecard.deciding(v).startswith("1 of 2: second:")
    assert scorecard.deciding(lab.verdict("both", "", [hold, hold], gate, 3, "c")).startswith("all 2 hold")


def test_missing_results_say_not_rerun():
    assert "not rerun under the new rule" in scorecard.file_rows("x", None)[0]


def test_scorecard_reads_each_paper_file_in_order(tmp_path):
    (tmp_path / "vapo.json").write_text(json.dumps({"command": "python vapo.py", "config": {"seeds": 3},
                                                    "verdicts": [entry(claim="VAPO beats PPO")]}))
    block = scorecard.scorecard(tmp_path)
    names = [line.split("`")[1] for line in block.splitlines() if line.startswith("| **`")]
    assert names == [f"{n}.py" for n in lab.paper_files()] and "VAPO beats PPO" in block
    assert block.count("not rerun under the new rule") == len(names) - 1


def test_block_is_replaced_and_the_rest_kept():
    readme = f"top\n{scorecard.START}\nold\nrows\n{scorecard.END}\nbottom\n"
    assert scorecard.with_scorecard(readme, "new") == f"top\n{scorecard.START}\nnew\n{scorecard.END}\nbottom\n"
    with pytest.raises(ValueError, match="exactly one"):
        scorecard.with_scorecard("no markers", "new")
    with pytest.raises(ValueError, match="exactly one"):
        scorecard.with_scorecard(f"{scorecard.END}\n{scorecard.START}\n", "new")


def test_the_committed_block_is_small():
    """Two screens at most: the third edition's claims (controls, mechanism arms, two cot_probe regimes) need 10 KiB."""
    assert len(scorecard.scorecard().encode()) <= 10 * 1024


def test_evidence_of_a_mirrored_or_withheld_verdict_is_what_decided_it():
    hold = lab.condition(lab.difference([1.0, 1.1, 0.9], 0.0, True), "above", 0.0, "first")
    fail = lab.condition(lab.difference([-1.0, -1.1, -0.9], 0.0, True), "above", 0.0, "second")
    ok, bad = {"passed": True, "text": "ok"}, {"passed": False, "text": "bad"}
    broken = lab.verdict("not all hold", "", [hold, fail], ok, 3, "c", against=True)
    assert broken["verdict"] == "supported" and scorecard.deciding(broken).startswith("1 of 2: second:")
    holds = lab.verdict("not all hold", "", [hold, hold], ok, 3, "c", against=True)
    assert holds["verdict"] == "not supported" and scorecard.deciding(holds).startswith("all 2 hold")
    withheld = lab.verdict("one", "", hold, bad, 3, "c")
    assert scorecard.deciding(withheld).startswith("not judged: ")


def test_a_control_row_shows_the_seeds_it_was_judged_on():
    text = "recovery: late: +0.1 [+0.0, +0.2] (95% one-sample t, n=20), needs > 0; b: +1 [+0, +2] (95% paired t, n=20)" \
           ", needs > 0: passed"
    row = scorecard.control_row(text, "c1", 3)
    assert row.endswith("| 20 |") and "**passed**" in row and "(+1 more)" in row
    assert scorecard.control_row("name: +1 (no interval from n=1), needs > 0: not judged (quick run)", "", 1) \
        .endswith("| 1 |")
