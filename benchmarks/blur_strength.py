"""Blur's output strength per image, from how blurred its input looks (``PIPConfig.
blur_strength``, issue 19): the quality benchmark's PIP network never deblurs past its input,
and its blur output is a near-identity that damages some photos and helps others. The line
``clip(a0 + a1 · e(x), 0, 1)``, ``e`` the input's blur effect, is fitted after training on blur
draws of the validation photos (``output_strength.strength_photos()``), beside one constant
blur strength (``output_strength``) fitted on the same images, and judged on the validation
photos' own draws by a rule fixed before its numbers (notes/issue-19.md, session 18). Every
other degradation keeps full strength; blind, the sensor's blur weight carries the strength.
A second line is fitted on blind mode's outputs (every degradation and clean photos restored
through the sensor, ``calibrate_blur_strength(blind=True)``), and replaces the first one when
its own rule (session 19) holds.

Run:  python benchmarks/blur_strength.py [--runs runs/quality] [--threads 1]
It measures the PIP bundle kept by ``benchmarks/quality.py`` (``runs/quality/pip/adapter``,
with the cache quality.py reads), writes docs/benchmarks/blur_strength.md, and keeps the
bundle at the adopted line as ``runs/quality/pip/adopted`` (for sensor_accuracy.py,
haze_strength.py and local_pooling.py's ``--adapter``; removed when no line is adopted)."""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from digests import files_digest
from machine import at_least, page_head, verdict
from output_strength import strength_photos

from pip_adapter.bundle import load_bundle, save_bundle
from pip_adapter.conditioning import CLEAN
from pip_adapter.config import BLUR
from pip_adapter.data import PairedImages, build_eval_set
from pip_adapter.evaluation import average_report, evaluate
from pip_adapter.files import write_text
from pip_adapter.injection import PIPModel
from pip_adapter.training import calibrate_blur_strength, fit_blur_strength, fit_output_strength

FIT_DRAWS = (1, 2, 3, 4)  # the blur draws of the validation photos the strengths are fitted on
# the strengths compared: full (the network's own output), one fitted constant, the fitted
# line, the line fitted on blind mode's outputs
STRENGTHS = ("full", "constant", "per_image", "per_image_blind")
LABELS = {
    "full": "full (the network's output)",
    "constant": "one blur strength",
    "per_image": "per image, from the input's blur effect",
    "per_image_blind": "per image, fitted on blind mode's outputs",
}
# the rule (notes/issue-19.md, session 18), on the validation photos' seed-0 draws: blur's
# output − input with labels gains this much over full strength and the constant's margin over
# it, blind blur does not fall, the blind average and clean images through blind mode lose at
# most the last
GAIN_OVER_FULL_DB = 0.05
GAIN_OVER_CONSTANT_DB = 0.02
KEEP_DB = 0.10
# the rule for the line fitted on blind mode's outputs (notes/issue-19.md, session 19), against
# the labelled fit on the same draws: clean images through blind mode gain this much, blur with
# labels stays at or above its input, blind blur and the blind average lose at most the second
BLIND_CLEAN_GAIN_DB = 0.20
BLIND_KEEP_DB = 0.05


@torch.no_grad()
def fit(model: PIPModel, degradations: Sequence[str]) -> dict[str, tuple[float, float]]:
    """The strength lines ``(a0, a1)`` fitted on the validation photos' blur draws
    ``FIT_DRAWS`` (restored with the label, at full strength): ``"constant"`` (``a1 = 0``,
    ``fit_output_strength``) and ``"per_image"`` (``fit_blur_strength``); ``"per_image_blind"``
    on the draws of every degradation in ``degradations`` (clean too), restored blind by
    the model's sensor (``calibrate_blur_strength(blind=True)``); ``"full"`` is the network's
    own output. The model is left at full strength."""
    inputs, outputs, targets = [], [], []
    model.eval()
    for seed in FIT_DRAWS:
        pairs = build_eval_set(strength_photos(), degradations, seed=seed).select([BLUR])
        for x, y in zip(pairs.degraded, pairs.clean, strict=True):
            inputs.append(x[None])
            outputs.append(model(x[None], degradation=BLUR))
            targets.append(y[None])
    constant = fit_output_strength(inputs, outputs, targets)
    blind_inputs, blind_targets = [], []
    for seed in FIT_DRAWS:
        pairs = build_eval_set(strength_photos(), degradations, seed=seed)
        blind_inputs += list(pairs.degraded)
        blind_targets += list(pairs.clean)
    calibrate_blur_strength(model, blind_inputs, blind_targets, blind=True)
    blind_line = model.config.blur_strength
    assert blind_line is not None  # calibrate_blur_strength set it
    with_strength(model, "full", (1.0, 0.0))
    return {
        "full": (1.0, 0.0),
        "constant": (constant, 0.0),
        "per_image": fit_blur_strength(inputs, outputs, targets),
        "per_image_blind": blind_line,
    }


def with_strength(model: PIPModel, name: str, line: tuple[float, float]) -> PIPModel:
    """``model`` set to strength ``name``: full, one blur strength, or the line per image."""
    if name == "full":
        model.config = model.config.replace(output_strength={}, blur_strength=None)
    elif name == "constant":
        model.config = model.config.replace(output_strength={BLUR: line[0]}, blur_strength=None)
    else:
        model.config = model.config.replace(output_strength={}, blur_strength=line)
    return model


def measure(model: PIPModel, sets: Mapping[str, PairedImages], judged: str) -> dict:
    """The fitted lines, and for each set (name -> pairs with ``"clean"``) and strength the
    report of blur's pairs steered by their label and of every pair blind (``model``'s sensor);
    the constant strength on set ``judged`` only (the rule's). The model is left at the line
    per image."""
    lines = fit(with_strength(model, "full", (1.0, 0.0)), sets[judged].degradations)
    reports: dict = {}
    for name, line in lines.items():
        with_strength(model, name, line)
        for split, pairs in sets.items():
            if name == "constant" and split != judged:
                continue
            reports.setdefault(split, {})[name] = {
                "labels": evaluate(model, pairs.select([BLUR]), conditioned=True),
                "blind": evaluate(model, pairs, conditioned=False),
            }
    return {"lines": lines, "reports": reports}


def gain(report: dict) -> float:
    """Blur's output − input PSNR in ``report``."""
    return report[BLUR]["psnr"] - report[BLUR]["input_psnr"]


def checks(reports: Mapping[str, dict]) -> list[tuple[str, bool]]:
    """The rule's conditions on one set's ``reports`` (by strength): what each measured and
    whether it holds."""
    full, constant, ours = (reports[name] for name in ("full", "constant", "per_image"))
    over_full = gain(ours["labels"]) - gain(full["labels"])
    over_constant = gain(ours["labels"]) - gain(constant["labels"])
    blind = gain(ours["blind"]) - gain(full["blind"])
    average = ours["blind"]["average"]["psnr"] - full["blind"]["average"]["psnr"]
    clean = ours["blind"][CLEAN]["psnr"] - full["blind"][CLEAN]["psnr"]
    return [
        (
            f"blur's output − input with labels {over_full:+.3f} dB over full strength (at least "
            f"+{GAIN_OVER_FULL_DB:.2f}) and {over_constant:+.3f} dB over one blur strength (at "
            f"least +{GAIN_OVER_CONSTANT_DB:.2f}), blind {blind:+.3f} dB (not below 0)",
            at_least(over_full, GAIN_OVER_FULL_DB)
            and at_least(over_constant, GAIN_OVER_CONSTANT_DB)
            and at_least(blind, 0.0),
        ),
        (
            f"the blind average {average:+.3f} dB, clean images through blind mode "
            f"{clean:+.3f} dB (each at least -{KEEP_DB:.2f})",
            at_least(average, -KEEP_DB) and at_least(clean, -KEEP_DB),
        ),
    ]


def table(measured: dict, split: str) -> list[str]:
    """Each strength's line, blur (labels, blind; output − input), the blind average and clean
    images through blind mode on set ``split``."""
    header = ["blur strength", "a0 + a1 · e", "blur input", "blur, labels", "blur, blind"]
    header += ["average, blind", "clean through blind"]
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    reports = measured["reports"][split]
    for name in (n for n in STRENGTHS if n in reports):
        a0, a1 = measured["lines"][name]
        labels, blind = reports[name]["labels"], reports[name]["blind"]
        cells = [LABELS[name], f"{a0:.3f} {a1:+.3f} · e", f"{labels[BLUR]['input_psnr']:.2f}"]
        cells += [f"{r[BLUR]['psnr']:.2f} ({gain(r):+.3f})" for r in (labels, blind)]
        cells += [f"{blind['average']['psnr']:.2f}", f"{blind[CLEAN]['psnr']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def blind_gaps(reports: Mapping[str, dict], base: str) -> tuple[float, float, float]:
    """Blind mode with the line fitted on its outputs against blind mode with line ``base``, on
    one set's ``reports``: clean images' PSNR, blur's output − input and the average (dB)."""
    ours, theirs = reports["per_image_blind"]["blind"], reports[base]["blind"]
    return (
        ours[CLEAN]["psnr"] - theirs[CLEAN]["psnr"],
        gain(ours) - gain(theirs),
        ours["average"]["psnr"] - theirs["average"]["psnr"],
    )


def blind_checks(reports: Mapping[str, dict]) -> list[tuple[str, bool]]:
    """The session-19 rule's conditions on one set's ``reports``: the line fitted on blind
    mode's outputs against the labelled fit."""
    clean, blind, average = blind_gaps(reports, "per_image")
    blur = gain(reports["per_image_blind"]["labels"])
    return [
        (
            f"clean images through blind mode {clean:+.3f} dB over the labelled fit (at least "
            f"+{BLIND_CLEAN_GAIN_DB:.2f})",
            at_least(clean, BLIND_CLEAN_GAIN_DB),
        ),
        (
            f"blur's output − input with labels {blur:+.3f} dB (not below 0), blind blur "
            f"{blind:+.3f} dB and the blind average {average:+.3f} dB against the labelled fit "
            f"(each at least -{BLIND_KEEP_DB:.2f})",
            at_least(blur, 0.0)
            and at_least(blind, -BLIND_KEEP_DB)
            and at_least(average, -BLIND_KEEP_DB),
        ),
    ]


def blind_only_checks(reports: Mapping[str, dict], base: str) -> list[tuple[str, bool]]:
    """The session-20 rule's conditions on one set's ``reports``: the line fitted on blind
    mode's outputs used for blind calls alone (labels keep line ``base``, the one adopted for
    them), against ``base`` blind."""
    clean, blind, average = blind_gaps(reports, base)
    return [
        (
            f"clean images through blind mode {clean:+.3f} dB over {LABELS[base]} (at least "
            f"+{BLIND_CLEAN_GAIN_DB:.2f})",
            at_least(clean, BLIND_CLEAN_GAIN_DB),
        ),
        (
            f"blind blur {blind:+.3f} dB and the blind average {average:+.3f} dB against it "
            f"(each at least -{BLIND_KEEP_DB:.2f})",
            at_least(blind, -BLIND_KEEP_DB) and at_least(average, -BLIND_KEEP_DB),
        ),
    ]


def adopted(measured: dict, split: str) -> str | None:
    """The line the rules adopt on set ``split`` (the validation photos): ``"per_image_blind"``
    when the labelled line is adopted (session 18's rule) and the blind one beats it (session
    19's), ``"per_image"`` when only the first holds, else ``None`` (full strength)."""
    reports = measured["reports"][split]
    if not all(ok for _, ok in checks(reports)):
        return None
    if "per_image_blind" in reports and all(ok for _, ok in blind_checks(reports)):
        return "per_image_blind"
    return "per_image"


def rule_lines(measured: dict, split: str) -> list[str]:
    """The rules' verdicts on set ``split`` (the validation photos), and what they adopt."""
    reports = measured["reports"][split]
    lines = []
    for name, conditions in (
        ("the line per image", checks(reports)),
        (
            "the line fitted on blind mode's outputs",
            blind_checks(reports) if "per_image_blind" in reports else [],
        ),
    ):
        if conditions:
            text = "; ".join(f"{what}: {verdict(ok)}" for what, ok in conditions)
            lines.append(f"- The rule for {name}: {text}.")
    chosen = adopted(measured, split)
    base = chosen or "full"
    blind_only = []
    if base != "per_image_blind" and "per_image_blind" in reports:
        blind_only = blind_only_checks(reports, base)
        text = "; ".join(f"{what}: {verdict(ok)}" for what, ok in blind_only)
        held = (
            " (blind calls alone would take it, but `PIPConfig` has one blur line for both: "
            "the kept bundle and the rows below are at the adopted one)"
            if all(ok for _, ok in blind_only)
            else ""
        )
        lines.append(
            "- The rule for the line fitted on blind mode's outputs on blind calls alone "
            f"(labels keep theirs): {text}{held}."
        )
    lines.append(
        f"- Adopted: {LABELS[chosen]} (PIP's rows at the top of the page use it)."
        if chosen
        else "- Adopted: neither line (PIP's rows at the top of the page stay at full strength)."
    )
    return lines


def with_blur(report: dict, blur: dict) -> dict:
    """A labelled ``report`` with its blur entry from ``blur`` (a report of blur's pairs alone)
    and the average over the degradations again: blur's strength changes nothing else when
    the label says which degradation an image has."""
    changed = {**report, BLUR: blur[BLUR]}
    return {**changed, "average": average_report(changed, report["average"])}


def goals_section(runs: Path, measured: dict) -> list[str]:
    """Issue 19's goals on each held-out set with PIP's rows at the adopted line: the runs
    ``benchmarks/quality.py`` keeps in ``runs`` (``pip``: the network, blind with the bundle's
    sensor; ``plain``, when trained with the same settings), as quality.md shows them
    (``quality.at_blur_strength``); none without PIP's run."""
    import quality

    results: dict = {}
    stored: dict = {}
    for name in ("pip", "plain"):
        path = runs / name / "result.json"
        if path.is_file():
            saved = json.loads(path.read_text())
            stored[name] = {k: saved["settings"].get(k) for k in quality.TRAINING_KEYS}
            results.update(saved["results"])
    if quality.BLIND not in results:
        return []
    differs = "plain" in stored and quality.training_differences(
        stored["plain"], stored["pip"], quality.TRAINING_KEYS
    )
    if differs:  # not trained the same way: not comparable, left out
        results.pop("plain")
    shown = quality.at_blur_strength(results, measured)
    chosen = adopted(measured, quality.VALIDATION) if measured else None
    plain = (
        "the plain NAFNet-small trained with the same settings (`quality.py --variants plain`)"
        if "plain" in shown
        else "no plain network trained with the same settings, so no comparison with it"
    )
    return [
        f"## Issue 19's goals {'at the adopted line' if chosen else 'at full strength'}",
        "",
        "The runs `benchmarks/quality.py` keeps (`result.json`): PIP's network ("
        + ", ".join(f"{k} {v}" for k, v in stored["pip"].items())
        + "), steered by the labels and blind by the bundle's sensor, with blur "
        + ("at the adopted line" if chosen else "at full strength (no line adopted)")
        + f", beside {plain}: the rows and goals quality.md shows when it is regenerated from "
        "these runs. Their training times are left out: the runs were trained in different "
        "sessions, on a shared machine.",
        *quality.per_set(
            lambda split: [
                *quality.headline_table(shown, split, times=False),
                "",
                *quality.goals(shown, split),
            ]
        ),
    ]


def arguments(doc: str) -> argparse.Namespace:
    """The command line of a page measured on the runs ``benchmarks/quality.py`` keeps:
    ``--runs``, ``--seed`` (the held-out sets' draws) and ``--threads`` (set here)."""
    import quality  # quality.py imports this module

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=quality.ROOT / "runs" / "quality")
    parser.add_argument("--seed", type=int, default=0, help="the held-out sets' draws (0)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    return args


def keep_adopted(adapter: Path, measured: dict, kept: Path) -> str | None:
    """The line adopted on the validation photos, with the bundle in ``adapter`` saved at it
    into ``kept``; with none adopted, an earlier run's ``kept`` is removed, so that what reads
    it (haze_strength.py, sensor_accuracy.py) never measures a line this run did not adopt."""
    import quality  # quality.py imports this module

    chosen = adopted(measured, quality.VALIDATION)
    if chosen is None:
        if kept.exists():  # a failed removal is an error: readers would measure the old line
            shutil.rmtree(kept)
    else:
        model = with_strength(load_bundle(adapter), chosen, tuple(measured["lines"][chosen]))
        save_bundle(model, kept, backbone="nafnet", size="small", save_backbone_weights=True)
    return chosen


def main() -> None:
    import quality  # quality.py imports this module: its page's section is rendered there

    args = arguments(__doc__)
    adapter = args.runs / "pip" / "adapter"
    if not adapter.is_dir():
        raise SystemExit(
            f"no PIP bundle in {adapter}: run python benchmarks/quality.py --variants pip first"
        )
    sets = {
        split: build_eval_set(split, quality.WITH_CLEAN, seed=args.seed)
        for split in quality.EVAL_SETS
    }
    measured = quality.blur_strength_results(args, sets)
    kept = args.runs / "pip" / "adopted"
    chosen = keep_adopted(adapter, measured, kept)

    def shown(path: Path) -> Path:  # a path in the repository as the page names it
        path = path.resolve()
        return path.relative_to(quality.ROOT) if path.is_relative_to(quality.ROOT) else path

    where = (
        f"kept at the adopted line in `{shown(kept)}`"
        if chosen is not None
        else "nothing adopted, no bundle kept"
    )
    lines = [
        *page_head("Blur strength per image", "benchmarks/blur_strength.py", args.threads),
        "The PIP network and sensor measured: the bundle `benchmarks/quality.py --variants pip` "
        f"keeps in `{shown(adapter)}` (seed {args.seed}; files digest "
        f"`{files_digest(adapter)[:12]}`), {where}. quality.md renders the same section from "
        "the same cache (`runs/quality/pip/blur_strength.json`) when it is regenerated.",
        "",
        *quality.blur_strength_section(measured),
    ]
    goals = goals_section(args.runs, measured)
    lines += ["", *goals] if goals else []
    out = quality.ROOT / "docs" / "benchmarks" / "blur_strength.md"
    write_text(out, "\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
