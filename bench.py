"""
bench.py: speed targets as numbers measured in one run, never as timed tests.

    python bench.py                 # every group
    python bench.py --only=train    # one group: train, or the name of a paper file that defines bench()

Each group returns flat `name: number` rows; all rows go to out/bench.json and a table is printed.
Groups: `train` and `vapo` live here; every paper file next to train.py that defines `bench() -> dict` is a
group named after the file, so a paper file adds its own rows without editing this one.
Timings are medians of repeats after a warm-up (the first call is an outlier), on whatever threads
torch uses by default; the thread count is printed and stored.
"""
import contextlib
import importlib
import json
import re
import statistics
import sys
import time
from pathlib import Path

import torch

import lab
import train


def median_seconds(fn, repeats=5, warmup=1):
    """Median wall time of fn() over `repeats` calls after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def step_function(model, vocab_size, batch_size=12, block_size=64, autocast=contextlib.nullcontext(), optimizer=None):
    """One train.train_step (forward, backward, clip, AdamW step) of `model` on a fixed random batch."""
    optimizer = optimizer or train.make_optimizer(model, train.TrainConfig(), torch.device("cpu"))
    batch = tuple(torch.randint(0, vocab_size, (batch_size, block_size)) for _ in range(2))
    return lambda: train.train_step(model, optimizer, lambda: batch, 1e-3, autocast=autocast)


class LearnedPositions(torch.nn.Module):
    """nanoGPT's input layer: the token embedding plus a learned embedding of each position (wte + wpe)."""
    def __init__(self, wte, block_size):
        super().__init__()
        self.wte, self.wpe = wte, torch.nn.Embedding(block_size, wte.embedding_dim)

    def forward(self, idx):
        return self.wte(idx) + self.wpe(torch.arange(idx.size(1), device=idx.device))


def nanogpt_like_step(config):
    """nanoGPT's training step on the CPU, built from our parts: learned positions instead of the rotation, and
    AdamW as nanoGPT's configure_optimizers makes it off CUDA (the same groups, not fused)."""
    torch.manual_seed(0)
    model = train.GPT(config)
    model.wte = LearnedPositions(model.wte, config.block_size)  # lm_head stays tied to the token embedding
    for block in model.blocks:
        block.attn.rotate = train.NoRotation()
    groups = train.make_optimizer(model, train.TrainConfig(), torch.device("cpu")).param_groups
    optimizer = torch.optim.AdamW([{"params": g["params"], "weight_decay": g["weight_decay"]} for g in groups],
                                  lr=1e-3, betas=(0.9, 0.99))  # nanoGPT: fused=True on CUDA only
    return step_function(model, config.vocab_size, optimizer=optimizer)


def train_step_seconds(model, vocab_size, batch_size=12, block_size=64):
    """Median seconds of one training step on random tokens."""
    return median_seconds(step_function(model, vocab_size, batch_size, block_size), repeats=20, warmup=3)


def paired_seconds(step_a, step_b, repeats=20, warmup=3):
    """Medians of two steps timed alternately (machine noise hits both alike), and the median of the ratios a/b."""
    for _ in range(warmup):
        step_a(), step_b()
    times = []
    for _ in range(repeats):
        pair = []
        for step in (step_a, step_b):
            t0 = time.perf_counter()
            step()
            pair.append(time.perf_counter() - t0)
        times.append(pair)
    a, b = zip(*times)
    return statistics.median(a), statistics.median(b), statistics.median(x / y for x, y in times)


def bench_train():
    """Baseline training throughput at nanoGPT's small CPU config, bf16 on the CPU, and the KV-cache speedup."""
    # nanoGPT's yardstick config: 4 layers, 4 heads, n_embd 128, block 64, batch 12, 65 symbols, eager
    yardstick = train.GPTConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128)
    torch.manual_seed(0)
    ours = step_function(train.GPT(yardstick), 65)
    reference, t_ours, ratio = paired_seconds(nanogpt_like_step(yardstick), ours, repeats=40)
    rows = {"train_ms_per_iter": 1e3 * t_ours, "train_tokens_per_s": 12 * 64 / t_ours,
            "train_vs_nanogpt_like_speed": ratio}
    # bf16 autocast on the CPU against float32, at 65 symbols and with the GPT-2 vocabulary (default run's config)
    for name, vocab, repeats in (("", 65, 20), ("_gpt2_vocab", 50304, 6)):
        steps = []
        for autocast in (contextlib.nullcontext(), torch.autocast("cpu", dtype=torch.bfloat16)):
            torch.manual_seed(0)
            steps.append(step_function(train.GPT(train.GPTConfig(**{**yardstick.__dict__, "vocab_size": vocab})),
                                       vocab, autocast=autocast))
        rows[f"bf16_step_speedup{name}"] = paired_seconds(*steps, repeats=repeats)[2]

    # KV cache: 8 sequences, 16-token prompt, 256 new tokens, greedy; the yardstick model and the GPT-2 vocabulary
    for name, vocab in (("", 65), ("_gpt2_vocab", 50304)):
        torch.manual_seed(0)
        model = train.GPT(train.GPTConfig(**{**yardstick.__dict__, "vocab_size": vocab, "block_size": 320})).eval()
        prompt = torch.randint(0, vocab, (8, 16))
        cached = median_seconds(lambda: model.generate(prompt, 256, temperature=0), repeats=3)
        full = median_seconds(lambda: model.generate(prompt, 256, temperature=0, use_cache=False), repeats=3)
        rows.update({f"generate_256{name}_cached_s": cached, f"generate_256{name}_no_cache_s": full,
                     f"kv_cache_speedup{name}": full / cached})
    return rows


def bench_vapo():
    """vapo_iter_seconds: one VAPO iteration (256 rollouts, actor and critic updates) of vapo.py's default model,
    untrained (the cost does not depend on the weights), without value pretraining."""
    import vapo
    exp = vapo.Experiment()
    torch.manual_seed(0)
    sft = train.GPT(train.GPTConfig(vocab_size=len(vapo.task.VOCAB), block_size=vapo.BLOCK, n_layer=exp.n_layer,
                                    n_head=4, n_embd=exp.n_embd)).eval()
    cfg = vapo.method_config("vapo", iters=3, value_pretrain=False)
    metrics, *_ = vapo.train_method(cfg, sft, log=lambda s: None)
    return {"vapo_iter_seconds": statistics.median(r["seconds"] for r in metrics["iters"][1:])}


GROUPS = {"train": bench_train, "vapo": bench_vapo}   # groups that live here; paper files may add their own bench()


def main(argv):
    groups = list(GROUPS) + lab.paper_files(defining=("bench",))
    only = None
    for arg in argv:
        m = re.fullmatch(r"--only=(\w+)", arg)
        if m is None or m.group(1) not in groups:
            print(f"error: unknown argument '{arg}'; use --only=NAME with NAME one of: {', '.join(groups)}",
                  file=sys.stderr)
            return 2
        only = m.group(1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    rows = {"threads": torch.get_num_threads()}
    for name in groups:
        if only and name != only:
            continue
        t0 = time.time()
        result = GROUPS[name]() if name in GROUPS else importlib.import_module(name).bench()
        rows.update(result)
        print(f"[{name}] {time.time() - t0:.0f}s")
    width = max(map(len, rows))
    print("\n| row | value |\n|---|---|")
    for k, v in rows.items():
        print(f"| {k:<{width}} | {v:.4g} |" if isinstance(v, float) else f"| {k:<{width}} | {v} |")
    path = Path("out/bench.json")
    old = json.loads(path.read_text()) if path.exists() else {}
    train.atomic_write(path, json.dumps({**old, **rows}, indent=1).encode())
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
