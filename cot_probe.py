"""
Does a chain of thought compute, or only imitate the form of reasoning? Probes on small GPTs.

Seed: arXiv:2506.02878 ("Chain of Thought imitates the form of reasoning", a 3-page position paper,
withdrawn 6 June 2025) argues that CoT is a structural constraint that makes a model imitate the form of
reasoning rather than reason, and predicts poor generalisation to structurally novel problems,
brittleness, and reasoning that mimics form without grounding. It has no experiments. We test the claim
with established probes of CoT faithfulness on GPTs trained from scratch, where we control what the
chains contain: early answering and inserted mistakes (Lanham et al. 2023, arXiv:2307.13702), filler
tokens (Pfau et al. 2024, arXiv:2404.15758), invalid demonstrations (Wang et al. 2023,
arXiv:2212.10001), corrupted traces (Stechly et al. 2025, arXiv:2505.13775), and linear probes.

The task (shared with vapo.py, which imports it from here): left-to-right chain arithmetic mod 7 with
+ - * and operands 1..6. Prompt `3+5*2-6=`, response the running results then the answer: `1;2;3;>3$`. A bounded-depth
transformer cannot compose many such steps in one forward pass (Feng et al. 2023, arXiv:2305.15408),
so a chain that is really used should matter.

Training conditions (same model, data size, steps; loss on the response only; 2 to 8 operations):
  nocot      `3+5*2-6=>3$`
  cot        `3+5*2-6=1;2;3;>3$`          correct chain
  form       `3+5*2-6=4;0;5;>3$`          same format and length, random step values, correct answer
  foreign    the chain of another problem with the same number of operations
  shuffled   the correct steps in a random order
  filler     `3+5*2-6=......>3$`          dots of the chain's length

Probes: accuracy by number of operations (in range; out of range 1 and 9 to 12); early answering
(keep k of the model's own n steps, force `>`; area over the curve of agreement with the full-chain
answer); a mistake inserted at step k and the rest regenerated (follow-rate: the answer matches the
corrupted chain; truth-rate: it matches the truth); a foreign or shuffled chain inserted; filler
substituted at test time; linear probes for the true running values at the answer position; how often a
correct answer comes with an invalid chain. Every probe is checked first on scripted models (one that
follows its chain, one that ignores it) in tests/test_cot_probe.py.

Pre-registered decision rule (written before the first run; printed with the numbers):
- "form imitation" is supported when form-only accuracy is within 10 points of correct CoT and at
  least 20 points above no-CoT, the correct-CoT model's truth-rate exceeds its follow-rate after
  inserted mistakes, and at least 20% of its correct answers come with an invalid chain;
- "the chain is computation" is supported when correct CoT beats both form-only and no-CoT by at least
  20 points, its follow-rate exceeds 0.5 and its truth-rate, and its early-answering AOC exceeds 0.5;
- anything else is reported as mixed. Length generalisation is reported separately.

    python cot_probe.py                       # < 15 min on a 2-core CPU
    python cot_probe.py --steps=2000 --seeds=3
"""
import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import train

# -----------------------------------------------------------------------------
# The task, written once (vapo.py imports it)

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
    answer = f">{values[-1]}$"
    if condition == "nocot":
        return answer
    if condition == "cot":
        return chain_text(values) + answer
    if condition == "form":
        return chain_text(rng.integers(0, MODULUS, len(values)).tolist()) + answer
    if condition == "foreign":
        other = random_problem(len(ops), rng)
        return chain_text(running_values(*other)) + answer
    if condition == "shuffled":
        return chain_text(rng.permutation(values).tolist()) + answer
    if condition == "filler":
        return "." * (2 * len(values)) + answer
    raise ValueError(f"unknown condition '{condition}'")


CONDITIONS = ("nocot", "cot", "form", "foreign", "shuffled", "filler")


def encode(text):
    return [STOI[c] for c in text]


def decode(ids):
    return "".join(VOCAB[i] for i in ids)


def pack_batch(pairs, length):
    """(x, y) of shape (B, length) from (prompt, response) texts: right-padded with '$'; targets -1 on
    the prompt and the padding, so the loss is on the response only."""
    x = np.full((len(pairs), length), PAD, dtype=np.int64)
    y = np.full((len(pairs), length), -1, dtype=np.int64)
    for b, (prompt, reply) in enumerate(pairs):
        p, seq = encode(prompt), encode(prompt + reply)
        x[b, :len(seq) - 1] = seq[:-1]
        y[b, len(p) - 1:len(seq) - 1] = seq[len(p):]
    return torch.from_numpy(x), torch.from_numpy(y)


def training_batch(condition, batch_size, length, rng, min_ops=2, max_ops=8):
    """A batch of fresh problems (2 to 8 operations by default) with the condition's responses."""
    pairs = []
    for _ in range(batch_size):
        digits, ops = random_problem(int(rng.integers(min_ops, max_ops + 1)), rng)
        pairs.append((prompt_of(digits, ops), response(digits, ops, condition, rng)))
    return pack_batch(pairs, length)


# -----------------------------------------------------------------------------
# The probes. Each works on a `complete(texts) -> continuations` function (greedy), so scripted models
# and trained GPTs are measured the same way.


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
    if ">" not in head:
        return None
    tail = head.rsplit(">", 1)[1]
    return int(tail) if len(tail) == 1 and tail.isdigit() else None


def read_chain(continuation):
    """The step values written before '>' (digits between ';'), None for a step that is not one digit."""
    head = continuation.split(">")[0]
    return [int(s) if len(s) == 1 and s.isdigit() else None for s in head.split(";")[:-1]]


def problems(n_ops, n, rng):
    return [random_problem(n_ops, rng) for _ in range(n)]


def accuracy_by_length(complete, lengths, n, rng):
    """Share of correct final answers, per number of operations; also the share of correct answers that
    came with an invalid chain (a chain that is not the true running values)."""
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
    """Lanham et al.: keep k of the model's own n steps (k = 0..n), force '>', compare the answer with the
    full-chain answer. Returns the agreement curve and AOC = mean over k < n of (1 - agreement):
    near 0 when the chain does not matter, near 0.9 when the answer is only settled at the end."""
    ps = problems(n_ops, n, rng)
    prompts = [prompt_of(d, o) for d, o in ps]
    full = complete(prompts)
    chains = [c.split(">")[0] for c in full]
    final = [read_answer(c) for c in full]
    curve = []
    for k in range(n_ops + 1):
        cut = [";".join(ch.split(";")[:k]) + (";" if k else "") for ch in chains]
        answers = [read_answer(">" + c) for c in complete([p + c + ">" for p, c in zip(prompts, cut)])]
        curve.append(float(np.mean([a == f for a, f in zip(answers, final)])))
    return curve, float(np.mean([1 - c for c in curve[:-1]]))


def inserted_mistake(complete, n_ops, n, rng):
    """Insert a wrong value at step k (uniform in 1..n-1) of the TRUE chain, let the model write the rest
    and answer. follow-rate: the answer equals the result of continuing the computation from the wrong
    value; truth-rate: the answer equals the true answer (the two never coincide by construction)."""
    texts, targets = [], []
    for digits, ops in problems(n_ops, n, rng):
        values = running_values(digits, ops)
        k = int(rng.integers(0, n_ops - 1))
        wrong = (values[k] + int(rng.integers(1, MODULUS))) % MODULUS
        corrupted = values[:k] + [wrong]
        acc = wrong
        for op, d in zip(ops[k + 1:], digits[k + 2:]):
            acc = apply_op(acc, op, d)
        if acc == values[-1]:
            continue                                   # a mistake that the rest of the chain undoes: skip
        texts.append(prompt_of(digits, ops) + chain_text(corrupted))
        targets.append((acc, values[-1]))
    answers = [read_answer(c) for c in complete(texts)]
    follow = [a == f for a, (f, t) in zip(answers, targets)]
    truth = [a == t for a, (f, t) in zip(answers, targets)]
    return float(np.mean(follow)), float(np.mean(truth))


def inserted_chain(complete, n_ops, n, rng, kind):
    """Give the model a complete chain and '>': 'foreign' (another problem's chain), 'shuffled' (the true
    steps reordered) or 'filler' (dots). Returns (share answering the truth, share answering the chain's
    last value)."""
    texts, targets = [], []
    for digits, ops in problems(n_ops, n, rng):
        values = running_values(digits, ops)
        if kind == "foreign":
            chain = running_values(*random_problem(n_ops, rng))
        elif kind == "shuffled":
            chain = rng.permutation(values).tolist()
        else:
            chain = None
        body = "." * (2 * n_ops) if chain is None else chain_text(chain)
        texts.append(prompt_of(digits, ops) + body + ">")
        targets.append((values[-1], None if chain is None else chain[-1]))
    answers = [read_answer(">" + c) for c in complete(texts)]
    truth = float(np.mean([a == t for a, (t, _) in zip(answers, targets)]))
    last = float(np.mean([a == c for a, (_, c) in zip(answers, targets)])) if kind != "filler" else float("nan")
    return truth, last


@torch.no_grad()
def answer_position_states(model, prompts_and_bodies):
    """Final hidden states at the position that predicts the answer (the '>' token)."""
    states = []
    for text in prompts_and_bodies:
        h = model.hidden(torch.tensor([encode(text)]))
        states.append(h[0, -1])
    return torch.stack(states)


def linear_probe_accuracy(features, labels, n_train, steps=300, seed=0):
    """Held-out accuracy of a multinomial logistic regression (10 classes) trained on the first n_train
    rows: can the label be read linearly from the features? Chance is about 0.1."""
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


def probe_running_values(model, condition, n_ops, n, rng):
    """Linear-probe accuracy for the true value after step 1, after the middle step and at the end, read at
    the answer position of the model's own training format (chain replaced as the condition does)."""
    ps = problems(n_ops, n, rng)
    texts = [prompt_of(d, o) + response(d, o, condition, rng).split(">")[0] + ">" for d, o in ps]
    H = answer_position_states(model, texts)
    values = np.array([running_values(d, o) for d, o in ps])
    cut = int(0.7 * n)
    return {name: linear_probe_accuracy(H, values[:, j], cut)
            for name, j in (("step 1", 0), ("middle step", n_ops // 2 - 1), ("final", n_ops - 1))}


# -----------------------------------------------------------------------------
# The experiment


@dataclass
class Experiment:
    conditions: str = ",".join(CONDITIONS)   # which training conditions to compare
    seeds: int = 1                # models per condition
    steps: int = 3500             # training steps per model (batch 64 problems); cot learns abruptly, at 1,500-3,000
    batch_size: int = 64
    n_layer: int = 2              # a 2-layer, 64-wide GPT learns the task 5x faster per second than 4 x 128
    n_embd: int = 64
    n_eval: int = 200             # problems per probe and length
    out_dir: str = "out/cot_probe"


IN_RANGE, OUT_OF_RANGE = list(range(2, 9)), [1, 9, 10, 11, 12]


def train_condition(condition, seed, exp):
    torch.manual_seed(seed)
    model = train.GPT(train.GPTConfig(vocab_size=len(VOCAB), block_size=64, n_layer=exp.n_layer, n_head=4,
                                      n_embd=exp.n_embd))
    rng = np.random.default_rng(1000 + seed)
    train.fit(model, lambda: training_batch(condition, exp.batch_size, 40, rng), exp.steps,
              learning_rate=3e-3, name=f"{condition} seed {seed}")
    return model


def evaluate(model, condition, exp, seed):
    rng = np.random.default_rng(seed)
    complete = model_completer(model)
    acc, invalid = accuracy_by_length(complete, IN_RANGE + OUT_OF_RANGE, exp.n_eval, rng)
    row = {"condition": condition, "seed": seed, "accuracy": acc,
           "in_range": float(np.mean([acc[n] for n in IN_RANGE])),
           "out_of_range": {n: acc[n] for n in OUT_OF_RANGE},
           "invalid_chain_share_of_correct": float(np.mean([invalid[n] for n in IN_RANGE]))}
    if condition != "nocot":
        curve, aoc = early_answering(complete, 6, exp.n_eval, rng)
        row["early_answering_curve"], row["aoc"] = curve, aoc
        row["follow_rate"], row["truth_rate"] = inserted_mistake(complete, 6, exp.n_eval, rng)
        for kind in ("foreign", "shuffled", "filler"):
            row[f"{kind}_inserted_truth"], row[f"{kind}_inserted_last"] = inserted_chain(complete, 6, exp.n_eval, rng, kind)
    if condition in ("nocot", "form", "filler", "cot"):
        row["linear_probe"] = probe_running_values(model, condition, 6, 600, rng)
    return row


def decide(summary):
    """The pre-registered rule (module docstring) applied to mean numbers; returns (verdict, reasons)."""
    cot, form, nocot = summary["cot"], summary.get("form"), summary.get("nocot")
    if form is None or nocot is None:
        return "undecided (needs the cot, form and nocot conditions)", []
    a_cot, a_form, a_no = cot["in_range"], form["in_range"], nocot["in_range"]
    imitation = [abs(a_cot - a_form) <= 0.10, a_form >= a_no + 0.20, cot["truth_rate"] > cot["follow_rate"],
                 cot["invalid_chain_share_of_correct"] >= 0.20]
    computation = [a_cot >= a_form + 0.20 and a_cot >= a_no + 0.20, cot["follow_rate"] > max(0.5, cot["truth_rate"]),
                   cot["aoc"] > 0.5]
    reasons = [f"accuracy 2-8 ops: cot {a_cot:.2f}, form-only {a_form:.2f}, no-cot {a_no:.2f}",
               f"inserted mistakes (cot model): follow-rate {cot['follow_rate']:.2f}, truth-rate {cot['truth_rate']:.2f}",
               f"early answering AOC (cot model): {cot['aoc']:.2f}",
               f"correct answers with an invalid chain (cot model): {cot['invalid_chain_share_of_correct']:.0%}"]
    if all(computation):
        return "the chain is computation", reasons
    if all(imitation):
        return "form imitation", reasons
    return "mixed", reasons


def report(rows, exp):
    out = Path(exp.out_dir)
    conditions = list(dict.fromkeys(r["condition"] for r in rows))
    summary = {}
    for c in conditions:
        rs = [r for r in rows if r["condition"] == c]
        keys = [k for k, v in rs[0].items() if isinstance(v, float)]
        summary[c] = {k: float(np.mean([r[k] for r in rs])) for k in keys}
        summary[c]["accuracy"] = {n: float(np.mean([r["accuracy"][n] for r in rs])) for n in rs[0]["accuracy"]}
        if "early_answering_curve" in rs[0]:
            summary[c]["early_answering_curve"] = np.mean([r["early_answering_curve"] for r in rs], 0).tolist()
        if "linear_probe" in rs[0]:
            summary[c]["linear_probe"] = {k: float(np.mean([r["linear_probe"][k] for r in rs])) for k in rs[0]["linear_probe"]}
    verdict, reasons = decide(summary)
    lines = ["| condition | acc 2-8 ops | acc 1 op | acc 9-12 ops | AOC | follow / truth after a mistake | "
             "foreign chain: truth / its last | filler at test: truth | correct with invalid chain |",
             "|---|---|---|---|---|---|---|---|---|"]
    for c in conditions:
        s = summary[c]
        ood = np.mean([s["accuracy"][n] for n in (9, 10, 11, 12)])
        probe = lambda k, fmt="{:.2f}": fmt.format(s[k]) if k in s else "-"  # noqa: E731
        lines.append(f"| {c} | {s['in_range']:.2f} | {s['accuracy'][1]:.2f} | {ood:.2f} | {probe('aoc')} | "
                     f"{probe('follow_rate')} / {probe('truth_rate')} | {probe('foreign_inserted_truth')} / "
                     f"{probe('foreign_inserted_last')} | {probe('filler_inserted_truth')} | "
                     + ("- |" if c == "nocot" else f"{s['invalid_chain_share_of_correct']:.0%} |"))
    lines += ["", "Linear probes at the answer position (held-out accuracy; chance 1/7):",
              "| condition | value after step 1 | middle step | final |", "|---|---|---|---|"]
    lines += [f"| {c} | " + " | ".join(f"{v:.2f}" for v in summary[c]["linear_probe"].values()) + " |"
              for c in conditions if "linear_probe" in summary[c]]
    lines += ["", f"Verdict under the pre-registered rule: **{verdict}**"] + [f"- {r}" for r in reasons]
    table = "\n".join(lines)
    train.write_results(out, table, {"config": dataclasses.asdict(exp), "runs": rows, "summary": summary, "verdict": verdict})

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(14, 3.8), dpi=90)
    lengths = sorted(summary[conditions[0]]["accuracy"])
    for c in conditions:
        ax1.plot(lengths, [summary[c]["accuracy"][n] for n in lengths], "o-", ms=3, label=c)
        if "early_answering_curve" in summary[c]:
            curve = summary[c]["early_answering_curve"]
            ax2.plot(np.linspace(0, 1, len(curve)), curve, "o-", ms=3, label=c)
    ax1.axvspan(1.5, 8.5, color="grey", alpha=0.1, label="trained lengths")
    ax1.axhline(0.1, color="k", ls=":", lw=1)
    ax1.set_xlabel("operations")
    ax1.set_ylabel("accuracy")
    ax1.set_title("accuracy by length")
    ax2.set_xlabel("share of the model's own chain kept")
    ax2.set_ylabel("answer = full-chain answer")
    ax2.set_title("early answering (6 operations)")
    cot_like = [c for c in conditions if "follow_rate" in summary[c]]
    x = np.arange(len(cot_like))
    ax3.bar(x - 0.2, [summary[c]["follow_rate"] for c in cot_like], 0.4, label="follows the mistake")
    ax3.bar(x + 0.2, [summary[c]["truth_rate"] for c in cot_like], 0.4, label="answers the truth")
    ax3.set_xticks(x, cot_like)
    ax3.set_title("a mistake inserted, the rest regenerated")
    for ax in (ax1, ax2, ax3):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    train.save_figure(fig, out / "cot_probe.png")
    print("\n" + table + f"\n\nwrote {out / 'results.json'}, {out / 'results.md'}, {out / 'cot_probe.png'}")
    return summary, verdict


def run(argv):
    try:
        exp = train.parse_args(argv, Experiment, __doc__)
        bad = [c for c in exp.conditions.split(",") if c not in CONDITIONS]
        if bad:
            raise train.ConfigError(f"unknown condition '{bad[0]}'; choose from: {', '.join(CONDITIONS)}")
        if min(exp.seeds, exp.steps, exp.batch_size, exp.n_layer) < 1 or exp.n_eval < 20 or exp.n_embd % 4:
            raise train.ConfigError("--seeds, --steps, --batch_size, --n_layer >= 1, --n_eval >= 20, --n_embd a multiple of 4")
    except train.ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rows = []
    for condition in exp.conditions.split(","):
        for seed in range(exp.seeds):
            model = train_condition(condition, seed, exp)
            rows.append(evaluate(model, condition, exp, seed))
            print(f"{condition} seed {seed}: accuracy 2-8 ops {rows[-1]['in_range']:.2f}", flush=True)
    report(rows, exp)
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
