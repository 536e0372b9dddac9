"""Local pooling (TLC) on whole photos: the quality benchmark's PIP networks, no retraining.

The networks train on 64² crops; on a whole photo NAFNet's channel attention pools the whole
photo (``nn.AdaptiveAvgPool2d(1)``). ``pa.local_pooling`` makes each pool a mean over a window
of input pixels (Chu et al. 2022, "TLC"). This script measures it on the quality benchmark's
PIP bundles (one per training seed; network + sensor, as ``benchmarks/quality.py`` leaves them
in ``runs/quality/<variant>/adapter``), for every window and border handling against the global
pools of today:

1. the choice: the five-degradation average with labels on the validation photos
   (``output_strength.strength_photos()``; no held-out photo plays a part), two-seed mean;
2. the judgement: both held-out sets, labels and blind, every degradation and clean photos,
   and the adoption rule fixed before measuring (``RULE``).

Run:  python benchmarks/local_pooling.py [--bundles A,B] [--windows 64,96,128]
      [--edges shift,replicate] [--limit N] [--only NAME] [--threads 1]
Each (bundle, setting, part) is kept in ``runs/local_pooling/`` and reused while the bundle's
files, the library's code and the held-out draws are the same; ``--limit N`` measures at most
N and stops, ``--only NAME`` measures for one bundle (short jobs side by side). Writes
docs/benchmarks/local_pooling.md once all are in.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

import torch
from digests import code_digest, files_digest
from machine import describe_machine, verdict
from output_strength import DESCRIPTION as VALIDATION_PHOTOS
from output_strength import validation_pairs
from quality import DEGRADATIONS, EVAL_SETS, WITH_CLEAN, set_name

import pip_adapter as pa
from pip_adapter.bundle import load_bundle
from pip_adapter.conditioning import CLEAN
from pip_adapter.data import build_eval_set
from pip_adapter.files import write_json, write_text
from pip_adapter.pooling import EDGES

ROOT = Path(__file__).resolve().parents[1]
GLOBAL = "global"
MODES = {"labels": True, "blind": False}  # how the held-out photos are steered: conditioned?
MAX_LOSS_DB = 0.1  # the rule: no degradation (clean included) loses more than this
EVAL_SEED = 0  # the draws of the held-out sets' degradations
RULE = (
    "Fixed before measuring: the window and border handling are chosen on the validation "
    "photos alone (best two-seed mean of the five-degradation average with labels; ties: the "
    "larger window). They become the restoration default only if, on the two-seed mean, for "
    "labels and for blind separately, the average improves on both held-out sets and no "
    f"degradation, clean photos included, loses more than {MAX_LOSS_DB} dB on either set."
)


def setting_name(window: int, edges: str) -> str:
    return f"{edges} {window}"


def measure(bundle: Path, setting: str, part: str) -> dict:
    """PSNR per degradation: the validation photos with labels, or both held-out sets with
    labels and blind."""
    model = load_bundle(bundle).eval()
    handle = None
    if setting != GLOBAL:
        edges, window = setting.split()
        handle = pa.local_pooling(model, int(window), edges=edges)
    try:
        if part == "validation":
            return {"validation": pa.evaluate(model, validation_pairs(DEGRADATIONS))}
        result = {}
        for split in EVAL_SETS:
            data = build_eval_set(split, WITH_CLEAN, seed=EVAL_SEED)
            for mode, conditioned in MODES.items():
                result[f"{split} {mode}"] = pa.evaluate(model, data, conditioned=conditioned)
        return result
    finally:
        if handle is not None:
            handle.remove()


def load_or_measure(
    bundle: Path, setting: str, part: str, runs: Path, budget: list[int]
) -> dict | None:
    """The kept ``part`` of ``setting`` on ``bundle``, measured if missing and ``budget``
    allows (``None`` otherwise)."""
    path = runs / bundle.parent.name / f"{setting.replace(' ', '_')}-{part}.json"
    key = {
        "bundle": files_digest(bundle),
        "setting": setting,
        "part": part,
        "code": code_digest(),  # the pools, and the network, sensor and evaluation around them
        "eval_seed": EVAL_SEED,
    }
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved["key"] == key:
            return saved["result"]
    if budget[0] <= 0:
        return None
    budget[0] -= 1
    print(f"measuring {bundle.parent.name}: {setting}, {part}", flush=True)
    result = measure(bundle, setting, part)
    write_json(path, {"key": key, "result": result})
    return result


def psnr_of(result: dict, part: str, degradation: str) -> float:
    return result[part][degradation]["psnr"]


def mean_psnr(results: dict, setting: str, part: str, degradation: str) -> float:
    """The two-seed (every bundle's) mean PSNR."""
    values = [psnr_of(r[setting], part, degradation) for r in results.values()]
    return sum(values) / len(values)


def choose(results: dict, settings: list[str]) -> str:
    """The setting with the best mean validation average (ties: the larger window)."""
    local = [s for s in settings if s != GLOBAL]
    return max(
        local,
        key=lambda s: (round(mean_psnr(results, s, "validation", "average"), 4), int(s.split()[1])),
    )


def losses(results: dict, chosen: str, part: str) -> dict[str, float]:
    """Per degradation (clean included) the chosen setting's mean PSNR minus the global's."""
    return {
        d: mean_psnr(results, chosen, part, d) - mean_psnr(results, GLOBAL, part, d)
        for d in (*DEGRADATIONS, CLEAN, "average")
        if d in results[next(iter(results))][GLOBAL][part]
        and mean_psnr(results, GLOBAL, part, d) != float("inf")
    }


def judge(results: dict, chosen: str) -> tuple[bool, list[str]]:
    """The rule's verdict and one line per (set, mode)."""
    lines, adopted = [], True
    for split in EVAL_SETS:
        for mode in MODES:
            gains = losses(results, chosen, f"{split} {mode}")
            worst = min((d for d in gains if d != "average"), key=lambda d: gains[d])
            ok = gains["average"] > 0 and gains[worst] >= -MAX_LOSS_DB
            adopted &= ok
            lines.append(
                f"- {set_name(split)}, {mode}: average {gains['average']:+.2f} dB, worst "
                f"{worst} {gains[worst]:+.2f} dB: {verdict(ok)}"
            )
    return adopted, lines


def choice_table(results: dict, settings: list[str], chosen: str) -> list[str]:
    names = list(results)
    lines = [
        "| setting | " + " | ".join(names) + " | mean |",
        "| --- |" + " ---: |" * (len(names) + 1),
    ]
    for s in settings:
        cells = [f"{psnr_of(results[n][s], 'validation', 'average'):.2f}" for n in names]
        mark = f"**{s}** (chosen)" if s == chosen else s
        mean = mean_psnr(results, s, "validation", "average")
        lines.append(f"| {mark} | " + " | ".join(cells) + f" | {mean:.2f} |")
    return lines


def edge_note(settings: list[str], chosen: str) -> list[str]:
    """A line when the choice is the largest window tried: the best may lie beyond the grid."""
    windows = [int(s.split()[1]) for s in settings if s != GLOBAL]
    if int(chosen.split()[1]) < max(windows):
        return []
    return [
        f"The chosen window is the largest tried ({max(windows)} px); larger ones were not "
        "part of the rule.",
        "",
    ]


def held_out_table(results: dict, chosen: str, split: str) -> list[str]:
    """Per degradation: input, then global and the chosen setting (labels, blind), seed means."""
    first = results[next(iter(results))][GLOBAL]
    lines = [
        f"| degradation | input | labels, global | labels, {chosen} | blind, global | "
        f"blind, {chosen} |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for d in (*DEGRADATIONS, "average", CLEAN):
        source = first[f"{split} labels"][d]
        cells = ["" if d == CLEAN else f"{source['input_psnr']:.2f}"]
        for mode in MODES:
            part = f"{split} {mode}"
            before, after = (mean_psnr(results, s, part, d) for s in (GLOBAL, chosen))
            if before == float("inf"):  # clean with its label: the input itself
                cells += ["identity", "identity"]
            else:
                cells += [f"{before:.2f}", f"{after:.2f} ({after - before:+.2f})"]
        lines.append(f"| {d} | " + " | ".join(cells) + " |")
    return lines


PARTS_JUDGED = [f"{split} {mode}" for split in EVAL_SETS for mode in MODES]


def gain_cells(results: dict, setting: str) -> list[str]:
    """Per held-out set and mode: the gain of the average and of haze over the global pools."""
    cells = []
    for part in PARTS_JUDGED:
        gains = losses(results, setting, part)
        cells.append(f"{gains['average']:+.2f} / {gains['haze']:+.2f}")
    return cells


def gains_table(rows: dict[str, list[str]], first: str) -> list[str]:
    head = [f"{set_name(p.split()[0])}, {p.split()[1]}" for p in PARTS_JUDGED]
    return [
        f"| {first} | " + " | ".join(head) + " |",
        "| --- |" + " ---: |" * len(PARTS_JUDGED),
        *(f"| {name} | " + " | ".join(cells) + " |" for name, cells in rows.items()),
    ]


def write_page(results: dict, settings: list[str], command: str, threads: int) -> str:
    chosen = choose(results, settings)
    adopted, rule_lines = judge(results, chosen)
    names = ", ".join(f"`{n}`" for n in results)
    lines = [
        "# Local pooling on whole photos (TLC), no retraining",
        "",
        f"Command: `{command}` ({date.today().isoformat()}; {describe_machine(threads)}).",
        "",
        "The quality benchmark's NAFNet-small + PIP ([quality.md](quality.md)) trains on 64² "
        "crops; restoring a whole photo, NAFNet's simplified channel attention pools the whole "
        "photo (`nn.AdaptiveAvgPool2d(1)`), statistics it never saw in training. "
        "`pa.local_pooling(model, window)` makes every such pool a mean over `window` input "
        'pixels around each pixel (Chu et al. 2022, "Improving Image Restoration by Revisiting '
        "Global Information Aggregation\"), at inference, on the trained weights. PIP's own "
        "units are left as they are (their attention spans the whole prompt grid: not a pool "
        "that can be swapped). Networks: the PIP bundles "
        f"{names} (one per training seed; each with the sensor it is steered by blind), "
        "every number the mean over them unless a column names one.",
        "",
        RULE,
        "",
        "## The choice, on validation photos",
        "",
        "Average PSNR over the five degradations with labels, on the validation photos "
        f"{VALIDATION_PHOTOS.removeprefix('fitted after training on validation photos ')}:",
        "",
        *choice_table(results, settings, chosen),
        "",
        *edge_note(settings, chosen),
        "## The held-out sets, labels and blind",
        "",
    ]
    for split, description in EVAL_SETS.items():
        lines += [f"### {description}", "", *held_out_table(results, chosen, split), ""]
    lines += [
        "Clean photos: PSNR of the output against the photo itself (restored under its label "
        "`clean` the model returns its input).",
        "",
        "Gain over the global pools, average / haze (dB), every setting (two-seed mean):",
        "",
        *gains_table({s: gain_cells(results, s) for s in settings if s != GLOBAL}, "setting"),
        "",
        f"The same for `{chosen}`, per training seed:",
        "",
        *gains_table({n: gain_cells({n: results[n]}, chosen) for n in results}, "bundle"),
        "",
        "Time and memory: not measured here (timings need a quiet machine). The box means "
        "cost a few element-wise passes over each pooled feature, whatever the window "
        "(running sums), and hold a few float32 copies of that feature while they run, where "
        "the global pool holds none: on photos much larger than the crops, that memory is "
        "the cost to watch.",
        "",
        "## Verdict",
        "",
        *rule_lines,
        "",
        (
            f"**`{chosen}` meets the rule: the restoration default.**"
            if adopted
            else f"**`{chosen}` does not meet the rule: local pooling stays an option** "
            "(`pa.local_pooling`, `pip-adapter restore --local-pooling`)."
        ),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    runs = ROOT / "runs" / "quality"
    parser.add_argument(
        "--bundles",
        default=f"{runs / 'pip' / 'adapter'},{runs / 'pip_seed1' / 'adapter'}",
        help="PIP bundles (network + sensor), one per training seed",
    )
    parser.add_argument("--windows", default="64,96,128", help="windows, input pixels")
    parser.add_argument("--edges", default=",".join(EDGES), help=f"border handling {EDGES}")
    parser.add_argument("--limit", type=int, default=1000, help="measure at most N settings")
    parser.add_argument(
        "--only", help="measure for this bundle only (its folder's name); the others are read"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "local_pooling")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bundles = [Path(b) for b in args.bundles.split(",")]
    names = [bundle.parent.name for bundle in bundles]  # a bundle's results are kept under it
    if len(set(names)) < len(names):
        parser.error(f"--bundles must lie in folders of different names, got {names}")
    if args.only is not None and args.only not in names:
        parser.error(f"--only must name one of the bundles' folders {names}, got {args.only!r}")
    unknown = set(args.edges.split(",")) - set(EDGES)
    if unknown:
        parser.error(f"--edges takes {', '.join(EDGES)}, got {', '.join(sorted(unknown))}")
    windows = [int(w) for w in args.windows.split(",")]
    settings = [GLOBAL] + [setting_name(w, e) for e in args.edges.split(",") for w in windows]
    budget = [args.limit]
    results: dict = {bundle.parent.name: {s: {} for s in settings} for bundle in bundles}

    def gather(part: str, wanted: list[str]) -> int:
        """Load or measure ``part`` of the ``wanted`` settings; how many are still missing."""
        missing = 0
        for bundle in bundles:
            for setting in wanted:
                allowed = budget if not args.only or bundle.parent.name == args.only else [0]
                result = load_or_measure(bundle, setting, part, args.runs, allowed)
                if result is None:
                    missing += 1
                else:
                    results[bundle.parent.name][setting].update(result)
        return missing

    # the choice first (validation), then the held-out sets of the global pools and of the
    # chosen setting (the verdict), then every other setting's
    missing = gather("validation", settings)
    if not missing:
        chosen = choose(results, settings)
        print(f"chosen on the validation photos: {chosen}", flush=True)
        missing += gather("held-out", [GLOBAL, chosen])
        missing += gather("held-out", [s for s in settings if s not in (GLOBAL, chosen)])
    if missing:
        print(f"{missing} measurements left: run again")
        return
    command = " ".join(["python", "benchmarks/local_pooling.py", *sys.argv[1:]])
    page = write_page(results, settings, command, args.threads)
    write_text(ROOT / "docs" / "benchmarks" / "local_pooling.md", page)
    print(page)


if __name__ == "__main__":
    main()
