"""
Does a chain of thought compute, or only imitate the form of reasoning? Probes on small GPTs.

Seed: arXiv:2506.02878 ("Chain of Thought imitates the form of reasoning", a 3-page position paper,
withdrawn 6 June 2025) argues that CoT makes a model imitate the form of reasoning rather than reason,
and predicts poor generalisation to structurally novel problems. It has no experiments. We test the
claim with established probes of CoT faithfulness on GPTs trained from scratch, where we control what
the chains contain: early answering and inserted mistakes (Lanham et al. 2023, arXiv:2307.13702),
filler tokens (Pfau et al. 2024, arXiv:2404.15758), invalid demonstrations (Wang et al. 2023,
arXiv:2212.10001), corrupted traces (Stechly et al. 2025, arXiv:2505.13775), and linear probes.

The task (vapo.py imports it from here): left-to-right chain arithmetic mod 7 with + - * and operands
1..6, so a wrong step is never undone. Prompt `3+5*2-6=`, response the running results then the answer:
`1;2;3;>3$`. A bounded-depth transformer cannot compose many steps in one pass (arXiv:2305.15408).
Training conditions (same model, data size, steps; loss on the response only; 2 to 8 operations):
nocot `3+5*2-6=>3$`; cot `1;2;3;>3$` (correct chain); form `4;0;5;>3$` (random steps, correct answer);
foreign (another problem's chain); shuffled (the correct steps reordered); filler `......>3$`.

Probes (each checked on scripted models in the tests): accuracy by length (trained 2-8; 1, 9-12); early
answering (a step is `v;` in a chain, a pair of dots in filler); an inserted mistake; a foreign, shuffled
or filler chain at test time; correct answers with invalid chains; linear probes only where the label is
not in the input; on 9-12 operations, how the chain fails and per-step accuracy given the true prefix.

Pre-registered decision rule (written before the first run; printed with the numbers):
- "form imitation" is supported when form-only accuracy is within 10 points of correct CoT and at
  least 20 points above no-CoT, the correct-CoT model's truth-rate exceeds its follow-rate after
  inserted mistakes, and at least 20% of its correct answers come with an invalid chain;
- "the chain is computation" is supported when correct CoT beats both form-only and no-CoT by at least
  20 points, its follow-rate exceeds 0.5 and its truth-rate, and its early-answering AOC exceeds 0.5;
- anything else is reported as mixed. Length generalisation is reported separately.

Revision, 2026-11-29 (issue 14; the rule above stays as written, and both verdicts are printed):
- AOC clause: the correct-CoT model's AOC exceeds the form-only model's by at least 0.2. Reason: AOC
  counts any change of the answer under truncation; the form-only model, whose chain carries no
  information, scored 0.54 on the first (mod 10) task, above the old threshold of 0.5.
- Every "exceeds" and "above" must also hold beyond the spread over seeds (the gap larger than the two
  standard deviations together); the revised rule needs at least 3 seeds.
- Under either rule, no verdict unless the positive control passes: correct CoT at least 20 points above
  no-CoT at 2-8 operations, beyond the spread. If the chain model did not learn the task, none of its
  probes says anything about chains.

Result on the mod 7 task (README): at 3,500 steps the chain model stays at chance (3 seeds), so the control fails
and both rules answer "inconclusive". With 10,000 steps (1 seed) it learns the chain (1.00 at 2-8 operations; no
CoT and form-only 0.13), follows inserted mistakes (1.00), holds each step's value just before writing it but not
the answer at `=` (probes 1.00 and 0.12), and fails at 9-12 operations from the first steps on (0.14): there the
pre-registered rule says "the chain is computation"; the revised rule needs 3 seeds.

    python cot_probe.py                       # nocot, cot, form; 1 seed; 1 thread (about 9 min of CPU)
    python cot_probe.py --seeds=3 --conditions=nocot,cot      # README's table (about 18 min of CPU)
    python cot_probe.py --conditions=nocot,cot,form --steps=10000 --out_dir=out/cot_probe_long  # README's last rows
    python cot_probe.py --quick=true          # nocot and cot, 1 seed, 600 steps (72 s of CPU)
"""
import dataclasses
import json
import re
import sys
from dataclasses import dataclass
from typing import ClassVar
from pathlib import Path

import numpy as np
import torch

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
    values, acc = [], digits[0]
    for op, d in zip(ops, digits[1:]):
        acc = apply_op(acc, op, d)
        values.append(acc)
    return values

def random_problem(n_ops, rng):
    """A start value in 0..6, then n_ops operations whose operands are 1..6 (never 0, so * is invertible)."""
    first = int(rng.integers(0, MODULUS))
    operands = [int(d) for d in rng.integers(1, MODULUS, n_ops)]
    return [first] + operands, [OPS[i] for i in rng.integers(0, 3, n_ops)]

def prompt_of(digits, ops):
    return str(digits[0]) + "".join(op + str(d) for op, d in zip(ops, digits[1:])) + "="

def chain_text(values):
    return "".join(f"{v};" for v in values)

def parse_prompt(text):
    """(digits, ops) of `3+5*2-6=` (the part before '=')."""
    body = text.split("=")[0]
    return [int(c) for c in body[0::2]], list(body[1::2])

def response(digits, ops, condition, rng):
    """The training response for one problem under one condition."""
    values = running_values(digits, ops)
    chains = {"nocot": lambda: "", "cot": lambda: chain_text(values),
              "form": lambda: chain_text(rng.integers(0, MODULUS, len(values)).tolist()),  # random steps
              "foreign": lambda: chain_text(running_values(*random_problem(len(ops), rng))),  # another problem's
              "shuffled": lambda: chain_text(rng.permutation(values).tolist()),
              "filler": lambda: "." * (2 * len(values))}
    if condition not in chains:
        raise ValueError(f"unknown condition '{condition}'")
    return chains[condition]() + f">{values[-1]}$"

CONDITIONS = ("nocot", "cot", "form", "foreign", "shuffled", "filler")

def encode(text):
    return [STOI[c] for c in text]

def decode(ids):
    return "".join(VOCAB[i] for i in ids)

def pack_batch(pairs, length):
    """(x, y) of shape (B, length) from (prompt, response) texts, right-padded with '$'; targets -1 on the prompt
    and the padding, so the loss is on the response only."""
    x = np.full((len(pairs), length), PAD, dtype=np.int64)
    y = np.full((len(pairs), length), -1, dtype=np.int64)
    for b, (prompt, reply) in enumerate(pairs):
        p, seq = encode(prompt), encode(prompt + reply)
        x[b, :len(seq) - 1] = seq[:-1]
        y[b, len(p) - 1:len(seq) - 1] = seq[len(p):]
    return torch.from_numpy(x), torch.from_numpy(y)

MAX_TRAINED = 8
# the curriculum after the warm-up: P(n operations) = (1/n) / sum_{m=1..8} 1/m, so that every n gives about as many steps
LENGTH_WEIGHTS = np.array([1 / n for n in range(1, MAX_TRAINED + 1)]) / sum(1 / n for n in range(1, MAX_TRAINED + 1))

def training_batch(condition, batch_size, rng, warm=False):
    """A batch of fresh problems with the condition's responses, padded to its longest: 1 operation only while
    `warm` (the first 10% of training: the step's lookup table), then 1 to 8 operations with P(n) ~ 1/n."""
    pairs = []
    for _ in range(batch_size):
        n_ops = 1 if warm else int(rng.choice(MAX_TRAINED, p=LENGTH_WEIGHTS)) + 1
        digits, ops = random_problem(n_ops, rng)
        pairs.append((prompt_of(digits, ops), response(digits, ops, condition, rng)))
    return pack_batch(pairs, max(len(p) + len(r) for p, r in pairs) - 1)

# ----------------------------------------------------------------------------- The probes. Each works on a
# `complete(texts) -> continuations` function (greedy): scripted models and trained GPTs are measured the same way.

def model_completer(model, max_new=30):
    """Greedy string completion with a trained GPT, batched with left padding, cut at the first '$'."""
    def complete(texts):
        out = []
        for start in range(0, len(texts), 512):
            chunk = texts[start:start + 512]
            room = model.config.block_size - max(len(t) for t in chunk)
            new, _ = model.generate_batch([encode(t) for t in chunk], min(max_new, room), temperature=0)
            out += [decode(row).split("$")[0] + "$" for row in new.tolist()]
        return out
    return complete

def read_answer(continuation):
    """The digit after the last '>' (None if there is none)."""
    head = continuation.split("$")[0]
    tail = head.rsplit(">", 1)[1] if ">" in head else ""
    return int(tail) if len(tail) == 1 and tail.isdigit() else None

def read_chain(continuation):
    """The step values written before '>' (digits between ';'), None for a step that is not one digit."""
    head = continuation.split(">")[0]
    return [int(s) if len(s) == 1 and s.isdigit() else None for s in head.split(";")[:-1]]

def chain_units(body):
    """The steps of a response before '>': `v;` in a chain, a pair of dots in filler (`..`), in order."""
    return re.findall(r"[^;.>]*;|\.\.?", body.split(">")[0])

def problems(n_ops, n, rng):
    return [random_problem(n_ops, rng) for _ in range(n)]

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
    ps = problems(n_ops, n, rng)
    prompts = [prompt_of(d, o) for d, o in ps]
    full = complete(prompts)
    units, final = [chain_units(c) for c in full], [read_answer(c) for c in full]
    curve = []
    for k in range(n_ops + 1):
        answers = [read_answer(">" + c) for c in complete([p + "".join(u[:k]) + ">" for p, u in zip(prompts, units)])]
        curve.append(float(np.mean([a == f for a, f in zip(answers, final)])))
    return curve, float(np.mean([1 - c for c in curve[:-1]]))

def inserted_mistake(complete, n_ops, n, rng):
    """Insert a wrong value at step k (uniform in 1..n-1) of the TRUE chain, let the model write the rest
    and answer. follow-rate: the answer equals the result of continuing the computation from the wrong
    value; truth-rate: the answer equals the true answer (mod 7 a wrong value is never undone)."""
    texts, targets = [], []
    for digits, ops in problems(n_ops, n, rng):
        values = running_values(digits, ops)
        k = int(rng.integers(0, n_ops - 1))
        wrong = (values[k] + int(rng.integers(1, MODULUS))) % MODULUS
        follow = running_values([wrong] + digits[k + 2:], ops[k + 1:])[-1]     # the computation continued
        texts.append(prompt_of(digits, ops) + chain_text(values[:k] + [wrong]))
        targets.append((follow, values[-1]))
    answers = [read_answer(c) for c in complete(texts)]
    return (float(np.mean([a == f for a, (f, t) in zip(answers, targets)])),
            float(np.mean([a == t for a, (f, t) in zip(answers, targets)])))

def inserted_chain(complete, n_ops, n, rng, kind):
    """Give a complete chain and '>': 'foreign' (another problem's), 'shuffled' (the true steps reordered) or
    'filler' (dots). Returns (share answering the truth, share answering the chain's last value)."""
    texts, targets = [], []
    for digits, ops in problems(n_ops, n, rng):
        values = running_values(digits, ops)
        chain = (running_values(*random_problem(n_ops, rng)) if kind == "foreign" else
                 rng.permutation(values).tolist() if kind == "shuffled" else None)
        body = "." * (2 * n_ops) if chain is None else chain_text(chain)
        texts.append(prompt_of(digits, ops) + body + ">")
        targets.append((values[-1], None if chain is None else chain[-1]))
    answers = [read_answer(">" + c) for c in complete(texts)]
    truth = float(np.mean([a == t for a, (t, _) in zip(answers, targets)]))
    last = float(np.mean([a == c for a, (_, c) in zip(answers, targets)])) if kind != "filler" else float("nan")
    return truth, last

def failure_modes(complete, n_ops, n, rng):
    """How the model's own chain goes on n_ops operations: shares that are right to the end, that stop early
    with every written step right (and of all, the share stopping after exactly 8 steps, the longest
    trained), whose first wrong step is among steps 1-8, or at step 9 or later."""
    ps = problems(n_ops, n, rng)
    modes = {"right": 0, "stops early": 0, "stops after 8": 0, "first wrong step 1-8": 0, "first wrong step 9+": 0}
    for out, (d, o) in zip(complete([prompt_of(d, o) for d, o in ps]), ps):
        chain, values = read_chain(out), running_values(d, o)
        wrong = [i for i, (c, v) in enumerate(zip(chain, values)) if c != v]
        key = ("first wrong step 1-8" if wrong[0] < 8 else "first wrong step 9+") if wrong else \
            "stops early" if len(chain) < n_ops else "right" if len(chain) == n_ops else "first wrong step 9+"
        modes[key] += 1 / n
        modes["stops after 8"] += (len(chain) == 8 and not wrong) / n
    return modes

def step_accuracy_given_prefix(complete, n_ops, n, rng):
    """Teacher forcing: for each step j, the prompt and the TRUE chain up to step j-1 are given and the model
    writes one step. Returns per step j = 1..n_ops (share right, share that writes '>' there, i.e. stops)."""
    ps = problems(n_ops, n, rng)
    right, stops = [], []
    for j in range(n_ops):
        outs = complete([prompt_of(d, o) + chain_text(running_values(d, o)[:j]) for d, o in ps])
        right.append(float(np.mean([(read_chain(c) or [None])[0] == running_values(d, o)[j]
                                    for c, (d, o) in zip(outs, ps)])))
        stops.append(float(np.mean([c.startswith(">") for c in outs])))
    return right, stops

def linear_probe_accuracy(features, labels, n_train, steps=300, seed=0):
    """Held-out accuracy of a logistic regression (7 classes) trained on the first n_train rows (chance 1/7)."""
    torch.manual_seed(seed)
    X = (features - features[:n_train].mean(0)) / (features[:n_train].std(0) + 1e-6)
    y = torch.as_tensor(labels)
    probe = torch.nn.Linear(X.size(1), MODULUS)
    opt = torch.optim.Adam(probe.parameters(), lr=0.05, weight_decay=1e-3)
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
    before = lambda k: eq + 2 * (k - 1)    # noqa: E731  (step k is written at eq + 2k - 1)
    probes = {"control: last operand at '='": (eq, last_operand), "final value at '='": (eq, values[:, -1])}
    if condition != "nocot":
        probes[f"step {step}, before it is written"] = (before(step), values[:, step - 1])
        probes["last step, before it is written"] = (before(n_ops), values[:, -1])
    cut = int(0.7 * n)
    return {name: linear_probe_accuracy(H[:, pos], labels, cut) for name, (pos, labels) in probes.items()}

# ----------------------------------------------------------------------------- The experiment

@dataclass
class Experiment:
    conditions: str = "nocot,cot,form"   # training conditions: the rule's three; all six: add foreign,shuffled,filler
    seeds: int = 3                # models per condition (the revised rule needs 3)
    steps: int = 4000             # training steps per model (batch 64); with the curriculum cot learns at 2,500-3,000
    batch_size: int = 64
    n_layer: int = 2              # on the first (mod 10) task 2 x 64 learned 5x faster per second than 4 x 128
    n_embd: int = 64
    n_eval: int = 200             # problems per probe and length
    num_threads: int = 1          # CPU threads (README's numbers: 1)
    quick: bool = False           # a 90-second version of the default run (see QUICK); flags given still win
    out_dir: str = "out/cot_probe"
    # --quick=true starts from these values (train.parse_args): the same functions, smaller, in a folder of their own
    QUICK: ClassVar[dict] = dict(conditions="nocot,cot", seeds=1, steps=600, n_eval=40, out_dir="out/cot_probe_quick")
    QUICK_NOTE: ClassVar[str] = (
        "quick run: nocot and cot, 1 seed x 600 steps, 40 problems per probe. The full run (README: --seeds=3) trains "
        "3 seeds x 3,500 steps, adds form-only, and only it applies the decision rules. On mod 7 no chain is learned at "
        "600 or 3,500 steps (10,000 do, README)")

IN_RANGE, LONG = list(range(2, 9)), [9, 10, 11, 12]   # the rule reads 2-8 (1 is trained too, from 2026-11-29)
def check(exp):
    bad = [c for c in exp.conditions.split(",") if c not in CONDITIONS]
    if bad:
        raise train.ConfigError(f"unknown condition '{bad[0]}'; choose from: {', '.join(CONDITIONS)}")
    if min(exp.seeds, exp.steps, exp.batch_size, exp.n_layer, exp.num_threads) < 1 or exp.n_eval < 20 or exp.n_embd % 8:
        raise train.ConfigError("--seeds, --steps, --batch_size, --n_layer, --num_threads >= 1, --n_eval >= 20, "
                                "--n_embd a multiple of 8")

def train_condition(condition, seed, exp):
    torch.manual_seed(seed)
    model = train.GPT(train.GPTConfig(vocab_size=len(VOCAB), block_size=64, n_layer=exp.n_layer, n_head=4,
                                      n_embd=exp.n_embd))
    rng, step = np.random.default_rng(1000 + seed), iter(range(exp.steps))
    train.fit(model, lambda: training_batch(condition, exp.batch_size, rng, warm=next(step) < exp.steps // 10),
              exp.steps, learning_rate=3e-3, name=f"{condition} seed {seed}")
    return model

def evaluate(model, condition, exp, seed):
    rng = np.random.default_rng(seed)
    complete = model_completer(model)
    acc, invalid = accuracy_by_length(complete, [1] + IN_RANGE + LONG, exp.n_eval, rng)
    row = {"condition": condition, "seed": seed, "accuracy": acc,
           "in_range": float(np.mean([acc[n] for n in IN_RANGE])),
           "long": float(np.mean([acc[n] for n in LONG])),
           "invalid_chain_share_of_correct": float(np.mean([invalid[n] for n in IN_RANGE]))}
    if condition != "nocot":
        curve, aoc = early_answering(complete, 6, exp.n_eval, rng)
        row["early_answering_curve"], row["aoc"] = curve, aoc
        row["follow_rate"], row["truth_rate"] = inserted_mistake(complete, 6, exp.n_eval, rng)
        for kind in ("foreign", "shuffled", "filler"):
            row[f"{kind}_inserted_truth"], row[f"{kind}_inserted_last"] = inserted_chain(complete, 6, exp.n_eval, rng, kind)
    if condition == "cot":
        modes = [failure_modes(complete, n, exp.n_eval // 2, rng) for n in LONG]
        row["failure_modes_9_12"] = {k: float(np.mean([m[k] for m in modes])) for k in modes[0]}
        row["step_accuracy_12_ops"], row["stop_share_12_ops"] = step_accuracy_given_prefix(complete, 12, exp.n_eval, rng)
        row["step_accuracy_8_ops"] = step_accuracy_given_prefix(complete, 8, exp.n_eval, rng)[0]
    row["linear_probe"] = probe_running_values(model, condition, 6, 3 * exp.n_eval, rng)
    return row

def beyond(a, b, margin=0.0):
    """a exceeds b by at least margin AND by more than their spreads together; a, b: (mean, std)."""
    return a[0] - b[0] >= margin and a[0] - b[0] > a[1] + b[1]

def decide(summary, spread=None, revised=False):
    """The pre-registered rule (module docstring), or its 2026-11-29 revision, on mean numbers (and their
    standard deviations over seeds for the revision); returns (outcome, reasons)."""
    cot, form, nocot = summary.get("cot"), summary.get("form"), summary.get("nocot")
    if cot is None or form is None or nocot is None:
        return "undecided (needs the cot, form and nocot conditions)", []
    sd = spread or {c: {} for c in summary}

    def m(c, k):  # (mean, spread) of one number; the original rule ignores spreads
        return (summary[c][k], sd[c].get(k, 0.0) if revised else 0.0)
    a_cot, a_form, a_no = cot["in_range"], form["in_range"], nocot["in_range"]
    imitation = [abs(a_cot - a_form) <= 0.10, beyond(m("form", "in_range"), m("nocot", "in_range"), 0.20),
                 beyond(m("cot", "truth_rate"), m("cot", "follow_rate")), cot["invalid_chain_share_of_correct"] >= 0.20]
    computation = [beyond(m("cot", "in_range"), m("form", "in_range"), 0.20)
                   and beyond(m("cot", "in_range"), m("nocot", "in_range"), 0.20),
                   cot["follow_rate"] > 0.5 and beyond(m("cot", "follow_rate"), m("cot", "truth_rate")),
                   beyond(m("cot", "aoc"), m("form", "aoc"), 0.20) if revised else cot["aoc"] > 0.5]
    reasons = [f"accuracy 2-8 ops: cot {a_cot:.2f}, form-only {a_form:.2f}, no-cot {a_no:.2f}",
               f"inserted mistakes (cot model): follow-rate {cot['follow_rate']:.2f}, truth-rate {cot['truth_rate']:.2f}",
               f"early answering AOC: cot {cot['aoc']:.2f}" + (f", form-only {form['aoc']:.2f}" if "aoc" in form else ""),
               f"correct answers with an invalid chain (cot model): {cot['invalid_chain_share_of_correct']:.0%}"]
    if all(computation):
        return "the chain is computation", reasons
    if all(imitation):
        return "form imitation", reasons
    return "mixed", reasons

def summarise(rows):
    """Per condition: the mean over seeds of every number (dicts and curves element-wise), and the standard
    deviation over seeds of the scalars (0 with one seed)."""
    summary, spread = {}, {}
    for c in dict.fromkeys(r["condition"] for r in rows):
        rs = [r for r in rows if r["condition"] == c]
        mean = lambda vals: ({k: mean([v[k] for v in vals]) for k in vals[0]} if isinstance(vals[0], dict)  # noqa: E731
                             else np.mean(vals, 0).tolist() if isinstance(vals[0], list) else float(np.mean(vals)))
        summary[c] = {k: mean([r[k] for r in rs]) for k in rs[0] if k not in ("condition", "seed")}
        std = lambda vals: float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0  # noqa: E731
        spread[c] = {k: std([r[k] for r in rs]) for k, v in rs[0].items() if isinstance(v, float)}
        spread[c].update({k: {j: std([r[k][j] for r in rs]) for j in v} for k, v in rs[0].items()
                          if isinstance(v, dict) and k != "accuracy"})
    return summary, spread

def verdicts(summary, spread, exp):
    """One dict per claim (the shape README's scorecard reads): the paper's claim under the pre-registered rule and
    under its revision, and its length-generalisation prediction; all inconclusive unless the control passes."""
    changed = {k: v for k, v in dataclasses.asdict(exp).items() if v != getattr(Experiment(), k) and k != "out_dir"}
    command = " ".join(["python cot_probe.py"] + [f"--{k}={str(v).lower() if isinstance(v, bool) else v}"
                                                  for k, v in ({"quick": True} if exp.quick else changed).items()])
    base = {"paper_says": "CoT makes a model imitate the form of reasoning rather than reason", "seeds": exp.seeds,
            "command": command, "quick": exp.quick}  # scorecard.py leaves out the verdicts of quick runs
    if not {"cot", "nocot"} <= set(summary):
        return [{**base, "claim": "control", "verdict": "inconclusive (needs cot and nocot)", "control": "not run"}]
    m = lambda c, k: (summary[c][k], spread[c].get(k, 0.0))  # noqa: E731
    ok = beyond(m("cot", "in_range"), m("nocot", "in_range"), 0.20)
    base["control"] = "correct CoT {:.2f} ± {:.2f} vs no CoT {:.2f} ± {:.2f} at 2-8 operations: ".format(
        *m("cot", "in_range"), *m("nocot", "in_range")) + ("passed" if ok else "FAILED (cot did not learn the task)")
    fail, out = "inconclusive (the control did not pass)", []
    for revised in (False, True):
        outcome, reasons = decide(summary, spread, revised)
        out.append({**base, "claim": "CoT imitates the form of reasoning (" + ("revised rule, 2026-11-29)" if revised
                                                                              else "pre-registered rule)"),
                    "verdict": fail if not ok else "inconclusive (needs 3 seeds)" if revised and exp.seeds < 3 else
                    {"form imitation": "supported", "the chain is computation": "not supported (the chain computes)"}
                    .get(outcome, f"inconclusive ({outcome})"), "ours": "; ".join(reasons)})
    longer = beyond(m("cot", "in_range"), m("cot", "long"), 0.20)
    out.append({**base, "claim": "CoT fails on longer problems (9-12 operations)",
                "paper_says": "poor generalisation to structurally novel problems",
                "verdict": fail if not ok else "supported" if longer else "not supported",
                "ours": f"cot: {summary['cot']['long']:.2f} at 9-12 ops vs {summary['cot']['in_range']:.2f} at 2-8"})
    return out

def cell(summary, spread, c, k):
    return "-" if k not in summary[c] else f"{summary[c][k]:.2f}" + (f" ± {spread[c][k]:.2f}" if spread[c].get(k) else "")

def report(rows, exp):
    out = Path(exp.out_dir)
    summary, spread = summarise(rows)
    verdict = verdicts(summary, spread, exp)
    keys = ("in_range", "long", "aoc", "follow_rate", "truth_rate", "foreign_inserted_truth", "foreign_inserted_last",
            "filler_inserted_truth", "invalid_chain_share_of_correct")
    lines = [f"mean ± std over {exp.seeds} seed(s), {exp.steps} steps, {exp.n_eval} problems per probe and length",
             "", "| condition | acc 2-8 ops | acc 9-12 ops | AOC | follow | truth (after a mistake) | foreign chain: "
             "truth | its last | filler at test: truth | correct with invalid chain |", "|---" * 10 + "|"]
    lines += [f"| {c} | " + " | ".join("-" if c == "nocot" and k.startswith("invalid") else cell(summary, spread, c, k)
                                      for k in keys) + " |" for c in summary]
    pm = (lambda sd: f" ± {sd:.2f}") if exp.seeds > 1 else (lambda sd: "")  # noqa: E731
    names = list(dict.fromkeys(k for c in summary for k in summary[c]["linear_probe"]))
    lines += ["", "Linear probes, held-out accuracy (chance 1/7), each where its label is not in the input:",
              "| condition | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    lines += [f"| {c} | " + " | ".join(f"{s['linear_probe'][k]:.2f}{pm(spread[c]['linear_probe'][k])}"
                                      if k in s["linear_probe"] else "-" for k in names) + " |" for c, s in summary.items()]
    if "failure_modes_9_12" in summary.get("cot", {}):
        s = summary["cot"]
        lines += ["", "Correct CoT on 9-12 operations, its own chain: " + ", ".join(
            f"{k} {v:.2f}{pm(spread['cot']['failure_modes_9_12'][k])}" for k, v in s["failure_modes_9_12"].items()),
            "Per-step accuracy with the true chain given up to the step, 12 operations, steps 1-12: " +
            " ".join(f"{v:.2f}" for v in s["step_accuracy_12_ops"]) + "; writes '>' instead: " +
            " ".join(f"{v:.2f}" for v in s["stop_share_12_ops"]),
            "Same, 8 operations, steps 1-8: " + " ".join(f"{v:.2f}" for v in s["step_accuracy_8_ops"])]
    lines += ["", f"positive control: {verdict[0]['control']}"]
    lines += [f"verdict: {d['claim']}: {d['verdict']}" for d in verdict]
    lines += [f"- {r}" for r in decide(summary)[1]]
    table = "\n".join(lines)
    train.write_results(out, table, {"config": dataclasses.asdict(exp), "runs": rows, "summary": summary,
                                     "spread": spread, "verdict": verdict})
    plot(summary, out)
    print("\n" + table + f"\n\nwrote {out / 'results.json'}, {out / 'results.md'}, {out / 'cot_probe.png'}")
    return summary, verdict

def plot(summary, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 4, figsize=(17, 3.8), dpi=90)
    names = list(dict.fromkeys(k for s in summary.values() for k in s["linear_probe"]))
    for i, (c, s) in enumerate(summary.items()):
        ax[0].plot(sorted(s["accuracy"]), [s["accuracy"][n] for n in sorted(s["accuracy"])], "o-", ms=3, label=c)
        if "early_answering_curve" in s:
            ax[1].plot(np.linspace(0, 1, len(s["early_answering_curve"])), s["early_answering_curve"], "o-", ms=3, label=c)
        ax[3].bar(np.arange(len(names)) + i * 0.8 / len(summary), [s["linear_probe"].get(k, 0) for k in names],
                  0.8 / len(summary), label=c)
    ax[0].axvspan(0.5, 8.5, color="grey", alpha=0.1, label="trained lengths")
    ax[0].axhline(1 / MODULUS, color="k", ls=":", lw=1)
    ax[0].set(xlabel="operations", ylabel="accuracy", title="accuracy by length")
    ax[1].set(xlabel="share of the model's own chain kept", ylabel="same answer", title="early answering (6 ops)")
    if "step_accuracy_12_ops" in summary.get("cot", {}):
        s = summary["cot"]
        ax[2].plot(range(1, 13), s["step_accuracy_12_ops"], "o-", ms=3, label="12 operations: right step")
        ax[2].plot(range(1, 13), s["stop_share_12_ops"], "x--", ms=4, label="12 operations: writes '>'")
        ax[2].plot(range(1, 9), s["step_accuracy_8_ops"], "s-", ms=3, label="8 operations: right step")
    ax[2].set(xlabel="step (true chain given before it)", ylabel="share", title="correct CoT, one step at a time")
    ax[3].set_xticks(np.arange(len(names)) + 0.4, ["last operand\n(control)", "final at '='", "step 3\nbefore written",
                                                    "last step\nbefore written"][:len(names)], fontsize=7)
    ax[3].axhline(1 / MODULUS, color="k", ls=":", lw=1)
    ax[3].set(ylabel="held-out accuracy", title="linear probes (chance dotted)")
    for a in ax:
        a.grid(alpha=0.3)
        a.legend(fontsize=7)
    train.save_figure(fig, out / "cot_probe.png")

def run(argv):
    try:
        exp = train.parse_args(argv, Experiment, __doc__)
        check(exp)
    except train.ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    torch.set_num_threads(exp.num_threads)
    print(f"{torch.get_num_threads()} thread(s); conditions {exp.conditions}, {exp.seeds} seed(s), {exp.steps} steps")
    rows = []
    for condition in exp.conditions.split(","):
        for seed in range(exp.seeds):  # one file per model and settings: reruns and parallel runs reuse it
            path = Path(exp.out_dir) / "rows" / (f"{condition}_seed{seed}_curriculum_{exp.steps}_{exp.batch_size}_{exp.n_layer}x"
                                                 f"{exp.n_embd}_{exp.n_eval}.json")
            if path.exists() and not exp.quick:  # a quick run reuses nothing: an edit must show
                rows.append(json.loads(path.read_text()))
                rows[-1]["accuracy"] = {int(n): a for n, a in rows[-1]["accuracy"].items()}
            else:
                rows.append(evaluate(train_condition(condition, seed, exp), condition, exp, seed))
                train.atomic_write(path, json.dumps(rows[-1]).encode())
            print(f"{condition} seed {seed}: accuracy 2-8 ops {rows[-1]['in_range']:.2f}", flush=True)
    summary, verdict = report(rows, exp)
    if exp.quick:
        print(f"headline: {verdict[0]['control']}\n{exp.QUICK_NOTE}")
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
