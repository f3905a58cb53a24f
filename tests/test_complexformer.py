"""Tests for complexformer.py: CMHA reduces to RoPE, factorised = pairwise, relative positions, causality, gradients."""
import dataclasses
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import complexformer as cf
import lab
import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def omega(D):
    return 10000.0 ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)


def tables(D, T):
    """float64 RoPE tables from the same omega the references use, shaped for (B, T, nh, D) queries: (T, 1, D/2)."""
    angles = torch.arange(T, dtype=torch.float64)[:, None, None] * omega(D)
    return angles.cos(), angles.sin()


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_delta_one_b_zero_equals_rope_attention(dtype, tol):
    torch.manual_seed(0)
    cfg = train.GPTConfig(vocab_size=50, block_size=12, n_layer=2, n_head=2, n_embd=16)
    rope = train.GPT(cfg).to(dtype)
    cmha = train.GPT(cfg).to(dtype)
    cmha.load_state_dict(rope.state_dict())
    for block in cmha.blocks:
        block.attn.rotate = cf.CMHARotation(2, 8).to(dtype)
    idx = torch.randint(0, 50, (3, 12))
    a, loss_a = rope(idx, idx)
    b, loss_b = cmha(idx, idx)
    assert (a - b).abs().max() < tol and abs(loss_a - loss_b) < tol
    loss_a.backward()
    loss_b.backward()
    g_a, g_b = rope.blocks[0].attn.c_attn.weight.grad, cmha.blocks[0].attn.c_attn.weight.grad
    assert (g_a - g_b).abs().max() < 100 * tol


def bf16_ulp(x):
    """The spacing of bf16 numbers at |x| (8 significant bits): 2^(floor(log2 |x|) - 7), in float32."""
    return torch.ldexp(torch.ones_like(x, dtype=torch.float32), torch.frexp(x.float()).exponent - 8)


def test_delta_one_equals_rope_under_bf16_autocast():
    """The GPU path: q, k come out of c_attn in bf16 under autocast. RoPE rotates in float32 and rounds once; CMHA at
    delta = 1, b = 0 must agree with it to within one bf16 step of the output (an Euler transform done in bf16 rounds
    r, phi, cos and sin first and lands many steps away on small entries)."""
    torch.manual_seed(6)
    B, T, nh, D = 2, 16, 2, 16
    x, c_attn = torch.randn(B, T, nh * D), torch.nn.Linear(nh * D, 2 * nh * D, bias=False)
    cos, sin = (t[:, None] for t in train.rope_tables(D, T))  # (T, 1, D/2), float32, as the GPT passes them
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        q, k = c_attn(x).view(B, T, 2, nh, D).unbind(2)
        rope, cmha = train.RoPE()(q, k, cos, sin), cf.CMHARotation(nh, D)(q, k, cos, sin)
    assert q.dtype == torch.bfloat16
    for r, c in zip(rope, cmha):
        assert c.dtype == torch.bfloat16 and ((c.float() - r.float()).abs() <= bf16_ulp(r)).all()


def test_factorised_equals_pairwise():
    torch.manual_seed(1)
    B, nh, T, D = 2, 3, 7, 8
    rot = cf.CMHARotation(nh, D, init="authors", generator=torch.Generator().manual_seed(0)).double()
    with torch.no_grad():
        rot.b.normal_()
    q, k = torch.randn(B, T, nh, D, dtype=torch.float64), torch.randn(B, T, nh, D, dtype=torch.float64)
    cos, sin = tables(D, T)
    qr, kr = (x.transpose(1, 2) for x in rot(q, k, cos, sin))  # (B, nh, T, D)
    factorised = qr @ kr.transpose(-1, -2) / math.sqrt(D)
    reference = cf.pairwise_scores(q, k, rot.delta.detach(), rot.b.detach(), omega(D))
    assert torch.allclose(factorised, reference, atol=1e-10)
    # the authors' complex path: no 1/sqrt(D) on the score
    unscaled = cf.CMHARotation(nh, D, scale="none").double()
    unscaled.load_state_dict(rot.state_dict())
    qu, ku = (x.transpose(1, 2) for x in unscaled(q, k, cos, sin))
    assert torch.allclose(qu @ ku.transpose(-1, -2) / math.sqrt(D), reference * math.sqrt(D), atol=1e-9)
    # the authors' start really is different from RoPE
    assert not torch.allclose(rot.delta, torch.ones_like(rot.delta))


def test_scores_depend_on_m_minus_n_only():
    torch.manual_seed(2)
    nh, D, T = 2, 8, 30
    rot = cf.CMHARotation(nh, D, init="authors", generator=torch.Generator().manual_seed(3)).double()
    q1, k1 = torch.randn(1, 1, nh, D, dtype=torch.float64), torch.randn(1, 1, nh, D, dtype=torch.float64)
    cos, sin = tables(D, T)

    def score(m, n):
        qr, _ = rot(q1, k1, cos[m:m + 1], sin[m:m + 1])
        _, kr = rot(q1, k1, cos[n:n + 1], sin[n:n + 1])
        return (qr * kr).sum(-1)
    assert torch.allclose(score(9, 4), score(25, 20), atol=1e-12)
    assert not torch.allclose(score(9, 4), score(9, 5), atol=1e-3)


def test_causality_of_cmha_model():
    torch.manual_seed(3)
    cfg = cf.Config(positions="cmha_authors", n_layer=2, n_head=2, n_embd=16, block_size=10)
    model = cf.build_model(cfg).eval()
    idx = torch.randint(0, 100, (2, 10))
    changed = idx.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % 100
    a, b = model(idx)[0], model(changed)[0]
    assert torch.equal(a[:, :6], b[:, :6]) and not torch.allclose(a[:, 6:], b[:, 6:])


def test_gradcheck_q_k_v_delta_b():
    torch.manual_seed(4)
    B, nh, T, D = 1, 2, 4, 4
    cos, sin = tables(D, T)
    # keep inputs away from r = 0 and from atan2's cut at the negative real axis: positive real parts
    q = (torch.rand(B, T, nh, D, dtype=torch.float64) + 0.5).requires_grad_(True)
    k = (torch.rand(B, T, nh, D, dtype=torch.float64) + 0.5).requires_grad_(True)
    v = torch.randn(B, nh, T, D, dtype=torch.float64, requires_grad=True)
    delta = (torch.rand(nh, D // 2, dtype=torch.float64) + 0.5).requires_grad_(True)
    b = torch.randn(nh, D // 2, dtype=torch.float64, requires_grad=True)
    rot = cf.CMHARotation(nh, D).double()

    def attention(q, k, v, delta, b):
        qr, kr = torch.func.functional_call(rot, {"delta": delta, "b": b}, (q, k, cos, sin))
        return F.scaled_dot_product_attention(qr.transpose(1, 2), kr.transpose(1, 2), v, is_causal=True)
    assert torch.autograd.gradcheck(attention, (q, k, v, delta, b))


def test_bias_is_a_query_rotation_when_delta_is_one():
    """With delta = 1, b rotates each (re, im) pair of q by b: something W_q could learn itself."""
    torch.manual_seed(5)
    rot = cf.CMHARotation(1, 4).double()
    with torch.no_grad():
        rot.b.copy_(torch.tensor([[0.3, -1.1]]))
    q = torch.randn(1, 3, 1, 4, dtype=torch.float64)
    cos, sin = tables(4, 3)
    pre_rotated = train.apply_rope(q, torch.cos(rot.b.detach()), torch.sin(rot.b.detach()))
    qr, _ = rot(q, q, cos, sin)
    expected, _ = cf.CMHARotation(1, 4).double()(pre_rotated, q, cos, sin)
    assert torch.allclose(qr, expected, atol=1e-12)


def test_config_and_cli_errors(tmp_path):
    with pytest.raises(lab.ConfigError, match="choose one of: rope, cmha"):
        lab.parse_args(["--positions=alibi"], cf.Config)
    r = subprocess.run([sys.executable, os.path.join(ROOT, "complexformer.py"), "--variants=rope,alibi"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--variants" in r.stderr and list(tmp_path.iterdir()) == []
    r = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--variant=complexformer", "--positions=x"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--positions" in r.stderr and list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_smoke_experiment(tmp_path, tiny_text):
    exp = cf.Experiment(variants="rope,cmha_authors,none", seeds=1, iters=3, block_size=8, batch_size=2, eval_windows=2,
                        n_layer=1, n_head=2, n_embd=16, dataset=str(tiny_text), data_dir=str(tmp_path / "data"),
                        out_dir=str(tmp_path / "cf"))
    stats = cf.report(cf.run_experiment(exp), exp)
    assert set(stats) == {"rope", "cmha_authors", "none"}
    assert stats["cmha_authors"]["params"] == stats["rope"]["params"] + 16  # delta and b: n_layer x n_embd
    assert all((tmp_path / "cf" / n).exists() for n in ("results.json", "results.md", "complexformer.png",
                                                          "complexformer_heads.png"))
    verdict = json.loads((tmp_path / "cf" / "results.json").read_text())["verdict"]
    assert {"claim", "verdict", "control", "seeds", "command"} <= set(verdict[0])


def test_delta_and_b_are_not_weight_decayed():
    model = cf.build_model(cf.Config(positions="cmha", n_layer=1, n_head=2, n_embd=16))
    opt = train.make_optimizer(model, train.TrainConfig(weight_decay=0.1), torch.device("cpu"))
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    rot = model.blocks[0].attn.rotate
    assert id(rot.delta) not in decayed and id(rot.b) not in decayed
    assert id(model.blocks[0].attn.c_attn.weight) in decayed


@pytest.mark.parametrize("seed", range(20))
def test_factorised_equals_pairwise_for_any_seed(seed):
    """The same float64 tables on both sides: exact for every generator seed, not only for a lucky one."""
    torch.manual_seed(seed)
    rot = cf.CMHARotation(2, 8, init="authors", generator=torch.Generator().manual_seed(seed)).double()
    q, k = torch.randn(1, 9, 2, 8, dtype=torch.float64), torch.randn(1, 9, 2, 8, dtype=torch.float64)
    qr, kr = (x.transpose(1, 2) for x in rot(q, k, *tables(8, 9)))
    reference = cf.pairwise_scores(q, k, rot.delta.detach(), rot.b.detach(), omega(8))
    assert torch.allclose(qr @ kr.transpose(-1, -2) / math.sqrt(8), reference, atol=1e-10)


def test_starts_delta_one_and_authors_std():
    """cmha starts at delta = 1, b = 0 (exactly RoPE); cmha_authors draws delta ~ N(0, (D/2)^-1/2 squared)."""
    rope_start = cf.build_model(cf.Config(positions="cmha", n_layer=2, n_head=4, n_embd=64))
    for block in rope_start.blocks:
        assert torch.equal(block.attn.rotate.delta, torch.ones(4, 8)) and torch.equal(block.attn.rotate.b, torch.zeros(4, 8))
    authors = cf.build_model(cf.Config(positions="cmha_authors", n_layer=8, n_head=8, n_embd=256))
    deltas = torch.cat([block.attn.rotate.delta.flatten() for block in authors.blocks])  # 8 x 8 x 16 draws, D = 32
    assert abs(deltas.std().item() - 16 ** -0.5) < 0.02 and abs(deltas.mean().item()) < 0.03
    assert not torch.equal(authors.blocks[0].attn.rotate.delta, authors.blocks[1].attn.rotate.delta)


def test_loss_per_position_matches_model_loss(tmp_path):
    """The per-position losses average to the model's own mean loss on the same windows."""
    torch.manual_seed(0)
    model = train.GPT(train.GPTConfig(vocab_size=40, block_size=8, n_layer=1, n_head=2, n_embd=16))
    data = np.random.default_rng(0).integers(0, 40, 500).astype(np.uint16)
    per_position = cf.loss_per_position(model, data, 16, 5)
    offsets = torch.randint(500 - 16 - 1, (5,), generator=torch.Generator().manual_seed(0))
    x, y = train.get_batch(data, offsets, 16, torch.device("cpu"))
    assert len(per_position) == 16 and abs(np.mean(per_position) - model(x, y)[1].item()) < 1e-5
    assert per_position[0] != per_position[15]


def test_verdict_needs_the_control():
    """Hand-built seed values on each side of lab.py's rule: supported, inconclusive, not supported, control failed,
    fewer than 3 seeds; a flipped side, a dropped control or the wrong arm fails one of these."""
    rope = [2.04, 2.05, 2.03]
    stats = lambda cmha, none=(2.38, 2.39, 2.37): {  # noqa: E731
        "rope": {"1x": rope, "4x": rope}, "none": {"1x": list(none), "4x": list(none)},
        "cmha": {"1x": list(cmha), "4x": list(cmha)}}
    exp = cf.Experiment()
    verdict = lambda s, e=exp: [v["verdict"] for v in cf.verdicts(s, e)[0]]  # noqa: E731
    assert verdict(stats([2.00, 2.01, 1.995])) == ["supported"] * 2
    assert verdict(stats([2.05, 2.04, 2.03])) == ["inconclusive"] * 2            # 0.000 +- 0.01: straddles 0
    assert verdict(stats([2.09, 2.10, 2.08])) == ["not supported"] * 2           # worse than RoPE
    failed = cf.verdicts(stats([2.00, 2.01, 1.995], none=rope), exp)
    assert [v["verdict"] for v in failed[0]] == ["inconclusive"] * 2 and not failed[1]["passed"]
    assert "control did not pass" in failed[0][0]["why"] and "FAILED" in failed[1]["text"]
    two = {k: {w: x[:2] for w, x in v.items()} for k, v in stats([2.00, 2.01, 1.995]).items()}
    assert verdict(two, cf.Experiment(seeds=2)) == ["inconclusive"] * 2
    assert cf.verdicts({"rope": stats(rope)["rope"]}, exp) [0] == []
    assert "[" in cf.verdicts(stats([2.00, 2.01, 1.995]), exp)[0][0]["evidence"]  # the interval is shown



def test_quick_run_is_smaller_writes_elsewhere_and_says_so(tmp_path, monkeypatch):
    """--quick=true: fewer seeds and steps, its own folder, flags given still win, no reuse of earlier rows (an edit
    must show), verdicts marked quick; a full run still reuses rows written before --quick existed."""
    full, quick = cf.Experiment(), lab.parse_args(["--quick=true"], cf.Experiment)
    assert quick.quick and quick.out_dir != full.out_dir and set(cf.Experiment.QUICK) == {"seeds", "iters", "out_dir"}
    assert quick.seeds < full.seeds and quick.iters < full.iters and lab.parse_args(
        ["--quick=true", "--seeds=2"], cf.Experiment).seeds == 2
    stats = {v: {"1x": [2.0], "4x": [2.0]} for v in ("rope", "none", "cmha")}
    assert all(v["quick"] for v in cf.verdicts(stats, quick)[0])
    assert all(v["verdict"] == "quick: not a verdict" for v in cf.verdicts(stats, quick)[0])
    assert "--quick=true" in cf.verdicts(stats, quick)[0][0]["command"]
    exp = cf.Experiment(variants="rope", seeds=1, out_dir=str(tmp_path))
    settings = {**dataclasses.asdict(exp), "variants": "rope", "lrs": 2e-3, "seeds": 0, "out_dir": None,
                "quick": None, "code": lab.code_hash(train, cf)}
    (tmp_path / "rope_lr0.002_seed0").mkdir()
    (tmp_path / "rope_lr0.002_seed0" / "row.json").write_text(json.dumps({"variant": "rope", "settings": settings}))
    monkeypatch.setattr(train, "train", lambda *a, **k: pytest.fail("trained a run it could reuse"))
    assert cf.run_experiment(exp)[0]["variant"] == "rope"

    class Trained(Exception):
        pass

    def train_instead(*args, **kwargs):
        raise Trained
    monkeypatch.setattr(train, "train", train_instead)
    with pytest.raises(Trained):  # the same row, but a quick run trains it again
        cf.run_experiment(dataclasses.replace(exp, quick=True))
    (tmp_path / "rope_lr0.002_seed0" / "row.json").write_text(json.dumps({"variant": "rope", "settings": {
        **settings, "code": "an older edit"}}))
    with pytest.raises(Trained):  # a row made by other code is not reused
        cf.run_experiment(exp)
