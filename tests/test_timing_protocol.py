"""The overhead benchmark's timing protocol (benchmarks/timing.py): rounds of interleaved runs,
each round's best, the median of the rounds' ratios with its range, and how the overhead page
states a goal against that range."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import overhead  # benchmarks/ is not a package: found through the path above
import timing


def scripted(times: list[float], calls: list[str], key: str):
    """A run that returns the next of ``times`` and records that ``key`` ran."""
    remaining = iter(times)

    def run() -> float:
        calls.append(key)
        return next(remaining)

    return run


def test_rounds_keep_each_rounds_best_and_interleave_the_runs():
    calls: list[str] = []
    runs = {
        "plain": scripted([3, 1, 2, 5, 4, 6], calls, "plain"),
        "pip": scripted([4, 2, 3, 6, 7, 5], calls, "pip"),
    }
    bests = timing.interleaved_rounds(runs, rounds=2, repeats=3)
    assert bests == {"plain": [1, 4], "pip": [2, 5]}
    assert calls == ["plain", "pip"] * 6


def test_rounds_and_repeats_are_checked():
    with pytest.raises(ValueError, match="at least 1"):
        timing.interleaved_rounds({"plain": lambda: 1.0}, rounds=0, repeats=3)


def test_ratio_spread_is_the_median_and_range_of_the_round_ratios():
    # per-round ratios 1.2, 1.0, 1.1, 1.5, 1.05: the median is not the ratio of the medians
    plain = [10.0, 10.0, 10.0, 10.0, 20.0]
    pip = [12.0, 10.0, 11.0, 15.0, 21.0]
    spread = timing.ratio_spread(pip, plain)
    assert spread == pytest.approx(timing.Spread(1.1, 1.0, 1.5))
    assert spread.contains(1.2) and not spread.contains(1.6)
    assert str(timing.Spread(1.1, 1.0, 1.5)) == "1.100x (1.000-1.500)"
    with pytest.raises(ValueError, match="one time per round"):
        timing.ratio_spread([1.0, 2.0], [1.0])


def test_summary_stores_median_times_and_the_ratio_range():
    stored = overhead.summary(plain=[10.0, 11.0, 30.0], model=[11.0, 11.0, 36.0])
    assert stored["seconds"] == [11.0, 11.0]
    assert stored["time_ratio"] == pytest.approx([1.1, 1.0, 1.2])
    assert overhead.time_spread(stored) == pytest.approx(timing.Spread(1.1, 1.0, 1.2))


def measured(ratios: list[float]) -> dict:
    return {"seconds": [0.1, 0.1 * ratios[0]], "time_ratio": ratios, "peak_mib": [20.0, 22.0]}


def test_the_page_says_whether_a_goal_lies_inside_the_spread():
    settled = overhead.verdict("nafnet", measured([1.08, 1.06, 1.09]))
    assert settled.startswith("≤ 1.10x time: met;") and "inside" not in settled
    unsettled = overhead.verdict("nafnet", measured([1.09, 1.05, 1.14]))
    assert unsettled.startswith("≤ 1.10x time: met, inside the spread;")
    missed = overhead.verdict("nafnet", measured([1.13, 1.12, 1.15]))
    assert missed.startswith("≤ 1.10x time: **not met** (by 0.030);")
    assert overhead.time_cell(measured([1.09, 1.05, 1.14])) == "**1.090x** (1.050-1.140)"


def test_rows_measured_before_rounds_still_render():
    old_row = {"seconds": [0.100, 0.109], "peak_mib": [20.0, 22.0]}
    assert overhead.time_cell(old_row) == "**1.090x**"
    assert overhead.time_cell({"time_ratio": 1.139}) == "**1.139x**"  # old tried rows
    assert overhead.protocol({"repeats": 30}) == "best of 30"
    assert overhead.protocol({"repeats": 5, "rounds": 7}) == "7 rounds, best of 5 each"


def test_counting_instructions_needs_valgrind(monkeypatch):
    monkeypatch.setattr(timing.shutil, "which", lambda name: None)
    with pytest.raises(FileNotFoundError, match="valgrind"):
        timing.count_instructions(["-c", "pass"])


def test_units_counted_alone_are_the_models_units():
    # --instructions rebuilds each unit of the model alone from unit_spec and its weights,
    # fed a feature of the shape unit_inputs recorded: the same unit, computing the same
    # outputs as inside the model
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from backbones import build

    import pip_adapter as pa

    model = pa.inject_pip(build("nafnet")).eval()
    torch.manual_seed(0)
    with torch.no_grad():  # outputs that depend on every weight (the unit starts as identity)
        for parameter in model.pip_units.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    shapes = overhead.unit_inputs(model, torch.rand(1, 3, 32, 32))
    assert shapes.keys() == dict(model.pip_units.items()).keys()
    weights = torch.eye(len(pa.DEFAULT_DEGRADATIONS))[1:2]
    for key, unit in model.pip_units.items():
        alone = pa.PromptInPrompt(**overhead.unit_spec(model, key)).eval()
        alone.load_state_dict(unit.state_dict())
        feature = torch.rand(shapes[key])
        with torch.no_grad():
            torch.testing.assert_close(alone.modulate(feature, weights), unit(feature, weights))
