"""Tests for lab.py: the statistics and the verdict rule (hand-computed cases on every side), the command builder,
the seeds option in every file, the committed results' schema, the caches' keys, and train.py's seams."""
import dataclasses
import importlib
import json
import math
import os
import shlex
import subprocess
import sys

import numpy as np
import pytest
import torch

import lab
import train

PAPER_FILES = [name for name in lab.paper_files()]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_estimate_is_mean_sample_sd_and_n():
    e = lab.estimate([2.035, 2.039, 2.043])
    assert (e.mean, round(e.sd, 6), e.n) == (pytest.approx(2.039), 0.004, 3)
    assert str(e) == "2.039 ± 0.004 (sd, n=3)" and str(lab.estimate([1.0])) == "1.000 (n=1)"


def test_difference_intervals_match_hand_computed_t_intervals():
    a, b = [1.0, 2.0, 3.0], [1.5, 2.1, 3.6]
    paired = lab.difference(a, b, paired=True)   # d = -0.5, -0.1, -0.6: mean -0.4, sd 0.2646, t(2) 4.3027
    assert paired.test == "paired" and paired.mean == pytest.approx(-0.4)
    assert paired.high - paired.mean == pytest.approx(4.302653 * 0.264575 / math.sqrt(3), rel=1e-5)
    welch = lab.difference(a, b, paired=False)
    assert (welch.low, welch.high) == (pytest.approx(-2.767065, rel=1e-5), pytest.approx(1.967065, rel=1e-5))
    one = lab.difference([0.3, 0.31, 0.29], 0.05, paired=True)
    assert one.test == "one-sample" and one.mean == pytest.approx(0.25)
    assert lab.difference([0.0] * 3, [0.0] * 3, True).low == 0.0       # no variation: the point itself
    assert math.isnan(lab.difference([1.0], [2.0], True).low)           # one seed: no interval
    with pytest.raises(ValueError, match="same seeds"):
        lab.difference([1.0, 2.0], [1.0], paired=True)


@pytest.mark.parametrize("side, margin, low, high, expected", [
    ("above", 0.0, 0.1, 0.3, "supported"), ("above", 0.0, -0.1, 0.3, "inconclusive"),
    ("above", 0.0, -0.3, -0.1, "not supported"), ("above", 0.0, 0.0, 0.0, "not supported"),
    ("above", 0.2, 0.1, 0.3, "inconclusive"), ("above", 0.2, 0.25, 0.3, "supported"),
    ("below", 0.039, 0.01, 0.03, "supported"), ("below", 0.039, 0.03, 0.09, "inconclusive"),
    ("below", 0.039, 0.045, 0.075, "not supported"),
    ("within", 0.1, -0.05, 0.05, "supported"), ("within", 0.1, 0.05, 0.15, "inconclusive"),
    ("within", 0.1, 0.2, 0.4, "not supported"), ("within", 0.1, -0.4, -0.2, "not supported"),
    ("above", 0.0, math.nan, math.nan, "inconclusive")])
def test_judge_on_every_side_of_every_margin(side, margin, low, high, expected):
    assert lab.judge(lab.Difference((low + high) / 2, low, high, 3, "paired"), side, margin) == expected


def test_verdict_is_gated_by_seeds_quick_and_control_and_conditions_combine():
    up = lab.condition(lab.Difference(0.2, 0.1, 0.3, 3, "paired"))
    down = lab.condition(lab.Difference(-0.2, -0.3, -0.1, 3, "paired"))
    unsure = lab.condition(lab.Difference(0.0, -0.1, 0.1, 3, "paired"))
    ok, bad = {"passed": True, "text": "ok"}, {"passed": False, "text": "bad"}
    v = lambda c, gate=ok, seeds=3, quick=False, against=False: lab.verdict(
        "c", "p", c, gate, seeds, "python x.py", quick, against=against)["verdict"]
    assert [v(up), v(down), v(unsure)] == ["supported", "not supported", "inconclusive"]
    assert [v([up, up]), v([up, unsure]), v([up, down]), v([unsure, down])] == [
        "supported", "inconclusive", "not supported", "not supported"]
    assert [v(up, against=True), v(down, against=True), v(unsure, against=True)] == [
        "not supported", "supported", "inconclusive"]
    assert v(up, gate=bad) == "inconclusive" and v(up, seeds=2) == "inconclusive"
    assert v(up, quick=True) == "quick: not a verdict"
    few = lab.condition(lab.Difference(0.2, 0.1, 0.3, 2, "paired"))   # the data hold 2 seeds, whatever was asked
    assert v(few) == "inconclusive"
    gate = lab.control("C", up, 3)
    assert gate["passed"] and gate["text"].endswith("passed")
    assert not lab.control("C", unsure, 3)["passed"] and "FAILED" in lab.control("C", down, 3)["text"]
    assert not lab.control("C", up, 2)["passed"] and not lab.control("C", up, 3, quick=True)["passed"]


def experiment_class(name):
    return importlib.import_module(name).Experiment


@pytest.mark.parametrize("name", PAPER_FILES)
def test_seeds_is_a_count_of_seeds_in_every_file(name):
    cls = experiment_class(name)
    assert lab.parse_args(["--seeds=3"], cls).seeds == 3 and isinstance(cls().seeds, int)
    with pytest.raises(lab.ConfigError, match="number of seeds"):
        lab.parse_args(["--seeds=0"], cls)
    with pytest.raises(lab.ConfigError):
        lab.parse_args(["--seeds=0,1,2"], cls)


def test_rationality_seeds_three_runs_seeds_0_1_2():
    import rationality
    assert rationality.Experiment(seeds=3).lists()[0] == [0, 1, 2]


@pytest.mark.parametrize("name", PAPER_FILES)
def test_command_is_a_real_shell_command_that_parses_back(name):
    cls = experiment_class(name)
    field = next(f for f in dataclasses.fields(cls) if f.type is int and f.name == "seeds")
    exp = dataclasses.replace(cls(), **{field.name: 5, "out_dir": "out/some where"})
    command = lab.command(name, exp)
    assert subprocess.run(["bash", "-n", "-c", command]).returncode == 0
    argv = shlex.split(command)
    assert argv[:2] == ["python", f"{name}.py"] and lab.parse_args(argv[2:], cls) == exp
    assert lab.command(name, cls()) == f"python {name}.py"
    quick = lab.parse_args(["--quick=true"], cls)
    assert lab.command(name, quick) == f"python {name}.py --quick=true"


def test_every_committed_result_has_the_schema_the_scorecard_reads():
    for path in sorted(lab.RESULTS.glob("*.json")):
        data = json.loads(path.read_text())
        name = path.stem
        assert name in PAPER_FILES and data["file"] == f"{name}.py", path
        assert lab.parse_args(shlex.split(data["command"])[2:], experiment_class(name)).seeds == data["config"]["seeds"]
        assert data["verdicts"], path
        for v in data["verdicts"]:
            assert set(v) >= {"claim", "paper_says", "verdict", "why", "evidence", "control", "seeds", "command"}
            assert v["verdict"] in lab.VERDICTS[:3] and not v["quick"] and v["command"] == data["command"]
            assert v["seeds"] >= lab.MIN_SEEDS or v["verdict"] == "inconclusive"
            assert "[" in v["evidence"] or v["verdict"] == "inconclusive"   # the interval is shown


def test_code_hash_ignores_comments_and_docstrings_but_not_code(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib
    (tmp_path / "m1.py").write_text('"""doc"""\nx = 1  # a comment\ndef f():\n    """doc"""\n    return x\n')
    (tmp_path / "m2.py").write_text('"""other doc"""\nx = 1\ndef f():\n    return x\n')
    (tmp_path / "m3.py").write_text('x = 2\ndef f():\n    return x\n')
    m1, m2, m3 = (importlib.import_module(m) for m in ("m1", "m2", "m3"))
    assert lab.code_hash(m1) == lab.code_hash(m2) != lab.code_hash(m3)
    assert lab.cache_key({"a": 1}, m1) != lab.cache_key({"a": 2}, m1)


def test_load_baseline_retrains_a_stale_cache_and_reuses_a_fresh_one(tmp_path, tiny_text, monkeypatch, capsys):
    cfg = train.TrainConfig(dataset=str(tiny_text), data_dir=str(tmp_path / "data"), n_layer=1, n_head=2, n_embd=16,
                            block_size=16, batch_size=4, max_iters=3, eval_iters=1, num_threads=1)
    path = tmp_path / "base" / "ckpt.pt"
    lab.load_baseline(path, cfg)
    assert (path.parent / "cache_key.txt").read_text() == lab.baseline_key(dataclasses.replace(cfg, sample_tokens=0))
    monkeypatch.setattr(train, "train", lambda *a, **k: pytest.fail("retrained a fresh cache"))
    lab.load_baseline(path, cfg)
    assert "reusing" in capsys.readouterr().out
    class Retrained(Exception):
        pass

    def retrain(config):
        raise Retrained
    monkeypatch.setattr(train, "train", retrain)
    with pytest.raises(Retrained):  # other settings: the cached checkpoint is stale
        lab.load_baseline(path, dataclasses.replace(cfg, max_iters=4))


def test_attention_goes_through_the_rotate_seam():
    """A model whose rotate seam is replaced computes something else: attention cannot skip block.attn.rotate."""
    torch.manual_seed(0)
    model = train.GPT(train.GPTConfig(vocab_size=50, block_size=8, n_layer=1, n_head=2, n_embd=8)).eval()
    idx = torch.randint(0, 50, (1, 8))
    before = model(idx)[0]
    model.blocks[0].attn.rotate = train.NoRotation()
    assert not torch.allclose(before, model(idx)[0])


def test_val_loss_is_plain_cross_entropy_whatever_loss_the_model_trains_with():
    torch.manual_seed(0)
    model = train.GPT(train.GPTConfig(vocab_size=50, block_size=8, n_layer=1, n_head=2, n_embd=8))
    data = np.random.default_rng(0).integers(0, 50, 500).astype(np.uint16)
    plain = train.val_loss(model, data, 8, 4, 2)
    model.loss_fn = lambda logits, targets: 100 * train.cross_entropy_loss(logits, targets)
    assert train.val_loss(model, data, 8, 4, 2) == pytest.approx(plain)
    assert plain == pytest.approx(math.log(50), abs=0.2)


# --- the command line and fit (moved from test_train.py with the code) -----------------

def test_parse_args_types_and_errors():
    cfg = lab.parse_args(["--max_iters=7", "--learning_rate=1e-2", "--bias=true", "--dataset=a.txt"])
    assert (cfg.max_iters, cfg.learning_rate, cfg.bias, cfg.dataset) == (7, 1e-2, True, "a.txt")
    for bad, msg in [(["--nope=1"], "unknown key 'nope'; valid keys: "), (["--max_iters=abc"], "integer"),
                     (["--bias=maybe"], "true or false"), (["--device=tpu"], "choose one of: auto, cpu"),
                     (["--n_head=3"], "even head size"), (["max_iters=3"], "--key=value"),
                     (["--dropout=1.5"], "dropout"), (["--vocab_size=100"], "below GPT-2's 50,257")]:
        with pytest.raises(lab.ConfigError, match=msg):
            lab.parse_args(bad)


def test_quick_starts_from_smaller_defaults_and_flags_still_win():
    full, quick = lab.parse_args([]), lab.parse_args(["--quick=true"])
    assert quick.quick and not full.quick and quick.eval_interval <= full.eval_interval
    assert (quick.dataset, quick.max_iters, quick.out_dir) == ("shakespeare_char", 500, "out/baseline_quick")
    assert quick.out_dir != full.out_dir and full.out_dir == ""       # never the checkpoint paper files load
    assert lab.parse_args(["--max_iters=7", "--quick=true"]).max_iters == 7
    assert lab.parse_args(["--quick=false"]).max_iters == full.max_iters

    @dataclasses.dataclass
    class PaperConfig(train.TrainConfig):  # a variant's config that defines no quick run of its own
        pass
    with pytest.raises(lab.ConfigError, match="--quick is not defined here"):
        lab.parse_args(["--quick=true"], PaperConfig)


@pytest.mark.parametrize("args, msg", [
    (["--nope=1"], "unknown key 'nope'"),
    (["--variant=nope"], "unknown variant 'nope'; valid variants: baseline"),
    (["--max_iters=lots"], "--max_iters expects an integer"),
])
def test_cli_errors_exit_2_and_write_nothing(tmp_path, args, msg):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), *args], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and msg in r.stderr and r.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_variant_errors_from_a_paper_file_exit_2(tmp_path):
    """A variant's own config check raises lab.ConfigError; run as a script it must still exit 2."""
    r = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--variant=pdl", "--pdl_alpha=-1"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "pdl_alpha" in r.stderr and r.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("script", ["train.py", "rationality.py", "vapo.py"])
def test_help_lists_keys_and_exits_0(tmp_path, script):
    r = subprocess.run([sys.executable, os.path.join(ROOT, script), "--help"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "keys (--key=value):" in r.stdout and "python " in r.stdout
    assert list(tmp_path.iterdir()) == []


def test_fit_uses_the_loop_step_and_stops_on_nan():
    torch.manual_seed(0)
    model = train.GPT(train.GPTConfig(vocab_size=97, block_size=16, n_layer=2, n_head=2, n_embd=16)).train()
    x = torch.randint(0, 97, (4, 16))
    losses = lab.fit(model, lambda: (x, x), 20, learning_rate=1e-2, log_every=5)
    assert len(losses) == 20 and losses[-1] < losses[0] - 1
    model.loss_fn = lambda logits, targets: logits.sum() * float("inf")
    with pytest.raises(train.NonFiniteLoss, match="by step 5"):
        lab.fit(model, lambda: (x, x), 10, log_every=5)


def test_paper_files_are_found_by_what_they_define():
    assert {"pdl", "vq_logits", "complexformer", "vapo", "cot_probe"} <= set(lab.paper_files())
    assert "bench" not in lab.paper_files() and "pdl" in lab.paper_files(defining=("bench",))
