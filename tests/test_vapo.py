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
        M = torch.where(t[None] >= t[:, None], lam[b] ** (t[None] - t[:, None]).double(),
                        torch.zeros(1, dtype=torch.float64))
        assert torch.allclose(adv[b, :n], M @ delta[b, :n])


def test_right_padding_changes_nothing():
    rewards, values, mask, _ = batch_of_sequences(3)
    lam = torch.full((4,), 0.7, dtype=torch.float64)
    adv, ret = vapo.gae(rewards, values, mask, lam)
    pad = lambda x, fill: torch.cat([x, torch.full((4, 5), fill, dtype=x.dtype)], 1)
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


def tiny_gpt(seed=0):
    torch.manual_seed(seed)
    return train.GPT(train.GPTConfig(vocab_size=len(task.VOCAB), block_size=vapo.BLOCK, n_layer=1, n_head=2,
                                     n_embd=16)).eval()


def easy_reward(text, ended, problem):
    """A reward a random policy earns about a fifth of the time (its first token a digit below 4)."""
    return float(text[:1] in "0123")


def tiny_batch(sft, prompts=2, group=4, seed=0):
    return vapo.with_sft_logp(vapo.rollout(sft, vapo.sample_prompts(prompts, np.random.default_rng(seed)), group,
                                           torch.Generator().manual_seed(seed)), sft)


def moved(a, b):
    return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize("ratio, adv", [(1.25, 1.0), (0.75, -1.0)])
def test_policy_step_clips_at_1_28_above_and_0_8_below_with_clip_higher_and_at_1_2_without(ratio, adv):
    sft = tiny_gpt()
    batch = tiny_batch(sft)
    with torch.no_grad():
        logp = vapo.response_logp(sft, batch)[0]
    step, clipfrac = {}, {}
    for clip_higher in (True, False):
        policy = copy.deepcopy(sft)
        opt = torch.optim.AdamW(policy.parameters(), lr=1e-3, weight_decay=0.0)
        cfg = vapo.method_config("vapo", clip_higher=clip_higher, lm_loss=False)
        rows = torch.arange(len(logp))                  # every ratio `ratio`, every advantage `adv`
        stats = vapo.policy_step(cfg, policy, opt, batch, rows, adv * batch["mask"], logp - math.log(ratio), logp)
        step[clip_higher], clipfrac[clip_higher] = moved(policy, sft), stats["clipfrac"]
    if ratio > 1:
        assert step[True] > 0 and step[False] == 0       # 1.25 is inside 1 + 0.28, outside 1 + 0.2
        assert clipfrac == {True: 0.0, False: 1.0}
    else:
        assert step[True] == 0 and step[False] == 0      # 0.75 is below 1 - 0.2 either way: eps_low stays 0.2
        assert clipfrac == {True: 1.0, False: 1.0}


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


def test_quick_config_is_a_strictly_smaller_default():
    full, quick = vapo.Experiment(), lab.parse_args(["--quick=true"], vapo.Experiment)
    assert quick.quick and quick.out_dir != full.out_dir
    smaller = [k for k in vapo.Experiment.QUICK if k not in ("out_dir", "references")]
    assert smaller and all(getattr(quick, k) < getattr(full, k) for k in smaller)
    assert quick.references <= full.references and quick.num_threads == full.num_threads == 1
    same = [f.name for f in dataclasses.fields(vapo.Experiment) if f.name not in vapo.Experiment.QUICK]
    assert all(getattr(quick, k) == getattr(full, k) for k in same if k != "quick")
    quick.validate()


def test_tables_explain_an_outcome_decided_by_the_first_wrong_token_and_key_on_the_right_thing():
    problem, short = ([3, 5, 2, 6], ["+", "*", "-"]), ([3, 5], ["+"])
    rows = [hand_batch(problem, r) for r in ("1;2;3;>3$", "1;4;6;>6$", "1;2;3;>3$", "5;4;6;>6$")]
    batch = {k: torch.cat([r[k] for r in rows]) if k != "problems" else [problem] * 4 for k in rows[0]}
    # returns 1 1 1 ... for correct rows, 0 for the others; the table knows the wrong token only after it
    wrong = vapo.wrong_so_far(batch)
    ret = batch["reward"][:, None].expand_as(wrong)
    pred = torch.where(wrong.bool(), 0.0, float(ret[wrong == 0].mean()))
    ev = vapo.table_ev(batch, batch, vapo.wrong_so_far)
    assert abs(ev - vapo.explained_variance(pred, ret, batch["mask"])) < 1e-6 and ev > 0.5
    assert abs(vapo.table_ev(batch, batch, vapo.n_ops)) < 1e-6          # one length: explains nothing
    two = {"problems": [problem, short], "tokens": torch.zeros(2, 3, dtype=torch.long)}
    assert vapo.n_ops(two).tolist() == [[3, 3, 3], [1, 1, 1]]


def test_least_likely_so_far_is_the_running_minimum_of_the_tokens_before_t():
    logp = torch.tensor([[-0.01, -0.3, -0.1, -5.0, -0.6, -1.5, -3.0],
                         [-2.5, -0.01, -0.01, -0.01, -0.7, -0.01, -0.01]])
    batch = {"mask": torch.tensor([[1.0] * 7, [1.0] * 5 + [0.0] * 2]), "sft_logp": logp}
    # bins: (-inf, -4] 0, (-4, -2] 1, (-2, -1] 2, (-1, -0.5] 3, (-0.5, -0.1] 4, above 5
    assert vapo.least_likely_so_far(batch).tolist() == [[5, 5, 4, 4, 0, 0, 0], [5, 1, 1, 1, 1, 1, 1]]
    for t in range(7):      # the key up to t never sees token t or later
        changed = logp.clone()
        changed[:, t:] = -9.0
        assert torch.equal(vapo.least_likely_so_far(batch | {"sft_logp": changed})[:, :t + 1],
                           vapo.least_likely_so_far(batch)[:, :t + 1])


def test_teachers():
    rng = np.random.default_rng(0)
    digits, ops = [3, 6, 2, 6], ["*", "+", "*"]                  # mod 7: 4, 6, 1
    assert vapo.teacher(digits, ops, rng) == "4;6;1;>1$"        # no noise, no flaw: the right chain
    assert vapo.teacher(digits, ops, rng, flaw_rate=1.0) == "1;3;1;>1$"   # x * 6 written as x * 5, from what is written
    assert vapo.teacher([3, 5, 2], ["*", "+"], rng, flaw_rate=1.0) == "1;3;>3$"   # no product by 6: right
    flawed = [vapo.teacher([3, 6], ["*"], rng, flaw_rate=0.6) for _ in range(2000)]
    assert abs(np.mean([t == "1;>1$" for t in flawed]) - 0.6) < 0.04 and set(flawed) == {"1;>1$", "4;>4$"}
    for _ in range(50):                       # the noisy teacher at p_wrong 1: every step wrong, from what is written
        text = vapo.teacher(digits, ops, rng, p_wrong=1.0)
        chain, prev = task.read_chain(text), digits[0]
        for j, (op, d) in enumerate(zip(ops, digits[1:])):
            assert chain[j] != task.apply_op(prev, op, d)
            prev = chain[j]
        assert task.read_answer(text) == chain[-1]
    exp = vapo.Experiment()
    assert exp.teacher == "systematic" and vapo.teacher_settings(exp) == {"flaw_rate": 0.6}
    assert vapo.teacher_settings(vapo.Experiment(teacher="noisy")) == {"p_wrong": 0.1}


def test_sft_cache_key_follows_the_teacher_not_other_code(tmp_path, monkeypatch):
    paths = []
    monkeypatch.setattr(train, "save_checkpoint", lambda path, state: paths.append(path))
    monkeypatch.setattr(lab, "fit", lambda *a, **k: None)
    for teacher, rate in (("systematic", 0.6), ("systematic", 0.7), ("noisy", 0.6), ("systematic", 0.6)):
        vapo.sft_model(vapo.Experiment(teacher=teacher, flaw_rate=rate, n_layer=1, n_embd=16, out_dir=str(tmp_path)))
    assert len(set(paths[:3])) == 3 and paths[3] == paths[0]


def test_approx_kl_hand_case():
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    assert vapo.approx_kl(torch.zeros(1, 3), mask) == 0                     # ratio 1: no KL
    log_ratio = torch.tensor([[math.log(2.0), 0.0, 5.0]])                  # the third is padding
    assert abs(vapo.approx_kl(log_ratio, mask) - (1 - math.log(2.0)) / 2) < 1e-7   # ((2 - 1) - log 2 + 0) / 2


def test_second_update_epoch_sees_ratios_away_from_1_and_clips(monkeypatch):
    monkeypatch.setattr(vapo, "reward_of", easy_reward)
    sft = tiny_gpt()
    base = dict(iters=1, rollouts=32, minibatch=32, actor_lr=3e-2)      # one minibatch: epoch 1 starts at ratio 1
    one, *_ = vapo.train_method(vapo.method_config("mc", update_epochs=1, **base), sft, log=lambda s: None)
    two, *_ = vapo.train_method(vapo.method_config("mc", update_epochs=2, **base), sft, log=lambda s: None)
    assert 0 < one["iters"][0]["reward"] < 1                              # so the advantages are not all zero
    assert one["iters"][0]["clipfrac"] == 0 and one["iters"][0]["approx_kl"] == 0
    first, second = two["iters"][0]["clipfrac_by_epoch"]
    assert first == 0 and second > 0 and two["iters"][0]["approx_kl"] > 0


@pytest.mark.parametrize("lm_loss, adv, rises", [(False, 1.0, True), (False, -1.0, False), (True, 0.0, True)])
def test_one_policy_step_moves_the_likelihood_the_right_way(lm_loss, adv, rises):
    """The surrogate's sign (advantage +1 raises log pi, -1 lowers it) and the positive-example LM loss's (with zero
    advantages and every sample correct it raises log pi)."""
    sft = tiny_gpt()
    batch = tiny_batch(sft)
    batch["reward"] = torch.ones(len(batch["reward"]))
    with torch.no_grad():
        logp = vapo.response_logp(sft, batch)[0]
    policy = copy.deepcopy(sft)
    opt = torch.optim.SGD(policy.parameters(), lr=0.1)
    cfg = vapo.method_config("vapo", lm_loss=lm_loss)
    vapo.policy_step(cfg, policy, opt, batch, torch.arange(len(logp)), adv * batch["mask"], logp, logp)
    with torch.no_grad():
        after = (vapo.response_logp(policy, batch)[0] * batch["mask"]).sum()
    assert (after > (logp * batch["mask"]).sum()) == rises


def test_token_level_flag_reaches_the_policy_loss():
    sft = tiny_gpt()
    batch = tiny_batch(sft)
    assert batch["resp_len"].unique().numel() > 1                           # lengths differ, so the weightings do
    with torch.no_grad():
        logp = vapo.response_logp(sft, batch)[0]
    g = torch.Generator().manual_seed(1)
    adv = torch.randn(logp.shape, generator=g) * batch["mask"]
    after = {}
    for token_level in (True, False):
        policy = copy.deepcopy(sft)
        cfg = vapo.method_config("vapo", token_level=token_level, lm_loss=False)
        vapo.policy_step(cfg, policy, torch.optim.SGD(policy.parameters(), lr=1.0), batch, torch.arange(len(logp)),
                         adv, logp, logp)
        after[token_level] = policy
    assert moved(after[True], after[False]) > 1e-6


def record_critic_targets(monkeypatch):
    """Every (batch, returns) that critic_step is given, in order; it still takes its step."""
    seen, critic_step = [], vapo.critic_step
    monkeypatch.setattr(vapo, "critic_step", lambda c, o, b, rows, ret: seen.append((b, ret)) or critic_step(c, o, b,
                                                                                                            rows, ret))
    return seen


def test_value_pretraining_fits_the_final_reward_on_every_token(monkeypatch):
    monkeypatch.setattr(vapo, "reward_of", easy_reward)
    seen = record_critic_targets(monkeypatch)
    sft = tiny_gpt()
    cfg = vapo.method_config("vapo", rollouts=32, group_size=8, minibatch=16, value_pretrain_steps=1)
    vapo.pretrain_value(vapo.Critic(sft), sft, cfg, 1, tiny_batch(sft), eval_every=1)
    batch, returns = seen[0]
    assert 0 < batch["reward"].mean() < 1 and len(seen) == 2
    assert torch.equal(returns, batch["reward"][:, None] * batch["mask"])


def test_rl_critic_is_fitted_to_returns_not_advantages_and_its_trunk_learns(monkeypatch):
    monkeypatch.setattr(vapo, "reward_of", easy_reward)
    seen = record_critic_targets(monkeypatch)
    sft = tiny_gpt()
    start = vapo.Critic(sft)
    torch.nn.init.normal_(start.value_head.weight)                          # values far from 0, so A != returns
    cfg = vapo.method_config("vapo", iters=1, rollouts=32, group_size=8, minibatch=16)
    _, _, critic = vapo.train_method(cfg, sft, copy.deepcopy(start.state_dict()), log=lambda s: None)
    batch, returns = seen[0]
    assert 0 < batch["reward"].mean() < 1
    assert torch.allclose(returns, batch["reward"][:, None] * batch["mask"], atol=1e-5)   # lambda_critic 1: R
    assert moved(critic.gpt, start.gpt) > 0 and moved(critic.value_head, start.value_head) > 0


def test_a_critic_learns_a_value_that_is_known():
    """On a toy whose return is decided by the first response token, a critic trained on the returns explains much
    of their variance after that token (where it can know): 60 Adam steps on one batch."""
    sft = tiny_gpt()
    batch = tiny_batch(sft, prompts=8, group=8)
    batch["reward"] = torch.tensor([easy_reward(task.decode(r[:1].tolist()), True, None) for r in batch["tokens"]])
    returns = batch["reward"][:, None] * batch["mask"]
    critic = vapo.Critic(sft)
    opt = torch.optim.AdamW(critic.parameters(), lr=1e-2, weight_decay=0.0)
    for _ in range(60):
        vapo.critic_step(critic, opt, batch, torch.arange(len(returns)), returns)
    with torch.no_grad():
        values = vapo.response_values(critic, batch)
    after = batch["mask"].clone()
    after[:, 0] = 0                                                        # before the first token nobody can know
    assert batch["reward"].std() > 0 and vapo.explained_variance(values, returns, after) > 0.4   # 0.59 as written


def test_surprise_critic_starts_equal_to_the_value_critic_and_is_causal():
    sft = tiny_gpt()
    batch = tiny_batch(sft, prompts=3, group=2)
    plain, surprise = vapo.Critic(sft), vapo.Critic(sft, surprise=True)
    torch.nn.init.normal_(plain.value_head.weight)
    surprise.value_head.load_state_dict(plain.value_head.state_dict())
    with torch.no_grad():
        assert torch.equal(vapo.response_values(plain, batch), vapo.response_values(surprise, batch))
        torch.nn.init.normal_(surprise.surprise.weight)
        values = vapo.response_values(surprise, batch)
        assert not torch.allclose(values, vapo.response_values(plain, batch))   # the embedding is used
        for t in range(4):          # token t's surprise reaches the value before token t + 1 and later only
            changed = batch | {"sft_logp": batch["sft_logp"].clone()}
            changed["sft_logp"][:, t] = torch.where(batch["sft_logp"][:, t] > -1, -9.0, -0.01)
            new = vapo.response_values(surprise, changed)
            live = batch["mask"][:, t + 1].bool()
            assert torch.equal(new[:, :t + 1], values[:, :t + 1])
            assert (new[live, t + 1] != values[live, t + 1]).all()


@pytest.mark.slow
@pytest.mark.parametrize("method", ["mc", "ppo", "grpo", "vapo"])
def test_two_iteration_smoke_run(method):
    sft = tiny_gpt()
    cfg = vapo.method_config(method, iters=2, rollouts=32, group_size=8, minibatch=16, value_pretrain_steps=1,
                             critic="surprise" if method == "vapo" else "value")
    heldout = tiny_batch(sft, prompts=2, group=8)
    curve, state = vapo.pretrain_value(vapo.Critic(sft, cfg.critic == "surprise"), sft, cfg, 2, heldout, eval_every=1)
    assert [s for s, _ in curve] == [0, 1, 2] and state is not None
    metrics, policy, critic = vapo.train_method(cfg, sft, state, log=lambda s: None)
    assert len(metrics["iters"]) == 2
    row = metrics["iters"][-1]
    assert 0 <= row["reward"] <= 1 and np.isfinite(row["kl_ref"]) and np.isfinite(row["entropy"])
    assert len(row["clipfrac_by_epoch"]) == cfg.update_epochs and np.isfinite(row["approx_kl"])
    assert (critic is None) == (method not in ("ppo", "vapo"))
    if method == "vapo":
        assert row["lambda_policy_mean"] < 1 and critic.surprise is not None


def test_verdicts_follow_their_own_gate_and_three_seeds():
    """Hand-built per-seed values on each side of lab.py's rule (paired by seed), and both gates."""
    stats = {"ppo": {"reward": [0.5, 0.51, 0.49], "greedy": [0.9, 0.92, 0.88]},
             "grpo": {"reward": [0.6, 0.61, 0.59], "greedy": [0.66, 0.74, 0.62]},
             "vapo": {"reward": [0.7, 0.71, 0.69], "greedy": [0.67, 0.68, 0.66]},
             "sft_greedy": {"greedy": [0.6, 0.6, 0.6]}, "sft_t0.3": {"greedy": [0.65, 0.66, 0.64]}}
    keys = {"claim", "paper_says", "verdict", "evidence", "control", "seeds", "command"}
    yes, no = {"passed": True, "text": "t"}, {"passed": False, "text": "f"}
    out = vapo.verdicts(stats, yes, yes, vapo.Experiment(seeds=3))
    assert all(keys <= set(d) for d in out) and all("paired" in d["evidence"] for d in out)
    # sharpening = the better of greedy and T = 0.3 per seed (here T = 0.3); ppo clears it by 0.25, grpo's
    # interval straddles the 0.05 margin, vapo is 0.02 above it (0.07 above the worse baseline, greedy)
    assert [d["verdict"] for d in out] == ["supported"] * 3 + ["inconclusive", "not supported"]
    assert [d["claim"].split()[0] for d in out[2:]] == ["ppo", "grpo", "vapo"]
    for critic, flaw, want in ((no, yes, ["inconclusive"] * 2 + ["supported"]),
                               (yes, no, ["supported"] * 2 + ["inconclusive"])):
        assert [d["verdict"] for d in vapo.verdicts(stats, critic, flaw, vapo.Experiment(seeds=3))][:3] == want
    assert all(d["verdict"] == "inconclusive" for d in vapo.verdicts(stats, yes, yes, vapo.Experiment(seeds=1)))
    stats["ppo"]["reward"] = [0.72, 0.68, 0.71]                   # VAPO minus PPO straddles 0
    assert vapo.verdicts(stats, yes, yes, vapo.Experiment(seeds=3))[0]["verdict"] == "inconclusive"
    stats["ppo"]["reward"] = [0.8, 0.81, 0.79]                    # PPO above VAPO: not supported
    assert vapo.verdicts(stats, yes, yes, vapo.Experiment(seeds=3))[0]["verdict"] == "not supported"


def test_the_controls_compare_the_critic_with_the_length_table_and_sampling_with_greedy():
    def pretrain(evs, n_ops):
        return {s: {"ev": e, "tables": {"wrong_so_far": 0.3, "least_likely": 0.29, "n_ops": o}}
                for s, (e, o) in enumerate(zip(evs, n_ops))}
    baselines = {"sft_greedy": [0.6, 0.6, 0.6], "sft_t1": [0.7, 0.72, 0.71], "sft_t0.3": [0.62, 0.63, 0.61]}
    exp = vapo.Experiment(seeds=3)
    critic, flaw = vapo.controls(pretrain([0.20, 0.22, 0.21], [0.06, 0.07, 0.065]), baselines, exp)
    assert critic["passed"] and flaw["passed"] and "0.065" in critic["text"] and "paired" in critic["text"]
    critic, _ = vapo.controls(pretrain([0.10, 0.12, 0.11], [0.06, 0.07, 0.065]), baselines, exp)
    assert not critic["passed"] and "FAILED" in critic["text"]          # above the table, not by 0.05
    critic, _ = vapo.controls(pretrain([0.20, 0.22, 0.21], [0.16, 0.17, 0.165]), baselines, exp)
    assert not critic["passed"]                                         # above 0.05 (the old control), not the table
    _, flaw = vapo.controls(pretrain([0.2] * 3, [0.06] * 3), baselines | {"sft_t1": [0.61, 0.6, 0.615]}, exp)
    assert not flaw["passed"]
    critic, flaw = vapo.controls(pretrain([0.20, 0.22], [0.06, 0.07]), {k: v[:2] for k, v in baselines.items()},
                                 vapo.Experiment(seeds=2))
    assert not critic["passed"] and not flaw["passed"]                  # two seeds


@pytest.mark.slow
def test_a_tiny_run_writes_the_table_the_controls_and_the_verdicts(tmp_path):
    out = tmp_path / "vapo"
    args = ["--sft_warmup=0", "--sft_steps=2", "--iters=1", "--rollouts=16", "--heldout=32", "--eval_prompts=16",
            "--value_pretrain_steps=1", "--curve_steps=2", "--n_embd=16", "--n_layer=1", f"--out_dir={out}"]
    assert vapo.run(args) == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["summary"]) == {"mc", "ppo", "grpo", "vapo", "sft_greedy", "sft_t0.3", "sft_t1"}
    assert [s for s, _ in results["value_pretraining"]["0"]["curve"]] == [0, 1, 2]
    assert all(d["verdict"].startswith("inconclusive") for d in results["verdict"])   # 1 seed: no verdict
    assert len(results["verdict"]) == 2 + 4
    text = (out / "results.md").read_text()
    assert "positive control (critic)" in text and "positive control (task)" in text and (out / "vapo.png").exists()
    assert all(k in results["runs"]["ppo"][0]["iters"][0] for k in ("clipfrac", "approx_kl", "explained_variance"))


def test_held_out_success_is_the_final_policys_and_the_baselines_the_sfts(monkeypatch):
    sft, final, calls = tiny_gpt(0), tiny_gpt(1), []
    monkeypatch.setattr(vapo, "sft_model", lambda exp: sft)
    monkeypatch.setattr(vapo, "pretrain_value", lambda *a, **k: ([(0, 0.0), (1, 0.0)], None))
    monkeypatch.setattr(vapo, "train_method", lambda cfg, s, state, log: ({"iters": []}, final, None))
    monkeypatch.setattr(vapo, "success", lambda policy, problems, temperature, seed: calls.append(
        (policy, temperature, len(problems))) or 0.5)
    exp = vapo.Experiment(seeds=2, heldout=16, eval_prompts=8, value_pretrain_steps=1, curve_steps=1, n_embd=16)
    _, _, prompts, baselines, _, runs = vapo.run_experiment(exp, log=lambda s: None)
    assert set(baselines) == set(vapo.SHARPENING) and all(len(v) == 2 for v in baselines.values())
    assert [(p is sft, t) for p, t, _ in calls[:6]] == [(True, t) for t in (0.0, 0.0, 0.3, 0.3, 1.0, 1.0)]
    assert [(p is final, t) for p, t, _ in calls[6:]] == [(True, 0.0)] * 8     # 4 methods x 2 seeds, greedy
    assert all(n == len(prompts) == 8 for _, _, n in calls) and set(runs) == {"mc", "ppo", "grpo", "vapo"}
