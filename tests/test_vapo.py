"""Tests for vapo.py: GAE, length-adaptive lambda, loss aggregation, clip-higher, GRPO, critic metrics,
the reward and the teacher, and a 2-iteration run of each method."""
import copy
import dataclasses
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import cot_probe as task
import lab
import train
import vapo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def batch_of_sequences(seed=0, B=4, T=9):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([9, 5, 1, 7])[:B]
    mask = (torch.arange(T)[None] < lengths[:, None]).double()
    rewards = torch.zeros(B, T, dtype=torch.float64)
    rewards[torch.arange(B), lengths - 1] = torch.tensor([1.0, 0.0, 1.0, 1.0], dtype=torch.float64)[:B]
    values = torch.rand(B, T, generator=g, dtype=torch.float64) * mask
    return rewards, values, mask, lengths


def test_gae_lambda_one_is_the_monte_carlo_return():
    rewards, values, mask, _ = batch_of_sequences()
    adv, ret = vapo.gae(rewards, values, mask, torch.ones(4, dtype=torch.float64))
    mc = rewards.flip(1).cumsum(1).flip(1) * mask           # gamma = 1: the sum of rewards still to come
    assert torch.allclose(ret, mc) and torch.allclose(adv, (mc - values) * mask)


def test_gae_lambda_zero_is_the_td_error():
    rewards, values, mask, _ = batch_of_sequences(1)
    adv, _ = vapo.gae(rewards, values, mask, torch.zeros(4, dtype=torch.float64))
    next_v = torch.cat([values[:, 1:] * mask[:, 1:], torch.zeros(4, 1, dtype=torch.float64)], 1)
    assert torch.allclose(adv, (rewards + next_v - values) * mask)


def test_reverse_loop_equals_matrix_form_with_a_lambda_per_row():
    rewards, values, mask, lengths = batch_of_sequences(2)
    lam = torch.tensor([0.3, 0.9, 0.5, 0.0], dtype=torch.float64)
    adv, _ = vapo.gae(rewards, values, mask, lam)
    next_v = torch.cat([values[:, 1:] * mask[:, 1:], torch.zeros(4, 1, dtype=torch.float64)], 1)
    delta = (rewards + next_v - values) * mask
    for b in range(4):
        n = int(lengths[b])
        t = torch.arange(n)
        M = torch.where(t[None] >= t[:, None], lam[b] ** (t[None] - t[:, None]).double(), torch.zeros(1, dtype=torch.float64))
        assert torch.allclose(adv[b, :n], M @ delta[b, :n])


def test_right_padding_changes_nothing():
    rewards, values, mask, _ = batch_of_sequences(3)
    lam = torch.full((4,), 0.7, dtype=torch.float64)
    adv, ret = vapo.gae(rewards, values, mask, lam)
    pad = lambda x, fill: torch.cat([x, torch.full((4, 5), fill, dtype=x.dtype)], 1)  # noqa: E731
    adv2, ret2 = vapo.gae(pad(rewards, 3.0), pad(values, -7.0), pad(mask, 0.0), lam)  # garbage in the padding
    assert torch.allclose(adv2[:, :9], adv) and torch.allclose(ret2[:, :9], ret)
    assert torch.all(adv2[:, 9:] == 0) and torch.all(ret2[:, 9:] == 0)


def test_length_adaptive_lambda_and_its_clamp():
    lengths = torch.tensor([1, 2, 10, 20, 500])
    lam = vapo.adaptive_lambda(lengths, 0.5)
    ok = lam > 0
    assert torch.allclose(1 / (1 - lam[ok]), 0.5 * lengths[ok].double())    # 1/(1 - lambda) = alpha l
    assert lam[0] == 0 and lam[1] == 0 and torch.all((lam >= 0) & (lam <= 1))  # alpha l <= 1: clamped to 0
    assert abs(vapo.adaptive_lambda(torch.tensor([20]), 1.25)[0] - 0.96) < 1e-12
    assert torch.all(vapo.adaptive_lambda(torch.tensor([5, 20]), 0.05) == 0)  # the paper's alpha at our lengths


def test_token_level_versus_per_sequence_weighting():
    per_token = torch.zeros(2, 100, requires_grad=True)
    mask = torch.zeros(2, 100)
    mask[0, :10], mask[1, :100] = 1, 1
    g_seq, = torch.autograd.grad(vapo.aggregate(per_token, mask, token_level=False), per_token)
    g_tok, = torch.autograd.grad(vapo.aggregate(per_token, mask, token_level=True), per_token)
    assert torch.isclose(g_seq[0, 0] / g_seq[1, 0], torch.tensor(10.0))      # 10-token answer weighs 10x
    assert g_tok[0, 0] == g_tok[1, 0] == 1 / 110 and g_tok[0, 50] == 0


@pytest.mark.parametrize("adv", [1.0, -1.0])
def test_clip_higher_gradients_vanish_outside_the_range_on_the_clipped_side(adv):
    ratios = torch.tensor([0.5, 0.79, 0.81, 1.0, 1.27, 1.29, 2.0], requires_grad=True)
    loss = vapo.clipped_surrogate(ratios, torch.full((7,), adv), 0.2, 0.28).sum()
    grad, = torch.autograd.grad(loss, ratios)
    if adv > 0:   # clipped above 1.28 only
        assert grad.tolist() == [-1, -1, -1, -1, -1, 0, 0]
    else:         # clipped below 0.8 only
        assert grad.tolist() == [0, 0, 1, 1, 1, 1, 1]


def test_policy_step_clips_at_1_28_with_clip_higher_and_at_1_2_without():
    torch.manual_seed(0)
    sft = train.GPT(train.GPTConfig(vocab_size=len(task.VOCAB), block_size=vapo.BLOCK, n_layer=1, n_head=2,
                                    n_embd=16)).eval()
    batch = vapo.rollout(sft, vapo.sample_prompts(2, np.random.default_rng(0)), 4, torch.Generator().manual_seed(0))
    with torch.no_grad():
        logp = vapo.response_logp(sft, batch)[0]
    moved = {}
    for clip_higher in (True, False):
        policy = copy.deepcopy(sft)
        opt = torch.optim.AdamW(policy.parameters(), lr=1e-3, weight_decay=0.0)
        cfg = vapo.method_config("vapo", clip_higher=clip_higher, lm_loss=False)
        rows = torch.arange(len(logp))                  # every ratio 1.25, every advantage +1
        vapo.policy_step(cfg, policy, opt, batch, rows, batch["mask"].clone(), logp - math.log(1.25), logp)
        moved[clip_higher] = max((p - q).abs().max().item() for p, q in zip(policy.parameters(), sft.parameters()))
    assert moved[True] > 0 and moved[False] == 0         # 1.25 is inside 1 + 0.28, outside 1 + 0.2


def test_critic_returns_use_lambda_critic_and_advantages_lambda_policy():
    rewards, values, mask, lengths = batch_of_sequences(4)
    cfg = vapo.method_config("vapo")
    lam_policy = vapo.adaptive_lambda(lengths, cfg.alpha)
    assert lam_policy.max() < 1                                # so the two lambdas differ on every row
    adv, returns, lam = vapo.advantages_and_returns(rewards, values, mask, lengths, cfg)
    mc = rewards.flip(1).cumsum(1).flip(1) * mask              # decoupled: lambda_critic = 1, the Monte-Carlo return
    assert torch.allclose(returns, mc) and torch.equal(lam, lam_policy)
    assert torch.allclose(adv, vapo.gae(rewards, values, mask, lam_policy)[0])
    fixed = torch.full((4,), 0.95, dtype=torch.float64)          # PPO: 0.95 for both
    adv, returns, lam = vapo.advantages_and_returns(rewards, values, mask, lengths, vapo.method_config("ppo"))
    assert torch.allclose(adv, vapo.gae(rewards, values, mask, fixed)[0])
    assert torch.allclose(returns, vapo.gae(rewards, values, mask, fixed)[1]) and not torch.allclose(returns, mc)


def test_grpo_advantages():
    r = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0])
    a = vapo.group_advantages(r, 4)
    assert torch.allclose(a.view(3, 4).sum(1), torch.zeros(3), atol=1e-6)
    assert torch.all(a[4:8] == 0)                             # an all-equal group gives 0
    assert torch.allclose(a[:4], torch.tensor([1.0, -1.0, -1.0, 1.0]), atol=1e-4)


def test_k3_averages_to_kl_from_pi_to_the_reference_under_pi():
    g = torch.Generator().manual_seed(0)
    logp = torch.log_softmax(2 * torch.randn(5, len(task.VOCAB), generator=g, dtype=torch.float64), -1)
    ref_logp = torch.log_softmax(2 * torch.randn(5, len(task.VOCAB), generator=g, dtype=torch.float64), -1)
    k3 = vapo.k3_kl(logp, ref_logp)                            # at every token of the vocabulary
    kl = (logp.exp() * (logp - ref_logp)).sum(-1)              # KL(pi || pi_ref)
    reverse = (ref_logp.exp() * (ref_logp - logp)).sum(-1)     # KL(pi_ref || pi), the other direction
    assert torch.allclose((logp.exp() * k3).sum(-1), kl) and torch.all(k3 >= 0)
    assert (kl - reverse).abs().min() > 0.1                    # so the direction is tested
    assert torch.all(vapo.k3_kl(logp, logp) == 0)


def test_positive_lm_loss_is_the_likelihood_of_the_correct_samples_only():
    g = torch.Generator().manual_seed(0)
    logp = -torch.rand(3, 5, generator=g, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], dtype=torch.float64)
    reward = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
    expected = -(logp[0, :3].sum() + logp[2, :2].sum()) / 5    # 5 tokens of the two correct rows
    assert torch.isclose(vapo.positive_lm_loss(logp, mask, reward), expected)
    assert vapo.positive_lm_loss(logp, mask, torch.zeros(3, dtype=torch.float64)) == 0   # not NaN


def test_response_logp_and_values_match_a_plain_unpadded_forward_pass():
    torch.manual_seed(0)
    policy = train.GPT(train.GPTConfig(vocab_size=len(task.VOCAB), block_size=vapo.BLOCK, n_layer=1, n_head=2,
                                       n_embd=16)).eval()
    critic = vapo.Critic(policy)
    torch.nn.init.normal_(critic.value_head.weight)            # a fresh head is zero everywhere
    problems = [([3, 5, 2], ["+", "*"]), ([1, 2, 3, 4, 5, 6], list("+-*+-")), ([7, 8, 9, 1], list("*-+"))]
    batch = vapo.rollout(policy, problems, 2, torch.Generator().manual_seed(0))   # left-padded prompts
    with torch.no_grad():
        logp, entropy = vapo.response_logp(policy, batch)
        values = vapo.response_values(critic, batch)
        for i, (digits, ops) in enumerate(batch["problems"]):
            prompt, n = task.encode(task.prompt_of(digits, ops)), int(batch["resp_len"][i])
            seq = torch.tensor([prompt + batch["tokens"][i, :n].tolist()])     # one row, no padding
            at = slice(len(prompt) - 1, len(prompt) - 1 + n)   # the positions that predict the n response tokens
            logp_all = torch.log_softmax(policy(seq)[0][0, at], -1)
            assert torch.allclose(logp[i, :n], logp_all.gather(-1, seq[0, len(prompt):, None]).squeeze(-1), atol=1e-5)
            assert torch.allclose(entropy[i, :n], -(logp_all.exp() * logp_all).sum(-1), atol=1e-5)
            assert torch.allclose(values[i, :n], critic(seq, None, None)[0, at], atol=1e-5)


def test_explained_variance():
    target = torch.tensor([[1.0, 0.0, 3.0], [2.0, 5.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    assert vapo.explained_variance(target, target, mask) == 1.0
    assert abs(vapo.explained_variance(torch.full_like(target, 2.2), target, mask)) < 1e-6  # the mean: 0


def test_reward_on_hand_made_responses():
    problem = ([3, 5, 2, 6], ["+", "*", "-"])                     # mod 7: 1, 2, 3
    assert vapo.reward_of("1;2;3;>3$", True, problem) == 1.0
    assert vapo.reward_of("6;6;6;>3$", True, problem) == 1.0     # only the final answer is checked
    assert vapo.reward_of("1;2;3;>2$", True, problem) == 0.0
    assert vapo.reward_of("1;2;3;>3", False, problem) == 0.0     # unfinished
    assert vapo.reward_of("1;2;3;>33$", True, problem) == 0.0


def test_noisy_teacher_is_consistent_after_its_errors():
    rng = np.random.default_rng(0)
    digits, ops = [3, 5, 2, 6], ["+", "*", "-"]
    assert vapo.noisy_teacher(digits, ops, rng, p_wrong=0.0) == "1;2;3;>3$"
    for _ in range(50):
        text = vapo.noisy_teacher(digits, ops, rng, p_wrong=1.0)
        chain, prev = task.read_chain(text), digits[0]
        for j, (op, d) in enumerate(zip(ops, digits[1:])):
            assert chain[j] != task.apply_op(prev, op, d)        # every step wrong, from the written value
            prev = chain[j]
        assert task.read_answer(text) == chain[-1]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["mc", "ppo", "grpo", "vapo", "oracle"])
def test_two_iteration_smoke_run_and_its_credit_analysis(method):
    torch.manual_seed(0)
    sft = train.GPT(train.GPTConfig(vocab_size=len(task.VOCAB), block_size=vapo.BLOCK, n_layer=1, n_head=2,
                                    n_embd=16)).eval()
    cfg = vapo.method_config(method, iters=2, rollouts=32, group_size=8, minibatch=16, value_pretrain_steps=1,
                             continuations=1)
    exp = vapo.Experiment(analysis_rows=4, mc_continuations=1, heldout=16)
    heldout = vapo.rollout(sft, vapo.sample_prompts(2, np.random.default_rng(0)), 8, torch.Generator().manual_seed(0))
    curve, state = vapo.pretrain_value(vapo.Critic(sft), sft, cfg, 2, heldout, eval_every=1)
    assert [s for s, _ in curve] == [0, 1, 2] and state is not None
    metrics, policy, critic = vapo.train_method(cfg, sft, state, log=lambda s: None)
    assert len(metrics["iters"]) == 2
    row = metrics["iters"][-1]
    assert 0 <= row["reward"] <= 1 and np.isfinite(row["kl_ref"]) and np.isfinite(row["entropy"])
    assert (critic is None) == (method not in ("ppo", "vapo"))
    if method == "vapo":
        assert row["lambda_policy_mean"] < 1
    credit = vapo.credit_assignment(cfg, policy, critic, exp)
    assert credit["rows"] == 4 and -1 <= credit["corr"] <= 1 or np.isnan(credit["corr"])


@pytest.mark.parametrize("arg", ["--iters=0", "--sft_one_op=1.5"])
def test_cli_bad_value_exit_2(tmp_path, arg):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "vapo.py"), arg], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and arg.split("=")[0] in r.stderr and list(tmp_path.iterdir()) == []


def hand_batch(problem, response):
    """A one-row rollout batch holding a given response (as `rollout` would return it)."""
    tokens = torch.tensor([task.encode(response)])
    n = len(response)
    reward = torch.tensor([vapo.reward_of(response, response.endswith("$"), problem)])
    return {"problems": [problem], "tokens": tokens, "resp_len": torch.tensor([n]), "mask": torch.ones(1, n),
            "reward": reward}


def test_first_wrong_token_and_wrong_so_far():
    problem = ([3, 5, 2, 6], ["+", "*", "-"])                    # mod 7: 1, 2, 3
    assert vapo.first_wrong_token(hand_batch(problem, "1;2;3;>3$")).tolist() == [-1]
    assert vapo.first_wrong_token(hand_batch(problem, "1;4;6;>6$")).tolist() == [2]   # the second step's digit
    assert vapo.first_wrong_token(hand_batch(problem, "1;2;>2$")).tolist() == [4]     # stops a step early
    # the value at position t is the state before token t: only positions after token 2 know the mistake
    assert vapo.wrong_so_far(hand_batch(problem, "1;4;6;>6$")).tolist() == [[0, 0, 0, 1, 1, 1, 1, 1, 1]]


class CorrectContinuer:
    """A scripted policy whose continuation of any context is the rest of the correct response."""

    def generate_batch(self, prompts, max_new_tokens, **sampling):
        rows = []
        for ids in prompts:
            text = task.decode(ids)
            prompt, written = text.split("=")
            problem = [int(c) for c in prompt[0::2]], list(prompt[1::2])      # `3+5*2-6` -> digits, ops
            right = vapo.correct_response(problem)[len(written):]
            rows.append((right + [task.PAD] * max_new_tokens)[:max_new_tokens])
        return torch.tensor(rows), None


def test_monte_carlo_advantage_sits_on_the_token_that_loses():
    problem = ([3, 5, 2, 6], ["+", "*", "-"])
    batch = hand_batch(problem, "1;2;3;>5$")                      # right chain, wrong answer at token 7
    V = vapo.mc_values(CorrectContinuer(), batch, [0], 2, torch.Generator().manual_seed(0))
    assert V[0].tolist() == [1.0] * 8 + [0.0, 0.0]               # every prefix before the answer can still win
    A = vapo.mc_advantage(V, batch["mask"])
    assert A[0].tolist() == [0.0] * 7 + [-1.0, 0.0]
    batch = hand_batch(problem, "1;2;3;>3$")
    assert vapo.mc_advantage(vapo.mc_values(CorrectContinuer(), batch, [0], 1, None), batch["mask"]).abs().sum() == 0


def test_oracle_table_explains_an_outcome_decided_by_the_first_wrong_token():
    problem = ([3, 5, 2, 6], ["+", "*", "-"])
    rows = [hand_batch(problem, r) for r in ("1;2;3;>3$", "1;4;6;>6$", "1;2;3;>3$", "5;4;6;>6$")]
    batch = {k: torch.cat([r[k] for r in rows]) if k != "problems" else [problem] * 4 for k in rows[0]}
    # returns 1 1 1 ... for correct rows, 0 for the others; the table knows the wrong token only after it
    wrong = vapo.wrong_so_far(batch)
    ret = batch["reward"][:, None].expand_as(wrong)
    pred = torch.where(wrong.bool(), 0.0, float(ret[wrong == 0].mean()))
    assert abs(vapo.table_ev(batch, batch) - vapo.explained_variance(pred, ret, batch["mask"])) < 1e-6
    assert vapo.table_ev(batch, batch) > 0.5


def test_steps_left_counts_the_steps_not_yet_written():
    three, one = ([3, 5, 2, 6], ["+", "*", "-"]), ([3, 5], ["+"])
    rows = [hand_batch(three, "1;2;3;>3$"), hand_batch(one, "1;>1$")]
    batch = {"problems": [three, one], "tokens": torch.full((2, 9), task.PAD)}
    batch["tokens"][0], batch["tokens"][1, :5] = rows[0]["tokens"][0], rows[1]["tokens"][0]
    # before `1` three steps remain; once `1` is written (t = 1, 2) two; once `2` (t = 3, 4) one; then none.
    # Each row counts its own operations, whatever the longest problem in the batch.
    assert vapo.steps_left(batch).tolist() == [[3, 2, 2, 1, 1, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0, 0, 0]]


def test_least_likely_so_far_is_the_running_minimum_of_the_tokens_before_t(monkeypatch):
    logp = torch.tensor([[-0.01, -0.3, -0.1, -5.0, -0.6, -1.5, -3.0],
                         [-2.5, -0.01, -0.01, -0.01, -0.7, -0.01, -0.01]])
    batch = {"mask": torch.tensor([[1.0] * 7, [1.0] * 5 + [0.0] * 2])}
    monkeypatch.setattr(vapo, "response_logp", lambda model, b: (logp.clone(), None))
    key = vapo.least_likely_so_far(None)(batch)
    # bins: (-inf, -4] 0, (-4, -2] 1, (-2, -1] 2, (-1, -0.5] 3, (-0.5, -0.2] 4, (-0.2, -0.05] 5, above 6
    assert key.tolist() == [[6, 6, 4, 4, 0, 0, 0], [6, 1, 1, 1, 1, 1, 1]]
    for t in range(7):      # the key up to t never sees token t or later
        changed = logp.clone()
        changed[:, t:] = -9.0
        monkeypatch.setattr(vapo, "response_logp", lambda model, b, changed=changed: (changed, None))
        assert torch.equal(vapo.least_likely_so_far(None)(batch)[:, :t + 1], key[:, :t + 1])


def test_table_keys_are_the_four_tables():
    problem = ([3, 5, 2, 6], ["+", "*", "-"])
    batch = hand_batch(problem, "1;4;6;>6$")
    keys = vapo.table_keys(None)
    assert set(keys) == {"", "_steps_left", "_n_ops", "_least_likely"}
    assert torch.equal(keys[""](batch), vapo.wrong_so_far(batch))
    assert torch.equal(keys["_steps_left"](batch), vapo.wrong_so_far(batch) * 100 + vapo.steps_left(batch))
    assert keys["_n_ops"](batch).tolist() == [[3] * 9]


def test_quick_config_is_a_strictly_smaller_default():
    full, quick = vapo.Experiment(), lab.parse_args(["--quick=true"], vapo.Experiment)
    assert quick.quick and quick.out_dir != full.out_dir
    smaller = [k for k in vapo.Experiment.QUICK if k not in ("out_dir", "references")]
    assert smaller and all(getattr(quick, k) < getattr(full, k) for k in smaller)
    assert quick.references <= full.references and quick.num_threads == full.num_threads == 1
    same = [f.name for f in dataclasses.fields(vapo.Experiment) if f.name not in vapo.Experiment.QUICK]
    assert all(getattr(quick, k) == getattr(full, k) for k in same if k != "quick")
    quick.validate()


def test_verdicts_are_inconclusive_without_the_control_or_three_seeds():
    """Hand-built per-seed values on each side of lab.py's rule (paired by seed), and both gates."""
    jitter = np.array([0.0, 0.01, -0.01])
    stats = {n: {"reward": list(r + jitter), "corr": list(c + 2 * jitter)} for n, r, c in
             (("ppo", 0.5, 0.1), ("grpo", 0.6, 0.1), ("vapo", 0.7, 0.3))}
    keys = {"claim", "paper_says", "verdict", "evidence", "control", "seeds", "command"}
    for passed, seeds, expected in ((True, 3, "supported"), (False, 3, "inconclusive"), (True, 1, "inconclusive")):
        out = vapo.verdicts(stats, {"passed": passed, "text": "t"}, vapo.Experiment(seeds=seeds))
        assert all(keys <= set(d) and d["verdict"] == expected and d["seeds"] == seeds for d in out)
    gate = {"passed": True, "text": "t"}
    stats["ppo"]["reward"] = [0.72, 0.68, 0.71]                   # VAPO minus PPO straddles 0
    assert vapo.verdicts(stats, gate, vapo.Experiment(seeds=3))[0]["verdict"] == "inconclusive"
    stats["ppo"]["reward"] = [0.8, 0.81, 0.79]                    # PPO above VAPO: not supported
    assert vapo.verdicts(stats, gate, vapo.Experiment(seeds=3))[0]["verdict"] == "not supported"
    assert "paired" in vapo.verdicts(stats, gate, vapo.Experiment(seeds=3))[0]["evidence"]


@pytest.mark.slow
def test_a_tiny_run_writes_the_table_the_control_and_the_verdicts(tmp_path):
    out = tmp_path / "vapo"
    args = ["--sft_warmup=0", "--sft_steps=2", "--iters=1", "--rollouts=16", "--oracle_rollouts=16", "--heldout=32",
            "--value_pretrain_steps=1", "--curve_steps=2", "--analysis_rows=2", "--mc_continuations=1",
            "--n_embd=16", "--n_layer=1", "--oracle=true", f"--out_dir={out}"]
    assert vapo.run(args) == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["summary"]) == {"mc", "ppo", "grpo", "vapo", "oracle"}
    assert [s for s, _ in results["value_pretraining"]["0"]["curve"]] == [0, 1, 2]
    assert all(d["verdict"].startswith("inconclusive") and d["control"] == results["control"]["text"]
               for d in results["verdict"])                   # 1 seed (and an untrained critic): no verdict
    assert "positive control" in (out / "results.md").read_text() and (out / "vapo.png").exists()


def test_the_critic_control_needs_held_out_ev_above_005_by_its_interval():
    measures = dict(table_ev=0.28, table_ev_steps_left=0.4, table_ev_n_ops=0.066, table_ev_least_likely=0.29)
    control = lambda evs, seeds=3: vapo.critic_control(evs, measures, {}, vapo.Experiment(seeds=seeds))  # noqa: E731
    assert control([0.20, 0.22, 0.21])["passed"]
    assert not control([0.03, 0.035, 0.032])["passed"] and "FAILED" in control([0.03, 0.035, 0.032])["text"]
    assert not control([0.05, 0.08, 0.03])["passed"]                      # straddles 0.05
    assert not control([0.20, 0.22])["passed"]                            # two seeds
    assert "0.066" in control([0.20, 0.22, 0.21])["text"]                 # the tables are printed beside it

