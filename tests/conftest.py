import sys
from pathlib import Path

import pytest
import torch


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
torch.set_num_threads(1)  # tiny models: one thread is fast and keeps results reproducible


@pytest.fixture(autouse=True)
def results_elsewhere(tmp_path, monkeypatch):
    """No test writes the committed results/: lab.record writes under tmp_path instead."""
    import lab
    monkeypatch.setattr(lab, "RESULTS", tmp_path / "results")


@pytest.fixture
def tiny_text(tmp_path):
    """A small deterministic text file (about 6k tokens) so tests never need the full corpus."""
    import random
    rng = random.Random(0)
    words = ["king", "queen", "crown", "sword", "night", "love", "death", "honour", "fair", "foul", "time", "heart"]
    lines = []
    for _ in range(600):
        name = rng.choice(["ROMEO", "JULIET", "HAMLET", "LEAR"])
        lines.append(f"{name}:\n" + " ".join(rng.choice(words) for _ in range(rng.randint(3, 9))) + ".\n")
    path = tmp_path / "tiny.txt"
    path.write_text("\n".join(lines))
    return path


@pytest.fixture
def tiny_baseline(tmp_path, tiny_text):
    """A 4-step baseline checkpoint on the tiny text, for the finetuning experiments' smoke tests."""
    import train
    summary = train.train(train.TrainConfig(dataset=str(tiny_text), data_dir=str(tmp_path / "data"),
                                            out_dir=str(tmp_path / "base"), n_layer=1, n_head=2, n_embd=16,
                                            block_size=16, batch_size=4, max_iters=4, eval_iters=2,
                                            sample_tokens=0, num_threads=1), quiet=True)
    return str(Path(summary["out_dir"]) / "ckpt.pt")


@pytest.fixture
def check_quick():
    """check(Experiment, folders): --quick=true applies every QUICK value; each one is smaller than the default
    (a comma-separated list has fewer entries), except `folders`, which must differ. Returns (full, quick)."""

    def check(cls, folders=("out_dir",)):
        import lab
        full, quick = cls(), lab.parse_args(["--quick=true"], cls)
        for key, value in cls.QUICK.items():
            default = getattr(full, key)
            assert getattr(quick, key) == value, key
            if key in folders:
                assert value != default, key
            elif isinstance(value, str):
                assert len(value.split(",")) < len(default.split(",")), key
            else:
                assert value < default, key
        assert quick.quick and not full.quick
        return full, quick
    return check


@pytest.fixture
def quick_baseline_config(monkeypatch, tmp_path):
    """config(module): the TrainConfig a quick run of module.run_experiment hands to train.train when its baseline
    checkpoint is missing (caught there, so nothing is trained)."""
    import train

    class Trained(Exception):
        pass

    def train_instead(cfg, *args, **kwargs):
        raise Trained(cfg)

    def config(module):
        monkeypatch.setattr(train, "train", train_instead)
        with pytest.raises(Trained) as trained:
            module.run_experiment(module.Experiment(quick=True, baseline=str(tmp_path / "base" / "ckpt.pt")))
        return trained.value.args[0]
    return config
