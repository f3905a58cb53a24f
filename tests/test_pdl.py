"""Tests for pdl.py: the Power-Law Decay Loss, the bisection for equal perplexity, the logit-adjusted arm, the
verdicts."""
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
    head = pdl.SamplingHead(torch.nn.Identity(), 0.8)
    assert torch.isinf(head(logits)).tolist() == [[True, False, True, False]]


def test_nucleus_from_the_top_k_is_the_nucleus_from_a_full_sort():
    torch.manual_seed(0)
    logits = torch.randn(64, 500) * torch.rand(64, 1) * 6          # flat rows (large nuclei) and peaked ones
    sorted_logits, order = logits.sort(-1, descending=True)
    p = torch.softmax(sorted_logits, -1)
    full = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, order, p.cumsum(-1) - p >= 0.9)
    for k in (1, 8, 64, 500, 4096):  # small k: most rows fall back to the sort
        assert torch.equal(pdl.nucleus_drop(logits, 0.9, k), full), k
    assert (~full).sum(-1).max() > 64 > (~full).sum(-1).min()      # both paths taken at k = 64


def tiny_gpt(seed=0):
    torch.manual_seed(seed)
    return train.GPT(train.GPTConfig(vocab_size=50304, block_size=8, n_layer=1, n_head=2, n_embd=16))


def test_top_p_is_applied_when_sampling():
    """A nucleus of one token is greedy decoding; without the nucleus a near-uniform tiny model samples anything."""
    model, val = tiny_gpt(), np.arange(200, dtype=np.uint16)
    nucleus = pdl.sample_from_val(model, val, 3, 4, 4, seed=0, top_p=1e-9)
    offsets = torch.randint(len(val) - 4, (3,), generator=torch.Generator().manual_seed(0))
    prompts = torch.stack([torch.from_numpy(val[i:i + 4].astype(np.int64)) for i in offsets.tolist()])
    assert nucleus == model.generate(prompts, 4, temperature=0)[:, 4:].tolist()
    assert pdl.sample_from_val(model, val, 3, 4, 4, seed=0) != nucleus
    assert isinstance(model.lm_head, torch.nn.Linear)  # the head is put back


def test_logit_adjustment_lowers_frequent_tokens_and_keeps_never_seen_mass():
    """Uniform p over counts (100, 10, 1, 0), alpha 1: the seen mass 3/4 tilted by 1/count, the never-seen 1/4 kept."""
    counts = torch.tensor([100.0, 10.0, 1.0, 0.0])
    q = pdl.logit_adjusted(torch.zeros(2, 4), counts, 1.0).exp()
    w = torch.tensor([0.01, 0.1, 1.0])
    assert torch.allclose(q[:, :3], 0.75 * w / w.sum(), atol=1e-6) and torch.allclose(q[:, 3], torch.tensor(0.25))
    assert torch.allclose(pdl.logit_adjusted(torch.tensor([[1.0, -2.0, 0.5, 3.0]]), counts, 0.0).exp(),
                          torch.softmax(torch.tensor([[1.0, -2.0, 0.5, 3.0]]), -1), atol=1e-6)  # alpha 0: the model
    head = pdl.SamplingHead(torch.nn.Identity(), adjust=lambda z: pdl.logit_adjusted(z, counts, 0.5))
    assert torch.allclose(head(torch.zeros(1, 4)), pdl.logit_adjusted(torch.zeros(1, 4), counts, 0.5))


def hand_batches(d=3.0, n=6):
    """Two tokens, logits (0, -d), the true token 0: CE(T) = log(1 + exp(-d / T)), T(CE) = -d / log(exp(CE) - 1)."""
    return [(torch.tensor([[0.0, -d]] * n), torch.zeros(n, dtype=torch.long))] * 2


def test_cross_entropy_at_is_scores_and_the_closed_form():
    torch.manual_seed(3)
    logits = torch.randn(2, 10, 7) * 3
    batches = [(z - z.max(-1, keepdim=True).values, torch.randint(0, 7, (10,))) for z in logits]
    none = torch.zeros(7, dtype=torch.bool)
    for t in (1.0, 1.7, 5.0):
        assert abs(pdl.cross_entropy_at(batches, t) - pdl.score_logits(batches, none, none, [(t, 1.0)])[(t, 1.0)][
            "cross_entropy"]) < 1e-5
        assert abs(pdl.cross_entropy_at(hand_batches(), t) - math.log1p(math.exp(-3 / t))) < 1e-6


def test_bisection_matches_the_closed_form():
    ce = lambda t: pdl.cross_entropy_at(hand_batches(), t)
    for target in (0.2, 0.5, 0.6):
        t, f, evals = pdl.matched_temperature(ce, target, 16.0)
        exact = -3 / math.log(math.exp(target) - 1)
        assert abs(math.log1p(math.exp(-3 / t)) - target) <= 1e-3 and abs(f - target) <= 1e-3 and evals <= 40
        assert 1 <= t <= 16 and abs(t - exact) < 0.01 * exact


def test_bisection_refuses_below_t1_beyond_the_range_and_past_its_budget():
    """T < 1 would reach 0.01 here (sharper: the true token is the likelier one); it is refused, not returned. Above
    CE(16) it refuses rather than returning 16 or extrapolating."""
    ce = lambda t: pdl.cross_entropy_at(hand_batches(), t)
    with pytest.raises(pdl.NoMatch, match="T < 1"):
        pdl.matched_temperature(ce, 0.01, 16.0)
    with pytest.raises(pdl.NoMatch, match="not extrapolated"):
        pdl.matched_temperature(ce, 0.65, 16.0)  # CE(16) = 0.604
    with pytest.raises(pdl.NoMatch, match="evaluations"):
        pdl.matched_temperature(ce, 0.5, 16.0, tol=1e-9, max_evals=8)
    assert pdl.matched_temperature(ce, math.log1p(math.exp(-3)), 16.0)[0] == 1.0  # CE(1) itself: T = 1


def test_finetune_uses_its_alpha(tiny_baseline, tmp_path):
    baseline = lab.load_baseline(tiny_baseline)
    exp = pdl.Experiment(steps=1, eval_every=1, eval_batches=1, out_dir=str(tmp_path / "pdl"))
    counts = pdl.target_counts(baseline["train_data"], 50304)
    a, b = torch.argsort(counts, descending=True)[:2]
    for alpha in (0.0, 0.5):
        model, track = pdl.finetune(exp, baseline, alpha, 0, counts == 0)
        w = model.loss_fn.weights.double()
        assert abs(w[b] / w[a] - (counts[a] / counts[b]) ** alpha) < 1e-4 and [it for it, _ in track] == [1]


def test_score_agrees_with_val_loss_and_splits_rare(tiny_text, tmp_path):
    folder = train.prepare_data(str(tiny_text), str(tmp_path / "data"))
    data = train.load_tokens(folder, "val", 10)
    model = tiny_gpt()
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


def test_cli_bad_values_exit_2(tmp_path, capsys):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "pdl.py"), "--alphas=0,x"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--alphas" in r.stderr and list(tmp_path.iterdir()) == []
    for flag in ("--max_temperature=1", "--control_alpha=0", "--temperatures=2", "--top_ps=1"):
        assert pdl.run([flag]) == 2
        err = capsys.readouterr().err
        assert flag.split("=")[0] in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_smoke_experiment(tmp_path, tiny_baseline):
    """A tiny baseline, alpha 0 and 1, two seeds, end to end: every matched row at its arm's cross-entropy (or the
    refusal recorded), verdicts, table and figure written."""
    exp = pdl.Experiment(alphas="1", temperatures="1,1.5", top_ps="0.9", seeds=2, steps=4, eval_every=2, eval_batches=1,
                         n_samples=4, sample_len=8, baseline=tiny_baseline, out_dir=str(tmp_path / "pdl"))
    rows, tracks, reference = pdl.run_experiment(exp)
    pdl.report(rows, tracks, reference, exp)
    assert [pdl.label(r) for r in rows[:5]] == ["plain, T 1", "plain, T 1.5", "plain, top-p 0.9", "PDL alpha 1",
                                                 "logit-adjusted alpha 1"]
    assert [it for it, _ in tracks[0]["unseen_mass"]] == [2, 4] and len(tracks) == 4
    arms = [r for r in rows if r["arm"] in ("PDL", "logit-adjusted")]
    assert len(arms) == 4
    for arm in arms:
        matched = [r for r in rows if r["matches"] == pdl.label(arm) and r["seed"] == arm["seed"]]
        assert (len(matched) == 1 and 1 <= matched[0]["temperature"] <= 16 and not arm["match_error"] and
                abs(matched[0]["cross_entropy"] - arm["cross_entropy"]) <= 1e-3) or (arm["match_error"] and not matched)
    plain = {r["seed"]: r for r in rows if pdl.label(r) == "plain, T 1"}
    assert all(abs(r["cross_entropy"] - plain[r["seed"]]["cross_entropy"]) > 1e-3 for r in arms)  # adjusted, tuned
    data = json.loads((tmp_path / "pdl" / "results.json").read_text())
    assert len(data["verdict"]) == 7 and {"claim", "paper_says", "verdict", "control", "seeds", "command"} <= set(
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
    rows = pdl_rows([0.5, 0.52, 0.48])
    assert all(v["quick"] and "--quick=true" in v["command"] for v in pdl.verdicts(rows, quick)[0])
    assert not any(v["quick"] for v in pdl.verdicts(rows, full)[0])
    cfg = quick_baseline_config(pdl)
    assert (cfg.max_iters, cfg.batch_size) == (small["max_iters"], small["batch_size"])
    assert cfg.out_dir == str(tmp_path / "base")  # beside the checkpoint it was asked for


KEYS = ("sample_entropy", "rare_share", "rare_prob", "rare_cross_entropy")


def pdl_rows(deltas, control=0.3, adjusted_gain=0.0, plain_by_seed=(7.0, 5.0, 5.2)):
    """Three seeds whose plain levels differ a lot: PDL alpha 1 at the same seed's matched plain model plus delta in
    every measure (minus delta in the rare cross-entropy: lower is better); the plain model at T = 1 0.2 below that
    level (0.2 above it in the rare cross-entropy); the logit-adjusted arm `adjusted_gain` above its own T* (0.6 above
    the level), `control` above it in rare share."""
    rows = []
    for seed, (delta, level) in enumerate(zip(deltas, plain_by_seed)):
        def row(arm, t, matches, shift, rare_share=None, rare_cross_entropy=None):
            values = {k: level + shift for k in ("sample_entropy", "rare_share", "rare_prob", "rare_cross_entropy")}
            values["rare_share"] = level + (shift if rare_share is None else rare_share)
            values["rare_cross_entropy"] = level + (shift if rare_cross_entropy is None else rare_cross_entropy)
            rows.append({"arm": arm, "alpha": 0.0 if arm == "temperature" else 1.0, "temperature": t, "top_p": 1.0,
                         "seed": seed, "matches": matches, "match_error": "", "cross_entropy": 6.0 + seed,
                         "excluded": 0.0, **values})
        row("temperature", 1.0, "", -0.2, rare_cross_entropy=0.2)
        row("PDL", 1.0, "", delta, rare_cross_entropy=-delta)
        row("logit-adjusted", 1.0, "", 0.6 + adjusted_gain, rare_share=0.6 + control)
        row("temperature", 2.0 + seed, "PDL alpha 1", 0.0)
        row("temperature", 3.0 + seed, "logit-adjusted alpha 1", 0.6)  # its own T*, not PDL's
    return rows


def verdict_of(rows, exp=None):
    return [v["verdict"] for v in pdl.verdicts(rows, exp or pdl.Experiment())[0]]


def test_verdicts_on_each_side_of_the_rule_pair_by_seed():
    """PDL above the same seed's matched plain model (supported), on it (inconclusive), below it (not supported). The
    plain levels differ between seeds, so pairing every seed with seed 0's plain model gets these wrong."""
    assert verdict_of(pdl_rows([0.5, 0.52, 0.48]))[:5] == ["supported"] * 5
    assert verdict_of(pdl_rows([0.05, -0.04, 0.0]))[:3] == ["inconclusive"] * 3
    assert verdict_of(pdl_rows([-0.5, -0.52, -0.48]))[:3] == ["not supported"] * 3
    assert verdict_of(pdl_rows([-0.25, -0.27, -0.23]))[3:5] == ["not supported"] * 2  # against T = 1: 0.2 to make up
    v = pdl.verdicts(pdl_rows([0.5, 0.52, 0.48]), pdl.Experiment())[0]
    assert all("+0.500 [" in x["evidence"] and "paired" in x["evidence"] for x in v[:3])
    assert "+0.700 [" in v[3]["evidence"] and "plain, T 1" in v[3]["evidence"]
    assert "-0.700 [" in v[4]["evidence"] and "needs < 0" in v[4]["evidence"]  # rare cross-entropy: lower is better
    two = [r for r in pdl_rows([0.5, 0.52, 0.48]) if r["seed"] < 2]
    assert verdict_of(two) == ["inconclusive"] * 7


def test_logit_adjusted_comparison_and_its_note():
    """PDL's gain over temperature (about 0.5) against the logit adjustment's: 0 (PDL beats it), 0.5 (a match: the
    note says the finetuning buys nothing), 1 (it beats PDL)."""
    for gain, outcome in ((0.0, "supported"), (0.5, "inconclusive"), (1.0, "not supported")):
        v = pdl.verdicts(pdl_rows([0.5, 0.52, 0.48], adjusted_gain=gain), pdl.Experiment())[0][5:]
        assert [x["verdict"] for x in v] == [outcome] * 2
        assert all(("buys nothing" in x["evidence"]) == (outcome != "supported") for x in v)


def test_control_direction_gates_every_verdict():
    """The logit-adjusted arm's samples must hold more rare tokens than its T*'s: fewer fails the control, and every
    verdict is then inconclusive, whatever its evidence."""
    ok, gate = pdl.verdicts(pdl_rows([0.5, 0.52, 0.48], control=0.3), pdl.Experiment())
    assert gate["passed"] and "+0.300 [" in gate["text"]
    failed, gate = pdl.verdicts(pdl_rows([0.5, 0.52, 0.48], control=-0.3), pdl.Experiment())
    assert not gate["passed"] and "FAILED" in gate["text"]
    assert all(v["verdict"] == "inconclusive" and v["why"] for v in failed)


def test_a_refused_match_is_inconclusive_and_says_why():
    rows = [r for r in pdl_rows([0.5, 0.52, 0.48]) if not (r["matches"] == "PDL alpha 1" and r["seed"] == 1)]
    next(r for r in rows if r["arm"] == "PDL" and r["seed"] == 1)["match_error"] = "above T = 16: not extrapolated"
    v = pdl.verdicts(rows, pdl.Experiment())[0]
    assert [x["verdict"] for x in v[:3]] == ["inconclusive"] * 3 and "not extrapolated" in v[0]["evidence"]
    assert [x["verdict"] for x in v[3:5]] == ["supported"] * 2  # the T = 1 comparisons need no match
