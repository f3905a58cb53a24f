"""
Information flow, surprise and suspense, and what they say about a game's rating, on the shared GPT.

Paper: "Information flow and perceived quality" (Huang et al., IJCAI 2021, arXiv:2106.02851). Viewers
of the League of Legends S10 world championship reported, during each game, their belief that one
side would win, and rated the game afterwards. The amount of surprise near the END of the game
dominated in predicting the rating; the practical advice is to schedule twists late rather than evenly.
The measures are Ely, Frankel and Kamenica's ("Suspense and Surprise", JPE 2015):

    surprise_t = |p_t - p_{t-1}|            suspense_{t-1} = sqrt(E_{t-1}[(p_t - p_{t-1})^2])

with p_t = P(side A wins | what was seen by t). (EFK use the Euclidean norm of the change of the whole
belief vector; for two outcomes that vector is (p, 1 - p), whose change has norm sqrt(2) |dp|: our
measures are theirs divided by sqrt(2), which rescales regression coefficients and nothing else.)

The file has three parts.
1. The measures on anyone's data: `python infoflow.py --beliefs=beliefs.csv` (columns game,t,belief and
   an optional rating), surprise in the early, middle and late thirds of each game's time span (a step
   counts in the third of its later point), the sum of squared changes, and the regression of ratings
   on the three segment surprises (OLS, classical standard errors, R^2).
2. A world where the answer is known (a simulation; it validates the method and does not replace the
   paper's human data). A game is a score-difference random walk with time-varying volatility: at
   step k a point is scored with probability v_k, by A with probability q (a known pre-game strength).
   Beliefs are exact (dynamic programming over the remaining steps), so they are a martingale and
   E[sum dp^2] = p0 (1 - p0) whatever the schedule v: schedules with the same p0 carry the same total
   information, and differ only in WHEN it arrives. Viewers report noisy beliefs rounded to 0.05;
   ratings are generated from true segment surprise with known weights. We show the regression recovers
   them, compare predictors (total surprise, late surprise, mean suspense, final swing) by R^2, and
   show the practical point: the same information scheduled late raises the expected rating.
   Stern's (1994) continuous version P(win) = Phi((l + (1 - t) mu) / (sigma sqrt(1 - t))) is here too,
   checked against Monte Carlo in the tests.
3. A GPT as the audience: the shared GPT reads a game's timeline as characters and a win-probability
   head on its hidden states (the `model.hidden` seam) outputs P(A wins | prefix) at every position,
   trained with cross-entropy on the final winner. Its calibration, its loss against the exact Bayesian
   floor, and the information flow of its beliefs against the Bayesian one, game by game.

    python infoflow.py                          # parts 2 and 3 (< 10 min on a 2-core CPU)
    python infoflow.py --beliefs=beliefs.csv    # your data
"""
import csv
import dataclasses
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import train

# -----------------------------------------------------------------------------
# Part 1: the measures


def segment_of(t):
    """0, 1, 2 for the early, middle and late third of the time span of t (1-D, increasing)."""
    frac = (t - t[0]) / (t[-1] - t[0])
    return np.where(frac <= 1 / 3, 0, np.where(frac <= 2 / 3, 1, 2))


def measures(t, p):
    """Surprise in total and by third, and the sum of squared changes, of one belief path."""
    t, p = np.asarray(t, dtype=np.float64), np.asarray(p, dtype=np.float64)
    # surprise_t = |p_t - p_{t-1}|
    surprise = np.abs(np.diff(p))
    seg = segment_of(t)[1:]                        # a step counts in the third of its later point
    return {"n_steps": len(surprise), "surprise": float(surprise.sum()),
            "surprise_early": float(surprise[seg == 0].sum()), "surprise_mid": float(surprise[seg == 1].sum()),
            "surprise_late": float(surprise[seg == 2].sum()), "sq_changes": float((np.diff(p) ** 2).sum())}


def ols(X, y):
    """Least squares with an intercept: (coefficients, classical standard errors, R^2)."""
    X = np.column_stack([np.ones(len(X)), np.asarray(X, dtype=np.float64)])
    y = np.asarray(y, dtype=np.float64)
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ beta
    dof = max(1, len(y) - X.shape[1])
    cov = resid @ resid / dof * np.linalg.pinv(X.T @ X)
    r2 = 1 - (resid @ resid) / ((y - y.mean()) @ (y - y.mean()))
    return beta, np.sqrt(np.diag(cov)), float(r2)


class InputError(Exception):
    """Bad CSV input: one line with the row number, exit code 2, nothing written."""


def read_beliefs(path):
    """{game: (t, belief, rating or None)} from a CSV with columns game,t,belief[,rating]."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from None
    if not rows:
        raise InputError(f"{path} is empty")
    header = [h.strip() for h in rows[0]]
    if header not in (["game", "t", "belief"], ["game", "t", "belief", "rating"]):
        raise InputError(f"row 1: columns must be game,t,belief or game,t,belief,rating, got {','.join(header)}")
    games = {}
    for n, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise InputError(f"row {n}: {len(row)} fields, expected {len(header)}")
        try:
            t, belief = float(row[1]), float(row[2])
            rating = float(row[3]) if len(header) == 4 else None
        except ValueError:
            raise InputError(f"row {n}: t, belief and rating must be numbers, got {row[1:]}") from None
        if not (0 <= belief <= 1):  # also catches NaN
            raise InputError(f"row {n}: belief must be in [0, 1], got {row[2]}")
        if not math.isfinite(t) or (rating is not None and not math.isfinite(rating)):
            raise InputError(f"row {n}: t and rating must be finite numbers")
        g = games.setdefault(row[0].strip(), {"t": [], "p": [], "rating": rating, "first": n})
        if g["t"] and t <= g["t"][-1]:
            raise InputError(f"row {n}: times must increase within game '{row[0].strip()}' ({t} after {g['t'][-1]})")
        if rating != g["rating"]:
            raise InputError(f"row {n}: rating of game '{row[0].strip()}' changes within the game ({rating} vs {g['rating']})")
        g["t"].append(t)
        g["p"].append(belief)
    if not games:
        raise InputError(f"{path} has a header but no rows")
    for name, g in games.items():
        if len(g["t"]) < 2:
            raise InputError(f"row {g['first']}: game '{name}' has one point; need at least 2")
    return {name: (np.array(g["t"]), np.array(g["p"]), g["rating"]) for name, g in games.items()}


def regression_table(names, coef, se, r2):
    lines = [f"{'':>16} {'coef':>9} {'se':>9}"]
    lines += [f"{n:>16} {c:9.3f} {s:9.3f}" for n, c, s in zip(names, coef, se)]
    return "\n".join(lines + [f"{'R^2':>16} {r2:9.3f}"])


def analyse_csv(path, out_dir="out/infoflow"):
    games = read_beliefs(path)
    cols = ["n_steps", "surprise", "surprise_early", "surprise_mid", "surprise_late", "sq_changes"]
    table = {g: measures(t, p) for g, (t, p, _) in games.items()}
    lines = ["game," + ",".join(cols)] + [f"{g}," + ",".join(f"{m[c]:.10g}" for c in cols) for g, m in table.items()]
    ratings = [r for _, _, r in games.values()]
    if ratings[0] is not None and len(games) < 5:
        raise InputError(f"a regression on ratings needs at least 5 games, got {len(games)}")
    out = Path(out_dir) / "measures.csv"
    train.atomic_write_bytes(out, ("\n".join(lines) + "\n").encode())
    print("\n".join(lines).replace(",", "\t"))
    if ratings[0] is not None:
        X = [[table[g][c] for c in ("surprise_early", "surprise_mid", "surprise_late")] for g in games]
        coef, se, r2 = ols(X, ratings)
        print("\nrating ~ surprise by third of the game\n"
              + regression_table(["intercept", "surprise_early", "surprise_mid", "surprise_late"], coef, se, r2))
    print(f"wrote {out}")


# -----------------------------------------------------------------------------
# Part 2: a world where the answer is known


def stern_win_probability(lead, t, mu, sigma):
    """Stern (1994): P(A wins | lead l at time t in [0, 1)) = Phi((l + (1 - t) mu) / (sigma sqrt(1 - t)))
    for a Brownian score difference with drift mu and volatility sigma."""
    z = (lead + (1 - t) * mu) / (sigma * np.sqrt(1 - t))
    return 0.5 * (1 + np.vectorize(math.erf)(z / math.sqrt(2)))


def schedule(kind, n_steps, mean_rate=0.3):
    """Probability of a point at each step; every schedule has the same expected number of points."""
    x = (np.arange(n_steps) + 0.5) / n_steps
    shape = {"flat": np.ones_like(x), "late": 0.2 + 1.6 * x ** 2, "early": 0.2 + 1.6 * (1 - x) ** 2}[kind]
    return np.clip(shape / shape.mean() * mean_rate, 0, 1)


def belief_table(v, q):
    """Exact P(A wins | after k steps, score difference x), k = 0..N, x = -N..N (index x + N).
    A tie after the last step goes to A with probability q (a deciding extra point)."""
    N = len(v)
    x = np.arange(-N, N + 1)
    P = np.zeros((N + 1, 2 * N + 1))
    P[N] = np.where(x > 0, 1.0, np.where(x == 0, q, 0.0))
    for k in range(N - 1, -1, -1):
        up = np.append(P[k + 1][1:], 1.0)       # x + 1 (never reached beyond the edge)
        down = np.insert(P[k + 1][:-1], 0, 0.0)  # x - 1
        # P_k(x) = v (q P_{k+1}(x+1) + (1-q) P_{k+1}(x-1)) + (1 - v) P_{k+1}(x)
        P[k] = v[k] * (q * up + (1 - q) * down) + (1 - v[k]) * P[k + 1]
    return P


def suspense_table(P, v, q):
    """suspense_k(x) = sqrt(E_k[(p_{k+1} - p_k)^2]) for k < N."""
    N = len(v)
    up = np.concatenate([P[1:, 1:], np.ones((N, 1))], axis=1)
    down = np.concatenate([np.zeros((N, 1)), P[1:, :-1]], axis=1)
    same = P[1:]
    v = v[:, None]
    return np.sqrt(v * q * (up - P[:-1]) ** 2 + v * (1 - q) * (down - P[:-1]) ** 2 + (1 - v) * (same - P[:-1]) ** 2)


def simulate_games(n_games, n_steps, kinds, rng):
    """Games with a random schedule kind and strength: events (n, N) in {-1, 0, +1}, the exact belief paths
    (n, N + 2) with the outcome revealed as the last point, suspense paths (n, N), winners, strengths."""
    strengths = rng.choice(np.linspace(-0.15, 0.15, 7), n_games)
    kind_of = rng.choice(len(kinds), n_games)
    events = np.zeros((n_games, n_steps), dtype=np.int64)
    beliefs = np.zeros((n_games, n_steps + 2))
    suspense = np.zeros((n_games, n_steps))
    winners = np.zeros(n_games, dtype=np.int64)
    tables = {}
    for g in range(n_games):
        q, kind = 0.5 + strengths[g], kinds[kind_of[g]]
        if (kind, q) not in tables:
            v = schedule(kind, n_steps)
            P = belief_table(v, q)
            tables[kind, q] = (v, P, suspense_table(P, v, q))
        v, P, S = tables[kind, q]
        scored = rng.random(n_steps) < v
        events[g] = np.where(scored, np.where(rng.random(n_steps) < q, 1, -1), 0)
        diff = np.concatenate([[0], np.cumsum(events[g])])
        beliefs[g, :-1] = P[np.arange(n_steps + 1), diff + n_steps]
        suspense[g] = S[np.arange(n_steps), diff[:-1] + n_steps]
        winners[g] = diff[-1] > 0 or (diff[-1] == 0 and rng.random() < q)
        beliefs[g, -1] = winners[g]
    return {"events": events, "beliefs": beliefs, "suspense": suspense, "winners": winners,
            "strengths": strengths, "kind": np.array(kinds)[kind_of]}


def viewer_reports(beliefs, rng, noise=0.05, step=0.05):
    """What viewers would report: the exact belief plus noise, rounded to 0.05, in [0, 1]."""
    return np.clip(np.round((beliefs + noise * rng.standard_normal(beliefs.shape)) / step) * step, 0, 1)


TRUE_WEIGHTS = {"intercept": 5.0, "surprise_early": 1.0, "surprise_mid": 2.0, "surprise_late": 6.0}


def game_measures(paths):
    t = np.arange(paths.shape[1], dtype=np.float64)
    return [measures(t, p) for p in paths]


def part2(exp, rng):
    kinds = ["early", "flat", "late"]
    games = simulate_games(exp.n_games, exp.n_steps, kinds, rng)
    true_m = game_measures(games["beliefs"])
    seg = np.array([[m[c] for c in ("surprise_early", "surprise_mid", "surprise_late")] for m in true_m])
    w = TRUE_WEIGHTS
    ratings = w["intercept"] + seg @ np.array([w["surprise_early"], w["surprise_mid"], w["surprise_late"]]) \
        + exp.rating_noise * rng.standard_normal(len(seg))
    reported = viewer_reports(games["beliefs"], rng)
    rep_m = game_measures(reported)
    rep_seg = np.array([[m[c] for c in ("surprise_early", "surprise_mid", "surprise_late")] for m in rep_m])
    fits = {}
    for name, X in (("exact beliefs", seg), ("viewer reports", rep_seg)):
        coef, se, r2 = ols(X, ratings)
        fits[name] = {"coef": coef.tolist(), "se": se.tolist(), "r2": r2}
    n = exp.n_steps
    predictors = {"total surprise": [m["surprise"] for m in true_m], "late surprise": seg[:, 2],
                  "mean suspense": games["suspense"].mean(1),
                  "final swing": np.abs(games["beliefs"][:, -1] - games["beliefs"][:, int(0.9 * n)])}
    r2 = {k: ols(np.asarray(v, dtype=np.float64)[:, None], ratings)[2] for k, v in predictors.items()}
    by_kind = {k: {"mean_rating": float(ratings[games["kind"] == k].mean()),
                   "mean_sq_changes": float(np.mean([m["sq_changes"] for m, kk in zip(true_m, games["kind"]) if kk == k])),
                   "mean_surprise": float(np.mean([m["surprise"] for m, kk in zip(true_m, games["kind"]) if kk == k])),
                   "mean_p0_1_minus_p0": float(np.mean([p[0] * (1 - p[0]) for p, kk in zip(games["beliefs"], games["kind"])
                                                        if kk == k]))}
               for k in kinds}
    return games, reported, ratings, {"fits": fits, "r2_single_predictor": r2, "by_schedule": by_kind}


# -----------------------------------------------------------------------------
# Part 3: a GPT as the audience

STRENGTH_CHARS = "abcdefg"                        # the seven pre-game strengths, weakest A first
EVENT_CHARS = {1: "A", -1: "B", 0: "."}
VOCAB = STRENGTH_CHARS + "AB."
STOI = {c: i for i, c in enumerate(VOCAB)}


def timeline_tokens(events, strengths):
    """(n, N + 1) ids: the strength, then one character per step (A scores, B scores, nothing)."""
    levels = np.round((np.asarray(strengths) + 0.15) / 0.05).astype(np.int64)
    ids = np.vectorize(lambda e: STOI[EVENT_CHARS[int(e)]])(events)
    return torch.from_numpy(np.concatenate([levels[:, None], ids], axis=1))


class WinProbabilityGPT(nn.Module):
    """The shared GPT plus a head: P(A wins | prefix) = sigmoid(w . h_t + b) at every position."""

    def __init__(self, config):
        super().__init__()
        self.gpt = train.GPT(config)
        self.win_head = nn.Linear(config.n_embd, 1)

    def forward(self, idx):
        return self.win_head(self.gpt.hidden(idx)).squeeze(-1)   # logits (B, T)

    def probabilities(self, idx):
        return torch.sigmoid(self(idx))


def bce(p, y):
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


def part3(exp, rng):
    kinds = ["early", "flat", "late"]
    train_games = simulate_games(exp.gpt_train_games, exp.n_steps, kinds, rng)
    test_games = simulate_games(exp.gpt_test_games, exp.n_steps, kinds, rng)
    x_train = timeline_tokens(train_games["events"], train_games["strengths"])
    y_train = torch.from_numpy(train_games["winners"]).float()
    torch.manual_seed(exp.seed)
    model = WinProbabilityGPT(train.GPTConfig(vocab_size=len(VOCAB), block_size=exp.n_steps + 1,
                                              n_layer=exp.n_layer, n_head=4, n_embd=exp.n_embd))
    gen = torch.Generator().manual_seed(exp.seed)

    class Objective(nn.Module):  # fit() expects model(x, y) -> (logits, loss)
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x, y):
            logits = self.m(x)
            # cross-entropy of the final winner at every position of the timeline
            return logits, F.binary_cross_entropy_with_logits(logits, y[:, None].expand_as(logits))

    def next_batch():
        i = torch.randint(len(x_train), (exp.gpt_batch,), generator=gen)
        return x_train[i], y_train[i]
    train.fit(Objective(model), next_batch, exp.gpt_steps, learning_rate=2e-3, name="win-probability GPT")
    with torch.no_grad():
        gpt_p = model.probabilities(timeline_tokens(test_games["events"], test_games["strengths"])).numpy()
    bayes_p = test_games["beliefs"][:, :-1]                       # the same positions: before each event
    y = np.repeat(test_games["winners"][:, None], gpt_p.shape[1], axis=1).astype(np.float64)
    bins = np.linspace(0, 1, 11)
    which = np.clip(np.digitize(gpt_p.ravel(), bins) - 1, 0, 9)
    calibration = [(float(gpt_p.ravel()[which == b].mean()), float(y.ravel()[which == b].mean()), int((which == b).sum()))
                   for b in range(10) if (which == b).sum() > 0]
    t = np.arange(gpt_p.shape[1] + 1, dtype=np.float64)
    outcome = test_games["winners"][:, None].astype(np.float64)
    gpt_paths, bayes_paths = np.hstack([gpt_p, outcome]), test_games["beliefs"]
    gm = [measures(t, p) for p in gpt_paths]
    bm = [measures(t, p) for p in bayes_paths]
    flow = {}
    for key in ("surprise", "surprise_late", "sq_changes"):
        a, b = np.array([m[key] for m in gm]), np.array([m[key] for m in bm])
        flow[key] = {"gpt_mean": float(a.mean()), "bayes_mean": float(b.mean()), "correlation": float(np.corrcoef(a, b)[0, 1])}
    return {"loss_gpt": bce(gpt_p, y), "loss_bayes_floor": bce(bayes_p, y), "loss_prior_only": bce(bayes_p[:, :1].repeat(gpt_p.shape[1], 1), y),
            "mean_abs_gap_to_bayes": float(np.abs(gpt_p - bayes_p).mean()), "calibration": calibration, "flow": flow}, \
        gpt_paths, bayes_paths, test_games


# -----------------------------------------------------------------------------
# The experiment


@dataclass
class Experiment:
    n_games: int = 2000           # part 2: simulated games (each a rating)
    n_steps: int = 60             # steps per game
    rating_noise: float = 0.5     # sd of the rating noise around the true weights
    gpt_train_games: int = 20000  # part 3
    gpt_test_games: int = 1000
    gpt_steps: int = 400
    gpt_batch: int = 64
    n_layer: int = 4
    n_embd: int = 128
    seed: int = 0
    out_dir: str = "out/infoflow"


def report(p2, p3, games, reported, ratings, gpt_paths, bayes_paths, test_games, exp):
    out = Path(exp.out_dir)
    names = ["intercept", "surprise_early", "surprise_mid", "surprise_late"]
    lines = ["Part 2 (simulation): rating ~ surprise by third of the game",
             "| coefficient | true | exact beliefs (se) | viewer reports (se) |", "|---|---|---|---|"]
    fe, fv = p2["fits"]["exact beliefs"], p2["fits"]["viewer reports"]
    for i, n in enumerate(names):
        lines.append(f"| {n} | {TRUE_WEIGHTS[n]:.2f} | {fe['coef'][i]:.2f} ({fe['se'][i]:.2f}) | {fv['coef'][i]:.2f} ({fv['se'][i]:.2f}) |")
    lines.append(f"| R^2 | - | {fe['r2']:.3f} | {fv['r2']:.3f} |")
    lines += ["", "| single predictor | R^2 |", "|---|---|"] + [f"| {k} | {v:.3f} |" for k, v in p2["r2_single_predictor"].items()]
    lines += ["", "| schedule (same expected points) | mean sum of dp^2 | its expectation p0 (1 - p0) | mean surprise | mean rating |",
              "|---|---|---|---|---|"]
    lines += [f"| {k} | {v['mean_sq_changes']:.3f} | {v['mean_p0_1_minus_p0']:.3f} | {v['mean_surprise']:.3f} | {v['mean_rating']:.3f} |"
              for k, v in p2["by_schedule"].items()]
    lines += ["", "Part 3: a GPT with a win-probability head as the audience (held-out games)",
              f"cross-entropy of the final winner over all positions: GPT {p3['loss_gpt']:.4f}, exact Bayesian "
              f"floor {p3['loss_bayes_floor']:.4f}, pre-game odds only {p3['loss_prior_only']:.4f}; mean |p_GPT - p_Bayes| "
              f"{p3['mean_abs_gap_to_bayes']:.4f}",
              "| per game | GPT mean | Bayes mean | correlation across games |", "|---|---|---|---|"]
    lines += [f"| {k} | {v['gpt_mean']:.3f} | {v['bayes_mean']:.3f} | {v['correlation']:.3f} |" for k, v in p3["flow"].items()]
    table = "\n".join(lines)
    train.write_results(out, table, {"config": dataclasses.asdict(exp), "part2": p2, "part3": p3})

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), dpi=90)
    ax = axes[0, 0]
    for g, color in zip(range(3), ("C0", "C1", "C2")):
        ax.plot(bayes_paths[g], color=color, lw=1.5, label="Bayes" if g == 0 else None)
        ax.plot(gpt_paths[g], color=color, ls="--", lw=1, label="GPT" if g == 0 else None)
    for g, color in zip(range(3), ("C3", "C4", "C5")):
        ax.plot(games["beliefs"][g], color=color, lw=1)
        ax.plot(reported[g], color=color, ls=":", marker=".", ms=2, lw=0.8, label="viewer report" if g == 0 else None)
    ax.set_title("belief paths: Bayes, GPT (held-out), viewers")
    ax.set_xlabel("step")
    ax.set_ylabel("P(A wins)")
    ax.legend(fontsize=7)
    ax = axes[0, 1]
    for kind in ("early", "flat", "late"):
        sel = games["kind"] == kind
        ax.plot(np.abs(np.diff(games["beliefs"][sel], axis=1)).mean(0)[:-1], label=kind)
    ax.set_title("mean surprise |dp| over game time, by schedule")
    ax.set_xlabel("step")
    ax.legend(fontsize=8)
    ax = axes[1, 0]
    total = np.array([m["surprise"] for m in game_measures(games["beliefs"])])
    late = np.array([m["surprise_late"] for m in game_measures(games["beliefs"])])
    ax.scatter(total, ratings, s=3, alpha=0.4, label="total surprise")
    ax.scatter(late, ratings, s=3, alpha=0.4, label="late surprise")
    ax.set_xlabel("surprise")
    ax.set_ylabel("rating")
    ax.set_title("rating against total and late surprise")
    ax.legend(fontsize=8, markerscale=4)
    ax = axes[1, 1]
    x = np.arange(3)
    for off, (label, fit) in zip((-0.15, 0.15), p2["fits"].items()):
        ax.errorbar(x + off, fit["coef"][1:], yerr=1.96 * np.array(fit["se"][1:]), fmt="o", capsize=3, label=label)
    ax.scatter(x, [TRUE_WEIGHTS[n] for n in names[1:]], marker="x", color="k", zorder=3, label="true")
    ax.set_xticks(x, ["early", "middle", "late"])
    ax.set_title("rating weight on surprise by third (95% intervals)")
    ax.legend(fontsize=8)
    for a in axes.ravel():
        a.grid(alpha=0.3)
    fig.tight_layout()
    train.save_figure(fig, out / "infoflow.png")
    print("\n" + table + f"\n\nwrote {out / 'results.json'}, {out / 'results.md'}, {out / 'infoflow.png'}")


def run(argv):
    beliefs = [a for a in argv if a.startswith("--beliefs=")]
    try:
        if beliefs:
            if len(argv) != 1:
                raise train.ConfigError("--beliefs=FILE takes no other arguments")
            analyse_csv(beliefs[0].split("=", 1)[1])
            return 0
        exp = train.parse_args(argv, Experiment, __doc__)
        if min(exp.n_games, exp.gpt_train_games, exp.gpt_test_games) < 10 or exp.n_steps < 3:
            raise train.ConfigError("--n_games, --gpt_train_games, --gpt_test_games must be >= 10 and --n_steps >= 3")
        if min(exp.gpt_steps, exp.gpt_batch, exp.n_layer) < 1 or exp.n_embd % 8 or exp.rating_noise < 0:
            raise train.ConfigError("--gpt_steps, --gpt_batch, --n_layer >= 1; --n_embd a multiple of 8; --rating_noise >= 0")
    except (train.ConfigError, InputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rng = np.random.default_rng(exp.seed)
    print("part 2: simulated games, viewers and ratings", flush=True)
    games, reported, ratings, p2 = part2(exp, rng)
    print("part 3: a GPT as the audience", flush=True)
    p3, gpt_paths, bayes_paths, test_games = part3(exp, rng)
    report(p2, p3, games, reported, ratings, gpt_paths, bayes_paths, test_games, exp)
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
