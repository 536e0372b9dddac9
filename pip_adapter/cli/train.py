"""``pip-adapter train``: inject PIP into a backbone and train it on a chosen data source."""

from __future__ import annotations

import argparse
from pathlib import Path

from pip_adapter.backbones import BACKBONES, build_backbone, load_backbone
from pip_adapter.bundle import save_bundle
from pip_adapter.cli.common import add_data_arguments, parse_tasks, training_data
from pip_adapter.data import SyntheticAllInOne
from pip_adapter.injection import inject_pip
from pip_adapter.sensor import DEFAULT_SENSOR_BACKBONE, DegradationSensor
from pip_adapter.training import TrainConfig, Trainer, format_metrics_table, train_sensor

HELP = "inject PIP into a backbone and train it (adapter only when starting from a checkpoint)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backbone", required=True, choices=sorted(BACKBONES), help="restoration network"
    )
    parser.add_argument(
        "--size",
        default="official",
        choices=("official", "small", "tiny"),
        help="backbone configuration when not loading --checkpoint (official)",
    )
    parser.add_argument(
        "--checkpoint", type=Path, help="backbone weights (.pth/.safetensors, e.g. official)"
    )
    add_data_arguments(parser)
    parser.add_argument("--steps", type=int, default=2000, help="training steps (2000)")
    parser.add_argument("--batch-size", type=int, default=8, help="patches per step and GPU (8)")
    parser.add_argument("--lr", type=float, default=5e-4, help="peak learning rate (5e-4)")
    parser.add_argument(
        "--full",
        action="store_true",
        help="also fine-tune the backbone (default with --checkpoint: adapter only)",
    )
    parser.add_argument(
        "--sensor-steps",
        type=int,
        default=300,
        help="then train a degradation sensor for blind restoration (--degradation auto, "
        "eval --blind) on the same data for N steps; 0: no sensor (300)",
    )
    parser.add_argument(
        "--sensor-backbone",
        default=DEFAULT_SENSOR_BACKBONE,
        help=f"timm model name of the sensor ({DEFAULT_SENSOR_BACKBONE})",
    )
    parser.add_argument("--amp", choices=("bf16", "fp16"), help="mixed precision (CUDA)")
    parser.add_argument("--val-every", type=int, default=0, help="validate every N steps")
    parser.add_argument("--checkpoint-every", type=int, default=500, help="save every N steps")
    parser.add_argument("--resume", action="store_true", help="continue OUT/checkpoint.pt")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers (0)")
    parser.add_argument("--seed", type=int, default=0, help="seed of data and weights (0)")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: best)")
    parser.add_argument("--out", type=Path, default=Path("runs/train"), help="output folder")


def run(args: argparse.Namespace) -> None:
    if args.sensor_steps < 0:
        raise ValueError(f"--sensor-steps must be >= 0, got {args.sensor_steps}")
    tasks = parse_tasks(args.tasks)
    sensor = None
    if args.sensor_steps:
        sensor = DegradationSensor(tasks, args.sensor_backbone, crop_size=args.patch_size)
    train_set, val_set = training_data(args.data, tasks, args.patch_size, args.seed)
    if args.checkpoint is not None:
        backbone = load_backbone(args.checkpoint, expected=args.backbone)
    else:
        backbone = build_backbone(args.backbone, args.size)
    model = inject_pip(backbone, degradations=tasks)
    train_backbone = args.full or args.checkpoint is None
    if not train_backbone:
        model.freeze_backbone()
    model.print_trainable_parameters()
    config = TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        amp=args.amp,
        val_every=args.val_every,
        checkpoint_every=args.checkpoint_every,
        num_workers=args.workers,
        seed=args.seed,
        device=args.device,
    )
    trainer = Trainer(model, train_set, config, out_dir=args.out, val_set=val_set)
    if args.resume:
        trainer.resume()
    report = trainer.fit()
    if trainer.context.is_main:
        if sensor is not None:
            # synthetic data: the sensor draws its own (recoloured) crops from the same photos
            source = train_set.sources if isinstance(train_set, SyntheticAllInOne) else train_set
            model.sensor = train_sensor(
                sensor,
                source,
                steps=args.sensor_steps,
                seed=args.seed,
                num_workers=args.workers,
                device=trainer.context.device,
            )
        save_bundle(
            model,
            args.out / "adapter",
            backbone=args.backbone,
            size=None if args.checkpoint else args.size,
            checkpoint=args.checkpoint,
            save_backbone_weights=train_backbone,
        )
        if report is not None:
            print(format_metrics_table({"PIP": report}))
        print(f"adapter written to {args.out / 'adapter'}")
