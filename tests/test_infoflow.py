"""Tests for infoflow.py: measures, exact beliefs, the Stern formula, regression, the GPT head, CSV input."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import infoflow as inf
import lab
import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_measures_hand_case_and_segments_add_up():
    t = np.array([0, 1, 2, 3, 4, 5, 6.0])
    p = np.array([0.5, 0.6, 0.4, 0.4, 0.7, 0.2, 1.0])
    m = inf.measures(t, p)
    assert m["n_steps"] == 6 and abs(m["surprise"] - (0.1 + 0.2 + 0 + 0.3 + 0.5 + 0.8)) < 1e-12
    # later points at t = 1, 2 (<= 1/3 of 6) early; 3, 4 middle; 5, 6 late
    assert abs(m["surprise_early"] - 0.3) < 1e-12 and abs(m["surprise_mid"] - 0.3) < 1e-12
    assert abs(m["surprise_late"] - 1.3) < 1e-12
    assert abs(m["sq_changes"] - (0.01 + 0.04 + 0.09 + 0.25 + 0.64)) < 1e-12
    rng = np.random.default_rng(0)
    for _ in range(20):
        t = np.sort(rng.uniform(0, 10, 15))
        m = inf.measures(t, rng.uniform(0, 1, 15))
        assert abs(m["surprise_early"] + m["surprise_mid"] + m["surprise_late"] - m["surprise"]) < 1e-12


def test_exact_beliefs_approach_sterns_brownian_formula():
    """Many small steps: the random walk's exact belief is close to Stern's (1994) continuous formula
    P(A wins | lead l at time t) = Phi((l + (1 - t) mu) / (sigma sqrt(1 - t)))."""
    from math import erf, sqrt
    N, v, q = 400, 0.5, 0.55
    P = inf.belief_table(np.full(N, v), q)
    mu, sigma = N * v * (2 * q - 1), sqrt(N * v * (1 - v * (2 * q - 1) ** 2))   # per unit of game time
    for k, lead in ((0, 0), (200, 3), (300, -4)):
        t = k / N
        stern = 0.5 * (1 + erf((lead + (1 - t) * mu) / (sigma * sqrt(1 - t)) / sqrt(2)))
        assert abs(P[k][lead + N] - stern) < 0.03


@pytest.mark.parametrize("kind", ["early", "flat", "late"])
def test_exact_beliefs_are_a_martingale_with_total_information_p0_one_minus_p0(kind):
    v, q = inf.schedule(kind, 30), 0.6
    P = inf.belief_table(v, q)
    N = len(v)
    # martingale: E[p_{k+1} | x] = p_k(x) for every reachable state (all x here; the table is exact)
    for k in range(N):
        up = np.append(P[k + 1][1:], 1.0)
        down = np.insert(P[k + 1][:-1], 0, 0.0)
        expected = v[k] * (q * up + (1 - q) * down) + (1 - v[k]) * P[k + 1]
        inner = slice(N - k, N + k + 1)
        assert np.allclose(expected[inner], P[k][inner], atol=1e-14)
    # E[sum dp^2] over the path, outcome revealed at the end, = p0 (1 - p0): propagate the state distribution
    S = inf.suspense_table(P, v, q)
    dist = np.zeros(2 * N + 1)
    dist[N] = 1.0
    total = 0.0
    for k in range(N):
        total += dist @ S[k] ** 2
        dist = v[k] * (q * np.roll(dist, 1) + (1 - q) * np.roll(dist, -1)) + (1 - v[k]) * dist
    final = P[N]
    total += dist @ (final * (1 - final))  # the last step: the outcome replaces a tie's q
    p0 = P[0][N]
    assert abs(total - p0 * (1 - p0)) < 1e-12


def test_simulated_beliefs_match_the_monte_carlo_win_rate():
    games = inf.simulate_games(4000, 20, ["flat"], np.random.default_rng(2))
    p0, won = games["beliefs"][:, 0], games["winners"]
    assert abs(p0.mean() - won.mean()) < 4 * np.sqrt(0.25 / 4000)
    assert np.all((games["beliefs"] >= 0) & (games["beliefs"] <= 1))
    assert set(np.unique(games["beliefs"][:, -1])) <= {0.0, 1.0}


def test_regression_recovers_known_weights():
    rng = np.random.default_rng(3)
    X = rng.uniform(0, 1, (3000, 3))
    y = 2.0 + X @ np.array([0.5, -1.0, 3.0]) + 0.1 * rng.standard_normal(3000)
    coef, se, r2 = inf.ols(X, y)
    assert np.all(np.abs(coef - [2.0, 0.5, -1.0, 3.0]) < 4 * se) and np.all(se < 0.02) and r2 > 0.95


def test_win_probability_head_is_causal_and_in_unit_interval():
    torch.manual_seed(0)
    model = inf.WinProbabilityGPT(train.GPTConfig(vocab_size=len(inf.VOCAB), block_size=12, n_layer=2, n_head=2,
                                                  n_embd=16)).eval()
    games = inf.simulate_games(4, 11, ["flat"], np.random.default_rng(4))
    idx = inf.timeline_tokens(games["events"], games["strengths"])
    p = model.probabilities(idx)
    assert p.shape == (4, 12) and torch.all((p > 0) & (p < 1))
    changed = idx.clone()
    changed[:, 7:] = inf.STOI["A"]
    assert torch.equal(model.probabilities(changed)[:, :7], p[:, :7])


def write(tmp_path, content):
    path = tmp_path / "beliefs.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def run_in(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = inf.run([f"--beliefs={tmp_path / 'beliefs.csv'}"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("body, msg", [
    ("game,t,belief\ng1,0,0.5\ng1,1,1.2\n", "row 3: belief must be in [0, 1]"),
    ("game,t,belief\ng1,0,0.5\ng1,1,nan\n", "row 3: belief must be in [0, 1]"),
    ("game,t,belief\ng1,0,0.5\ng1,0,0.6\n", "row 3: times must increase"),
    ("game,t,belief\ng1,0,0.5\ng2,0,0.5\ng1,1,0.6\ng2,1,0.4\ng1,0.5,0.6\n", "row 6: times must increase"),
    ("game,t,belief\ng1,0,0.5\ng1,1,0.6\ng2,0,0.5\n", "row 4: game 'g2' has 1 row"),
    ("game,t,belief,rating\ng1,0,0.5,3\ng1,1,0.6,4\n", "row 3: the rating of a game changes"),
    ("game,time,belief\ng1,0,0.5\n", "row 1: columns must be"),
    ("game,t,belief\ng1,0,0.5\ng1,x,0.6\n", "row 3: t, belief must be numbers"),
    (b"game,t,belief\ng1,0,0.5\ng\xe91,1,0.6\n", "row 3: not UTF-8 text"),
])
def test_csv_errors_one_line_exit_2_and_write_nothing(tmp_path, monkeypatch, capsys, body, msg):
    write(tmp_path, body)
    code, _, err = run_in(tmp_path, monkeypatch, capsys)
    assert code == 2 and msg in err and err.count("\n") == 1, err
    assert sorted(os.listdir(tmp_path)) == ["beliefs.csv"]


def test_csv_error_from_the_command_line(tmp_path):
    path = write(tmp_path, b"game,t,belief\ng1,0,0.5\n\xff,1,0.6\n")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "infoflow.py"), f"--beliefs={path}"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("error: row 3: not UTF-8") and r.stderr.count("\n") == 1, r.stderr
    assert sorted(os.listdir(tmp_path)) == ["beliefs.csv"]


def csv_with_ratings(rating_of, bom=b""):
    rng = np.random.default_rng(5)
    lines = ["game,t,belief,rating"]
    for g in range(30):
        p = np.clip(0.5 + np.cumsum(rng.normal(0, 0.1, 10)), 0, 1)
        rating = rating_of(inf.measures(np.arange(10.0), p))
        lines += [f"g{g},{t},{p[t]},{rating}" for t in range(10)]
    return bom + ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_csv_end_to_end_with_ratings(tmp_path, monkeypatch, capsys, bom):
    write(tmp_path, csv_with_ratings(lambda m: 1 + 2 * m["surprise_early"] + 5 * m["surprise_late"], bom))
    code, out, err = run_in(tmp_path, monkeypatch, capsys)
    assert code == 0, err
    lines = (tmp_path / "out" / "infoflow" / "measures.csv").read_text().splitlines()
    assert lines[0] == "game,n_steps,surprise,surprise_early,surprise_mid,surprise_late,sq_changes" and len(lines) == 31
    late = next(line for line in out.splitlines() if line.split()[:1] == ["surprise_late"])
    assert abs(float(late.split()[1]) - 5) < 1e-6 and "R^2" in out


def test_identical_ratings_say_so_in_one_line(tmp_path, monkeypatch, capsys):
    write(tmp_path, csv_with_ratings(lambda m: 7.0))
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("error")
        code, out, err = run_in(tmp_path, monkeypatch, capsys)
    assert code == 0 and "all 30 ratings are equal (7): no variance to explain, no regression" in out and "R^2" not in out


def test_logistic_features_are_the_prefix_counts():
    events = np.array([[1, 0, -1, 1]])
    X = inf.prefix_features(events, [0.05]).numpy()
    assert X.shape == (1, 5, 10) and X[0, :, 4].tolist() == [1] * 5          # strength level 4 of 7
    assert X[0, :, 7].tolist() == [0, 1, 1, 1, 2] and X[0, :, 8].tolist() == [0, 0, 0, 1, 1]


def test_ratings_generated_by_each_model_are_found_by_the_comparison():
    exp = inf.Experiment(n_games=600, n_steps=30)
    _, _, _, p2 = inf.part2(exp, np.random.default_rng(0))
    for model, truth in inf.RATING_MODELS.items():
        assert max(p2["recovery"][model], key=p2["recovery"][model].get) == truth


@pytest.mark.slow
def test_smoke_experiment(tmp_path):
    exp = inf.Experiment(n_games=60, n_steps=12, gpt_train_games=200, gpt_test_games=20, gpt_steps=3, gpt_batch=8,
                         n_layer=1, n_embd=16, seeds=2, out_dir=str(tmp_path / "inf"))
    games, reported, ratings, p2 = inf.part2(exp, np.random.default_rng(0))
    runs = [inf.part3(exp, s) for s in (0, 1)]
    inf.report([p2, p2], [r for r, _, _ in runs], games, reported, ratings, runs[0][1], runs[0][2], exp)
    assert runs[0][0]["loss_bayes_floor"] < runs[0][0]["loss_prior_only"]
    import json
    assert len(json.loads((tmp_path / "inf" / "results.json").read_text())["verdict"]) == 2
    assert all((tmp_path / "inf" / n).exists() for n in ("results.json", "results.md", "infoflow.png"))


def test_quick_run_is_smaller_writes_elsewhere_and_says_so(check_quick):
    """--quick=true: every size smaller, its own folder, flags given still win, verdicts marked quick."""
    full, quick = check_quick(inf.Experiment)
    assert quick.quick and lab.parse_args(["--quick=true", "--gpt_steps=7"], inf.Experiment).gpt_steps == 7
    p2 = {"recovery": {m: {name: 0.9, "final swing": 0.1} for m, name in inf.RATING_MODELS.items()},
          "fits": {"exact beliefs": {"coef": list(inf.TRUE_WEIGHTS.values()), "se": [0.1] * 4}}}
    runs = [{"loss_gpt": 0.40, "loss_logistic": 0.38, "loss_bayes_floor": 0.36, "loss_prior_only": 0.50}]
    assert all(v["quick"] and "--quick=true" in v["command"] for v in inf.verdicts([p2], runs, quick))
    assert not any(v["quick"] or "--quick" in v["command"] for v in inf.verdicts([p2], runs, full))


def infoflow_inputs(gpt=(0.40, 0.401, 0.399), bias=0.0, margin=0.3):
    """Three seeds: part 2 where the true predictor wins by `margin`, OLS off its weights by `bias`; part 3 losses."""
    p2s = []
    for d in (0.0, 0.01, -0.01):
        recovery = {m: {name: 0.5 + d for name in ("total surprise", "late surprise", "mean suspense", "final swing")}
                    for m in inf.RATING_MODELS}
        for m, name in inf.RATING_MODELS.items():
            recovery[m][name] = 0.5 + margin + d
        coef = [w + bias + d for w in inf.TRUE_WEIGHTS.values()]
        p2s.append({"recovery": recovery, "fits": {"exact beliefs": {"coef": coef, "se": [0.1] * 4}}})
    runs = [{"loss_gpt": g, "loss_logistic": 0.42 + d, "loss_bayes_floor": 0.36, "loss_prior_only": 0.50 + d}
            for g, d in zip(gpt, (0.0, 0.001, -0.001))]
    return p2s, runs


def test_verdicts_on_each_side_of_the_rule_and_both_controls():
    exp = inf.Experiment()
    verdict = lambda *a, **k: [v["verdict"] for v in inf.verdicts(*infoflow_inputs(*a, **k), exp)]  # noqa: E731
    assert verdict() == ["supported", "supported"]
    assert verdict(margin=-0.3) == ["not supported", "supported"]        # a rival predictor wins
    assert verdict(gpt=(0.44, 0.441, 0.439)) == ["supported", "not supported"]
    assert verdict(gpt=(0.42, 0.40, 0.44))[1] == "inconclusive"
    assert verdict(bias=2.0)[0] == "inconclusive"                         # OLS misses the weights: control fails
    assert verdict(bias=0.3)[0] == "inconclusive" and verdict(bias=0.1)[0] == "supported"  # 20% of the weight of 1
    assert verdict(gpt=(0.55, 0.551, 0.549))[1] == "inconclusive"          # a GPT worse than the odds: not trained
    assert inf.verdicts(*infoflow_inputs(), inf.Experiment(rating_model="total"))[0]["verdict"] == "inconclusive"
