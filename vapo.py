"""
VAPO against PPO and GRPO on a verifiable task, with its ablations, on the shared small GPT.

Papers. VAPO (ByteDance Seed, arXiv:2504.05118) is value-based PPO for long chain-of-thought
reasoning: on Qwen2.5-32B with no SFT it reached 60.4 on AIME24 within 5,000 steps, against 5 for
vanilla PPO, by seven changes (its Table 1 removes each: without value pretraining 11, without
decoupled GAE 33, without length-adaptive GAE 45, without clip-higher 46, without token-level loss 53,
without the positive-example LM loss 54, without group sampling 55). Two position papers by the same
two authors (arXiv:2505.17997, arXiv:2506.03038; no experiments) list its limits: credit assignment,
value-function capacity, turning a global value into local improvement under sparse reward, the
optimality of adaptive advantage estimation, token-level optimisation and exploration. We turn two of
those into measurements: how well each method's per-token advantage tracks the true advantage, and
how much advantage lands on the first wrong step of a failed chain.

The task (from cot_probe.py): left-to-right chain arithmetic mod 7, `3+5*2-6=` -> `1;2;3;>3$`, with 2
to 16 operations, so responses of 7 to 35 tokens. Reward 1 on the last token for a correct final answer,
else 0. Warm start: supervised finetuning on a noisy teacher whose steps are wrong with probability 0.1
(later steps computed consistently from the wrong value), so success falls with length and the first
wrong step is a known critical token. All methods start from that cached SFT checkpoint.

The methods (one GAE, a reverse loop with a mask-aware carry and lambda per sequence):
- PPO, the paper's "vanilla": one sample per prompt, lambda 0.95 for actor and critic, clip 0.2,
  per-sequence loss, critic from the SFT trunk with a fresh value head, no value pretraining.
- GRPO: groups of G samples per prompt, advantage (r - mean) / (std + eps) on every token,
  per-sequence loss, k3 KL to the SFT policy in the loss (coefficient kl_coef).
- VAPO: value pretraining on Monte-Carlo returns of the frozen SFT policy until the explained variance
  stops rising; decoupled GAE (lambda_critic = 1); length-adaptive lambda_policy = 1 - 1/(alpha l)
  clamped to [0, 1]; token-level loss; clip-higher (0.2, 0.28); positive-example LM loss (weight 0.1)
  on correct samples; group sampling. Critic learning rate twice the actor's, as in the paper.
Our interpretation: the paper's alpha = 0.05 is for responses of hundreds to thousands of tokens; at our
lengths (7-35) it gives lambda <= 0. We rescale alpha by the ratio of typical lengths, 500 / 20, to
alpha = 1.25, which gives lambda = 0.96 at l = 20, the value the paper's alpha gives at l = 500.
The models are small (a 2-layer, 64-wide GPT with a character vocabulary), batches are 256 rollouts, and
runs are tens of iterations: what we report is what happened at this scale, not the paper's numbers.

    python vapo.py                     # PPO, GRPO, VAPO (< 15 min on a 2-core CPU)
    python vapo.py --ablations=true    # plus VAPO without each component
    python vapo.py --iters=200 --seeds=3
"""
import copy
import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path

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


def noisy_teacher(digits, ops, rng, p_wrong=0.1):
    """The SFT data: each step wrong with probability p_wrong, later steps continue from what was written."""
    acc, values = digits[0], []
    for op, d in zip(ops, digits[1:]):
        acc = task.apply_op(acc, op, d)
        if rng.random() < p_wrong:
            acc = (acc + int(rng.integers(1, task.MODULUS))) % task.MODULUS
        values.append(acc)
    return task.chain_text(values) + f">{values[-1]}$"


MIN_OPS, MAX_OPS, BLOCK = 2, 16, 80
BUCKETS = {"2-5": (2, 5), "6-10": (6, 10), "11-16": (11, 16)}


def sft_model(exp):
    """The warm start, cached at out/vapo/sft.pt."""
    path = Path(exp.out_dir) / f"sft_{exp.n_layer}x{exp.n_embd}_{exp.sft_steps}_curriculum.pt"
    config = train.GPTConfig(vocab_size=len(task.VOCAB), block_size=BLOCK, n_layer=exp.n_layer, n_head=4,
                             n_embd=exp.n_embd)
    model = train.GPT(config)
    if path.exists():
        model.load_state_dict(train.load_checkpoint(path)["model"])
        return model.eval()
    torch.manual_seed(0)
    model = train.GPT(config)
    rng = np.random.default_rng(0)

    step = [0]

    def batch():
        # a curriculum (ours): up to 8 operations for the first 40% of the steps, then up to 16; without it
        # this small model had not learned the steps of the long problems after 2,500 steps
        step[0] += 1
        max_ops = 8 if step[0] <= 0.4 * exp.sft_steps else MAX_OPS
        pairs = []
        for _ in range(64):
            digits, ops = task.random_problem(int(rng.integers(MIN_OPS, max_ops + 1)), rng)
            pairs.append((task.prompt_of(digits, ops), noisy_teacher(digits, ops, rng)))
        return task.pack_batch(pairs, BLOCK)
    train.fit(model, batch, exp.sft_steps, learning_rate=3e-3, name="SFT on the noisy teacher")
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
    max_new = 2 * MAX_OPS + 3
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
            "resp_len": resp_len, "reward": reward, "token_rewards": token_rewards, "texts": texts, "problems": problems}


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


@torch.no_grad()
def greedy_accuracy(policy, problems_by_bucket):
    out = {}
    for name, problems in problems_by_bucket.items():
        if not problems:
            continue
        completions = task.model_completer(policy, max_new=2 * MAX_OPS + 3)([task.prompt_of(d, o) for d, o in problems])
        answers = [task.read_answer(c) for c in completions]
        out[name] = float(np.mean([a == task.running_values(d, o)[-1] for a, (d, o) in zip(answers, problems)]))
    return out


def structural_advantage(batch):
    """An estimate of the true per-token advantage on this task, P(success | prefix + token) -
    P(success | prefix), from its structure: with the policy's measured per-step accuracy rho and answer
    accuracy rho_a, P(success | prefix) = rho^(steps left) rho_a while the chain is right so far and
    (nearly) 0 after the first wrong step. Also returns the first wrong step's index per row (or -1)."""
    B, T = batch["tokens"].shape
    steps_total = steps_right = answers_total = answers_right = 0
    parsed = []
    for text, (d, o) in zip(batch["texts"], batch["problems"]):
        truth, chain = task.running_values(d, o), task.read_chain(text)
        parsed.append((truth, chain))
        ok = True
        for j, v in enumerate(chain[:len(truth)]):
            if ok:
                steps_total += 1
                steps_right += v == truth[j]
                ok = v == truth[j]
        if ok and len(chain) == len(truth):
            answers_total += 1
            answers_right += task.read_answer(text) == truth[-1]
    rho, rho_a = steps_right / max(1, steps_total), answers_right / max(1, answers_total)
    adv = torch.zeros(B, T)
    first_wrong = torch.full((B,), -1)
    for i, (text, (truth, chain)) in enumerate(zip(batch["texts"], parsed)):
        n, ok = len(truth), True
        for j in range(min(len(chain), n)):
            k = 2 * j                                  # the step's digit is token 2j of the response
            before = rho ** (n - j) * rho_a
            if ok and chain[j] == truth[j]:
                adv[i, k] = rho ** (n - j - 1) * rho_a - before
            elif ok:
                adv[i, k], first_wrong[i], ok = -before, k, False
        answer_at = 2 * len(chain) + 1
        if ok and len(chain) == n and answer_at < T:
            adv[i, answer_at] = (1 - rho_a) if task.read_answer(text) == truth[-1] else -rho_a
    return adv * batch["mask"], first_wrong


# -----------------------------------------------------------------------------
# The methods


@dataclass
class Config:
    method: str = "vapo"          # ppo, grpo or vapo
    iters: int = 30               # RL iterations
    rollouts: int = 256           # responses per iteration
    group_size: int = 16          # samples per prompt when groups are used (GRPO, VAPO's group sampling)
    actor_lr: float = 1e-4        # at 3e-4 PPO and VAPO collapsed (KL to SFT above 10) within 30 iterations
    minibatch: int = 64
    kl_coef: float = 0.04         # GRPO's k3 KL to the SFT policy
    alpha: float = 1.25           # length-adaptive GAE: 0.05 x (500 / 20), see the docstring
    lm_coef: float = 0.1          # positive-example LM loss weight
    value_pretrain_min: int = 20  # critic-only steps at least in value pretraining (a fresh head starts at EV 0)
    value_pretrain_max: int = 80  # and at most
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
    """PPO and GRPO as the docstring defines them; VAPO with all seven components unless overridden."""
    if method == "ppo":
        base = {c: False for c in COMPONENTS}
    elif method == "grpo":
        base = {c: False for c in COMPONENTS} | {"group_sampling": True}
    else:
        base = {}
    return Config(method=method, **{**base, **overrides})


def pretrain_value(critic, critic_opt, sft, cfg, rng, gen):
    """VAPO's value pretraining: fit the critic to Monte-Carlo returns (gamma = 1: the final reward) of
    the frozen SFT policy, until the explained variance on fresh rollouts stops rising: at least
    value_pretrain_min steps, then stop after 5 steps without a new best (by 0.005)."""
    best, since_best, history = -float("inf"), 0, []
    for step in range(cfg.value_pretrain_max):
        batch = rollout(sft, sample_prompts(cfg.rollouts // cfg.group_size, rng), cfg.group_size, gen)
        returns = batch["reward"][:, None] * batch["mask"]
        with torch.no_grad():
            ev = explained_variance(response_values(critic, batch), returns, batch["mask"])
        history.append(ev)
        if ev > best + 0.005:
            best, since_best = ev, 0
        else:
            since_best += 1
            if since_best >= 5 and step >= cfg.value_pretrain_min:
                break
        for rows in torch.randperm(len(batch["reward"]), generator=gen).split(cfg.minibatch):
            v = response_values(critic, batch, rows)
            loss = aggregate(0.5 * (v - returns[rows]) ** 2, batch["mask"][rows], True)
            critic_opt.zero_grad()
            loss.backward()
            critic_opt.step()
    return history


def train_method(cfg, sft, test_problems, log=print):
    """Run one method from the SFT checkpoint; returns per-iteration metrics and the final policy/critic."""
    torch.manual_seed(cfg.seed)
    rng, gen = np.random.default_rng(cfg.seed), torch.Generator().manual_seed(cfg.seed)
    policy, reference = copy.deepcopy(sft), copy.deepcopy(sft)
    actor_opt = torch.optim.AdamW(policy.parameters(), lr=cfg.actor_lr, weight_decay=0.0)
    use_critic = cfg.method != "grpo"
    critic = Critic(sft) if use_critic else None
    critic_opt = torch.optim.AdamW(critic.parameters(), lr=2 * cfg.actor_lr, weight_decay=0.0) if use_critic else None
    eps_low = 0.2
    eps_high = 0.28 if cfg.clip_higher else 0.2                # clip-higher widens the upper side only
    group = cfg.group_size if cfg.group_sampling else 1
    metrics = {"value_pretrain_ev": pretrain_value(critic, critic_opt, sft, cfg, rng, gen)
               if use_critic and cfg.value_pretrain else [], "iters": []}
    for it in range(cfg.iters):
        t0 = time.time()
        policy.eval()
        with torch.no_grad():
            batch = rollout(policy, sample_prompts(cfg.rollouts // group, rng), group, gen)
            old_logp, _ = response_logp(policy, batch)
            ref_logp, _ = response_logp(reference, batch)
            values = response_values(critic, batch) if use_critic else None
        mask, lengths = batch["mask"], batch["resp_len"]
        t_rollout = time.time() - t0
        # advantages
        if cfg.method == "grpo":
            adv = group_advantages(batch["reward"], group)[:, None] * mask
            returns, lam_policy = None, torch.ones(len(lengths))
        else:
            adv, returns, lam_policy = advantages_and_returns(batch["token_rewards"], values, mask, lengths, cfg)
        true_adv, first_wrong = structural_advantage(batch)
        sel = mask.bool()
        corr = float(np.corrcoef(adv[sel].numpy(), true_adv[sel].numpy())[0, 1]) \
            if adv[sel].std() > 0 and true_adv[sel].std() > 0 else float("nan")
        failed = (first_wrong >= 0) & (batch["reward"] == 0)
        mass = [float(-adv[i, first_wrong[i]] / adv[i][mask[i].bool()].abs().sum().clamp(min=1e-9)) for i in
                torch.nonzero(failed).flatten().tolist()]
        # update: one epoch of minibatches
        policy.train()
        stats = {k: [] for k in ("clip_low", "clip_high", "approx_kl", "kl_ref", "entropy", "value_loss")}
        for rows in torch.randperm(len(lengths), generator=gen).split(cfg.minibatch):
            logp, entropy = response_logp(policy, batch, rows)
            m = mask[rows]
            ratio = torch.exp(logp - old_logp[rows])
            a = adv[rows]
            loss = aggregate(clipped_surrogate(ratio, a, eps_low, eps_high), m, cfg.token_level)
            k3 = k3_kl(logp, ref_logp[rows])
            if cfg.method == "grpo" and cfg.kl_coef > 0:
                loss = loss + cfg.kl_coef * aggregate(k3, m, cfg.token_level)
            if cfg.lm_loss:
                loss = loss + cfg.lm_coef * positive_lm_loss(logp, m, batch["reward"][rows])
            actor_opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
            actor_opt.step()
            with torch.no_grad():
                on = m.bool()
                stats["clip_low"].append(float(((ratio < 1 - eps_low) & (a < 0))[on].float().mean()))
                stats["clip_high"].append(float(((ratio > 1 + eps_high) & (a > 0))[on].float().mean()))
                stats["approx_kl"].append(float(((ratio - 1) - torch.log(ratio))[on].mean()))
                stats["kl_ref"].append(float(k3[on].mean()))
                stats["entropy"].append(float(entropy[on].mean()))
            if use_critic:
                v = response_values(critic, batch, rows)
                value_loss = aggregate(0.5 * (v - returns[rows]) ** 2, m, True)
                critic_opt.zero_grad()
                value_loss.backward()
                torch.nn.utils.clip_grad_norm_(critic.parameters(), 1.0)
                critic_opt.step()
                stats["value_loss"].append(float(value_loss.detach()))
        policy.eval()
        ops = torch.tensor([len(o) for _, o in batch["problems"]])
        row = {"iter": it + 1, "reward": float(batch["reward"].mean()),
               "reward_by_bucket": {b: float(batch["reward"][(ops >= lo) & (ops <= hi)].mean())
                                    for b, (lo, hi) in BUCKETS.items()},
               "response_length": float(lengths.float().mean()),
               "explained_variance": explained_variance(values, returns, mask) if use_critic else float("nan"),
               "value_bias_first_token": float((values[:, 0] - batch["reward"]).mean()) if use_critic else float("nan"),
               "adv_mean": float(adv[sel].mean()), "adv_std": float(adv[sel].std()),
               "lambda_policy": [float(lam_policy.min()), float(lam_policy.mean()), float(lam_policy.max())],
               "same_reward_groups": float((batch["reward"].view(-1, group).std(1) == 0).float().mean()) if group > 1 else float("nan"),
               "adv_true_corr": corr, "first_wrong_mass": float(np.mean(mass)) if mass else float("nan"),
               "seconds_rollout": t_rollout, "seconds_update": time.time() - t0 - t_rollout,
               **{k: float(np.mean(v)) if v else float("nan") for k, v in stats.items()}}
        if (it + 1) % max(1, cfg.iters // 5) == 0 or it + 1 == cfg.iters:
            row["test_accuracy"] = greedy_accuracy(policy, test_problems)
        metrics["iters"].append(row)
        test = f" | greedy {row['test_accuracy']}" if "test_accuracy" in row else ""
        log(f"{cfg.method} iter {it + 1}/{cfg.iters} | reward {row['reward']:.3f} | len {row['response_length']:.1f} | "
            f"EV {row['explained_variance']:.2f} | adv~true r {corr:.2f} | clip {row['clip_low']:.3f}/{row['clip_high']:.3f} | "
            f"kl_ref {row['kl_ref']:.4f} | {row['seconds_rollout']:.1f}+{row['seconds_update']:.1f}s{test}")
    return metrics, policy, critic, batch


# -----------------------------------------------------------------------------
# The experiment

PAPER_AIME = {"ppo": 5, "grpo": None, "vapo": 60, "vapo-value_pretrain": 11, "vapo-decoupled_gae": 33,
              "vapo-adaptive_lambda": 45, "vapo-clip_higher": 46, "vapo-token_level": 53, "vapo-lm_loss": 54,
              "vapo-group_sampling": 55}


@dataclass
class Experiment:
    iters: int = 30               # RL iterations per run
    seeds: int = 1
    ablations: bool = False       # also VAPO without each of its seven components
    sft_steps: int = 3000         # warm-start steps on the noisy teacher (cached in out_dir)
    n_layer: int = 2              # small and fast: a 2-layer, 64-wide GPT with a character vocabulary
    n_embd: int = 64
    n_test: int = 64              # greedy test problems per length bucket
    out_dir: str = "out/vapo"


def runs_of(exp):
    runs = [("ppo", method_config("ppo")), ("grpo", method_config("grpo")), ("vapo", method_config("vapo"))]
    if exp.ablations:
        runs += [(f"vapo-{c}", method_config("vapo", **{c: False})) for c in COMPONENTS]
    return runs


def token_picture(critic, batch, group):
    """One failed rollout: critic values and the advantages each estimator assigns with that critic."""
    failed = torch.nonzero(batch["reward"] == 0).flatten()
    if len(failed) == 0 or critic is None:
        return None
    i = int(failed[0])
    with torch.no_grad():
        values = response_values(critic, batch)
    n = int(batch["resp_len"][i])
    lam = lambda x: torch.full((len(batch["reward"]),), x, dtype=values.dtype)  # noqa: E731
    rows = {"tokens": task.decode(batch["tokens"][i, :n].tolist()), "values": values[i, :n].tolist(),
            "prompt": task.prompt_of(*batch["problems"][i])}
    for name, lam_vec in (("lambda 0.95", lam(0.95)), ("lambda 1 (Monte Carlo)", lam(1.0)),
                          ("length-adaptive", adaptive_lambda(batch["resp_len"], 1.25).to(values.dtype))):
        rows[name] = gae(batch["token_rewards"], values, batch["mask"], lam_vec)[0][i, :n].tolist()
    rows["GRPO (group-normalised)"] = [float(group_advantages(batch["reward"], group)[i])] * n
    rows["true (structural)"] = structural_advantage(batch)[0][i, :n].tolist()
    return rows


def report(results, picture, exp):
    out = Path(exp.out_dir)
    names = list(results)

    def greedy(name):
        return float(np.mean([np.mean(list(m["iters"][-1]["test_accuracy"].values())) for m in results[name]]))

    def sampled(name, bucket=None):
        """Mean reward of the sampled rollouts (temperature 1, fresh problems) over the last 5 iterations."""
        return float(np.nanmean([r["reward"] if bucket is None else r["reward_by_bucket"][bucket]
                                 for m in results[name] for r in m["iters"][-5:]]))

    def mean_of(name, key):
        values = [r[key] for m in results[name] for r in m["iters"]]
        return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
    start = float(np.mean([r["reward"] for m in results[names[0]] for r in m["iters"][:1]]))
    lines = ["| run | sampled reward (last 5 iters) | " + " | ".join(f"ops {b}" for b in BUCKETS) +
             " | greedy accuracy | final EV | adv~true corr | adv mass on first wrong step | delta vs VAPO | paper AIME24 (delta) |",
             "|---|---|" + "---|" * len(BUCKETS) + "---|---|---|---|---|---|"]
    for n in names:
        paper = PAPER_AIME.get(n)
        delta = f"{sampled(n) - sampled('vapo'):+.3f}" if "vapo" in results else "-"
        pd = "-" if paper is None else f"{paper} ({paper - 60:+d})"
        ev = [m["iters"][-1]["explained_variance"] for m in results[n]]
        ev = f"{np.mean(ev):.2f}" if np.isfinite(ev).all() else "-"
        lines.append(f"| {n} | {sampled(n):.3f} | " + " | ".join(f"{sampled(n, b):.3f}" for b in BUCKETS) +
                     f" | {greedy(n):.3f} | {ev} | {mean_of(n, 'adv_true_corr'):.2f} | "
                     f"{mean_of(n, 'first_wrong_mass'):.2f} | {delta} | {pd} |")
    lines.append(f"\nSampled reward of the SFT policy (first iteration's rollouts): {start:.3f}")
    sft_acc = results[names[0]][0].get("sft_accuracy")
    if sft_acc:
        lines.append(f"SFT start: greedy accuracy {np.mean(list(sft_acc.values())):.3f} ("
                     + ", ".join(f"ops {k}: {v:.3f}" for k, v in sft_acc.items()) + "): once SFT has learned, greedy "
                     "decoding picks the teacher's 90% majority at every step and is near 1, so the sampled reward is "
                     "the measure that moves")
    lines.append(f"{exp.iters} iterations x 256 rollouts, {exp.seeds} seed(s); greedy accuracy on "
                 f"{exp.n_test} held-out problems per bucket. adv~true corr: Pearson correlation over response tokens "
                 "of the method's advantage with the structural true advantage; mass: share of a failed rollout's "
                 "|advantage| that sits, negative, on its first wrong step.")
    table = "\n".join(lines)
    train.write_results(out, table, {"config": dataclasses.asdict(exp), "runs": results, "token_picture": picture})

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), dpi=90)
    ax = axes[0, 0]
    for i, n in enumerate(names):
        for m in results[n]:
            pts = [(r["iter"], np.mean(list(r["test_accuracy"].values()))) for r in m["iters"] if "test_accuracy" in r]
            ax.plot(*zip(*pts), "o-", color=f"C{i % 10}", ms=3, label=n if m is results[n][0] else None)
            ax.plot([r["iter"] for r in m["iters"]], [r["reward"] for r in m["iters"]], color=f"C{i % 10}", lw=0.6, alpha=0.5)
    ax.set_xlabel("iteration")
    ax.set_title("greedy test accuracy (dots) and sampled reward (thin)")
    ax.legend(fontsize=7)
    ax = axes[0, 1]
    for i, n in enumerate(names):
        if n == "grpo":
            continue
        for m in results[n]:
            ax.plot([r["iter"] for r in m["iters"]], [r["explained_variance"] for r in m["iters"]], color=f"C{i % 10}",
                    label=n if m is results[n][0] else None)
    ax.set_title("critic explained variance")
    ax.set_xlabel("iteration")
    ax.legend(fontsize=7)
    ax = axes[1, 0]
    if picture:
        x = np.arange(len(picture["tokens"]))
        for key in ("lambda 0.95", "length-adaptive", "lambda 1 (Monte Carlo)", "GRPO (group-normalised)", "true (structural)"):
            ax.plot(x, picture[key], "o-", ms=3, label=key)
        ax.plot(x, picture["values"], "k--", lw=1, label="critic value")
        ax.set_xticks(x, list(picture["tokens"]))
        ax.set_title(f"one failed rollout: {picture['prompt']}")
        ax.legend(fontsize=6)
    ax = axes[1, 1]
    k = np.arange(40)
    ax.plot(k, 0.95 ** k, "k-", label="fixed lambda 0.95")
    for length in (10, 20, 35):
        lam = max(0.0, 1 - 1 / (1.25 * length))
        ax.plot(k[:length], lam ** k[:length], "--", label=f"adaptive, l={length} (lambda {lam:.2f})")
    ax.set_xlabel("k")
    ax.set_title("GAE weight on delta_{t+k}")
    ax.legend(fontsize=7)
    for a in axes.ravel():
        a.grid(alpha=0.3)
    fig.tight_layout()
    train.save_figure(fig, out / "vapo.png")
    print("\n" + table + f"\n\nwrote {out / 'results.json'}, {out / 'results.md'}, {out / 'vapo.png'}")


def test_problems(n, seed=12345):
    rng = np.random.default_rng(seed)
    return {b: [task.random_problem(int(rng.integers(lo, hi + 1)), rng) for _ in range(n)] for b, (lo, hi) in BUCKETS.items()}


def run_experiment(exp):
    sft = sft_model(exp)
    tests = test_problems(exp.n_test)
    sft_acc = greedy_accuracy(sft, tests)
    print("SFT greedy accuracy: " + ", ".join(f"ops {k}: {v:.3f}" for k, v in sft_acc.items()), flush=True)
    results, picture = {}, None
    for name, cfg in runs_of(exp):
        results[name] = []
        for seed in range(exp.seeds):
            cfg = dataclasses.replace(cfg, iters=exp.iters, seed=seed)
            metrics, policy, critic, batch = train_method(cfg, sft, tests, log=lambda s: print(s, flush=True))
            metrics["sft_accuracy"] = sft_acc
            results[name].append(metrics)
            if name == "vapo" and seed == 0:
                picture = token_picture(critic, batch, cfg.group_size)
    return results, picture


def bench():
    """vapo_iter_seconds: one VAPO iteration (256 rollouts, actor and critic updates), default model."""
    exp = Experiment(sft_steps=1)
    torch.manual_seed(0)
    sft = train.GPT(train.GPTConfig(vocab_size=len(task.VOCAB), block_size=BLOCK, n_layer=exp.n_layer, n_head=4,
                                    n_embd=exp.n_embd)).eval()
    cfg = method_config("vapo", iters=3, value_pretrain=False)
    metrics, *_ = train_method(cfg, sft, {"2-5": []}, log=lambda s: None)
    times = [r["seconds_rollout"] + r["seconds_update"] for r in metrics["iters"][1:]]
    return {"vapo_iter_seconds": float(np.median(times))}


def run(argv):
    try:
        exp = train.parse_args(argv, Experiment, __doc__)
        if min(exp.iters, exp.seeds, exp.sft_steps, exp.n_layer, exp.n_test) < 1 or exp.n_embd % 4:
            raise train.ConfigError("--iters, --seeds, --sft_steps, --n_layer, --n_test >= 1; --n_embd a multiple of 4")
    except train.ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    results, picture = run_experiment(exp)
    report(results, picture, exp)
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
