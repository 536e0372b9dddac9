"""The overhead benchmark's timing protocol (benchmarks/timing.py): rounds of interleaved runs,
each round's best, the median of the rounds' ratios with its range, and how the overhead page
states a goal against that range."""

import json
import mmap
import re
import subprocess
import sys
import time
from argparse import Namespace
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import overhead  # benchmarks/ is not a package: found through the path above
import quality
import timing


class Machine:
    """A fake clock and fake runs: each run advances the clock by its next scripted duration
    and records its name (and so does ``synchronize``), so the timing loop can be checked
    exactly on a CPU."""

    def __init__(self) -> None:
        self.now = 0.0
        self.calls: list[str] = []

    def clock(self) -> float:
        return self.now

    def synchronize(self) -> None:
        self.calls.append("sync")

    def run(self, key: str, durations: list[float]):
        remaining = iter(durations)

        def run() -> None:
            self.calls.append(key)
            self.now += next(remaining)

        return run


def test_rounds_keep_each_rounds_best_and_interleave_the_runs():
    machine = Machine()
    runs = {
        "plain": machine.run("plain", [3, 1, 2, 5, 4, 6]),
        "pip": machine.run("pip", [4, 2, 3, 6, 7, 5]),
    }
    measured = timing.interleaved_rounds(runs, rounds=2, repeats=3, clock=machine.clock)
    assert measured.best == {"plain": [1, 4], "pip": [2, 5]}
    assert measured.repeats == [3, 3]
    assert machine.calls == ["plain", "pip"] * 6


def test_every_timed_call_sits_between_two_synchronizations():
    # a GPU runs asynchronously: the clock is read only once its queue is drained
    machine = Machine()
    runs = {"plain": machine.run("plain", [1, 1]), "pip": machine.run("pip", [2, 2])}
    timing.interleaved_rounds(
        runs, rounds=1, repeats=2, clock=machine.clock, synchronize=machine.synchronize
    )
    assert machine.calls == ["sync", "plain", "sync", "sync", "pip", "sync"] * 2
    assert timing.synchronizer(torch.device("cpu"))() is None  # a CPU has nothing to wait for


def test_seconds_per_call_times_the_calls_after_the_warmup_between_synchronizations():
    machine = Machine()
    step = machine.run("step", [9, 9, 1, 2, 3])
    seconds = timing.seconds_per_call(
        step, warmup=2, calls=3, synchronize=machine.synchronize, clock=machine.clock
    )
    assert seconds == 2.0  # (1 + 2 + 3) / 3: the two 9 s warm-up calls are not timed
    assert machine.calls == ["step", "step", "sync", "step", "step", "step", "sync"]


def test_rotation_starts_each_round_with_the_next_run():
    machine = Machine()
    runs = {key: machine.run(key, [1.0] * 3) for key in ("eager", "onnx", "compile")}
    measured = timing.interleaved_rounds(
        runs, rounds=3, repeats=1, clock=machine.clock, rotate=True
    )
    assert machine.calls == [
        *("eager", "onnx", "compile"),
        *("onnx", "compile", "eager"),
        *("compile", "eager", "onnx"),
    ]
    assert list(measured.best) == ["eager", "onnx", "compile"]


def test_a_budget_cuts_the_repeats_of_slow_runs_but_keeps_three():
    # 2 s per repeat of both runs against a 5 s budget: cut to max(3, int(5 / 2)) = 3 repeats
    machine = Machine()
    slow = {key: machine.run(key, [1.0] * 30) for key in ("plain", "pip")}
    measured = timing.interleaved_rounds(slow, 2, 30, clock=machine.clock, budget=5.0)
    assert measured.repeats == [3, 3]
    # 0.5 s per repeat: 10 repeats fit the budget; fewer asked for stay fewer
    fast = {key: machine.run(key, [0.25] * 30) for key in ("plain", "pip")}
    assert timing.interleaved_rounds(fast, 1, 30, clock=machine.clock, budget=5.0).repeats == [10]
    fast = {key: machine.run(key, [0.25] * 30) for key in ("plain", "pip")}
    assert timing.interleaved_rounds(fast, 1, 4, clock=machine.clock, budget=5.0).repeats == [4]


def test_rounds_and_repeats_are_checked():
    with pytest.raises(ValueError, match="at least 1"):
        timing.interleaved_rounds({"plain": lambda: None}, rounds=0, repeats=3)


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


@pytest.mark.skipif(timing.shutil.which("valgrind") is None, reason="needs valgrind")
def test_a_warm_start_that_never_gets_ready_is_stopped_at_the_timeout(tmp_path):
    script = tmp_path / "slow.py"  # never calls instrument_from_here within the timeout
    script.write_text("import time\ntime.sleep(60)\n")
    start = time.perf_counter()
    with pytest.raises(subprocess.TimeoutExpired):
        timing.count_instructions([str(script)], timeout=3, warm_start=True)
    assert time.perf_counter() - start < 30


def test_units_counted_alone_are_the_models_units():
    # --instructions rebuilds each unit of the model alone from unit_spec and its weights,
    # fed a feature of the shape unit_inputs recorded: the same unit, computing the same
    # outputs as inside the model
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from backbones import build

    import pip_adapter as pa

    # (a stage with a feed-forward of its own: the candidate's full-resolution unit)
    stages = [
        {"pattern": r"decoders\.\d", "portion": [0, 0.5]},
        {"pattern": r"decoders\.\d", "portion": [0.5, 1], "feature_ffn_expansion": 0.5},
    ]
    model = pa.inject_pip(build("nafnet"), stages).eval()
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


def assert_times_pairs(measure, parts: tuple[str, ...]) -> dict:
    """A section's ``measure`` (2 rounds of 1 run, 1 thread) times both runs of each part at
    every size, each ratio inside its range; what it measured."""
    measured = measure(Namespace(rounds=2, repeats=1, threads=1, device="cpu"), torch.device("cpu"))
    for part in parts:
        for size in overhead.SIZES:
            entry = measured[part][str(size)]
            assert all(seconds > 0 for seconds in entry["seconds"])
            low, high = entry["time_ratio"][1:]
            assert low <= entry["time_ratio"][0] <= high
    return measured


def stored_pairs(seconds: list[float], ratio: list[float], *parts: str) -> dict:
    """A section as the JSON keeps it: every part with these times and ratio at every size."""
    sizes = {str(s): {"seconds": seconds, "time_ratio": ratio} for s in overhead.SIZES}
    settings = {"threads": 2, "date": "d", "repeats": 5, "rounds": 7}
    return {"settings": settings, **dict.fromkeys(parts, sizes)}


def test_the_transpose_timing_sums_the_copies_of_a_pass_and_times_whole_models(monkeypatch):
    # --transpose times, per size, the copies that give every unit's per-pixel layer norm its
    # tokens (4-D copy of the permuted view against the 2-D transpose), each round summing
    # the units' copies of one forward pass, and the whole model with either copy (the 4-D
    # one through _PermutedTokens: the same outputs); the page states both
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from backbones import build

    import pip_adapter as pa
    from pip_adapter.unit import prompt_to_feature

    model = pa.inject_pip(build("nafnet")).eval()
    monkeypatch.setattr(overhead, "build", lambda name: (None, model))
    monkeypatch.setattr(overhead, "official", lambda name: build(name).eval())
    x = torch.rand(1, 3, 32, 32)
    tokens = prompt_to_feature._tokens
    with torch.inference_mode():
        permuted = overhead._PermutedTokens(model)(x, degradation="rain")
        assert torch.equal(permuted, model(x, degradation="rain"))
    assert prompt_to_feature._tokens is tokens
    assert_times_pairs(overhead.measure_transpose, ("copies", "models"))
    stored = stored_pairs([0.002, 0.001], [0.5, 0.4, 0.6], "copies", "models")
    page = overhead.transpose_sentence({"transposed_tokens": stored})
    assert "0.500x (0.400-0.600) at 128² (2.00 → 1.00 ms per forward pass) and" in page
    assert "the plain network, 0.500x (0.400-0.600) at 128² and" in page
    # session 12's entry (whole models only, under "transpose") is not read as copies
    assert "not timed" in overhead.transpose_sentence({"transpose": {"sizes": stored["models"]}})


def test_the_strided_resampling_timing_compares_the_resampling_before_and_after(monkeypatch):
    # --strided-resampling times NAFNet's strided unit alone and the whole model with the
    # resampling before the change (_product_resampling: torch's pooling, the grid from the
    # feature, resize_add's products) against today's: the same outputs to rounding, the
    # module's functions restored after; the page states both
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from backbones import build

    import pip_adapter as pa
    from pip_adapter.unit import alignment, prompt_to_feature

    torch.manual_seed(0)
    model = pa.inject_pip(build("nafnet")).eval()
    assert any(u.prompt_to_feature.ffn_stride > 1 for u in model.pip_units.values())
    with torch.no_grad():
        for param in model.pip_units.parameters():
            param.add_(0.3 * torch.randn_like(param))
    monkeypatch.setattr(overhead, "build", lambda name: (None, model))
    monkeypatch.setattr(overhead, "official", lambda name: build(name).eval())
    x = torch.rand(1, 3, 32, 32)
    kept = (prompt_to_feature.stride_pool, prompt_to_feature.upsample_add, alignment.area_pool)
    with torch.inference_mode():
        before = overhead._ProductResampling(model)(x, degradation="rain")
        after = model(x, degradation="rain")
    torch.testing.assert_close(before, after, rtol=1e-5, atol=1e-5)
    assert not torch.equal(before, after)  # the other resampling ran (rounding differs)
    assert kept == (
        prompt_to_feature.stride_pool,
        prompt_to_feature.upsample_add,
        alignment.area_pool,
    )
    timed = assert_times_pairs(overhead.measure_strided_resampling, ("units", "models"))
    assert timed["stride"] == 2  # the measured unit's, recorded for the page
    stored = stored_pairs([0.004, 0.003], [0.75, 0.7, 0.8], "units", "models")
    stored |= {"unit": "decoders/3", "stride": 3}
    page = overhead.strided_sentence(stored)
    assert "(the feed-forward on the 3×-pooled feature)" in page  # the record's, not 2
    assert "depth-wise convolution with a 1/9 kernel" in page
    assert "(decoders.3, its stage's feature) 0.750x (0.700-0.800) at 128² (4.00 → 3.00 ms)" in page
    assert "the plain network, 0.750x (0.700-0.800) at 128² and" in page
    assert "inside this protocol's spread" not in page
    stored["models"]["256"]["time_ratio"] = [1.02, 0.95, 1.1]
    page = overhead.strided_sentence(stored)
    assert "At 256² the whole network's range includes 1.000x" in page


def test_the_ffn_rank_sentence_says_when_its_rank_is_the_adapter_default():
    from pip_adapter.recipes import ADAPTER_FFN_RANK

    sizes = {
        str(s): {"seconds": [0.26, 0.25], "time_ratio": [0.99, 0.96, 1.1]} for s in overhead.SIZES
    }
    stored = {
        "settings": {"threads": 2, "date": "d", "repeats": 5, "rounds": 7},
        "sizes": sizes,
        "adapter_params": [490036, 669236],
    }
    default = overhead.ffn_rank_sentence({**stored, "rank": ADAPTER_FFN_RANK})
    wanted = f"(`degradation_ffn_rank={ADAPTER_FFN_RANK}`, the recipe's adapter default "
    assert wanted + "`recipes.ADAPTER_FFN_RANK`, 669K adapter parameters against" in default
    assert "0.990x (0.960-1.100) at 128²" in default
    other = overhead.ffn_rank_sentence({**stored, "rank": ADAPTER_FFN_RANK + 1})
    assert "adapter default" not in other and f"rank-{ADAPTER_FFN_RANK + 1} update" in other
    # the inference cache keeps the updates on the CPU only: a GPU row does not claim it
    assert "kept at inference by the units' cache" in default  # stored before 'device': CPU
    on_gpu = {**stored, "rank": ADAPTER_FFN_RANK}
    on_gpu["settings"] = {**stored["settings"], "device": "cuda"}
    assert "cache" not in overhead.ffn_rank_sentence(on_gpu)


def test_only_the_kept_process_gets_the_allocator_settings(monkeypatch):
    # --malloc-keep's two processes: the default one without any of glibc's MALLOC_ settings
    # (even one this process has), the kept one with exactly MALLOC_KEEP
    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")
    default, kept = overhead.malloc_env(False), overhead.malloc_env(True)
    assert not any(key.startswith("MALLOC_") for key in default)
    assert {k: v for k, v in kept.items() if k.startswith("MALLOC_")} == overhead.MALLOC_KEEP
    assert default["PATH"] == kept["PATH"] == overhead.os.environ["PATH"]


def _touch_fresh_pages(size: int = 64 << 20) -> None:
    """Map ``size`` bytes afresh and write to each page: the kernel faults every page in on
    first touch, whatever the allocator's settings or what the process freed before (a
    tensor's memory is mapped afresh only above glibc's mmap threshold, which the
    environment can raise)."""
    with mmap.mmap(-1, size) as pages:
        pages[:: mmap.PAGESIZE] = bytes(size // mmap.PAGESIZE)


def test_a_round_counts_the_page_faults_of_each_call():
    # 64 MiB of fresh pages at every call; a run interleaved with it that allocates nothing
    # is not charged for them
    measured = overhead.malloc_round({"fresh": _touch_fresh_pages, "nothing": tuple}, repeats=3)
    seconds, faults = measured["fresh"]
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    huge = thp.is_file() and "[always]" in thp.read_text()  # then 2 MiB pages fault
    assert seconds > 0 and faults >= 0.9 * (64 << 20) / ((2 << 20) if huge else 4096)
    assert measured["nothing"][1] < 16 and faults > 100 * measured["nothing"][1]


def test_the_allocator_section_states_both_settings_against_the_goal():
    def setting(ratios: list[float], faults: list[float], resident: list[float]) -> dict:
        return {
            "seconds": [0.2, 0.2 * ratios[0]],
            "time_ratio": ratios,
            "faults": faults,
            "resident_mib": resident,
        }

    sizes = {
        str(s): {
            "default": setting([1.16, 1.02, 1.36], [16671.0, 22470.0], [250.0, 260.0, 330.0]),
            "kept": setting([1.08, 1.01, 1.12], [0.0, 2.0], [251.0, 340.0, 345.0]),
            "kept_over_default": {"plain": [0.9, 0.8, 1.0], "pip": [0.85, 0.8, 0.95]},
        }
        for s in overhead.SIZES
    }
    stored = {
        "settings": {"threads": 2, "date": "d", "repeats": 5, "rounds": 30, "machine": "m"},
        "env": overhead.MALLOC_KEEP,
        "sizes": sizes,
    }
    page = "\n".join(overhead.malloc_lines(stored))
    assert "MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_" in page
    assert (
        "| 128² | glibc default | 200 ms | 232 ms | **1.160x** (1.020-1.360): **not met** " in page
    )
    assert "(by 0.060) | 16,671 → 22,470 | 250 / 260 / 330 MiB |" in page
    assert (
        "| 256² | freed memory kept | 200 ms | 216 ms | **1.080x** (1.010-1.120): met | 0 → 2 | "
        "251 / 340 / 345 MiB |" in page
    )
    assert "at 128² the plain network 0.900x (0.800-1.000) and the network with PIP 0.850x" in page
    assert "1.080x against 1.160x at 128²" in page and "does not lower PIP's share" in page
    # what the kept process holds beyond the default one, between passes and at the peak
    assert "at 256² +80 MiB after the last round and +15 MiB at the peak" in page
    # a kept ratio below the default's lowest round is said to lower it, at that size
    sizes["256"]["kept"] = setting([1.01, 1.0, 1.02], [0.0, 0.0], [251.0, 340.0, 345.0])
    page = "\n".join(overhead.malloc_lines(stored))
    assert "1.010x against 1.160x at 256²: below every round of the default at 256²." in page
    # a default process that mapped nothing fresh at a size is no comparison there
    sizes["128"]["default"] = setting([1.16, 1.02, 1.36], [0.0, 0.0], [250.0, 260.0, 330.0])
    page = "\n".join(overhead.malloc_lines(stored))
    assert "against 1.160x at 128²" not in page and "not measured at 128²" in page
    assert "at 128² the plain network" not in page and "at 128² +" not in page
    assert "| 128² | glibc default (mapped no fresh memory: not a default process) |" in page
    # a record written before the resident set was measured renders, saying so
    for entry in sizes.values():
        for name in overhead.SETTINGS:
            del entry[name]["resident_mib"]
    page = "\n".join(overhead.malloc_lines(stored))
    assert "| 0 → 0 | not measured |" in page and "costs in resident memory" not in page
    assert "1.010x against 1.160x at 256²" in page
    # no size where the default process faulted: nothing compared, only what was not measured
    sizes["256"]["default"] = setting([1.16, 1.02, 1.36], [0.0, 0.0], [250.0, 260.0, 330.0])
    page = "\n".join(overhead.malloc_lines(stored))
    assert "What keeping freed memory changes: not measured at 128² and 256², where" in page
    assert "over the default's" not in page and "does not lower" not in page


def test_a_missed_nafnet_time_goal_names_what_was_tried_and_what_is_left():
    results = {
        "backbones": {"nafnet": {"sizes": {"128": measured([1.16, 1.02, 1.36])}}},
        "operators": {"compact": {"a": {"operators": 54}, "b": {"operators": 56}}},
        "malloc": {},
    }
    text = "\n".join(overhead.nafnet_next_lines(results))
    assert "NAFNet's time goal is missed at 128². Tried: the unit designs" in text
    assert "; glibc keeping freed memory (Allocator). Still open: fewer operators" in text
    assert "each unit calls 54-56 operators per forward pass" in text
    assert "fewer full-resolution passes" not in text
    results["strided_resampling"] = {}
    text = "\n".join(overhead.nafnet_next_lines(results))
    assert "(Allocator); fewer full-resolution passes in the strided unit (below the" in text
    results["backbones"]["nafnet"]["sizes"]["128"] = measured([1.08, 1.02, 1.36])
    assert overhead.nafnet_next_lines(results) == []
    assert overhead.nafnet_next_lines({"backbones": {}}) == []


def test_a_candidate_for_nafnets_default_becomes_what_its_rule_says_only_if_every_goal_is_met():
    settings = {"date": "d", "threads": 2, "rounds": 40, "repeats": 5}
    candidate = {
        "label": "light units",
        "code": "abc1234",
        "then": "NAFNet's default",
        "adapter_params": 425_000,
        "measured": settings,
        "sizes": {"128": measured([1.112, 1.03, 1.36]), "256": measured([1.017, 0.84, 1.26])},
    }
    assert overhead.candidate_lines({}) == []
    results = {"candidates": {"light units": candidate}}
    text = "\n".join(overhead.candidate_lines(results))
    assert (
        "(light units; 425K adapter parameters; the preset's units on the code of abc1234; " in text
    )
    assert "128² 100 → 111 ms, 1.112x (1.030-1.360), memory 20 → 22 MiB (1.10x): ≤ 1.10x " in text
    assert "time: **not met** (by 0.012), inside the spread" in text
    assert "only if it meets the time and memory goals at every size does it become " in text
    assert "it become NAFNet's default; it misses a goal at 128², so it does not." in text
    candidate["sizes"]["128"] = measured([1.09, 1.03, 1.2])
    assert "it meets every goal, so it does." in "\n".join(overhead.candidate_lines(results))
    # memory over its goal is a miss too
    candidate["sizes"]["256"] = {**measured([1.0, 0.9, 1.1]), "peak_mib": [20.0, 26.0]}
    text = "\n".join(overhead.candidate_lines(results))
    assert "it misses a goal at 256², so it does not." in text
    # a What-was-tried design timed with --candidate: built by inject_pip, each in its paragraph
    label = "compact design, no full-resolution unit"
    results["candidates"][label] = {
        "label": label,
        "keywords": overhead.TRIED[label][0],
        "then": overhead.CANDIDATE_THEN,
        "adapter_params": 448_000,
        "measured": settings,
        "sizes": {"128": measured([1.08, 1.0, 1.2]), "256": measured([1.05, 0.9, 1.2])},
    }
    lines = overhead.candidate_lines(results)
    assert len(lines) == 4 and "light units" in lines[1] and label in lines[3]
    assert "built by `inject_pip` with the row's keywords, `--candidate`" in lines[3]
    assert f"every size does it become {overhead.CANDIDATE_THEN}; it meets" in lines[3]
    assert lines[3].endswith("it meets every goal, so it does.")
    # while the goals stay missed, the page names what is left: that design's quality
    results |= {"backbones": {"nafnet": {"sizes": {"128": measured([1.16, 1.02, 1.36])}}}}
    awaiting = (
        f"of the design that meets every goal as a candidate for the default ({label}: below)"
    )
    assert awaiting in overhead.nafnet_next_lines(results)[1]
    results["candidates"][label]["sizes"]["256"] = measured([1.11, 1.0, 1.2])  # now it misses
    assert "candidate for the default" not in overhead.nafnet_next_lines(results)[1]


def test_a_candidate_is_a_design_inject_pip_builds_timed_as_the_goal_table_times_one(monkeypatch):
    calls = []

    def goal_row(name, args, device, variant="default"):
        calls.append((name, variant))
        return {"adapter_params": 1, "sizes": {}}

    monkeypatch.setattr(overhead, "measure_backbone", goal_row)
    label = "compact design, no full-resolution unit"
    entry = overhead.measure_candidate(label, None, torch.device("cpu"))
    assert calls == [("nafnet", label)]
    assert entry["keywords"] == {"stages": overhead.COARSE_NAFNET}
    assert entry["label"] == label and entry["then"] == overhead.CANDIDATE_THEN


LIGHT_COARSE = (
    "compact design, no full-resolution unit, 8×8 basic prompts, per-pixel feed-forward of half "
    "width (quality: `light_coarse`)"
)


def test_a_candidate_s_units_are_the_ones_its_network_and_its_memory_probe_build(monkeypatch):
    model, injected = overhead.network("nafnet", LIGHT_COARSE)
    default, _ = overhead.network("nafnet", "default")
    assert injected and sorted(model.pip_units) == ["decoders/0", "decoders/1", "decoders/2"]
    assert {unit.prompt_size for unit in model.pip_units.values()} == {8}
    adapter = [sum(p.numel() for p in m.pip_units.parameters()) for m in (model, default)]
    assert adapter[0] < adapter[1]
    # the forward-memory probe runs in a child process, which gets the design's label in argv
    commands = []

    def child(command, **kwargs):
        commands.append(command)
        return type("Done", (), {"stdout": "2048\n"})()

    monkeypatch.setattr(overhead.subprocess, "run", child)
    assert overhead.peak_memory("nafnet", 32, LIGHT_COARSE, torch.device("cpu"), 1) == 2.0
    spec = commands[0][commands[0].index("--memory-probe") + 1]
    built = []

    def network(name, variant):
        built.append((name, variant))
        return torch.nn.Identity(), False

    monkeypatch.setattr(overhead, "network", network)
    overhead.memory_probe(spec)
    assert built == [("nafnet", LIGHT_COARSE)]  # the label's commas survive the spec


def main_with(monkeypatch, argv: list[str]) -> None:
    """``overhead.main()`` on ``argv`` (the options, one thread), the tests' thread count kept."""
    threads = torch.get_num_threads()
    monkeypatch.setattr(sys, "argv", ["overhead.py", "--threads", "1", *argv])
    try:
        overhead.main()
    finally:
        torch.set_num_threads(threads)


def refusal(monkeypatch, capsys, argv: list[str]) -> str:
    """The usage error ``overhead.main()`` stops with on ``argv``."""
    with pytest.raises(SystemExit):
        main_with(monkeypatch, argv)
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_an_unknown_candidate_is_refused_naming_the_designs_to_choose_from(monkeypatch, capsys):
    edited = "paper design, channels-last memory format"  # a TRIED row inject_pip cannot build
    for label in ("no such design", edited):
        error = refusal(monkeypatch, capsys, ["--candidate", label])
        assert f"error: unknown --candidate {label!r}; choose one of: " in error
        choices = error.split("choose one of: ")[1]
        assert overhead.DEFAULT_TRIED in choices and LIGHT_COARSE in choices
        assert edited not in choices


def test_the_light_design_is_said_timed_as_a_candidate_only_when_its_own_entry_is(tmp_path):
    settings = {"date": "d", "machine": "m", "threads": 2, "rounds": 7, "repeats": 5}
    args = type("Args", (), {"device": "cpu", "out": tmp_path})()
    entry = {"label": "x", "keywords": {}, "then": overhead.CANDIDATE_THEN}
    entry |= {"adapter_params": 1, "measured": settings, "sizes": {}}
    results = {
        "backbones": {},
        "tried": {"settings": settings, "rows": {}},
        "candidates": {LIGHT_COARSE: entry},
    }
    timed = "timed in the goal's protocol as a candidate for NAFNet's default: above"
    page = overhead.render(results, torch.device("cpu"), args)
    assert timed not in page and "[transfer.md](transfer.md), so not the default)" in page
    results["candidates"][overhead.LIGHT_TRIED] = entry
    assert timed in overhead.render(results, torch.device("cpu"), args)


def kept(runs: Path, run: str, bundled: float, ood: float, **settings) -> None:
    """A kept quality.py result of ``run`` in ``runs``: trained with the defaults (on one
    thread, as sessions train on shared cores), ``settings`` on top."""
    reports = {"test": {"average": {"psnr": bundled}}, "ood": {"average": {"psnr": ood}}}
    stored = {**quality.default_settings(run), "threads": 1, **settings}
    (runs / run).mkdir(exist_ok=True)
    save_file(quality.VARIANTS[run].build().state_dict(), runs / run / quality.WEIGHTS)
    (runs / run / "result.json").write_text(
        json.dumps({"settings": stored, "results": {run: {"reports": reports}}})
    )


def test_a_candidate_s_quality_is_read_from_its_two_seeds_and_decides_by_the_bar(tmp_path):
    # --quality-runs reads the candidate's quality.py variant (named in its label) for training
    # seeds 0 and 1; the bundled held-out photos' mean decides, the out-of-domain set does not
    variant = "light_coarse"
    assert overhead.quality_variant(LIGHT_COARSE) == variant
    assert overhead.quality_variant("paper design (the previous default)") is None
    kept(tmp_path, variant, 23.56, 21.50)
    assert overhead.candidate_quality(LIGHT_COARSE, tmp_path) is None  # one seed only
    kept(tmp_path, f"{variant}_seed1", 23.30, 21.42)
    quality_entry = overhead.candidate_quality(LIGHT_COARSE, tmp_path)
    assert quality_entry is not None
    digests = quality_entry.pop("files")
    assert quality_entry == {
        "variant": variant,
        "seeds": {"0": {"test": 23.56, "ood": 21.50}, "1": {"test": 23.30, "ood": 21.42}},
        "steps": 1500,
    }
    assert list(digests) == [f"{variant}/result.json", f"{variant}_seed1/result.json"]
    assert all(len(digest) == 12 for digest in digests.values())
    quality_entry["files"] = digests
    settings = {"date": "d", "threads": 2, "rounds": 40, "repeats": 5}
    entry = {"label": "x", "keywords": {}, "then": overhead.CANDIDATE_THEN}
    entry |= {"adapter_params": 1, "measured": settings}
    entry["sizes"] = {"128": measured([1.03, 0.9, 1.2]), "256": measured([0.97, 0.8, 1.2])}
    results = {
        "backbones": {"nafnet": {"sizes": {"128": measured([1.16, 1.02, 1.36])}}},
        "candidates": {LIGHT_COARSE: entry},
    }
    awaiting = f"({LIGHT_COARSE}: below)"
    assert awaiting in overhead.nafnet_next_lines(results)[1]  # its quality still awaited
    entry["quality"] = quality_entry
    text = overhead.candidate_lines(results)[1]
    # the page names what it read: the steps and each file with its digest
    digest = digests[f"{variant}_seed1/result.json"]
    assert f"; 1500 training steps each, read from `{variant}/result.json` (sha256 " in text
    assert f"`{variant}_seed1/result.json` (sha256 {digest})): bundled held-out photos" in text
    assert "bundled held-out photos 23.56 / 23.30 dB, mean 23.430 dB, against the bar of " in text
    assert "23.75 dB (issue 14: within 0.1 dB of 23.85 dB): **not met** (by 0.320 dB)" in text
    assert "out-of-domain held-out photos 21.50 / 21.42 dB, mean 21.46 dB (reported only" in text
    assert text.endswith("So it does not become NAFNet's default.")
    assert awaiting not in overhead.nafnet_next_lines(results)[1]
    entry["quality"]["seeds"]["1"] = {"test": 24.0, "ood": 10.0}  # the OOD set chooses nothing
    assert overhead.candidate_lines(results)[1].endswith("So it becomes NAFNet's default.")
    entry["sizes"]["256"] = measured([1.11, 1.0, 1.2])  # a cost miss: quality cannot adopt it
    text = overhead.candidate_lines(results)[1]
    assert "it misses a goal at 256², so it does not. Its quality, training seeds 0 and 1" in text
    assert text.endswith("So it does not become NAFNet's default.")
    # an entry recorded before the steps and files were still renders, naming none
    del entry["quality"]["steps"], entry["quality"]["files"]
    assert (
        "(average PSNR with labels at full strength): bundled"
        in overhead.candidate_lines(results)[1]
    )


def test_a_smoke_or_stale_run_decides_no_candidate_s_quality(tmp_path, capsys):
    # review 19 item 6: a result trained otherwise than quality.py's defaults (a 2-step smoke
    # run, another batch) is skipped with its reason; the thread count alone is no difference
    variant = "light_full_stride2"
    label = overhead.DEFAULT_TRIED
    kept(tmp_path, variant, 24.5, 22.0, steps=2)
    kept(tmp_path, f"{variant}_seed1", 23.1, 21.4)
    assert overhead.candidate_quality(label, tmp_path) is None
    said = capsys.readouterr().out
    assert f"{variant}: not recorded, {tmp_path / variant / 'result.json'} was trained " in said
    assert "with {'steps': 2}, not quality.py's defaults for light_full_stride2" in said
    kept(tmp_path, variant, 24.5, 22.0)
    kept(tmp_path, f"{variant}_seed1", 23.1, 21.4, batch_size=4)
    assert overhead.candidate_quality(label, tmp_path) is None
    assert "was trained with {'batch_size': 4}" in capsys.readouterr().out
    kept(tmp_path, f"{variant}_seed1", 23.1, 21.4, threads=2)
    assert overhead.candidate_quality(label, tmp_path)["seeds"]["1"] == {"test": 23.1, "ood": 21.4}
    # review 20 item 7: a run of an earlier definition of the variant (other units) is stale
    stale = quality.VARIANTS["prompt8"].build().state_dict()
    save_file(stale, tmp_path / f"{variant}_seed1" / quality.WEIGHTS)
    assert overhead.candidate_quality(label, tmp_path) is None
    assert "_seed1/result.json is stale: " in capsys.readouterr().out
    # a variant that quality.md judges by another rule records nothing here
    light = overhead.LIGHT_TRIED
    kept(tmp_path, "light", 24.5, 22.0)
    kept(tmp_path, "light_seed1", 23.1, 21.4)
    assert overhead.candidate_quality(light, tmp_path) is None
    assert "light: not recorded, quality.py judges only light_coarse" in capsys.readouterr().out


def test_quality_md_and_overhead_md_give_the_same_verdict_for_the_same_runs(tmp_path):
    # review 19 item 17: one rule (quality.py's) for a candidate's training seeds on both pages
    variant, label = "light_full_stride2", overhead.DEFAULT_TRIED
    settings = {"date": "d", "threads": 2, "rounds": 40, "repeats": 5}
    sizes = {"128": measured([1.03, 0.9, 1.2]), "256": measured([0.97, 0.8, 1.2])}
    for bundled in (23.7504, 23.7494, 24.2):  # the rule reads the mean as printed
        kept(tmp_path, variant, bundled + 0.5, 21.0)
        kept(tmp_path, f"{variant}_seed1", bundled - 0.5, 23.0)
        results = {
            run: json.loads((tmp_path / run / "result.json").read_text())["results"][run]
            for run in (variant, f"{variant}_seed1")
        }
        results |= {"pip": results[variant], "pip_seed1": results[f"{variant}_seed1"]}
        line = quality.seed_table(results)[-1]
        entry = {"label": label, "then": overhead.CANDIDATE_THEN, "adapter_params": 1}
        entry |= {"measured": settings, "sizes": sizes}
        entry["quality"] = overhead.candidate_quality(label, tmp_path)
        page = overhead.candidate_lines({"candidates": {label: entry}})[1]
        met = bundled != 23.7494  # the mean as printed, to 3 decimals
        bar = f"two-seed mean {bundled:.3f} dB, against the bar of 23.75 dB (issue 14: within "
        verdict = "met" if met else "**not met** (by 0.001 dB)"
        assert line.endswith(f"{bar}0.1 dB of 23.85 dB): {verdict}.")
        assert page.endswith(f"So it {'becomes' if met else 'does not become'} NAFNet's default.")
        assert bar.removeprefix("two-seed ") in page


def test_recording_quality_alone_times_nothing_and_renders_the_page_again(tmp_path, monkeypatch):
    # review 19 item 10: --quality-runs without --candidate keeps the goal table's timings
    for name in ("measure_backbone", "measure_tried", "measure_operators", "measure_candidate"):
        monkeypatch.setattr(overhead, name, lambda *a, **k: pytest.fail("timed something"))
    settings = {"date": "d", "machine": "m", "threads": 2, "rounds": 40, "repeats": 5}
    entry = {"label": overhead.DEFAULT_TRIED, "then": overhead.CANDIDATE_THEN}
    entry |= {"adapter_params": 1, "measured": settings}
    entry["sizes"] = {"128": measured([1.03, 0.9, 1.2]), "256": measured([0.97, 0.8, 1.2])}
    stored = {"backbones": {}, "candidates": {overhead.DEFAULT_TRIED: entry}}
    out = tmp_path / "docs"
    out.mkdir()
    (out / "overhead.json").write_text(json.dumps(stored))
    runs = tmp_path / "runs"
    runs.mkdir()
    kept(runs, "light_full_stride2", 24.5, 22.0)
    kept(runs, "light_full_stride2_seed1", 23.1, 21.4)
    main_with(monkeypatch, ["--quality-runs", str(runs), "--out", str(out)])  # no skipping flag
    written = json.loads((out / "overhead.json").read_text())
    assert written["candidates"][overhead.DEFAULT_TRIED]["quality"]["steps"] == 1500
    assert written.keys() == stored.keys()  # no tried table, no operators
    assert "So it becomes NAFNet's default." in (out / "overhead.md").read_text()


def test_a_run_keeps_the_sections_another_run_wrote_while_it_measured(tmp_path, monkeypatch):
    # a long count (callgrind) and a window's timing, run at the same time into one JSON
    out = tmp_path / "docs"
    out.mkdir()
    (out / "overhead.json").write_text(json.dumps({"backbones": {}, "ffn_rank": "old"}))
    counts = {"paper": {}, "compact": {}}

    def count_while_another_run_ends(device):
        done = {"backbones": {}, "ffn_rank": "old", "tried": "from the other run"}
        (out / "overhead.json").write_text(json.dumps(done))
        return counts

    monkeypatch.setattr(overhead, "measure_operators", count_while_another_run_ends)
    monkeypatch.setattr(overhead, "render", lambda *args: "page")
    main_with(monkeypatch, ["--backbones", "", "--no-tried", "--out", str(out)])
    written = json.loads((out / "overhead.json").read_text())
    assert written == {"backbones": {}, "ffn_rank": "old", "tried": "from the other run"} | {
        "operators": counts
    }


def test_recording_quality_alone_refuses_the_flags_that_would_time(monkeypatch, capsys, tmp_path):
    argv = ["--quality-runs", str(tmp_path), "--out", str(tmp_path), "--backbones", "nafnet"]
    error = refusal(monkeypatch, capsys, [*argv, "--compile"])
    assert "error: --page, --quality-runs or --adopt without --candidate times nothing" in error
    assert "; --backbones, --compile would time: drop them, or run them on their own" in error
    assert not (tmp_path / "overhead.json").exists()


def test_an_adopted_candidate_s_timing_becomes_nafnets_goal_row(monkeypatch):
    # --adopt: once NAFNet's preset builds a candidate's units, the candidate's window timing
    # (taken as the goal table times the default) is the goal table's NAFNet row
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from backbones import build

    monkeypatch.setattr(overhead, "official", lambda name: build(name).eval())
    timed = {"backbone_params": 2, "adapter_params": 1, "measured": {"date": "d"}, "sizes": {}}
    results = {
        "candidates": {
            label: {"label": label, "then": overhead.CANDIDATE_THEN, **timed}
            for label in (overhead.DEFAULT_TRIED, LIGHT_COARSE)
        }
    }
    row = overhead.adopted_row(results, overhead.DEFAULT_TRIED)
    units = overhead.units_of(overhead.build("nafnet")[1])  # the preset's units, recorded
    assert row == {**timed, "measured": {"date": "d", **units}, "candidate": row["candidate"]}
    assert row["candidate"] == overhead.DEFAULT_TRIED
    assert overhead.adopted_lines({"backbones": {}}) == []
    said = overhead.adopted_lines({"backbones": {"nafnet": row}})[1]
    assert said.startswith("NAFNet's rows time its preset since d: the candidate compact design")
    assert said.endswith("(`--adopt`).")
    assert overhead.other_units_lines({"backbones": {"nafnet": row}}) == []
    with pytest.raises(ValueError, match="NAFNet's preset does not build the units of"):
        overhead.adopted_row(results, LIGHT_COARSE)
    with pytest.raises(ValueError, match="no candidate 'x' was timed"):
        overhead.adopted_row(results, "x")


def test_the_page_names_the_sections_measured_on_other_units_than_the_goal_row(monkeypatch):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from backbones import build

    monkeypatch.setattr(overhead, "official", lambda name: build(name).eval())
    preset = overhead.units_of(overhead.build("nafnet")[1])
    light = overhead.units_of(overhead.build("nafnet", LIGHT_COARSE)[1])
    assert preset["units"] != light["units"]
    assert preset["units_text"].endswith(
        "unit of the compact design, 8×8 basic prompts, feed-forward ×0.5 on the 2×-pooled feature"
    )
    assert "on the 2×-pooled" not in light["units_text"]
    sections = {
        "backbones": {"nafnet": {"measured": {"date": "d", **preset}}},
        "compiled": {"settings": {"date": "c"}},  # recorded before the units were
        "malloc": {"settings": {"date": "m", **light}},
        "operators": {"paper": {}, "compact": {}, "measured": {"date": "o", **preset}},
        "instructions": {"nafnet": {"measured": {"date": "i", **preset}}},
    }
    said = overhead.other_units_lines(sections)[1]
    goal_rows = f"other units than NAFNet's goal rows ({preset['units_text']}): "
    assert said.startswith(f"These sections below measured {goal_rows}")
    assert said.endswith(
        f"): the allocator (m; {light['units_text']}); compiled inference (c; its "
        "units not recorded)."
    )


def test_the_tried_table_s_default_row_is_shown_where_it_misses_a_goal_the_goal_row_meets():
    settings = {"date": "d", "threads": 2, "rounds": 7, "repeats": 5}
    results = {
        "backbones": {"nafnet": {"sizes": {"128": measured([1.085, 0.81, 1.3])}}},
        "tried": {
            "settings": settings,
            "rows": {overhead.DEFAULT_TRIED: {"sizes": {"128": measured([1.126, 1.07, 1.14])}}},
        },
    }
    said = overhead.tried_default_lines(results)[1]
    assert "(every design interleaved, 7 rounds, best of 5 each) reads it above" in said
    assert "128²: 1.126x (1.070-1.140) in What was tried, 1.085x (0.810-1.300) in the goal" in said
    results["backbones"]["nafnet"]["sizes"]["128"] = measured([1.11, 1.0, 1.2])  # both miss
    assert overhead.tried_default_lines(results) == []


def test_each_section_says_when_it_was_measured_on_earlier_code(tmp_path):
    # review 21 item 3: a section records the library's code it measured (a digest of
    # pip_adapter's modules, and the commit to name it), and the page marks those measured on
    # other code than today's, or before the code was recorded
    today = overhead.code_record()
    assert today["forward_code"] == overhead.code_digest(overhead.OFF_THE_FORWARD)[:12]
    if "commit" in today:  # in a git checkout (not in an exported copy of the files)
        assert re.fullmatch(r"[0-9a-f]{7,}(\+changes)?", today["commit"])
    run = Namespace(threads=1, device="cpu", repeats=1, rounds=1)
    assert overhead.settings(run).items() >= today.items()
    assert overhead.dated({"date": "d", **today}) == "d"
    earlier = {"date": "d", "forward_code": "0" * 12, "commit": "abc1234"}
    assert overhead.dated(earlier) == "d (measured on earlier code: commit abc1234)"
    assert overhead.dated({"date": "d", "forward_code": "1" * 12}) == (
        "d (measured on earlier code: code digest 111111111111)"
    )
    untold = "d (measured on earlier code: its code not recorded)"
    assert overhead.dated({"date": "d"}) == untold
    timed = {"seconds": [0.1, 0.1], "time_ratio": [1.0, 0.9, 1.1]}
    results = {
        "backbones": {},
        "compiled": {"settings": {"machine": "m", "repeats": 5, "date": "c", **today}},
        "ffn_rank": {"settings": {"threads": 2, "date": "f", "repeats": 5}, "rank": 3},
        "operators": {"paper": {}, "compact": {}, "measured": {**earlier, "date": "o"}},
    }
    results["compiled"]["sizes"] = {"128": timed}
    sizes = {str(size): timed for size in overhead.SIZES}
    results["ffn_rank"] |= {"adapter_params": [1, 2], "sizes": sizes}
    page = overhead.render(results, torch.device("cpu"), Namespace(device="cpu", out=tmp_path))
    assert "(m; c, best of 5; `--compile`)" in page  # today's code: no mark
    assert "(`--ffn-rank 3`, f (measured on earlier code: its code not recorded), best of" in page
    assert "Measured o (measured on earlier code: commit abc1234)." in page


def test_a_warm_start_that_callgrind_never_instruments_stops_with_a_message(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_CALLGRIND_READY", str(tmp_path / "ready"))
    with pytest.raises(RuntimeError, match="callgrind_control"):
        timing.instrument_from_here(wait=0.3)
    assert (tmp_path / "ready").exists()  # it told the parent it was ready, then gave up
    (tmp_path / "ready.on").touch()
    timing.instrument_from_here(wait=0.3)  # instrumented: returns at once
    monkeypatch.delenv("PIP_CALLGRIND_READY")
    timing.instrument_from_here(wait=0.0)  # not under count_instructions: a no-op
