"""Teaching a trained model new degradations: JPEG and snow added to the quality benchmark's
five-degradation PIP model, without forgetting the five.

The starting point is the model of ``benchmarks/quality.py`` (NAFNet-small trained from scratch
with PIP on noise, rain, haze, blur and low light), reused from its cache in
``runs/quality/pip/`` (made by that benchmark as of commit 8be6a04, before it added "clean").
Variants, each evaluated on all seven degradations:

* ``five``: the five-degradation model as it is; a new degradation is restored with the old
  label that does best on it on the held-out photos (the most favourable pick for it);
* ``prompts``: ``add_degradations(["jpeg", "snow"], mode="prompts")`` then training on JPEG
  and snow only: the new prompt rows alone learn, the five old degradations are bit-exact;
* ``light``: ``mode="light"``: the new rows plus the units' norms and attention scales, on
  JPEG and snow mixed with replay of the five;
* ``retrain``: NAFNet-small + PIP trained from scratch on all seven with the quality
  benchmark's budget (steps, batch, learning rate): the upper reference.

The degradation sensor (trained as the quality benchmark trains it) is grown with the two new
classes and fine-tuned on all seven (replay); its accuracy is measured before and after.

Run:  python benchmarks/grow.py [--steps 300] [--variants five,prompts,light,retrain,sensor,blind]
Each finished variant is kept in ``runs/grow/<variant>/result.json`` and reused by a rerun with
the same settings (``--fresh`` recomputes). Writes docs/benchmarks/grow.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch
from machine import comparison_parser, page_head, parse_comparison, verdict
from safetensors.torch import load_file

import pip_adapter as pa
from pip_adapter.backbones import build_backbone
from pip_adapter.data import SyntheticAllInOne, build_eval_set, degrade, sample_images
from pip_adapter.data.merged import MergedDegradations
from pip_adapter.evaluation import evaluate
from pip_adapter.files import write_json, write_safetensors, write_text
from pip_adapter.injection.serialization import (
    SENSOR_CONFIG_NAME,
    SENSOR_WEIGHTS_NAME,
    read_sensor,
    write_sensor,
)
from pip_adapter.metrics import psnr
from pip_adapter.training import TrainConfig, Trainer, load_checkpoint, train_sensor

ROOT = Path(__file__).resolve().parents[1]
OLD = pa.DEFAULT_DEGRADATIONS
NEW = ("jpeg", "snow")
ALL = OLD + NEW
SPLITS = {"test": "held-out photos", "ood": "out-of-domain photos"}
VARIANTS = {
    "five": "five-degradation model (best old label)",
    "prompts": "+ jpeg, snow (prompts only)",
    "light": "+ jpeg, snow (light)",
    "retrain": "retrained on all seven",
}
CHOICES = ("five", "prompts", "light", "retrain", "sensor", "blind")


# ---------------------------------------------------------------- the starting point


def quality_args(args: argparse.Namespace) -> argparse.Namespace:
    """The quality benchmark's settings (its defaults), as its functions take them."""
    return argparse.Namespace(
        steps=args.base_steps,
        batch_size=8,
        patch_size=64,
        lr=2e-3,
        seed=args.seed,
        sensor_steps=400,
        threads=args.threads,
        runs=args.quality_runs,
        fresh=False,
    )


def five_degradation_model(args: argparse.Namespace) -> pa.PIPModel:
    """The quality benchmark's five-degradation PIP model, from its cached run (that benchmark
    now trains a six-degradation model, with "clean": this page keeps the five-degradation
    one it was built on; see ``base_provenance``)."""
    path = args.quality_runs / "pip" / "checkpoint.pt"
    if not path.is_file():
        raise SystemExit(
            f"{path} is missing: it is the five-degradation PIP model of benchmarks/quality.py "
            "as of commit 8be6a04 (python benchmarks/quality.py --variants pip --threads 1)"
        )
    model = pa.inject_pip(build_backbone("nafnet", "small"), degradations=OLD)
    model.load_state_dict(load_checkpoint(path)["model"])
    return model.eval()


def base_provenance(args: argparse.Namespace) -> str:
    """Where the five-degradation model comes from: its cached run, when and how it was
    trained (a cache made by older code is named as such on the page, not mixed silently)."""
    run = args.quality_runs / "pip"
    stamp = time.strftime(
        "%Y-%m-%d %H:%M UTC", time.gmtime((run / "checkpoint.pt").stat().st_mtime)
    )
    saved = json.loads((run / "result.json").read_text())["settings"]
    text = ", ".join(f"{k} {v}" for k, v in saved.items())
    return (
        f"`{run.relative_to(ROOT)}`, trained {stamp} by `benchmarks/quality.py` ({text}) as of "
        "commit 8be6a04: L1 loss, five degradations; that benchmark has since moved to a PSNR "
        "loss and a sixth, 'clean', so its page shows other numbers"
    )


def save_sensor(sensor: pa.DegradationSensor, directory: Path) -> None:
    """Cache a sensor with its config (views, temperature), as an adapter directory keeps it."""
    write_sensor(directory, (sensor.config(), sensor.state_dict()))


def cached_sensor(directory: Path, degradations: tuple[str, ...]) -> pa.DegradationSensor | None:
    """The sensor ``save_sensor`` cached in ``directory`` (None if there is none); one cached as
    weights alone, before sensors had a temperature, gets temperature 1, as it was used."""
    weights_only = not (directory / SENSOR_CONFIG_NAME).is_file()
    if weights_only and (directory / SENSOR_WEIGHTS_NAME).is_file():
        sensor = pa.DegradationSensor(degradations, temperature=1.0)
        tensors = load_file(directory / SENSOR_WEIGHTS_NAME)
    else:
        saved = read_sensor(directory)
        if saved is None:
            return None
        sensor, tensors = pa.DegradationSensor.from_config(saved[0]), saved[1]
    sensor.load_state_dict(tensors)
    return sensor.requires_grad_(False).eval()


def five_degradation_sensor(args: argparse.Namespace) -> pa.DegradationSensor:
    """The quality benchmark's sensor (same class, steps and seed), cached in runs/grow."""
    base = quality_args(args)
    directory = args.runs / "sensor5"
    cached = None if args.fresh else cached_sensor(directory, OLD)
    if cached is not None:
        return cached
    torch.manual_seed(base.seed)
    sensor = pa.DegradationSensor(OLD)
    train_sensor(sensor, steps=base.sensor_steps, seed=base.seed, progress=False)
    save_sensor(sensor, directory)
    return sensor


# ---------------------------------------------------------------- evaluation


def eval_sets(seed: int) -> dict:
    return {split: build_eval_set(split, ALL, seed=seed) for split in SPLITS}


@torch.no_grad()
def label_scores(model, dataset, label: str) -> dict[str, float]:
    """Mean PSNR per degradation of ``dataset`` when every image is restored as ``label``."""
    scores: dict[str, list[float]] = {}
    for degraded, clean, t in dataset:
        output = model(degraded[None], degradation=label).clamp(0, 1)
        scores.setdefault(dataset.degradations[t], []).append(psnr(output, clean[None]).item())
    return {name: sum(v) / len(v) for name, v in scores.items()}


def evaluate_five(model, sets) -> dict:
    """The five-degradation model: old degradations with their labels, each new one with the
    old label that does best on it on the held-out photos (used for both photo sets)."""
    old_reports = {split: evaluate(model, build_eval_set(split, OLD, seed=0)) for split in SPLITS}
    candidates = {
        split: {label: label_scores(model, sets[split].select(NEW), label) for label in OLD}
        for split in SPLITS
    }
    best = {new: max(OLD, key=lambda label: candidates["test"][label][new]) for new in NEW}
    reports = {}
    for split in SPLITS:
        report = {name: {"psnr": old_reports[split][name]["psnr"]} for name in OLD}
        for new in NEW:
            report[new] = {"psnr": candidates[split][best[new]][new], "label": best[new]}
        reports[split] = report
    inputs = {split: input_psnr(sets[split]) for split in SPLITS}
    return {"reports": reports, "best_label": best, "candidates": candidates, "input": inputs}


def input_psnr(dataset) -> dict[str, float]:
    """Mean PSNR of the degraded images themselves, per degradation."""
    scores: dict[str, list[float]] = {}
    for degraded, clean, t in dataset:
        scores.setdefault(dataset.degradations[t], []).append(psnr(degraded, clean).item())
    return {name: sum(v) / len(v) for name, v in scores.items()}


def psnr_report(model, dataset, conditioned: bool = True) -> dict:
    report = evaluate(model, dataset, conditioned=conditioned)
    return {name: {"psnr": entry["psnr"]} for name, entry in report.items() if name != "average"}


# ---------------------------------------------------------------- growth and retraining


def growth_set(args: argparse.Namespace, replay: bool) -> MergedDegradations:
    """JPEG and snow patches (and, for replay, as many of each old degradation), labelled in
    the grown model's seven-degradation vocabulary."""
    new = SyntheticAllInOne(
        degradations=NEW, patch_size=64, samples_per_degradation=64, seed=args.seed + 1
    )
    parts = [new]
    if replay:
        parts.append(
            SyntheticAllInOne(
                degradations=OLD, patch_size=64, samples_per_degradation=64, seed=args.seed + 2
            )
        )
    return MergedDegradations(parts, ALL)


def grow(model, mode: str, args: argparse.Namespace) -> tuple[pa.PIPModel, float, int]:
    model = copy.deepcopy(model)
    model.sensor = None
    model.add_degradations(NEW, mode=mode)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    config = TrainConfig(
        steps=args.steps,
        batch_size=8,
        lr=args.lr,
        weight_decay=args.weight_decay,
        seed=args.seed,
        progress=False,
    )
    started = time.perf_counter()
    Trainer(model, growth_set(args, replay=mode == "light"), config).fit()
    return model.eval(), time.perf_counter() - started, trainable


def retrain(args: argparse.Namespace) -> tuple[pa.PIPModel, float, int]:
    base = quality_args(args)
    torch.manual_seed(base.seed)
    model = pa.inject_pip(build_backbone("nafnet", "small"), degradations=ALL)
    data = SyntheticAllInOne(
        degradations=ALL, patch_size=base.patch_size, samples_per_degradation=64, seed=base.seed
    )
    config = TrainConfig(
        steps=base.steps, batch_size=base.batch_size, lr=base.lr, seed=base.seed, progress=False
    )
    started = time.perf_counter()
    Trainer(model, data, config).fit()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return model.eval(), time.perf_counter() - started, trainable


# ---------------------------------------------------------------- the sensor


def random_crop(image: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    height, width = image.shape[-2:]
    top = int(torch.randint(height - size + 1, (1,), generator=generator))
    left = int(torch.randint(width - size + 1, (1,), generator=generator))
    return image[:, top : top + size, left : left + size]


@torch.no_grad()
def sensor_accuracy(sensor, split: str, degradations, crop: int | None, draws: int) -> dict:
    """Accuracy per degradation of ``sensor`` on the ``split`` photos: whole photos
    (``crop=None``) or random crops, each degraded with its own seeded draw."""
    hits: dict[str, list[bool]] = {name: [] for name in degradations}
    for p, photo in enumerate(sample_images(split)):
        for name in degradations:
            for d in range(draws):
                g = torch.Generator().manual_seed(7_919 * p + 101 * ALL.index(name) + d)
                clean = photo if crop is None else random_crop(photo, crop, g)
                predicted = sensor.predict(degrade(clean[None], name, generator=g))[0]
                hits[name].append(predicted == name)
    return {name: sum(v) / len(v) for name, v in hits.items()}


def sensor_results(args: argparse.Namespace) -> dict:
    sensor = five_degradation_sensor(args)
    grown = copy.deepcopy(sensor).add_degradations(NEW)
    started = time.perf_counter()
    train_sensor(
        grown, steps=args.sensor_steps, lr=args.sensor_lr, seed=args.seed + 1, progress=False
    )
    seconds = time.perf_counter() - started
    settings = {"whole": (None, 1), "crops": (128, args.crop_draws)}
    results: dict = {"train_seconds": seconds, "accuracy": {}}
    for split in SPLITS:
        for how, (crop, draws) in settings.items():
            results["accuracy"][f"{split}/{how}"] = {
                "before": sensor_accuracy(sensor, split, OLD, crop, draws),
                "after": sensor_accuracy(grown, split, ALL, crop, draws),
            }
    save_sensor(grown, args.runs / "sensor")
    return results


# ---------------------------------------------------------------- running, caching


def settings(args: argparse.Namespace, variant: str) -> dict:
    common = {"seed": args.seed, "base_steps": args.base_steps}
    if variant in ("prompts", "light"):
        return {**common, "steps": args.steps, "lr": args.lr, "weight_decay": args.weight_decay}
    sensor = {"sensor_steps": args.sensor_steps, "sensor_lr": args.sensor_lr}
    if variant == "sensor":
        return {**common, **sensor}
    if variant == "blind":
        return {**settings(args, "prompts"), **sensor}
    return common


def run_variant(variant: str, args: argparse.Namespace, cache: dict) -> dict:
    if variant == "sensor":
        return sensor_results(args)
    if variant == "blind":
        return blind_results(args, cache)
    sets = eval_sets(args.seed)
    if "base" not in cache:
        cache["base"] = five_degradation_model(args)
    if variant == "five":
        return evaluate_five(cache["base"], sets)
    if variant == "retrain":
        model, seconds, trainable = retrain(args)
        steps = args.base_steps
    else:
        model, seconds, trainable = grow(cache["base"], variant, args)
        steps = args.steps
    # the grown units are kept for the blind variant (the sensor may be retrained on its own)
    write_safetensors(args.runs / variant / "units.safetensors", model.pip_units.state_dict())
    reports = {split: psnr_report(model, sets[split]) for split in SPLITS}
    return {"reports": reports, "train_seconds": seconds, "steps": steps, "trainable": trainable}


def blind_results(args: argparse.Namespace, cache: dict) -> dict:
    """The prompts-only model steered by the grown sensor instead of labels."""
    if "base" not in cache:
        cache["base"] = five_degradation_model(args)
    model = copy.deepcopy(cache["base"]).add_degradations(NEW, mode="prompts")
    model.pip_units.load_state_dict(load_file(args.runs / "prompts" / "units.safetensors"))
    model.sensor = cached_sensor(args.runs / "sensor", ALL)
    model.eval()
    sets = eval_sets(args.seed)
    return {"reports": {split: psnr_report(model, sets[split], False) for split in SPLITS}}


def load_or_run(variant: str, args: argparse.Namespace, cache: dict) -> dict:
    path = args.runs / variant / "result.json"
    if path.is_file() and not args.fresh:
        saved = json.loads(path.read_text())
        if saved["settings"] == settings(args, variant):
            print(f"{variant}: reusing {path}")
            return saved["result"]
    print(f"{variant}: running")
    result = run_variant(variant, args, cache)
    write_json(path, {"settings": settings(args, variant), "result": result})
    return result


# ---------------------------------------------------------------- the page


def psnr_table(results: dict, split: str) -> list[str]:
    names = [v for v in VARIANTS if v in results]
    inputs = results["five"]["input"][split] if "five" in results else None
    header = "| degradation | " + ("input | " if inputs else "")
    header += " | ".join(VARIANTS[v] for v in names) + " |"
    lines = [header, "| --- |" + " ---: |" * (len(names) + bool(inputs))]
    for degradation in ALL:
        cells = [f"{inputs[degradation]:.2f}"] if inputs else []
        for v in names:
            entry = results[v]["reports"][split][degradation]
            label = f" ({entry['label']})" if "label" in entry else ""
            cells.append(f"{entry['psnr']:.2f}{label}")
        lines.append(f"| {degradation} | " + " | ".join(cells) + " |")
    for group, members in (("old five", OLD), ("new two", NEW)):
        cells = [f"{sum(inputs[d] for d in members) / len(members):.2f}"] if inputs else []
        cells += [f"{mean(results[v]['reports'][split], members):.2f}" for v in names]
        lines.append(f"| **mean, {group}** | " + " | ".join(cells) + " |")
    steps = [""] if inputs else []
    steps += [str(results[v].get("steps", "0")) for v in names]
    lines.append("| training steps | " + " | ".join(steps) + " |")
    return lines


def mean(report: dict, names) -> float:
    return sum(report[d]["psnr"] for d in names) / len(names)


def goals(results: dict, args: argparse.Namespace) -> list[str]:
    lines = []

    for mode in ("prompts", "light"):
        if mode not in results or "five" not in results:
            continue
        for split, what in SPLITS.items():
            grown = results[mode]["reports"][split]
            five = results["five"]["reports"][split]
            gains = {d: grown[d]["psnr"] - five[d]["psnr"] for d in NEW}
            text = ", ".join(f"{d} {g:+.2f} dB" for d, g in gains.items())
            lines.append(
                f"- {mode}, {what}: gain on the new degradations over the five-degradation "
                f"model: {text} (goal ≥ +1.00 dB each): {verdict(min(gains.values()) >= 1.0)}."
            )
            if "retrain" in results:
                full = results["retrain"]["reports"][split]
                gaps = {d: grown[d]["psnr"] - full[d]["psnr"] for d in NEW}
                text = ", ".join(f"{d} {g:+.2f} dB" for d, g in gaps.items())
                lines.append(
                    f"- {mode}, {what}: against full retraining on the new degradations: "
                    f"{text} (goal ≥ −0.30 dB each): {verdict(min(gaps.values()) >= -0.3)}."
                )
            drift = {d: grown[d]["psnr"] - five[d]["psnr"] for d in OLD}
            worst = min(drift.values())
            if mode == "prompts":
                ok = all(v == 0 for v in drift.values())
                lines.append(
                    f"- prompts, {what}: old degradations' PSNR change: largest "
                    f"{max(drift.values(), key=abs):+.4f} dB (goal: bit-exact outputs, "
                    f"checked in tests/test_growth.py): {verdict(ok)}."
                )
            else:
                lines.append(
                    f"- light, {what}: old degradations, largest drop {worst:+.3f} dB "
                    f"(goal ≥ −0.05 dB): {verdict(worst >= -0.05)}."
                )
        if "retrain" in results:
            share = results[mode]["steps"] / results["retrain"]["steps"]
            lines.append(
                f"- {mode}: {results[mode]['steps']} steps, {100 * share:.0f}% of full "
                f"retraining's (goal ≤ 20%): {verdict(share <= 0.2)}."
            )
    if "sensor" in results:
        for key, entry in results["sensor"]["accuracy"].items():
            after = entry["after"]
            overall = sum(after.values()) / len(after)
            lines.append(
                f"- blind mode, sensor accuracy on all seven ({key}): {100 * overall:.1f}% "
                f"(goal ≥ 95%): {verdict(overall >= 0.95)}."
            )
    return lines


def sensor_table(results: dict) -> list[str]:
    lines = [
        "| photos / crops | " + " | ".join(ALL) + " | old five, before | old five, after |"
        " all seven, after |",
        "| --- |" + " ---: |" * (len(ALL) + 3),
    ]
    for key, entry in results["sensor"]["accuracy"].items():
        before, after = entry["before"], entry["after"]
        cells = [f"{100 * after[d]:.0f}%" for d in ALL]
        old_before = sum(before[d] for d in OLD) / len(OLD)
        old_after = sum(after[d] for d in OLD) / len(OLD)
        overall = sum(after.values()) / len(after)
        cells += [f"{100 * old_before:.1f}%", f"{100 * old_after:.1f}%", f"{100 * overall:.1f}%"]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return lines


def write_page(results: dict, args: argparse.Namespace) -> str:
    lines = [
        *page_head("Teaching a trained model new degradations", "benchmarks/grow.py", args.threads),
        "The starting point is the PIP model of the [quality benchmark](quality.md): "
        f"NAFNet-small trained from scratch with PIP for {args.base_steps} steps on the five "
        f"degradations, reused from its cache ({base_provenance(args)}). "
        "`model.add_degradations(['jpeg', 'snow'], mode=...)` adds a prompt row "
        "per new degradation to every unit, starting at the mean of the old rows, then "
        f"{args.steps} steps (batch 8, 64² patches, peak learning rate {args.lr}) train:",
        "",
        "- *prompts only*: the new rows alone (the backbone and the units are frozen), on JPEG "
        "and snow only; the five old degradations are bit-exact by construction;",
        "- *light*: the new rows plus the units' layer-norm affine parameters and attention "
        "temperatures / top-m weights, on JPEG and snow mixed with as many patches of each "
        "old degradation (replay);",
        "",
        "against the five-degradation model steered, on a new degradation, by the old label "
        "that does best on it on the held-out photos (in brackets), and the upper reference: "
        f"NAFNet-small + PIP trained from scratch on all seven with the same budget "
        f"({args.base_steps} steps). PSNR (dB) per degradation on whole photos.",
    ]
    for split, what in SPLITS.items():
        if all(split in results[v]["reports"] for v in VARIANTS if v in results):
            lines += ["", f"## {what.capitalize()}", "", *psnr_table(results, split)]
    if "blind" in results:
        lines += [
            "",
            "Blind mode (prompts-only growth steered by the grown sensor), mean PSNR: "
            + "; ".join(
                f"{what}: old five {mean(results['blind']['reports'][s], OLD):.2f}, new two "
                f"{mean(results['blind']['reports'][s], NEW):.2f}"
                for s, what in SPLITS.items()
            )
            + ".",
        ]
    if "sensor" in results:
        lines += [
            "",
            "## Degradation sensor",
            "",
            "The quality benchmark's sensor (resnet10t, 400 steps on the training photos) with "
            "two new classes (their weights start at the mean of the old ones), fine-tuned for "
            f"{args.sensor_steps} steps at learning rate {args.sensor_lr} on all seven "
            f"degradations ({results['sensor']['train_seconds']:.0f} s). Accuracy per "
            "degradation after growth, and the old five's accuracy before and after "
            f"(whole photos: one draw each; crops: {args.crop_draws} random 128² crops per photo "
            "and degradation):",
            "",
            *sensor_table(results),
        ]
    lines += ["", "## Goals", "", *goals(results, args)]
    page = "\n".join(lines) + "\n"
    write_text(ROOT / "docs" / "benchmarks" / "grow.md", page)
    return page


def main() -> None:
    parser = comparison_parser(__doc__, "variants", CHOICES)
    parser.add_argument("--steps", type=int, default=300, help="growth steps (300)")
    parser.add_argument("--lr", type=float, default=2e-3, help="growth learning rate (2e-3)")
    parser.add_argument("--weight-decay", type=float, default=0.0, help="growth AdamW decay (0)")
    parser.add_argument("--sensor-steps", type=int, default=400, help="sensor fine-tuning (400)")
    parser.add_argument("--sensor-lr", type=float, default=1e-3, help="its learning rate (1e-3)")
    parser.add_argument("--crop-draws", type=int, default=4, help="sensor crops per photo (4)")
    parser.add_argument(
        "--base-steps", type=int, default=1500, help="the quality benchmark's steps (1500)"
    )
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "grow")
    parser.add_argument("--quality-runs", type=Path, default=ROOT / "runs" / "quality")
    parser.add_argument("--fresh", action="store_true", help="recompute finished variants")
    args, names = parse_comparison(parser, "variants", CHOICES)
    if "blind" in names:  # it uses the grown sensor and the prompts-only units
        missing = [n for n in ("sensor", "prompts") if n not in names]
        names[names.index("blind") : names.index("blind")] = missing
    results: dict = {}
    cache: dict = {}
    for name in names:
        results[name] = load_or_run(name, args, cache)
    print(write_page(results, args))


if __name__ == "__main__":
    main()
