"""Tests for pdl.py: the Power-Law Decay Loss."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import pdl
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


def test_build_model_and_config_checks(tiny_text, tmp_path):
    folder = train.prepare_data(str(tiny_text), str(tmp_path / "data"))
    data = train.load_tokens(folder, "train", 10)
    cfg = train.parse_args(["--pdl_alpha=0.5", "--n_layer=1", "--n_embd=16", "--n_head=2"], pdl.Config)
    model = pdl.build_model(cfg, data)
    assert isinstance(model.loss_fn, pdl.PowerLawDecayLoss)
    idx = torch.from_numpy(np.asarray(data[:17]).astype(np.int64))[None]
    assert torch.isfinite(model(idx[:, :-1], idx[:, 1:])[1])
    with pytest.raises(train.ConfigError, match="pdl_alpha"):
        train.parse_args(["--pdl_alpha=-1"], pdl.Config)
    with pytest.raises(train.ConfigError, match="pdl_eps"):
        train.parse_args(["--pdl_eps=0"], pdl.Config)


def test_cli_bad_alphas_exit_2(tmp_path):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "pdl.py"), "--alphas=0,x"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--alphas" in r.stderr and list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_smoke_experiment(tmp_path, tiny_baseline):
    """A tiny baseline and a 2-alpha finetune end to end: results, table and figure are written."""
    exp = pdl.Experiment(alphas="0,1", ft_iters=3, n_samples=4, sample_len=8,
                         baseline=tiny_baseline, out_dir=str(tmp_path / "pdl"))
    rows, reference = pdl.run_experiment(exp)
    pdl.report(rows, reference, exp)
    assert [r["alpha"] for r in rows] == [0.0, 1.0]
    for name in ("results.json", "results.md", "pdl.png"):
        assert (tmp_path / "pdl" / name).exists()
