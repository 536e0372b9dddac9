"""The fine-tuning recipe behind ``pip-adapter train`` and the example scripts.

Build or load a backbone, inject PIP with its preset, train (the adapter alone when starting
from a checkpoint), optionally train a degradation sensor for blind mode, evaluate per
degradation, and save a bundle that ``pip-adapter eval`` / ``restore`` and
:func:`pip_adapter.bundle.load_bundle` read back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pip_adapter.backbones import BACKBONES, build_backbone, load_backbone
from pip_adapter.bundle import save_bundle
from pip_adapter.conditioning import DEFAULT_DEGRADATIONS
from pip_adapter.data import SyntheticAllInOne
from pip_adapter.data.sources import training_data
from pip_adapter.injection import PIPModel, inject_pip
from pip_adapter.sensor import DEFAULT_SENSOR_BACKBONE, DegradationSensor
from pip_adapter.training import TrainConfig, Trainer, train_sensor

__all__ = ["SMOKE", "FinetuneRecipe", "finetune"]

# a tiny configuration that runs the whole recipe in seconds on a CPU
SMOKE: dict[str, Any] = {
    "size": "tiny",
    "steps": 3,
    "batch_size": 2,
    "patch_size": 32,
    "sensor_steps": 2,
    "checkpoint_every": 0,
}


@dataclass
class FinetuneRecipe:
    """Everything one fine-tuning run needs; the fields mirror ``pip-adapter train``'s options."""

    backbone: str
    checkpoint: Path | None = None
    size: str = "official"
    data: str = "samples"
    tasks: tuple[str, ...] = DEFAULT_DEGRADATIONS
    native_degradations: tuple[str, ...] = ()
    patch_size: int = 128
    steps: int = 2000
    batch_size: int = 8
    lr: float = 5e-4
    full: bool = False
    amp: str | None = None
    val_every: int = 0
    checkpoint_every: int = 500
    resume: bool = False
    workers: int = 0
    seed: int = 0
    device: str | None = None
    sensor_steps: int = 300
    sensor_backbone: str = DEFAULT_SENSOR_BACKBONE
    out: Path = Path("runs/train")

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.checkpoint = Path(self.checkpoint) if self.checkpoint is not None else None
        self.tasks = tuple(self.tasks)
        self.native_degradations = tuple(self.native_degradations)
        if self.backbone not in BACKBONES:
            raise ValueError(
                f"unknown backbone {self.backbone!r}; choose one of {sorted(BACKBONES)}"
            )
        if self.sensor_steps < 0:
            raise ValueError(f"sensor_steps must be >= 0, got {self.sensor_steps}")


def finetune(recipe: FinetuneRecipe) -> tuple[PIPModel, dict | None]:
    """Run the recipe; returns the trained model and its per-degradation validation report
    (``None`` on ranks other than 0 under torchrun). The bundle goes to ``recipe.out/adapter``."""
    train_set, val_set = training_data(recipe.data, recipe.tasks, recipe.patch_size, recipe.seed)
    if recipe.checkpoint is not None:
        backbone = load_backbone(recipe.checkpoint, expected=recipe.backbone)
    else:
        backbone = build_backbone(recipe.backbone, recipe.size)
    model = inject_pip(
        backbone, degradations=recipe.tasks, native_degradations=recipe.native_degradations
    )
    train_backbone = recipe.full or recipe.checkpoint is None
    if not train_backbone:
        model.freeze_backbone()
    model.print_trainable_parameters()
    config = TrainConfig(
        steps=recipe.steps,
        batch_size=recipe.batch_size,
        lr=recipe.lr,
        amp=recipe.amp,
        val_every=recipe.val_every,
        checkpoint_every=recipe.checkpoint_every,
        num_workers=recipe.workers,
        seed=recipe.seed,
        device=recipe.device,
    )
    trainer = Trainer(model, train_set, config, out_dir=recipe.out, val_set=val_set)
    if recipe.resume:
        trainer.resume()
    report = trainer.fit()
    if not trainer.context.is_main:
        return model, None
    if recipe.sensor_steps:
        sensor = DegradationSensor(
            recipe.tasks, recipe.sensor_backbone, crop_size=recipe.patch_size
        )
        # synthetic data: the sensor draws its own (recoloured) crops from the same photos
        source = train_set.sources if isinstance(train_set, SyntheticAllInOne) else train_set
        model.sensor = train_sensor(
            sensor,
            source,
            steps=recipe.sensor_steps,
            seed=recipe.seed,
            num_workers=recipe.workers,
            device=trainer.context.device,
        )
    save_bundle(
        model,
        recipe.out / "adapter",
        backbone=recipe.backbone,
        size=None if recipe.checkpoint else recipe.size,
        checkpoint=recipe.checkpoint,
        save_backbone_weights=train_backbone,
    )
    return model, report
