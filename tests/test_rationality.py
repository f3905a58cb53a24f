"""Tests for rationality.py: GARP, CCEI, Houtman-Maks, money pump, Bronars, CSV input, parts 2-3."""
import itertools
import os
import subprocess
import sys

import numpy as np
import pytest

import rationality as rat
import lab

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
    assert rat.houtman_maks(p, x) == (1.0, True, 1.0) and rat.money_pump(p, x) == (0.0, 0.0, True)


def test_two_observation_hand_case():
    p, x = [[1, 2], [2, 1]], [[1, 4], [4, 1]]
    assert not rat.garp(p, x)
    assert abs(rat.ccei(p, x) - 2 / 3) < 1e-15
    assert rat.houtman_maks(p, x) == (0.5, True, 0.5)
    mpi_max, mpi_min, exact = rat.money_pump(p, x)
    assert exact and abs(mpi_max - 6 / 18) < 1e-15 and abs(mpi_min - 6 / 18) < 1e-15  # (9-6 + 9-6) / (9+9)


def test_three_cycle_money_pump_by_hand():
    """0 -> 2 -> 1 -> 0 is the only violating cycle (no 2-cycle): gains E00-E02, E22-E21, E11-E10."""
    p = [[1, 4, 1], [3, 1, 2], [1, 1, 4]]
    x = [[0, 3, 3], [2, 4, 1], [3, 1, 2]]        # E = [[15, 19, 9], [9, 12, 14], [15, 10, 12]]
    mpi_max, mpi_min, exact = rat.money_pump(p, x)
    expected = ((15 - 9) + (12 - 10) + (12 - 9)) / (15 + 12 + 12)
    assert exact and abs(mpi_max - expected) < 1e-15 and abs(mpi_min - expected) < 1e-15


def all_cycle_mpis(p, x, rtol=1e-9):
    """Every simple violating cycle's MPI by enumeration (ties: weak edges with zero gain)."""
    p, x = np.asarray(p, float), np.asarray(x, float)
    E = p @ x.T
    own = np.diag(E)
    weak, strict = rat.relations(E / own[:, None], 1.0, rtol)
    values = []
    for n in range(2, len(E) + 1):
        for cyc in itertools.permutations(range(len(E)), n):
            edges = list(zip(cyc, cyc[1:] + cyc[:1]))
            if cyc[0] == min(cyc) and all(weak[a, b] for a, b in edges) and any(strict[a, b] for a, b in edges):
                values.append(sum(own[a] - E[a, b] for a, b in edges if strict[a, b]) / own[list(cyc)].sum())
    return values


def test_money_pump_equals_enumeration_of_every_cycle():
    rng = np.random.default_rng(7)
    seen_inexact = 0
    for trial in range(150):
        T = int(rng.integers(2, 7))
        if trial % 2:   # small integers: many ties and identical bundles
            p, x = rng.integers(1, 4, (T, 2)).astype(float), rng.integers(0, 4, (T, 2)).astype(float)
            x[x.sum(1) == 0, 0] = 1
        else:
            p, x = rng.uniform(0.5, 2, (T, 3)), rng.uniform(0, 10, (T, 3))
        values = all_cycle_mpis(p, x) or [0.0]
        mpi_max, mpi_min, exact = rat.money_pump(p, x)
        assert abs(mpi_max - max(values)) < 1e-12, (p, x)
        assert (abs(mpi_min - min(values)) < 1e-12) if exact else (mpi_min >= min(values) - 1e-12), (p, x)
        seen_inexact += not exact
    assert seen_inexact > 0   # the tie-cycle case was exercised


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
    for _ in range(400):
        T = rng.integers(2, 8)
        p = rng.integers(1, 4, (T, 2)).astype(float)  # small integers: many exact ties
        x = rng.integers(0, 4, (T, 2)).astype(float)
        x[x.sum(1) == 0, 0] = 1
        assert rat.garp(p, x) == brute_force_garp(p, x), (p, x)


def three_cycle_through(middle, T):
    """A ratio matrix (T, T) whose only violation is the 3-cycle a -> middle -> b, b -P-> a: no 2-cycle, so only the
    closure through `middle` finds it (the last pivot of Warshall's loop when middle = T - 1). Returns R, (a, b)."""
    a, b = [k for k in (0, 1, 2, T - 1) if k != middle][:2]
    R = np.full((T, T), 1.5)
    np.fill_diagonal(R, 1.0)
    R[a, middle] = R[middle, b] = 1.0                 # ties: weak edges, not strict (no other witness)
    R[b, a] = 0.9
    return R, (a, b)


@pytest.mark.parametrize("T", [3, 60, 61, 80])    # T <= 60: Warshall's closure; above: strongly connected components
def test_a_violation_found_only_through_the_last_observation(T):
    for middle in (0, T - 1):
        R, (a, b) = three_cycle_through(middle, T)
        assert rat.violates_many(R[None], 1.0)[0], (T, middle)
        R[b, a] = 1.5                                   # no strict edge back: GARP holds
        assert not rat.violates_many(R[None], 1.0)[0], (T, middle)


def test_garp_beyond_60_observations_equals_brute_force():
    rng = np.random.default_rng(9)
    for _ in range(6):
        p, x = rng.uniform(0.5, 2, (70, 2)), rng.uniform(0, 10, (70, 2))
        x[rng.random(70) < 0.9] = x[0] * rng.uniform(0.5, 1.5)   # mostly scaled copies: few, long violations
        assert rat.garp(p, x) == brute_force_garp(p, x)


def test_ccei_of_an_almost_free_violation_is_its_tiny_ratio():
    # each bundle costs 1e-6 of the other's budget: strictly preferred both ways; GARP_e holds only for e <= 1e-6
    p, x = [[1, 1e-6], [1e-6, 1]], [[1, 0], [0, 1]]
    assert rat.ccei(p, x) == pytest.approx(1e-6) and not rat.garp(p, x, e=2e-6) and rat.garp(p, x, e=1e-6)
    # a good with price 0: each bundle is free at the other's prices; GARP_e fails for every e > 0, so the CCEI is 0
    assert rat.ccei([[1, 0], [0, 1]], [[1, 0], [0, 1]]) == 0.0 and rat.garp([[1, 0], [0, 1]], [[1, 0], [0, 1]], e=0.0)


def test_garp_holds_just_below_ccei_and_fails_just_above():
    rng = np.random.default_rng(1)
    for _ in range(50):
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


def bronars_power(p, x, n_sim=1000, seed=0):
    """Share of uniform-random choosers on the same budgets (prices and spending) who violate GARP (Bronars 1987)."""
    p = np.asarray(p, dtype=np.float64)
    budget = np.einsum("tk,tk->t", p, np.asarray(x, dtype=np.float64))
    return float(rat.bronars_many(p[None], budget[None], n_sim, [seed])[0][0])


def test_random_choosers_on_25_budgets_violate_garp():
    rng = np.random.default_rng(3)
    p = 1 / rng.uniform(0.1, 1, (25, 2))          # the paper's budgets: 100 points, 1 point -> M or N units
    power = bronars_power(p, np.full((25, 2), 50.0) / p, n_sim=500, seed=4)  # spend 100 on each budget
    assert power >= 0.99


def test_houtman_maks_exact_equals_brute_force():
    rng = np.random.default_rng(5)
    for _ in range(30):
        T = 9
        p, x = rng.uniform(0.5, 2, (T, 2)), rng.uniform(0, 10, (T, 2))
        best = max(len(s) for n in range(1, T + 1) for s in itertools.combinations(range(T), n)
                   if rat.garp(p[list(s)], x[list(s)]))
        hm, exact, upper = rat.houtman_maks(p, x)
        assert exact and abs(hm - best / T) < 1e-12 and upper == hm


def test_houtman_maks_beyond_greedy_and_bounded_after_the_time_limit():
    rng = np.random.default_rng(6)
    p = rng.uniform(0.1, 1.0, (60, 2))
    x = rat.random_bundles(p, np.ones(60), rng)
    hm, exact, upper = rat.houtman_maks(p, x)
    greedy = 1 - len(rat._greedy_removal(rat.ratio_matrix(p, x), 1e-9)) / 60
    assert exact and hm == upper and hm > greedy                 # the greedy bound is not optimal here
    low, exact_fast, up = rat.houtman_maks(p, x, time_limit=1e-9)
    assert not exact_fast and low <= hm <= up and low < up


def test_random_bundles_lie_on_the_budget_line():
    rng = np.random.default_rng(8)
    p, budget = rng.uniform(0.5, 2, (3, 25, 4)), rng.uniform(50, 150, (3, 25))
    x = rat.random_bundles(p, budget, rng)
    assert np.all(x >= 0) and np.allclose((p * x).sum(-1), budget, rtol=1e-12)


def test_batched_ccei_and_garp_equal_one_at_a_time():
    rng = np.random.default_rng(9)
    p, x = rng.integers(1, 4, (300, 7, 2)).astype(float), rng.integers(0, 4, (300, 7, 2)).astype(float)
    x[x.sum(-1) == 0, 0] = 1
    R = np.stack([rat.ratio_matrix(a, b) for a, b in zip(p, x)])
    assert np.array_equal(rat.ccei_many(R), [rat.ccei(a, b) for a, b in zip(p, x)])
    assert np.array_equal(rat.violates_many(R, 1.0, 1e-9), [not rat.garp(a, b) for a, b in zip(p, x)])
    assert np.array_equal(rat.violates_many(R, 1.0, 1e-9), [brute_force_garp(a, b) is False for a, b in zip(p, x)])


def test_ratio_matrix_rejects_bad_shapes_and_empty_bundles():
    with pytest.raises(ValueError):
        rat.ratio_matrix([[1, 2]], [[1, 2, 3]])
    with pytest.raises(ValueError):
        rat.ratio_matrix([[1, 2], [1, 1]], [[0, 0], [1, 1]])


# --- Varian's index -----------------------------------------------------------
def brute_force_varian(p, x, rtol=1e-9, below=1e-7):
    """max mean(c) over every vector c with each c_t in {0, 1} U {R_tj: j != t, 0 < R_tj < 1} for which GARP holds
    (Warshall's closure, ties within rtol weak and not strict) at e_t = c_t (1 - below): just below each candidate,
    the supremum (c_t = 0: e_t = 0 exactly, e_t cannot go lower). Vectorised over all the vectors at once."""
    p, x = np.asarray(p, float), np.asarray(x, float)
    E = p @ x.T
    R = E / np.diag(E)[:, None]
    T = len(R)
    candidates = [sorted({0.0, 1.0} | {float(r) for j, r in enumerate(R[t]) if j != t and 0 < r < 1}) for t in range(T)]
    c = np.array(list(itertools.product(*candidates)))                      # (N, T)
    e = (c * (1 - below))[:, :, None]
    off = ~np.eye(T, dtype=bool)
    weak, strict = (R <= e * (1 + rtol)) & off, (R < e * (1 - rtol)) & off
    reach = weak.copy()
    for k in range(T):
        reach |= reach[:, :, k:k + 1] & reach[:, k:k + 1, :]
    ok = ~np.any(reach & strict.transpose(0, 2, 1), axis=(1, 2))
    return float(c[ok].mean(1).max())


def dynamic_programming_varian(p, x, rtol=1e-9):
    """The same index as a best order (no free bundles, R > 0): edges point down a topological order, so each t
    placed below a set S gets e_t = min(1, min over its edges into S of R_tj); dp over subsets placed on top."""
    R = rat.ratio_matrix(p, x)
    T = len(R)
    W = np.where((R < 1 - rtol) & ~np.eye(T, dtype=bool), R, 1.0)
    assert W.min() > 0
    low = np.ones((1 << T, T))                          # low[S, t] = min(1, min_{j in S} W[t, j])
    for S in range(1, 1 << T):
        low[S] = np.minimum(low[S & (S - 1)], W[:, (S & -S).bit_length() - 1])
    dp = np.full(1 << T, -np.inf)
    dp[0] = 0.0
    for S in range(1 << T):
        for t in range(T):
            if not S >> t & 1:
                dp[S | 1 << t] = max(dp[S | 1 << t], dp[S] + low[S, t])
    return dp[-1] / T


def from_ratios(R):
    """Data with the ratio matrix R (unit diagonal, R >= 0): prices p_t = R_t, bundle t = one unit of good t."""
    R = np.asarray(R, float)
    return R, np.eye(len(R))


def random_data(rng, kind, T, K):
    if kind == 0:                                       # continuous: no ties
        return rng.uniform(0.5, 2, (T, K)), rng.uniform(0, 10, (T, K))
    if kind == 1:                                       # small integers: ties and repeated bundles
        p, x = rng.integers(1, 4, (T, K)).astype(float), rng.integers(0, 4, (T, K)).astype(float)
        x[x.sum(1) == 0, 0] = 1
        return p, x
    if kind == 2:                                       # free goods (price 0): bundles free at other prices
        p, x = rng.integers(0, 3, (T, K)).astype(float), rng.integers(0, 3, (T, K)).astype(float)
        x[x.sum(1) == 0, 0] = 1
        p[(p * x).sum(1) == 0] += x[(p * x).sum(1) == 0] > 0
        return p, x
    p, x = rng.uniform(0.5, 2, (T, K)), rng.uniform(0, 10, (T, K))   # repeated bundles, bundles on a budget line
    for t in range(1, T):
        s, u = int(rng.integers(0, t)), rng.random()
        if u < 0.3:
            x[t] = x[s]
        elif u < 0.7:
            x[t] = x[t] * (p[s] @ x[s]) / (p[s] @ x[t])  # exactly on s's budget line (up to rounding)
    return p, x


def test_varian_is_one_where_garp_holds_or_fails_through_ties_only():
    rng = np.random.default_rng(0)
    p, m, a = rng.uniform(0.2, 3.0, (40, 3)), rng.uniform(50, 150, 40), rng.dirichlet(np.ones(3))
    for x in (a * m[:, None] / p, a * (m / (p @ a))[:, None]):   # Cobb-Douglas and Leontief maximisers
        assert rat.garp(p, x) and rat.varian(p, x) == (1.0, True)
    p, x = [[1, 1], [2, 1]], [[1, 1], [2, 0]]           # E = [[2, 2], [3, 4]]: 0 -> 1 a tie, 1 -> 0 strict
    assert not rat.garp(p, x) and rat.ccei(p, x) == 1.0 and rat.varian(p, x) == (1.0, True)
    p, x = from_ratios([[1, 1, 2], [2, 1, 0.5], [0.6, 2, 1]])   # 0 -> 1 a tie closes 1 -> 2 -> 0 (strict)
    assert not rat.garp(p, x) and rat.varian(p, x) == (1.0, True)


def test_varian_two_observations_by_hand():
    p, x = [[1, 2], [2, 1]], [[1, 4], [4, 1]]          # E = [[9, 6], [6, 9]]: both ratios 2/3
    v, exact = rat.varian(p, x)
    assert exact and abs(v - (1 + 2 / 3) / 2) < 1e-15 and abs(rat.ccei(p, x) - 2 / 3) < 1e-15
    p, x = from_ratios([[1, 0.5], [0.8, 1]])            # lower the one whose edge costs least: e = (1, 0.8)
    v, exact = rat.varian(p, x)
    assert exact and abs(v - 0.9) < 1e-15 and abs(rat.ccei(p, x) - 0.8) < 1e-15
    assert rat.houtman_maks(p, x)[0] == 0.5


def test_varian_lowers_the_observation_on_both_cycles():
    # 2-cycles 0 <-> 1 and 0 <-> 2: e_0 = 0.9 breaks both (mean 2.9 / 3); e_1 = e_2 = 0.9 only 2.8 / 3, and
    # e_0 = 0.95 (breaking 0 <-> 2) with e_1 = 0.9 2.85 / 3
    p, x = from_ratios([[1, 0.9, 0.95], [0.9, 1, 2], [0.9, 2, 1]])
    v, exact = rat.varian(p, x)
    assert exact and abs(v - 2.9 / 3) < 1e-15 and abs(rat.ccei(p, x) - 0.9) < 1e-15


def test_varian_solves_each_violating_component_and_keeps_one_elsewhere():
    R = np.full((5, 5), 2.0)
    np.fill_diagonal(R, 1.0)
    R[0, 1] = R[1, 0] = 2 / 3                           # a 2-cycle: 1 + 2/3
    R[2, 3], R[3, 2] = 0.5, 0.8                         # another: 1 + 0.8
    R[4, :4] = 0.7                                      # observation 4 prefers all, none prefers it: e_4 = 1
    v, exact = rat.varian(*from_ratios(R))
    assert exact and abs(v - (1 + 2 / 3 + 1 + 0.8 + 1) / 5) < 1e-15


def test_varian_with_free_bundles_by_hand():
    # each bundle free at the other's prices: 0 R 1 at every e_0 >= 0, strictly for e_0 > 0; so e = 0 (CCEI 0 too)
    p, x = from_ratios([[1, 0], [0, 1]])
    assert rat.varian(p, x) == (0.0, True) and rat.ccei(p, x) == 0.0
    p, x = from_ratios([[1, 0], [0.5, 1]])              # one side free: e_0 = 1, e_1 = 0.5
    assert rat.varian(p, x) == (0.75, True)
    # 0 <-> 1 free both ways (e = 0), 0 -> 2 free: that weak edge closes 2 -> 0 (R 0.5), so e_2 = 0.5
    p, x = from_ratios([[1, 0, 0], [0, 1, 2], [0.5, 2, 1]])
    assert rat.varian(p, x) == (0.5 / 3, True) and brute_force_varian(p, x) == 0.5 / 3


def test_varian_equals_brute_force_on_small_data_with_ties():
    rng = np.random.default_rng(1)
    seen = dict(below_one=0, ties_only=0, above_ccei=0, above_hm=0, free=0)
    for trial in range(320):
        kind, T, K = trial % 4, int(rng.integers(2, 6 if trial % 5 else 7)), int(rng.integers(2, 4))
        p, x = random_data(rng, kind, T, K)
        v, exact = rat.varian(p, x)
        c, best = rat.ccei(p, x), brute_force_varian(p, x)
        assert exact and abs(v - best) < 1e-12, (p, x, v, best)
        assert c <= v <= 1 and (v == 1) == (c == 1), (p, x)
        if np.all(p > 0):                               # no free bundles: a dropped observation reveals nothing
            hm = rat.houtman_maks(p, x)[0]
            assert hm <= v + 1e-15, (p, x)
            seen["above_hm"] += hm < v < 1
        seen["below_one"] += v < 1
        seen["ties_only"] += v == 1 and not rat.garp(p, x)
        seen["above_ccei"] += c < v < 1
        seen["free"] += v < 1 and np.any(rat.ratio_matrix(p, x) == 0)
    assert min(seen.values()) >= 5, seen                # every case was exercised


def test_varian_equals_dynamic_programming_on_larger_data():
    rng = np.random.default_rng(2)
    for trial in range(24):
        T = int(rng.integers(7, 12))
        if trial % 2:
            p, x = random_data(rng, 1, T, 2)
        else:
            p = rng.uniform(0.1, 1.0, (T, 2))
            x = rat.random_bundles(p, np.ones(T), rng)
        v, exact = rat.varian(p, x)
        assert exact and abs(v - dynamic_programming_varian(p, x)) < 1e-12, (p, x)


def test_varian_invariant_to_reordering_and_rescaling():
    rng = np.random.default_rng(3)
    p = rng.uniform(0.1, 1.0, (15, 3))
    x = rat.random_bundles(p, np.ones(15), rng)
    order, scale = rng.permutation(15), rng.uniform(0.5, 5, (15, 1))
    v, exact = rat.varian(p, x)
    assert exact and v < 1
    assert abs(rat.varian(p[order] * scale, 3 * x[order])[0] - v) < 1e-12   # prices per budget, units


def test_varian_after_its_time_limit_is_feasible_and_marked():
    rng = np.random.default_rng(4)
    p = rng.uniform(0.1, 1.0, (40, 2))
    x = rat.random_bundles(p, np.ones(40), rng)
    v, exact = rat.varian(p, x)
    fast, fast_exact = rat.varian(p, x, time_limit=1e-9)
    assert exact and not fast_exact
    assert rat.ccei(p, x) <= fast <= v and v < 1


def write(tmp_path, content):
    path = tmp_path / "choices.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def indices(tmp_path):
    """The rows of the indices.csv a run wrote, as {column: text}; its header is rationality's COLUMNS."""
    import csv
    with open(tmp_path / "out" / "rationality" / "indices.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == rat.COLUMNS
    return [dict(zip(rows[0], r)) for r in rows[1:]]


def run_in(tmp_path, monkeypatch, capsys, *args):
    """rationality.run in tmp_path (in process: no second torch import); returns (code, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)
    code = rat.run([f"--data={tmp_path / 'choices.csv'}", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("body, msg", [
    ("subject,p1,p2,x1,x2\na,1,2,1,4\na,2,-1,4,1\n", "row 3: prices must be positive"),
    ("subject,p1,p2,x1,x2\na,1,2,1,4\na,2,1,-4,1\n", "row 3: quantities must be non-negative"),
    ("subject,p1,p2,x1,x2\na,1,2,1,4\na,2,1,nan,1\n", "row 3: NaN"),
    ("subject,p1,p2,x1,x2\na,1,2,1,4\na,2,1,4\n", "row 3: 4 fields, expected 5"),
    ("subject,p1,p2,x1,x2\na,1,2,1,4\na,2,one,4,1\n", "row 3: p1, p2, x1, x2 must be numbers"),
    ("subject,p1,p2,x1\na,1,2,1\n", "row 1: columns must be"),
    ("subject,p1,p2,x1,x2\nb,1,1,1,1\n", "row 2: subject 'b' has 1 row(s); need at least 2"),
    ("subject,p1,p2,x1,x2\na,1e300,2,1,4\na,2,1,4,1\n", "row 2: |value| above 1e+100"),
    (b"subject,p1,p2,x1,x2\na,1,2,1,4\nb\xe9,2,1,4,1\n", "row 3: not UTF-8 text (byte 0xe9)"),
    ("subject,p1,p2,x1,x2\n" + "a,1,2,1,4\n" * 6,
     "row 2: subject 'a' has 6 observations; the dense T x T method takes at most 5"),
])
def test_csv_errors_one_line_exit_2_and_write_nothing(tmp_path, monkeypatch, capsys, body, msg):
    monkeypatch.setattr(rat, "MAX_OBS", 5)
    write(tmp_path, body)
    code, _, err = run_in(tmp_path, monkeypatch, capsys)
    assert code == 2 and msg in err and err.count("\n") == 1, err
    assert sorted(os.listdir(tmp_path)) == ["choices.csv"]


def test_csv_error_from_the_command_line(tmp_path):
    path = write(tmp_path, b"subject,p1,p2,x1,x2\na,1,2,1,4\n\xff\xfe,2,1,4,1\n")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "rationality.py"), f"--data={path}"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("error: row 3: not UTF-8") and r.stderr.count("\n") == 1, r.stderr
    assert sorted(os.listdir(tmp_path)) == ["choices.csv"]


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_csv_end_to_end_with_or_without_a_byte_order_mark(tmp_path, monkeypatch, capsys, bom):
    write(tmp_path, bom + b"subject,p1,p2,x1,x2\na,1,2,1,4\na,2,1,4,1\nb,1,1,1,1\nb,2,1,2,0\nc,1,2,5,0\nc,2,1,0,5\n")
    code, out, err = run_in(tmp_path, monkeypatch, capsys, "--bronars=50")
    assert code == 0, err
    lines = (tmp_path / "out" / "rationality" / "indices.csv").read_text().splitlines()
    assert lines[0] == ",".join(rat.COLUMNS)
    a, b, c = (dict(zip(rat.COLUMNS, line.split(","))) for line in lines[1:])
    assert (a["garp"], a["houtman_maks"], a["hm_exact"]) == ("false", "0.5", "true")
    assert abs(float(a["ccei"]) - 2 / 3) < 1e-9
    assert abs(float(a["mpi_max"]) - 6 / 18) < 1e-9
    assert abs(float(a["varian"]) - 5 / 6) < 1e-9 and a["varian_exact"] == "true" and b["varian"] == "1"
    assert (b["garp"], b["ccei"], c["garp"], c["ccei"], c["mpi_max"]) == ("false", "1", "true", "1", "0")
    assert "subjects 3/3 (100%)" in out


def test_csv_quotes_names_maps_columns_and_skips_a_one_row_subject(tmp_path, monkeypatch, capsys):
    write(tmp_path, 'ID;Price A;Price B;Qty A;Qty B\n"Smith, J";1;2;1;4\n"Smith, J";2;1;4,5;1\nsolo;1;1;1;1\n')
    code, out, err = run_in(tmp_path, monkeypatch, capsys, "--bronars=20",
                            "--columns=id=subject,price a=p1,price b=p2,qty a=x1,qty b=x2")
    assert code == 0, err
    assert "warning: row 4: subject 'solo' has 1 row(s)" in out and "1 subject(s) with one row left out" in out
    lines = (tmp_path / "out" / "rationality" / "indices.csv").read_text().splitlines()
    assert len(lines) == 2 and lines[1].startswith('"Smith, J",2,false,')          # quoted: 12 fields, not 13
    import csv
    assert len(next(csv.reader(lines[1:]))) == len(rat.COLUMNS)


def test_bronars_power_of_a_subject_does_not_depend_on_the_others():
    rng = np.random.default_rng(8)
    p = rng.uniform(0.5, 2.0, (3, 10, 2))
    budget = np.ones((3, 10))
    alone = rat.bronars_many(p[1:2], budget[1:2], 200, [rat.subject_seed("b")])
    together = rat.bronars_many(p, budget, 200, [rat.subject_seed(n) for n in "abc"])
    assert alone[0][0] == together[0][1] and alone[1][0] == together[1][1]
    assert together[1][1] == pytest.approx(np.sqrt(together[0][1] * (1 - together[0][1]) / 200))
    assert rat.subject_seed("b") == rat.subject_seed("b") != rat.subject_seed("c")


def test_csv_marks_a_houtman_maks_bound(tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(6)
    p = rng.uniform(0.1, 1.0, (60, 2))
    x = rat.random_bundles(p, np.ones(60), rng)
    write(tmp_path, "subject,p1,p2,x1,x2\n" + "".join(f"s,{a},{b},{c},{d}\n" for (a, b), (c, d) in zip(p, x)))
    code, out, err = run_in(tmp_path, monkeypatch, capsys, "--bronars=0", "--hm_time_limit=1e-9")
    row = indices(tmp_path)[0]
    assert code == 0 and row["hm_exact"] == "false" and float(row["houtman_maks"]) < float(row["hm_upper"])
    assert "*" in next(line for line in out.splitlines() if line.split()[0] == "s")


# --- parts 2 and 3 -------------------------------------------------------------

def test_budget_generator_follows_the_paper():
    mn = rat.draw_budgets(5000, np.random.default_rng(0))
    assert mn.shape == (5000, 2) and mn.min() >= 0.1 and mn.max() <= 1.0
    assert np.all(mn.max(1) >= 0.5) and np.allclose(mn, np.round(mn, 2))
    test = rat.draw_budgets(5000, np.random.default_rng(1), "test")   # held-out budgets: never in training
    assert not {tuple(r) for r in np.round(100 * mn).astype(int)} & {tuple(r) for r in np.round(100 * test).astype(int)}
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
    u = lambda pts: (0.6 * (pts * mn[:, 0]) ** -0.5 + 0.4 * ((100 - pts) * mn[:, 1]) ** -0.5) ** -2
    for step in (1, -1):
        assert np.all(u(a) >= u(np.clip(a + step, 0.01, 99.99)) - 1e-9)


def test_prompts_have_one_length_per_frame_and_answers_parse():
    mn = rat.draw_budgets(200, np.random.default_rng(2))
    for frame in ("plain", "price", "discrete"):
        lengths = {len(rat.prompt_text(d, row, frame, k)) for d in rat.DOMAINS for row in mn for k in range(8)}
        assert len(lengths) == 1
        assert all(c in rat.STOI for c in rat.prompt_text("soci", mn[0], frame, 7) + "100\n")
    assert rat.prompt_text("risk", (0.53, 0.87), "plain", 3) == "risk p3 0.53 0.87>"
    assert rat.parse_answer("62\n4", "plain") == 62 and rat.parse_answer("100\n", "plain") == 100
    assert rat.parse_answer("101\n", "plain") is None and rat.parse_answer("6.\n", "plain") is None
    assert rat.parse_answer("60\n", "discrete") == 60 and rat.parse_answer("62\n", "discrete") is None


def test_noise_calibration_hits_its_target_and_is_monotone():
    loose = rat.calibrate_noise("risk", 0.95, n_subjects=40)
    tight = rat.calibrate_noise("risk", 0.99, n_subjects=40)
    assert tight < loose
    value = rat.ccei_of_runs(*rat.people_choices("risk", 40, 25, tight, np.random.default_rng(0))).mean()
    assert abs(value - 0.99) < 0.005


def rationality_runs(gpt, people=0.97, random=0.7, weight0_supermarket=0.0, people_slope=1.0):
    """Three seeds of part 2 (every domain alike) and part 3 at weights 0 and 1, with a little per-seed jitter."""
    jitter = (0.0, 0.004, -0.004)
    runs2 = [dict.fromkeys(rat.DOMAINS, {"people": people + d, "random": random + d, "people_slope": people_slope + d,
                                         **{k: v + d for k, v in gpt.items()}}) for d in jitter]
    world = lambda w, d: dict(supermarket_vs_risk=(w if w else weight0_supermarket) + d, among_lab_tasks=0.3 + d,
                              across_categories=0.2 + d, across_periods=0.2 + d, cells_at_ceiling=0.5,
                              lab_at_ceiling=0.5)
    return runs2, {w: [world(w, d) for d in jitter] for w in (0.0, 1.0)}


GPT = dict(gpt_plain_T0=0.99, gpt_plain_T1=0.8, gpt_price_T0=0.95, gpt_discrete_T0=0.99, gpt_plain_T0_slope=0.9)


def test_verdicts_on_each_side_of_the_rule_and_both_controls():
    exp = rat.Experiment(common_weights="0,1")
    gpt = GPT
    verdict = lambda runs: [v["verdict"] for v in rat.verdicts(*runs, exp)]
    # greedy above people and responsive; sampled below; price lowers; 11 options do not (a difference of exactly 0)
    assert verdict(rationality_runs(gpt))[:4] == ["supported", "supported", "supported", "not supported"]
    assert verdict(rationality_runs({**gpt, "gpt_plain_T0": 0.97}))[0] == "not supported"  # 0.000: not above
    assert verdict(rationality_runs({**gpt, "gpt_plain_T0_slope": 0.3}))[0] == "not supported"  # below the margin
    assert verdict(rationality_runs({**gpt, "gpt_plain_T0_slope": 0.505}))[0] == "inconclusive"  # interval spans 0.5
    failed = rat.verdicts(*rationality_runs(gpt, random=0.99), exp)
    assert all(v["verdict"] == "inconclusive" for v in failed[:4]) and failed[4]["verdict"] != "inconclusive"
    deaf = rat.verdicts(*rationality_runs(gpt, people_slope=0.2), exp)   # the measure cannot see prices: no verdict
    assert all(v["verdict"] == "inconclusive" for v in deaf[:4]) and "respond to prices" in deaf[0]["control"]
    # part 3: the pattern already at weight 0 -> "needs a common skill" is not supported; broken at 0 -> supported
    assert verdict(rationality_runs(gpt))[4] == "not supported"
    assert verdict(rationality_runs(gpt, weight0_supermarket=0.5))[4] in ("supported", "inconclusive")
    broken = rationality_runs(gpt, weight0_supermarket=-0.6)   # |r| far above 0.15 at weight 0, below weight 1's
    assert verdict(broken)[4] == "supported"
    flat = rationality_runs(gpt)
    flat[1][1.0] = flat[1][0.0]                                 # no rise with the common skill: control fails
    assert rat.verdicts(*flat, exp)[4]["verdict"] == "inconclusive"


def test_a_chooser_that_ignores_the_prompt_is_perfectly_consistent_and_fails_the_claim():
    """The case that must flip the headline: always answering 50 scores CCEI 1 and slope 0. Judged as our GPT, it
    beats the people on consistency and still gets 'not supported'; its framing claims get no verdict."""
    mn, points, optimum, _ = rat.people("soci", 30, 25, 4.0, np.random.default_rng(0), "test")
    constant, exact = rat.scores(mn, np.full(points.shape, 50.0), optimum, "c"), rat.scores(mn, optimum, optimum, "o")
    assert constant["c"] == 1.0 and constant["c_slope"] == 0.0 and constant["c_distinct"] == 1.0
    assert exact["o"] == pytest.approx(1.0) and exact["o_slope"] == pytest.approx(1.0) and exact["o_distinct"] > 20
    people = rat.scores(mn, points, optimum, "p")
    assert people["p"] < 1.0 and 0.7 < people["p_slope"] < 1.3 and people["p_invalid"] == 0.0
    as_gpt = dict.fromkeys(["gpt_plain_T0", "gpt_plain_T1", "gpt_price_T0", "gpt_discrete_T0"], 1.0)
    v = rat.verdicts(*rationality_runs({**as_gpt, "gpt_plain_T0_slope": 0.0}), rat.Experiment(common_weights="0,1"))
    assert v[0]["verdict"] == "not supported" and "GPT - people, soci: +0.030" in v[0]["evidence"]
    assert v[2]["verdict"] == v[3]["verdict"] == "inconclusive" and v[2]["why"] == "the positive control did not pass"


def test_demand_slope_by_hand_and_persona_codes():
    optimum = np.array([[10.0, 20.0, 30.0], [5.0, 5.0, 6.0]])
    assert rat.demand_slope(2 * optimum + 3, optimum) == pytest.approx(2.0)     # run means removed: the slope only
    answers = np.array([[np.nan, 20.0, 31.0], [np.nan] * 3])                    # invalid answers left out
    assert rat.demand_slope(answers, optimum) == pytest.approx(1.1)
    assert rat.distinct_answers(np.array([[1.0, 1.0, 2.0], [np.nan, 3.0, 3.0]])) == 1.5
    codes = rat.persona_code("risk", np.array([0.45, 0.55, 0.5, 0.45]), np.array([-0.9, -0.6, 0.1, 0.5]))
    assert codes.tolist() == [0, 5, 6, 3]


def test_part3_common_skill_raises_the_supermarket_lab_correlation():
    exp = rat.Experiment(part3_subjects=150, weeks_per_period=8)
    none, shared = (rat.part3_world(exp, w, np.random.default_rng(0)) for w in (0.0, 1.5))
    assert abs(none["supermarket_vs_risk"]) < 0.2 < shared["supermarket_vs_risk"]


@pytest.mark.slow
def test_smoke_experiment(tmp_path):
    exp = rat.Experiment(seeds=2, n_people=10, gpt_runs=3, temperatures="0,1", train_steps=3, n_random=5,
                         part3_subjects=12, calibration_subjects=8, weeks_per_period=4, out_dir=str(tmp_path / "rat"))
    rat.experiment(exp)
    import json
    verdicts = json.loads((tmp_path / "rat" / "results.json").read_text())["verdict"]
    assert len(verdicts) == 5 and all(v["verdict"] in ("supported", "not supported", "inconclusive") for v in verdicts)
    assert all((tmp_path / "rat" / n).exists() for n in ("results.json", "results.md", "rationality.png"))


def test_quick_run_is_smaller_writes_elsewhere_and_says_so(monkeypatch, check_quick):
    """--quick=true: every size smaller, its own folder, flags given still win, verdicts marked quick."""
    full, quick = check_quick(rat.Experiment)
    assert quick.quick and lab.parse_args(["--quick=true", "--train_steps=7"], rat.Experiment).train_steps == 7
    gpt = dict.fromkeys(["gpt_plain_T0", "gpt_plain_T1", "gpt_price_T0", "gpt_discrete_T0"], 1.0)
    people = {"people": 0.97, "random": 0.7, "people_slope": 1.0, "gpt_plain_T0_slope": 0.0, **gpt}
    monkeypatch.setattr(rat, "part2", lambda exp, seed: dict.fromkeys(rat.DOMAINS, people))
    monkeypatch.setattr(rat, "part3_world", lambda exp, w, rng: dict(
        supermarket_vs_risk=w, among_lab_tasks=0.3, across_categories=0.2, across_periods=0.2, cells_at_ceiling=0.5,
        lab_at_ceiling=0.5))
    written = []
    monkeypatch.setattr(rat, "report", lambda exp, runs2, r3, verdicts, temps: written.append(verdicts))
    rat.experiment(quick)
    rat.experiment(full)
    assert len(written[0]) == 5 and all(v["quick"] and "--quick=true" in v["command"] for v in written[0])
    assert not any(v["quick"] or "--quick" in v["command"] for v in written[1])


def test_csv_varian_can_be_skipped(tmp_path, monkeypatch, capsys):
    write(tmp_path, "subject,p1,p2,x1,x2\na,1,2,1,4\na,2,1,4,1\n")
    code, out, err = run_in(tmp_path, monkeypatch, capsys, "--bronars=0", "--varian=false")
    row = indices(tmp_path)[0]
    assert code == 0 and row["varian"] == "nan" and row["varian_exact"] == "false" and row["houtman_maks"] == "0.5"
