"""Tests for infoflow.py: measures, exact beliefs, the Stern formula, regression, the GPT head, CSV input."""
import json
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
    ("game,t,belief\ng1,0,0.5\ng2,0,0.5\n", "row 2: game 'g1' has 1 row(s); need at least 2, and no game"),
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


def test_one_row_games_are_skipped_with_a_warning_and_ids_are_quoted(tmp_path, monkeypatch, capsys):
    write(tmp_path, 'game,t,belief\n"g, 1",0,0.5\n"g, 1",1,0.6\ng2,0,0.5\ng3,0,0.2\ng3,1,0.4\n')
    code, out, err = run_in(tmp_path, monkeypatch, capsys)
    assert code == 0, err
    assert "warning: row 4: game 'g2' has 1 row; skipped" in out and "(2 games; 1 skipped, see the warnings)" in out
    lines = (tmp_path / "out" / "infoflow" / "measures.csv").read_text().splitlines()
    assert lines[1].startswith('"g, 1",1,0.1') and lines[2].startswith("g3,1,0.2") and len(lines) == 3


def test_identical_ratings_say_so_in_one_line(tmp_path, monkeypatch, capsys):
    write(tmp_path, csv_with_ratings(lambda m: 7.0))
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("error")
        code, out, err = run_in(tmp_path, monkeypatch, capsys)
    assert code == 0 and "all 30 ratings are equal (7): no variance to explain, no regression" in out
    assert "R^2" not in out


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
    assert len(json.loads((tmp_path / "inf" / "results.json").read_text())["verdict"]) == 3
    assert all((tmp_path / "inf" / n).exists() for n in ("results.json", "results.md", "infoflow.png"))


def test_quick_run_is_smaller_writes_elsewhere_and_says_so(check_quick):
    """--quick=true: every size smaller, its own folder, flags given still win, verdicts marked quick."""
    full, quick = check_quick(inf.Experiment)
    assert quick.quick and lab.parse_args(["--quick=true", "--gpt_steps=7"], inf.Experiment).gpt_steps == 7
    p2s, runs = infoflow_inputs()
    assert all(v["quick"] and "--quick=true" in v["command"] for v in inf.verdicts(p2s, runs, quick))
    assert not any(v["quick"] or "--quick" in v["command"] for v in inf.verdicts(p2s, runs, full))


PREDICTORS = ("total surprise", "late surprise", "mean suspense", "final swing")


def infoflow_inputs(gpt=(0.40, 0.401, 0.399), bias=0.0, margin=0.3, reported=0.3):
    """Three seeds: part 2 where the true predictor wins by `margin` from exact beliefs and by `reported` from
    viewer reports (a number, or one per seed), OLS off its weights by `bias`; part 3 losses."""
    def table(win, d):
        return {m: {name: 0.5 + d + win * (name == truth) for name in PREDICTORS}
                for m, truth in inf.RATING_MODELS.items()}
    per_seed = lambda x: x if isinstance(x, tuple) else (x,) * 3
    p2s = [{"recovery": table(a, d), "recovery_reported": table(b, d),
            "fits": {"exact beliefs": {"coef": [w + bias + d for w in inf.TRUE_WEIGHTS.values()], "se": [0.1] * 4}}}
           for a, b, d in zip(per_seed(margin), per_seed(reported), (0.0, 0.01, -0.01))]
    runs = [{"loss_gpt": g, "loss_logistic": 0.42 + d, "loss_bayes_floor": 0.36, "loss_prior_only": 0.50 + d}
            for g, d in zip(gpt, (0.0, 0.001, -0.001))]
    return p2s, runs


def test_verdicts_on_each_side_of_the_rule_and_both_controls():
    exp = inf.Experiment()
    judged = lambda *a, exp=exp, **k: inf.verdicts(*infoflow_inputs(*a, **k), exp)
    verdict = lambda *a, **k: [v["verdict"] for v in judged(*a, **k)]
    assert verdict() == ["supported", "supported", "supported"]
    assert verdict(margin=-0.3) == ["not supported", "supported", "supported"]        # a rival predictor wins
    assert verdict(reported=-0.3) == ["supported", "not supported", "supported"]      # ... from viewer reports
    assert verdict(margin=(0.3, -0.2, 0.1))[0] == "inconclusive"                      # the interval straddles 0
    assert verdict(reported=(0.3, -0.2, 0.1))[1] == "inconclusive"
    assert verdict(gpt=(0.44, 0.441, 0.439)) == ["supported", "supported", "not supported"]
    assert verdict(gpt=(0.42, 0.40, 0.44))[2] == "inconclusive"
    assert verdict(bias=2.0)[:2] == ["inconclusive", "inconclusive"]                   # OLS misses the weights
    assert all(v["why"] == "the positive control did not pass" for v in judged(bias=2.0)[:2])
    assert verdict(bias=0.3)[0] == "inconclusive" and verdict(bias=0.1)[0] == "supported"  # 20% of the weight of 1
    assert verdict(gpt=(0.55, 0.551, 0.549))[2] == "inconclusive"          # a GPT worse than the odds: not trained
    assert [v["verdict"] for v in inf.verdicts(*infoflow_inputs(), inf.Experiment(rating_model="total"))[:2]] == \
        ["inconclusive"] * 2
    # part 2's claims count part 2's seeds, part 3's its own
    assert verdict(exp=inf.Experiment(part2_seeds=2)) == ["inconclusive", "inconclusive", "supported"]
    assert verdict(exp=inf.Experiment(seeds=2)) == ["supported", "supported", "inconclusive"]


def test_recovery_labels_say_in_how_many_seeds_each_model_was_found():
    exact, reported = judged = inf.verdicts(*infoflow_inputs(reported=(0.3, -0.2, 0.1)), inf.Experiment())[:2]
    assert "viewer reports" in reported["claim"] and "exact beliefs" in exact["claim"]
    assert all(f"{m}: found in 3 of 3 seeds; R^2 of {name} minus the best other" in exact["evidence"]
               for m, name in inf.RATING_MODELS.items())
    assert all(f"{m}: found in 2 of 3 seeds;" in reported["evidence"] for m in inf.RATING_MODELS), judged
    assert "found in 0 of 3 seeds" in inf.verdicts(*infoflow_inputs(reported=-0.3), inf.Experiment())[1]["evidence"]


def test_predictors_estimate_suspense_from_the_path_by_its_rms_change():
    paths = np.array([[0.5, 0.6, 0.4, 0.4, 0.7, 1.0]])                  # 4 steps, then the outcome
    p = inf.predictors(paths, 4)
    assert abs(p["mean suspense"][0] - np.sqrt((0.01 + 0.04 + 0 + 0.09) / 4)) < 1e-12   # the 4 steps, not the outcome
    assert abs(p["total surprise"][0] - 0.9) < 1e-12 and abs(p["late surprise"][0] - 0.6) < 1e-12
    assert abs(p["final swing"][0] - 0.6) < 1e-12                         # |1.0 - p at step int(0.9 * 4) = 3|
    assert inf.predictors(paths, 4, suspense=np.array([[0.1, 0.2, 0.3, 0.6]]))["mean suspense"][0] == pytest.approx(0.3)


def test_part2_reported_arm_uses_the_reports_and_no_model(monkeypatch):
    calls, real = [], inf.predictors
    monkeypatch.setattr(inf, "predictors", lambda paths, n, suspense=None: calls.append((paths, suspense))
                        or real(paths, n, suspense))
    games, reported, _, p2 = inf.part2(inf.Experiment(n_games=200, n_steps=20), np.random.default_rng(0))
    (exact_paths, exact_s), (rep_paths, rep_s) = calls
    assert exact_paths is games["beliefs"] and exact_s is games["suspense"]
    assert rep_paths is reported and rep_s is None and not np.array_equal(reported, games["beliefs"])
    assert p2["recovery"] != p2["recovery_reported"]


def test_report_noise_sets_the_viewers_noise_and_nothing_else():
    """--report_noise reaches the reports (0: the exact belief rounded to 0.05) and leaves the games and ratings as
    they were: the same random draws either way (WORKSHOP I4 reruns part 2 at 0)."""
    quiet, noisy = (inf.part2(inf.Experiment(n_games=100, n_steps=20, report_noise=sd), np.random.default_rng(3))
                    for sd in (0.0, 0.05))
    assert np.allclose(quiet[1], np.round(quiet[0]["beliefs"] / 0.05) * 0.05)
    assert not np.array_equal(noisy[1], quiet[1])
    assert np.array_equal(noisy[0]["beliefs"], quiet[0]["beliefs"]) and np.array_equal(noisy[2], quiet[2])
    assert quiet[3]["recovery"] == noisy[3]["recovery"]
    assert quiet[3]["recovery_reported"] != noisy[3]["recovery_reported"]
    with pytest.raises(lab.ConfigError, match="--report_noise >= 0"):
        lab.parse_args(["--report_noise=-0.1"], inf.Experiment)


def test_beliefs_see_only_the_events_so_far():
    """No look-ahead: the belief after k steps is P_k(score after the first k events), the first the prior."""
    games = inf.simulate_games(50, 12, ["late"], np.random.default_rng(6))
    for g in range(50):
        q = 0.5 + games["strengths"][g]
        P = inf.belief_table(inf.schedule("late", 12), q)
        score = np.concatenate([[0], np.cumsum(games["events"][g])])
        assert np.allclose(games["beliefs"][g, :-1], P[np.arange(13), score + 12], atol=1e-12)
        assert games["beliefs"][g, -1] == games["winners"][g]


def test_viewer_reports_are_noisy_not_the_exact_belief_rounded():
    beliefs = np.random.default_rng(7).uniform(0, 1, (200, 30))
    reports = inf.viewer_reports(beliefs, np.random.default_rng(8))
    rounded = inf.viewer_reports(beliefs, np.random.default_rng(8), noise=0)
    assert np.allclose(rounded, np.round(beliefs / 0.05) * 0.05)
    assert np.allclose(reports / 0.05, np.round(reports / 0.05)) and reports.min() >= 0 and reports.max() <= 1
    assert (reports != rounded).mean() > 0.5 and 0.03 < np.abs(reports - beliefs).mean() < 0.06


def test_ols_hc1_errors_match_the_group_means_closed_form():
    """Two dummy regressors (three groups): each slope is a difference of group means, whose HC0 variance is
    v_g / n_g + v_0 / n_0 (v: the group's variance about its mean, divided by n_g); HC1 scales it by n / (n - 3)."""
    rng = np.random.default_rng(9)
    group = np.repeat([0, 1, 2], [40, 25, 35])
    y = np.array([1.0, 2.0, 4.0])[group] + np.array([0.2, 1.0, 3.0])[group] * rng.standard_normal(100)
    X = np.column_stack([group == 1, group == 2]).astype(float)
    coef, se, _ = inf.ols(X, y, robust=True)
    v, n = [y[group == g].var() for g in range(3)], [np.sum(group == g) for g in range(3)]
    for j in (1, 2):
        assert abs(coef[j] - (y[group == j].mean() - y[group == 0].mean())) < 1e-12
        assert abs(se[j] - np.sqrt((v[j] / n[j] + v[0] / n[0]) * 100 / 97)) < 1e-12
    pooled = sum(v[g] * n[g] for g in range(3)) / 97                    # classical: one pooled variance
    assert abs(inf.ols(X, y)[1][1] - np.sqrt(pooled * (1 / n[1] + 1 / n[0]))) < 1e-12


def test_ols_names_a_zero_variance_regressor():
    X, y = np.column_stack([np.arange(5.0), np.zeros(5)]), np.arange(5.0) ** 2
    with pytest.raises(ValueError, match="^early: the same value for every row"):
        inf.ols(X[:, ::-1], y, names=["early", "late"])
    with pytest.raises(ValueError, match="^column 2: "):
        inf.ols(X, y)


def two_point_csv(tmp_path, flat=False):
    rng = np.random.default_rng(10)
    games = [(0.5 if flat else rng.uniform(), rng.uniform(1, 9)) for _ in range(12)]
    return write(tmp_path, "game,t,belief,rating\n" + "".join(f"g{g},{t},{0.5 if t == 0 else p},{r}\n"
                                                             for g, (p, r) in enumerate(games) for t in (0, 1)))


def test_two_points_per_game_leave_early_and_mid_out_of_the_regression(tmp_path, monkeypatch, capsys):
    two_point_csv(tmp_path)
    code, out, err = run_in(tmp_path, monkeypatch, capsys)
    assert code == 0, err
    assert "surprise_early, surprise_mid: the same value in every game" in out and "left out of the regression" in out
    rows = [line.split()[0] for line in out.split("rating ~ surprise")[1].splitlines()[1:] if line.strip()]
    assert rows == ["coef", "intercept", "surprise_late", "R^2", "wrote"], out
    two_point_csv(tmp_path, flat=True)
    code, out, err = run_in(tmp_path, monkeypatch, capsys)
    assert code == 0 and "no regressor left, no regression" in out and "R^2" not in out, out


def test_beliefs_flags_out_dir_and_robust_errors(tmp_path, monkeypatch, capsys):
    write(tmp_path, csv_with_ratings(lambda m: 1 + 2 * m["surprise_early"] + 5 * m["surprise_late"] ** 2))
    monkeypatch.chdir(tmp_path)
    se = {}
    for robust in ("false", "true"):
        assert inf.run([f"--beliefs={tmp_path / 'beliefs.csv'}", f"--out_dir=o_{robust}", f"--robust_se={robust}"]) == 0
        out = capsys.readouterr().out
        assert ("HC1 robust standard errors" in out) == (robust == "true")
        assert (tmp_path / f"o_{robust}" / "measures.csv").exists()
        se[robust] = next(line for line in out.splitlines() if line.split()[:1] == ["surprise_late"]).split()[2]
    assert se["true"] != se["false"]
    with pytest.raises(SystemExit):
        inf.run([f"--beliefs={tmp_path / 'beliefs.csv'}", "--help"])
    assert "--robust_se=False" in capsys.readouterr().out


@pytest.mark.parametrize("flag, msg", [("--robust_se=maybe", "--robust_se expects true or false"),
                                       ("--seeds=3", "unknown key 'seeds'"), ("--out_dir=", "--out_dir a folder")])
def test_beliefs_bad_flag_one_line_exit_2_and_write_nothing(tmp_path, monkeypatch, capsys, flag, msg):
    write(tmp_path, csv_with_ratings(lambda m: m["surprise"]))
    monkeypatch.chdir(tmp_path)
    assert inf.run([f"--beliefs={tmp_path / 'beliefs.csv'}", flag]) == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1 and sorted(os.listdir(tmp_path)) == ["beliefs.csv"], err


def test_part2_seeds_must_be_at_least_one():
    with pytest.raises(lab.ConfigError, match="--part2_seeds >= 1"):
        lab.parse_args(["--part2_seeds=0"], inf.Experiment)


@pytest.mark.slow
def test_run_end_to_end_records_both_recovery_tables(tmp_path, monkeypatch):
    """The whole run, tiny: wiring errors in run (an UnboundLocalError once) fail here; the default out_dir
    records results/infoflow.json (under tmp_path here, see conftest)."""
    monkeypatch.chdir(tmp_path)
    assert inf.run(["--n_games=60", "--n_steps=12", "--part2_seeds=3", "--gpt_train_games=100", "--gpt_test_games=10",
                    "--gpt_steps=2", "--gpt_batch=4", "--n_layer=1", "--n_embd=16", "--seeds=1"]) == 0
    data = json.loads((tmp_path / "results" / "infoflow.json").read_text())
    assert len(data["verdicts"]) == 3 and len(data["summary"]["part2_recovery_reported"]) == 3
    assert set(data["summary"]["part2_recovery_reported"][0]) == set(inf.RATING_MODELS)
    assert all((tmp_path / "out" / "infoflow" / n).exists() for n in ("results.json", "results.md", "infoflow.png"))


def test_beliefs_with_other_column_names_and_semicolons(tmp_path, monkeypatch, capsys):
    write(tmp_path, "Match;Minute;P(A)\nm1;0;0,5\nm1;1;0,75\nm1;2;1\n")
    monkeypatch.chdir(tmp_path)
    code = inf.run([f"--beliefs={tmp_path / 'beliefs.csv'}", "--columns=match=game,minute=t,p(a)=belief"])
    out, err = capsys.readouterr()
    assert code == 0, err
    row = (tmp_path / "out" / "infoflow" / "measures.csv").read_text().splitlines()[1].split(",")
    assert row[:3] == ["m1", "2", "0.5"]                              # two steps, total surprise 0.25 + 0.25
    code = inf.run([f"--beliefs={tmp_path / 'beliefs.csv'}", "--columns=minute"])
    assert code == 2 and "--columns must be their=ours pairs" in capsys.readouterr().err


def test_a_tied_game_goes_to_the_stronger_side_with_its_strength():
    """After the last step a tie is decided by one more point, won by A with probability q = 0.5 + strength (the
    belief table's last row says so); a coin flip there would still average 0.5 over strengths, so check by strength."""
    games = inf.simulate_games(30000, 2, ["flat"], np.random.default_rng(0))
    tied = games["events"].sum(1) == 0
    for s in (-0.15, 0.15):
        pick = tied & np.isclose(games["strengths"], s)
        assert pick.sum() > 1000 and abs(games["winners"][pick].mean() - (0.5 + s)) < 0.04
        assert np.allclose(games["beliefs"][pick, -2], 0.5 + s)        # the belief before the outcome: q
