"""benchmarks/quality.py's training seeds: a seed variant changes the initialisation and the
training data and nothing else, enters the cache key only when set, and the seed table averages
each variant over its seeds."""

import argparse
import dataclasses
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import quality  # benchmarks/ is not a package: found through the path above


def args() -> argparse.Namespace:
    return argparse.Namespace(
        steps=10, batch_size=2, patch_size=32, lr=1e-3, seed=0, threads=1, loss="psnr",
        context=0, sensor_steps=1,
    )  # fmt: skip


def first_items(dataset, count: int = 5) -> list[torch.Tensor]:
    return [dataset[index][0] for index in range(count)]


def test_a_seed_variant_changes_the_seed_and_nothing_else():
    for name in quality.SEEDS:
        base, second = quality.VARIANTS[name], quality.VARIANTS[f"{name}_seed1"]
        assert second.group == "seeds" and (base.seed(args()), second.seed(args())) == (0, 1)
        assert dataclasses.replace(second, label=base.label, group=base.group, train_seed=None) == (
            base
        )
    # only the seed variants' cache keys name a training seed: the cached seed-0 runs stay valid
    assert "train_seed" not in quality.settings(args(), "light")
    assert quality.settings(args(), "light_seed1") == {
        **quality.settings(args(), "light"),
        "train_seed": 1,
    }
    seed0, seed1, again = (quality.training_set(args(), s) for s in (0, 1, 0))
    assert all(map(torch.equal, first_items(seed0), first_items(again)))
    assert not all(map(torch.equal, first_items(seed0), first_items(seed1)))


def test_the_seed_table_averages_each_variant_over_its_seeds():
    def result(test: float, ood: float) -> dict:
        return {"reports": {"test": {"average": {"psnr": test}}, "ood": {"average": {"psnr": ood}}}}

    results = {
        "pip": result(24.0, 21.0),
        "pip_seed1": result(23.0, 22.0),
        "light": result(23.9, 21.6),
        "light_seed1": result(23.2, 21.2),
    }
    lines = quality.seed_table(results)
    assert "| PIP (default) | mean | **23.50** | **21.50** |" in lines
    assert any(
        line.startswith(f"| {quality.VARIANTS['light'].label} | mean | **23.55** |")
        for line in lines
    )
    assert lines[-1].endswith(
        "+0.05 dB (bundled held-out photos), -0.10 dB (out-of-domain held-out photos)."
    )
    assert quality.seed_table({"pip": results["pip"], "light": results["light"]}) == []  # one seed


def test_a_cached_run_is_reused_only_for_the_network_the_variant_builds_now(tmp_path):
    run = args()
    run.runs = tmp_path
    key = quality.settings(run, "light")
    (tmp_path / "light").mkdir()
    assert not quality.same_model("light", run, key, key)  # no cached weights
    save_file(quality.VARIANTS["pip"].build().state_dict(), tmp_path / "light" / quality.WEIGHTS)
    assert not quality.same_model("light", run, key, key)  # another unit size
    save_file(quality.VARIANTS["light"].build().state_dict(), tmp_path / "light" / quality.WEIGHTS)
    assert quality.same_model("light", run, key, key)
    assert not quality.same_model("light", run, {**key, "train_seed": 1}, key)  # a seed run
    assert not quality.same_model("light", run, {**key, "steps": 5}, key)
