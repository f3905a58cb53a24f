"""
Revealed-preference rationality of a GPT and of people, on the shared small GPT.

Papers. "The Emergence of Economic Rationality of GPT" (Chen, Liu, Shan, Zhong, PNAS 2023,
arXiv:2305.12763) asked GPT-3.5 to allocate 100 points between two options in 25 budgets per run, in four
domains (risk, time, social, food), and measured how consistent the choices are with maximising some
utility: mean CCEI 0.997-0.999 for GPT against 0.963-0.985 for 347 people, but far lower when the
same budgets were framed as prices (0.70-0.90) or as 11 discrete options (0.78-0.91). "Choice
consistency as a multidimensional skill" (arXiv:2505.05275) found that a person's consistency in
supermarket purchases does not predict their consistency in risky lab tasks, with moderate correlations
among lab tasks and low to moderate ones across purchase categories and periods.

This file has three parts.
1. A small exact library: GARP (strongly connected components, O(T^2)), Afriat's CCEI (exact, by
   bisection over the sorted candidate ratios), Houtman-Maks (exact per component up to 14
   observations, a greedy lower bound beyond), the money pump index, and Bronars' power test; plus
   `python rationality.py --data=choices.csv` for your own data.
2. Is a GPT more rational than the people it learned from? (2305.12763 in miniature.) A simulated
   population of noisy utility maximisers, calibrated to the paper's human mean CCEIs; the shared GPT
   (with a character vocabulary) trained on their decisions as text, then asked 100 runs x 25 budgets
   per domain at temperatures 0, 0.5, 1, and under price and discrete framings rarely seen in training.
3. Consistency as a multidimensional skill (2505.05275 in miniature): simulated subjects whose noise
   has a common and a task-specific part, lab tasks and a supermarket-like panel; which assumptions
   reproduce the paper's correlation pattern. Parts 2 and 3 are simulations, labelled as such.

Definitions (Afriat; Varian). Observation t: prices p_t, chosen bundle x_t; E[i, j] = p_i . x_j.
i is directly revealed preferred to j at efficiency e when e E_ii >= E_ij (weak), strictly when
e E_ii > E_ij; R_e is the transitive closure of the weak relation. GARP_e fails when i R_e j and j is
strictly directly revealed preferred to i. Comparisons use the ratio E_ij / E_ii with a relative
tolerance rtol (default 1e-9): ratios within rtol of e count as ties (weak, not strict). The CCEI is
sup{e in (0, 1]: GARP_e holds}: exactly 1.0 when GARP holds, and also 1.0 when GARP fails through
ties only (e.g. p = [[1,1],[2,1]], x = [[1,1],[2,0]]), because every e < 1 removes the tie.

    python rationality.py --data=choices.csv     # indices for your data (columns subject,p1..pK,x1..xK)
    python rationality.py                        # parts 2 and 3 (< 10 min on a 2-core CPU)
"""
import csv
import dataclasses
import itertools
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

import train

# -----------------------------------------------------------------------------
# Part 1: the indices


def ratio_matrix(p, x):
    """R[i, j] = E_ij / E_ii = (p_i . x_j) / (p_i . x_i): the share of i's budget that j's bundle costs."""
    p, x = np.asarray(p, dtype=np.float64), np.asarray(x, dtype=np.float64)
    if p.shape != x.shape or p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"prices and bundles must both be (T, K >= 2) arrays, got {p.shape} and {x.shape}")
    E = p @ x.T
    own = np.diag(E)
    if np.any(own <= 0):
        raise ValueError("every chosen bundle must cost something (p_t . x_t > 0)")
    return E / own[:, None]


def _violates(R, e, rtol):
    """GARP_e fails? Strongly connected components of the weak relation; a violation is a strict
    edge inside a component (then i R_e j through the component and j P_e i directly)."""
    T = len(R)
    weak = R <= e * (1 + rtol)
    np.fill_diagonal(weak, False)
    n_comp, label = connected_components(csr_matrix(weak), directed=True, connection="strong")
    if n_comp == T:
        return False
    strict = R < e * (1 - rtol)
    np.fill_diagonal(strict, False)
    i, j = np.nonzero(strict)
    return bool(np.any(label[i] == label[j]))


def garp(p, x, e=1.0, rtol=1e-9):
    """True when the data satisfy GARP at efficiency e (GARP_e; e = 1 is Varian's GARP)."""
    return not _violates(ratio_matrix(p, x), e, rtol)


def ccei_from_ratios(R, rtol=1e-9):
    """Afriat's critical cost efficiency index, exact. Between two consecutive candidate ratios the
    relations do not change, so GARP_e is tested once per interval (at its midpoint, where no ratio
    ties e) and the first failing interval is found by bisection; the CCEI is its left end."""
    off = ~np.eye(len(R), dtype=bool)
    ratios = R[off]
    candidates = np.unique(ratios[ratios < 1 - rtol])             # sorted; ratios near 1 count as 1
    bounds = np.concatenate([[0.0], candidates[candidates > 0], [1.0]])
    midpoint = lambda k: 0.5 * (bounds[k] + bounds[k + 1])         # noqa: E731  interval k = (b_k, b_k+1)
    last = len(bounds) - 2
    if not _violates(R, midpoint(last), 0.0):
        return 1.0
    lo, hi = 0, last                                               # interval lo passes, interval hi fails
    if _violates(R, midpoint(0), 0.0):
        return 0.0                                                 # some bundle costs nothing elsewhere
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _violates(R, midpoint(mid), 0.0):
            hi = mid
        else:
            lo = mid
    return float(bounds[hi])


def ccei(p, x, rtol=1e-9):
    return ccei_from_ratios(ratio_matrix(p, x), rtol)


def houtman_maks(p, x, rtol=1e-9, exact_max=14):
    """Largest share of observations consistent with GARP: (share, exact). A violation lives inside one
    strongly connected component, so each component is solved alone: exactly (largest consistent
    subset, by decreasing size) when it has at most exact_max observations, otherwise greedily (drop the
    observation in most strict in-component edges until consistent), which gives a LOWER BOUND."""
    R = ratio_matrix(p, x)
    T = len(R)
    weak = R <= 1 + rtol
    np.fill_diagonal(weak, False)
    _, label = connected_components(csr_matrix(weak), directed=True, connection="strong")
    kept, exact = 0, True
    for comp in np.unique(label):
        nodes = np.flatnonzero(label == comp)
        sub = R[np.ix_(nodes, nodes)]
        if not _violates(sub, 1.0, rtol):
            kept += len(nodes)
        elif len(nodes) <= exact_max:
            kept += next(size for size in range(len(nodes) - 1, 0, -1)
                         if any(not _violates(sub[np.ix_(s, s)], 1.0, rtol)
                                for s in map(list, itertools.combinations(range(len(nodes)), size))))
        else:
            exact = False
            alive = list(range(len(nodes)))
            while _violates(sub[np.ix_(alive, alive)], 1.0, rtol):
                s = sub[np.ix_(alive, alive)]
                strict = (s < 1 - rtol) & ~np.eye(len(alive), dtype=bool)
                w = (s <= 1 + rtol) & ~np.eye(len(alive), dtype=bool)
                _, lab = connected_components(csr_matrix(w), directed=True, connection="strong")
                inside = strict & (lab[:, None] == lab[None, :])
                alive.pop(int(np.argmax(inside.sum(0) + inside.sum(1))))
            kept += len(alive)
    return kept / T, exact


def money_pump(p, x, rtol=1e-9, max_len=3):
    """Money pump index (Echenique, Lee, Shum 2011) of the most and least severe violating cycle of
    length <= max_len (2 or 3; the number of cycles grows as T^length, so longer cycles are not
    searched: a violation made only of longer cycles gives NaN). For a cycle i1 -> ... -> ik -> i1 of
    direct revealed preferences, MPI = sum_l (E_{il il} - E_{il il+1}) / sum_l E_{il il}:
    the share of spending an arbitrageur could pump out. Returns (max MPI, min MPI)."""
    p, x = np.asarray(p, dtype=np.float64), np.asarray(x, dtype=np.float64)
    E = p @ x.T
    own = np.diag(E)
    T = len(E)
    weak = (E <= own[:, None] * (1 + rtol)) & ~np.eye(T, dtype=bool)
    strict = (E < own[:, None] * (1 - rtol)) & ~np.eye(T, dtype=bool)
    gain = own[:, None] - E                                                # E_ii - E_ij
    values = []
    i, j = np.nonzero(np.triu(weak & weak.T & (strict | strict.T), 1))     # 2-cycles
    values.append((gain[i, j] + gain[j, i]) / (own[i] + own[j]))
    if max_len >= 3 and T <= 200:
        i, j, k = np.nonzero(weak[:, :, None] & weak[None, :, :] & weak.T[:, None, :]
                             & (strict[:, :, None] | strict[None, :, :] | strict.T[:, None, :]))
        keep = (i < j) & (i < k)                                           # each cycle once (smallest first)
        i, j, k = i[keep], j[keep], k[keep]
        values.append((gain[i, j] + gain[j, k] + gain[k, i]) / (own[i] + own[j] + own[k]))
    values = np.concatenate(values)
    return (float(values.max()), float(values.min())) if len(values) else (math.nan, math.nan)


def random_bundles(p, budget, rng):
    """Bundles drawn uniformly on each budget line/plane: expenditure shares ~ Dirichlet(1, ..., 1)."""
    shares = rng.dirichlet(np.ones(p.shape[1]), size=len(p))
    return shares * budget[:, None] / p


def bronars_power(p, x, n_sim=1000, seed=0, rtol=1e-9):
    """Share of uniform-random choosers on the same budgets (same prices and spending) who violate
    GARP: how demanding the test is on these budgets (Bronars 1987)."""
    p = np.asarray(p, dtype=np.float64)
    budget = np.einsum("tk,tk->t", p, np.asarray(x, dtype=np.float64))
    rng = np.random.default_rng(seed)
    return float(np.mean([_violates(ratio_matrix(p, random_bundles(p, budget, rng)), 1.0, rtol)
                          for _ in range(n_sim)]))


def indices(p, x):
    """All indices of one subject's data."""
    R = ratio_matrix(p, x)
    hm, exact = houtman_maks(p, x)
    mpi_max, mpi_min = money_pump(p, x)
    return {"n_obs": len(R), "garp": not _violates(R, 1.0, 1e-9), "ccei": ccei_from_ratios(R),
            "houtman_maks": hm, "hm_exact": exact, "mpi_max": mpi_max, "mpi_min": mpi_min}


# -----------------------------------------------------------------------------
# Part 1b: your data, `python rationality.py --data=choices.csv`


class InputError(Exception):
    """Bad CSV input: one line with the row number, exit code 2, nothing written."""


def read_choices(path):
    """{subject: (p (T, K), x (T, K))} from a CSV with columns subject,p1..pK,x1..xK (row numbers in
    errors count the header as row 1, as a spreadsheet does)."""
    try:
        f = open(path, newline="", encoding="utf-8")
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from None
    with f:
        rows = list(csv.reader(f))
    if not rows:
        raise InputError(f"{path} is empty")
    header = [h.strip() for h in rows[0]]
    K = sum(1 for h in header if h.startswith("p") and h[1:].isdigit())
    expected = ["subject"] + [f"p{k}" for k in range(1, K + 1)] + [f"x{k}" for k in range(1, K + 1)]
    if K < 2 or header != expected:
        raise InputError(f"row 1: columns must be subject,p1..pK,x1..xK with K >= 2 (e.g. {','.join(expected if K >= 2 else ['subject', 'p1', 'p2', 'x1', 'x2'])}), got {','.join(header)}")
    data = {}
    for n, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise InputError(f"row {n}: {len(row)} fields, expected {len(header)}")
        try:
            values = [float(v) for v in row[1:]]
        except ValueError:
            raise InputError(f"row {n}: prices and quantities must be numbers, got {row[1:]}") from None
        p, x = values[:K], values[K:]
        if any(not math.isfinite(v) for v in values):
            raise InputError(f"row {n}: NaN or infinite value")
        if any(v <= 0 for v in p):
            raise InputError(f"row {n}: prices must be positive, got {p}")
        if any(v < 0 for v in x):
            raise InputError(f"row {n}: quantities must be non-negative, got {x}")
        if sum(x) == 0:
            raise InputError(f"row {n}: the chosen bundle is empty (all quantities 0)")
        ps, xs, first = data.setdefault(row[0].strip(), ([], [], n))
        ps.append(p)
        xs.append(x)
    if not data:
        raise InputError(f"{path} has a header but no observations")
    for subject, (ps, xs, first) in data.items():
        if len(ps) < 2:
            raise InputError(f"row {first}: subject '{subject}' has {len(ps)} observation; need at least 2")
    return {s: (np.array(ps), np.array(xs)) for s, (ps, xs, _) in data.items()}


def analyse_csv(path, out_dir="out/rationality"):
    data = read_choices(path)
    print(f"{'subject':>12} {'n_obs':>5} {'garp':>5} {'ccei':>7} {'hm':>6} {'mpi_max':>8} {'bronars':>8}")
    lines = ["subject,n_obs,garp,ccei,houtman_maks"]
    for subject, (p, x) in data.items():
        ix = indices(p, x)
        power = bronars_power(p, x, n_sim=200)
        hm = f"{ix['houtman_maks']:.3f}" + ("" if ix["hm_exact"] else "*")
        print(f"{subject:>12} {ix['n_obs']:5d} {str(ix['garp']).lower():>5} {ix['ccei']:7.4f} {hm:>6} "
              f"{ix['mpi_max']:8.4f} {power:8.3f}")
        lines.append(f"{subject},{ix['n_obs']},{str(ix['garp']).lower()},{ix['ccei']:.10g},{ix['houtman_maks']:.10g}")
    out = Path(out_dir) / "indices.csv"
    train.atomic_write_bytes(out, ("\n".join(lines) + "\n").encode())
    print(f"* greedy lower bound (a component of more than 14 violating observations)\n"
          f"mpi: money pump index of the most severe cycle of length <= 3; bronars: share of 200 random "
          f"choosers on the same budgets who violate GARP\nwrote {out}")


# -----------------------------------------------------------------------------
# Part 2: is a GPT more rational than the people it learned from? (2305.12763 in miniature)

DOMAINS = ("risk", "time", "soci", "food")   # four characters each: every prompt of a frame has one length
HUMAN_MEAN_CCEI = {"risk": 0.980, "time": 0.985, "soci": 0.967, "food": 0.963}  # the paper's 347 subjects
GPT35_MEAN_CCEI = {"risk": 0.998, "time": 0.997, "soci": 0.997, "food": 0.999}
# how each domain's two options are valued: weight alpha on option A drawn from this range (people differ)
ALPHA_RANGE = {"risk": (0.4, 0.6), "time": (0.5, 0.75), "soci": (0.55, 0.95), "food": (0.3, 0.7)}


def draw_budgets(n, rng):
    """The paper's generator: 100 points; 1 point in A returns M units, in B N units; M, N ~ U[0.1, 1]
    rounded to 2 decimals, redrawn unless max(M, N) >= 0.5. Returns (n, 2) of (M, N)."""
    out = np.empty((0, 2))
    while len(out) < n:
        mn = np.round(rng.uniform(0.1, 1.0, (2 * n, 2)), 2)
        out = np.concatenate([out, mn[mn.max(1) >= 0.5]])
    return out[:n]


def budget_prices(mn):
    """Points a in A buy x = (a M, (100 - a) N): prices p = (1/M, 1/N) with income 100."""
    return 1.0 / mn


def optimal_points(mn, alpha, rho):
    """Points in A that maximise CES utility (alpha x_A^rho + (1 - alpha) x_B^rho)^(1/rho):
    x_A / x_B = (alpha p_B / ((1 - alpha) p_A))^(1 / (1 - rho)), spending p_A x_A = a."""
    p = budget_prices(mn)
    ratio = (alpha * p[:, 1] / ((1 - alpha) * p[:, 0])) ** (1 / (1 - rho))
    return 100 * p[:, 0] * ratio / (p[:, 0] * ratio + p[:, 1])


def people_choices(domain, n_subjects, n_budgets, noise_sd, rng):
    """Simulated people: heterogeneous CES maximisers whose allocations (whole points) carry Gaussian
    noise of noise_sd points. Returns budgets (S, T, 2) and points in A (S, T)."""
    mn = draw_budgets(n_subjects * n_budgets, rng).reshape(n_subjects, n_budgets, 2)
    alpha = rng.uniform(*ALPHA_RANGE[domain], n_subjects)
    rho = rng.uniform(-1.0, 0.6, n_subjects)
    points = np.stack([optimal_points(mn[s], alpha[s], rho[s]) for s in range(n_subjects)])
    points = np.clip(np.round(points + noise_sd * rng.standard_normal(points.shape)), 0, 100)
    return mn, points


def bundles(mn, points):
    return np.stack([points * mn[..., 0], (100 - points) * mn[..., 1]], axis=-1)


def mean_ccei(mn, points):
    x = bundles(mn, points)
    return float(np.mean([ccei(budget_prices(mn[s]), x[s]) for s in range(len(mn))]))


def calibrate_noise(domain, target, n_subjects=150, seed=0):
    """Noise (points) at which the simulated population's mean CCEI matches the target: bisection on
    the noise with the same random draws at every step (common random numbers), 14 steps."""
    lo, hi = 0.0, 30.0
    for _ in range(14):
        mid = 0.5 * (lo + hi)
        value = mean_ccei(*people_choices(domain, n_subjects, 25, mid, np.random.default_rng(seed)))
        lo, hi = (mid, hi) if value > target else (lo, mid)
    return 0.5 * (lo + hi)


# the decisions as text, one per line, with a character vocabulary (the shared GPT, vocab_size = len(VOCAB))
VOCAB = "".join(sorted(set("\n $.>0123456789d" + "".join(DOMAINS))))
STOI = {c: i for i, c in enumerate(VOCAB)}


def prompt_text(domain, mn_row, frame):
    """'risk 0.53 0.87>' (the paper's framing), 'risk $1.89 $1.15>' (prices), 'risk 0.53 0.87 d>' (11 options)."""
    M, N = mn_row
    if frame == "price":
        return f"{domain} ${1 / M:05.2f} ${1 / N:05.2f}>"
    return f"{domain} {M:.2f} {N:.2f}" + (" d>" if frame == "discrete" else ">")


def decision_lines(domain, mn, points, frames, rng):
    lines = []
    for s in range(len(mn)):
        for t in range(mn.shape[1]):
            frame = frames[rng.integers(len(frames))]
            a = int(points[s, t]) if frame != "discrete" else int(round(points[s, t] / 10) * 10)
            lines.append(prompt_text(domain, mn[s, t], frame) + f"{a}\n")
    return lines


def encode(text):
    return [STOI[c] for c in text]


def parse_answer(chars, frame):
    """Points in A from the generated characters, or None when the answer is not a valid allocation."""
    head = chars.split("\n")[0]
    if not head.isdigit() or not 0 <= int(head) <= 100 or (frame == "discrete" and int(head) % 10):
        return None
    return int(head)


@dataclass
class Experiment:
    n_people: int = 400           # simulated people per domain (the paper had 347 in all)
    gpt_runs: int = 100           # GPT runs per domain and temperature, 25 budgets each (as in the paper)
    temperatures: str = "0,0.5,1"
    rare_frame_share: float = 0.02  # share of training lines in each of the price and discrete framings
    train_steps: int = 600        # GPT training steps (batch 32 x 64 characters)
    n_random: int = 300           # uniform-random choosers per domain
    part3_subjects: int = 300
    calibration_subjects: int = 150  # simulated people per bisection step when calibrating the noise
    seed: int = 0
    out_dir: str = "out/rationality"


def train_gpt(lines, exp):
    import torch
    torch.manual_seed(exp.seed)
    model = train.GPT(train.GPTConfig(vocab_size=len(VOCAB), block_size=64, n_layer=4, n_head=4, n_embd=128))
    data = np.array(encode("".join(lines)), dtype=np.int64)
    gen = torch.Generator().manual_seed(exp.seed)

    def next_batch():
        offsets = torch.randint(len(data) - 65, (32,), generator=gen)
        return train.get_batch(data, offsets, 64, torch.device("cpu"))
    losses = train.fit(model, next_batch, exp.train_steps, learning_rate=2e-3, name="gpt on decisions")
    return model, losses


def ask_gpt(model, domain, mn, frame, temperature, seed):
    """One answer per budget row of mn (n, 2); returns points (n,) with NaN for invalid answers."""
    import torch
    prompts = torch.tensor([encode(prompt_text(domain, row, frame)) for row in mn])
    gen = torch.Generator().manual_seed(seed)
    answers = []
    for start in range(0, len(prompts), 1000):
        out = model.generate(prompts[start:start + 1000], 4, temperature=temperature, generator=gen)
        answers += ["".join(VOCAB[i] for i in row[prompts.size(1):].tolist()) for row in out]
    points = [parse_answer(a, frame) for a in answers]
    return np.array([np.nan if v is None else v for v in points], dtype=np.float64)


def ccei_of_runs(mn, points):
    """CCEI per run over its valid answers (runs with fewer than 2 valid answers are skipped)."""
    values = []
    for s in range(len(mn)):
        ok = ~np.isnan(points[s])
        if ok.sum() >= 2:
            values.append(ccei(budget_prices(mn[s][ok]), bundles(mn[s][ok], points[s][ok])))
    return np.array(values)


def part2(exp, rng):
    temps = [float(t) for t in exp.temperatures.split(",")]
    result, people, lines = {}, {}, []
    for domain in DOMAINS:
        sd = calibrate_noise(domain, HUMAN_MEAN_CCEI[domain], exp.calibration_subjects, seed=exp.seed)
        mn, points = people_choices(domain, exp.n_people, 25, sd, rng)
        people[domain] = (mn, points)
        lines += decision_lines(domain, mn, points, ["plain"] * int(round(1 / exp.rare_frame_share - 2))
                                + ["price", "discrete"], rng)
        rand_mn = draw_budgets(exp.n_random * 25, rng).reshape(exp.n_random, 25, 2)
        rand_points = rng.uniform(0, 100, (exp.n_random, 25))
        result[domain] = {"noise_sd_points": sd, "people": ccei_of_runs(mn, points).tolist(),
                          "random": ccei_of_runs(rand_mn, rand_points).tolist()}
        print(f"people, {domain}: noise {sd:.2f} points -> mean CCEI {np.mean(result[domain]['people']):.4f} "
              f"(paper's humans {HUMAN_MEAN_CCEI[domain]})", flush=True)
    rng.shuffle(lines)
    print(f"training the shared GPT (character vocabulary) on {len(lines):,} decisions", flush=True)
    model, losses = train_gpt(lines, exp)
    demand = {}
    for domain in DOMAINS:
        mn = draw_budgets(exp.gpt_runs * 25, rng).reshape(exp.gpt_runs, 25, 2)
        for frame in ("plain", "price", "discrete"):
            for temp in temps if frame == "plain" else [temps[0]]:
                points = ask_gpt(model, domain, mn.reshape(-1, 2), frame, temp, exp.seed).reshape(mn.shape[:2])
                key = f"gpt_{frame}_T{temp:g}"
                result[domain][key] = ccei_of_runs(mn, points).tolist()
                result[domain][key + "_invalid"] = float(np.isnan(points).mean())
                if frame == "plain" and temp == temps[min(1, len(temps) - 1)]:
                    demand[domain] = (mn, points)
    return result, people, demand, losses


# -----------------------------------------------------------------------------
# Part 3: consistency as a multidimensional skill (2505.05275 in miniature; a simulation)

LAB_TASKS = ("risk", "time", "soci")
CATEGORIES = ("dairy", "produce", "bakery", "meat")


def supermarket(noise, rng, weeks_per_period=12, goods_per_category=3):
    """One shopper over len(noise[0]) periods: Cobb-Douglas within each category, weekly category budgets,
    prices that change week to week; log-share noise noise[c, k] in category c and period k.
    Returns p, x: (weeks, categories x goods), weeks ordered by period."""
    C, P = noise.shape
    G, n_weeks = C * goods_per_category, P * weeks_per_period
    p = rng.uniform(1, 5, G) * np.exp(0.25 * rng.standard_normal((n_weeks, G)))
    a = rng.dirichlet(np.ones(goods_per_category), C)                       # taste within category
    budget = rng.uniform(10, 30, (n_weeks, C))
    x = np.empty((n_weeks, G))
    week_noise = np.repeat(noise, weeks_per_period, axis=1)                   # (C, weeks)
    for c in range(C):
        cols = slice(c * goods_per_category, (c + 1) * goods_per_category)
        shares = a[c] * np.exp(week_noise[c][:, None] * rng.standard_normal((n_weeks, goods_per_category)))
        shares /= shares.sum(1, keepdims=True)
        x[:, cols] = shares * budget[:, [c]] / p[:, cols]
    return p, x


def part3(exp, rng):
    """Two worlds for the same kind of subjects: one consistency skill for everything, or a lab skill
    that shopping does not share, with category- and period-specific parts. CCEI per lab task (25
    budgets); per category (3 goods, all 48 weeks); per period (mean over categories of the CCEI of the
    category's 12 weeks); and of the whole basket (12 goods, 48 weeks)."""
    from scipy.stats import spearmanr
    worlds = {"one skill": {"lab_common": 1.0, "lab_own": 0.25, "shop_common": 1.0, "shop_own": 0.25},
              "multidimensional": {"lab_common": 0.6, "lab_own": 0.6, "shop_common": 0.0, "shop_own": 0.6}}
    S, C, P = exp.part3_subjects, len(CATEGORIES), 4
    out = {}
    for world, w in worlds.items():
        skill = rng.standard_normal(S)                                         # the common part
        table = {}
        for task in LAB_TASKS:
            sd = 6.0 * np.exp(w["lab_common"] * skill + w["lab_own"] * rng.standard_normal(S))
            runs = [people_choices(task, 1, 25, sd[s], rng) for s in range(S)]
            table[task] = ccei_of_runs(np.concatenate([m for m, _ in runs]), np.concatenate([a for _, a in runs]))
        shop = {"supermarket": [], **{c: [] for c in CATEGORIES}, **{f"period{k + 1}": [] for k in range(P)}}
        for s in range(S):
            # category part + period part, each scaled by shop_own; common part by shop_common
            noise = 0.2 * np.exp(w["shop_common"] * skill[s] + w["shop_own"] * (
                rng.standard_normal((C, 1)) + rng.standard_normal((1, P))) / np.sqrt(2))
            p, x = supermarket(noise, rng)
            shop["supermarket"].append(ccei(p, x))
            for c, name in enumerate(CATEGORIES):
                shop[name].append(ccei(p[:, c * 3:c * 3 + 3], x[:, c * 3:c * 3 + 3]))
            for k in range(P):
                weeks = slice(k * 12, (k + 1) * 12)
                shop[f"period{k + 1}"].append(np.mean([ccei(p[weeks, c * 3:c * 3 + 3], x[weeks, c * 3:c * 3 + 3])
                                                       for c in range(C)]))
        table.update({k: np.array(v) for k, v in shop.items()})
        names = list(table)
        corr = spearmanr(np.stack([table[n] for n in names], axis=1)).statistic
        pick = lambda group: [names.index(n) for n in group]                   # noqa: E731
        mean_off = lambda idx: float(np.mean([corr[i, j] for i in idx for j in idx if i < j]))  # noqa: E731
        out[world] = {"names": names, "spearman": np.nan_to_num(corr).tolist(),
                      "mean_ccei": {n: float(np.mean(table[n])) for n in names},
                      "supermarket_vs_risk": float(corr[names.index("supermarket"), names.index("risk")]),
                      "among_lab_tasks": mean_off(pick(LAB_TASKS)),
                      "across_categories": mean_off(pick(CATEGORIES)),
                      "across_periods": mean_off(pick([f"period{k + 1}" for k in range(P)]))}
        print(f"  {world}: mean CCEI " + ", ".join(f"{n} {v:.3f}" for n, v in out[world]["mean_ccei"].items()), flush=True)
    return out

PAPER_FRAMES = {"price": {"risk": 0.901, "time": 0.884, "soci": 0.698, "food": 0.894},
                "discrete": {"risk": 0.843, "time": 0.908, "soci": 0.871, "food": 0.780}}


def report(part2_result, people, demand, part3_result, exp):
    out = Path(exp.out_dir)
    temps = [float(t) for t in exp.temperatures.split(",")]
    head = "| domain | people (paper humans) | " + " | ".join(f"GPT T={t:g}" for t in temps) + \
           f" | GPT price frame, T={temps[0]:g} (paper) | GPT 11 options, T={temps[0]:g} (paper) | random choosers |"
    lines = ["mean CCEI (share of runs with CCEI = 1); the paper's GPT-3.5 (temperature 0 baseline) in the note below", head,
             "|" + "---|" * (5 + len(temps))]
    for d in DOMAINS:
        r = part2_result[d]

        def cell(key):
            v = np.array(r[key])
            if len(v) == 0:
                return "n/a (no run with 2 valid answers)"
            return f"{v.mean():.3f} ({(v == 1).mean():.0%})" + (f", {r[key + '_invalid']:.0%} invalid" if r.get(key + "_invalid") else "")
        lines.append(f"| {d} | {cell('people')} ({HUMAN_MEAN_CCEI[d]}) | "
                     + " | ".join(cell(f"gpt_plain_T{t:g}") for t in temps)
                     + f" | {cell(f'gpt_price_T{temps[0]:g}')} ({PAPER_FRAMES['price'][d]}) | "
                     f"{cell(f'gpt_discrete_T{temps[0]:g}')} ({PAPER_FRAMES['discrete'][d]}) | {np.mean(r['random']):.3f} |")
    lines.append("\nPaper's GPT-3.5 mean CCEI: " + ", ".join(f"{d} {v}" for d, v in GPT35_MEAN_CCEI.items()))
    lines += ["", "Part 3 (simulation): Spearman correlations of CCEI across subjects",
              "| world | supermarket vs risk | among lab tasks | across categories | across periods |", "|---|---|---|---|---|"]
    for world, r in part3_result.items():
        lines.append(f"| {world} | {r['supermarket_vs_risk']:.2f} | {r['among_lab_tasks']:.2f} | "
                     f"{r['across_categories']:.2f} | {r['across_periods']:.2f} |")
    lines.append("| paper (2505.05275) | about 0 | moderate | low to moderate | low to moderate |")
    matches = [w for w, r in part3_result.items() if abs(r["supermarket_vs_risk"]) < 0.15
               and 0.15 <= r["among_lab_tasks"] <= 0.7 and r["across_categories"] < 0.5 and r["across_periods"] < 0.5]
    lines.append(f"\nWorlds that reproduce the paper's pattern: {', '.join(matches) or 'none'}")
    table = "\n".join(lines)
    train.write_results(out, table, {"config": dataclasses.asdict(exp), "part2": part2_result, "part3": part3_result})

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 4, figsize=(14, 6.4), dpi=90)
    for col, d in enumerate(DOMAINS):
        ax = axes[0, col]
        r = part2_result[d]
        series = [("people", r["people"]), ("random", r["random"])] + \
                 [(f"GPT T={t:g}", r[f"gpt_plain_T{t:g}"]) for t in temps] + \
                 [("GPT price", r[f"gpt_price_T{temps[0]:g}"]), ("GPT 11 options", r[f"gpt_discrete_T{temps[0]:g}"])]
        for label, values in series:
            v = np.sort(values)
            ax.step(v, np.arange(1, len(v) + 1) / len(v), where="post", label=label)
        ax.set_xlim(0.5, 1.0)
        ax.set_title(f"{d}: CCEI (cumulative share)")
        ax.grid(alpha=0.3)
        ax = axes[1, col]
        for label, (mn, points) in (("people", people[d]), ("GPT", demand[d])):
            x = np.log(mn[..., 1] / mn[..., 0]).ravel()       # log(p_A / p_B) = log(N / M)
            y = (points / 100).ravel()
            ok = ~np.isnan(y)
            bins = np.linspace(-2.3, 2.3, 15)
            which = np.digitize(x[ok], bins)
            centers = [x[ok][which == b].mean() for b in np.unique(which)]
            means = [y[ok][which == b].mean() for b in np.unique(which)]
            ax.plot(centers, means, "o-", ms=3, label=label)
        ax.set_xlabel("log price ratio  log(p_A / p_B)")
        ax.set_ylabel("share of points in A")
        ax.set_title(f"{d}: demand")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    axes[1, 0].legend(fontsize=7)
    fig.tight_layout()
    train.save_figure(fig, out / "rationality.png")
    print("\n" + table + f"\n\nwrote {out / 'results.json'}, {out / 'results.md'}, {out / 'rationality.png'}")


def bench():
    """garp_T2000_seconds, ccei_T2000_seconds: 2 goods, uniform-random choices on random budgets."""
    import time
    rng = np.random.default_rng(0)
    p = rng.uniform(0.1, 1.0, (2000, 2))
    x = random_bundles(p, np.ones(2000), rng)
    rows = {}
    for name, fn in (("garp_T2000_seconds", garp), ("ccei_T2000_seconds", ccei)):
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            fn(p, x)
            times.append(time.perf_counter() - t0)
        rows[name] = float(np.median(times))
    return rows


def run(argv):
    data = [a for a in argv if a.startswith("--data=")]
    try:
        if data:
            if len(argv) != 1:
                raise train.ConfigError("--data=FILE takes no other arguments")
            analyse_csv(data[0].split("=", 1)[1])
            return 0
        exp = train.parse_args(argv, Experiment, __doc__)
        temps = [float(t) for t in exp.temperatures.split(",")]
        if any(t < 0 for t in temps) or not 0 < exp.rare_frame_share <= 0.25:
            raise train.ConfigError("--temperatures must be >= 0 and --rare_frame_share in (0, 0.25]")
        if min(exp.n_people, exp.gpt_runs, exp.train_steps, exp.n_random, exp.part3_subjects,
               exp.calibration_subjects) < 2:
            raise train.ConfigError("--n_people, --gpt_runs, --train_steps, --n_random, --part3_subjects and "
                                    "--calibration_subjects must be >= 2")
    except ValueError:
        print("error: --temperatures takes comma-separated numbers, e.g. 0,0.5,1", file=sys.stderr)
        return 2
    except (train.ConfigError, InputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    import torch
    torch.manual_seed(exp.seed)
    rng = np.random.default_rng(exp.seed)
    print("part 2: people, a GPT trained on their decisions, and framings", flush=True)
    part2_result, people, demand, _ = part2(exp, rng)
    print("part 3: consistency across tasks (simulation)", flush=True)
    report(part2_result, people, demand, part3(exp, rng), exp)
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
