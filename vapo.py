"""
VAPO against PPO and GRPO on a task where a wrong step can never be undone, with a Monte Carlo oracle for
credit assignment, on the shared small GPT.

The paper's. VAPO (ByteDance Seed, arXiv:2504.05118) is value-based PPO for long chain-of-thought reasoning: on
Qwen2.5-32B with no SFT it reached 60.4 on AIME24 within 5,000 steps, against 5 for vanilla PPO and more than 10
points above DeepSeek-R1-Zero-Qwen-32B and DAPO (value-free, GRPO-style), by seven changes (its Table 1 removes
each: without value pretraining 11, without decoupled GAE 33, without length-adaptive GAE 45, without clip-higher
46, without token-level loss 53, without the positive-example LM loss 54, without group sampling 55). Two position
papers by the same two authors (arXiv:2505.17997, arXiv:2506.03038; no experiments) doubt its credit assignment,
the capacity of its value function and its use of a global value for local improvement under sparse reward.

Ours. The task (from cot_probe.py): left-to-right chain arithmetic mod 7, `3+5*2-6=` -> `1;2;3;>3$`, operands
1..6, 2 to 16 operations (responses of 7 to 35 tokens). Mod a prime every step is a bijection, so once a token
differs from the correct response the chain cannot get back: "a wrong token so far" decides the outcome and the
first wrong token is the critical one. Reward 1 on the last token for a correct final answer, else 0. Warm start:
supervised finetuning on a teacher whose steps are wrong with probability 0.1 (later steps computed from the
written value), first on the same chains mod 10, then mod 7 (see sft_model: mod 7 alone stayed at chance),
cached. What we measure, besides the reward of each method:
- the critic's held-out explained variance (EV) after value pretraining for a fixed number of steps, chosen from
  a measured curve, next to the EV of an oracle lookup table that knows "a wrong token so far" (the positive
  control: the critic must beat a constant, EV > 0.05, on every seed, or every verdict is inconclusive);
- the true advantage, estimated: Monte Carlo continuations of the final policy from every prefix of a few of its
  rollouts give V(prefix), so A(token) = V(after) - V(before). Each method's advantages are correlated with it,
  and we report their share on the first wrong token of a failed rollout (post hoc, after training);
- two references: Monte Carlo returns (the reward less the batch mean on every token: no per-token credit)
  below, and PPO on the Monte Carlo oracle's advantages (fewer rollouts per iteration, few continuations) above.
The methods (one GAE, a reverse loop with a mask-aware carry and lambda per sequence):
- PPO, the paper's "vanilla": one sample per prompt, lambda 0.95 for actor and critic, clip 0.2, per-sequence
  loss, critic from the SFT trunk with a fresh value head, no value pretraining.
- GRPO: groups of G samples per prompt, advantage (r - mean) / (std + eps) on every token, per-sequence loss,
  k3 KL to the SFT policy in the loss (coefficient kl_coef).
- VAPO: value pretraining on Monte Carlo returns of the frozen SFT policy; decoupled GAE (lambda_critic = 1);
  length-adaptive lambda_policy = 1 - 1/(alpha l) clamped to [0, 1]; token-level loss; clip-higher (0.2, 0.28);
  positive-example LM loss (weight 0.1) on correct samples; group sampling. Critic lr twice the actor's.
Our interpretation: the paper's alpha = 0.05 is for responses of hundreds to thousands of tokens; at our lengths
it gives lambda <= 0, so we rescale it by 500 / 20 to alpha = 1.25 (lambda 0.96 at l = 20, as 0.05 gives at
l = 500). The paper does not give value pretraining's length or learning rate: ours is a fixed 60 steps of 256
rollouts at Adam lr 1e-3 with clipping at 1.0, read off the held-out EV curve (the control, not a result, so it
may be tuned), and the RL phase starts a fresh Adam for the critic. The models are tiny (a 2-layer, 64-wide GPT,
18 symbols) and runs are 30 iterations: what we report is what happened at this scale, not the paper's numbers.
Measured with --seeds=3 from an SFT whose initialisation was not yet seeded (README; the seeded SFT learns much
less): the critic reaches held-out EV 0.072 against the oracle table's 0.206 (control passed); no method differs
from another beyond the spread; the Monte Carlo oracle reference, at a quarter of the rollouts, ends below the
others, so this run cannot say what better credit assignment would buy in reward.

    python vapo.py                      # 1 seed, 1 thread: 6.5 min CPU, plus 7 min for the SFT the first time
    python vapo.py --quick=true         # the same functions, smaller (84 s CPU); too short to learn the task
    python vapo.py --seeds=3            # README's table and verdicts (seeds 0-2, 1 thread, 17.5 min CPU)
    python vapo.py --ablations=true --seeds=2 --references=false --out_dir=out/vapo_ablations   # README's Table 1
"""
import copy
import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import cot_probe as task
import train

# -----------------------------------------------------------------------------
# Advantage estimation


def gae(rewards, values, mask, lam, gamma=1.0):
    """Generalised advantage estimation over right-padded sequences (B, T), lam a (B,) tensor:
    delta_t = r_t + gamma V_{t+1} - V_t,  A_t = delta_t + gamma lam A_{t+1}, with V and A zero past the
    end of each sequence (mask 0). Returns (advantages, returns = advantages + values), zero on padding."""
    B, T = rewards.shape
    next_value = torch.zeros(B, dtype=values.dtype)
    carry = torch.zeros(B, dtype=values.dtype)
    adv = torch.zeros_like(values)
    for t in reversed(range(T)):
        m = mask[:, t]
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        carry = (delta + gamma * lam * carry) * m
        adv[:, t] = carry
        next_value = values[:, t] * m          # the next step's V, zero beyond the end
    return adv, (adv + values) * mask


def adaptive_lambda(lengths, alpha):
    """VAPO's length-adaptive lambda_policy = 1 - 1 / (alpha l), clamped to [0, 1]."""
    return (1 - 1 / (alpha * lengths.double().clamp(min=1))).clamp(0.0, 1.0)


def advantages_and_returns(rewards, values, mask, lengths, cfg):
    """PPO/VAPO targets from one critic: the actor's advantages with lambda_policy (length-adaptive, else
    0.95) and the critic's returns with lambda_critic (decoupled GAE: 1, the unbiased Monte-Carlo return;
    else 0.95, the same as the actor). Returns (advantages, returns, lambda_policy)."""
    B = len(lengths)
    lam_policy = adaptive_lambda(lengths, cfg.alpha) if cfg.adaptive_lambda else torch.full((B,), 0.95)
    lam_critic = torch.ones(B) if cfg.decoupled_gae else torch.full((B,), 0.95)
    adv, _ = gae(rewards, values, mask, lam_policy.to(values.dtype))
    _, returns = gae(rewards, values, mask, lam_critic.to(values.dtype))
    return adv, returns, lam_policy


def group_advantages(rewards, group_size, eps=1e-6):
    """GRPO: (r - group mean) / (group std + eps), rows grouped consecutively."""
    r = rewards.view(-1, group_size)
    return ((r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True, unbiased=False) + eps)).view(-1)


def explained_variance(pred, target, mask):
    t, p = target[mask.bool()], pred[mask.bool()]
    var = t.var(unbiased=False)
    return float(1 - (t - p).var(unbiased=False) / var) if var > 0 else float("nan")


def clipped_surrogate(ratio, adv, eps_low, eps_high):
    """Per-token PPO loss -min(ratio A, clip(ratio, 1 - eps_low, 1 + eps_high) A)."""
    return -torch.min(ratio * adv, ratio.clamp(1 - eps_low, 1 + eps_high) * adv)


def k3_kl(logp, ref_logp):
    """Schulman's k3 estimate of KL(pi || pi_ref) at tokens sampled from pi, per token:
    r - log r - 1 with r = pi_ref / pi. Never negative; its mean under pi is exactly KL(pi || pi_ref)."""
    log_ratio_ref = ref_logp - logp
    return torch.exp(log_ratio_ref) - log_ratio_ref - 1


def positive_lm_loss(logp, mask, reward):
    """VAPO's positive-example LM loss: the mean negative log-likelihood over the tokens of the correct
    samples (reward 1) only; zero, not NaN, when nothing was correct."""
    positive = mask * reward[:, None]
    if positive.sum() == 0:
        return logp.new_zeros(())
    return -(logp * positive).sum() / positive.sum()


def aggregate(per_token, mask, token_level):
    """Token-level: sum over all tokens / total tokens of the batch. Per-sequence: each sequence's token
    mean, then the mean over sequences (a short answer's tokens weigh more)."""
    if token_level:
        return (per_token * mask).sum() / mask.sum().clamp(min=1)
    return ((per_token * mask).sum(1) / mask.sum(1).clamp(min=1)).mean()


# -----------------------------------------------------------------------------
# Policy, critic, rollouts


class Critic(nn.Module):
    """A GPT trunk (initialised from the SFT policy) with a scalar value head on its hidden states."""

    def __init__(self, policy):
        super().__init__()
        self.gpt = copy.deepcopy(policy)
        self.value_head = nn.Linear(policy.config.n_embd, 1)
        nn.init.zeros_(self.value_head.weight)
        nn.init.zeros_(self.value_head.bias)

    def forward(self, idx, pos, key_mask):
        return self.value_head(self.gpt.hidden(idx, pos=pos, key_mask=key_mask)).squeeze(-1)


def noisy_teacher(digits, ops, rng, p_wrong=0.1, modulus=task.MODULUS):
    """The SFT data: each step wrong with probability p_wrong, later steps continue from what was written."""
    acc, values = digits[0], []
    for op, d in zip(ops, digits[1:]):
        acc = (acc + d if op == "+" else acc - d if op == "-" else acc * d) % modulus
        if rng.random() < p_wrong:
            acc = (acc + int(rng.integers(1, modulus))) % modulus
        values.append(acc)
    return task.chain_text(values) + f">{values[-1]}$"


MIN_OPS, MAX_OPS, BLOCK = 2, 16, 80
MAX_NEW = 2 * MAX_OPS + 3          # the longest correct response, `1;2;...;>3$`
BUCKETS = {"2-5": (2, 5), "6-10": (6, 10), "11-16": (11, 16)}


def sft_model(exp):
    """The warm start, cached in out_dir: first the same chains mod 10 with operands 0..9, then the task mod 7.
    Ours: mod 7 every single-step marginal is uniform (a bijection), so nothing rewards attending to the right
    operand until the whole step is right, and this model stayed at chance for 3,000 steps (and 2,400 of a 6,000-step
    run); mod 10, where multiplying by 0, 2 or 5 and adding 0 give partial credit, teaches the same operand lookup
    (within 3,000 steps in the first edition). In both phases up to 8 operations for the first 40% of the steps,
    then up to 16."""
    name = f"sft_seeded_mod10_{exp.sft_warmup}_mod{task.MODULUS}_{exp.sft_steps}_{exp.n_layer}x{exp.n_embd}.pt"
    path = Path(exp.out_dir) / name
    torch.manual_seed(0)          # the initialisation too (torch's own start seed differs from process to process)
    model = train.GPT(train.GPTConfig(vocab_size=len(task.VOCAB), block_size=BLOCK, n_layer=exp.n_layer, n_head=4,
                                      n_embd=exp.n_embd))
    if path.exists():
        model.load_state_dict(train.load_checkpoint(path)["model"])
        return model.eval()
    rng = np.random.default_rng(0)
    for modulus, steps in ((10, exp.sft_warmup), (task.MODULUS, exp.sft_steps)):
        step = iter(range(1, steps + 1))

        def batch():
            max_ops, pairs = 8 if next(step) <= 0.4 * steps else MAX_OPS, []
            for _ in range(64):
                n = int(rng.integers(MIN_OPS, max_ops + 1))
                digits, ops = task.random_problem(n, rng) if modulus == task.MODULUS else (
                    [int(d) for d in rng.integers(0, 10, n + 1)], [task.OPS[i] for i in rng.integers(0, 3, n)])
                pairs.append((task.prompt_of(digits, ops), noisy_teacher(digits, ops, rng, modulus=modulus)))
            return task.pack_batch(pairs, BLOCK)
        if steps:
            train.fit(model, batch, steps, learning_rate=3e-3, name=f"SFT on the noisy teacher mod {modulus}")
    train.save_checkpoint(path, {"model": model.state_dict()})
    return model.eval()


def reward_of(text, ended, problem):
    """1 for a finished response whose final answer is right, else 0 (sparse, on the last token)."""
    return float(ended and task.read_answer(text) == task.running_values(*problem)[-1])


def sample_prompts(n, rng):
    return [task.random_problem(int(rng.integers(MIN_OPS, MAX_OPS + 1)), rng) for _ in range(n)]


def rollout(policy, problems, group, gen):
    """Sample `group` responses per problem; returns a dict of padded tensors for the update."""
    problems = [p for p in problems for _ in range(group)]
    prompts = [task.encode(task.prompt_of(d, o)) for d, o in problems]
    max_new = MAX_NEW
    new, lengths = policy.generate_batch(prompts, max_new, temperature=1.0, generator=gen)
    B, Tp = len(prompts), int(lengths.max())
    is_end = new == task.PAD
    ended = is_end.any(1)
    resp_len = torch.where(ended, is_end.float().argmax(1) + 1, torch.full((B,), max_new))
    mask = (torch.arange(max_new)[None, :] < resp_len[:, None]).float()
    texts = [task.decode(row[:n].tolist()) for row, n in zip(new, resp_len.tolist())]
    reward = torch.tensor([reward_of(t, e, p) for e, t, p in zip(ended.tolist(), texts, problems)])
    idx = torch.full((B, Tp + max_new), task.PAD, dtype=torch.long)
    n_pad = Tp - lengths
    for i, p in enumerate(prompts):
        idx[i, Tp - len(p):Tp] = torch.tensor(p)
    idx[:, Tp:] = new
    cols = torch.arange(Tp + max_new)
    key_mask = cols[None, :] >= n_pad[:, None]
    pos = (cols[None, :] - n_pad[:, None]).clamp(min=0)
    token_rewards = torch.zeros(B, max_new)
    token_rewards[torch.arange(B), resp_len - 1] = reward
    return {"idx": idx, "pos": pos, "key_mask": key_mask, "Tp": Tp, "tokens": new, "mask": mask,
            "resp_len": resp_len, "reward": reward, "token_rewards": token_rewards, "texts": texts,
            "problems": problems}


def response_logp(model, batch, rows=slice(None)):
    """log pi(token) and the entropy for each response token (B, T_r)."""
    Tp, T = batch["Tp"], batch["tokens"].size(1)
    h = model.hidden(batch["idx"][rows], pos=batch["pos"][rows], key_mask=batch["key_mask"][rows])
    logits = model.lm_head(h[:, Tp - 1:Tp - 1 + T]).float()
    logp_all = F.log_softmax(logits, -1)
    logp = logp_all.gather(-1, batch["tokens"][rows, :, None]).squeeze(-1)
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    return logp, entropy


def response_values(critic, batch, rows=slice(None)):
    Tp, T = batch["Tp"], batch["tokens"].size(1)
    return critic(batch["idx"][rows], batch["pos"][rows], batch["key_mask"][rows])[:, Tp - 1:Tp - 1 + T]


def correct_response(problem):
    values = task.running_values(*problem)
    return task.encode(task.chain_text(values) + f">{values[-1]}$")


def first_wrong_token(batch):
    """Index of each response's first token that differs from the correct response, -1 if there is none. Mod 7
    every step is a bijection, so from there on the chain cannot get back to the right values: the critical token."""
    out = torch.full((len(batch["problems"]),), -1)
    for i, problem in enumerate(batch["problems"]):
        right, got = correct_response(problem), batch["tokens"][i, :int(batch["resp_len"][i])].tolist()
        out[i] = next((t for t, g in enumerate(got) if t >= len(right) or g != right[t]), -1)
    return out


def wrong_so_far(batch):
    """(B, T): 1 where the value position t (the state before response token t) follows a wrong token."""
    fw = first_wrong_token(batch)[:, None]
    return ((fw >= 0) & (fw < torch.arange(batch["tokens"].size(1))[None])).long()


def oracle_table_ev(fit, heldout, steps_left=False):
    """Held-out EV of a lookup table fitted on `fit`: the mean return per key, the key being "a wrong token so far"
    (and, with steps_left, how many steps the correct chain still has). The positive control's reference."""
    def keys(batch):
        t = torch.arange(batch["tokens"].size(1))[None]
        n = torch.tensor([len(ops) for _, ops in batch["problems"]])[:, None]
        return wrong_so_far(batch) * 100 + ((n - (t + 1) // 2).clamp(min=0) if steps_left else 0)
    k_fit, k_held, on = keys(fit), keys(heldout), fit["mask"].bool()
    ret = fit["reward"][:, None].expand_as(k_fit)
    pred = torch.full(k_held.shape, float(ret[on].mean()))
    for k in k_fit[on].unique():
        pred[k_held == k] = float(ret[on & (k_fit == k)].mean())
    return explained_variance(pred, heldout["reward"][:, None] * heldout["mask"], heldout["mask"])


@torch.no_grad()
def mc_values(policy, batch, rows, k, gen):
    """The true value by Monte Carlo: V(prefix) = the success rate of k continuations of `policy` from the prompt
    plus the first t response tokens, for every t below the response's length; V after the last token is its reward.
    Returns (len(rows), T + 1), NaN past each response's end."""
    T, lengths = batch["tokens"].size(1), batch["resp_len"][rows]
    V = torch.full((len(rows), T + 1), float("nan"))
    V[torch.arange(len(rows)), lengths] = batch["reward"][rows]
    prompts = [task.encode(task.prompt_of(*batch["problems"][i])) for i in rows]
    for t in range(int(lengths.max())):
        live = [r for r in range(len(rows)) if lengths[r] > t]
        heads = [batch["tokens"][rows[r], :t].tolist() for r in live]
        new, _ = policy.generate_batch([prompts[r] + h for r, h in zip(live, heads) for _ in range(k)], MAX_NEW - t,
                                       temperature=1.0, generator=gen)
        wins = []
        for j, row in enumerate(new.tolist()):
            r, ended = live[j // k], task.PAD in row
            text = task.decode(heads[j // k] + row[:row.index(task.PAD) + 1 if ended else len(row)])
            wins.append(reward_of(text, ended, batch["problems"][rows[r]]))
        # V(prompt + first t tokens) = (1 / k) sum over continuations of their reward
        V[live, t] = torch.tensor(wins).view(len(live), k).mean(1)
    return V


def mc_advantage(V, mask):
    """The true advantage of each response token, zero on padding."""
    # A(token t) = V(after t) - V(before t) = V(prefix + t) - V(prefix)
    return torch.nan_to_num(V[:, 1:] - V[:, :-1]) * mask


# -----------------------------------------------------------------------------
# The methods


@dataclass
class Config:
    method: str = "vapo"          # mc, ppo, grpo, vapo or oracle
    iters: int = 30               # RL iterations
    rollouts: int = 256           # responses per iteration
    group_size: int = 16          # samples per prompt when groups are used (GRPO, VAPO's group sampling)
    actor_lr: float = 1e-4        # at 3e-4 PPO and VAPO collapsed (KL to SFT above 10) within 30 iterations (mod 10)
    critic_lr: float = 2e-4       # twice the actor's, as in the paper
    minibatch: int = 64
    kl_coef: float = 0.04         # GRPO's k3 KL to the SFT policy
    alpha: float = 1.25           # length-adaptive GAE: 0.05 x (500 / 20), see the docstring
    lm_coef: float = 0.1          # positive-example LM loss weight
    value_pretrain_steps: int = 60  # fixed, chosen from the held-out EV curve (assets/vapo_value_pretraining.png)
    pretrain_lr: float = 1e-3     # value pretraining's Adam learning rate (the critic alone, on the frozen SFT policy)
    continuations: int = 4        # the oracle run: Monte Carlo continuations per prefix
    # VAPO's components; each can be switched off for the ablations
    value_pretrain: bool = True
    decoupled_gae: bool = True
    adaptive_lambda: bool = True
    token_level: bool = True
    clip_higher: bool = True
    lm_loss: bool = True
    group_sampling: bool = True
    seed: int = 0


COMPONENTS = ("value_pretrain", "decoupled_gae", "adaptive_lambda", "token_level", "clip_higher", "lm_loss",
              "group_sampling")


def method_config(method, **overrides):
    """PPO, GRPO and the two references (Monte Carlo returns; PPO on the Monte Carlo oracle's advantages) as the
    docstring defines them; VAPO with all seven components unless overridden."""
    base = {} if method == "vapo" else {c: False for c in COMPONENTS} | {"group_sampling": method == "grpo"}
    return Config(method=method, **{**base, **overrides})


def uses_critic(cfg):
    return cfg.method in ("ppo", "vapo")


def critic_step(critic, opt, batch, rows, returns):
    """One Adam step of the critic on 0.5 (V - return)^2 (token mean), gradients clipped at 1.0."""
    v = response_values(critic, batch, rows)
    loss = aggregate(0.5 * (v - returns[rows]) ** 2, batch["mask"][rows], True)
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(critic.parameters(), 1.0)
    opt.step()
    return float(loss.detach())


@torch.no_grad()
def heldout_ev(critic, heldout):
    return explained_variance(response_values(critic, heldout), heldout["reward"][:, None] * heldout["mask"],
                              heldout["mask"])


def pretrain_value(critic, sft, cfg, steps, heldout, eval_every=5):
    """VAPO's value pretraining: fit the critic to Monte Carlo returns (gamma = 1: the final reward) of the frozen
    SFT policy on fresh rollouts, for a fixed number of steps. Returns the held-out EV every eval_every steps and the
    critic's weights after each step listed in cfg.value_pretrain_steps (the one the RL runs start from)."""
    rng, gen = np.random.default_rng(cfg.seed + 500), torch.Generator().manual_seed(cfg.seed + 500)
    opt = torch.optim.AdamW(critic.parameters(), lr=cfg.pretrain_lr, weight_decay=0.0)
    curve, kept = [(0, heldout_ev(critic, heldout))], None
    for step in range(1, steps + 1):
        with torch.no_grad():
            batch = rollout(sft, sample_prompts(cfg.rollouts // cfg.group_size, rng), cfg.group_size, gen)
        returns = batch["reward"][:, None] * batch["mask"]
        for rows in torch.randperm(len(returns), generator=gen).split(cfg.minibatch):
            critic_step(critic, opt, batch, rows, returns)
        if step % eval_every == 0 or step in (steps, cfg.value_pretrain_steps):
            curve.append((step, heldout_ev(critic, heldout)))
        if step == cfg.value_pretrain_steps:
            kept = copy.deepcopy(critic.state_dict())
    return curve, kept


def method_advantages(cfg, batch, critic, policy, gen):
    """Each method's per-token advantages on a batch: (advantages, critic returns, lambda_policy, critic values);
    the last three are None for the methods without a critic."""
    mask, group = batch["mask"], cfg.group_size if cfg.group_sampling else 1
    if cfg.method == "grpo":
        return group_advantages(batch["reward"], group)[:, None] * mask, None, None, None
    if cfg.method == "mc":
        # A_t = R - mean(R) on every token: the Monte Carlo return (gamma = 1) with a constant baseline
        return (batch["reward"] - batch["reward"].mean())[:, None] * mask, None, None, None
    if cfg.method == "oracle":
        V = mc_values(policy, batch, list(range(len(mask))), cfg.continuations, gen)
        return mc_advantage(V, mask), None, None, None
    with torch.no_grad():
        values = response_values(critic, batch)
    return (*advantages_and_returns(batch["token_rewards"], values, mask, batch["resp_len"], cfg), values)


def policy_step(cfg, policy, opt, batch, rows, adv, old_logp, ref_logp):
    """One minibatch of the clipped surrogate (+ GRPO's KL, + VAPO's positive-example LM loss); returns stats."""
    eps_low = 0.2
    # clip-higher widens the upper side only: eps_high 0.28 instead of 0.2
    eps_high = 0.28 if cfg.clip_higher else 0.2
    logp, entropy = response_logp(policy, batch, rows)
    m, a = batch["mask"][rows], adv[rows]
    ratio = torch.exp(logp - old_logp[rows])
    loss = aggregate(clipped_surrogate(ratio, a, eps_low, eps_high), m, cfg.token_level)
    k3 = k3_kl(logp, ref_logp[rows])
    if cfg.method == "grpo" and cfg.kl_coef > 0:
        loss = loss + cfg.kl_coef * aggregate(k3, m, cfg.token_level)
    if cfg.lm_loss:
        loss = loss + cfg.lm_coef * positive_lm_loss(logp, m, batch["reward"][rows])
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
    opt.step()
    on = m.bool()
    with torch.no_grad():
        return {"clip_high": float(((ratio > 1 + eps_high) & (a > 0))[on].float().mean()),
                "kl_ref": float(k3[on].mean()), "entropy": float(entropy[on].mean())}


def train_method(cfg, sft, pretrained=None, log=print):
    """One method from the SFT checkpoint (VAPO's critic from `pretrained` weights when given); returns per-iteration
    metrics, the final policy and critic."""
    torch.manual_seed(cfg.seed)
    rng, gen = np.random.default_rng(cfg.seed), torch.Generator().manual_seed(cfg.seed)
    policy, reference = copy.deepcopy(sft), copy.deepcopy(sft)
    actor_opt = torch.optim.AdamW(policy.parameters(), lr=cfg.actor_lr, weight_decay=0.0)
    critic = Critic(sft) if uses_critic(cfg) else None
    if critic is not None and cfg.value_pretrain:
        critic.load_state_dict(pretrained)
    critic_opt = torch.optim.AdamW(critic.parameters(), lr=cfg.critic_lr, weight_decay=0.0) if critic else None
    group, iters = cfg.group_size if cfg.group_sampling else 1, []
    for it in range(cfg.iters):
        t0 = time.time()
        with torch.no_grad():
            batch = rollout(policy, sample_prompts(cfg.rollouts // group, rng), group, gen)
            old_logp, ref_logp = response_logp(policy, batch)[0], response_logp(reference, batch)[0]
        adv, returns, lam, values = method_advantages(cfg, batch, critic, policy, gen)
        stats = []
        policy.train()
        for rows in torch.randperm(len(adv), generator=gen).split(cfg.minibatch):
            stats.append(policy_step(cfg, policy, actor_opt, batch, rows, adv, old_logp, ref_logp))
            if critic is not None:
                stats[-1]["value_loss"] = critic_step(critic, critic_opt, batch, rows, returns)
        policy.eval()
        ops = torch.tensor([len(o) for _, o in batch["problems"]])
        row = {"iter": it + 1, "reward": float(batch["reward"].mean()), "seconds": time.time() - t0,
               "reward_by_bucket": {b: float(batch["reward"][(ops >= lo) & (ops <= hi)].mean())
                                    for b, (lo, hi) in BUCKETS.items()},
               "response_length": float(batch["resp_len"].float().mean()),
               "lambda_policy_mean": float(lam.mean()) if lam is not None else float("nan"),
               "explained_variance": explained_variance(values, returns, batch["mask"]) if critic else float("nan"),
               **{k: float(np.mean([s[k] for s in stats])) for k in stats[0]}}
        iters.append(row)
        log(f"{cfg.method} seed {cfg.seed} iter {it + 1}/{cfg.iters} | reward {row['reward']:.3f} | "
            f"len {row['response_length']:.1f} | EV {row['explained_variance']:.2f} | clip+ {row['clip_high']:.3f} | "
            f"kl_ref {row['kl_ref']:.4f} | "
            f"{row['seconds']:.1f}s")
    return {"iters": iters}, policy, critic


# -----------------------------------------------------------------------------
# The experiment

PAPER_AIME = {"ppo": 5, "vapo": 60, "vapo-value_pretrain": 11, "vapo-decoupled_gae": 33, "vapo-adaptive_lambda": 45,
              "vapo-clip_higher": 46, "vapo-token_level": 53, "vapo-lm_loss": 54, "vapo-group_sampling": 55}


@dataclass
class Experiment:
    iters: int = 30               # RL iterations per run
    seeds: int = 1                # README's tables: --seeds=3 (--ablations=true: --seeds=2)
    ablations: bool = False       # also VAPO without each of its seven components
    references: bool = True       # also the Monte Carlo return (below) and the Monte Carlo oracle (above)
    oracle_rollouts: int = 64     # the oracle run's responses per iteration (minibatch a quarter of it)
    rollouts: int = 256           # responses per iteration (every method but the oracle)
    sft_warmup: int = 3000        # warm-start steps on the noisy teacher mod 10 (see sft_model; cached in out_dir)
    sft_steps: int = 1500         # then steps on the noisy teacher mod 7
    n_layer: int = 2              # small and fast: a 2-layer, 64-wide GPT with a character vocabulary
    n_embd: int = 64
    value_pretrain_steps: int = 60  # VAPO's value pretraining (a fixed number of steps, chosen from the curve)
    curve_steps: int = 120        # seed 0's value-pretraining curve runs this far (to show where it flattens)
    heldout: int = 512            # held-out SFT rollouts for the critic's and the oracle table's EV
    analysis_rows: int = 16       # rollouts per run whose true advantage is estimated (half failed, half not)
    mc_continuations: int = 8     # continuations per prefix for that estimate
    num_threads: int = 1          # CPU threads (1: reproducible, and what the run times in README assume)
    out_dir: str = "out/vapo"
    quick: bool = False           # a 90-second version of the default run (smaller sizes, same functions)
    QUICK: ClassVar[dict] = dict(iters=5, rollouts=128, sft_warmup=400, sft_steps=200, references=False,
                                 value_pretrain_steps=10, curve_steps=15, heldout=128, analysis_rows=6,
                                 mc_continuations=4, out_dir="out/vapo_quick")
    QUICK_NOTE: ClassVar[str] = ("quick run: 400 + 200 SFT steps (too few to learn the task), 5 RL iterations of 128 "
                                 "rollouts, no references, 1 seed. README's run (--seeds=3) trains 3,000 + 1,500 SFT "
                                 "and 30 iterations of 256, and adds the Monte Carlo references.")

    def validate(self):
        if min(self.iters, self.seeds, self.sft_steps, self.n_layer, self.heldout // 16, self.analysis_rows,
               self.mc_continuations, self.oracle_rollouts // 4, self.rollouts // 16, self.value_pretrain_steps,
               self.num_threads, self.sft_warmup + 1) < 1 or self.n_embd % 4 \
                or self.curve_steps < self.value_pretrain_steps:
            raise train.ConfigError("--iters, --seeds, --sft_steps, --n_layer, --analysis_rows, --mc_continuations, "
                                    "--value_pretrain_steps, --num_threads >= 1; --heldout, --rollouts >= 16; "
                                    "--oracle_rollouts >= 4; --sft_warmup >= 0; --n_embd a multiple of 4; "
                                    "--curve_steps >= --value_pretrain_steps")


def runs_of(exp):
    names = (["mc"] if exp.references else []) + ["ppo", "grpo", "vapo"] + (["oracle"] if exp.references else [])
    over = {"iters": exp.iters, "value_pretrain_steps": exp.value_pretrain_steps}
    runs = [(n, method_config(n, **over, **({"rollouts": exp.oracle_rollouts, "minibatch": exp.oracle_rollouts // 4}
                                             if n == "oracle" else {}))) for n in names]
    if exp.ablations:
        runs += [(f"vapo-{c}", method_config("vapo", **over, **{c: False})) for c in COMPONENTS]
    return runs


def task_measurements(sft, exp):
    """On the new task, before any RL: P(success | a wrong token so far) for the noisy teacher and for SFT rollouts,
    and the held-out EV of the oracle tables (fitted on other SFT rollouts): the positive control's reference."""
    rng, gen = np.random.default_rng(1000), torch.Generator().manual_seed(1000)
    teacher = []
    for _ in range(4000):
        problem = sample_prompts(1, rng)[0]
        text = noisy_teacher(*problem, rng)
        wrong = task.encode(text) != correct_response(problem)
        teacher.append((wrong, reward_of(text, True, problem)))
    with torch.no_grad():
        heldout, fit = (rollout(sft, sample_prompts(exp.heldout // 16, rng), 16, gen) for _ in range(2))
    wrong = first_wrong_token(heldout) >= 0
    return heldout, {
        "teacher_success": float(np.mean([s for _, s in teacher])),
        "teacher_success_given_wrong": float(np.mean([s for w, s in teacher if w])),
        "sft_success": float(heldout["reward"].mean()),
        "sft_success_given_wrong": float(heldout["reward"][wrong].mean()) if wrong.any() else float("nan"),
        "sft_share_wrong": float(wrong.float().mean()),
        "table_ev": oracle_table_ev(fit, heldout), "table_ev_steps_left": oracle_table_ev(fit, heldout, True)}


def credit_assignment(cfg, policy, critic, exp):
    """Post hoc, on a run's final policy and critic: fresh grouped rollouts, the method's advantages on them, and the
    true advantage by Monte Carlo on `analysis_rows` of them (half failed, where there are enough). Returns the
    Pearson r over those tokens, the mean share of a failed rollout's |advantage| that sits, negative, on its first
    wrong token (for the method and for the true advantage), and one failed rollout for the figure."""
    rng, gen = np.random.default_rng(20_000 + cfg.seed), torch.Generator().manual_seed(20_000 + cfg.seed)
    group = cfg.group_size
    with torch.no_grad():
        batch = rollout(policy, sample_prompts(max(2, 4 * exp.analysis_rows // group), rng), group, gen)
    failed = torch.nonzero(batch["reward"] == 0).flatten().tolist()
    passed = torch.nonzero(batch["reward"] == 1).flatten().tolist()
    half = min(len(failed), exp.analysis_rows // 2)
    rows = failed[:half] + passed[:exp.analysis_rows - half]
    if cfg.method == "oracle":    # its own (independent) Monte Carlo estimate, on the analysed rows only
        adv = torch.zeros_like(batch["mask"])
        adv[rows] = mc_advantage(mc_values(policy, batch, rows, cfg.continuations, gen), batch["mask"][rows])
    else:
        adv = method_advantages(dataclasses.replace(cfg, group_sampling=True), batch, critic, policy, gen)[0]
    V = mc_values(policy, batch, rows, exp.mc_continuations, gen)
    mask, method = batch["mask"][rows], adv[rows]
    true = mc_advantage(V, mask)
    on = mask.bool()
    varies = method[on].std() > 0 and true[on].std() > 0
    corr = float(np.corrcoef(method[on], true[on])[0, 1]) if varies else float("nan")
    fw = first_wrong_token(batch)[rows]

    def mass(a):  # per failed rollout with a wrong token: -A(first wrong) / sum |A|
        return float(np.mean([float(-a[r, fw[r]] / a[r].abs().sum().clamp(min=1e-9)) for r in range(half) if fw[r] >= 0]
                             or [float("nan")]))
    after = [float(V[r, fw[r] + 1]) for r in range(len(rows)) if fw[r] >= 0]
    picture = None
    if half:
        n = int(mask[0].sum())
        picture = {"prompt": task.prompt_of(*batch["problems"][rows[0]]), "tokens": task.decode(
            batch["tokens"][rows[0], :n].tolist()), "V": V[0, :n + 1].tolist(), "true": true[0, :n].tolist(),
            "method": method[0, :n].tolist()}
    return {"corr": corr, "mass": mass(method), "true_mass": mass(true), "rows": len(rows), "failed": half,
            "V_after_first_wrong": float(np.mean(after)) if after else float("nan"), "picture": picture}


def spread(values):
    """(mean, spread = max - min) over seeds."""
    return float(np.mean(values)), float(np.max(values) - np.min(values))


def differs(a, b):
    """+1 if a is above b by more than the larger spread, -1 if below, 0 within it."""
    gap = a[0] - b[0]
    return 0 if not np.isfinite(gap) or abs(gap) <= max(a[1], b[1]) else int(np.sign(gap))


def summarise(results):
    """Per run: mean and spread over seeds of its last-5-iteration sampled reward (also per bucket), its
    correlation with the true advantage and mass on the first wrong token."""
    out = {}
    for name, seeds in results.items():
        def over(f):
            return spread([f(s) for s in seeds])
        out[name] = {"reward": over(lambda s: np.mean([r["reward"] for r in s["iters"][-5:]])),
                     **{b: over(lambda s: np.nanmean([r["reward_by_bucket"][b] for r in s["iters"][-5:]]))
                        for b in BUCKETS},
                     **{k: over(lambda s: s["credit"][k]) for k in ("corr", "mass", "true_mass")}}
    return out


def verdicts(stats, control, exp):
    """One dict per claim; every one inconclusive when the control failed or there are fewer than 3 seeds."""
    command = (f"python vapo.py --seeds={exp.seeds}" + (" --ablations=true" if exp.ablations else "") +
               (" --quick=true" if exp.quick else "") + f" --num_threads={exp.num_threads}")
    claims = [("VAPO above vanilla PPO (sampled reward)", "AIME24 60.4 vs 5 (Table 1)", "vapo", "ppo", "reward"),
              ("VAPO above value-free GRPO (sampled reward)", "more than 10 points above DAPO and R1-Zero (GRPO)",
               "vapo", "grpo", "reward"),
              ("VAPO's advantages track the true advantage better than GRPO's", "value-based credit is finer-grained "
               "than value-free (its section 1; the critiques doubt it)", "vapo", "grpo", "corr")]
    claims += [(f"removing {c} lowers the reward", f"AIME24 {PAPER_AIME[f'vapo-{c}']} without it, 60 with", "vapo",
                f"vapo-{c}", "reward") for c in COMPONENTS if f"vapo-{c}" in stats]
    out = []
    for claim, paper, a, b, key in claims:
        d = differs(stats[a][key], stats[b][key])
        verdict = ("inconclusive (the critic did not beat a constant)" if not control["passed"] else
                   f"inconclusive ({exp.seeds} seed(s); a spread needs 3)" if exp.seeds < 3 else
                   "supported" if d > 0 else "not supported" + (" (the reverse)" if d < 0 else " (within the spread)"))
        out.append({"claim": claim, "paper_says": paper, "verdict": verdict, "control": control["text"],
                    "ours": f"{a} {stats[a][key][0]:.3f} ± {stats[a][key][1]:.3f} vs {b} {stats[b][key][0]:.3f} ± "
                            f"{stats[b][key][1]:.3f}", "seeds": exp.seeds, "command": command})
    return out


def positive_control(pretrain, measures, stats):
    """The critic learned if its held-out EV after value pretraining beats a constant (0) clearly on every seed."""
    evs = [p["ev"] for p in pretrain.values()]
    ev, table = spread(evs), measures["table_ev"]
    passed = min(evs) > 0.05
    text = (f"pretrained critic held-out EV {ev[0]:.3f} ± {ev[1]:.3f} ({len(evs)} seed(s)) vs the oracle table "
            f"('a wrong token so far') {table:.3f}, {ev[0] / table:.0%} of it (table with steps left too: "
            f"{measures['table_ev_steps_left']:.3f}): " + ("passed" if passed else "FAILED (EV not above 0.05)"))
    if "oracle" in stats and "mc" in stats:
        o, m = stats["oracle"]["reward"], stats["mc"]["reward"]
        text += (f"; PPO on the Monte Carlo oracle {o[0]:.3f} ± {o[1]:.3f} vs Monte Carlo returns {m[0]:.3f} ± "
                 f"{m[1]:.3f}: credit assignment " + ("can" if differs(o, m) > 0 else "cannot be shown to") +
                 " move the reward at this scale")
    return {"passed": passed, "text": text}


def report(results, pretrain, measures, exp):
    out, stats = Path(exp.out_dir), summarise(results)
    control = positive_control(pretrain, measures, stats)
    verdict = verdicts(stats, control, exp)
    pm = lambda x: f"{x[0]:.3f} ± {x[1]:.3f}"  # noqa: E731
    lines = ["| run | sampled reward (last 5 iters) | " + " | ".join(f"ops {b}" for b in BUCKETS) +
             " | advantage vs true advantage (r) | advantage share on the first wrong token | paper AIME24 |",
             "|---|---|" + "---|" * len(BUCKETS) + "---|---|---|"]
    for n, s in stats.items():
        lines.append(f"| {n} | {pm(s['reward'])} | " + " | ".join(pm(s[b]) for b in BUCKETS) +
                     f" | {pm(s['corr'])} | {pm(s['mass'])} | {PAPER_AIME.get(n, '-')} |")
    true_mass = spread([v for s in stats.values() for v in [s["true_mass"][0]] if np.isfinite(v)] or [np.nan])
    lines += [f"\nmean ± spread (max - min) over {exp.seeds} seed(s), {exp.iters} iterations of {exp.rollouts} "
              f"rollouts (oracle: "
              f"{exp.oracle_rollouts}). True advantage: {exp.mc_continuations} Monte Carlo continuations per prefix of "
              f"{exp.analysis_rows} rollouts of each final policy; on failed rollouts it puts {true_mass[0]:.2f} of "
              "its "
              f"|mass| on the first wrong token.",
              f"task: P(success | a wrong token so far) teacher {measures['teacher_success_given_wrong']:.3f} (overall "
              f"{measures['teacher_success']:.3f}), SFT rollouts {measures['sft_success_given_wrong']:.3f} (overall "
              f"{measures['sft_success']:.3f}, {measures['sft_share_wrong']:.0%} with a wrong token)",
              f"value pretraining: {exp.value_pretrain_steps} steps; held-out EV " +
              ", ".join(f"seed {s}: {p['ev']:.3f}" for s, p in pretrain.items()),
              "", f"positive control: {control['text']}"]
    lines += [f"verdict: {d['claim']} (paper: {d['paper_says']}): {d['verdict']}; {d['ours']}" for d in verdict]
    table = "\n".join(lines)
    train.write_results(out, table, {"config": dataclasses.asdict(exp), "task": measures, "summary": stats,
                                     "value_pretraining": pretrain, "runs": results, "verdict": verdict})
    plot(results, pretrain, measures, stats, exp, out)
    print("\n" + table + f"\n\nwrote {out / 'results.json'}, {out / 'results.md'}, {out / 'vapo.png'}, "
          f"{out / 'vapo_value_pretraining.png'}")
    return stats, verdict


def plot(results, pretrain, measures, stats, exp, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
    for s, p in pretrain.items():
        ax.plot(*zip(*p["curve"]), "o-", ms=3, label=f"critic, seed {s}")
    for key, style in (("table_ev", "k--"), ("table_ev_steps_left", "k:")):
        ax.axhline(measures[key], color="k", ls=style[1:], label=f"oracle table {key[8:].replace('_', ' ')}".strip())
    ax.axvline(exp.value_pretrain_steps, color="grey", lw=0.8, label="steps used")
    ax.set(xlabel="value-pretraining step (256 SFT rollouts each)", ylabel="held-out EV", title="value pretraining")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    train.save_figure(fig, out / "vapo_value_pretraining.png")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4), dpi=90)
    for i, (n, seeds) in enumerate(results.items()):
        curve = np.mean([[r["reward"] for r in s["iters"]] for s in seeds], 0)
        axes[0].plot(np.arange(1, len(curve) + 1), curve, color=f"C{i % 10}", label=n)
    axes[0].set(xlabel="iteration", title=f"sampled reward (mean of {exp.seeds} seed(s))")
    names = list(stats)
    for j, key in enumerate(("corr", "mass")):
        axes[1].bar(np.arange(len(names)) + 0.4 * j, [stats[n][key][0] for n in names], 0.4,
                    yerr=[stats[n][key][1] / 2 for n in names], label=("r with the true advantage",
                                                                        "share on the first wrong token")[j])
    axes[1].set_xticks(np.arange(len(names)) + 0.2, names, rotation=30, fontsize=7)
    axes[1].set_title("credit assignment, final policies")
    name = next((n for n in ("vapo", "ppo", "grpo") if n in results and results[n][0]["credit"]["picture"]), None)
    if name:
        p = results[name][0]["credit"]["picture"]
        x = np.arange(len(p["tokens"]))
        axes[2].plot(x, p["V"][:-1], "k--", label="V(before token), Monte Carlo")
        axes[2].plot(x, p["true"], "o-", ms=3, label="true advantage")
        axes[2].plot(x, p["method"], "x:", label=f"{name}'s advantage")
        axes[2].set_xticks(x, list(p["tokens"]))
        axes[2].set_title(f"one failed rollout of {name}, seed 0: {p['prompt']}", fontsize=9)
    for a in axes:
        a.legend(fontsize=6)
        a.grid(alpha=0.3)
    train.save_figure(fig, out / "vapo.png")


def run_experiment(exp, log=print):
    """SFT, the task measurements, value pretraining per seed, then every run and its post-hoc credit analysis."""
    sft = sft_model(exp)
    heldout, measures = task_measurements(sft, exp)
    log(f"task: P(success | wrong token so far) teacher {measures['teacher_success_given_wrong']:.3f}, SFT "
        f"{measures['sft_success_given_wrong']:.3f}; oracle table EV {measures['table_ev']:.3f}")
    pretrain = {}
    for seed in range(exp.seeds):
        cfg = method_config("vapo", seed=seed, value_pretrain_steps=exp.value_pretrain_steps)
        cpu = time.process_time()
        curve, kept = pretrain_value(Critic(sft), sft, cfg, exp.curve_steps if seed == 0 else cfg.value_pretrain_steps,
                                     heldout)
        pretrain[seed] = {"curve": curve, "ev": dict(curve)[cfg.value_pretrain_steps], "state": kept,
                          "cpu_seconds": time.process_time() - cpu}
        log(f"value pretraining, seed {seed}: held-out EV {pretrain[seed]['ev']:.3f} after {cfg.value_pretrain_steps} "
            f"steps (oracle table {measures['table_ev']:.3f})")
    results = {}
    for name, cfg in runs_of(exp):
        for seed in range(exp.seeds):
            cfg = dataclasses.replace(cfg, seed=seed, rollouts=exp.rollouts if name != "oracle" else cfg.rollouts)
            cpu = time.process_time()
            metrics, policy, critic = train_method(cfg, sft, pretrain[seed]["state"], log=log)
            metrics["credit"] = credit_assignment(cfg, policy, critic, exp)
            metrics["cpu_seconds"] = time.process_time() - cpu
            log(f"{name} seed {seed}: {metrics['cpu_seconds']:.0f} s CPU (training and its credit analysis)")
            results.setdefault(name, []).append(metrics)
    for p in pretrain.values():
        del p["state"]
    return results, pretrain, measures


def run(argv):
    try:
        exp = train.parse_args(argv, Experiment, __doc__)
    except train.ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    torch.set_num_threads(exp.num_threads)
    t0, cpu0 = time.time(), time.process_time()
    print(f"vapo: {exp.seeds} seed(s), {exp.num_threads} thread(s)", flush=True)
    results, pretrain, measures = run_experiment(exp, log=lambda s: print(s, flush=True))
    stats, verdict = report(results, pretrain, measures, exp)
    print(f"run time {train.format_seconds(time.time() - t0)} wall, "
          f"{train.format_seconds(time.process_time() - cpu0)} CPU")
    if exp.quick:
        print(f"headline: VAPO {stats['vapo']['reward'][0]:.3f}, PPO {stats['ppo']['reward'][0]:.3f}, GRPO "
              f"{stats['grpo']['reward'][0]:.3f} sampled reward; critic EV {pretrain[0]['ev']:.3f} vs table "
              f"{measures['table_ev']:.3f}\n{Experiment.QUICK_NOTE}")
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
