"""``pip-adapter demo``: the same small NAFNet trained with and without PIP on the bundled
photos (five degradations), compared on two held-out sets: the bundled held-out photos and the
out-of-domain ones."""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Literal

import torch

from pip_adapter.backbones import build_backbone
from pip_adapter.bundle import save_bundle
from pip_adapter.conditioning import DEFAULT_DEGRADATIONS
from pip_adapter.data import SyntheticAllInOne, build_eval_set
from pip_adapter.evaluation import evaluate
from pip_adapter.files import write_json, write_text
from pip_adapter.injection import inject_pip
from pip_adapter.training import TrainConfig, Trainer, format_metrics_table, plot_curves
from pip_adapter.training.report import JsonLinesLog
from pip_adapter.training.run_folder import check_run_folder
from pip_adapter.visualize import save_image_grid

HELP = "train a small NAFNet with and without PIP on the bundled photos and compare them"

# the held-out sets the demo reports, by split name: what its tables call them
EVAL_SETS: dict[Literal["test", "ood"], str] = {
    "test": "Bundled held-out photos (3, like the training ones)",
    "ood": "Out-of-domain held-out photos (8, of other kinds)",
}


# the demo's training: short, with a higher learning rate than fine-tuning's
DEMO_TRAINING = TrainConfig(steps=800, lr=2e-3)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    train = DEMO_TRAINING
    parser.add_argument(
        "--steps", type=int, default=train.steps, help="training steps per model (%(default)s)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("runs/demo"), help="output folder (%(default)s)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=train.batch_size, help="patches per step (%(default)s)"
    )
    parser.add_argument(
        "--patch-size", type=int, default=64, help="training patch side (%(default)s)"
    )
    parser.add_argument(
        "--eval-crop", type=int, default=128, help="held-out crop side (%(default)s)"
    )
    parser.add_argument(
        "--lr", type=float, default=train.lr, help="peak learning rate (%(default)s)"
    )
    parser.add_argument(
        "--seed", type=int, default=train.seed, help="seed of data and weights (%(default)s)"
    )
    parser.add_argument("--device", default=train.device, help="cpu, cuda, ... (default: best)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the outputs of a previous demo in OUT"
    )


# what the demo writes to its output folder
DEMO_OUTPUTS = (
    "plain",
    "pip",
    "results.md",
    "results.json",
    "comparison.png",
    "interactive_control.png",
    "training_curves.png",
)


def _train(name, model, train_set, val_set, args, out: Path, save_model: bool) -> None:
    config = dataclasses.replace(
        DEMO_TRAINING,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        val_every=max(1, args.steps // 4),
        seed=args.seed,
        device=args.device,
    )
    trainer = Trainer(
        model,
        train_set,
        config,
        out_dir=out,
        val_set=val_set,
        run_name=name,
        save_model=save_model,
        overwrite=args.overwrite,
    )
    trainer.fit()


@torch.no_grad()
def _pictures(plain, pip, val_set, out: Path) -> None:
    """One row per degradation (first held-out photo), and PIP steered by every prompt."""
    plain.eval()
    pip.eval()
    device = next(pip.parameters()).device
    rows, labels = [], []
    first = {}
    for index in range(len(val_set)):
        degraded, clean, degradation = val_set[index]
        if degradation in first:
            continue
        first[degradation] = index
        x = degraded[None].to(device)
        rows.append(
            [
                degraded,
                plain(x)[0].cpu(),
                pip(x, degradation=torch.tensor([degradation]))[0].cpu(),
                clean,
            ]
        )
        labels.append(val_set.degradations[degradation])
    save_image_grid(
        out / "comparison.png", rows, ("degraded", "plain NAFNet", "NAFNet + PIP", "clean"), labels
    )
    degraded, clean, degradation = val_set[first[val_set.degradations.index("rain")]]
    x = degraded[None].to(device)
    strip = (
        [degraded] + [pip(x, degradation=name)[0].cpu() for name in val_set.degradations] + [clean]
    )
    save_image_grid(
        out / "interactive_control.png",
        [strip],
        ("rainy input", *(f"prompt: {name}" for name in val_set.degradations), "clean"),
    )


def run(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    check_run_folder(args.out, overwrite=args.overwrite, names=DEMO_OUTPUTS)
    degradations = DEFAULT_DEGRADATIONS
    train_set = SyntheticAllInOne(
        degradations=degradations,
        patch_size=args.patch_size,
        samples_per_degradation=64,
        seed=args.seed,
    )
    eval_sets = {
        split: build_eval_set(split, degradations=degradations, seed=args.seed, crop=args.eval_crop)
        for split in EVAL_SETS
    }
    val_set = eval_sets["test"]
    out: Path = args.out
    print(
        f"Training two NAFNets for {args.steps} steps each on {len(train_set.sources)} bundled "
        f"photos x {len(degradations)} degradations; evaluating on "
        f"{len(val_set) // len(degradations)} bundled held-out photos and "
        f"{len(eval_sets['ood']) // len(degradations)} out-of-domain ones."
    )
    torch.manual_seed(args.seed)
    plain = build_backbone("nafnet", "small")
    torch.manual_seed(args.seed)
    pip = inject_pip(build_backbone("nafnet", "small"), degradations=degradations)
    _train("plain", plain, train_set, val_set, args, out / "plain", save_model=True)
    _train("PIP", pip, train_set, val_set, args, out / "pip", save_model=False)  # a bundle, below
    reports = {
        split: {
            "plain NAFNet": evaluate(plain, dataset, conditioned=False),
            "NAFNet + PIP": evaluate(pip, dataset),
        }
        for split, dataset in eval_sets.items()
    }
    tables = "\n\n".join(
        f"{EVAL_SETS[split]}, {args.eval_crop}² centre crops:\n\n"
        + format_metrics_table(reports[split])
        for split in EVAL_SETS
    )
    records = JsonLinesLog(out / "plain" / "log.jsonl").read()
    records += JsonLinesLog(out / "pip" / "log.jsonl").read()
    plot_curves(records, out / "training_curves.png", title="plain NAFNet vs NAFNet + PIP")
    _pictures(plain, pip, val_set, out)
    save_bundle(
        pip, out / "pip" / "adapter", backbone="nafnet", size="small", save_backbone_weights=True
    )
    minutes = (time.perf_counter() - started) / 60
    write_text(
        out / "results.md",
        f"{args.steps} training steps per model, {minutes:.1f} min.\n\n" + tables + "\n",
    )
    write_json(out / "results.json", reports)
    print()
    print(tables)
    print()
    print(
        f"Done in {minutes:.1f} min. Wrote to {out}/: results.md, comparison.png, "
        "interactive_control.png, training_curves.png, pip/adapter/ (for pip-adapter restore)"
    )
