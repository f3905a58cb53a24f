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
        rot = block.attn.rotate
        assert torch.equal(rot.delta, torch.ones(4, 8)) and torch.equal(rot.b, torch.zeros(4, 8))
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
    arm = lambda x: {"seeds": list(range(len(x))), "1x": list(x), "4x": list(x)}
    stats = lambda cmha, none=(2.38, 2.39, 2.37): {"rope": arm(rope), "none": arm(none), "cmha": arm(cmha)}
    exp = cf.Experiment()
    verdict = lambda s, e=exp: [v["verdict"] for v in cf.verdicts(s, e)[0]]
    assert verdict(stats([2.00, 2.01, 1.995])) == ["supported"] * 2
    assert verdict(stats([2.05, 2.04, 2.03])) == ["inconclusive"] * 2            # 0.000 +- 0.01: straddles 0
    assert verdict(stats([2.09, 2.10, 2.08])) == ["not supported"] * 2           # worse than RoPE
    failed = cf.verdicts(stats([2.00, 2.01, 1.995], none=rope), exp)
    assert [v["verdict"] for v in failed[0]] == ["inconclusive"] * 2 and not failed[1]["passed"]
    assert "control did not pass" in failed[0][0]["why"] and "FAILED" in failed[1]["text"]
    two = {k: {w: x[:2] for w, x in v.items()} for k, v in stats([2.00, 2.01, 1.995]).items()}  # seeds 0, 1
    assert verdict(two, cf.Experiment(seeds=2)) == ["inconclusive"] * 2
    assert cf.verdicts({"rope": stats(rope)["rope"]}, exp) [0] == []
    assert "[" in cf.verdicts(stats([2.00, 2.01, 1.995]), exp)[0][0]["evidence"]  # the interval is shown



def test_quick_run_is_smaller_writes_elsewhere_and_says_so(tmp_path, monkeypatch):
    """--quick=true: fewer seeds and steps, its own folder, flags given still win, no reuse of earlier rows (an edit
    must show), verdicts marked quick; a full run still reuses rows written before --quick existed."""
    full, quick = cf.Experiment(), lab.parse_args(["--quick=true"], cf.Experiment)
    assert quick.quick and quick.out_dir != full.out_dir
    assert set(cf.Experiment.QUICK) == {"seeds", "iters", "out_dir", "variants", "arm_lrs"}
    assert quick.seeds < full.seeds and quick.iters < full.iters and lab.parse_args(
        ["--quick=true", "--seeds=2"], cf.Experiment).seeds == 2
    stats = {v: {"seeds": [0], "1x": [2.0], "4x": [2.0]} for v in ("rope", "none", "cmha")}
    assert all(v["quick"] for v in cf.verdicts(stats, quick)[0])
    assert all(v["verdict"] == "quick: not a verdict" for v in cf.verdicts(stats, quick)[0])
    assert "--quick=true" in cf.verdicts(stats, quick)[0][0]["command"]
    exp = cf.Experiment(variants="rope", seeds=1, arm_lrs="rope:2e-3", out_dir=str(tmp_path))
    settings = {**{k: getattr(exp, k) for k in cf.RUN_KEYS}, "variant": "rope", "lr": 2e-3, "seed": 0,
                "code": cf.training_code()}
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


def test_each_variant_builds_what_it_says():
    """rope and none: the shared steps; each CMHA arm: its start, and trained or frozen (buffers, not parameters)."""
    cfg = dict(n_layer=2, n_head=2, n_embd=16, seed=3)
    starts = {name: cf.build_model(cf.Config(positions=name, **cfg)) for name in cf.POSITIONS}
    assert type(starts["rope"].blocks[0].attn.rotate) is train.RoPE
    assert type(starts["none"].blocks[0].attn.rotate) is train.NoRotation
    rotate = {name: m.blocks[1].attn.rotate for name, m in starts.items() if name.startswith("cmha")}
    assert torch.equal(rotate["cmha"].delta, torch.ones(2, 4)) and torch.equal(rotate["cmha_delta0"].delta,
                                                                               torch.zeros(2, 4))
    # the frozen arm starts where the trained one does at the same seed: the two pair by seed
    assert torch.equal(rotate["cmha_authors_fixed"].delta, rotate["cmha_authors"].delta)
    assert not torch.equal(rotate["cmha_authors"].delta, torch.ones(2, 4))
    assert all(torch.equal(r.b, torch.zeros(2, 4)) for r in rotate.values())
    trained = {name for name, r in rotate.items() if isinstance(r.delta, torch.nn.Parameter)}
    assert trained == {"cmha", "cmha_authors"} and not any(isinstance(r.b, torch.nn.Parameter) for name, r in
                                                           rotate.items() if name not in trained)
    params = {name: m.param_counts()["total"] for name, m in starts.items()}
    assert params["cmha_authors"] == params["rope"] + 2 * 16 == params["cmha_authors_fixed"] + 2 * 16
    assert params["cmha_delta0"] == params["none"] == params["rope"]


def test_frozen_arm_keeps_its_start_through_an_optimizer_step():
    torch.manual_seed(0)
    models = {name: cf.build_model(cf.Config(positions=name, n_layer=1, n_head=2, n_embd=16, block_size=8, seed=1))
              for name in ("cmha_authors", "cmha_authors_fixed", "cmha_delta0")}
    batch = torch.randint(0, 50, (2, 9))
    for name, model in models.items():
        rot, before = model.blocks[0].attn.rotate, {k: v.detach().clone() for k, v in model.state_dict().items()}
        opt = train.make_optimizer(model, train.TrainConfig(), torch.device("cpu"))
        train.train_step(model, opt, lambda: (batch[:, :-1], batch[:, 1:]), 1e-2)
        after = model.state_dict()
        assert not torch.equal(before["blocks.0.attn.c_attn.weight"], after["blocks.0.attn.c_attn.weight"])
        moved = not torch.equal(before["blocks.0.attn.rotate.delta"], rot.delta)
        assert moved == (name == "cmha_authors"), name
        assert torch.equal(before["blocks.0.attn.rotate.b"], rot.b) == (name != "cmha_authors"), name


def test_delta0_scores_are_magnitude_and_position_only():
    """delta = 0: s_mn = sum_j |q_j| |k_j| cos(b_j + (m - n) omega_j) / sqrt(D), computed here by hand (no phases)."""
    torch.manual_seed(7)
    B, nh, T, D = 2, 2, 6, 8
    rot = cf.CMHARotation(nh, D, init="zero", trainable=False).double()
    rot.b.copy_(torch.randn(nh, D // 2))  # a nonzero b, to check where it enters
    q, k = torch.randn(B, T, nh, D, dtype=torch.float64), torch.randn(B, T, nh, D, dtype=torch.float64)
    qr, kr = (x.transpose(1, 2) for x in rot(q, k, *tables(D, T)))
    r_q, r_k = (x.transpose(1, 2).unflatten(-1, (-1, 2)).norm(dim=-1) for x in (q, k))  # (B, nh, T, D/2)
    by_hand = torch.zeros(B, nh, T, T, dtype=torch.float64)
    for m in range(T):
        for n in range(T):
            by_hand[:, :, m, n] = (r_q[:, :, m] * r_k[:, :, n] * torch.cos(rot.b + (m - n) * omega(D))).sum(-1)
    assert torch.allclose(qr @ kr.transpose(-1, -2), by_hand, atol=1e-10)
    q_flipped = q * torch.tensor([-1.0, 1.0] * (D // 2), dtype=torch.float64)  # every phase changes, no magnitude
    assert torch.allclose(rot(q_flipped, k, *tables(D, T))[0], rot(q, k, *tables(D, T))[0], atol=1e-12)


def test_runs_use_each_arms_rate_and_seed_count(tmp_path, monkeypatch):
    """(b): each arm at its own --arm_lrs rate, --seeds capped by --arm_seeds; (a): every arm at every grid rate;
    and the rate reaches the training config."""
    exp = cf.Experiment(variants="rope,cmha_authors,none", seeds=4, arm_lrs="rope:1e-3,cmha_authors:8e-3,none:2e-3",
                        arm_seeds="none:2,rope:9", out_dir=str(tmp_path))
    runs = cf.planned_runs(exp)
    assert {(v, lr) for v, lr, _ in runs} == {("rope", 1e-3), ("cmha_authors", 8e-3), ("none", 2e-3)}
    assert [s for v, _, s in runs if v == "none"] == [0, 1] and [s for v, _, s in runs if v == "rope"] == [0, 1, 2, 3]
    search = dataclasses.replace(exp, lrs="1e-3,4e-3", seeds=2)
    assert cf.planned_runs(search) == [(v, lr, s) for v in ("rope", "cmha_authors", "none") for lr in (1e-3, 4e-3)
                                       for s in (0, 1)]
    trained, train_one = [], cf.train_one
    monkeypatch.setattr(cf, "train_one", lambda e, v, lr, seed, d: trained.append((v, lr, seed, d.name)) or {
        "variant": v, "lr": lr, "seed": seed, "cpu_seconds": 0.0})
    cf.run_experiment(dataclasses.replace(search, variants="cmha_authors", lrs="4e-3,8e-3", seeds=1))
    cf.run_experiment(dataclasses.replace(exp, seeds=1))  # the search's row at 8e-3 serves the default run
    assert trained == [("cmha_authors", 4e-3, 0, "cmha_authors_lr0.004_seed0"),
                       ("cmha_authors", 8e-3, 0, "cmha_authors_lr0.008_seed0"),
                       ("rope", 1e-3, 0, "rope_lr0.001_seed0"), ("none", 2e-3, 0, "none_lr0.002_seed0")]

    class Configured(Exception):
        pass

    def capture(cfg, build):
        raise Configured(cfg)
    monkeypatch.setattr(train, "train", capture)
    with pytest.raises(Configured) as got:
        train_one(exp, "cmha_authors_fixed", 8e-3, 3, tmp_path / "x")
    cfg = got.value.args[0]
    assert (cfg.positions, cfg.learning_rate, cfg.min_lr, cfg.seed) == ("cmha_authors_fixed", 8e-3, 8e-4, 3)


def rows_for(arm, loss_by_lr, seeds=(0, 1), T=4):
    """Hand-made rows: a flat per-position loss for each (rate, seed); seed s adds s / 1000."""
    return [{"variant": arm, "lr": lr, "seed": s, "params": 1, "cpu_seconds": 1.0, "curve": [[0, loss], [1, loss]],
             "delta": [[[1.0]]], "b": [[[0.0]]], "per_position": [loss + s / 1000] * (4 * T)}
            for lr, loss in loss_by_lr.items() for s in seeds]


def test_best_rate_is_the_minimum_per_arm_and_the_edge_is_flagged(tmp_path, capsys, monkeypatch):
    rows = (rows_for("rope", {1e-3: 2.10, 2e-3: 2.00, 4e-3: 2.05}) + rows_for("cmha_authors", {1e-3: 2.2, 2e-3: 2.1,
            4e-3: 2.0}) + rows_for("none", {1e-3: 2.3, 2e-3: 2.4, 4e-3: 2.5}) + rows_for("cmha", {2e-3: 2.0}))
    exp = cf.Experiment(lrs="1e-3,2e-3,4e-3", seeds=2, block_size=4, out_dir=str(tmp_path))
    stats = cf.summarise(rows, exp)
    assert {v: s["lr"] for v, s in stats.items()} == {"rope": 2e-3, "cmha_authors": 4e-3, "none": 1e-3, "cmha": 2e-3}
    assert {v: s["edge"] for v, s in stats.items()} == {"rope": False, "cmha_authors": True, "none": True,
                                                          "cmha": False}
    assert stats["rope"]["1x"] == pytest.approx([2.000, 2.001])
    assert stats["none"]["lr_means"][4e-3] == pytest.approx(2.5005) and stats["none"]["seeds"] == [0, 1]
    recorded = []
    monkeypatch.setattr(lab, "record", lambda name, *args: recorded.append(name))
    cf.report(rows, exp)
    out = capsys.readouterr().out
    assert "best rates, for --arm_lrs: rope:0.002,cmha_authors:0.004,none:0.001,cmha:0.002" in out
    assert out.count("NOT BRACKETED") == 2 and "cmha_authors's best rate 0.004" in out and "none's best" in out
    assert (tmp_path / "lr_search" / "results.json").exists() and not (tmp_path / "results.json").exists()
    assert recorded == []  # a search records nothing in results/; the default run does
    cf.report(rows, dataclasses.replace(exp, lrs=""))
    assert recorded == ["complexformer"] and (tmp_path / "results.json").exists()


def test_arms_pair_by_seed_and_the_frozen_arm_is_judged_within_the_margin():
    """Arms with different seed counts pair on the seeds both ran, matched by seed; the frozen arm's claim is
    'within +- match_margin' of the trained arm: supported inside, not supported outside, inconclusive across."""
    stats = {"rope": {"seeds": [0, 1, 2, 3, 4], "1x": [2.00, 2.10, 2.20, 2.30, 2.40]},
             "none": {"seeds": [4, 2, 3], "1x": [2.70, 2.50, 2.61]}}
    assert cf.paired(stats, "rope", "none", "1x") == ([2.20, 2.30, 2.40], [2.50, 2.61, 2.70])
    exp = cf.Experiment()
    authors = [2.00, 2.03, 1.98, 2.01, 2.02]
    arm = lambda x: {"seeds": list(range(len(x))), "1x": list(x), "4x": list(x)}
    base = {"rope": arm([a + 0.05 for a in authors]), "none": arm([2.4, 2.45, 2.5]), "cmha_authors": arm(authors)}
    judged = lambda shift: {v["claim"]: v["verdict"] for v in cf.verdicts(
        {**base, "cmha_authors_fixed": arm([a + s for a, s in zip(authors, shift)])}, exp)[0]}
    matches = next(c for c in judged([0.0] * 5) if "match" in c and c.startswith("cmha_authors_fixed"))
    assert judged([0.002, -0.001, 0.001, 0.0, 0.003])[matches] == "supported"
    assert judged([0.05, 0.052, 0.049, 0.051, 0.05])[matches] == "not supported"
    assert judged([-0.05, -0.052, -0.049, -0.051, -0.05])[matches] == "not supported"  # far better is no match either
    assert judged([0.002, 0.03, -0.02, 0.01, -0.01])[matches] == "inconclusive"
    got = cf.verdicts({**base, "cmha_authors_fixed": arm(authors)}, exp)
    assert got[1]["passed"] and "n=3" in got[1]["text"] and got[0][0]["seeds"] == 5  # none ran 3 seeds, rope 5


def test_arm_options_are_checked(tmp_path):
    for flag, said in (("--arm_lrs=rope:1e-3", "no rate for"), ("--arm_lrs=alibi:1e-3", "arm:value"),
                       ("--arm_seeds=none:x", "numbers"), ("--lrs=1e-3,-2e-3", "positive")):
        r = subprocess.run([sys.executable, os.path.join(ROOT, "complexformer.py"), flag], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and said in r.stderr and list(tmp_path.iterdir()) == [], (flag, r.stderr)
