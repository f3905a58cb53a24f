"""Tests for scorecard.py: rows from results.json, quick runs left out, and the README block replaced in place."""
import json

import pytest

import scorecard


def entry(**fields):
    return {"claim": "A beats B", "verdict": "supported", "control": "C passed", "seeds": 3,
            "command": "python x.py --seeds=3", **fields}


def test_one_row_per_claim_with_every_column():
    rows = scorecard.verdict_rows("x", {"verdict": [entry(paper_says="+4%"), entry(claim="B | C", seeds=[0, 1])]})
    assert rows == ["| `x.py` | A beats B (+4%) | **supported** | C passed | 3 | `python x.py --seeds=3` |",
                    "| `x.py` | B / C | **supported** | C passed | 2 | `python x.py --seeds=3` |"]


def test_quick_runs_and_missing_results_never_look_like_results():
    assert scorecard.verdict_rows("x", {"verdict": [entry(quick=True)]}) == scorecard.verdict_rows("x", None)
    assert "not run" in scorecard.verdict_rows("x", None)[0]


def test_scorecard_reads_each_paper_file_in_order(tmp_path):
    (tmp_path / "vapo").mkdir()
    (tmp_path / "vapo" / "results.json").write_text(json.dumps({"verdict": [entry(claim="VAPO beats PPO")]}))
    table = scorecard.scorecard(tmp_path).splitlines()
    assert table[:2] == scorecard.HEADER
    names = [line.split("`")[1] for line in table[2:]]
    assert names == sorted(names) and "vapo.py" in names and "train.py" not in names
    assert "VAPO beats PPO" in table[2 + names.index("vapo.py")]


def test_block_is_replaced_and_the_rest_kept():
    readme = f"top\n{scorecard.START}\nold\nrows\n{scorecard.END}\nbottom\n"
    assert scorecard.with_scorecard(readme, "new") == f"top\n{scorecard.START}\nnew\n{scorecard.END}\nbottom\n"
    with pytest.raises(ValueError, match="exactly one"):
        scorecard.with_scorecard("no markers", "new")
    with pytest.raises(ValueError, match="exactly one"):
        scorecard.with_scorecard(f"{scorecard.END}\n{scorecard.START}\n", "new")
