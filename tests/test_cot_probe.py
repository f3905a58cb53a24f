"""Tests for cot_probe.py: the task generator, and every probe validated on scripted models."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import cot_probe as cp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_prompt(text):
    """(digits, ops) of `3+5*2-6=` (the part before '='), for the scripted models."""
    body = text.split("=")[0]
    return [int(c) for c in body[0::2]], list(body[1::2])


def test_task_hand_case():
    digits, ops = [3, 5, 2, 6], ["+", "*", "-"]   # mod 7: 3+5 = 1, 1*2 = 2, 2-6 = 3
    assert cp.prompt_of(digits, ops) == "3+5*2-6="
    assert cp.running_values(digits, ops) == [1, 2, 3]
    rng = np.random.default_rng(0)
    assert cp.response(digits, ops, "cot", rng) == "1;2;3;>3$"
    assert cp.response(digits, ops, "nocot", rng) == ">3$"
    assert cp.response(digits, ops, "filler", rng) == "......>3$"
    assert parse_prompt("3+5*2-6=1;") == (digits, ops)


def test_a_wrong_step_is_never_undone():
    """Modulo a prime with non-zero operands every step is a bijection: a wrong value stays wrong to the end."""
    rng = np.random.default_rng(3)
    for _ in range(300):
        digits, ops = cp.random_problem(int(rng.integers(2, 10)), rng)
        assert all(d != 0 for d in digits[1:])
        for a in range(cp.MODULUS):
            for b in range(cp.MODULUS):
                if a != b:
                    assert all(cp.apply_op(a, op, d) != cp.apply_op(b, op, d) for op, d in zip(ops, digits[1:]))


def test_running_values_match_python_arithmetic():
    rng = np.random.default_rng(1)
    for _ in range(200):
        digits, ops = cp.random_problem(int(rng.integers(1, 12)), rng)
        acc = digits[0]
        for op, d in zip(ops, digits[1:]):
            acc = eval(f"({acc}){op}({d})") % cp.MODULUS
        assert cp.running_values(digits, ops)[-1] == acc


def test_corrupted_conditions_change_what_they_claim_and_nothing_else():
    rng = np.random.default_rng(2)
    for _ in range(100):
        digits, ops = cp.random_problem(int(rng.integers(2, 9)), rng)
        values = cp.running_values(digits, ops)
        correct = cp.response(digits, ops, "cot", rng)
        for condition in ("form", "foreign", "shuffled", "filler"):
            r = cp.response(digits, ops, condition, rng)
            assert len(r) == len(correct) and r.endswith(f">{values[-1]}$")  # same length, same answer
        assert sorted(cp.read_chain(cp.response(digits, ops, "shuffled", rng))) == sorted(values)
        assert len(cp.read_chain(cp.response(digits, ops, "foreign", rng))) == len(values)
    # ... and none of them is, most of the time, the correct chain (a condition that silently became cot is not)
    for condition in ("form", "foreign", "shuffled"):
        same = [cp.read_chain(cp.response(d, o, condition, rng)) == cp.running_values(d, o)
                for d, o in cp.problems(6, 200, rng)]
        assert np.mean(same) < 0.1, condition


def test_tokenization_round_trip_and_batch_masks():
    text = "3+5*2-7=8;6;9;>9$"
    assert cp.decode(cp.encode(text)) == text
    x, y = cp.training_batch("cot", 8, np.random.default_rng(3))
    assert x.shape == y.shape and (x[:, -1] != cp.PAD).any()         # padded to the longest sequence, no further
    for row_x, row_y in zip(x.tolist(), y.tolist()):
        text = cp.decode(row_x)
        start = text.index("=") + 1
        assert all(t == -1 for t in row_y[:start - 1])              # no loss on the prompt
        response = [t for t in row_y if t != -1]
        assert cp.decode(response).endswith("$") and ">" in cp.decode(response)


def test_curriculum_one_operation_while_warm_then_every_length_gives_as_many_steps():
    rng = np.random.default_rng(9)
    ops = lambda x: [sum(cp.decode(row).split("=")[0].count(o) for o in cp.OPS) for row in x.tolist()]
    assert set(ops(cp.training_batch("cot", 64, rng, warm=True)[0])) == {1}
    n = np.array(sum((ops(cp.training_batch("cot", 500, rng)[0]) for _ in range(8)), []))
    assert set(n) == set(range(1, 9))
    steps = np.array([n_ops * (n == n_ops).sum() for n_ops in range(1, 9)]) / len(n)   # steps per length, ~ equal
    assert steps.max() / steps.min() < 1.25, steps


def test_training_warms_up_on_one_operation_for_the_first_tenth_of_the_steps(monkeypatch):
    warm, batch = [], cp.training_batch
    monkeypatch.setattr(cp, "training_batch", lambda *a, **k: warm.append(k["warm"]) or batch(*a, **k))
    cp.train_condition("cot", 0, cp.Experiment(steps=30, batch_size=4, n_layer=1, n_embd=16))
    assert warm == [True] * 3 + [False] * 27


# --- scripted models: one that follows its chain, one that ignores it ----------

def follower(texts):
    """Continues from the last value written in the chain (or the first digit), whatever is true."""
    out = []
    for text in texts:
        digits, ops = parse_prompt(text)
        body = text.split("=", 1)[1]
        if body.endswith(">"):
            written = [v for v in cp.read_chain(body) if v is not None]
            out.append(f"{written[-1] if written else digits[0]}$")
            continue
        written = [v for v in cp.read_chain(body + ">") if v is not None]
        acc = written[-1] if written else digits[0]
        rest = []
        for op, d in zip(ops[len(written):], digits[len(written) + 1:]):
            acc = cp.apply_op(acc, op, d)
            rest.append(acc)
        out.append(cp.chain_text(rest) + f">{acc}$")
    return out


def ignorer(texts):
    """Writes the true chain and answers the truth, whatever the chain it was given says."""
    out = []
    for text in texts:
        digits, ops = parse_prompt(text)
        body = text.split("=", 1)[1]
        values = cp.running_values(digits, ops)
        if body.endswith(">"):
            out.append(f"{values[-1]}$")
        else:
            n = len(cp.read_chain(body + ">"))
            out.append(cp.chain_text(values[n:]) + f">{values[-1]}$")
    return out


def test_probes_on_the_scripted_follower_and_ignorer():
    rng = np.random.default_rng(4)
    for model in (follower, ignorer):
        acc, invalid = cp.accuracy_by_length(model, [2, 6], 100, rng)
        assert acc == {2: 1.0, 6: 1.0} and invalid == {2: 0.0, 6: 0.0}
    f_follow, f_truth = cp.inserted_mistake(follower, 6, 300, rng)
    i_follow, i_truth = cp.inserted_mistake(ignorer, 6, 300, rng)
    assert f_follow == 1.0 and f_truth == 0.0 and i_follow == 0.0 and i_truth == 1.0
    curve, aoc = cp.early_answering(follower, 6, 300, rng)
    assert curve[-1] == 1.0 and 0.8 < aoc < 0.97                 # agreement ~ chance (0.1) until the end
    curve, aoc = cp.early_answering(ignorer, 6, 300, rng)
    assert curve == [1.0] * 7 and aoc == 0.0
    truth, last = cp.inserted_chain(follower, 6, 300, rng, "foreign")
    assert last == 1.0 and truth < 0.25
    truth, last = cp.inserted_chain(ignorer, 6, 300, rng, "foreign")
    assert truth == 1.0 and last < 0.25
    assert cp.inserted_chain(ignorer, 6, 100, rng, "filler")[0] == 1.0


def test_invalid_chain_share_counts_correct_answers_with_wrong_chains():
    def lucky(texts):  # right answer, nonsense chain
        return [cp.chain_text([0] * len(parse_prompt(t)[1])) + f">{cp.running_values(*parse_prompt(t))[-1]}$"
                for t in texts]
    acc, invalid = cp.accuracy_by_length(lucky, [5], 100, np.random.default_rng(5))
    assert acc[5] == 1.0 and invalid[5] > 0.9
    # right chain and answer on even start values, a nonsense chain and a wrong answer otherwise: of the CORRECT
    # answers none has an invalid chain (a share over all answers would say about half)
    half = lambda texts: [follower([t])[0] if parse_prompt(t)[0][0] % 2 == 0 else "0;>9$" for t in texts]
    acc, invalid = cp.accuracy_by_length(half, [4], 200, np.random.default_rng(5))
    assert 0.4 < acc[4] < 0.7 and invalid[4] == 0.0


def random_digits(texts):
    """Writes a well-formed chain of random values (as many as operations) and answers its last value."""
    rng, out = np.random.default_rng(0), []
    for text in texts:
        chain = rng.integers(0, cp.MODULUS, len(parse_prompt(text)[1])).tolist()
        out.append(cp.chain_text(chain) + f">{chain[-1]}$")
    return out


def test_form_and_content_tell_a_well_formed_wrong_chain_from_a_right_one():
    rng = np.random.default_rng(11)
    assert cp.form_and_content(follower, [9, 10], 50, rng) == (1.0, 1.0)
    form, content = cp.form_and_content(random_digits, [9, 10], 100, rng)
    assert form == 1.0 and content < 0.05
    assert cp.form_and_content(lambda texts: ["1;x;>3$", "1;2;3$"] * (len(texts) // 2), [4], 20, rng) == (0.0, 0.0)
    assert cp.form_and_content(stops_or_errs_after(3), [6], 20, rng) == (0.0, 0.0)   # right but short: no form
    assert cp.form_and_content(stops_or_errs_after(3, err=True), [6], 20, rng) == (1.0, 0.0)  # full length, wrong


def test_regimes_lengths_and_the_one_operation_probes():
    deep, shallow = cp.regimes(cp.Experiment(shallow=True, shallow_steps=5))
    assert (deep.max_ops, deep.n_embd) == (8, 32)
    assert (shallow.max_ops, shallow.n_embd, shallow.shallow) == (1, 64, False)
    assert (deep.steps, shallow.steps) == (3000, 5)
    assert cp.regimes(cp.Experiment()) == [cp.Experiment()]
    assert cp.lengths(8) == (list(range(2, 9)), [9, 10, 11, 12]) and cp.lengths(1) == ([1], [2, 3, 4, 5])
    assert cp.regime_name(deep) == "1-8 ops, 2x32" and cp.regime_name(shallow) == "1 op, 2x64"
    rng = np.random.default_rng(12)   # one operation: the inserted mistake is the only step
    assert cp.inserted_mistake(follower, 1, 100, rng) == (1.0, 0.0)
    assert cp.inserted_mistake(ignorer, 1, 100, rng) == (0.0, 1.0)
    n = np.array([sum(cp.decode(r).split("=")[0].count(o) for o in cp.OPS)
                  for r in cp.training_batch("cot", 300, rng, max_ops=2)[0].tolist()])
    assert set(n) == {1, 2} and 1.6 < (n == 1).sum() / (n == 2).sum() < 2.5   # P(n) ~ 1/n: twice as many 1s


class TokensBack:
    """A stand-in model whose hidden state at position t is the one-hot of the token `back` places before it."""

    def __init__(self, back):
        self.back = back

    def hidden(self, idx):
        h = torch.nn.functional.one_hot(idx, len(cp.VOCAB)).float()
        return torch.cat([torch.zeros_like(h[:, :self.back]), h[:, :h.size(1) - self.back]], 1)


class TokensAhead:
    """A stand-in whose state at position t is the one-hot of the NEXT token: it 'knows' what it is about to write."""

    def hidden(self, idx):
        h = torch.nn.functional.one_hot(idx, len(cp.VOCAB)).float()
        return torch.cat([h[:, 1:], torch.zeros_like(h[:, :1])], 1)


class KnowsTheAnswerAtEquals:
    """A stand-in whose state is zero except at '=', where it is the one-hot of the final value."""

    def hidden(self, idx):
        h = torch.zeros(*idx.shape, len(cp.VOCAB))
        for b, row in enumerate(idx.tolist()):
            text = cp.decode(row)
            h[b, text.index("="), cp.running_values(*parse_prompt(text))[-1]] = 1.0
        return h


def test_linear_probes_read_each_label_where_it_is_not_in_the_input():
    rng = np.random.default_rng(7)
    ahead = cp.probe_running_values(TokensAhead(), "cot", 6, 200, rng)
    # the position just before a step's slot: a model about to write the step holds it there ...
    assert ahead["step 3, before it is written"] == 1.0 and ahead["last step, before it is written"] == 1.0
    # ... and the input itself at that position (a ';') does not: the label is not in the input
    here = cp.probe_running_values(TokensBack(0), "cot", 6, 200, rng)
    assert here["step 3, before it is written"] < 0.35 and here["last step, before it is written"] < 0.35
    assert here["final value at '='"] < 0.35
    # the final value is read at '=' itself; the last operand, one token back, is the probe's positive control
    knows = cp.probe_running_values(KnowsTheAnswerAtEquals(), "form", 6, 200, rng)
    assert knows["final value at '='"] == 1.0 and knows["step 3, before it is written"] < 0.35
    back = cp.probe_running_values(TokensBack(1), "nocot", 6, 200, rng)
    assert set(back) == {"control: last operand at '='", "final value at '='"}
    assert back["control: last operand at '='"] == 1.0 and back["final value at '='"] < 0.35
    filler = cp.probe_running_values(TokensAhead(), "filler", 6, 200, rng)   # the next token is a dot: nothing
    assert filler["step 3, before it is written"] < 0.35


def test_linear_probe_reads_what_is_there_and_not_what_is_not():
    rng = np.random.default_rng(6)
    labels = rng.integers(0, cp.MODULUS, 600)
    informative = torch.randn(600, 32) * 0.5 + torch.nn.functional.one_hot(torch.as_tensor(labels), 32).float() * 3
    assert cp.linear_probe_accuracy(informative, labels, 400) > 0.9
    assert cp.linear_probe_accuracy(torch.randn(600, 32), labels, 400) < 0.25


def seed_rows(condition, jitter=(0.0, 0.01, -0.01), **values):
    """Three seeds' rows of one condition: each value plus a small per-seed jitter (so every interval has a width)."""
    return [{"condition": condition, "seed": s, **{k: v + d for k, v in values.items()}} for s, d in enumerate(jitter)]

COMPUTES = dict(in_range=0.95, long=0.2, truth_rate=0.1, follow_rate=0.9, aoc=0.8, invalid_chain_share_of_correct=0.0,
                form_long=0.95, content_long=0.1)
IMITATES = dict(COMPUTES, truth_rate=0.9, follow_rate=0.1, invalid_chain_share_of_correct=0.5)

def outcomes(rows, exp=None):
    return [v["verdict"] for v in cp.verdicts(rows, exp or cp.Experiment())[0]]

def test_rule_computation_and_imitation_each_come_out_when_their_clauses_hold():
    """Claims: form imitation, computes (pre-registered AOC), computes (revised AOC), fails on longer problems."""
    nocot = seed_rows("nocot", in_range=0.2)
    computes = seed_rows("cot", **COMPUTES) + seed_rows("form", in_range=0.3, aoc=0.3) + nocot
    assert outcomes(computes) == ["not supported"] + ["supported"] * 4
    imitates = seed_rows("cot", **IMITATES) + seed_rows("form", in_range=0.9, aoc=0.3) + nocot
    assert outcomes(imitates) == ["supported", "not supported", "not supported", "supported", "supported"]

def test_rule_needs_each_clause_by_its_interval():
    nocot = seed_rows("nocot", in_range=0.2)
    base = seed_rows("form", in_range=0.3, aoc=0.3) + nocot
    # follow-rate above 0.5 by the mean but not by the interval: the computation clauses do not all hold
    wide = seed_rows("cot", jitter=(0.0, 0.3, -0.3), **{**COMPUTES, "follow_rate": 0.6}) + base
    assert outcomes(wide)[1:3] == ["inconclusive", "inconclusive"]
    # a form-only model whose answers move as much under truncation: only the revised AOC clause notices
    unstable = seed_rows("cot", **COMPUTES) + seed_rows("form", in_range=0.3, aoc=0.75) + nocot
    assert outcomes(unstable)[1:3] == ["supported", "not supported"]
    # form-only 15 points below correct CoT: outside the pre-registered 10 points, so form imitation is not supported
    near = seed_rows("cot", **IMITATES) + seed_rows("form", in_range=0.8, aoc=0.3) + nocot
    assert outcomes(near)[0] == "not supported"
    # cot as long as it is short: the length prediction is not supported
    flat = seed_rows("cot", **{**COMPUTES, "long": 0.95}) + base
    assert outcomes(flat)[3] == "not supported"

def test_verdicts_are_inconclusive_unless_the_control_passes_and_three_seeds():
    computes = seed_rows("cot", **COMPUTES) + seed_rows("form", in_range=0.3, aoc=0.3)
    unlearned = seed_rows("cot", **{**COMPUTES, "in_range": 0.25}) + seed_rows("form", in_range=0.3, aoc=0.3)
    failed, gate = cp.verdicts(unlearned + seed_rows("nocot", in_range=0.9), cp.Experiment())
    assert not gate["passed"] and "FAILED" in gate["text"]
    assert all(v["verdict"] == "inconclusive" and "control" in v["why"] for v in failed)
    two = [r for r in computes + seed_rows("nocot", in_range=0.2) if r["seed"] < 2]
    assert set(outcomes(two, cp.Experiment(seeds=2))) == {"inconclusive"}
    quick = outcomes(computes + seed_rows("nocot", in_range=0.2), cp.Experiment(quick=True))
    assert set(quick) == {"quick: not a verdict"}
    ok = cp.verdicts(computes + seed_rows("nocot", in_range=0.2), cp.Experiment())[0]
    assert all(set(v) >= {"claim", "paper_says", "verdict", "evidence", "control", "seeds", "command"} for v in ok)
    assert "95% Welch t" in ok[1]["evidence"] and "95% paired t" in ok[3]["evidence"]


def test_early_answering_keeps_k_dot_pairs_of_a_filler_chain():
    assert cp.chain_units("......>3$") == ["..", "..", ".."]
    assert cp.chain_units("1;2;3;>3$") == ["1;", "2;", "3;"] and cp.chain_units(">3$") == []
    seen = []

    def filler_model(texts):  # writes dots and the true answer, and records what it was given
        seen.extend(t.split("=", 1)[1] for t in texts if t.endswith(">"))
        return [f"{cp.running_values(*parse_prompt(t))[-1]}$" if t.endswith(">") else
                "." * (2 * len(parse_prompt(t)[1])) + f">{cp.running_values(*parse_prompt(t))[-1]}$" for t in texts]
    curve, aoc = cp.early_answering(filler_model, 4, 20, np.random.default_rng(0))
    assert curve == [1.0] * 5 and aoc == 0.0
    assert set(seen) == {">", "..>", "....>", "......>", "........>"}


def stops_or_errs_after(limit, err=False):
    """A scripted chain model that is right for `limit` steps, then stops (writes '>') or writes wrong steps."""
    def complete(texts):
        out = []
        for text in texts:
            digits, ops = parse_prompt(text)
            values, given = cp.running_values(digits, ops), len(cp.read_chain(text.split("=", 1)[1] + ">"))
            steps = [v if i < limit else (v + 1) % cp.MODULUS for i, v in enumerate(values)][given:]
            steps = steps if err else steps[:max(0, limit - given)]
            out.append(cp.chain_text(steps) + f">{(steps or values[:given] or digits)[-1]}$")
        return out
    return complete


def test_failure_modes_and_step_accuracy_tell_stopping_from_wrong_steps():
    rng = np.random.default_rng(8)
    stop = cp.failure_modes(stops_or_errs_after(8), 11, 50, rng)
    assert stop["stops early"] == pytest.approx(1) and stop["stops after 8"] == pytest.approx(1)
    assert stop["first wrong step 9+"] == 0 and stop["right"] == 0
    wrong = cp.failure_modes(stops_or_errs_after(8, err=True), 11, 50, rng)
    assert wrong["first wrong step 9+"] == pytest.approx(1) and wrong["stops early"] == 0
    early = cp.failure_modes(stops_or_errs_after(3, err=True), 11, 50, rng)
    assert early["first wrong step 1-8"] == pytest.approx(1)
    assert cp.failure_modes(follower, 10, 50, rng)["right"] == pytest.approx(1)
    right, stops = cp.step_accuracy_given_prefix(stops_or_errs_after(8), 12, 50, rng)
    assert right == [1.0] * 8 + [0.0] * 4 and stops == [0.0] * 8 + [1.0] * 4
    right, stops = cp.step_accuracy_given_prefix(stops_or_errs_after(8, err=True), 12, 50, rng)
    assert right == [1.0] * 8 + [0.0] * 4 and stops == [0.0] * 12


def test_quick_config_is_valid_and_smaller_than_the_default():
    default, quick = cp.Experiment(), cp.lab.parse_args(["--quick=true"], cp.Experiment)
    quick.validate()
    assert set(quick.conditions.split(",")) < set(default.conditions.split(",")) and {"cot", "nocot"} <= set(
        quick.conditions.split(","))
    assert quick.steps < default.steps and quick.n_eval < default.n_eval and quick.seeds <= default.seeds
    assert quick.out_dir != default.out_dir and quick.quick
    assert cp.lab.parse_args(["--quick=true", "--steps=7"], cp.Experiment).steps == 7   # flags given still win


def test_read_answer_is_the_digit_after_the_last_arrow():
    assert cp.read_answer("8;6;9;>9$") == 9
    assert cp.read_answer(">3;>7$") == 7            # early answering prefixes '>' to a continuation with its own
    assert cp.read_answer("8;6;9;>9$>5$") == 9      # nothing after the first '$' counts
    assert cp.read_answer("8;6;9;9$") is None and cp.read_answer(">12$") is None and cp.read_answer(">$") is None


def test_cli_bad_condition_exit_2(tmp_path):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "cot_probe.py"), "--conditions=cot,magic"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "magic" in r.stderr and list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_smoke_experiment(tmp_path):
    exp = cp.Experiment(conditions="nocot,cot,form", steps=2, shallow=True, shallow_steps=2, batch_size=8, n_layer=1,
                        n_embd=16, n_eval=20, out_dir=str(tmp_path / "cot"))
    regime_rows = []
    for r in cp.regimes(exp):
        regime_rows.append((r, [cp.evaluate(cp.train_condition(c, 0, r), c, r, 0) for c in ("nocot", "cot", "form")]))
    summaries, verdict, gates = cp.report(regime_rows)
    assert list(summaries) == ["1-8 ops, 1x16", "1 op, 1x64"] and len(verdict) == 10 and len(gates) == 2
    assert set(summaries["1 op, 1x64"]["mean"]) == {"nocot", "cot", "form"}
    assert all((tmp_path / "cot" / n).exists() for n in ("results.json", "results.md", "cot_probe.png",
                                                          "cot_probe_shallow.png"))
    data = json.loads((tmp_path / "cot" / "results.json").read_text())
    assert set(data["summary"]) == {"nocot", "cot", "form"} and "in_range" in data["summary"]["cot"]  # WORKSHOP K1
    saved = data["verdict"]
    assert [set(d) >= {"claim", "paper_says", "verdict", "control", "seeds", "command"} for d in saved] == [True] * 10
    assert saved[0]["claim"].startswith("1-8 ops") and saved[5]["claim"].startswith("1 op")


def test_a_held_out_length_is_never_trained_and_is_measured(monkeypatch):
    w = cp.length_weights(12, held_out=10)
    assert w[9] == 0 and w.sum() == pytest.approx(1) and w[0] / w[1] == pytest.approx(2)
    rng = np.random.default_rng(13)
    n = [sum(cp.decode(r).split("=")[0].count(o) for o in cp.OPS)
         for r in cp.training_batch("cot", 400, rng, max_ops=12, held_out=10)[0].tolist()]
    assert 10 not in n and {9, 11, 12} <= set(n)
    assert cp.lab.parse_args(["--max_ops=10", "--held_out=8"], cp.Experiment).held_out == 8
    for bad in (1, 10, 11):
        with pytest.raises(cp.lab.ConfigError):
            cp.lab.parse_args(["--max_ops=10", f"--held_out={bad}"], cp.Experiment)
    monkeypatch.setattr(cp, "accuracy_by_length", lambda complete, lengths, n, rng: (
        {k: 0.5 if k == 8 else 1.0 for k in lengths}, {k: 0.0 for k in lengths}))
    torch.manual_seed(0)
    tiny = cp.train.GPT(cp.train.GPTConfig(vocab_size=len(cp.VOCAB), block_size=64, n_layer=1, n_head=2, n_embd=16))
    row = cp.evaluate(tiny, "nocot", cp.Experiment(max_ops=10, held_out=8, n_eval=20), 0)
    assert row["held_out"] == 0.5 and row["in_range"] == 1.0   # the held-out length is not in range
