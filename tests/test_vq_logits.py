"""Tests for vq_logits.py: the codebook output head, its O(K) loss and sampling, the maps, the floor."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import train
import vq_logits as vq

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def small_head(V=12, K=4, d=5, bias=False, seed=0):
    torch.manual_seed(seed)
    code_of = torch.tensor([0, 1, 2, 3, 0, 1, 2, 0, 0, 3, 1, 0])[:V]
    head = vq.VQHead(code_of, torch.randn(K, d, dtype=torch.float64), token_bias=bias).double()
    if bias:
        with torch.no_grad():
            head.token_bias.normal_()
    return head


def test_identity_map_equals_full_head():
    """K = V, M = identity, C = W: the same logits, loss and gradients as the full output layer."""
    torch.manual_seed(0)
    cfg = train.GPTConfig(vocab_size=40, block_size=8, n_layer=1, n_head=2, n_embd=8, tie_weights=False)
    full = train.GPT(cfg).double()
    codebook = train.GPT(cfg).double()
    codebook.load_state_dict(full.state_dict())
    codebook.lm_head = vq.VQHead(torch.arange(40), full.lm_head.weight.detach()).double()
    idx = torch.randint(0, 40, (2, 8))
    la, loss_a = full(idx, idx)
    lb, loss_b = codebook(idx, idx)
    assert torch.allclose(la, lb, atol=1e-12) and torch.allclose(loss_a, loss_b, atol=1e-12)
    loss_a.backward()
    loss_b.backward()
    assert torch.allclose(full.lm_head.weight.grad, codebook.lm_head.codebook.grad, atol=1e-12)
    assert torch.allclose(full.blocks[0].attn.c_attn.weight.grad, codebook.blocks[0].attn.c_attn.weight.grad, atol=1e-12)


@pytest.mark.parametrize("bias", [False, True])
def test_two_loss_paths_agree(bias):
    head = small_head(bias=bias)
    h = torch.randn(3, 7, 5, dtype=torch.float64)
    targets = torch.randint(0, 12, (3, 7))
    targets[1, :2] = -1
    scattered = F.cross_entropy(head(h).reshape(-1, 12), targets.reshape(-1), ignore_index=-1)
    assert torch.allclose(head.loss(h, targets), scattered, atol=1e-12)


def test_tokens_sharing_a_code_have_equal_probabilities():
    head = small_head()
    p = torch.softmax(head(torch.randn(4, 5, dtype=torch.float64)), -1)
    for code in range(4):
        members = torch.nonzero(head.code_of == code).flatten()
        assert torch.allclose(p[:, members], p[:, members[:1]].expand(-1, len(members)), atol=1e-15)
    # the bias (our addition) breaks the ties
    pb = torch.softmax(small_head(bias=True)(torch.randn(4, 5, dtype=torch.float64)), -1)
    assert not torch.allclose(pb[:, 0], pb[:, 4])


def test_o_k_sampling_matches_scattered_softmax():
    head = small_head().float()
    h = torch.randn(1, 5).expand(40000, 5)
    tokens = head.sample(h, generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(tokens, minlength=12).double() / len(tokens)
    p = torch.softmax(head(h[:1]).double(), -1)[0]
    # 40k draws: standard error <= 0.0025 per token; 5 sigma
    assert torch.all((freq - p).abs() < 0.0125), (freq, p)
    with pytest.raises(ValueError):
        small_head(bias=True).sample(h[:2])


class HeadLoss(torch.nn.Module):
    """The head's O(K) loss as a forward pass, so functional_call can substitute its parameters."""

    def __init__(self, head):
        super().__init__()
        self.head = head

    def forward(self, h, targets):
        return self.head.loss(h, targets)


def test_gradcheck_float64_on_h_and_codebook():
    head = small_head(bias=True)
    h = torch.randn(2, 3, 5, dtype=torch.float64, requires_grad=True)
    C = head.codebook.detach().clone().requires_grad_(True)
    b = head.token_bias.detach().clone().requires_grad_(True)
    targets = torch.tensor([[0, 5, 11], [3, -1, 8]])
    call = torch.func.functional_call
    assert torch.autograd.gradcheck(lambda h, C, b: call(head, {"codebook": C, "token_bias": b}, (h,)), (h, C, b))
    loss = HeadLoss(head)
    assert torch.autograd.gradcheck(
        lambda h, C, b: call(loss, {"head.codebook": C, "head.token_bias": b}, (h, targets)), (h, C, b))
    plain = HeadLoss(small_head())
    assert torch.autograd.gradcheck(lambda h, C: call(plain, {"head.codebook": C}, (h, targets)), (h, C))


@pytest.mark.parametrize("mapping", vq.MAPPINGS)
def test_mappings_are_valid(mapping):
    V, K = 300, 16
    torch.manual_seed(0)
    emb = torch.randn(V, 4)
    counts = torch.cat([torch.randint(1, 1000, (200,)), torch.zeros(100, dtype=torch.long)])
    code_of, centroids = vq.make_mapping(mapping, K, V, emb, counts)
    assert code_of.shape == (V,) and code_of.min() == 0 and code_of.max() == K - 1
    assert len(torch.unique(code_of)) == K  # no empty code
    if mapping == "contiguous":
        assert torch.all(code_of[1:] >= code_of[:-1])
    if mapping == "random":
        n = torch.bincount(code_of)
        assert n.max() - n.min() <= 1
    if mapping == "kmeans":
        assert centroids.shape == (K, 4)
        for j in range(K):  # each centroid is the mean of its members
            assert torch.allclose(centroids[j], emb[code_of == j].mean(0), atol=1e-5)
    if mapping == "frequency":
        mass = torch.zeros(K, dtype=torch.float64).index_add_(0, code_of, counts.double()) / counts.sum()
        assert mass.max() < 3.0 / K  # about equal token mass per code


def test_frequency_balanced_hand_case():
    counts = torch.tensor([50.0, 30, 10, 5, 5, 0])
    assert vq.frequency_balanced(counts, 3).tolist() == [0, 1, 2, 2, 2, 2]


def test_floor_hand_case():
    code_of = torch.tensor([0, 0, 1, 1])
    tokens = [0, 0, 0, 1, 2, 2]  # code 0: 4 of 6 (tokens 0,0,0,1); code 1: 2 of 6 (token 2 only)
    f = vq.code_floor(code_of, tokens)
    assert abs(f["within_code_cost"] - np.log(2)) < 1e-12
    h = (4 / 6) * -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))
    assert abs(f["h_token_given_code"] - h) < 1e-12 and abs(f["floor"] - (np.log(2) - h)) < 1e-12
    assert vq.code_floor(torch.arange(4), tokens)["floor"] == 0  # identity map: no floor


def test_config_checks():
    with pytest.raises(train.ConfigError, match="vq_k"):
        train.parse_args(["--vq_k=0"], vq.Config)
    with pytest.raises(train.ConfigError, match="choose one of: kmeans, random"):
        train.parse_args(["--vq_mapping=nope"], vq.Config)
    with pytest.raises(train.ConfigError, match="init_from"):
        train.parse_args(["--vq_mapping=kmeans"], vq.Config)
    with pytest.raises(ValueError, match="bad run"):
        vq.parse_runs("full,12:nope")


def test_cli_bad_runs_exit_2(tmp_path):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "vq_logits.py"), "--runs=full,x:random"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "bad run" in r.stderr and list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_smoke_experiment(tmp_path, tiny_baseline):
    exp = vq.Experiment(runs="full,16:kmeans,16:random+bias", floor_ks="16", ft_iters=2,
                        baseline=tiny_baseline, out_dir=str(tmp_path / "vq"))
    rows, floors, timings = vq.run_experiment(exp)
    vq.report(rows, floors, timings, exp)
    assert [r["K"] for r in rows] == [50304, 16, 16] and len(floors) == 4
    assert all((tmp_path / "vq" / n).exists() for n in ("results.json", "results.md", "vq_logits.png"))
