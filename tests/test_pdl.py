"""Tests for pdl.py: the Power-Law Decay Loss."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import pdl
import lab
import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_weights_hand_case():
    counts = torch.tensor([1.0, 4.0, 100.0])
    w = pdl.pdl_weights(counts, alpha=0.5, eps=0.0)
    assert torch.allclose(w, torch.tensor([1.0, 0.5, 0.1], dtype=torch.float64))
    # the loss on two positions, computed by hand
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]]))
    loss = pdl.PowerLawDecayLoss(w)(logits, torch.tensor([0, 1]))
    expected = (1.0 * -np.log(0.5) + 0.5 * -np.log(0.8)) / 1.5
    assert abs(loss.item() - expected) < 1e-6


def test_target_counts_skip_the_first_token():
    counts = pdl.target_counts(np.array([3, 1, 1, 2], dtype=np.uint16), 5)
    assert counts.tolist() == [0, 2, 1, 0, 0]


def test_alpha_zero_is_cross_entropy_values_and_gradients():
    torch.manual_seed(0)
    logits = torch.randn(3, 7, 11, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, 11, (3, 7))
    targets[0, :3] = -1
    targets[2, 5] = -1
    counts = torch.randint(1, 50, (11,)).double()
    ours = pdl.PowerLawDecayLoss(pdl.pdl_weights(counts, alpha=0.0)).double()
    a = ours(logits, targets)
    b = F.cross_entropy(logits.reshape(-1, 11), targets.reshape(-1), ignore_index=-1)
    ga, = torch.autograd.grad(a, logits)
    gb, = torch.autograd.grad(b, logits)
    assert torch.allclose(a, b, atol=1e-12) and torch.allclose(ga, gb, atol=1e-12)


def test_scaling_all_weights_changes_nothing():
    torch.manual_seed(1)
    logits = torch.randn(20, 9, dtype=torch.float64)
    targets = torch.randint(0, 9, (20,))
    w = torch.rand(9, dtype=torch.float64) + 0.1
    a = pdl.PowerLawDecayLoss(w).double()(logits, targets)
    b = pdl.PowerLawDecayLoss(w * 1234.5).double()(logits, targets)
    assert torch.allclose(a, b, atol=1e-12)
    c = pdl.PowerLawDecayLoss(w.flip(0)).double()(logits, targets)
    assert not torch.allclose(a, c)  # the weights do matter


def test_gradcheck_float64_on_logits():
    torch.manual_seed(2)
    logits = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([0, 1, -1, 3, 4, 1])
    loss = pdl.PowerLawDecayLoss(pdl.pdl_weights(torch.tensor([1.0, 2, 3, 4, 5]), alpha=0.7)).double()
    assert torch.autograd.gradcheck(lambda z: loss(z, targets), (logits,))


def test_free_logits_converge_to_tilted_distribution():
    """Minimiser of PDL is P(y) w(y), renormalised: fit one free logit vector to a fixed sample."""
    counts = torch.tensor([50.0, 25.0, 15.0, 7.0, 3.0])
    targets = torch.repeat_interleave(torch.arange(5), counts.long())
    alpha = 0.5
    loss_fn = pdl.PowerLawDecayLoss(pdl.pdl_weights(counts, alpha)).double()
    z = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([z], max_iter=200, tolerance_grad=1e-12, tolerance_change=1e-14)

    def closure():
        opt.zero_grad()
        loss = loss_fn(z.expand(len(targets), 5), targets)
        loss.backward()
        return loss
    opt.step(closure)
    p = counts / counts.sum()
    tilted = p * counts ** -alpha
    assert torch.allclose(torch.softmax(z, 0), (tilted / tilted.sum()).double(), atol=1e-6)
    assert not torch.allclose(torch.softmax(z, 0), p.double(), atol=1e-2)  # not the data distribution


def test_diversity_metrics_hand_case():
    d = pdl.diversity([[1, 2, 1, 2], [3, 3]], rare={3}, seen={1, 2})
    assert d["distinct_1"] == 3 / 6 and d["distinct_2"] == 3 / 4
    assert abs(d["rare_share"] - 2 / 6) < 1e-12 and abs(d["unseen_share"] - 2 / 6) < 1e-12
    assert abs(d["sample_entropy"] - np.log(3)) < 1e-12


def test_rare_token_set_is_bottom_half_of_mass():
    counts = torch.tensor([0.0, 40, 30, 20, 10])
    assert pdl.rare_token_set(counts) == {4, 3}  # 10 + 20 = 30% <= 50%, adding 30 would pass 50%


def test_build_model_uses_cfg_alpha(tiny_text, tmp_path):
    """The loss's weights are (count + eps)^-alpha with the configured alpha, not a fixed one."""
    folder = train.prepare_data(str(tiny_text), str(tmp_path / "data"))
    data = train.load_tokens(folder, "train", 10)
    counts = pdl.target_counts(data, 50304)
    a, b = torch.argsort(counts, descending=True)[:2]  # two seen tokens of different counts
    for alpha in (0.0, 0.5, 1.0):
        cfg = lab.parse_args([f"--pdl_alpha={alpha}", "--n_layer=1", "--n_embd=16", "--n_head=2"], pdl.Config)
        w = pdl.build_model(cfg, data).loss_fn.weights.double()
        assert counts[a] > counts[b] and abs(w[b] / w[a] - (counts[a] / counts[b]) ** alpha) < 1e-4 * w[b] / w[a]


def test_nucleus_hand_case():
    logits = torch.log(torch.tensor([[0.05, 0.5, 0.15, 0.3]]))
    assert pdl.nucleus_drop(logits, 0.8).tolist() == [[True, False, True, False]]   # 0.5 + 0.3 reaches 0.8
    assert pdl.nucleus_drop(logits, 0.81).tolist() == [[True, False, False, False]]
    head = pdl.TopP(torch.nn.Identity(), 0.8)
    assert torch.isinf(head(logits)).tolist() == [[True, False, True, False]]


def test_score_agrees_with_val_loss_and_splits_rare(tiny_text, tmp_path):
    folder = train.prepare_data(str(tiny_text), str(tmp_path / "data"))
    data = train.load_tokens(folder, "val", 10)
    torch.manual_seed(0)
    model = train.GPT(train.GPTConfig(vocab_size=50304, block_size=8, n_layer=1, n_head=2, n_embd=16))
    none, every = torch.zeros(50304, dtype=torch.bool), torch.ones(50304, dtype=torch.bool)
    s = pdl.score(model, data, every, none, [(1.0, 1.0), (2.0, 1.0), (1.0, 0.5)], 8, n_batches=2)
    assert abs(s[(1.0, 1.0)]["cross_entropy"] - train.val_loss(model, data, 8, n_batches=2)) < 1e-5
    assert s[(1.0, 1.0)]["unseen_mass"] == 0 and s[(1.0, 1.0)]["excluded"] == 0
    assert s[(2.0, 1.0)]["cross_entropy"] != s[(1.0, 1.0)]["cross_entropy"]
    flat = pdl.score(model, data, every, none, [(1e4, 1.0)], 8, n_batches=1)[(1e4, 1.0)]  # T -> inf: uniform
    assert abs(flat["cross_entropy"] - math.log(50304)) < 1e-3 and abs(flat["rare_prob"] - 1 / 50304) < 1e-7
    assert s[(1.0, 0.5)]["excluded"] > 0 and math.isinf(s[(1.0, 0.5)]["cross_entropy"])
    # every token rare: the rare mean is the mean p(true); all never-seen: the mass is 1
    p_true = math.exp(-s[(1.0, 1.0)]["cross_entropy"])
    assert s[(1.0, 1.0)]["rare_prob"] >= p_true - 1e-6  # mean p >= exp(mean log p)
    assert abs(pdl.score(model, data, none, every, [(1.0, 1.0)], 8, 2)[(1.0, 1.0)]["unseen_mass"] - 1) < 1e-5


def test_build_model_and_config_checks(tiny_text, tmp_path):
    folder = train.prepare_data(str(tiny_text), str(tmp_path / "data"))
    data = train.load_tokens(folder, "train", 10)
    cfg = lab.parse_args(["--pdl_alpha=0.5", "--n_layer=1", "--n_embd=16", "--n_head=2"], pdl.Config)
    model = pdl.build_model(cfg, data)
    assert isinstance(model.loss_fn, pdl.PowerLawDecayLoss)
    idx = torch.from_numpy(np.asarray(data[:17]).astype(np.int64))[None]
    assert torch.isfinite(model(idx[:, :-1], idx[:, 1:])[1])
    with pytest.raises(lab.ConfigError, match="pdl_alpha"):
        lab.parse_args(["--pdl_alpha=-1"], pdl.Config)
    with pytest.raises(lab.ConfigError, match="pdl_eps"):
        lab.parse_args(["--pdl_eps=0"], pdl.Config)


def test_cli_bad_alphas_exit_2(tmp_path):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "pdl.py"), "--alphas=0,x"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--alphas" in r.stderr and list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_smoke_experiment(tmp_path, tiny_baseline):
    """A tiny baseline, alpha 0 and 1, two seeds, end to end: verdicts, table and figure are written."""
    exp = pdl.Experiment(alphas="1", temperatures="1,1.5", top_ps="0.9", seeds=2, steps=4, eval_every=2, eval_batches=1,
                         n_samples=4, sample_len=8, baseline=tiny_baseline, out_dir=str(tmp_path / "pdl"))
    rows, tracks, reference = pdl.run_experiment(exp)
    pdl.report(rows, tracks, reference, exp)
    assert [(r["alpha"], r["temperature"], r["top_p"]) for r in rows[:4]] == [
        (0.0, 1.0, 1.0), (0.0, 1.5, 1.0), (0.0, 1.0, 0.9), (1.0, 1.0, 1.0)]
    assert len(rows) == 8 and [it for it, _ in tracks[0]["unseen_mass"]] == [2, 4]
    data = json.loads((tmp_path / "pdl" / "results.json").read_text())
    assert len(data["verdict"]) == 2 and {"claim", "paper_says", "verdict", "control", "seeds", "command"} <= set(
        data["verdict"][0])
    for name in ("results.md", "pdl.png"):
        assert (tmp_path / "pdl" / name).exists()


def test_quick_run_is_smaller_trains_its_own_baseline_and_says_so(tmp_path, check_quick, quick_baseline_config):
    """--quick=true: every size smaller, its own folders (never README's results or train.py's baseline), flags
    given still win, a missing baseline trained small by train.py's loop, and verdicts marked quick."""
    full, quick = check_quick(pdl.Experiment, ("baseline", "out_dir"))
    assert quick.quick and lab.parse_args(["--quick=true", "--steps=7"], pdl.Experiment).steps == 7
    small, default_baseline = pdl.Experiment.QUICK_BASELINE, train.TrainConfig()
    assert small["max_iters"] < default_baseline.max_iters and small["batch_size"] < default_baseline.batch_size
    rows = [{"alpha": a, "temperature": t, "top_p": 1.0, "seed": 0, "cross_entropy": ce, "sample_entropy": ce,
             "rare_prob": 0.01} for a, t, ce in ((0.0, 0.85, 5.0), (0.0, 1.0, 6.0), (0.0, 2.0, 8.0), (1.0, 1.0, 7.0))]
    assert all(v["quick"] and "--quick=true" in v["command"] for v in pdl.verdicts(rows, quick)[0])
    assert not any(v["quick"] for v in pdl.verdicts(rows, full)[0])
    cfg = quick_baseline_config(pdl)
    assert (cfg.max_iters, cfg.batch_size) == (small["max_iters"], small["batch_size"])
    assert cfg.out_dir == str(tmp_path / "base")  # beside the checkpoint it was asked for


def pdl_rows(deltas, control_sign=1.0):
    """Three seeds: the alpha = 0 model's sample entropy equal to its cross-entropy along temperature (so the matched
    value is exact), and PDL at cross-entropy 7 with sample entropy 7 + delta; rare_prob alike."""
    rows = []
    for seed, (delta, jitter) in enumerate(zip(deltas, (0.0, 0.01, -0.01))):
        for t, ce in ((0.85, 5.0), (1.0, 6.0), (2.0, 8.0)):
            value = ce if control_sign > 0 or t == 1.0 else 13.0 - ce  # control_sign < 0: entropy falls with T
            rows.append({"alpha": 0.0, "temperature": t, "top_p": 1.0, "seed": seed, "cross_entropy": ce + jitter,
                         "sample_entropy": value, "rare_prob": value})
        rows.append({"alpha": 1.0, "temperature": 1.0, "top_p": 1.0, "seed": seed, "cross_entropy": 7.0,
                     "sample_entropy": 7.0 + delta, "rare_prob": 7.0 + delta})
    return rows


def test_verdicts_on_each_side_of_the_rule_and_the_control():
    """Hand-built rows: PDL above the matched temperature (supported), on it (inconclusive), below it (not
    supported), the control failed; a flipped side, the wrong arm or a dropped control fails one of these."""
    exp = pdl.Experiment()
    verdict = lambda rows: [v["verdict"] for v in pdl.verdicts(rows, exp)[0]]  # noqa: E731
    assert verdict(pdl_rows([0.5, 0.52, 0.48])) == ["supported"] * 2
    assert verdict(pdl_rows([0.05, -0.04, 0.0])) == ["inconclusive"] * 2
    assert verdict(pdl_rows([-0.5, -0.52, -0.48])) == ["not supported"] * 2
    failed, gate = pdl.verdicts(pdl_rows([0.5, 0.52, 0.48], control_sign=-1.0), exp)
    assert not gate["passed"] and all(v["verdict"] == "inconclusive" and v["why"] for v in failed)
    two = [r for r in pdl_rows([0.5, 0.52, 0.48]) if r["seed"] < 2]
    assert verdict(two) == ["inconclusive"] * 2
    assert "paired" in pdl.verdicts(pdl_rows([0.5, 0.52, 0.48]), exp)[0][0]["evidence"]

