"""Degradation sensor: held-out accuracy, confidence, blind vs oracle restoration, mixtures.

Trains a DegradationSensor for the five degradations and "clean" (an image that needs nothing)
on the photos of the benchmarks' sensor recipe (``SENSOR_RECIPE``; CPU, a few minutes), then
measures it on two held-out sets it never saw: the bundled held-out photos
(``sample_images("test")``) and the out-of-domain ones (``sample_images("ood")``): accuracy
and confusion matrix over many random crops and degradation draws (fixed seeds), how confidence
relates to accuracy (what ``pip-adapter restore`` reports as unsure), its cost next to the
restoration network's, PSNR of blind restoration (the sensor's soft weights) against the oracle
label, clean images included, and what it makes of a composite degradation (rain + noise).

Run:  python benchmarks/sensor_accuracy.py [--threads 1] [--adapter runs/quality/pip/adapter]
[--sensor-from-adapter] [--cost measure|keep|only]
Without ``--adapter`` (a bundle of a model that knows "clean", e.g. the quality benchmark's or
one written by ``pip-adapter train``) a small NAFNet + PIP is trained here first. Writes
docs/benchmarks/sensor.md (the tables printed here) and its record, docs/benchmarks/sensor.json.
The Cost section is a timing, for a quiet machine; the rest is not: ``--cost keep`` measures
everything else and keeps the record's Cost section (with the command and date that measured
it), ``--cost only`` times alone (a minute, in a quiet window) and keeps it in the record, from
which it writes the page again (in either order). Both sides carry a key (``measurement_key``:
the adapter's files, the sensor's settings, the library's code), and only what shares it goes
on one page: ``keep`` drops a Cost entry of another key (the page says it is not measured),
``only`` refuses to time beside a page of another key.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import timm
import torch
from digests import code_digest, files_digest
from machine import describe_machine, verdict
from sensor_recipe import (
    ACCURACY_GOAL,
    SENSOR_RECIPE,
    describe_sensor_recipe,
    describe_views,
    sensor_photos,
)

import pip_adapter as pa
from pip_adapter.backbones import build_backbone
from pip_adapter.bundle import load_bundle
from pip_adapter.conditioning import CLEAN, SURE_AT
from pip_adapter.data import SyntheticAllInOne, build_eval_set, degrade, sample_images
from pip_adapter.evaluation import evaluate
from pip_adapter.files import write_json, write_text
from pip_adapter.metrics import psnr, ssim
from pip_adapter.sensor import DEFAULT_SENSOR_BACKBONE, crop_grid
from pip_adapter.training import TrainConfig, Trainer, train_sensor
from pip_adapter.training.sensor import DEFAULT_SENSOR_STEPS

ROOT = Path(__file__).resolve().parents[1]
RESTORED = pa.DEFAULT_DEGRADATIONS
DEGRADATIONS = (*RESTORED, CLEAN)  # the sensor's classes
SETS = {"test": "bundled held-out photos", "ood": "out-of-domain held-out photos"}
RECORD = "sensor.json"  # the page's measurements, beside it: the Cost section can be redone alone
# the parts of a measurement's key, in words
KEY_PARTS = {
    "adapter": "another adapter",
    "sensor": "other sensor settings",
    "code": "other library code",
}


DRAWS = 40  # draws per photo and degradation of a 3-photo set's crops (--draws)


def crop_draws(photos: int, draws: int = DRAWS) -> int:
    """Draws per photo and degradation of a set of ``photos`` photos' crops: about as many
    images for each set (fewer draws per photo for the larger set)."""
    return max(1, round(draws * 3 / photos))


def whole_photo_draws(photos: int, draws: int = DRAWS) -> int:
    """Draws per photo and degradation of a set's whole photos: a quarter of its crops'."""
    return max(1, crop_draws(photos, draws) // 4)


def random_crop(image: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """A random ``size``² crop (a side shorter than ``size`` is kept whole)."""
    height, width = (min(side, size) for side in image.shape[-2:])
    top = int(torch.randint(image.shape[-2] - height + 1, (1,), generator=generator))
    left = int(torch.randint(image.shape[-1] - width + 1, (1,), generator=generator))
    return image[:, top : top + height, left : left + width]


def labelled_images(
    photos, size: int | None, draws: int, seed: int, first: int = 0
) -> Iterator[tuple[torch.Tensor, int]]:
    """Every photo × class × draw as a ``1×3×H×W`` degraded image and its true class;
    ``size=None``: the whole photo, else a random ``size``² crop of it, degraded with a
    generator seeded per draw (and per photo, counted from ``first``: the photos after the
    ``first`` ones of a longer list are drawn as in it)."""
    for p, photo in enumerate(photos, start=first):
        for t, degradation in enumerate(DEGRADATIONS):
            for d in range(draws):
                g = torch.Generator().manual_seed(seed * 1_000_003 + p * 10_007 + t * 101 + d)
                clean = photo if size is None else random_crop(photo, size, g)
                yield degrade(clean[None], degradation, generator=g), t


@torch.no_grad()
def predictions(
    sensor, photos, size: int | None, draws: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The sensor's weights (N×T) and the true classes (N) over ``labelled_images``."""
    weights, truth = [], []
    for image, t in labelled_images(photos, size, draws, seed):
        weights.append(sensor.predict_weights(image)[0])
        truth.append(t)
    return torch.stack(weights), torch.tensor(truth)


def confusion(weights: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Counts[true, predicted]."""
    counts = torch.zeros(len(DEGRADATIONS), len(DEGRADATIONS), dtype=torch.long)
    counts.index_put_((truth, weights.argmax(-1)), torch.tensor(1), accumulate=True)
    return counts


def accuracy(counts: torch.Tensor) -> float:
    return counts.diag().sum().item() / counts.sum().item()


def confusion_table(counts: torch.Tensor) -> str:
    lines = [
        "| true \\ predicted | " + " | ".join(DEGRADATIONS) + " | recall |",
        "| --- |" + " ---: |" * (len(DEGRADATIONS) + 1),
    ]
    for t, degradation in enumerate(DEGRADATIONS):
        cells = [str(v) for v in counts[t].tolist()]
        recall = counts[t, t].item() / counts[t].sum().item()
        lines.append(f"| {degradation} | " + " | ".join(cells) + f" | {100 * recall:.1f}% |")
    return "\n".join(lines)


def accuracy_goal(rate: float) -> str:
    """The accuracy goal checked on the out-of-domain whole photos' ``rate``; a miss says by
    how much and where what was tried for it is."""
    missed = (
        f", by {100 * (ACCURACY_GOAL - rate):.1f} points (tried: the training recipes of "
        "[sensor_tuning.md](sensor_tuning.md))"
        if rate < ACCURACY_GOAL
        else ""
    )
    return (
        f'Goal: the out-of-domain whole photos named right ("clean" included) at least '
        f"{100 * ACCURACY_GOAL:.0f}% of the time: {100 * rate:.1f}%, "
        f"{verdict(rate >= ACCURACY_GOAL)}{missed}."
    )


def calibration_error(top: torch.Tensor, right: torch.Tensor, bins: int = 10) -> float:
    """Expected calibration error: |accuracy − mean top weight| per bin of the top weight,
    weighted by the share of images in the bin."""
    index = (top * bins).ceil().clamp(1, bins).long() - 1
    error = 0.0
    for b in index.unique():
        members = index == b
        gap = right[members].float().mean() - top[members].mean()
        error += members.float().mean().item() * gap.abs().item()
    return error


def share(mask: torch.Tensor, of: torch.Tensor) -> str:
    """The share of ``of`` that is true among ``mask``, or a dash if ``mask`` is empty."""
    return f"{100 * of[mask].float().mean():.1f}%" if mask.any() else "–"


def median(values: torch.Tensor) -> str:
    return f"{values.median():.2f}" if values.numel() else "–"


def confidence_table(samples: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> str:
    """Accuracy of sure and unsure predictions (the top weight against ``SURE_AT``), the weight
    the true class keeps when the prediction is wrong, and the expected calibration error."""
    lines = [
        f"| images | sure (top weight ≥ {SURE_AT}) | accuracy when sure | accuracy when unsure "
        "| wrong predictions: top weight (median) | wrong: weight of the true class (median) "
        "| calibration error (ECE) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, (weights, truth) in samples.items():
        top, predicted = weights.max(-1)
        right, sure = predicted == truth, top >= SURE_AT
        kept = weights[torch.arange(len(truth)), truth]
        lines.append(
            f"| {label} | {100 * sure.float().mean():.1f}% | {share(sure, right)} | "
            f"{share(~sure, right)} | {median(top[~right])} | {median(kept[~right])} | "
            f"{calibration_error(top, right):.3f} |"
        )
    return "\n".join(lines)


@torch.no_grad()
def seconds(fn, x: torch.Tensor, repeats: int = 3) -> float:
    fn(x)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def adapter_sensor(args: argparse.Namespace) -> pa.DegradationSensor:
    """The sensor attached to ``--adapter``, checked against the settings it stands for."""
    if args.adapter is None:
        raise SystemExit("--sensor-from-adapter needs --adapter")
    sensor = load_bundle(args.adapter).sensor
    if sensor is None or sensor.degradations != DEGRADATIONS:
        raise SystemExit(f"{args.adapter} has no sensor for {DEGRADATIONS}")
    if sensor.config()["backbone"] != args.backbone:
        raise SystemExit(f"the sensor of {args.adapter} is not a {args.backbone}")
    return sensor.eval()


def restoration_model(args: argparse.Namespace) -> tuple[pa.PIPModel, str]:
    if args.adapter is not None:
        model = load_bundle(args.adapter)
        if model.degradations != DEGRADATIONS:
            raise SystemExit(f"{args.adapter} knows {model.degradations}, not {DEGRADATIONS}")
        return model, f"the adapter in `{args.adapter}`"
    torch.manual_seed(args.seed)
    model = pa.inject_pip(build_backbone("nafnet", "small"), degradations=DEGRADATIONS)
    data = SyntheticAllInOne(
        degradations=RESTORED,
        patch_size=64,
        samples_per_degradation=64,
        seed=args.seed,
        context=16,
    )
    config = TrainConfig(
        steps=args.restoration_steps, batch_size=8, lr=2e-3, loss="psnr", seed=args.seed
    )
    Trainer(model, data, config, run_name="NAFNet-small + PIP").fit()
    return model, f"NAFNet-small + PIP trained here for {args.restoration_steps} steps"


def blind_vs_oracle(model, sensor, split: str, args) -> tuple[str, float]:
    """Oracle labels against the sensor's weights on ``split``, clean images included (an image
    that needs nothing: the oracle returns it unchanged)."""
    photos = sample_images(split)
    sets = [
        build_eval_set(photos, DEGRADATIONS, seed=args.seed + s, crop=args.eval_crop)
        for s in range(args.eval_seeds)
    ]
    dataset = torch.utils.data.ConcatDataset(sets)
    model.sensor = None
    oracle = evaluate(model, dataset, DEGRADATIONS, conditioned=True)
    model.sensor = sensor
    blind = evaluate(model, dataset, DEGRADATIONS, conditioned=False)
    hits = {degradation: [] for degradation in DEGRADATIONS}
    with torch.no_grad():
        for degraded, _, degradation_id in dataset:
            hits[DEGRADATIONS[degradation_id]].append(
                sensor(degraded[None]).argmax(-1).item() == degradation_id
            )
    lines = [
        "| degradation | input PSNR | oracle label PSNR / SSIM | blind (sensor) PSNR / SSIM "
        "| blind − oracle | sensor accuracy |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for degradation in (*RESTORED, "average", CLEAN):
        o, b = oracle[degradation], blind[degradation]
        if degradation == "average":
            counted = [h for d, h in hits.items() if d != CLEAN]
            rate = sum(map(sum, counted)) / sum(map(len, counted))
        else:
            rate = sum(hits[degradation]) / len(hits[degradation])
        name = {"average": "**average**", CLEAN: "clean (not in the average)"}.get(
            degradation, degradation
        )
        if degradation == CLEAN:  # the input is the clean image, the oracle returns it
            lines.append(
                f"| {name} | identical | identical | {b['psnr']:.2f} / {b['ssim']:.4f} | – | "
                f"{100 * rate:.1f}% |"
            )
            continue
        lines.append(
            f"| {name} | {o['input_psnr']:.2f} | {o['psnr']:.2f} / {o['ssim']:.4f} | "
            f"{b['psnr']:.2f} / {b['ssim']:.4f} | {b['psnr'] - o['psnr']:+.3f} dB | "
            f"{100 * rate:.1f}% |"
        )
    return "\n".join(lines), blind["average"]["psnr"] - oracle["average"]["psnr"]


def measurement_key(args: argparse.Namespace, sensor: pa.DegradationSensor) -> dict:
    """What the page's measurements and its Cost entry must share to sit side by side: the
    files of ``--adapter`` (``None``: a model trained here, timed alike whatever its weights),
    the sensor's settings its time depends on (all but the temperature; not its weights: an
    untrained sensor times the same), and a digest of the library's code."""
    settings = {k: v for k, v in sensor.config().items() if k != "temperature"}
    return {
        "adapter": None if args.adapter is None else files_digest(args.adapter),
        "sensor": settings,
        "code": code_digest(),
    }


def key_differences(kept: dict | None, key: dict) -> list[str]:
    """The parts (in words) in which a kept measurement's key differs from ``key``: every part
    for one kept without a key (measured before keys were kept)."""
    kept = kept or {}
    return [words for part, words in KEY_PARTS.items() if kept.get(part) != key[part]]


def kept_cost(record: dict, key: dict) -> dict | None:
    """``--cost keep``: the record's Cost entry if it was measured with ``key``, else ``None``
    (the page then says it is not measured, and why is printed)."""
    cost = record.get("cost")
    if cost is None:
        return None
    differs = key_differences(cost.get("key"), key)
    if differs:
        print(
            f"the kept Cost entry was measured with {' / '.join(differs)}: not kept; "
            "`--cost only` on a quiet machine measures it for this page",
            flush=True,
        )
        return None
    return cost


def measure_cost(sensor, model, model_text: str, args, command: str) -> dict:
    """Median time per image of the sensor, ``model`` and NAFNet-official + PIP (a quiet
    machine only), as the record's Cost entry: the table, what measured it and its key."""
    official = pa.inject_pip(build_backbone("nafnet", "official"), degradations=DEGRADATIONS).eval()
    lines = [
        "| input | sensor | this restoration model | sensor / it | NAFNet-official + PIP "
        "| sensor / it |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    with torch.no_grad():
        for side in (256, 512):
            x = torch.rand(1, 3, side, side)
            s = seconds(sensor, x)
            m = seconds(lambda image: model(image, degradation="rain"), x)
            o = seconds(lambda image: official(image, degradation="rain"), x)
            lines.append(
                f"| {side}×{side} | {1000 * s:.0f} ms | {1000 * m:.0f} ms | {100 * s / m:.0f}% | "
                f"{1000 * o:.0f} ms | {100 * s / o:.1f}% |"
            )
    return {
        "command": command,
        "date": date.today().isoformat(),
        "machine": describe_machine(args.threads),
        "threads": args.threads,
        "model": model_text,
        "table": "\n".join(lines),
        "key": measurement_key(args, sensor),
    }


def cost_section(cost: dict | None) -> str:
    """The page's Cost section from the record's Cost entry (None: not measured yet)."""
    if cost is None:
        return (
            "Not measured yet: `python benchmarks/sensor_accuracy.py --cost only` with this "
            "page's `--adapter` options, on a quiet machine, adds it."
        )
    return f"""`{cost["command"]}` — {cost["date"]}, {cost["machine"]}.

Median time per image (no grad, {cost["threads"]} thread(s)), next to the restoration model used
below ({cost["model"]}) and to NAFNet in its official configuration (width 32, 36 blocks) with
PIP, as a realistically sized network to steer:

{cost["table"]}"""


@torch.no_grad()
def mixture(model, sensor, args) -> tuple[str, str]:
    """Rain + noise composites: the sensor's weights, and PSNR with each way of steering."""
    model.eval()
    model.sensor = sensor
    pairs = []
    for p, photo in enumerate(sample_images("test")):
        for d in range(args.eval_seeds):
            g = torch.Generator().manual_seed(args.seed * 7919 + p * 101 + d)
            clean = random_crop(photo, args.eval_crop, g)[None]
            pairs.append((degrade(clean, "rain+noise", generator=g), clean))
    steering = {
        "input (no restoration)": "input",
        "label: rain": "rain",
        "label: noise": "noise",
        "mixture rain:0.5,noise:0.5": {"rain": 0.5, "noise": 0.5},
        "mixture rain:0.3,noise:0.7": {"rain": 0.3, "noise": 0.7},
        "blind (sensor's soft weights)": None,
    }
    scores = {name: ([], []) for name in steering}
    weights = []
    for degraded, clean in pairs:
        weights.append(sensor.predict_weights(degraded)[0])
        for name, degradation in steering.items():
            if degradation == "input":
                output = degraded
            else:
                output = model(degraded, degradation=degradation).clamp(0, 1)
            scores[name][0].append(psnr(output, clean).item())
            scores[name][1].append(ssim(output, clean).item())
    weights = torch.stack(weights)
    rain, noise = DEGRADATIONS.index("rain"), DEGRADATIONS.index("noise")
    parts = weights[:, [rain, noise]]
    weight_text = (
        "mean over images: "
        + ", ".join(
            f"{t} {100 * w:.1f}%"
            for t, w in zip(DEGRADATIONS, weights.mean(0).tolist(), strict=True)
        )
        + f". Rain and noise together get {100 * parts.sum(1).mean():.1f}% of the weight; the "
        f"larger of the two gets {100 * parts.max(1).values.mean():.1f}% on average, the smaller "
        f"{100 * parts.min(1).values.mean():.1f}% (per image, the smaller share ranges from "
        f"{100 * parts.min(1).values.min():.1f}% to {100 * parts.min(1).values.max():.1f}%)"
    )
    psnrs = {name: statistics.mean(values[0]) for name, values in scores.items()}
    lines = ["| steering | PSNR | SSIM |", "| --- | ---: | ---: |"]
    for name, (_, s_values) in scores.items():
        lines.append(f"| {name} | {psnrs[name]:.2f} | {statistics.mean(s_values):.4f} |")
    blind = psnrs["blind (sensor's soft weights)"]
    best, other = sorted(("label: rain", "label: noise"), key=psnrs.get, reverse=True)
    summary = (
        f"Blind restoration with the sensor's weights reaches {blind:.2f} dB: "
        f"{blind - psnrs[best]:+.2f} dB against the better single label ({best[7:]}), "
        f"{blind - psnrs[other]:+.2f} dB against the other ({other[7:]}), and "
        f"{blind - psnrs['mixture rain:0.5,noise:0.5']:+.2f} dB against the even mixture."
    )
    return "\n".join(lines), weight_text, summary


PAGE = """# Degradation sensor (blind mode)

`{command}` — {date}, {machine}, timm {timm}.

A `DegradationSensor` ({backbone}, {sensor_params}
parameters, crops of {crop_size} px, at most {crops_per_side}×{crops_per_side}
per image) for the five degradations and `"clean"` (an image that needs nothing), trained with
`train_sensor` with batches of {batch_size} crops
({recipe}; used here with test-time views
{views} and temperature {temperature}): {trained_text}.
Everything below is measured on two held-out sets the sensor never saw, with a fresh
degradation draw (fixed seeds) for every image: the three bundled held-out photos
({test_names}) and the eight out-of-domain photos (animals, flowers, a regatta, ruins, a city
at night, a micrograph). A clean image is a photo as it is.

## Accuracy on held-out photos

{accuracy_table}

{goal}

Confusion matrices (rows: true class, columns: prediction):

{matrix_text}

## Confidence

The sensor's weights are a softmax over its classes, and blind restoration uses them as they
are: an unsure prediction steers a mixture, not a hard label (`pip-adapter restore` prints
each image's prediction and, below a top weight of {sure_at}, calls it unsure). How the top
weight relates to accuracy on the images above:

{confidence}

## Cost

{cost}

## Blind vs oracle restoration

{model_text}; {eval_seeds} draws of every degradation on the centred
{eval_crop}×{eval_crop} crop of each held-out photo. *Oracle* passes the true label
(`"clean"` for a clean image, which then comes back identical), *blind* calls `model(x)`, which
asks the sensor for soft weights. The clean row gives the PSNR of what blind mode returns for a
clean image, against the image itself.

{restoration_text}

## Mixtures: rain + noise

`degrade(x, "rain+noise")` (streaks, then Gaussian noise) on {eval_seeds} random
{eval_crop}×{eval_crop} crops of each bundled held-out photo; no model saw composites
in training. The sensor's weights on these images, {weight_text}.

{mixture_table}

{mixture_summary}

The degradation-aware prompt is `w @ D`, so a mixture steers each PIP unit with a blend of the
prompts of its parts; the same weights come from `--degradation rain:0.5,noise:0.5` on the
command line, from `model(x, degradation={{"rain": 0.5, "noise": 0.5}})`, or, in blind mode,
from the sensor.
"""


def write_page(out: Path, page: dict, cost: dict | None) -> str:
    """Write the record (``page``'s measurements and the Cost entry) and the page made from it."""
    write_json(out / RECORD, {"page": page, "cost": cost})
    report = PAGE.format(**page, cost=cost_section(cost))
    write_text(out / "sensor.md", report)
    return report


def time_alone(args: argparse.Namespace, command: str) -> None:
    """``--cost only``: time the sensor and ``--adapter``'s model (a quiet machine only) and
    keep it as the record's Cost entry; write the page again from the record if it has the
    rest (else a later ``--cost keep`` run measures the rest and writes the page)."""
    if args.adapter is None:
        raise SystemExit(
            "--cost only needs --adapter (the restoration model the Cost section times)"
        )
    path = args.out / RECORD
    page = json.loads(path.read_text())["page"] if path.is_file() else None
    if args.sensor_from_adapter:
        sensor = adapter_sensor(args)
    else:  # untrained: its time does not depend on its weights
        sensor = pa.DegradationSensor(DEGRADATIONS, backbone=args.backbone).eval()
    if page is not None:
        differs = key_differences(page.get("key"), measurement_key(args, sensor))
        if differs:
            raise SystemExit(
                f"{path}'s page was measured with {' / '.join(differs)}: run "
                "`--cost keep` first (the rest from this code), then `--cost only`"
            )
    model, model_text = restoration_model(args)
    cost = measure_cost(sensor, model.eval(), model_text, args, command)
    if page is None:
        write_json(path, {"page": None, "cost": cost})
        print(f"{path}: the Cost entry; `--cost keep` measures the rest and writes the page")
        return
    print(write_page(args.out, page, cost))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1)")
    parser.add_argument("--backbone", default=DEFAULT_SENSOR_BACKBONE, help="timm model name")
    parser.add_argument(
        "--sensor-steps", type=int, default=DEFAULT_SENSOR_STEPS, help="sensor training steps"
    )
    parser.add_argument("--batch-size", type=int, default=16, help="sensor batch size (16)")
    parser.add_argument("--lr", type=float, default=2e-3, help="sensor peak learning rate")
    parser.add_argument("--draws", type=int, default=DRAWS, help="draws per photo and degradation")
    parser.add_argument("--adapter", type=Path, help="trained NAFNet/... adapter bundle folder")
    parser.add_argument(
        "--sensor-from-adapter",
        action="store_true",
        help="use the sensor of --adapter (trained with the same settings, e.g. by "
        "benchmarks/quality.py) instead of training one here",
    )
    parser.add_argument("--restoration-steps", type=int, default=600, help="without --adapter")
    parser.add_argument("--eval-crop", type=int, default=256, help="restoration crop side (256)")
    parser.add_argument(
        "--eval-seeds", type=int, default=4, help="draws per photo and degradation (4)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    parser.add_argument(
        "--cost",
        choices=("measure", "keep", "only"),
        default="measure",
        help="the Cost section (a timing: quiet machine only): measure it with the rest "
        "(default), keep the record's, or measure it alone and rewrite the page from the record",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    command = " ".join(["python", "benchmarks/sensor_accuracy.py", *sys.argv[1:]])
    record_path = args.out / RECORD
    if args.cost == "only":
        time_alone(args, command)
        return

    if args.sensor_from_adapter:
        sensor = adapter_sensor(args)
        trained_text = (
            f"the sensor of `{args.adapter}`, which `benchmarks/quality.py` trained with these "
            "settings (its training time is not measured here)"
        )
    else:
        torch.manual_seed(args.seed)
        sensor = pa.DegradationSensor(DEGRADATIONS, backbone=args.backbone)  # "clean" included
        started = time.perf_counter()
        train_sensor(
            sensor,
            sensor_photos(SENSOR_RECIPE["photos"]),
            steps=args.sensor_steps,
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed,
        )
        trained_text = f"**{time.perf_counter() - started:.0f} s** on this CPU"
    print(f"sensor ({args.backbone}): {trained_text}")

    accuracy_lines = [
        "| held-out images | images | sensor crops per image | accuracy |",
        "| --- | ---: | ---: | ---: |",
    ]
    matrices, samples = [], {}
    for split, title in SETS.items():
        photos = sample_images(split)
        draws = crop_draws(len(photos), args.draws)
        settings = [(f"random {s}×{s} crops", s, draws) for s in (128, 256)]
        settings.append(("whole photos", None, whole_photo_draws(len(photos), args.draws)))
        for label, size, count in settings:
            weights, truth = predictions(sensor, photos, size, count, args.seed)
            counts = confusion(weights, truth)
            shapes = {(size, size) if size else tuple(p.shape[-2:]) for p in photos}
            crops = {
                crop_grid(torch.zeros(1, 3, *hw), sensor.crop_size, sensor.crops_per_side).shape[1]
                for hw in shapes
            }
            rate = f"**{100 * accuracy(counts):.1f}%**"
            crops_text = ", ".join(str(n) for n in sorted(crops))
            name = f"{title}, {label}"
            accuracy_lines.append(f"| {name} | {counts.sum().item()} | {crops_text} | {rate} |")
            matrices.append((name, counts))
            samples[name] = (weights, truth)
            print(f"{name}: accuracy {100 * accuracy(counts):.1f}%")
    accuracy_table = "\n".join(accuracy_lines)
    goal = accuracy_goal(accuracy(dict(matrices)[f"{SETS['ood']}, whole photos"]))
    confidence = confidence_table(samples)

    model, model_text = restoration_model(args)
    model.eval()
    cost = (
        measure_cost(sensor, model, model_text, args, command) if args.cost == "measure" else None
    )
    restorations = {split: blind_vs_oracle(model, sensor, split, args) for split in SETS}
    mixture_table, weight_text, mixture_summary = mixture(model, sensor, args)

    matrix_text = "\n\n".join(
        f"{label}:\n\n{confusion_table(counts)}" for label, counts in matrices
    )
    restoration_text = "\n\n".join(
        f"{SETS[split].capitalize()}: average blind − oracle **{gap:+.3f} dB** (on this "
        "page's crops and draws, a diagnostic: issue 19's goal, blind within 0.10 dB of the "
        "labels, is judged on the quality benchmark's whole photos, in "
        f"[blur_strength.md](blur_strength.md)'s section on issue 19's goals).\n\n{table}"
        for split, (table, gap) in restorations.items()
    )
    page = {
        "command": command,
        "date": date.today().isoformat(),
        "machine": describe_machine(args.threads),
        "timm": timm.__version__,
        "backbone": args.backbone,
        "sensor_params": f"{sum(p.numel() for p in sensor.parameters()):,d}",
        "crop_size": sensor.crop_size,
        "crops_per_side": sensor.crops_per_side,
        "batch_size": args.batch_size,
        "recipe": describe_sensor_recipe(args.sensor_steps),
        "views": describe_views(sensor.views),
        "temperature": f"{sensor.temperature:.3g}",
        "trained_text": trained_text,
        "test_names": ", ".join(pa.data.sample_image_names("test")),
        "accuracy_table": accuracy_table,
        "goal": goal,
        "matrix_text": matrix_text,
        "sure_at": SURE_AT,
        "confidence": confidence,
        "model_text": model_text,
        "eval_seeds": args.eval_seeds,
        "eval_crop": args.eval_crop,
        "restoration_text": restoration_text,
        "weight_text": weight_text,
        "mixture_table": mixture_table,
        "mixture_summary": mixture_summary,
        "key": measurement_key(args, sensor),
    }
    if args.cost == "keep" and record_path.is_file():
        cost = kept_cost(json.loads(record_path.read_text()), page["key"])
    report = write_page(args.out, page, cost)
    print()
    print(report)


if __name__ == "__main__":
    main()
