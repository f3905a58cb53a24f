"""Tests for train.py: tokenizer, data, model invariants, generation, training loop, CLI, DDP."""
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import lab
import train
from train import GPT, GPTConfig, TrainConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def tiny_gpt(dtype=torch.float32, **kw):
    torch.manual_seed(0)
    cfg = dict(vocab_size=97, block_size=16, n_layer=2, n_head=2, n_embd=16)
    cfg.update(kw)
    return GPT(GPTConfig(**cfg)).to(dtype).eval()


def tiny_train_cfg(tmp_path, text_path, **kw):
    cfg = TrainConfig(dataset=str(text_path), data_dir=str(tmp_path / "data"), out_dir=str(tmp_path / "run"),
                      n_layer=1, n_head=2, n_embd=16, block_size=16, batch_size=4, max_iters=8,
                      warmup_iters=2, eval_interval=4, eval_iters=2, log_interval=1, ckpt_interval=4,
                      sample_tokens=0, num_threads=1)
    return dataclasses.replace(cfg, **kw)


# --- tokenizer and data -------------------------------------------------------

def test_gpt2_tokenizer_offline_ids():
    enc = train.gpt2_encoding()
    assert enc.encode("Hello world") == [15496, 995]
    assert enc.encode("<|endoftext|>", allowed_special="all") == [50256]
    assert enc.n_vocab == 50257
    text = "To be, or not to be: that is the question.\n"
    assert enc.decode(enc.encode(text)) == text


def test_play_to_text_hand_case():
    md = ("# Macbeth\n\n## ACT I\n\n_Thunder. Enter three Witches_\n\n**First Witch**  \n"
          "When shall we three meet again  \nIn thunder, lightning \\[or] rain?\n\n\n**ALL**  \nFair is foul.\n")
    assert train.play_to_text(md) == ("Thunder. Enter three Witches\n\nFirst Witch:\nWhen shall we three meet again\n"
                                      "In thunder, lightning [or] rain?\n\nALL:\nFair is foul.\n")


def test_shakespeare_corpus_is_the_plays():
    text = train.shakespeare_text()
    assert text.count("<|endoftext|>") == 37  # 38 plays
    assert "\nMACBETH:\n" in text and "**" not in text and "\n#" not in text


def test_prepare_data_split_and_reuse(tmp_path, tiny_text):
    folder = train.prepare_data(str(tiny_text), str(tmp_path / "data"))
    ids = train.gpt2_encoding().encode(tiny_text.read_text())
    tr = np.fromfile(folder / "train.bin", dtype=np.uint16)
    va = np.fromfile(folder / "val.bin", dtype=np.uint16)
    assert len(va) == int(len(ids) * 0.1) and np.array_equal(np.concatenate([tr, va]), ids)
    mtime = (folder / "train.bin").stat().st_mtime_ns
    assert train.prepare_data(str(tiny_text), str(tmp_path / "data")) == folder
    assert (folder / "train.bin").stat().st_mtime_ns == mtime  # tokenized once, then reused


def test_data_errors(tmp_path):
    with pytest.raises(train.DataError, match="not found"):
        train.prepare_data(str(tmp_path / "missing.txt"), str(tmp_path / "data"))
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(train.DataError, match="empty"):
        train.prepare_data(str(tmp_path / "empty.txt"), str(tmp_path / "data"))
    (tmp_path / "short.txt").write_text("a few words only " * 10)
    folder = train.prepare_data(str(tmp_path / "short.txt"), str(tmp_path / "data"))
    with pytest.raises(train.DataError, match="block_size"):
        train.load_tokens(folder, "val", 66)


def test_get_batch_targets_are_shifted_inputs():
    data = np.arange(100, dtype=np.uint16)
    x, y = train.get_batch(data, torch.tensor([0, 50]), 8, torch.device("cpu"))
    assert x.shape == (2, 8) and torch.equal(y, x + 1) and x[1, 0] == 50


# --- model --------------------------------------------------------------------

def test_shapes_and_param_counts():
    model = tiny_gpt()
    idx = torch.randint(0, 97, (3, 10))
    logits, loss = model(idx, idx)
    assert logits.shape == (3, 10, 97) and loss.shape == ()
    counts = model.param_counts()
    assert counts["head"] == 0  # tied
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    untied = tiny_gpt(tie_weights=False).param_counts()
    assert untied["head"] == 97 * 16 and untied["total"] == counts["total"] + 97 * 16


def test_loss_ignores_minus_one_targets():
    model = tiny_gpt()
    idx = torch.randint(0, 97, (2, 8))
    targets = idx.clone()
    targets[:, :4] = -1
    logits, loss = model(idx, targets)
    expected = torch.nn.functional.cross_entropy(logits[:, 4:].reshape(-1, 97), idx[:, 4:].reshape(-1))
    assert torch.allclose(loss, expected)


def test_causality():
    model = tiny_gpt()
    idx = torch.randint(0, 97, (2, 12))
    changed = idx.clone()
    changed[:, 7:] = torch.randint(0, 97, (2, 5))
    a, _ = model(idx)
    b, _ = model(changed)
    assert torch.equal(a[:, :7], b[:, :7])
    assert not torch.allclose(a[:, 7:], b[:, 7:])


def test_rope_scores_depend_on_relative_position_only():
    cos, sin = train.rope_tables(8, 40)
    q, k = torch.randn(8, dtype=torch.float64), torch.randn(8, dtype=torch.float64)
    def score(m, n):
        return (train.apply_rope(q, cos[m].double(), sin[m].double())
                @ train.apply_rope(k, cos[n].double(), sin[n].double()))
    assert abs(score(5, 2) - score(30, 27)) < 1e-6
    assert abs(score(0, 0) - q @ k) < 1e-12  # position 0 is the identity
    assert abs(score(5, 2) - score(5, 3)) > 1e-3


def test_rope_rotates_adjacent_pairs_hand_case(monkeypatch):
    """z_0 = 1 + 0i turned by 90 degrees is i; z_1 = 0 + 2i turned by 180 degrees is -2i. The real-arithmetic
    path that torch.compile uses gives the same numbers as the complex multiply of eager mode."""
    x = torch.tensor([1.0, 0.0, 0.0, 2.0], dtype=torch.float64)
    cos, sin = torch.tensor([0.0, -1.0]), torch.tensor([1.0, 0.0])
    assert torch.allclose(train.apply_rope(x, cos, sin), torch.tensor([0.0, 1.0, 0.0, -2.0], dtype=torch.float64))
    q = torch.randn(3, 5, 2, 8)
    cos, sin = (t[:, None] for t in train.rope_tables(8, 5))
    eager = train.apply_rope(q, cos, sin)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    assert torch.allclose(train.apply_rope(q, cos, sin), eager, atol=1e-6)


def test_attention_gradcheck_float64():
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=11, block_size=6, n_layer=1, n_head=2, n_embd=8, bias=True)
    attn = train.CausalSelfAttention(cfg, 0).double()
    cos, sin = train.rope_tables(4, 6)
    x = torch.randn(2, 6, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: attn(x, cos[:, None].double(), sin[:, None].double()), (x,))


def test_kv_cache_generation_equals_full_decoding():
    model = tiny_gpt(torch.float64)
    idx = torch.randint(0, 97, (3, 5))
    for new, temp in [(8, 1.0), (8, 0.0), (25, 0.9)]:  # 25 runs past block_size=16: cropped decoding
        a = model.generate(idx, new, temperature=temp, top_k=20, generator=torch.Generator().manual_seed(1))
        b = model.generate(idx, new, temperature=temp, top_k=20, generator=torch.Generator().manual_seed(1),
                           use_cache=False)
        assert a.shape == (3, 5 + new) and torch.equal(a, b)


def test_kv_cache_logits_match_full_forward():
    model = tiny_gpt(torch.float64)
    idx = torch.randint(0, 97, (2, 10))
    full, _ = model(idx)
    cache = model.new_kv_cache(2, 16)
    first, _ = model(idx[:, :6], kv_cache=cache)
    steps = [model(idx[:, t:t + 1], kv_cache=cache)[0] for t in range(6, 10)]
    assert torch.allclose(torch.cat([first] + steps, 1), full, atol=1e-12)


def test_generate_batch_left_padding_equals_one_by_one():
    """Every step's logits of the left-padded batch equal those of each prompt decoded alone (float64, so a wrong
    mask or position shows even where the greedy token would not change)."""
    model = tiny_gpt(torch.float64)
    seen = []
    model.lm_head.register_forward_hook(lambda module, inputs, out: seen.append(out[:, -1].clone()))
    prompts = [[5, 6, 7], [1, 2, 3, 4, 5, 6, 7], [9]]
    for use_cache in (True, False):
        seen.clear()
        new, lengths = model.generate_batch(prompts, 6, temperature=0, use_cache=use_cache)
        batched = torch.stack(seen)  # (steps, B, V)
        assert lengths.tolist() == [3, 7, 1]
        for i, p in enumerate(prompts):
            seen.clear()
            alone = model.generate(torch.tensor([p]), 6, temperature=0)[0, len(p):]
            assert torch.equal(new[i], alone)
            assert torch.allclose(batched[:, i], torch.stack(seen)[:, 0], atol=1e-10)
    with pytest.raises(ValueError):
        model.generate_batch([[1], []], 3)


def test_padded_forward_logits_equal_unpadded():
    """The prefill of a left-padded batch: logits at real tokens equal each row's own forward pass."""
    model = tiny_gpt(torch.float64)
    rows = [torch.randint(0, 97, (n,)) for n in (4, 9, 1)]
    n_pad = torch.tensor([9 - len(r) for r in rows])
    idx = torch.stack([torch.cat([torch.zeros(9 - len(r), dtype=torch.long), r]) for r in rows])
    cols = torch.arange(9)
    logits, _ = model(idx, pos=(cols[None] - n_pad[:, None]).clamp(min=0), key_mask=cols[None] >= n_pad[:, None])
    for i, r in enumerate(rows):
        assert torch.allclose(logits[i, 9 - len(r):], model(r[None])[0][0], atol=1e-10)


# --- training loop ------------------------------------------------------------

def test_lr_schedule():
    cfg = TrainConfig(learning_rate=1.0, min_lr=0.1, warmup_iters=10, max_iters=100)
    lrs = [train.lr_at(i, cfg) for i in range(101)]
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:11]))
    assert abs(lrs[10] - 1.0) < 1e-12 and abs(lrs[100] - 0.1) < 1e-12
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))


def test_same_seed_same_losses(tmp_path, tiny_text):
    a = train.train(tiny_train_cfg(tmp_path, tiny_text, out_dir=str(tmp_path / "a")), quiet=True)
    b = train.train(tiny_train_cfg(tmp_path, tiny_text, out_dir=str(tmp_path / "b")), quiet=True)
    c = train.train(tiny_train_cfg(tmp_path, tiny_text, out_dir=str(tmp_path / "c"), seed=7), quiet=True)
    assert a["history"] == b["history"]
    assert a["history"]["train"] != c["history"]["train"]
    assert a["history"]["train"][-1][1] < a["history"]["train"][0][1]  # it learns


def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, tiny_text):
    full = train.train(tiny_train_cfg(tmp_path, tiny_text, out_dir=str(tmp_path / "full"), dropout=0.1), quiet=True)

    def crash(it, info):
        if it == 6:
            raise KeyboardInterrupt
    cfg = tiny_train_cfg(tmp_path, tiny_text, out_dir=str(tmp_path / "cut"), dropout=0.1)
    with pytest.raises(KeyboardInterrupt):
        train.train(cfg, callback=crash, quiet=True)
    assert torch.load(tmp_path / "cut" / "ckpt.pt", weights_only=False)["iter_num"] == 4
    resumed = train.train(dataclasses.replace(cfg, resume=True), quiet=True)
    assert resumed["history"] == full["history"]


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    train.atomic_write(tmp_path / "a.bin", b"x")
    assert (tmp_path / "a.bin").read_bytes() == b"x" and (tmp_path / "a.bin").stat().st_mode & 0o777 == 0o644
    (tmp_path / "a.bin").unlink()
    train.save_checkpoint(path, {"iter_num": 1, "w": torch.ones(3)})

    def broken_save(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")
    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        train.save_checkpoint(path, {"iter_num": 2})
    assert torch.load(path, weights_only=False)["iter_num"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temp file left behind


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, tiny_text):
    calls = {"n": 0}

    def build(cfg, data):
        model = train.build_baseline(cfg)

        def loss_fn(logits, targets):
            calls["n"] += 1
            loss = train.cross_entropy_loss(logits, targets)
            return loss * float("nan") if calls["n"] > 6 else loss
        model.loss_fn = loss_fn
        return model
    cfg = tiny_train_cfg(tmp_path, tiny_text)
    with pytest.raises(train.NonFiniteLoss, match=r"loss is nan at iteration 7; .*iteration 4\) is untouched"):
        train.train(cfg, build_model=build, quiet=True)
    assert torch.load(tmp_path / "run" / "ckpt.pt", weights_only=False)["iter_num"] == 4


@pytest.mark.slow
def test_ddp_two_gloo_processes_equal_one_process(tmp_path, tiny_text):
    common = [f"--dataset={tiny_text}", f"--data_dir={tmp_path / 'data'}", "--n_layer=1", "--n_head=2",
              "--n_embd=16", "--block_size=16", "--max_iters=6", "--warmup_iters=2", "--eval_interval=3",
              "--eval_iters=2", "--log_interval=1", "--sample_tokens=0", "--num_threads=1"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    one = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), *common, "--batch_size=8",
                          f"--out_dir={tmp_path / 'one'}"], capture_output=True, text=True, env=env, timeout=300)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          os.path.join(ROOT, "train.py"), *common, "--batch_size=4", f"--out_dir={tmp_path / 'two'}"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert two.returncode == 0, two.stderr
    h1 = json.loads((tmp_path / "one" / "summary.json").read_text())["history"]
    h2 = json.loads((tmp_path / "two" / "summary.json").read_text())["history"]
    for key in ("train", "val"):
        assert len(h1[key]) == len(h2[key]) > 0
        for (i1, l1), (i2, l2) in zip(h1[key], h2[key]):
            assert i1 == i2 and abs(l1 - l2) < 1e-4


def test_init_from_loads_weights_and_skips_what_does_not_fit(tmp_path, tiny_text):
    base = train.train(tiny_train_cfg(tmp_path, tiny_text, out_dir=str(tmp_path / "base")), quiet=True)
    state = torch.load(tmp_path / "base" / "ckpt.pt", weights_only=False)["model"]

    def untied(cfg, data):  # an extra head whose shape differs is kept fresh
        model = train.build_baseline(cfg)
        model.lm_head = torch.nn.Linear(cfg.n_embd, 7)
        return model
    cfg = tiny_train_cfg(tmp_path, tiny_text, out_dir=str(tmp_path / "ft"), max_iters=0,
                         init_from=str(tmp_path / "base" / "ckpt.pt"))
    model = train.train(cfg, build_model=untied, quiet=True)["model"]
    assert torch.equal(model.wte.weight, state["wte.weight"])
    assert torch.equal(model.blocks[0].mlp.c_fc.weight, state["blocks.0.mlp.c_fc.weight"])
    assert model.lm_head.weight.shape == (7, 16)
    assert base["model"] is not model
    with pytest.raises(train.DataError, match="does not exist"):
        train.train(dataclasses.replace(cfg, init_from=str(tmp_path / "nope.pt")), quiet=True)


def test_nan_check_runs_when_logging(tmp_path, tiny_text):
    """The NaN check needs the loss on the host, so it runs at log and checkpoint steps only (no sync per step)."""
    def build(cfg, data):
        model = train.build_baseline(cfg)
        model.loss_fn = lambda logits, targets: train.cross_entropy_loss(logits, targets) * float("nan")
        return model
    cfg = tiny_train_cfg(tmp_path, tiny_text, log_interval=3, ckpt_interval=5)
    with pytest.raises(train.NonFiniteLoss, match=r"loss is nan at iteration 3; no checkpoint yet"):
        train.train(cfg, build_model=build, quiet=True)
    assert not (tmp_path / "run" / "ckpt.pt").exists()


def test_loop_val_loss_is_val_loss(tmp_path, tiny_text):
    """One evaluator: the loop's history["val"] is what paper files get from train.val_loss."""
    s = train.train(tiny_train_cfg(tmp_path, tiny_text), quiet=True)
    val = train.load_tokens(train.prepare_data(str(tiny_text), str(tmp_path / "data")), "val", 18)
    assert s["val_loss"] == pytest.approx(train.val_loss(s["model"], val, 16, batch_size=4, n_batches=2), abs=1e-6)


def test_flops_per_token_and_peak_by_device_name():
    """6 N + 12 L T C with N = block matrices + norms + the output head counted once, tied or not."""
    tied, untied = tiny_gpt(), tiny_gpt(tie_weights=False)
    blocks = 2 * (16 * 48 + 16 * 16 + 16 * 64 + 64 * 16 + 2 * 16) + 16  # c_attn, c_proj, c_fc, c_proj, ln_1, ln_2; ln_f
    expected = 6 * (blocks + 97 * 16) + 12 * 2 * 16 * 16
    assert train.flops_per_token(tied, 16) == expected and train.flops_per_token(untied, 16) == expected
    peak = dict(train.PEAK_BF16_FLOPS)
    lookup = {name: next(f for n, f in train.PEAK_BF16_FLOPS if n in name)
              for name in ("NVIDIA H100 80GB HBM3", "NVIDIA H100 PCIe", "NVIDIA A100-SXM4-80GB", "NVIDIA H200")}
    assert lookup == {"NVIDIA H100 80GB HBM3": 989e12, "NVIDIA H100 PCIe": 756e12, "NVIDIA A100-SXM4-80GB": 312e12,
                      "NVIDIA H200": 989e12} and peak["H100"] == 989e12


def test_rng_state_round_trip_through_resume_includes_cuda(monkeypatch):
    """Resume restores every stream, the CUDA one included (faked here: tests never need a GPU)."""
    fake = {"state": torch.tensor([1, 2, 3], dtype=torch.uint8)}
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device: fake["state"].clone())
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device: fake.update(state=state))
    gen, model = torch.Generator().manual_seed(5), tiny_gpt()
    optimizer = train.make_optimizer(model, TrainConfig(), torch.device("cpu"))
    ckpt = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "iter_num": 7, "history": {},
            "rng": train.rng_state(gen, torch.device("cuda"), 1)}
    monkeypatch.setattr(train, "load_checkpoint", lambda *args, **kwargs: ckpt)  # no file, no CUDA map_location
    expected = (torch.rand(3, generator=gen), torch.rand(3))
    fake["state"] = torch.tensor([9], dtype=torch.uint8)
    assert train.resume("ckpt.pt", model, optimizer, gen, torch.device("cuda"), 0, lambda *a: None) == (7, {})
    assert torch.equal(torch.rand(3, generator=gen), expected[0]) and torch.equal(torch.rand(3), expected[1])
    assert fake["state"].tolist() == [1, 2, 3]


def test_shakespeare_char_dataset(tmp_path):
    folder = train.prepare_data("shakespeare_char", str(tmp_path / "data"))
    encode, decode, n = train.codec(folder)
    text = "To be, or not to be"
    assert 60 < n < 100 and decode(encode(text)) == text
    head = np.fromfile(folder / "train.bin", dtype=np.uint16)[:300]
    assert decode(head.tolist()) == train.shakespeare_text("\n")[:300]


def run_torchrun(script_args, tmp_path, nproc, env_extra=None):
    env = dict(os.environ, OMP_NUM_THREADS="1", **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
                           *script_args], capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)


@pytest.mark.slow
def test_ddp_with_gradient_accumulation_equals_one_process(tmp_path, tiny_text):
    """2 processes x accumulation 2 follow 1 process x accumulation 4 (no_sync on all but the last micro-step)."""
    common = [f"--dataset={tiny_text}", f"--data_dir={tmp_path / 'data'}", "--n_layer=1", "--n_head=2", "--n_embd=16",
              "--block_size=16", "--max_iters=4", "--warmup_iters=1", "--eval_interval=2", "--eval_iters=2",
              "--log_interval=1", "--sample_tokens=0", "--num_threads=1", "--batch_size=4", "--dropout=0"]
    one = common + ["--gradient_accumulation_steps=4", f"--out_dir={tmp_path / 'one'}"]
    train.train(lab.parse_args(one), quiet=True)
    two = run_torchrun([os.path.join(ROOT, "train.py"), *common, "--gradient_accumulation_steps=2",
                        f"--out_dir={tmp_path / 'two'}"], tmp_path, 2)
    assert two.returncode == 0, two.stderr
    h1, h2 = (json.loads((tmp_path / run / "summary.json").read_text())["history"]["train"] for run in ("one", "two"))
    assert [i for i, _ in h1] == [i for i, _ in h2] == [1, 2, 3, 4]
    assert np.allclose([v for _, v in h1], [v for _, v in h2], atol=1e-5)
    w1, w2 = (torch.load(tmp_path / run / "ckpt.pt", weights_only=True)["model"] for run in ("one", "two"))
    assert all(torch.allclose(w1[k], w2[k], atol=1e-5) for k in w1)  # the same updates, not only the same losses


@pytest.mark.slow
def test_ddp_nan_on_one_rank_stops_every_rank_alike(tmp_path, tiny_text):
    script = tmp_path / "nan_on_rank1.py"
    script.write_text(f"""import os, sys
sys.path.insert(0, {ROOT!r})
import lab, train
def build(cfg, data):
    model, calls = train.build_baseline(cfg), [0]
    def loss_fn(logits, targets):
        calls[0] += 1
        loss = train.cross_entropy_loss(logits, targets)
        return loss * float("nan") if os.environ["RANK"] == "1" and calls[0] > 5 else loss
    model.loss_fn = loss_fn
    return model
try:
    train.train(lab.parse_args(sys.argv[1:]), build_model=build)
except train.NonFiniteLoss as e:
    print(f"rank {{os.environ['RANK']}} error: {{e}}", file=sys.stderr)
    sys.exit(3)
""")
    r = run_torchrun([str(script), f"--dataset={tiny_text}", f"--data_dir={tmp_path / 'data'}", "--n_layer=1",
                      "--n_head=2", "--n_embd=16", "--block_size=16", "--max_iters=8", "--eval_interval=4",
                      "--eval_iters=2", "--log_interval=2", "--ckpt_interval=4", "--sample_tokens=0", "--num_threads=1",
                      "--batch_size=2", f"--out_dir={tmp_path / 'run'}"], tmp_path, 2)
    message = "error: stopped: loss is nan at iteration 6; the last good checkpoint"
    assert r.returncode != 0 and f"rank 0 {message}" in r.stderr and f"rank 1 {message}" in r.stderr, r.stderr
    assert "all_reduce" not in r.stderr and "Connection" not in r.stderr
    assert torch.load(tmp_path / "run" / "ckpt.pt", weights_only=True)["iter_num"] == 4


def test_checkpoint_of_an_older_train_py_is_refused(tmp_path):
    """The first edition rotated halves of each head, this one adjacent pairs: its weights must not load silently."""
    torch.save({"model": {}, "iter_num": 1}, tmp_path / "old.pt")
    with pytest.raises(train.DataError, match="older train.py .*format 1"):
        train.load_checkpoint(tmp_path / "old.pt")
    train.save_checkpoint(tmp_path / "new.pt", {"iter_num": 2})
    assert train.load_checkpoint(tmp_path / "new.pt")["iter_num"] == 2


def test_cpu_setup_keeps_freed_memory_in_the_process(monkeypatch):
    if sys.platform.startswith("linux") and os.path.exists("/lib/x86_64-linux-gnu/libc.so.6"):
        assert train.keep_freed_memory() is True  # glibc took both settings
    calls = []
    monkeypatch.setattr(train, "keep_freed_memory", lambda: calls.append(1))
    threads = torch.get_num_threads()
    assert train.setup(TrainConfig(device="cpu", num_threads=threads))[0].type == "cpu" and calls == [1]
