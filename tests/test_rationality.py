"""Tests for rationality.py: GARP, CCEI, Houtman-Maks, money pump, Bronars, CSV input."""
import itertools
import os
import subprocess
import sys

import numpy as np
import pytest

import rationality as rat

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def utility_maximiser(kind, T=40, K=3, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.2, 3.0, (T, K))
    m = rng.uniform(50, 150, T)
    a = rng.dirichlet(np.ones(K))
    if kind == "cobb-douglas":          # u = prod x_k^a_k: spend share a_k on good k
        x = a * m[:, None] / p
    elif kind == "ces":                 # u = (sum a_k x_k^rho)^(1/rho), rho = 0.5: x_k prop. to (a_k / p_k)^(1/(1-rho))
        w = (a / p) ** 2
        x = w * (m / (w * p).sum(1))[:, None]
    else:                               # Leontief u = min_k x_k / a_k: x = a * m / (p . a)
        x = a * (m / (p @ a))[:, None]
    return p, x


@pytest.mark.parametrize("kind", ["cobb-douglas", "ces", "leontief"])
def test_utility_maximisers_pass_with_ccei_exactly_one(kind):
    p, x = utility_maximiser(kind)
    assert rat.garp(p, x) and rat.ccei(p, x) == 1.0
    assert rat.houtman_maks(p, x) == (1.0, True)


def test_two_observation_hand_case():
    p, x = [[1, 2], [2, 1]], [[1, 4], [4, 1]]
    assert not rat.garp(p, x)
    assert abs(rat.ccei(p, x) - 2 / 3) < 1e-15
    assert rat.houtman_maks(p, x) == (0.5, True)
    mpi_max, mpi_min = rat.money_pump(p, x)
    assert abs(mpi_max - 6 / 18) < 1e-15 and abs(mpi_min - 6 / 18) < 1e-15  # (9-6 + 9-6) / (9+9)


def test_ties_only_fail_garp_with_ccei_one():
    p, x = [[1, 1], [2, 1]], [[1, 1], [2, 0]]
    assert not rat.garp(p, x) and rat.ccei(p, x) == 1.0


def brute_force_garp(p, x, rtol=1e-9):
    """Warshall closure of the weak relation, then look for i R j with j strictly preferred to i."""
    p, x = np.asarray(p, float), np.asarray(x, float)
    E = p @ x.T
    own = np.diag(E)
    R = (E <= own[:, None] * (1 + rtol))
    for k in range(len(E)):
        R = R | (R[:, [k]] & R[[k], :])
    strict = E < own[:, None] * (1 - rtol)
    return not np.any(R & strict.T & ~np.eye(len(E), dtype=bool))


def test_scc_garp_equals_brute_force_with_many_ties():
    rng = np.random.default_rng(0)
    for trial in range(400):
        T = rng.integers(2, 8)
        p = rng.integers(1, 4, (T, 2)).astype(float)  # small integers: many exact ties
        x = rng.integers(0, 4, (T, 2)).astype(float)
        x[x.sum(1) == 0, 0] = 1
        assert rat.garp(p, x) == brute_force_garp(p, x), (p, x)


def test_garp_holds_just_below_ccei_and_fails_just_above():
    rng = np.random.default_rng(1)
    for trial in range(50):
        p = rng.uniform(0.5, 2, (10, 2))
        x = rng.uniform(0, 10, (10, 2))
        c = rat.ccei(p, x)
        assert rat.garp(p, x, e=c * (1 - 1e-6))
        if c < 1:
            assert not rat.garp(p, x, e=c * (1 + 1e-6))


def test_indices_invariant_to_rescaling_and_reordering():
    rng = np.random.default_rng(2)
    p, x = rng.uniform(0.5, 2, (12, 3)), rng.uniform(0, 10, (12, 3))
    base = (rat.garp(p, x), rat.ccei(p, x), rat.houtman_maks(p, x))
    order = rng.permutation(12)
    scaled = (rat.garp(3.7 * p, x * [2.0, 0.5, 9.0] / [2.0, 0.5, 9.0] * 1.3),
              rat.ccei(3.7 * p, 1.3 * x), rat.houtman_maks(3.7 * p, 1.3 * x))
    reordered = (rat.garp(p[order], x[order]), rat.ccei(p[order], x[order]), rat.houtman_maks(p[order], x[order]))
    # units of a good: prices / c and quantities * c leave expenditures unchanged
    units = (rat.garp(p / [2, 5, 1], x * [2, 5, 1]), rat.ccei(p / [2, 5, 1], x * [2, 5, 1]),
             rat.houtman_maks(p / [2, 5, 1], x * [2, 5, 1]))
    assert base[0] == scaled[0] == reordered[0] == units[0]
    for other in (scaled, reordered, units):
        assert abs(base[1] - other[1]) < 1e-12 and abs(base[2][0] - other[2][0]) < 1e-12


def test_random_choosers_on_25_budgets_violate_garp():
    rng = np.random.default_rng(3)
    p = 1 / rng.uniform(0.1, 1, (25, 2))          # the paper's budgets: 100 points, 1 point -> M or N units
    power = rat.bronars_power(p, np.full((25, 2), 50.0) / p, n_sim=500, seed=4)  # spend 100 on each budget
    assert power >= 0.99


def test_houtman_maks_exact_small_brute_force():
    rng = np.random.default_rng(5)
    for trial in range(30):
        T = 6
        p, x = rng.uniform(0.5, 2, (T, 2)), rng.uniform(0, 10, (T, 2))
        best = max(len(s) for n in range(1, T + 1) for s in itertools.combinations(range(T), n)
                   if rat.garp(p[list(s)], x[list(s)]))
        hm, exact = rat.houtman_maks(p, x)
        assert exact and abs(hm - best / T) < 1e-12


def test_houtman_maks_greedy_is_a_feasible_lower_bound():
    rng = np.random.default_rng(6)
    p, x = rng.uniform(0.5, 2, (40, 2)), rng.uniform(0, 10, (40, 2))
    hm, exact = rat.houtman_maks(p, x, exact_max=3)
    assert not exact and 0 < hm < 1
    assert hm <= rat.houtman_maks(p, x, exact_max=3)[0] + 1e-12


def test_ratio_matrix_rejects_bad_shapes_and_empty_bundles():
    with pytest.raises(ValueError):
        rat.ratio_matrix([[1, 2]], [[1, 2, 3]])
    with pytest.raises(ValueError):
        rat.ratio_matrix([[1, 2], [1, 1]], [[0, 0], [1, 1]])


def write(tmp_path, text):
    path = tmp_path / "choices.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize("body, msg", [
    ("subject,p1,p2,x1,x2\na,1,2,1,4\na,2,-1,4,1\n", "row 3: prices must be positive"),
    ("subject,p1,p2,x1,x2\na,1,2,1,4\na,2,1,-4,1\n", "row 3: quantities must be non-negative"),
    ("subject,p1,p2,x1,x2\na,1,2,1,4\na,2,1,nan,1\n", "row 3: NaN"),
    ("subject,p1,p2,x1,x2\na,1,2,1,4\na,2,1,4\n", "row 3: 4 fields, expected 5"),
    ("subject,p1,p2,x1\na,1,2,1\n", "row 1: columns must be"),
    ("subject,p1,p2,x1,x2\na,1,2,1,4\na,2,1,4,1\nb,1,1,1,1\n", "row 4: subject 'b' has 1 observation"),
])
def test_csv_errors_exit_2_and_write_nothing(tmp_path, body, msg):
    path = write(tmp_path, body)
    r = subprocess.run([sys.executable, os.path.join(ROOT, "rationality.py"), f"--data={path}"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and msg in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert sorted(os.listdir(tmp_path)) == ["choices.csv"]


def test_csv_end_to_end(tmp_path):
    path = write(tmp_path, "subject,p1,p2,x1,x2\na,1,2,1,4\na,2,1,4,1\nb,1,1,1,1\nb,2,1,2,0\nc,1,2,5,0\nc,2,1,0,5\n")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "rationality.py"), f"--data={path}"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = (tmp_path / "out" / "rationality" / "indices.csv").read_text().splitlines()
    assert lines[0] == "subject,n_obs,garp,ccei,houtman_maks"
    a, b, c = (line.split(",") for line in lines[1:])
    assert a[:3] == ["a", "2", "false"] and abs(float(a[3]) - 2 / 3) < 1e-9 and float(a[4]) == 0.5
    assert b[:4] == ["b", "2", "false", "1"]
    assert c[:4] == ["c", "2", "true", "1"]


# --- parts 2 and 3 -------------------------------------------------------------

def test_budget_generator_follows_the_paper():
    mn = rat.draw_budgets(5000, np.random.default_rng(0))
    assert mn.shape == (5000, 2) and mn.min() >= 0.1 and mn.max() <= 1.0
    assert np.all(mn.max(1) >= 0.5) and np.allclose(mn, np.round(mn, 2))
    p = rat.budget_prices(mn)
    x = rat.bundles(mn[None], np.full((1, 5000), 37.0))[0]
    assert np.allclose((p * x).sum(1), 100)  # every allocation spends the 100 points


def test_optimal_points_maximise_ces_utility():
    rng = np.random.default_rng(1)
    mn = rat.draw_budgets(30, rng)
    a = rat.optimal_points(mn, 0.3, 0.0)              # rho = 0 is Cobb-Douglas: spend share alpha on A
    assert np.allclose(a, 30.0)
    a = rat.optimal_points(mn, 0.6, -0.5)
    x = rat.bundles(mn[None], a[None])[0]
    assert rat.ccei(rat.budget_prices(mn), x) == 1.0  # a noiseless maximiser is consistent
    u = lambda pts: (0.6 * (pts * mn[:, 0]) ** -0.5 + 0.4 * ((100 - pts) * mn[:, 1]) ** -0.5) ** -2  # noqa: E731
    assert np.all(u(a) >= u(np.clip(a + 1, 0.01, 99.99)) - 1e-9) and np.all(u(a) >= u(np.clip(a - 1, 0.01, 99.99)) - 1e-9)


def test_prompts_have_one_length_per_frame_and_answers_parse():
    mn = rat.draw_budgets(200, np.random.default_rng(2))
    for frame in ("plain", "price", "discrete"):
        lengths = {len(rat.prompt_text(d, row, frame)) for d in rat.DOMAINS for row in mn}
        assert len(lengths) == 1
        assert all(c in rat.STOI for c in rat.prompt_text("soci", mn[0], frame) + "100\n")
    assert rat.parse_answer("62\n4", "plain") == 62 and rat.parse_answer("100\n", "plain") == 100
    assert rat.parse_answer("101\n", "plain") is None and rat.parse_answer("6.\n", "plain") is None
    assert rat.parse_answer("60\n", "discrete") == 60 and rat.parse_answer("62\n", "discrete") is None


def test_noise_calibration_hits_its_target_and_is_monotone():
    loose = rat.calibrate_noise("risk", 0.95, n_subjects=40)
    tight = rat.calibrate_noise("risk", 0.99, n_subjects=40)
    assert tight < loose
    value = rat.mean_ccei(*rat.people_choices("risk", 40, 25, tight, np.random.default_rng(0)))
    assert abs(value - 0.99) < 0.005


@pytest.mark.slow
def test_smoke_parts_2_and_3(tmp_path):
    exp = rat.Experiment(n_people=10, gpt_runs=3, temperatures="0,1", train_steps=3, n_random=5, part3_subjects=12,
                         calibration_subjects=8, out_dir=str(tmp_path / "rat"))
    rng = np.random.default_rng(0)
    part2, people, demand, losses = rat.part2(exp, rng)
    part3 = rat.part3(exp, rng)
    rat.report(part2, people, demand, part3, exp)
    assert set(part2) == set(rat.DOMAINS) and "gpt_price_T0" in part2["risk"] and len(losses) == 3
    assert set(part3) == {"one skill", "multidimensional"}
    assert all((tmp_path / "rat" / n).exists() for n in ("results.json", "results.md", "rationality.png"))
