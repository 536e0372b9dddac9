"""What PIP costs on the full-size official Restormer, NAFNet and SwinIR (default presets).

For each backbone: parameters added (% of the backbone), FLOPs (torch.utils.flop_counter),
forward time injected / plain at 128×128 and 256×256 (rounds of interleaved runs in one
process: median ratio and its range, benchmarks/timing.py), and the memory one forward
pass needs (CUDA: peak allocated above the weights; CPU: peak resident set above the one
before the forward, in a fresh process after a warm-up forward, from Linux's VmHWM).
Then, on NAFNet (the light backbone, where PIP's cost shows): the unit designs and
placements that were tried, with their cost (and their quality where benchmarks/quality.py
measured it), the operators each unit runs (torch.profiler), paper design against the
default compact design, and optionally the instructions each unit executes (callgrind:
independent of the machine's load).

Run:  python benchmarks/overhead.py [--device cpu|cuda] [--threads 2] [--rounds 7]
      [--repeats 5] [--instructions nafnet --instruction-sizes 128,256]
      [--backbones restormer,nafnet,swinir] [--compile] [--transpose] [--ffn-rank 32]
      [--malloc-keep] [--strided-resampling] [--candidate LABEL]
Writes docs/benchmarks/overhead[_cuda].md and .json. ``--backbones`` remeasures only those
backbones and keeps the other rows of the existing .json (each row records its date and
settings), so that slow backbones can be measured in separate, shorter runs; a run puts what it
measured into the .json as the file is when it ends, so runs of separate sections at the same
time (a long instruction count beside a timing) keep each other's;
``--backbones "" --no-tried`` refreshes the operator counts alone. ``--candidate LABEL``
times a What-was-tried design as the goal table times the default, as a candidate for it;
``--quality-runs runs/quality`` (its quality, from benchmarks/quality.py's runs) and ``--adopt
LABEL`` (the adopted candidate's timing as NAFNet's goal row) record, and like ``--page``,
without ``--candidate``, time nothing: the page is rendered again from the JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import itertools
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import astuple
from datetime import date
from pathlib import Path
from typing import Any

import torch
from digests import code_digest, files_digest
from gpu_latency import GOAL as GPU_GOAL
from gpu_latency import fastest_rows
from light_units import LIGHT_FULL_STRIDE2, LIGHT_UNITS
from machine import describe_machine
from safetensors.torch import load_file, save_file
from timing import (
    Spread,
    count_instructions,
    interleaved_rounds,
    ratio_spread,
    run_counted,
    synchronizer,
)
from torch.autograd.profiler import record_function
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

import pip_adapter as pa
from pip_adapter.backbones import build_backbone
from pip_adapter.caching import ParameterCache
from pip_adapter.evaluation import restore
from pip_adapter.injection.presets import FULL_UNITS
from pip_adapter.recipes import ADAPTER_FFN_RANK
from pip_adapter.unit import alignment, prompt_to_feature
from pip_adapter.unit.resampling import area_pool, resize_add

ROOT = Path(__file__).resolve().parents[1]
SIZES = (128, 256)
BACKBONES = ("restormer", "nafnet", "swinir")
# the goals: (time ratio, forward-memory ratio) at every size; None: no goal
GOALS = {"nafnet": (1.10, 1.25), "restormer": (1.06, None), "swinir": (1.06, None)}
AUTHORS_RESTORMER = [  # the authors' release: wide, large prompts at every decoder level
    {
        "pattern": "reduce_chan_level3",
        "channel_fraction": [0.5, 1.0],
        "prompt_dim": 256,
        "prompt_size": 16,
    },
    {
        "pattern": "reduce_chan_level2",
        "channel_fraction": [0.5, 1.0],
        "prompt_dim": 128,
        "prompt_size": 32,
    },
    {
        "pattern": "decoder_level1",
        "channel_fraction": [0.5, 1.0],
        "prompt_dim": 64,
        "prompt_size": 64,
    },
]
COARSE_NAFNET = [r"decoders\.[012]"]  # every decoder level but the full-resolution one
# glibc's malloc keeping freed memory for reuse (no mmap per large tensor, no trimming, a
# pad of 256 MiB per heap growth); by default it hands large freed blocks back to the OS, and
# the next forward pass zero-fills fresh pages (a page fault per 4 KiB)
MALLOC_KEEP = {
    "MALLOC_MMAP_THRESHOLD_": "4294967296",
    "MALLOC_TRIM_THRESHOLD_": "17179869184",
    "MALLOC_TOP_PAD_": "268435456",
}
# --malloc-keep's two processes and their labels: glibc's default, MALLOC_KEEP
SETTINGS = {"default": "glibc default", "kept": "freed memory kept"}


def _channels_last(model: torch.nn.Module) -> torch.nn.Module:
    return model.to(memory_format=torch.channels_last)


class _NoCache(ParameterCache):
    """An inference cache that never keeps a value: the unit as before the cache."""

    @staticmethod
    def usable(tensors: Sequence[torch.Tensor]) -> bool:
        return False


def _without_inference_cache(model: pa.PIPModel) -> pa.PIPModel:
    for unit in model.pip_units.values():
        unit.prompt_to_prompt.inference_cache = _NoCache()
    return model


# the light units, also timed as a candidate for NAFNet's default
LIGHT_TRIED = (
    "compact design, 8×8 basic prompts, per-pixel feed-forward of half width (quality: `light`)"
)
# What was tried on NAFNet: label -> (inject_pip keywords, edit of the PIPModel or None).
TRIED: dict[str, tuple[dict, Callable | None]] = {
    "paper design (the previous default)": ({"design": "paper"}, None),
    "paper design, feed-forward expansion 1": (
        {"design": "paper", "ffn_expansion": 1.0},
        None,
    ),
    "paper design, channels-last memory format": ({"design": "paper"}, _channels_last),
    "paper design, no full-resolution unit": (
        {"design": "paper", "stages": COARSE_NAFNET},
        None,
    ),
    "compact design, no full-resolution unit": ({"stages": COARSE_NAFNET}, None),
    "compact design, no full-resolution unit, 8×8 basic prompts, per-pixel feed-forward of half "
    "width (quality: `light_coarse`)": (
        {"stages": COARSE_NAFNET, **LIGHT_UNITS},
        None,
    ),
    "compact design, 8×8 basic prompts, per-pixel feed-forward of half width, the "
    "full-resolution unit's on the 2×-pooled feature (quality: `light_full_stride2`)": (
        LIGHT_FULL_STRIDE2,
        None,
    ),
    "compact design, 16×16 basic prompts, without the inference cache": (
        FULL_UNITS,
        _without_inference_cache,
    ),
    "compact design, 8×8 basic prompts (quality: `prompt8`)": ({"prompt_size": 8}, None),
    LIGHT_TRIED: (LIGHT_UNITS, None),
    "compact design, feed-forward on the 2×-pooled feature (quality: `ffn_stride2`)": (
        {"feature_ffn_stride": 2},
        None,
    ),
    "compact design, 16×16 basic prompts, per-pixel feed-forward of full width": (
        FULL_UNITS,
        None,
    ),
}
# the TRIED row that is NAFNet's default (its preset)
DEFAULT_TRIED = (
    "compact design, 8×8 basic prompts, per-pixel feed-forward of half width, the "
    "full-resolution unit's on the 2×-pooled feature (quality: `light_full_stride2`)"
)
# the page's sections that time or count NAFNet's preset: results key -> what the page calls it
SECTIONS = {
    "malloc": "the allocator",
    "compiled": "compiled inference",
    "instructions": "instructions per unit",
    "operators": "operators per unit",
    "transposed_tokens": "the 2-D transpose",
    "ffn_rank": "each degradation's own feed-forward update",
    "strided_resampling": "the strided unit's resampling",
}
# what a TRIED design timed with ``--candidate`` becomes if it meets every NAFNet goal: its
# quality is not known well enough for the default until two training seeds measure it
CANDIDATE_THEN = (
    "a candidate for NAFNet's default, whose quality two training seeds of its "
    "`benchmarks/quality.py` variant then decide"
)
VIEWS = {  # aliasing operators and bare allocations: no kernel of their own
    "aten::view",
    "aten::reshape",
    "aten::_reshape_alias",
    "aten::permute",
    "aten::transpose",
    "aten::expand",
    "aten::slice",
    "aten::select",
    "aten::chunk",
    "aten::split",
    "aten::unsqueeze",
    "aten::squeeze",
    "aten::detach",
    "aten::t",
    "aten::as_strided",
    "aten::alias",
    "aten::unflatten",
    "aten::flatten",
    "aten::lift_fresh",
    "aten::empty",
    "aten::empty_like",
    "aten::empty_strided",
    "aten::new_empty",
    "aten::new_empty_strided",
    "aten::narrow",
    "aten::numpy_T",
}


def official(name: str) -> torch.nn.Module:
    """The official backbone, plain (the same weights at every call)."""
    torch.manual_seed(0)
    return build_backbone(name, "official").eval()


def build(
    name: str, variant: str = "default", **options: Any
) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The official backbone and the backbone with PIP (a TRIED label, or the preset), with
    ``options`` (``inject_pip`` keywords) on top."""
    backbone = official(name)
    if variant == "authors":
        return backbone, pa.inject_pip(backbone, AUTHORS_RESTORMER).eval()
    tried, edit = TRIED.get(variant, ({}, None))
    model = pa.inject_pip(backbone, **tried, **options).eval()
    return backbone, (edit(model) if edit else model)


def network(name: str, variant: str) -> tuple[torch.nn.Module, bool]:
    """``(network, injected)``: the plain backbone for ``variant="plain"``, else the model."""
    if variant == "plain":
        return official(name), False
    return build(name, variant)[1], True


def call(model, x, injected: bool):
    return model(x, degradation="rain") if injected else restore(model, x)


def flops(model, x, injected: bool) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        call(model, x, injected)
    return counter.get_total_flops()


def timing(backbone, models: dict, x, args, device: torch.device) -> dict[str, list[float]]:
    """Per network (the backbone as "plain", and each model), its best seconds per forward in
    each of ``args.rounds`` rounds of ``args.repeats`` interleaved runs, in one process
    (``timing.interleaved_rounds``)."""
    runs = {
        "plain": functools.partial(call, backbone, x, False),
        **{key: functools.partial(call, model, x, True) for key, model in models.items()},
    }
    with torch.inference_mode():
        for run in runs.values():
            run()
        measured = interleaved_rounds(
            runs, args.rounds, args.repeats, synchronize=synchronizer(device)
        )
    return measured.best


def summary(plain: list[float], model: list[float]) -> dict:
    """A network pair's per-round bests as stored: each network's median seconds over the
    rounds, and the ratio's median, lowest and highest over the rounds (the ratio is taken
    round by round, so it can differ a little from the quotient of the two medians)."""
    spread = ratio_spread(model, plain)
    return {
        "seconds": [statistics.median(plain), statistics.median(model)],
        "time_ratio": [spread.median, spread.low, spread.high],
    }


def time_spread(measured: dict) -> Spread:
    """The time ratio of a stored measurement (rows written before rounds: one best, no
    spread)."""
    stored = measured.get("time_ratio")
    if isinstance(stored, list):
        return Spread(*stored)
    if stored is None:
        plain, model = measured["seconds"]
        stored = model / plain
    return Spread(stored, stored, stored)


def peak_memory(name: str, size: int, variant: str, device: torch.device, threads: int) -> float:
    """MiB at the peak of one forward pass of the backbone (``variant="plain"``) or a model."""
    if device.type == "cuda":
        model, injected = network(name, variant)
        model.to(device)
        x = torch.rand(1, 3, size, size, device=device)
        with torch.inference_mode():
            call(model, x, injected)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        with torch.inference_mode():
            call(model, x, injected)
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    command = [sys.executable, __file__, "--memory-probe", f"{name},{size},{variant}"]
    command += ["--threads", str(threads)]
    # a fixed mmap threshold makes glibc return every large tensor to the OS when it is freed,
    # so the resident set follows the tensors alive (its default adapts and keeps freed memory)
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
    out = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return int(out.stdout.split()[-1]) / 1024  # KiB above the resident set before the forward


def _status_kib(field: str) -> int:
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith(field)))


def memory_probe(spec: str) -> None:
    """Child process of peak_memory(): warm up, then measure one forward pass."""
    name, size, variant = spec.split(",", 2)
    model, injected = network(name, variant)
    with torch.inference_mode():  # first-call costs (code pages, kernel caches) on a small input
        call(model, torch.rand(1, 3, 64, 64), injected)
    x = torch.rand(1, 3, int(size), int(size))
    before = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM)
    with torch.inference_mode():
        call(model, x, injected)
    print(_status_kib("VmHWM") - before)


@contextlib.contextmanager
def wrapped_units(model: pa.PIPModel, wrap: Callable[[str, Callable], Callable]) -> Iterator[None]:
    """Within the block, each unit's ``modulate`` is ``wrap(key, modulate)`` (an instance
    attribute, deleted after): a PIPModel calls its units through ``modulate``."""
    units = dict(model.pip_units.items())
    for key, unit in units.items():
        unit.modulate = wrap(key, unit.modulate)
    try:
        yield
    finally:
        for unit in units.values():
            del unit.modulate


def unit_inputs(model: pa.PIPModel, x: torch.Tensor) -> dict[str, list[int]]:
    """The shape of the feature each unit of ``model`` modulates in a forward pass of ``x``."""
    shapes: dict[str, list[int]] = {}

    def recorded(key: str, modulate: Callable) -> Callable:
        def run(feature, weights):
            shapes[key] = list(feature.shape)
            return modulate(feature, weights)

        return run

    with wrapped_units(model, recorded), torch.inference_mode():
        call(model, x, True)
    return shapes


def unit_spec(model: pa.PIPModel, key: str) -> dict:
    """How to rebuild unit ``key`` of ``model`` alone: its constructor's arguments."""
    unit, config = model.pip_units[key], model.config
    return {
        "channels": unit.channels,
        "num_degradations": unit.num_degradations,
        "prompt_dim": unit.prompt_dim,
        "prompt_size": unit.prompt_size,
        "heads": unit.heads,
        "ffn_expansion": config.ffn_expansion,
        "topm_ratios": config.topm_ratios,
        "design": unit.design,
        "feature_ffn_expansion": unit.prompt_to_feature.ffn_expansion,
        "feature_ffn_stride": unit.prompt_to_feature.ffn_stride,
    }


def units_of(model: pa.PIPModel) -> dict[str, str]:
    """The units ``model`` holds, recorded with a section's measurement: ``units``, a short
    digest of each stage's ``unit_spec`` (to compare), and ``units_text``, in words (to print),
    so that the page can name the sections that measured other units than NAFNet's goal row."""
    specs = [[key, unit_spec(model, key)] for key in model.pip_units]
    digest = hashlib.sha256(json.dumps(specs, sort_keys=True).encode()).hexdigest()[:12]
    words = []
    for unit in model.pip_units.values():
        feed = unit.prompt_to_feature
        side, width = unit.prompt_size, feed.ffn_expansion
        text = f"{side}×{side} basic prompts, feed-forward ×{width:g}"
        if feed.ffn_stride > 1:
            text += f" on the {feed.ffn_stride}×-pooled feature"
        words.append(f"{unit.design} design, {text}")
    groups = [(text, len(list(same))) for text, same in itertools.groupby(words)]
    return {
        "units": digest,
        "units_text": "; ".join(
            f"{count} unit{'s' * (count > 1)} of the {text}" for text, count in groups
        ),
    }


def instruction_probe(spec_file: str) -> None:
    """Child process of measure_instructions(), run under callgrind: each unit rebuilt alone
    with the model's weights (building the backbone there would take most of the hour), and
    the instructions of one ``modulate`` of its stage's feature after a warm-up call, per
    size (printed as JSON)."""
    spec = json.loads(Path(spec_file).read_text())
    prefix = os.environ["PIP_CALLGRIND_PREFIX"]
    counts: dict[str, dict[str, int]] = {}
    for key, entry in spec["units"].items():
        unit = pa.PromptInPrompt(**entry["unit"]).eval()
        unit.load_state_dict(load_file(entry["weights"]))
        weights = torch.eye(unit.num_degradations)[1:2]  # "rain"
        for size, shape in entry["inputs"].items():
            feature = torch.rand(shape, generator=torch.Generator().manual_seed(0))
            with torch.inference_mode():
                unit.modulate(feature, weights)
                run = functools.partial(unit.modulate, feature, weights)
                counts.setdefault(size, {})[key] = run_counted(run, prefix)
            print(key, size, counts[size][key], file=sys.stderr, flush=True)
    print(json.dumps(counts))


def measure_instructions(name: str, sizes: Sequence[int]) -> dict:
    """Instructions each unit of ``name``'s preset executes per forward pass at each of
    ``sizes`` (callgrind, 1 thread, in a child process)."""
    _, model = build(name)
    inputs = {str(size): unit_inputs(model, torch.rand(1, 3, size, size)) for size in sizes}
    with tempfile.TemporaryDirectory() as folder:
        units = {}
        for index, (key, unit) in enumerate(model.pip_units.items()):
            weights_file = str(Path(folder) / f"unit{index}.safetensors")
            save_file(unit.state_dict(), weights_file)
            units[key] = {
                "unit": unit_spec(model, key),
                "weights": weights_file,
                "inputs": {size: shapes[key] for size, shapes in inputs.items()},
            }
        spec_file = Path(folder) / "units.json"
        spec_file.write_text(json.dumps({"units": units}))
        argv = [__file__, "--instruction-probe", str(spec_file), "--threads", "1"]
        counts = count_instructions(argv)
    print("instructions", name, counts, flush=True)
    return {
        "measured": {
            "date": date.today().isoformat(),
            "torch": torch.__version__,
            **code_record(),
            **units_of(model),
        },
        "sizes": counts,
    }


def operator_counts(model, x) -> dict[str, dict[str, float]]:
    """Per unit: operators called (torch.profiler, aliasing views excluded), the distinct
    ones, and the unit's CPU time in ms, over one forward pass. A PIPModel calls its units
    through ``modulate`` (not ``__call__``, so module hooks never fire): each unit's
    ``modulate`` is wrapped in a profiler scope for the measurement."""
    units = dict(model.pip_units.items())

    def scoped(key: str, modulate: Callable) -> Callable:
        def run(*args, **kwargs):
            with record_function(f"unit {key}"):
                return modulate(*args, **kwargs)

        return run

    with wrapped_units(model, scoped), torch.inference_mode():
        call(model, x, True)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            call(model, x, True)
    events = prof.events()
    counts: dict[str, dict[str, float]] = {}
    for scope in (e for e in events if e.name.startswith("unit ")):
        calls = Counter(
            e.name
            for e in events
            if e.cpu_parent is not None and e.cpu_parent.id == scope.id and e.name not in VIEWS
        )
        counts[scope.name.removeprefix("unit ")] = {
            "operators": sum(calls.values()),
            "distinct": len(calls),
            "ms": scope.cpu_time_total / 1e3,
        }
    if counts.keys() != units.keys():
        raise RuntimeError(f"profiled units {sorted(counts)}, expected {sorted(units)}")
    return counts


def measure_backbone(name: str, args, device: torch.device, variant: str = "default") -> dict:
    """The goal table's row of ``name`` with PIP (its preset, or a TRIED ``variant``): sizes,
    FLOPs, time interleaved with the plain network, forward memory."""
    backbone, model = build(name, variant)
    model.to(device)
    entry = {
        "backbone_params": sum(p.numel() for p in backbone.parameters()),
        "adapter_params": sum(p.numel() for p in model.pip_units.parameters()),
        "measured": {**settings(args), **units_of(model)},
        "sizes": {},
    }
    for size in SIZES:
        x = torch.rand(1, 3, size, size, device=device)
        f_plain, f_pip = flops(backbone, x, False), flops(model, x, True)
        seconds = timing(backbone, {"pip": model}, x, args, device)
        entry["sizes"][str(size)] = {
            "gflops": [f_plain / 1e9, f_pip / 1e9],
            **summary(seconds["plain"], seconds["pip"]),
            "peak_mib": [
                peak_memory(name, size, "plain", device, args.threads),
                peak_memory(name, size, variant, device, args.threads),
            ],
        }
        print(name, size, entry["sizes"][str(size)], flush=True)
    return entry


def measure_candidate(label: str, args, device: torch.device) -> dict:
    """A TRIED design timed as NAFNet's default is in the goal table (``measure_backbone``), as
    a candidate for the default (``candidate_lines`` holds it to the goals)."""
    keywords, _ = TRIED[label]
    return {
        "label": label,
        "keywords": keywords,
        "then": CANDIDATE_THEN,
        **measure_backbone("nafnet", args, device, label),
    }


def adopted_row(results: dict, label: str) -> dict:
    """NAFNet's goal-table row from the timing of the candidate ``label`` (``--candidate``, which
    times a design as the goal table times the default), once NAFNet's preset builds that
    design's units: a ValueError if it has no timing or the preset builds other units."""
    candidate = results.get("candidates", {}).get(label)
    if candidate is None:
        raise ValueError(f"no candidate {label!r} was timed (--candidate) to adopt")
    models = [build("nafnet")[1], build("nafnet", label)[1]]
    preset, design = ([unit_spec(m, key) for key in m.pip_units] for m in models)
    if preset != design:
        raise ValueError(f"NAFNet's preset does not build the units of {label!r}")
    kept = ("backbone_params", "adapter_params", "sizes")
    measured = {**candidate["measured"], **units_of(models[0])}
    return {key: candidate[key] for key in kept} | {"measured": measured, "candidate": label}


def section_record(results: dict, section: str) -> dict:
    """The record of what a section of the page measured (its date, and its units where it
    recorded them)."""
    measured = {
        "instructions": results.get("instructions", {}).get("nafnet", {}).get("measured"),
        "operators": results.get("operators", {}).get("measured"),
    }.get(section, results.get(section, {}).get("settings"))
    return measured or {}


def adopted_lines(results: dict) -> list[str]:
    """What NAFNet's goal rows are when they come from an adopted candidate (``--adopt``)."""
    row = results.get("backbones", {}).get("nafnet", {})
    label = row.get("candidate")
    if label is None:
        return []
    return [
        "",
        f"NAFNet's rows time its preset since {row['measured']['date']}: the candidate {label}, "
        "timed as such (below) and adopted by its rule (`--adopt`).",
    ]


def other_units_lines(results: dict) -> list[str]:
    """The sections below (``SECTIONS``) that measured other units than NAFNet's goal row,
    each with its date and its units (or that it recorded none), if any."""
    row = results.get("backbones", {}).get("nafnet", {}).get("measured", {})
    if "units" not in row:
        return []
    other = []
    for section, name in SECTIONS.items():
        record = section_record(results, section)
        if section in results and record.get("units") != row["units"]:
            units = record.get("units_text", "its units not recorded")
            other.append(f"{name} ({record.get('date', 'undated')}; {units})")
    if not other:
        return []
    measured = f" ({row['units_text']})" if "units_text" in row else ""
    return [
        "",
        f"These sections below measured other units than NAFNet's goal rows{measured}: "
        f"{'; '.join(other)}.",
    ]


def tried_default_lines(results: dict) -> list[str]:
    """Where the What-was-tried table's row of NAFNet's default (timed with every design
    interleaved, fewer rounds) misses a goal that the goal table's row meets, both readings."""
    entry = results.get("backbones", {}).get("nafnet")
    tried = results.get("tried", {}).get("rows", {}).get(DEFAULT_TRIED)
    if entry is None or tried is None:
        return []
    goal = GOALS["nafnet"][0]
    sizes = [
        size
        for size, measured in tried["sizes"].items()
        if size in entry["sizes"]
        and time_spread(measured).median > goal >= time_spread(entry["sizes"][size]).median
    ]
    if not sizes:
        return []
    readings = "; ".join(
        f"{size}²: {time_cell(tried['sizes'][size]).replace('**', '')} in What was tried, "
        f"{time_cell(entry['sizes'][size]).replace('**', '')} in the goal table"
        for size in sizes
    )
    return [
        "",
        f"The What-was-tried table's row of the default (every design interleaved, "
        f"{protocol(results['tried']['settings'])}) reads it above the time goal where the goal "
        f"table's row meets it: {readings}. The goal table's row is the goal's protocol (the "
        "default alone against the plain network, in more rounds); this reading is shown beside "
        "it.",
    ]


def measure_tried(args, device: torch.device) -> dict:
    """Every TRIED configuration on NAFNet, timed interleaved with the plain backbone."""
    backbone = official("nafnet").to(device)
    models = {label: build("nafnet", label)[1].to(device) for label in TRIED}
    tried: dict = {label: {"sizes": {}} for label in TRIED}
    for size in SIZES:
        x = torch.rand(1, 3, size, size, device=device)
        seconds = timing(backbone, models, x, args, device)
        plain_mib = peak_memory("nafnet", size, "plain", device, args.threads)
        for label in TRIED:
            mib = peak_memory("nafnet", size, label, device, args.threads)
            tried[label]["sizes"][str(size)] = {
                "time_ratio": summary(seconds["plain"], seconds[label])["time_ratio"],
                "memory_ratio": mib / plain_mib,
            }
        print("tried", size, {k: v["sizes"][str(size)] for k, v in tried.items()}, flush=True)
    for label, model in models.items():
        tried[label]["adapter_params"] = sum(p.numel() for p in model.pip_units.parameters())
    return {"settings": settings(args), "rows": tried}


def timed_pair(backbone, models: dict, pair: tuple[str, str], args, device: torch.device) -> dict:
    """At each size, ``models`` timed interleaved with ``backbone`` (as "plain"), and the
    ``summary`` of the pair's second network against its first."""
    sizes = {}
    for size in SIZES:
        x = torch.rand(1, 3, size, size, device=device)
        seconds = timing(backbone, models, x, args, device)
        sizes[str(size)] = summary(seconds[pair[0]], seconds[pair[1]])
        print(*pair, size, sizes[str(size)], flush=True)
    return {"settings": settings(args), "sizes": sizes}


class _PermutedTokens(torch.nn.Module):
    """``model`` with its units' per-pixel feed-forward reading the permuted view of its
    input (the layer norm then makes the 4-D copy itself): the units before the 2-D transpose
    (``prompt_to_feature._tokens``), on the same weights."""

    def __init__(self, model: pa.PIPModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        tokens = prompt_to_feature._tokens
        prompt_to_feature._tokens = _permuted
        try:
            return self.model(x, **kwargs)
        finally:
            prompt_to_feature._tokens = tokens


def _permuted(y: torch.Tensor) -> torch.Tensor:
    return y.permute(0, 2, 3, 1)


def measure_transpose(args, device: torch.device) -> dict:
    """The copy that gives each unit's per-pixel layer norm its channels-last tokens, at the
    inputs of the NAFNet preset's per-pixel feed-forwards (batch 1): the 4-D copy that
    ``layer_norm`` makes of the permuted view against the 2-D blocked transpose the unit makes
    (``prompt_to_feature._tokens``). ``copies``: the copies alone, timed interleaved in
    rounds, per round summed over the units (one forward pass's); ``models``: the whole
    NAFNet + PIP with the 2-D copies over the same with the 4-D ones (``_PermutedTokens``),
    interleaved with the plain network."""
    _, model = build("nafnet")
    models = {"4-D": _PermutedTokens(model), "2-D": model}
    copies, whole = {}, {}
    for size in SIZES:
        shapes = unit_inputs(model, torch.rand(1, 3, size, size))
        features = [
            torch.rand(1, model.pip_units[key].prompt_dim, *shape[-2:], device=device)
            for key, shape in shapes.items()
        ]
        runs = {}
        for index, y in enumerate(features):
            runs[f"4-D {index}"] = functools.partial(_contiguous, y.permute(0, 2, 3, 1))
            runs[f"2-D {index}"] = functools.partial(_contiguous, y.view(y.shape[1], -1).t())
        with torch.inference_mode():
            best = interleaved_rounds(runs, args.rounds, args.repeats).best
        passes = {  # per round, the copies of one forward pass
            layout: [
                sum(best[f"{layout} {index}"][r] for index in range(len(features)))
                for r in range(args.rounds)
            ]
            for layout in ("4-D", "2-D")
        }
        copies[str(size)] = summary(passes["4-D"], passes["2-D"])
        print("transpose copies", size, copies[str(size)], flush=True)
    whole = timed_pair(official("nafnet").to(device), models, ("4-D", "2-D"), args, device)
    run = {**settings(args), **units_of(model)}
    return {"settings": run, "copies": copies, "models": whole["sizes"]}


def _contiguous(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous()


def size_cells(entries: dict, times: str | None = None) -> list[str]:
    """Per size, the pair's ratio cell (not bold) "at N²", and with ``times`` the two runs'
    times in ms followed by ``times`` (e.g. " per forward pass")."""
    cells = []
    for size in SIZES:
        entry = entries[str(size)]
        cell = f"{time_cell(entry).replace('**', '')} at {size}²"
        if times is not None:
            first, second = (1e3 * seconds for seconds in entry["seconds"])
            cell += f" ({first:.2f} → {second:.2f} ms{times})"
        cells.append(cell)
    return cells


def transpose_sentence(results: dict) -> str:
    """What the 2-D transpose saves (``--transpose``), or that this script has not timed it
    (an entry of the layout before, whole models only, under ``transpose``, is not read)."""
    measured = results.get("transposed_tokens")
    if measured is None:
        return "not timed by this script on this code yet (`--transpose`)"
    run = measured["settings"]
    copies = size_cells(measured["copies"], " per forward pass")
    models = size_cells(measured["models"])
    return (
        f"timed at {run['threads']} threads (`--transpose`, {dated(run)}, {protocol(run)}; "
        "the 2-D copies' time over the 4-D copies', median and range over the rounds): the "
        f"copies of one forward pass alone (every unit's, batch 1) {' and '.join(copies)}; "
        "the whole NAFNet + PIP with the 2-D copies over the same with the 4-D ones, "
        f"interleaved with the plain network, {' and '.join(models)}"
    )


@contextlib.contextmanager
def _product_resampling() -> Iterator[None]:
    """Within the block the strided unit resamples as before the change (the code of 77ac9b5):
    the feature pooled by torch's pooling kernel, the prompt grid averaged from the feature
    itself, the update resized back by ``resize_add``'s matrix products (the same outputs to
    rounding)."""
    kept = prompt_to_feature.stride_pool, prompt_to_feature.upsample_add, alignment.area_pool
    prompt_to_feature.stride_pool = _torch_pool
    prompt_to_feature.upsample_add = resize_add
    alignment.area_pool = _grid_from_feature
    try:
        yield
    finally:
        prompt_to_feature.stride_pool, prompt_to_feature.upsample_add = kept[:2]
        alignment.area_pool = kept[2]


def _torch_pool(x: torch.Tensor, stride: int) -> torch.Tensor:
    return x if stride == 1 else torch.nn.functional.avg_pool2d(x, stride, ceil_mode=True)


def _grid_from_feature(x: torch.Tensor, size: int, *pooled: Any) -> torch.Tensor:
    return area_pool(x, size)


class _ProductResampling(torch.nn.Module):
    """``model`` resampling as before the change (``_product_resampling``), same weights."""

    def __init__(self, model: pa.PIPModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        with _product_resampling():
            return self.model(x, **kwargs)


def _modulated(unit: pa.PromptInPrompt, feature: torch.Tensor, weights: torch.Tensor) -> None:
    unit.modulate(feature, weights)


def _modulated_before(
    unit: pa.PromptInPrompt, feature: torch.Tensor, weights: torch.Tensor
) -> None:
    with _product_resampling():
        unit.modulate(feature, weights)


def measure_strided_resampling(args, device: torch.device) -> dict:
    """What the strided unit's resampling change bought: the NAFNet preset's strided unit
    alone (its ``modulate`` on its stage's feature) and the whole NAFNet + PIP, each with the
    resampling before the change (``_product_resampling``) and after, timed interleaved (the
    whole networks with the plain network): ratios after / before."""
    _, model = build("nafnet")
    model = model.to(device)
    key = next(k for k, u in model.pip_units.items() if u.prompt_to_feature.ffn_stride > 1)
    unit, units = model.pip_units[key], {}
    weights = torch.eye(unit.num_degradations, device=device)[1:2]  # "rain"
    for size in SIZES:
        shape = unit_inputs(model, torch.rand(1, 3, size, size))[key]
        feature = torch.rand(shape, device=device)
        runs = {
            "before": functools.partial(_modulated_before, unit, feature, weights),
            "after": functools.partial(_modulated, unit, feature, weights),
        }
        with torch.inference_mode():
            best = interleaved_rounds(runs, args.rounds, args.repeats).best
        units[str(size)] = summary(best["before"], best["after"])
        print("strided unit", size, units[str(size)], flush=True)
    models = {"before": _ProductResampling(model), "after": model}
    whole = timed_pair(official("nafnet").to(device), models, ("before", "after"), args, device)
    run = {**settings(args), **units_of(model)}
    measured = {"unit": key, "stride": unit.prompt_to_feature.ffn_stride, "units": units}
    return {"settings": run, **measured, "models": whole["sizes"]}


def strided_sentence(measured: dict) -> str:
    """What the strided unit's resampling change bought (``--strided-resampling``)."""
    run, stride = measured["settings"], measured["stride"]
    units, models = size_cells(measured["units"], ""), size_cells(measured["models"])
    spread = [
        f"{size}²"
        for size in SIZES
        if (cell := measured["models"][str(size)]["time_ratio"])[1] <= 1 <= cell[2]
    ]
    inside = (
        f" At {' and '.join(spread)} the whole network's range includes 1.000x: what the unit "
        "saves is inside this protocol's spread."
        if spread
        else ""
    )
    return (
        f"The strided full-resolution unit (the feed-forward on the {stride}×-pooled feature) "
        "pools the feature once, on the CPU outside autocast by a depth-wise convolution with a "
        f"1/{stride * stride} kernel "
        "where the windows tile it (torch's pooling kernel is several times slower on a "
        "channels-first tensor; elsewhere torch's pooling), averages "
        "the prompt grid from the pooled feature where its windows tile the grid's bins, and "
        "resizes its update back by torch's bilinear kernel, adding the feature into the "
        "resized map (`pip_adapter.unit.resampling`: `stride_pool`, `area_pool`, "
        "`upsample_add`; before, matrix products that weighed every pooled column where "
        "bilinear weighs two, and an intermediate at the pooled resolution): two operators read a "
        "full-resolution tensor instead of three, with the same outputs (tests/test_unit.py's "
        "formula). Timed against the resampling before the change at "
        f"{run['threads']} threads (`--strided-resampling`, {dated(run)}, {protocol(run)}; "
        "its time over the time before, median and range over the rounds): the unit alone "
        f"({measured['unit'].replace('/', '.')}, its stage's feature) {' and '.join(units)}; "
        "the whole NAFNet + PIP, interleaved with the plain network, "
        f"{' and '.join(models)}.{inside}"
    )


def measure_ffn_rank(args, device: torch.device) -> dict:
    """The default NAFNet + PIP against the same with each degradation's own rank-``r`` update
    of the units' per-pixel feed-forward (``PIPConfig.degradation_ffn_rank``), timed interleaved
    with the plain network: ratios of the rank-``r`` model to the default. Each degradation's
    update ``B_t A_t`` is kept by the inference cache and mixed into each sample's projection
    matrices once per forward pass (one small product per projection; the per-pixel work is
    the default's)."""
    backbone = official("nafnet").to(device)
    models = {
        "default": build("nafnet")[1].to(device),
        "rank": build("nafnet", degradation_ffn_rank=args.ffn_rank)[1].to(device),
    }
    measured = timed_pair(backbone, models, ("default", "rank"), args, device)
    measured["settings"] |= units_of(models["default"])
    params = [sum(p.numel() for p in m.pip_units.parameters()) for m in models.values()]
    return {**measured, "rank": args.ffn_rank, "adapter_params": params}


def ffn_rank_sentence(measured: dict) -> str:
    """What each degradation's own feed-forward update costs at inference (``--ffn-rank``)."""
    run, (default, ranked) = measured["settings"], measured["adapter_params"]
    cells = size_cells(measured["sizes"])
    default_rank = measured["rank"] == ADAPTER_FFN_RANK
    return (
        f"Each degradation's own rank-{measured['rank']} update of the per-pixel feed-forward "
        f"(`degradation_ffn_rank={measured['rank']}`"
        + (", the recipe's adapter default `recipes.ADAPTER_FFN_RANK`" if default_rank else "")
        + f", {ranked / 1e3:.0f}K adapter parameters "
        f"against the default's {default / 1e3:.0f}K) is mixed into each sample's projection "
        "matrices once per forward pass"
        # the inference cache keeps values on the CPU only (rows stored before 'device': CPU)
        + (
            ", from each degradation's update kept at inference by the units' cache"
            if run.get("device", "cpu") == "cpu"
            else ""
        )
        + ", so the per-pixel work stays the default's; timed "
        f"against the default at {run['threads']} threads (`--ffn-rank {measured['rank']}`, "
        f"{dated(run)}, {protocol(run)}; its time over the default's, median and range over "
        f"the rounds): {' and '.join(cells)}."
    )


def malloc_env(keep: bool) -> dict[str, str]:
    """This process's environment with glibc's allocator settings removed, plus
    ``MALLOC_KEEP`` when ``keep``: the environments of ``measure_malloc``'s two processes."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MALLOC_")}
    return {**env, **MALLOC_KEEP} if keep else env


def faulting(run: Callable[[], object], faults: list[int]) -> Callable[[], None]:
    """``run`` adding its minor page faults (fresh pages the kernel mapped) to ``faults[0]``."""

    def counted() -> None:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        run()
        faults[0] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    return counted


def malloc_round(runs: Mapping[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """One round of ``runs`` interleaved (``interleaved_rounds``): per run, its best seconds
    and its minor page faults per call."""
    faults = {name: [0] for name in runs}
    counted = {name: faulting(run, faults[name]) for name, run in runs.items()}
    measured = interleaved_rounds(counted, 1, repeats)
    calls = measured.repeats[0]
    return {name: [measured.best[name][0], faults[name][0] / calls] for name in runs}


def malloc_child(repeats: int) -> None:
    """Child process of measure_malloc(): builds NAFNet plain and with PIP and says so with its
    resident set (KiB), then for each input size read from stdin times one round of the two
    (``malloc_round``, after one warm-up call each at a size's first round) and prints it as
    JSON with the process's resident set after it and its peak so far (``VmHWM``), in KiB."""
    backbone, model = build("nafnet")
    print(json.dumps({"built_kib": _status_kib("VmRSS")}), flush=True)
    warm: set[int] = set()
    for line in sys.stdin:
        size = int(line)
        x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(size))
        runs = {
            "plain": functools.partial(call, backbone, x, False),
            "pip": functools.partial(call, model, x, True),
        }
        with torch.inference_mode():
            if size not in warm:
                for run in runs.values():
                    run()
                warm.add(size)
            measured: dict[str, object] = {**malloc_round(runs, repeats)}
        measured["resident_kib"] = [_status_kib("VmRSS"), _status_kib("VmHWM")]
        print(json.dumps(measured), flush=True)


def _reply(child: subprocess.Popen, setting: str) -> dict:
    """The next JSON line ``child`` prints (``malloc_child``)."""
    assert child.stdout is not None
    reply = child.stdout.readline()
    if not reply:
        raise RuntimeError(f"the {setting} allocator's process ended early")
    return json.loads(reply)


def malloc_size(size: int, args) -> dict:
    """NAFNet plain and with PIP at one input size, under glibc's default allocator settings
    and with freed memory kept (``MALLOC_KEEP``), each in a process of its own started with
    those settings (glibc reads them at start) for this size alone (glibc's default adapts to
    the blocks freed before, so a process that ran another size first is not a default one):
    once both have built their networks, the two take turns round by round, the one that
    starts alternating, and in each round a process times the two networks interleaved
    (``malloc_round``), counting the minor page faults of each call. Per setting: the pair's
    ``summary``, the median faults per call and the process's resident set (MiB) after
    building, after the last round and at its peak."""
    command = [sys.executable, __file__, "--malloc-child", "--threads", str(args.threads)]
    command += ["--repeats", str(args.repeats)]
    children = {
        setting: subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=malloc_env(setting == "kept"),
        )
        for setting in SETTINGS
    }
    replies: dict[str, list[dict]] = {setting: [] for setting in children}
    try:
        built = {
            setting: _reply(child, setting)["built_kib"] for setting, child in children.items()
        }
        for index in range(args.rounds):
            order = list(children) if index % 2 == 0 else list(children)[::-1]
            for setting in order:
                child = children[setting]
                assert child.stdin is not None
                child.stdin.write(f"{size}\n")
                child.stdin.flush()
                replies[setting].append(_reply(child, setting))
            print(
                f"malloc {size}² round {index}", {s: r[-1] for s, r in replies.items()}, flush=True
            )
    finally:
        for child in children.values():
            assert child.stdin is not None
            child.stdin.close()
            child.wait()
    entry = {}
    for setting, measured in replies.items():
        seconds = {name: [reply[name][0] for reply in measured] for name in ("plain", "pip")}
        faults = [statistics.median(reply[name][1] for reply in measured) for name in seconds]
        entry[setting] = {**summary(seconds["plain"], seconds["pip"]), "faults": faults}
        after, peak = measured[-1]["resident_kib"]
        entry[setting]["resident_mib"] = [built[setting] / 1024, after / 1024, peak / 1024]
        entry[setting]["rounds"] = seconds
    entry["kept_over_default"] = {
        name: list(
            astuple(ratio_spread(entry["kept"]["rounds"][name], entry["default"]["rounds"][name]))
        )
        for name in ("plain", "pip")
    }
    return entry


def measure_malloc(args) -> dict:
    """``malloc_size`` at each input size, a pair of processes per size."""
    sizes = {str(size): malloc_size(size, args) for size in SIZES}
    run = {**settings(args), **units_of(build("nafnet")[1])}  # the children's units
    return {"settings": run, "env": MALLOC_KEEP, "sizes": sizes}


def nafnet_next_lines(results: dict) -> list[str]:
    """Where NAFNet's time goal was missed, what the sections below tried and what is left
    (nothing when it is met or not measured)."""
    entry = results["backbones"].get("nafnet")
    goal = GOALS["nafnet"][0]
    missed = [
        f"{size}²"
        for size, m in (entry or {}).get("sizes", {}).items()
        if time_spread(m).median > goal
    ]
    if not missed:
        return []
    tried = ["the unit designs and placements (What was tried)"]
    if "compiled" in results:
        tried.append("compiled inference (Compiled)")
    if "malloc" in results:
        tried.append("glibc keeping freed memory (Allocator)")
    if "strided_resampling" in results:
        tried.append(
            "fewer full-resolution passes in the strided unit (below the What-was-tried table)"
        )
    operators = ""
    if "operators" in results:
        counts = [unit["operators"] for unit in results["operators"]["compact"].values()]
        operators = (
            f" (each unit calls {min(counts):.0f}-{max(counts):.0f} operators per forward pass, "
            "most of them on the prompt's small grid: Operators per unit)"
        )
    left = ""
    prompt8 = (
        results.get("tried", {})
        .get("rows", {})
        .get("compact design, 8×8 basic prompts (quality: `prompt8`)")
    )
    if prompt8 is not None:
        cell = time_cell(prompt8["sizes"]["128"]).replace("**", "")
        left = (
            f"; less work on the prompt grid (8×8 basic prompts: {cell} at 128², but weaker as "
            "a frozen-backbone adapter, [transfer.md](transfer.md))"
        )
    awaiting = [  # designs that met every goal as candidates, their quality not yet decided
        label
        for label, candidate in results.get("candidates", {}).items()
        if candidate["then"] == CANDIDATE_THEN
        and not candidate_misses(candidate)
        and "quality" not in candidate
    ]
    if awaiting:
        left += (
            "; the quality, over two training seeds of the quality benchmark, of the design "
            f"that meets every goal as a candidate for the default ({'; '.join(awaiting)}: "
            "below)"
        )
    return [
        "",
        f"NAFNet's time goal is missed at {' and '.join(missed)}. Tried: {'; '.join(tried)}. "
        f"Still open: fewer operators per unit call{operators}{left}.",
    ]


def candidate_misses(candidate: dict) -> list[str]:
    """The input sizes at which a candidate misses NAFNet's time goal (by the median) or its
    forward-memory goal."""
    time_goal, memory_goal = GOALS["nafnet"]
    return [
        f"{size}²"
        for size, m in candidate["sizes"].items()
        if time_spread(m).median > time_goal or ratio(m["peak_mib"]) > memory_goal
    ]


def quality_variant(label: str) -> str | None:
    """The ``benchmarks/quality.py`` variant a What-was-tried label names (``quality: `X```)."""
    found = re.search(r"\(quality: `(\w+)`\)", label)
    return found.group(1) if found else None


def candidate_quality(label: str, runs: Path) -> dict | None:
    """The average PSNR (labels, full strength) of the candidate's quality variant on each
    held-out set per training seed (``quality.seed_averages``), from ``quality.py``'s kept
    results in ``runs`` (``<run>/result.json`` of each of its seeds' runs), with the steps they
    trained and what was read (each file's name in ``runs`` and the start of its sha256).
    None, with the reason printed: a label without a variant; a variant that quality.md does
    not judge by issue 14's bar (``quality.CANDIDATES``, so that the two pages cannot give two
    verdicts); a seed's result missing; one trained otherwise than quality.py's defaults for
    its run (a smoke run), or whose kept weights are not of the network the variant builds now
    (a stale folder, from before the variant's definition changed): those decide nothing."""
    import quality  # the quality benchmark and the sensor's, only for recording quality

    variant = quality_variant(label)
    if variant is None:
        return None
    if variant not in quality.CANDIDATES:
        judged = ", ".join(quality.CANDIDATES)
        print(f"{variant}: not recorded, quality.py judges only {judged} by the bar")
        return None
    results, files = {}, {}
    for run in quality.seed_run_names(variant).values():
        path = runs / run / "result.json"
        if not path.is_file():
            print(f"{variant}: not recorded, {path} is missing")
            return None
        saved = json.loads(path.read_text())
        differs = quality.not_default_training(run, saved["settings"])
        other = quality.other_network(run, runs / run / quality.WEIGHTS)
        if differs or other:
            why = f"was trained with {differs}, not quality.py's defaults for {run}"
            print(f"{variant}: not recorded, {path} {why if differs else f'is stale: {other}'}")
            return None
        results[run] = saved["results"][run]
        files[f"{run}/result.json"] = files_digest(path)[:12]
    averages = quality.seed_averages(variant, results)
    seeds = {str(seed): means for seed, means in averages.items()}
    return {"variant": variant, "seeds": seeds, "steps": saved["settings"]["steps"], "files": files}


def quality_sentence(recorded: dict) -> tuple[str, bool]:
    """What a candidate's training seeds measured, against issue 14's bar (``quality.BAR_DB``,
    judged by quality.py's own rule, as quality.md judges them), and whether they meet it (the
    mean on the bundled held-out photos decides)."""
    import quality  # the quality benchmark and the sensor's, only for a recorded quality

    seeds = recorded["seeds"]
    means = quality.seed_means(seeds)
    test, ood = (
        " / ".join(f"{s[split]:.2f}" for s in seeds.values()) for split in quality.EVAL_SETS
    )
    files = recorded.get("files")  # entries recorded before the steps and files were
    read = (
        f"; {recorded['steps']} training steps each, read from "
        + ", ".join(f"`{name}` (sha256 {digest})" for name, digest in files.items())
        if files
        else ""
    )
    return (
        f"Its quality, training seeds {' and '.join(seeds)} of `benchmarks/quality.py`'s "
        f"`{recorded['variant']}` (average PSNR with labels at full strength{read}): "
        f"{quality.set_name('test')} {test} dB, {quality.bar_sentence(means)}; "
        f"{quality.set_name('ood')} {ood} dB, mean {means['ood']:.2f} dB (reported only, it "
        "decides nothing)",
        quality.meets_bar(means),
    )


def candidate_lines(results: dict) -> list[str]:
    """Each lighter NAFNet design timed in the goal's protocol as a candidate for the default
    (``candidates``: ``--candidate``, or the preset of another branch's code): its rows against
    the goals, and whether it became what its rule, fixed before it was timed, makes of a
    design that meets every goal at every size (``then``)."""
    lines = []
    for candidate in results.get("candidates", {}).values():
        run, cells, missed = candidate["measured"], [], candidate_misses(candidate)
        for size, m in candidate["sizes"].items():
            (t0, t1), (m0, m1) = m["seconds"], m["peak_mib"]
            cells.append(
                f"{size}² {t0 * 1e3:.0f} → {t1 * 1e3:.0f} ms, {time_cell(m).replace('**', '')}, "
                f"memory {m0:.0f} → {m1:.0f} MiB ({m1 / m0:.2f}x): {verdict('nafnet', m)}"
            )
        decision = (
            f"it misses a goal at {' and '.join(missed)}, so it does not"
            if missed
            else "it meets every goal, so it does"
        )
        built = (
            f"the preset's units on the code of {candidate['code']}"
            if "code" in candidate
            else "built by `inject_pip` with the row's keywords, `--candidate`"
        )
        quality = ""
        if candidate["then"] == CANDIDATE_THEN and "quality" in candidate:
            text, met = quality_sentence(candidate["quality"])
            verdict_text = "becomes" if met and not missed else "does not become"
            quality = f" {text}. So it {verdict_text} NAFNet's default."
        lines += [
            "",
            f"A lighter NAFNet design timed in this table's protocol ({candidate['label']}; "
            f"{candidate['adapter_params'] / 1e3:.0f}K adapter parameters; {built}; "
            f"{dated(run)}, {run['threads']} threads, {protocol(run)}): "
            + "; ".join(cells)
            + ". The rule, fixed before it was timed: only if it meets the time and memory "
            f"goals at every size does it become {candidate['then']}; {decision}.{quality}",
        ]
    return lines


def malloc_lines(measured: dict) -> list[str]:
    """The allocator section (``--malloc-keep``): per size and setting, both networks' times,
    the ratio against the goal, the page faults per forward pass and the process's resident
    set; then what keeping freed memory changes for each network and for the memory held."""
    run = measured["settings"]
    env = " ".join(f"{key}={value}" for key, value in measured["env"].items())
    lines = [
        "",
        "## Allocator: freed memory kept (NAFNet, official width-32)",
        "",
        "By default glibc's malloc hands large freed blocks back to the operating system, so "
        "each forward pass maps fresh memory again and the kernel zero-fills every 4 KiB page "
        "on its first touch (a minor page fault). With "
        f"`{env}` in the environment (read when the process starts), glibc keeps freed memory "
        "for the next pass. Each setting timed in a process of its own, started with it and "
        "used for one input size only (glibc's default adapts to what was freed before: its "
        "threshold for mapping a block afresh rises to the largest block freed so far, up to "
        "32 MiB, so a process that ran larger passes first is no default one); once both have "
        "built their networks, the two processes of a size take turns round by round (the "
        "first alternating), each round timing the plain network and the network with PIP "
        f"interleaved ({run['machine']}; {dated(run)}, {protocol(run)}; `--malloc-keep`). "
        "Page faults: minor faults per forward pass (counted around each timed call, median "
        "over the rounds; a count, independent of the machine's load). Resident set: the "
        "process's, holding both networks, after building them, after its last round (what "
        "it keeps between passes) and at its peak (VmHWM).",
        "",
        "| input | allocator | plain NAFNet | NAFNet + PIP | time | page faults per forward, "
        "plain → + PIP | resident set: built / after / peak |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    speedups, held, ratios = [], [], {}
    goal = GOALS["nafnet"][0]
    # a size whose default process mapped nothing fresh compares kept memory with kept memory
    faulted = [size for size in SIZES if sum(measured["sizes"][str(size)]["default"]["faults"])]
    for size in SIZES:
        entry = measured["sizes"][str(size)]
        for setting, label in SETTINGS.items():
            m = entry[setting]
            (t0, t1), (f0, f1) = m["seconds"], m["faults"]
            if setting == "default" and size not in faulted:
                label += " (mapped no fresh memory: not a default process)"
            # records written before the resident set was measured have none
            resident = (
                " / ".join(f"{mib:.0f}" for mib in m["resident_mib"]) + " MiB"
                if "resident_mib" in m
                else "not measured"
            )
            lines.append(
                f"| {size}² | {label} | {t0 * 1e3:.0f} ms | {t1 * 1e3:.0f} ms | {time_cell(m)}: "
                f"{judged(time_spread(m).median, goal)} | {f0:,.0f} → {f1:,.0f} | {resident} |"
            )
        if size not in faulted:
            continue
        kept = entry["kept_over_default"]
        speedups.append(
            f"at {size}² the plain network {Spread(*kept['plain'])} and the network with PIP "
            f"{Spread(*kept['pip'])}"
        )
        if all("resident_mib" in entry[s] for s in SETTINGS):
            (_, after0, peak0), (_, after1, peak1) = (entry[s]["resident_mib"] for s in SETTINGS)
            held.append(
                f"at {size}² {after1 - after0:+.0f} MiB after the last round and "
                f"{peak1 - peak0:+.0f} MiB at the peak"
            )
        ratios[size] = [time_spread(entry[s]) for s in SETTINGS]
    compared = " and ".join(
        f"{kept.median:.3f}x against {default.median:.3f}x at {size}²"
        for size, (default, kept) in ratios.items()
    )
    lowered = [f"{size}²" for size, (default, kept) in ratios.items() if kept.median < default.low]
    verdict = (
        f"below every round of the default at {' and '.join(lowered)}"
        if lowered
        else "inside the default's range of rounds: keeping freed memory does not lower PIP's "
        "share of the time"
    )
    unmeasured = [f"{size}²" for size in SIZES if size not in faulted]
    where = (
        f"not measured at {' and '.join(unmeasured)}, where the default process mapped nothing "
        "fresh"
    )
    if unmeasured:
        verdict += f"; {where}"
    cost = (
        " What keeping freed memory costs in resident memory (kept minus default): "
        + "; ".join(held)
        + "."
        if held
        else ""
    )
    compared_text = (
        "Time with freed memory kept over the default's (median and range over the rounds): "
        + "; ".join(speedups)
        + f". PIP's ratio with freed memory kept, {compared}: {verdict}.{cost}"
        if ratios
        else f"What keeping freed memory changes: {where}."
    )
    lines += [
        "",
        compared_text + " How to set it for a deployment: "
        "[deploy.md](../deploy.md#on-a-cpu-under-linux-glibc).",
    ]
    return lines


def measure_compiled(args, device: torch.device) -> dict:
    """NAFNet plain and with PIP, each compiled the way docs/deploy.md recommends
    (``torch.compile(model, dynamic=False)``, inductor), timed interleaved after compiling."""
    _, model = build("nafnet")
    plain = official("nafnet").to(device)  # a backbone of its own: the PIPModel's has its hooks
    compiled_plain = torch.compile(plain, dynamic=False)
    compiled = {"pip": torch.compile(model.to(device), dynamic=False)}
    measured = timed_pair(compiled_plain, compiled, ("plain", "pip"), args, device)
    measured["settings"] |= units_of(model)
    return measured


def measure_operators(device: torch.device) -> dict:
    """Operators per unit on NAFNet at 128², paper design against the default."""
    x = torch.rand(1, 3, 128, 128, device=device)
    models = {
        "paper": build("nafnet", "paper design (the previous default)")[1],
        "compact": build("nafnet")[1],
    }
    counts: dict = {
        design: operator_counts(model.to(device), x) for design, model in models.items()
    }
    measured = {"date": date.today().isoformat(), "torch": torch.__version__, **code_record()}
    return counts | {"measured": measured | units_of(models["compact"])}


# the library's parts a timed network is never built or run with (training, data, the command
# line, export, files, the sensor): a change there does not mark the sections as earlier code
OFF_THE_FORWARD = (
    "training",
    "data",
    "cli",
    "baselines",
    "export.py",
    "onnx_graph.py",
    "metrics.py",
    "visualize.py",
    "recipes.py",
    "bundle.py",
    "image_files.py",
    "sensor.py",
)


def forward_code() -> str:
    """A short digest of the library's modules a timed network is built and run with (all but
    ``OFF_THE_FORWARD``)."""
    return code_digest(OFF_THE_FORWARD)[:12]


def code_record() -> dict[str, str]:
    """The library code a section measures, recorded with it: ``forward_code``, compared with
    today's when the page is rendered, and ``commit``, the checkout's commit (``+changes`` where
    ``pip_adapter`` differs from it), to name that code on the page (none outside a git
    checkout)."""
    record = {"forward_code": forward_code()}
    git = ["git", "-C", str(ROOT)]
    try:
        head = subprocess.run([*git, "rev-parse", "--short=7", "HEAD"], capture_output=True)
        changed = subprocess.run([*git, "diff", "--quiet", "HEAD", "--", "pip_adapter"])
    except OSError:  # no git
        return record
    if head.returncode == 0:
        record["commit"] = head.stdout.decode().strip() + "+changes" * (changed.returncode != 0)
    return record


def dated(record: dict) -> str:
    """A section's date, and "(measured on earlier code: ...)" when the library's code it
    recorded (``code_record``) is not today's or it recorded none (sections measured before
    the code was recorded): a reader can tell which numbers predate today's code."""
    if record.get("forward_code") == forward_code():
        return record["date"]
    if "commit" in record:
        what = f"commit {record['commit']}"
    elif "forward_code" in record:
        what = f"code digest {record['forward_code']}"
    else:
        what = "its code not recorded"
    return f"{record['date']} (measured on earlier code: {what})"


def settings(args) -> dict:
    return {
        **code_record(),
        "date": date.today().isoformat(),
        "machine": describe_machine(args.threads)
        if args.device == "cpu"
        else torch.cuda.get_device_name(),
        "device": args.device,
        "threads": args.threads,
        "repeats": args.repeats,
        "rounds": args.rounds,
        "torch": torch.__version__,
    }


def ratio(pair: list[float]) -> float:
    return pair[1] / pair[0]


def judged(value: float, goal: float) -> str:
    return "met" if value <= goal else f"**not met** (by {value - goal:.3f})"


def verdict(name: str, size: dict) -> str:
    """Each goal met or not by the median (time) or the one measurement (memory); a time goal
    inside the rounds' spread is said so: this run cannot settle it."""
    time_goal, memory_goal = GOALS[name]
    spread = time_spread(size)
    goals = [f"≤ {time_goal:.2f}x time: {judged(spread.median, time_goal)}"]
    if spread.low < spread.high and spread.contains(time_goal):
        goals[0] += ", inside the spread"
    if memory_goal is not None:
        goals.append(f"≤ {memory_goal:.2f}x memory: {judged(ratio(size['peak_mib']), memory_goal)}")
    return "; ".join(goals)


def time_cell(measured: dict) -> str:
    """``median ratio`` in bold with the rounds' range beside it."""
    spread = time_spread(measured)
    if spread.low == spread.high:
        return f"**{spread.median:.3f}x**"
    return f"**{spread.median:.3f}x** ({spread.low:.3f}-{spread.high:.3f})"


def protocol(measured: dict) -> str:
    rounds = measured.get("rounds")
    best = f"best of {measured['repeats']}"
    return f"{rounds} rounds, {best} each" if rounds else best


def backbone_rows(results: dict) -> list[str]:
    rows = []
    for name in BACKBONES:
        entry = results["backbones"].get(name)
        if entry is None:
            continue
        label = {"nafnet": "NAFNet", "restormer": "Restormer", "swinir": "SwinIR"}[name]
        n, extra = entry["backbone_params"], entry["adapter_params"]
        for size, m in entry["sizes"].items():
            (f0, f1), (t0, t1), (m0, m1) = m["gflops"], m["seconds"], m["peak_mib"]
            rows.append(
                f"| {label} | {size}² | {n / 1e6:.2f}M | +{extra / 1e3:.0f}K "
                f"({100 * extra / n:.2f}%) | {f0:.1f} → {f1:.1f} ({f1 / f0:.3f}x) | "
                f"{t0 * 1e3:.0f} → {t1 * 1e3:.0f} ms, {time_cell(m)} | "
                f"{m0:.0f} → {m1:.0f} MiB ({m1 / m0:.2f}x) | {verdict(name, m)} | "
                f"{dated(entry['measured'])}, {entry['measured']['threads']} threads, "
                f"{protocol(entry['measured'])} |"
            )
    return rows


def tried_rows(tried: dict) -> list[str]:
    rows = [
        "| NAFNet + PIP | adapter params | time 128² | time 256² | memory 128² | memory 256² |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label in TRIED:
        row = tried["rows"].get(label)
        if row is None:
            continue
        cells = [time_cell(row["sizes"][str(s)]) for s in SIZES]
        cells += [f"{row['sizes'][str(s)]['memory_ratio']:.2f}x" for s in SIZES]
        shown = f"**{label} (default)**" if label == DEFAULT_TRIED else label
        rows.append(f"| {shown} | {row['adapter_params'] / 1e3:.0f}K | " + " | ".join(cells) + " |")
    return rows


def compiled_rows(compiled: dict) -> list[str]:
    rows = ["| input | plain NAFNet | NAFNet + PIP | time |", "| --- | ---: | ---: | ---: |"]
    for size, m in compiled["sizes"].items():
        t0, t1 = m["seconds"]
        rows.append(f"| {size}² | {t0 * 1e3:.0f} ms | {t1 * 1e3:.0f} ms | {time_cell(m)} |")
    return rows


def instruction_rows(counted: dict) -> list[str]:
    sizes = list(counted["sizes"])
    rows = [
        "| unit (stage) | " + " | ".join(f"instructions {s}²" for s in sizes) + " |",
        "| --- |" + " ---: |" * len(sizes),
    ]
    keys = list(counted["sizes"][sizes[0]])
    for key in keys:
        cells = [f"{counted['sizes'][s][key] / 1e6:.1f}M" for s in sizes]
        rows.append(f"| {key.replace('/', '.')} | " + " | ".join(cells) + " |")
    totals = [f"**{sum(counted['sizes'][s].values()) / 1e6:.1f}M**" for s in sizes]
    rows.append("| all units | " + " | ".join(totals) + " |")
    return rows


def operator_rows(operators: dict) -> list[str]:
    rows = [
        "| unit (stage) | operators, paper → compact | distinct operators | CPU time |",
        "| --- | ---: | ---: | ---: |",
    ]
    paper, compact = operators["paper"], operators["compact"]
    for key in paper:
        a, b = paper[key], compact[key]
        rows.append(
            f"| {key.replace('/', '.')} | {a['operators']:.0f} → {b['operators']:.0f} | "
            f"{a['distinct']:.0f} → {b['distinct']:.0f} | {a['ms']:.1f} → {b['ms']:.1f} ms |"
        )
    return rows


def gpu_lines(out: Path) -> list[str]:
    """The GPU goal: each backbone's fastest mode with PIP, from benchmarks/gpu_latency.py's
    results in ``out`` (none when it has not run)."""
    path = out / "gpu_latency_cuda.json"
    if not path.is_file():
        return []
    rows = json.loads(path.read_text())
    gpu = rows[-1]["machine"]  # the GPU of the last row measured, whose rows fastest_rows takes
    lines = [
        "",
        "## On a GPU (batch 1)",
        "",
        f"From `python benchmarks/gpu_latency.py --device cuda` on an {gpu} "
        "([gpu_latency_cuda.md](gpu_latency_cuda.md): every mode, plain and with PIP timed "
        "interleaved in the same mode; eager times in [overhead_cuda.md](overhead_cuda.md)). "
        "Eager PyTorch pays for each small kernel of the units at batch 1; the fastest mode "
        "with PIP for each backbone, how to use it in [deploy.md](../deploy.md#on-a-gpu). "
        f"Goal (issue 14): ≤ {GPU_GOAL:.2f}x at 256² in the best mode.",
        "",
        "| backbone | input | fastest mode with PIP | plain | + PIP | ratio |",
        "| --- | --- | --- | ---: | ---: | ---: |",
    ]
    best = fastest_rows(rows, machine=gpu)
    for (name, size), row in sorted(best.items(), key=lambda item: (item[0][1], item[0][0])):
        plain, pip = row["seconds"]
        goal = ""
        if size == 256:
            goal = ": met" if pip / plain <= GPU_GOAL else ": **not met**"
        lines.append(
            f"| {name} | {size}² | {row['mode']} | {plain * 1e3:.2f} ms | {pip * 1e3:.2f} ms | "
            f"**{pip / plain:.3f}x**{goal} |"
        )
    return lines


def render(results: dict, device: torch.device, args) -> str:
    lines = [
        f"# PIP overhead, default presets ({device.type})",
        "",
        f"Command: `python benchmarks/overhead.py --device {args.device} --threads 2 "
        "--rounds 7 --repeats 5` (a row can be remeasured alone with "
        "`--backbones NAME`; each row and table says when, with how many threads, rounds and "
        "repeats it was measured). Time: one forward pass (batch 1, inference mode), plain and "
        "with PIP interleaved in one process, in rounds: each round keeps each network's best "
        "of its repeats, the times shown are each network's median over the rounds, and the "
        "ratio is the median of the rounds' ratios (taken round by round, so it can differ a "
        "little from the quotient of the times shown) with the lowest and highest round beside "
        "it (a goal inside that range is not settled by the run). Each row and section records "
        "the library's code it measured (a digest of the `pip_adapter` modules a timed network "
        "is built and run with, all but training, data, the command line, export, files and "
        "the sensor, and the commit); "
        "one measured on other code than today's, or before the code was recorded, says "
        '"(measured on earlier code: ...)" beside its date: its numbers may not hold for '
        "today's code. FLOPs count a multiply-add as 2; "
        "forward memory is the peak above the memory before the pass, after a warm-up pass. "
        "Goals from issue 14.",
        "",
        "| backbone | input | params | PIP adds | GFLOPs | time | forward memory | goal | "
        "measured |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
        *backbone_rows(results),
    ]
    if "authors_restormer" in results:
        n = results["authors_restormer"]
        lines += [
            "",
            f"For comparison, the authors' configuration on Restormer (prompt dims 64/128/256, "
            f"prompt sizes 64/32/16, same three stages, our unit) adds {n / 1e3:.0f}K "
            f"parameters; the authors' own release adds 11.96% (3.12M).",
        ]
    lines += adopted_lines(results)
    lines += tried_default_lines(results)
    lines += other_units_lines(results)
    lines += nafnet_next_lines(results)
    lines += candidate_lines(results)
    if "tried" in results:
        tried = results["tried"]
        light = (
            "; timed in the goal's protocol as a candidate for NAFNet's default: above, after "
            "the goal table"
            if LIGHT_TRIED in results.get("candidates", {})
            else ", so not the default"
        )
        lines += [
            "",
            "## What was tried (NAFNet, official width-32)",
            "",
            f"{tried['settings']['machine']}; {dated(tried['settings'])}. Time and forward "
            "memory relative to the plain NAFNet, all rows timed interleaved in one process "
            f"({protocol(tried['settings'])}; median ratio, lowest-highest round). The quality "
            "of the two designs is compared by `python benchmarks/quality.py --variants "
            "pip,paper_design`. On this shared 2-core machine single best-of runs of the same "
            "code moved by up to 0.17x between runs minutes apart: rows whose ranges overlap "
            "are not ranked by this run. The default row is a timing of its own, with every "
            "design interleaved, separate from the table above (the default alone against the "
            "plain network, in another process): the two differ by the run-to-run spread, and "
            "the table above holds the goal's measurement.",
            "",
            "The paper design spends most of its time on the full-resolution stage: there the "
            "universal prompt's 3×3 convolution, the prompt-to-feature attention (q, k, v "
            "projections) and above all the dual-gated feed-forward (expansion 2.66, five "
            "tensors of 2.66 times the stage's width) run at every pixel. The compact design "
            '(`design="compact"`, the default) computes all of that on the prompt\'s s×s grid '
            "(the feature averaged onto it) and adds the bilinearly resized update to the "
            "feature; its cost no longer grows with the image beyond resampling and the "
            "per-pixel feed-forward. That per-pixel step is computed with fewer passes over the "
            "full-resolution tensors than its step-by-step form, with the same outputs (pinned "
            "by tests/test_unit.py to the formula written with plain torch operations): "
            "pooling onto the grid and resizing back are cached matrix products (the resize "
            "adds into the feature in the product), the feed-forward runs channels-last with "
            "its output projection adding the residual and writing the feature's layout back "
            "(at inference into the residual's own memory, and the dual gate's second product "
            "into its first: no copies, no further full-resolution tensors). "
            "On the grid, the same outputs to rounding in fewer operators: the "
            "prompt-to-prompt block's two output projections add their residuals in their "
            "own products and write "
            "channels-last (the layer norms after them then read contiguous memory instead of "
            "copying it), the content projection takes the degradation-aware prompt folded "
            "into its weight, top-m attention shares one softmax (`pip_adapter.layers."
            "pointwise`), and at inference the prompt-to-feature attention stacks its "
            "queries and keys to take their norms in one reduction (`attend_small`: one "
            "operator fewer per unit, about 1% fewer instructions; its time saving is inside "
            "a unit's own timing spread). "
            "At inference (gradients off) each unit reuses what depends on its parameters "
            "alone, the prompt-to-prompt queries of the basic prompt with the logits' scale "
            "multiplied in, for as long as those parameters keep their values (compared bit by "
            "bit once per forward pass for all the units, outside them; "
            "`pip_adapter.caching.ParameterCache` and `CacheGroup`); the top-m rank masks are "
            "cached per size. The per-pixel layer norm reads the feature channels-last, a "
            "transposing copy of the stage's width at every pixel (at 256² about as long as the "
            "layer norm itself). At batch 1 on the CPU the unit makes that copy with torch's "
            "2-D blocked transpose, not the 4-D copy the layer norm would make of the permuted "
            "view (whose every vector gathers its channels from as many cache lines); the same "
            "values. The 2-D copy runs on one thread, the 4-D copy on all (on more threads "
            "than timed here the balance may turn); session 12 timed whole models only, where "
            "every round's range included 1.000x; "
            f"{transpose_sentence(results)}. "
            "Lighter "
            "feed-forwards, the channels-last layout, and dropping the full-resolution unit "
            "(0.16 dB lower in an earlier placement ablation of the quality benchmark, with "
            "the paper design and the L1 recipe; not rerun since) each "
            "recover only part of the cost. Cheaper compact units were measured for quality "
            "too (rows marked with their `benchmarks/quality.py` variant; results in the "
            "ablation table of [quality.md](quality.md)): 8×8 basic prompts (a quarter of "
            "the grid work), the same with a per-pixel feed-forward of half width (as good over "
            "two training seeds there, but 0.55 dB worse as a frozen-backbone adapter, "
            f"[transfer.md](transfer.md){light}), and the "
            "per-pixel feed-forward on the feature average-pooled by 2 with its update resized "
            "back (`feature_ffn_stride=2`: a quarter of the per-pixel work, but a pixel's "
            "update then follows its neighbourhood's mean, and low light, whose tone mapping "
            "is a per-pixel curve, lost most).",
            "",
            *tried_rows(tried),
        ]
    if "ffn_rank" in results:
        lines += ["", ffn_rank_sentence(results["ffn_rank"])]
    if "strided_resampling" in results:
        lines += ["", strided_sentence(results["strided_resampling"])]
    if "malloc" in results:
        lines += malloc_lines(results["malloc"])
    if "compiled" in results:
        compiled = results["compiled"]
        lines += [
            "",
            "## Compiled (NAFNet, official width-32)",
            "",
            "Both networks compiled with `torch.compile(model, dynamic=False)` (inductor), the "
            "one-liner of docs/deploy.md, timed interleaved after their first (compiling) call "
            f"({compiled['settings']['machine']}; {dated(compiled['settings'])}, "
            f"{protocol(compiled['settings'])}; `--compile`). Compiling takes minutes per "
            "input size on this CPU (benchmarks/export.md).",
            "",
            *compiled_rows(compiled),
        ]
    if device.type == "cpu":
        lines += gpu_lines(args.out)
    counted = results.get("instructions", {}).get("nafnet")
    if counted is not None:
        lines += [
            "",
            "## Instructions per unit (NAFNet, callgrind)",
            "",
            "What each unit of the default preset executes per forward pass at inference, "
            "counted by Valgrind's callgrind at one thread (`--instructions nafnet "
            "--instruction-sizes 128,256`; each unit rebuilt alone with the model's weights, "
            "its stage's feature as input, counted after a warm-up call; "
            f"{dated(counted['measured'])}, torch {counted['measured']['torch']}). Unlike "
            "the time, the count does not move with the machine's load, so it ranks changes "
            "to the unit whatever else runs; it weighs an operation by its instructions, not "
            "by its memory traffic or its page faults (which it does not see). The whole "
            "networks are not counted: under callgrind on this machine the plain NAFNet alone "
            "takes hours.",
            "",
            *instruction_rows(counted),
        ]
    if "operators" in results:
        lines += [
            "",
            "## Operators per unit (NAFNet, 128², one forward pass, torch.profiler)",
            "",
            "Operators the unit calls directly (aliasing views excluded; each is at least one "
            "kernel on a GPU, where at batch 1 their launches dominate), paper design → compact "
            "design, and the unit's CPU time under the profiler. Inference mode, after a "
            "warm-up pass: each unit's prompt-to-prompt queries come from its inference cache, "
            "which the model checks once per forward pass for all its units, outside them (one "
            "concatenation and one comparison; a unit called alone checks its own, two "
            "operators more). "
            + (
                f"Measured {dated(results['operators']['measured'])}."
                if "measured" in results["operators"]
                else "Its date and code were not recorded."
            ),
            "",
            *operator_rows(results["operators"]),
        ]
    return "\n".join(lines) + "\n"


def stored(json_path: Path) -> dict:
    """The measurements kept in ``json_path`` (none, or the layout before per-row measurements:
    the backbones' rows start again; the whole-model transpose timing of session 12 is no
    longer read)."""
    results = json.loads(json_path.read_text()) if json_path.is_file() else {}
    results.pop("transpose", None)
    return results if "backbones" in results else {"backbones": {}}


def put_in(results: dict, path: tuple[str, ...], value: Any) -> None:
    """``results[path[0]][path[1]]... = value``, making the dictionaries on the way."""
    *parents, key = path
    for part in parents:
        results = results.setdefault(part, {})
    results[key] = value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="runs per round, best kept")
    parser.add_argument(
        "--rounds", type=int, default=7, help="rounds; ratios: median and range over them"
    )
    parser.add_argument(
        "--instructions",
        default="",
        help="nafnet: also count its preset's units in executed instructions (callgrind, "
        "1 thread; minutes per unit and size)",
    )
    parser.add_argument(
        "--instruction-sizes", default="128,256", help="input sizes to count instructions at"
    )
    parser.add_argument(
        "--backbones", help=f'backbones to time (default: {",".join(BACKBONES)}; "": none)'
    )
    parser.add_argument("--no-tried", action="store_true", help="skip the NAFNet designs")
    parser.add_argument(
        "--candidate",
        default="",
        help="also time this NAFNet design (a What-was-tried label) as the goal table times the "
        "default, as a candidate for the default",
    )
    parser.add_argument(
        "--no-operators", action="store_true", help="skip the operator counts per unit"
    )
    parser.add_argument(
        "--compile", action="store_true", help="also time NAFNet compiled, plain and with PIP"
    )
    parser.add_argument(
        "--transpose",
        action="store_true",
        help="also time the per-pixel layer norms' copies: the 2-D blocked transpose the units "
        "make against the 4-D copy of the permuted view",
    )
    parser.add_argument(
        "--ffn-rank",
        type=int,
        default=0,
        help="also time NAFNet + PIP with each degradation's own feed-forward update of this "
        "rank (degradation_ffn_rank), against the default",
    )
    parser.add_argument(
        "--strided-resampling",
        action="store_true",
        help="also time NAFNet's strided unit and NAFNet + PIP with the resampling before the "
        "change (matrix products) against today's",
    )
    parser.add_argument(
        "--malloc-keep",
        action="store_true",
        help="also time NAFNet, plain and with PIP, with glibc's default allocator settings and "
        "with freed memory kept (MALLOC_KEEP), counting page faults per forward pass",
    )
    parser.add_argument(
        "--quality-runs",
        type=Path,
        help="record each candidate's quality from benchmarks/quality.py's kept results in this "
        "folder (its variant's two training seeds; e.g. runs/quality); without --candidate, "
        "nothing is timed: the page is rendered again from the JSON",
    )
    parser.add_argument(
        "--adopt",
        default="",
        help="a candidate NAFNet's preset now builds: its timing becomes the goal table's NAFNet "
        "row (without --candidate, nothing is timed)",
    )
    parser.add_argument(
        "--page", action="store_true", help="render the page from the JSON, timing nothing"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    parser.add_argument("--memory-probe", help=argparse.SUPPRESS)
    parser.add_argument("--malloc-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--instruction-probe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_probe:
        memory_probe(args.memory_probe)
        return
    if args.instruction_probe:
        instruction_probe(args.instruction_probe)
        return
    if args.malloc_child:
        malloc_child(args.repeats)
        return
    device = torch.device(args.device)
    # recording quality or an adoption alone re-renders the page from the JSON: the goal
    # table's timings stay
    recording = (args.quality_runs is not None or bool(args.adopt) or args.page) and not (
        args.candidate
    )
    timers = {
        "--backbones": args.backbones,
        "--instructions": args.instructions,
        "--compile": args.compile,
        "--transpose": args.transpose,
        "--ffn-rank": args.ffn_rank,
        "--malloc-keep": args.malloc_keep,
        "--strided-resampling": args.strided_resampling,
    }
    given = [flag for flag, value in timers.items() if value]
    if recording and given:
        parser.error(
            "--page, --quality-runs or --adopt without --candidate times nothing (it renders "
            f"the page from the JSON); {', '.join(given)} would time: drop them, or run them on "
            "their own"
        )
    if recording:
        args.no_tried = args.no_operators = True
    backbones = ",".join(BACKBONES) if args.backbones is None and not recording else args.backbones
    names = [n for n in (backbones or "").split(",") if n]
    counted = [n for n in args.instructions.split(",") if n]
    unknown = sorted(set(names + counted) - set(BACKBONES))
    if unknown:
        parser.error(f"unknown backbones {unknown}; choose from {', '.join(BACKBONES)}")
    if args.ffn_rank < 0:
        parser.error(f"--ffn-rank must be 0 (not timed) or a positive rank, got {args.ffn_rank}")
    if args.malloc_keep and device.type != "cpu":
        parser.error("--malloc-keep times glibc's allocator, which serves the CPU's tensors")
    if args.transpose and device.type != "cpu":
        parser.error("--transpose times the CPU's copies (the units make the 2-D one on the CPU)")
    designs = [label for label, (_, edit) in TRIED.items() if edit is None]  # inject_pip's own
    if args.candidate and args.candidate not in designs:
        parser.error(f"unknown --candidate {args.candidate!r}; choose one of: {'; '.join(designs)}")
    if set(counted) - {"nafnet"}:
        parser.error(f"--instructions counts the NAFNet preset's units only; got {counted}")
    suffix = "" if device.type == "cpu" else f"_{device.type}"
    json_path = args.out / f"overhead{suffix}.json"
    results = stored(json_path)
    measured: dict[tuple[str, ...], Any] = {}  # what this run puts in, by key path

    def put(path: tuple[str, ...], value: Any) -> None:
        measured[path] = value
        put_in(results, path, value)

    for name in names:
        put(("backbones", name), measure_backbone(name, args, device))
    for name in counted:
        sizes = [int(size) for size in args.instruction_sizes.split(",")]
        put(("instructions", name), measure_instructions(name, sizes))
    if "restormer" in names:
        _, authors = build("restormer", "authors")
        put(("authors_restormer",), sum(p.numel() for p in authors.pip_units.parameters()))
    if args.candidate:
        put(("candidates", args.candidate), measure_candidate(args.candidate, args, device))
    if args.quality_runs is not None:
        for label in results.get("candidates", {}):
            quality = candidate_quality(label, args.quality_runs)
            if quality is not None:
                put(("candidates", label, "quality"), quality)
                print("quality", label, quality, flush=True)
    if args.adopt:
        try:
            put(("backbones", "nafnet"), adopted_row(results, args.adopt))
        except ValueError as error:
            parser.error(str(error))
    if not args.no_tried:
        put(("tried",), measure_tried(args, device))
    if args.compile:
        put(("compiled",), measure_compiled(args, device))
    if args.transpose:
        put(("transposed_tokens",), measure_transpose(args, device))
    if args.ffn_rank:
        put(("ffn_rank",), measure_ffn_rank(args, device))
    if args.strided_resampling:
        put(("strided_resampling",), measure_strided_resampling(args, device))
    if args.malloc_keep:
        put(("malloc",), measure_malloc(args))
    if not args.no_operators:
        put(("operators",), measure_operators(device))
    # the file as it is now (another run may have written sections meanwhile), with this run's
    results = stored(json_path)
    for path, value in measured.items():
        put_in(results, path, value)
    args.out.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    page = render(results, device, args)
    (args.out / f"overhead{suffix}.md").write_text(page)
    print(page)


if __name__ == "__main__":
    main()
