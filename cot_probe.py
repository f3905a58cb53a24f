"""
Does a chain of thought compute, or only imitate the form of reasoning? Probes on small GPTs.

arXiv:2506.02878 ("Chain of Thought imitates the form of reasoning", a 3-page position paper, withdrawn 6 June 2025)
argues, without experiments, that CoT makes a model imitate the form of reasoning rather than reason, and predicts
poor generalisation to structurally novel problems. We test it on GPTs trained from scratch, whose chains we control:
early answering and inserted mistakes (Lanham et al. 2023, arXiv:2307.13702), filler (Pfau et al. 2024,
arXiv:2404.15758), invalid chains (Wang et al. 2023, arXiv:2212.10001; Stechly et al. 2025, arXiv:2505.13775), probes.

The task (vapo.py imports it): chain arithmetic mod 7 left to right, + - * with operands 1..6, so a wrong step is never
undone: `3+5*2-6=` -> `1;2;3;>3$`. Conditions (same model, data, steps; loss on the response): nocot `>3$`; cot
`1;2;3;>3$`; form `4;0;5;>3$` (random steps); foreign (another problem's chain); shuffled (the steps reordered); filler
`......>3$`. Trained on 1-8 operations, tested on 1-12 (arXiv:2305.15408: bounded depth needs the chain).

Pre-registered decision rule (written before the first run; printed with the numbers):
- "form imitation" is supported when form-only accuracy is within 10 points of correct CoT and at
  least 20 points above no-CoT, the correct-CoT model's truth-rate exceeds its follow-rate after
  inserted mistakes, and at least 20% of its correct answers come with an invalid chain;
- "the chain is computation" is supported when correct CoT beats both form-only and no-CoT by at least
  20 points, its follow-rate exceeds 0.5 and its truth-rate, and its early-answering AOC exceeds 0.5;
- anything else is reported as mixed. Length generalisation is reported separately.

Revision, 2026-11-29 (issue 14; the rule above stays as written, and both verdicts are printed):
- AOC clause: the correct-CoT model's AOC exceeds the form-only model's by at least 0.2. Reason: AOC counts any change
  of the answer under truncation; the form-only model, whose chain carries no information, scored above the old
  threshold of 0.5 on the first (mod 10) task (CHANGELOG.md).
- Third edition (lab.py's one rule): every clause above is judged by its 95% t-interval over seeds (Welch between
  conditions, which saw different data; paired within the cot model), and a set of clauses holds when every clause
  is supported. Printed: the form-imitation clauses (the paper's claim), the computation clauses with either AOC clause
  (the alternative), and the length prediction; "mixed" reads inconclusive. At least 3 seeds.
- No verdict unless the positive control passes: correct CoT at least 20 points above no-CoT at 2-8 operations, by
  the same rule. If the chain model did not learn the task, its probes say nothing about chains.

Revision, third edition (issue 25; the rule's clauses stay as written):
- A second regime, where the chain could be decoration: one operation, a 2 x 64 model, where no-CoT answers well
  above chance. In the first regime no-CoT is at chance even for one operation, so "truth-rate > follow-rate" and
  "form-only >= no-CoT + 20" could not come out the other way. Both regimes are judged by the same rule; in range
  is 2..max_ops (1 alone in the one-operation regime), "long" the next four lengths.
- The control now asks only what it is for: the chain model learned the task (correct CoT at least 20 points above
  chance in range). "Above no-CoT" is a clause of the rule, and in the shallow regime it may fail.
- Form without content, a claim of its own: on longer problems than trained, at least 80% of the chain model's own
  chains are well formed (one one-digit step per operation, then '>' and an answer), and the share whose every value
  is right is at least 20 points lower. That is what the paper predicts under novelty.

Training recipe, 2026-11-29, the same for every condition. With 2-8 operations drawn uniformly the 2 x 64 chain model
stayed at chance within the default budget; weight decay, batch, learning rate, RoPE base, depth, width 128: no help
(CHANGELOG.md has the search). One operation is learned quickly, the operand's position for each length apart. So:
1-operation problems for the first 10% of the steps, then 1-8 operations with P(n) ~ 1/n (as many steps per length),
width 32 (it learns the chain sooner than 2 x 64). Batches: padded to the longest.

    python cot_probe.py                       # nocot, cot, form; 3 seeds; the first regime; 1 thread
    python cot_probe.py --shallow=true        # and the shallow regime: docs/cot_probe.md (reuses the first's rows)
    python cot_probe.py --conditions=nocot,cot,form,foreign,shuffled,filler   # all six conditions; reuses the rows
    python cot_probe.py --quick=true          # nocot and cot, 1 seed, 600 steps, the first regime only
"""
import dataclasses, json, re, sys
from dataclasses import dataclass
from typing import ClassVar
from pathlib import Path

import numpy as np
import torch

import lab
import train

# ----------------------------------------------------------------------------- The task (vapo.py imports it)
OPS = "+-*"
MODULUS = 7   # a prime: with operands 1..6 every step is invertible, so a wrong step can never be undone
VOCAB = "0123456789+-*=;>$."
STOI = {c: i for i, c in enumerate(VOCAB)}
PAD = STOI["$"]

def apply_op(a, op, b):
    return (a + b) % MODULUS if op == "+" else (a - b) % MODULUS if op == "-" else (a * b) % MODULUS

def running_values(digits, ops):
    """Left-to-right running results: 3+5*2-6 -> [1, 2, 3] (mod 7)."""
    values = [digits[0]]
    for op, d in zip(ops, digits[1:]):
        values.append(apply_op(values[-1], op, d))
    return values[1:]

def random_problem(n_ops, rng):
    """A start value in 0..6, then n_ops operations whose operands are 1..6 (never 0, so * is invertible)."""
    first, operands = int(rng.integers(0, MODULUS)), [int(d) for d in rng.integers(1, MODULUS, n_ops)]
    return [first] + operands, [OPS[i] for i in rng.integers(0, 3, n_ops)]
def problems(n_ops, n, rng):
    return [random_problem(n_ops, rng) for _ in range(n)]

def prompt_of(digits, ops):
    return str(digits[0]) + "".join(op + str(d) for op, d in zip(ops, digits[1:])) + "="
def chain_text(values):
    return "".join(f"{v};" for v in values)

def response(digits, ops, condition, rng):
    """The training response for one problem under one condition."""
    values = running_values(digits, ops)
    chains = {"nocot": lambda: "", "cot": lambda: chain_text(values),
              "form": lambda: chain_text(rng.integers(0, MODULUS, len(values)).tolist()),  # random steps
              "foreign": lambda: chain_text(running_values(*random_problem(len(ops), rng))),  # another problem's
              "shuffled": lambda: chain_text(rng.permutation(values).tolist()),
              "filler": lambda: "." * (2 * len(values))}
    return chains[condition]() + f">{values[-1]}$"
CONDITIONS = ("nocot", "cot", "form", "foreign", "shuffled", "filler")

def encode(text):
    return [STOI[c] for c in text]
def decode(ids):
    return "".join(VOCAB[i] for i in ids)
def pack_batch(pairs, length):
    """(x, y), (B, length), from (prompt, response) texts, right-padded with '$'; targets -1 but on the response."""
    x, y = np.full((len(pairs), length), PAD, dtype=np.int64), np.full((len(pairs), length), -1, dtype=np.int64)
    for b, (prompt, reply) in enumerate(pairs):
        p, seq = encode(prompt), encode(prompt + reply)
        x[b, :len(seq) - 1] = seq[:-1]
        y[b, len(p) - 1:len(seq) - 1] = seq[len(p):]
    return torch.from_numpy(x), torch.from_numpy(y)

def length_weights(max_ops, held_out=0):
    """P(n operations) for n = 1 .. max_ops after the warm-up: never the held-out length, the rest as below."""
    # P(n) = (1/n) / sum_m 1/m over the trained lengths m, so that every n gives about as many steps
    w = np.array([0.0 if n == held_out else 1 / n for n in range(1, max_ops + 1)])
    return w / w.sum()

def training_batch(condition, batch_size, rng, warm=False, max_ops=8, held_out=0):
    """Fresh problems with the condition's responses, padded to the longest: 1 operation while `warm` (the first
    10% of training: one step's lookup table), then 1 to max_ops operations with P(n) ~ 1/n (held_out: never)."""
    pairs, weights = [], length_weights(max_ops, held_out)
    for _ in range(batch_size):
        n_ops = 1 if warm else int(rng.choice(max_ops, p=weights)) + 1
        digits, ops = random_problem(n_ops, rng)
        pairs.append((prompt_of(digits, ops), response(digits, ops, condition, rng)))
    return pack_batch(pairs, max(len(p) + len(r) for p, r in pairs) - 1)

# ------------------------------------------------------------------------ The probes, on a greedy `complete(texts)`
def model_completer(model, max_new=30):
    """Greedy string completion with a trained GPT, one batch with left padding, cut at the first '$'."""
    def complete(texts):
        room = model.config.block_size - max(len(t) for t in texts)
        new, _ = model.generate_batch([encode(t) for t in texts], min(max_new, room), temperature=0)
        return [decode(row).split("$")[0] + "$" for row in new.tolist()]
    return complete

def read_answer(continuation):
    """The digit after the last '>' (None if there is none)."""
    parts = continuation.split("$")[0].rsplit(">", 1)
    return int(parts[1]) if len(parts) == 2 and len(parts[1]) == 1 and parts[1].isdigit() else None

def read_chain(continuation):
    """The step values written before '>' (digits between ';'), None for a step that is not one digit."""
    return [int(s) if len(s) == 1 and s.isdigit() else None for s in continuation.split(">")[0].split(";")[:-1]]

def chain_units(body):
    """The steps of a response before '>': `v;` in a chain, a pair of dots in filler (`..`), in order."""
    return re.findall(r"[^;.>]*;|\.\.?", body.split(">")[0])

def accuracy_by_length(complete, lengths, n, rng):
    """Per number of operations: the share of correct answers, and of those the share with an invalid chain."""
    acc, invalid = {}, {}
    for n_ops in lengths:
        ps = problems(n_ops, n, rng)
        outs = complete([prompt_of(d, o) for d, o in ps])
        correct = [read_answer(c) == running_values(d, o)[-1] for c, (d, o) in zip(outs, ps)]
        bad_chain = [read_chain(c) != running_values(d, o) for c, (d, o) in zip(outs, ps)]
        acc[n_ops] = float(np.mean(correct))
        invalid[n_ops] = float(np.mean([b for c, b in zip(correct, bad_chain) if c])) if any(correct) else 0.0
    return acc, invalid

def early_answering(complete, n_ops, n, rng):
    """Lanham et al.: keep the first k of the model's own steps (k = 0..n; `v;` in a chain, `..` in filler), force
    '>', compare with the full-chain answer. Returns the agreement curve and AOC = mean over k < n of (1 - agreement):
    0 when the chain does not matter, about 6/7 for a model that answers the chain's last value."""
    prompts = [prompt_of(d, o) for d, o in problems(n_ops, n, rng)]
    full = complete(prompts)
    units, final = [chain_units(c) for c in full], [read_answer(c) for c in full]
    curve = []
    for k in range(n_ops + 1):
        answers = [read_answer(">" + c) for c in complete([p + "".join(u[:k]) + ">" for p, u in zip(prompts, units)])]
        curve.append(float(np.mean([a == f for a, f in zip(answers, final)])))
    # AOC = (1/n) sum_{k=0}^{n-1} (1 - agreement_k): the area over the early-answering curve (Lanham et al.)
    return curve, float(np.mean([1 - c for c in curve[:-1]]))

def inserted_mistake(complete, n_ops, n, rng):
    """A wrong value at step k (uniform in 1..n-1) of the TRUE chain; the model writes the rest and answers. Returns
    (follow-rate: the computation continued from the wrong value, truth-rate: the true answer)."""
    texts, targets = [], []
    for digits, ops in problems(n_ops, n, rng):
        values = running_values(digits, ops)
        k = int(rng.integers(0, max(1, n_ops - 1)))  # not the last step, unless it is the only one
        wrong = (values[k] + int(rng.integers(1, MODULUS))) % MODULUS
        texts.append(prompt_of(digits, ops) + chain_text(values[:k] + [wrong]))   # targets: continued from it, truth
        targets.append(((running_values([wrong] + digits[k + 2:], ops[k + 1:]) or [wrong])[-1], values[-1]))
    answers = [read_answer(c) for c in complete(texts)]
    return tuple(float(np.mean([a == target[i] for a, target in zip(answers, targets)])) for i in (0, 1))

def inserted_chain(complete, n_ops, n, rng, kind):
    """Give a complete chain and '>': 'foreign' (another problem's), 'shuffled' (the true steps reordered) or
    'filler' (dots). Returns (share answering the truth, share answering the chain's last value)."""
    texts, targets = [], []
    for digits, ops in problems(n_ops, n, rng):
        values = running_values(digits, ops)
        chain = (running_values(*random_problem(n_ops, rng)) if kind == "foreign" else
                 rng.permutation(values).tolist() if kind == "shuffled" else None)
        texts.append(prompt_of(digits, ops) + ("." * (2 * n_ops) if chain is None else chain_text(chain)) + ">")
        targets.append((values[-1], None if chain is None else chain[-1]))
    answers = [read_answer(">" + c) for c in complete(texts)]
    truth, last = (float(np.mean([a == target[i] for a, target in zip(answers, targets)])) for i in (0, 1))
    return truth, last if kind != "filler" else float("nan")

def failure_modes(complete, n_ops, n, rng, longest=8):
    """How the model's own chain goes on n_ops operations: shares right to the end, stopping early with every step
    right (of all: stopping after exactly `longest`, the longest trained), first wrong at a trained step or later."""
    ps, m = problems(n_ops, n, rng), longest
    modes = {"right": 0, "stops early": 0, f"stops after {m}": 0, f"first wrong step 1-{m}": 0,
             f"first wrong step {m + 1}+": 0}
    for out, (d, o) in zip(complete([prompt_of(d, o) for d, o in ps]), ps):
        chain, values = read_chain(out), running_values(d, o)
        wrong = [i for i, (c, v) in enumerate(zip(chain, values)) if c != v]
        key = (f"first wrong step 1-{m}" if wrong[0] < m else f"first wrong step {m + 1}+") if wrong else \
            "stops early" if len(chain) < n_ops else "right" if len(chain) == n_ops else f"first wrong step {m + 1}+"
        modes[key] += 1 / n
        modes[f"stops after {m}"] += (len(chain) == m and not wrong) / n
    return modes

def form_and_content(complete, lengths, n, rng):
    """The model's own chain on each number of operations: the share that keeps the form (one one-digit step per
    operation, then '>' and a one-digit answer: a chain that stops early has the form of a shorter problem) and the
    share that keeps the content too (every step right). Returns (form, content), each the mean over `lengths`."""
    form, content = [], []
    for n_ops in lengths:
        ps = problems(n_ops, n, rng)
        for out, (d, o) in zip(complete([prompt_of(d, o) for d, o in ps]), ps):
            chain = read_chain(out)
            form.append(len(chain) == n_ops and None not in chain and read_answer(out) is not None)
            content.append(form[-1] and chain == running_values(d, o))
    return float(np.mean(form)), float(np.mean(content))

def step_accuracy_given_prefix(complete, n_ops, n, rng):
    """Teacher forcing: for each step j, the prompt and the TRUE chain up to step j-1 are given and the model
    writes one step. Returns per step j = 1..n_ops (share right, share that writes '>' there, i.e. stops)."""
    ps, right, stops = problems(n_ops, n, rng), [], []
    for j in range(n_ops):
        outs = complete([prompt_of(d, o) + chain_text(running_values(d, o)[:j]) for d, o in ps])
        right.append(float(np.mean([(read_chain(c) or [None])[0] == running_values(d, o)[j]
                                    for c, (d, o) in zip(outs, ps)])))
        stops.append(float(np.mean([c.startswith(">") for c in outs])))
    return right, stops

def linear_probe_accuracy(features, labels, n_train, steps=300, seed=0):
    """Held-out accuracy of a logistic regression (7 classes) trained on the first n_train rows (chance 1/7)."""
    torch.manual_seed(seed)
    X, y = (features - features[:n_train].mean(0)) / (features[:n_train].std(0) + 1e-6), torch.as_tensor(labels)
    opt = torch.optim.Adam((probe := torch.nn.Linear(X.size(1), MODULUS)).parameters(), lr=0.05, weight_decay=1e-3)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(probe(X[:n_train]), y[:n_train]).backward()
        opt.step()
    return float((probe(X[n_train:]).argmax(1) == y[n_train:]).float().mean())

def probe_running_values(model, condition, n_ops, n, rng, step=3):
    """Linear probes on the hidden states of the condition's own training text (n_ops operations), each read
    where its label is NOT in the input: the final value at '=' (before any chain; every model), and the value
    of step `step` and of the last step at the position just before the chain's slot for it (chain models).
    The control reads the last operand at '=', one token back in the input: it must be readable."""
    ps = problems(n_ops, n, rng)
    texts = [prompt_of(d, o) + response(d, o, condition, rng) for d, o in ps]
    with torch.no_grad():
        H = model.hidden(torch.tensor([encode(t) for t in texts]))  # (n, T, n_embd): one length per n_ops
    values, last_operand = np.array([running_values(d, o) for d, o in ps]), np.array([d[-1] for d, _ in ps])
    eq = 2 * n_ops + 1                                               # the '=' in `d op d ... op d=`
    probes = {"control: last operand at '='": (eq, last_operand), "final value at '='": (eq, values[:, -1])}
    if condition != "nocot":  # step k is written at eq + 2k - 1: read it one position before
        probes[f"step {step}, before it is written"] = (eq + 2 * step - 2, values[:, step - 1])
        probes["last step, before it is written"] = (eq + 2 * n_ops - 2, values[:, -1])
    return {name: linear_probe_accuracy(H[:, pos], labels, int(0.7 * n)) for name, (pos, labels) in probes.items()}

# ----------------------------------------------------------------------------- The experiment
@dataclass
class Experiment:
    conditions: str = "nocot,cot,form"   # training conditions: the rule's three; all six: add foreign,shuffled,filler
    seeds: int = 3                # seeds 0 .. seeds - 1: models per condition (a verdict needs 3)
    steps: int = 3000             # training steps per model (batch 64), enough for the curriculum to teach the chain
    batch_size: int = 64
    n_layer: int = 2              # on the first (mod 10) task 2 x 64 learned faster per second than 4 x 128
    n_embd: int = 32              # 2 x 32 learned the chain sooner than 2 x 64
    max_ops: int = 8              # trained on 1 .. max_ops operations; the rule reads 2 .. max_ops, "long" the next 4
    held_out: int = 0             # a length in 2 .. max_ops never trained on (0: none); WORKSHOP K3's question
    shallow: bool = False         # then the shallow regime too (SHALLOW: no-CoT can answer): docs/cot_probe.md's run
    shallow_steps: int = 1500     # training steps per model in the shallow regime
    n_eval: int = 200             # problems per probe and length
    num_threads: int = 1          # CPU threads (results/cot_probe.json: 1)
    quick: bool = False           # a short version of the default run (see QUICK); flags given still win
    out_dir: str = "out/cot_probe"
    # the shallow regime: the settings above, but one operation and twice the width (no-CoT learns it)
    SHALLOW: ClassVar[dict] = dict(max_ops=1, n_embd=64, shallow=False)
    QUICK: ClassVar[dict] = dict(conditions="nocot,cot", seeds=1, steps=600, n_eval=40, out_dir="out/cot_probe_quick")
    QUICK_NOTE: ClassVar[str] = "quick run (nocot, cot; 1 seed x 600 steps): no chain learned yet; the full run decides"

    def validate(self):  # lab.parse_args calls it
        if bad := [c for c in self.conditions.split(",") if c not in CONDITIONS]:
            raise lab.ConfigError(f"unknown condition '{bad[0]}'; choose from: {', '.join(CONDITIONS)}")
        if min(self.seeds, self.steps, self.batch_size, self.n_layer, self.num_threads) < 1 or self.n_eval < 20 \
                or self.n_embd % 8 or not 1 <= self.max_ops <= 10 or self.held_out not in (0, *range(2, self.max_ops)):
            raise lab.ConfigError("seeds, steps, batch_size, n_layer, num_threads >= 1; n_eval >= 20; "
                                    "n_embd % 8 == 0; max_ops in 1..10 (max_ops + 4 fits 64 tokens); "
                                    "held_out 0 or in 2..max_ops - 1")

def regimes(exp):
    """The experiment's regimes: exp itself, then (exp.shallow) the shallow one."""
    return [exp] + [dataclasses.replace(exp, **exp.SHALLOW, steps=exp.shallow_steps)] * exp.shallow

def regime_name(exp):
    return f"{'1 op' if exp.max_ops == 1 else f'1-{exp.max_ops} ops'}, {exp.n_layer}x{exp.n_embd}"

def lengths(max_ops):
    """(the rule's lengths: 2 .. max_ops, or 1 alone when max_ops is 1; long: the next four)."""
    return list(range(min(2, max_ops), max_ops + 1)), list(range(max_ops + 1, max_ops + 5))

def length_labels(max_ops):
    """lengths(max_ops) as text for tables and claims: "2-8" and "9-12", or "1" and "2-5"."""
    return (f"{ops[0]}-{ops[-1]}" if len(ops) > 1 else f"{ops[0]}" for ops in lengths(max_ops))

def train_condition(condition, seed, exp):
    torch.manual_seed(seed)
    model = train.GPT(train.GPTConfig(vocab_size=len(VOCAB), block_size=64, n_layer=exp.n_layer, n_head=4,
                                      n_embd=exp.n_embd))
    rng, step = np.random.default_rng(1000 + seed), iter(range(exp.steps))   # the first 10% of steps: warm
    lab.fit(model, lambda: training_batch(condition, exp.batch_size, rng, warm=next(step) < exp.steps // 10,
                                          max_ops=exp.max_ops, held_out=exp.held_out), exp.steps, learning_rate=3e-3,
            name=f"{condition} seed {seed}")
    return model

def evaluate(model, condition, exp, seed):
    rng, complete, n = np.random.default_rng(seed), model_completer(model), exp.n_eval
    in_range, long = [k for k in lengths(exp.max_ops)[0] if k != exp.held_out], lengths(exp.max_ops)[1]
    probe_ops = min(6, exp.max_ops)  # the probes' problems: 6 operations (1 in the one-operation regime)
    acc, invalid = accuracy_by_length(complete, sorted({1, *in_range, *long, exp.held_out} - {0}), n, rng)
    row = {"condition": condition, "seed": seed, "accuracy": acc,
           "in_range": float(np.mean([acc[k] for k in in_range])), "long": float(np.mean([acc[k] for k in long])),
           "invalid_chain_share_of_correct": float(np.mean([invalid[k] for k in in_range]))}
    if exp.held_out:
        row["held_out"] = acc[exp.held_out]
    if condition != "nocot":
        row["early_answering_curve"], row["aoc"] = early_answering(complete, probe_ops, n, rng)
        row["follow_rate"], row["truth_rate"] = inserted_mistake(complete, probe_ops, n, rng)
        for kind in ("foreign", "shuffled", "filler"):
            row[f"{kind}_inserted_truth"], row[f"{kind}_inserted_last"] = inserted_chain(complete, probe_ops, n, rng,
                                                                                         kind)
        row["form_in_range"], row["content_in_range"] = form_and_content(complete, in_range, n // 2, rng)
        row["form_long"], row["content_long"] = form_and_content(complete, long, n // 2, rng)
    if condition == "cot":
        modes = [failure_modes(complete, n_ops, n // 2, rng, exp.max_ops) for n_ops in long]
        row["failure_modes_long"] = {k: float(np.mean([m[k] for m in modes])) for k in modes[0]}
        row["step_accuracy_longest"], row["stop_share_longest"] = step_accuracy_given_prefix(complete, long[-1], n, rng)
        row["step_accuracy_trained"] = step_accuracy_given_prefix(complete, exp.max_ops, n, rng)[0]
    row["linear_probe"] = probe_running_values(model, condition, probe_ops, 3 * n, rng, step=min(3, probe_ops))
    return row

def rule(rows):
    """The decision rule's clauses (module docstring) as lab.py conditions, each judged by its 95% interval: the
    form-imitation clauses, and the computation clauses with the AOC clause as pre-registered and as revised.
    Across conditions the models saw different data (Welch); within the cot model, measures pair by seed."""
    v = lambda c, k: lab.per_seed(rows, k, condition=c)
    across = lambda a, b, k, side, margin: lab.condition(
        lab.difference(v(a, k), v(b, k), paired=False), side, margin, f"{k} {a} - {b}")
    within = lambda k1, k2: lab.condition(
        lab.difference(v("cot", k1), v("cot", k2), paired=True), "above", 0.0, f"cot {k1} - {k2}")
    least = lambda k, floor: lab.condition(
        lab.difference(v("cot", k), floor, paired=True), "above", 0.0, f"cot {k} - {floor:g}")
    imitation = [across("cot", "form", "in_range", "within", 0.10), across("form", "nocot", "in_range", "above", 0.20),
                 within("truth_rate", "follow_rate"), least("invalid_chain_share_of_correct", 0.20)]
    computation = [across("cot", "form", "in_range", "above", 0.20), across("cot", "nocot", "in_range", "above", 0.20),
                   least("follow_rate", 0.5), within("follow_rate", "truth_rate")]
    return {"form imitation": imitation, "the chain computes (AOC as pre-registered)": computation + [
        least("aoc", 0.5)], "the chain computes (AOC as revised 2026-11-29)": computation + [
        across("cot", "form", "aoc", "above", 0.20)]}

def summarise(rows):
    """Per condition: the mean over seeds of every number (dicts, curves element-wise) and the std (0 with one seed)."""
    mean = lambda vals: ({k: mean([v[k] for v in vals]) for k in vals[0]} if isinstance(vals[0], dict)
                         else np.mean(vals, 0).tolist() if isinstance(vals[0], list) else float(np.mean(vals)))
    std = lambda vals: float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
    summary, spread = {}, {}
    for c in dict.fromkeys(r["condition"] for r in rows):
        rs = [r for r in rows if r["condition"] == c]
        summary[c] = {k: mean([r[k] for r in rs]) for k in rs[0] if k not in ("condition", "seed")}
        spread[c] = {k: std([r[k] for r in rs]) if isinstance(v, float) else {j: std([r[k][j] for r in rs]) for j in v}
                     for k, v in rs[0].items() if isinstance(v, float) or isinstance(v, dict) and k != "accuracy"}
    return summary, spread

PAPER = "imitates the form rather than reasons"
CHANCE = 1 / MODULUS

def verdicts(rows, exp):
    """lab.py's verdicts for one regime: the control (the chain model learned the task: correct CoT at least 20
    points above chance in range), the rule's form-imitation clauses (the paper's claim), its computation clauses
    (the alternative), the length prediction, and form without content on longer problems."""
    conditions, command, n, name = {r["condition"] for r in rows}, lab.command("cot_probe", exp), exp.seeds, \
        regime_name(exp)
    if "cot" not in conditions:
        return [], {"passed": False, "text": f"{name}: not run: the positive control needs the cot condition"}
    acc = lambda c, k="in_range": lab.per_seed(rows, k, condition=c)
    in_range, long = length_labels(exp.max_ops)
    gate = lab.control(f"{name}: correct CoT learned the task", lab.condition(
        lab.difference(acc("cot"), CHANCE, paired=True), "above", 0.20, f"cot at {in_range} ops - chance"), n,
        exp.quick)
    out = []
    if {"form", "nocot"} <= conditions:
        for rule_name, clauses in rule(rows).items():
            imitation = rule_name == "form imitation"
            out.append(lab.verdict(f"{name}: " + ("CoT imitates the form of reasoning (all clauses)" if imitation
                                                  else f"{rule_name}: all clauses"),
                                   PAPER if imitation else "the rule's alternative", clauses, gate, n, command,
                                   exp.quick))
    out.append(lab.verdict(f"{name}: CoT fails on longer problems ({long} operations)", "poor generalisation",
                           lab.condition(lab.difference(acc("cot"), acc("cot", "long"), paired=True), "above", 0.20,
                                         f"cot at {in_range} - at {long} ops"), gate, n, command, exp.quick))
    # form without content: on longer problems the chain keeps its form (>= 80% well formed) but not its values
    out.append(lab.verdict(f"{name}: on longer problems ({long} ops) the chain keeps its form, not its content",
                           "form without reasoning under novelty", [
                               lab.condition(lab.difference(acc("cot", "form_long"), 0.8, paired=True), "above", 0.0,
                                             "well-formed share - 0.8"),
                               lab.condition(lab.difference(acc("cot", "form_long"), acc("cot", "content_long"),
                                                            paired=True), "above", 0.20,
                                             "well-formed - right-valued share")], gate, n, command, exp.quick))
    return out, gate

def report(regime_rows):
    """regime_rows: [(exp, rows)] for each regime; one results file for all of them."""
    text, verdict, gates, summaries = [], [], [], {}
    for exp, rows in regime_rows:
        (summary, spread), (v, gate) = summarise(rows), verdicts(rows, exp)
        summaries[regime_name(exp)], verdict, gates = {"mean": summary, "sd": spread}, verdict + v, gates + [gate]
        text += [f"## {regime_name(exp)}", ""] + regime_table(summary, spread, exp) + [
            "", f"positive control: {gate['text']}"] + [lab.verdict_line(x) for x in v] + [""]
        plot(summary, exp, Path(exp.out_dir) / f"cot_probe{'_shallow' * (exp is not regime_rows[0][0])}.png")
    exp, out, text = regime_rows[0][0], Path(regime_rows[0][0].out_dir), "\n".join(text)
    runs = [r for _, rows in regime_rows for r in rows]
    first = summaries[regime_name(exp)]  # "summary" and "spread": the first regime's, as WORKSHOP reads them
    lab.write_results(out, text, {"config": dataclasses.asdict(exp), "runs": runs, "summary": first["mean"],
                                  "spread": first["sd"], "regimes": summaries, "verdict": verdict})
    lab.record("cot_probe", exp, verdict, {**summaries, "control": gates})
    print("\n" + text + f"\nwrote {out / 'results.json'}, {out / 'results.md'}, {out / 'cot_probe.png'}")
    return summaries, verdict, gates

def regime_table(summary, spread, exp):
    in_range, long = length_labels(exp.max_ops)
    pm = lambda sd: f" ± {sd:.2f}" if exp.seeds > 1 else ""
    table = lambda head, cell: ["| condition | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"] + [
        f"| {c} | " + " | ".join(cell(summary[c], spread[c], h) for h in head) + " |" for c in summary]
    cols = {f"acc {in_range} ops": "in_range", f"acc {long} ops": "long", "AOC": "aoc", "follow": "follow_rate",
            "truth (after a mistake)": "truth_rate", "foreign chain: truth": "foreign_inserted_truth",
            "its last": "foreign_inserted_last", "shuffled chain: truth": "shuffled_inserted_truth",
            "filler chain: truth": "filler_inserted_truth", "correct, invalid chain": "invalid_chain_share_of_correct",
            f"well-formed at {long}": "form_long", f"right values at {long}": "content_long",
            **({f"acc {exp.held_out} ops (held out)": "held_out"} if exp.held_out else {})}
    main = lambda s, sd, h: (f"{s['accuracy'][1]:.2f}" if h == "acc 1 op" else "-" if cols[h] not in s or
                             "aoc" not in s and h.startswith("correct") else f"{s[cols[h]]:.2f}" + pm(sd[cols[h]]))
    probe = lambda s, sd, k: (f"{s['linear_probe'][k]:.2f}" + pm(sd["linear_probe"][k])
                              if k in s["linear_probe"] else "-")
    lines = [f"mean ± std over {exp.seeds} seed(s), {exp.steps} steps, {exp.n_eval} problems per probe and length", ""]
    lines += table(["acc 1 op"] * (exp.max_ops > 1) + list(cols), main) + [
        "", "Linear probes, held-out accuracy (chance 1/7), read where the label is not in the input:"]
    lines += table(list(dict.fromkeys(k for c in summary for k in summary[c]["linear_probe"])), probe)
    if "failure_modes_long" in (s := summary.get("cot", {})):
        steps = lambda k: " ".join(f"{v:.2f}" for v in s[k])
        lines += ["", f"Correct CoT on {long} operations, its own chain: " + ", ".join(f"{k} {v:.2f}" + pm(
            spread["cot"]["failure_modes_long"][k]) for k, v in s["failure_modes_long"].items()),
            f"Per-step accuracy, the true chain given up to the step, {lengths(exp.max_ops)[1][-1]} operations: "
            f"{steps('step_accuracy_longest')}; writes '>' instead: {steps('stop_share_longest')}; "
            f"{exp.max_ops} operations: {steps('step_accuracy_trained')}"]
    return lines

def plot(summary, exp, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 3, figsize=(14, 3.8), dpi=90)
    for i, (c, s) in enumerate(summary.items()):  # one colour per condition in every panel
        n_ops = sorted(s["accuracy"])
        ax[0].plot(n_ops, [s["accuracy"][n] for n in n_ops], "o-", ms=3, c=f"C{i}", label=c)
        if curve := s.get("early_answering_curve"):
            ax[1].plot(np.linspace(0, 1, len(curve)), curve, "o-", ms=6 - i * 0.6, label=c, c=f"C{i}", alpha=0.8)
    if "step_accuracy_longest" in (s := summary.get("cot", {})):
        longest = len(s["step_accuracy_longest"])
        ax[2].plot(range(1, longest + 1), s["step_accuracy_longest"], "o-", ms=3, label=f"{longest} ops: right step")
        ax[2].plot(range(1, longest + 1), s["stop_share_longest"], "x--", ms=4, label=f"{longest} ops: writes '>'")
        ax[2].plot(range(1, exp.max_ops + 1), s["step_accuracy_trained"], "s-", ms=3,
                   label=f"{exp.max_ops} ops: right step")
    ax[0].axvspan(0.5, exp.max_ops + 0.5, color="grey", alpha=0.1, label="trained lengths")
    ax[0].axhline(CHANCE, color="k", ls=":", lw=1)
    for a, (x, y, title) in zip(ax, [("operations", "accuracy (chance dotted)", f"accuracy: {regime_name(exp)}"),
                                     ("share of the model's own chain kept", "same answer",
                                      f"early answering ({min(6, exp.max_ops)} ops)"),
                                     ("step (true chain before it)", "share", "correct CoT, one step at a time")]):
        a.set(xlabel=x, ylabel=y, title=title)
        a.grid(alpha=0.3)
        a.legend(fontsize=7)
    lab.save_figure(fig, path)

def run(argv):
    try:
        exp = lab.parse_args(argv, Experiment, __doc__)
    except lab.ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    torch.set_num_threads(exp.num_threads)
    regime_rows = []
    for r in regimes(exp):
        print(f"{regime_name(r)}: {torch.get_num_threads()} thread(s); conditions {r.conditions}, {r.seeds} seed(s), "
              f"{r.steps} steps", flush=True)
        regime_rows.append((r, []))
        for condition in r.conditions.split(","):
            for seed in range(r.seeds):  # one file per model, settings and code: reruns and other conditions reuse it
                settings = {k: getattr(r, k) for k in ("steps", "batch_size", "n_layer", "n_embd", "n_eval", "max_ops",
                                                        "held_out")}
                key = lab.cache_key(settings, train, lab, sys.modules[__name__])
                path = Path(r.out_dir) / "rows" / f"{condition}_seed{seed}_{key}.json"
                if r.quick or not path.exists():  # a quick run reuses nothing: an edit must show
                    train.atomic_write(path, json.dumps(evaluate(train_condition(condition, seed, r), condition, r,
                                                                 seed)).encode())
                else:
                    print(f"reusing {path}: same settings, same code of train.py, lab.py and cot_probe.py", flush=True)
                row = json.loads(path.read_text())
                row["accuracy"] = {int(n): a for n, a in row["accuracy"].items()}
                regime_rows[-1][1].append(row)
                print(f"{condition} seed {seed}: accuracy in range {row['in_range']:.2f}", flush=True)
    summaries, verdict, gates = report(regime_rows)
    if exp.quick:
        print(f"headline: {gates[0]['text']}\n{exp.QUICK_NOTE}")
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
