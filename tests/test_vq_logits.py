"""Tests for vq_logits.py: the codebook output head, its O(K) loss and sampling, the maps, the floor."""
import dataclasses
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import lab
import train
import vq_logits as vq

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def small_head(V=12, K=4, d=5, seed=0):
    torch.manual_seed(seed)
    code_of = torch.tensor([0, 1, 2, 3, 0, 1, 2, 0, 0, 3, 1, 0])[:V]
    return vq.VQHead(code_of, torch.randn(K, d, dtype=torch.float64)).double()


def test_identity_map_equals_full_head():
    """K = V, M = identity, C = W: the same logits, loss and gradients as the full output layer."""
    torch.manual_seed(0)
    cfg = train.GPTConfig(vocab_size=40, block_size=8, n_layer=1, n_head=2, n_embd=8, tie_weights=False)
    full = train.GPT(cfg).double()
    codebook = train.GPT(cfg).double()
    codebook.load_state_dict(full.state_dict())
    codebook.lm_head = vq.VQHead(torch.arange(40), full.lm_head.weight.detach()).double()
    idx = torch.randint(0, 40, (2, 8))
    la, loss_a = full(idx, idx)
    lb, loss_b = codebook(idx, idx)
    assert torch.allclose(la, lb, atol=1e-12) and torch.allclose(loss_a, loss_b, atol=1e-12)
    loss_a.backward()
    loss_b.backward()
    assert torch.allclose(full.lm_head.weight.grad, codebook.lm_head.codebook.grad, atol=1e-12)
    weight = "blocks.0.attn.c_attn.weight"
    assert torch.allclose(full.get_parameter(weight).grad, codebook.get_parameter(weight).grad, atol=1e-12)


def test_two_loss_paths_agree():
    """The O(K) loss equals cross-entropy over the V scattered logits."""
    head = small_head()
    h = torch.randn(3, 7, 5, dtype=torch.float64)
    targets = torch.randint(0, 12, (3, 7))
    targets[1, :2] = -1
    scattered = F.cross_entropy(head.token_logits(h).reshape(-1, 12), targets.reshape(-1), ignore_index=-1)
    assert torch.allclose(head.code_loss(head.code_logits(h), targets), scattered, atol=1e-12)


def test_training_forward_is_o_k_and_evaluation_is_o_v():
    """A training forward hands the loss K code logits (never V); evaluation gets V logits; same loss value."""
    torch.manual_seed(0)
    cfg = vq.Config(vocab_size=64, block_size=8, n_layer=1, n_head=2, n_embd=8, vq_k=6, vq_mapping="random")
    model = vq.build_model(cfg, None).double()
    idx = torch.randint(0, 64, (2, 8))
    logits, loss = model.train()(idx, idx)
    assert logits.shape == (2, 8, 6) and loss.requires_grad
    with torch.no_grad():
        assert model(idx)[0].shape == (2, 8, 64)  # no gradients: token logits, also in train mode (sampling)
    logits_eval, loss_eval = model.eval()(idx, idx)
    assert logits_eval.shape == (2, 8, 64) and torch.allclose(loss, loss_eval, atol=1e-12)


def test_tokens_sharing_a_code_have_equal_probabilities():
    head = small_head()
    p = torch.softmax(head.token_logits(torch.randn(4, 5, dtype=torch.float64)), -1)
    for code in range(4):
        members = torch.nonzero(head.code_of == code).flatten()
        assert torch.allclose(p[:, members], p[:, members[:1]].expand(-1, len(members)), atol=1e-15)


def test_o_k_sampling_matches_scattered_softmax():
    head = small_head().float()
    h = torch.randn(1, 5).expand(40000, 5)
    tokens = head.sample(h, generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(tokens, minlength=12).double() / len(tokens)
    p = torch.softmax(head.token_logits(h[:1]).double(), -1)[0]
    # 40k draws: standard error <= 0.0025 per token; 5 sigma
    assert torch.all((freq - p).abs() < 0.0125), (freq, p)


class HeadLoss(torch.nn.Module):
    """The head's O(K) loss as a forward pass, so functional_call can substitute its parameters."""

    def __init__(self, head):
        super().__init__()
        self.head = head

    def forward(self, h, targets):
        return self.head.code_loss(self.head.code_logits(h), targets)


def test_gradcheck_float64_on_h_and_codebook():
    head = small_head()
    h = torch.randn(2, 3, 5, dtype=torch.float64, requires_grad=True)
    C = head.codebook.detach().clone().requires_grad_(True)
    targets = torch.tensor([[0, 5, 11], [3, -1, 8]])
    call = torch.func.functional_call
    assert torch.autograd.gradcheck(lambda h, C: call(head, {"codebook": C}, (h,)), (h, C))
    loss = HeadLoss(head)
    assert torch.autograd.gradcheck(lambda h, C: call(loss, {"head.codebook": C}, (h, targets)), (h, C))


@pytest.mark.parametrize("mapping", vq.MAPPINGS)
def test_mappings_are_valid(mapping):
    V, K = 300, 16
    torch.manual_seed(0)
    emb = torch.randn(V, 4)
    counts = torch.cat([torch.randint(1, 1000, (200,)), torch.zeros(100, dtype=torch.long)])
    code_of, centroids = vq.make_mapping(mapping, K, V, emb, counts)
    assert code_of.shape == (V,) and code_of.min() == 0 and code_of.max() == K - 1
    assert len(torch.unique(code_of)) == K  # no empty code
    if mapping == "contiguous":
        assert torch.all(code_of[1:] >= code_of[:-1])
    if mapping == "random":
        n = torch.bincount(code_of)
        assert n.max() - n.min() <= 1
    if mapping == "kmeans":
        assert centroids.shape == (K, 4)
        for j in range(K):  # each centroid is the mean of its members
            assert torch.allclose(centroids[j], emb[code_of == j].mean(0), atol=1e-5)
    if mapping == "frequency":
        mass = torch.zeros(K, dtype=torch.float64).index_add_(0, code_of, counts.double()) / counts.sum()
        assert mass.max() < 3.0 / K  # about equal token mass per code


def test_frequency_balanced_hand_case():
    counts = torch.tensor([50.0, 30, 10, 5, 5, 0])
    assert vq.frequency_balanced(counts, 3).tolist() == [0, 1, 2, 2, 2, 2]


def test_floor_hand_case_codes_of_unequal_size():
    """Codes of 3, 1 and 2 tokens; p(y | c) counted on train with add-one, the floor evaluated on other tokens."""
    code_of = torch.tensor([0, 0, 0, 1, 2, 2])
    train_tokens = [0, 0, 1, 3, 4, 4, 4, 5]  # counts 2 1 0 1 3 1; codes 0: 3 tokens seen, 1: 1, 2: 4
    eval_tokens = [0, 2, 3, 5]
    log_n, log_p = vq.floor_terms(code_of, train_tokens, eval_tokens)
    assert np.allclose(log_n, np.log([3, 3, 1, 2]), atol=1e-12)
    # p(y | c) = (count(y) + 1) / (count(c) + n_c): 3/6, 1/6, 2/2 (a code of one token costs nothing), 2/6
    assert np.allclose(log_p, np.log([3 / 6, 1 / 6, 1.0, 2 / 6]), atol=1e-12)
    f = vq.floor_estimate(code_of, train_tokens, eval_tokens, resamples=200, blocks=4)
    expected = np.mean(np.log([3 * 3 / 6, 3 * 1 / 6, 1.0, 2 * 2 / 6]))  # mean of log(n_c p(y | c))
    assert abs(f["floor"] - expected) < 1e-12
    assert abs(f["floor"] - (f["within_code_cost"] - f["h_token_given_code"])) < 1e-12
    assert f["low"] <= f["floor"] <= f["high"] and f["high"] > f["low"]
    one_per_token = vq.floor_estimate(torch.arange(6), train_tokens, eval_tokens, resamples=50, blocks=4)
    assert one_per_token["floor"] == one_per_token["low"] == one_per_token["high"] == 0  # identity map: no floor


def test_codebook_starts_at_the_mean_of_its_members():
    torch.manual_seed(0)
    embeddings = torch.randn(64, 8)
    cfg = vq.Config(vocab_size=64, block_size=8, n_layer=1, n_head=2, n_embd=8, vq_k=5, vq_mapping="contiguous")
    head = vq.build_model(cfg, None, embeddings).lm_head
    for j in range(5):
        assert torch.allclose(head.codebook[j], embeddings[head.code_of == j].mean(0), atol=1e-6)
    uneven = vq.member_means(torch.tensor([0, 0, 0, 2]), torch.tensor([[1.0], [2.0], [6.0], [5.0]]), 3)
    assert uneven.flatten().tolist() == [3.0, 0.0, 5.0]  # an empty code stays at zero
    zeros = vq.build_model(vq.Config(**{**cfg.__dict__, "vq_init": "zeros"}), None, embeddings).lm_head
    assert torch.all(zeros.codebook == 0)


def test_config_checks():
    with pytest.raises(lab.ConfigError, match="vq_k"):
        lab.parse_args(["--vq_k=0"], vq.Config)
    with pytest.raises(lab.ConfigError, match="choose one of: identity, kmeans, random"):
        lab.parse_args(["--vq_mapping=nope"], vq.Config)
    with pytest.raises(lab.ConfigError, match="init_from"):
        lab.parse_args(["--vq_mapping=kmeans"], vq.Config)
    with pytest.raises(lab.ConfigError, match="vq_init"):
        lab.parse_args(["--vq_init=ones"], vq.Config)


def test_cli_bad_maps_exit_2(tmp_path):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "vq_logits.py"), "--maps=frequency,nope"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--maps" in r.stderr and list(tmp_path.iterdir()) == []


def test_time_heads_keys():
    t = vq.time_heads(K=4, V=64, d=8, N=16, repeats=1)
    assert set(t) == {"full_logits", "code_logits", "scattered_logits", "full_sample", "code_sample"}
    assert all(v > 0 for v in t.values()) and "full_sample" not in vq.time_heads(4, 64, 8, 16, 1, sampling=False)


@pytest.mark.slow
def test_smoke_experiment(tmp_path, tiny_baseline, monkeypatch):
    monkeypatch.setattr(vq, "time_heads", lambda **kw: dict(full_logits=2.0, code_logits=0.1, scattered_logits=1.0))
    exp = vq.Experiment(maps="frequency,random", vq_k=16, seeds=2, steps=4, eval_every=2, eval_batches=1,
                        floor_ks="8", bootstrap=20, baseline=tiny_baseline, out_dir=str(tmp_path / "vq"))
    runs, floors, unigram, timings = vq.run_experiment(exp)
    vq.report(runs, floors, unigram, timings, exp)
    assert [(r["arm"], r["seed"]) for r in runs][:4] == [("full", 0), ("frequency", 0), ("random", 0),
                                                           ("frequency@zeros", 0)]
    assert len(runs) == 8 and len(floors) == 8 and [s for s, _ in runs[0]["curve"]] == [2, 4]
    assert runs[0]["params"]["head"] == 0 and set(runs[0]["projection"]) == {f"{m}@{k}" for m in vq.MAPPINGS
                                                                              for k in (8, 16)}
    data = json.loads((tmp_path / "vq" / "results.json").read_text())
    assert {"claim", "paper_says", "verdict", "control", "seeds", "command"} <= set(data["verdict"][0])
    assert all(v["verdict"] in ("supported", "not supported", "inconclusive") for v in data["verdict"])
    assert all((tmp_path / "vq" / n).exists() for n in ("results.md", "vq_logits.png"))


def test_quick_run_is_smaller_trains_its_own_baseline_and_says_so(tmp_path, check_quick, quick_baseline_config):
    """--quick=true: every size smaller, its own folders (never README's results or train.py's baseline), flags
    given still win, a missing baseline trained small by train.py's loop, and verdicts marked quick."""
    full, quick = check_quick(vq.Experiment, ("baseline", "out_dir"))
    assert quick.quick and lab.parse_args(["--quick=true", "--steps=7"], vq.Experiment).steps == 7
    small, default_baseline = vq.Experiment.QUICK_BASELINE, train.TrainConfig()
    assert small["max_iters"] < default_baseline.max_iters and small["batch_size"] < default_baseline.batch_size
    runs = [dict(r, seed=0) for r in vq_runs([0.01])]
    timings = [dict(full_logits=2.0, code_logits=0.1, scattered_logits=1.0)]
    marked = vq.verdicts(runs, 6.5, timings, quick)[0]
    assert all(v["quick"] and "--quick=true" in v["command"] for v in marked)
    assert not any(v["quick"] for v in vq.verdicts(runs, 6.5, timings, full)[0])
    cfg = quick_baseline_config(vq)
    assert (cfg.max_iters, cfg.batch_size) == (small["max_iters"], small["batch_size"])
    assert cfg.out_dir == str(tmp_path / "base")  # beside the checkpoint it was asked for


def vq_runs(gaps, random_gap=0.5, full=(5.30, 5.31, 5.29), projection=0.02, codebook=131072):
    """Three seeds of heads: the full head at `full`, the frequency map `gaps` above it, the random map above that;
    the full head projected onto either map costs `projection`."""
    runs = []
    for seed, (f, g) in enumerate(zip(full, gaps)):
        for arm, loss in (("full", f), ("frequency", f + g), ("random", f + g + random_gap)):
            runs.append({"arm": arm, "map": arm, "seed": seed, "curve": [(50, loss + 1), (100, loss)],
                         "params": {"head": 0 if arm == "full" else codebook, "embedding": 6438912},
                         "ms_per_iter": 1.0, "projection": {"frequency@1024": projection, "random@1024": projection}})
    return runs


TIMINGS = [dict(full_logits=2.0, code_logits=t, scattered_logits=1.0) for t in (0.1, 0.11, 0.09)]


def test_verdicts_put_the_burden_of_proof_on_the_claim():
    """+4% is supported only when the whole interval of the paired gap lies below 0.039 nats; a gap of +0.06 is
    not; one that straddles 0.039 is inconclusive; the control (full head below unigram, random gap above the
    frequency gap) gates them all."""
    exp = vq.Experiment(maps="frequency,random")
    first = lambda runs, unigram=6.5: vq.verdicts(runs, unigram, TIMINGS, exp)[0][0]["verdict"]
    assert first(vq_runs([0.01, 0.012, 0.008])) == "supported"
    assert first(vq_runs([0.06, 0.061, 0.059])) == "not supported"
    assert first(vq_runs([0.03, 0.045, 0.04])) == "inconclusive"
    assert first(vq_runs([0.01, 0.012, 0.008]), unigram=5.35) == "inconclusive"          # full head near unigram
    assert first(vq_runs([0.01, 0.012, 0.008], random_gap=-0.2)) == "inconclusive"       # the random map better
    out = vq.verdicts(vq_runs([0.01, 0.012, 0.008]), 6.5, TIMINGS, exp)[0]
    assert [v["verdict"] for v in out] == ["supported", "supported", "not supported", "supported", "not supported",
                                          "supported"]  # random: trained gap 0.51; the codebook adds parameters
    slow = [dict(t, code_logits=1.0) for t in TIMINGS]
    assert vq.verdicts(vq_runs([0.01, 0.012, 0.008]), 6.5, slow, exp)[0][-1]["verdict"] == "not supported"


def test_projection_verdict_reads_the_projected_cost_and_the_parameter_count_the_tied_head():
    exp = vq.Experiment(maps="frequency,random")
    projected = lambda cost: vq.verdicts(vq_runs([0.01] * 3, projection=cost), 6.5, TIMINGS, exp)[0][1]
    assert projected(0.02)["verdict"] == "supported" and projected(0.2)["verdict"] == "not supported"
    runs = vq_runs([0.01] * 3)
    for r in runs:
        r["projection"]["frequency@1024"] = 0.02 + 0.03 * r["seed"]  # 0.02, 0.05, 0.08: straddles 0.039
    assert vq.verdicts(runs, 6.5, TIMINGS, exp)[0][1]["verdict"] == "inconclusive"
    for r in runs:  # each map's verdict reads its own map's projection
        r["projection"].update({"frequency@1024": 0.02, "random@1024": 0.2})
    assert [v["verdict"] for v in vq.verdicts(runs, 6.5, TIMINGS, exp)[0][1:4:2]] == ["supported", "not supported"]
    untied = vq_runs([0.01] * 3)  # a full head with parameters of its own: a small codebook saves some
    for r in untied:
        r["params"]["head"] = 6438912 if r["arm"] == "full" else 131072
    assert vq.verdicts(untied, 6.5, TIMINGS, exp)[0][4]["verdict"] == "supported"


def test_gaps_pair_each_seed_with_its_own_full_head_in_any_order():
    """Full heads far apart by seed, the map a fixed 0.01 above each: the gap is 0.01 at every seed, whatever
    the order of the runs (a gap against seed 0's full head, or unsorted seeds, is not)."""
    runs = vq_runs([0.01, 0.01, 0.01], full=(5.0, 5.5, 6.0))
    gaps = dict(vq.gap_curves(runs[::-1], "frequency"))
    assert gaps[100] == pytest.approx([0.01] * 3) and gaps[50] == pytest.approx([0.01] * 3)
    assert vq.final_loss(runs[::-1], "full") == [5.0, 5.5, 6.0]


class FixedLogits(torch.nn.Module):
    """A 'model' whose next-token distribution is the same everywhere: p = softmax(logits)."""
    def __init__(self, p):
        super().__init__()
        self.logits = torch.nn.Parameter(torch.log(torch.tensor(p)))

    def forward(self, x):
        return self.logits.expand(*x.shape, -1), None


def test_projection_cost_hand_case():
    """p = (0.4, 0.1, 0.25, 0.25) everywhere, codes {0, 1} and {2, 3}, so q = 1/4 each. On text of token 1 alone
    the cost is log p(1) - log q(1) = log 0.4; of token 0, log 1.6; of token 2, zero. The identity map (one code
    per token) costs nothing; one code for all costs log 4 + log p(y)."""
    model, data = FixedLogits([0.4, 0.1, 0.25, 0.25]), lambda t: np.full(200, t)
    maps = {"pairs": torch.tensor([0, 0, 1, 1]), "identity": torch.arange(4), "one": torch.zeros(4, dtype=torch.long)}
    for token, pairs in ((1, math.log(0.4)), (0, math.log(1.6)), (2, 0.0)):
        cost = vq.projection_costs(model, data(token), 8, maps, n_batches=2, batch_size=3)
        assert cost["pairs"] == pytest.approx(pairs, abs=1e-6) and cost["identity"] == pytest.approx(0, abs=1e-6)
        assert cost["one"] == pytest.approx(math.log(4) + math.log([0.4, 0.1, 0.25][token]), abs=1e-6)


def test_kmeans_reseeds_an_emptied_cluster():
    """Three distinct points, each repeated, and K = 4: at least one cluster is empty after the first assignment,
    and stays so without the re-seed; with it every code has members."""
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 5.0]]).repeat(10, 1)
    for seed in range(5):
        assign, _ = vq.kmeans(x, 4, seed=seed)
        assert len(torch.unique(assign)) == 4


def test_every_arm_trains_from_the_same_start_steps_and_batches(monkeypatch, tmp_path):
    """train_head's wiring: the same seed, steps, rate and baseline for every arm; the full head is the baseline's
    own (no build function: train.py's tied GPT), the maps are codebook heads from member means, the ablation from
    zeros, each over the map it names."""
    seen = []

    class Stop(Exception):
        pass

    def fake_train(cfg, build=None):
        seen.append((cfg, build))
        raise Stop
    monkeypatch.setattr(vq.train, "train", fake_train)
    exp = vq.Experiment(steps=7, learning_rate=1e-3, out_dir=str(tmp_path))
    baseline = {"config": dataclasses.asdict(train.TrainConfig()), "path": "base.pt"}
    code_of = {m: torch.arange(10) % 3 for m in vq.MAPPINGS}
    assert vq.arms(exp) == [("full", "identity", "tied"), ("frequency", "frequency", "mean"),
                            ("random", "random", "mean"), ("frequency@zeros", "frequency", "zeros")]
    for arm in vq.arms(exp):
        with pytest.raises(Stop):
            vq.train_head(exp, baseline, arm, 2, code_of)
    for (cfg, build), (_, mapping, init) in zip(seen, vq.arms(exp)):
        assert (cfg.seed, cfg.max_iters, cfg.learning_rate, cfg.init_from) == (2, 7, 1e-3, "base.pt")
        assert (build is None) == (init == "tied")
        assert init == "tied" or (cfg.vq_mapping, cfg.vq_init) == (mapping, init)
