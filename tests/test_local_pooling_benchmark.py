"""benchmarks/local_pooling.py applies its adoption rule as fixed before measuring: the setting
is chosen on the validation photos, and becomes the default only if no degradation, clean
photos included, loses more than 0.1 dB and the average rises, labels and blind, both sets."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import local_pooling  # benchmarks/ is not a package: found through the path above

NAMES = (*local_pooling.DEGRADATIONS, "average")


def report(psnr: float, changes: dict[str, float]) -> dict:
    """PSNR ``psnr`` for every degradation (40 dB for clean photos), ``changes`` added."""
    entries = {d: {"psnr": psnr, "input_psnr": 10.0} for d in NAMES}
    entries["clean"] = {"psnr": 40.0, "input_psnr": float("inf")}
    for name, change in changes.items():
        entries[name]["psnr"] += change
    return entries


def bundle(validation: float, changes: dict[str, float]) -> dict:
    """A bundle's result: every held-out part at 20 dB, ``changes`` added."""
    parts = {
        f"{s} {m}": report(20.0, changes) for s in ("test", "ood") for m in ("labels", "blind")
    }
    return {"validation": report(validation, {}), **parts}


def results(local: dict) -> dict:
    return {
        name: {
            "global": bundle(22.0, {}),
            **{s: bundle(v, local.get("changes", {})) for s, v in local["validation"].items()},
        }
        for name in ("seed0", "seed1")
    }


def test_the_choice_is_the_best_validation_mean_and_ties_go_to_the_larger_window():
    chosen = local_pooling.choose(
        results({"validation": {"shift 64": 22.3, "replicate 96": 22.5, "replicate 128": 22.5}}),
        ["global", "shift 64", "replicate 96", "replicate 128"],
    )
    assert chosen == "replicate 128"


def test_a_clean_photo_losing_more_than_a_tenth_of_a_db_keeps_it_an_option():
    gains = {"haze": 1.0, "average": 0.2}
    adopted, _ = local_pooling.judge(
        results({"validation": {"replicate 128": 22.5}, "changes": gains}), "replicate 128"
    )
    assert adopted
    adopted, lines = local_pooling.judge(
        results({"validation": {"replicate 128": 22.5}, "changes": {**gains, "clean": -0.15}}),
        "replicate 128",
    )
    assert not adopted
    assert lines[1] == (
        "- bundled held-out photos, blind: average +0.20 dB, worst clean -0.15 dB: **not met**"
    )
    adopted, _ = local_pooling.judge(
        results({"validation": {"replicate 128": 22.5}, "changes": {"average": -0.01}}),
        "replicate 128",
    )
    assert not adopted  # no loss, but no gain either


def test_a_kept_measurement_is_reused_only_for_the_same_library_code(tmp_path, monkeypatch):
    weights = tmp_path / "quality" / "pip" / "adapter"
    weights.mkdir(parents=True)
    (weights / "adapter.safetensors").write_bytes(b"weights")
    calls = []

    def measure(bundle, setting, part):
        calls.append(setting)
        return {"validation": {"average": {"psnr": 22.0 + len(calls)}}}

    monkeypatch.setattr(local_pooling, "measure", measure)
    runs = tmp_path / "runs"

    def kept() -> dict | None:
        return local_pooling.load_or_measure(weights, "replicate 128", "validation", runs, [1])

    first = kept()
    assert kept() == first and len(calls) == 1  # reused while nothing changed
    # other library code (e.g. the pools' summed-area table before the running sums): measured
    # again
    monkeypatch.setattr(local_pooling, "code_digest", lambda: "other code")
    assert kept() != first and len(calls) == 2
