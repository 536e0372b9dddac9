"""The fine-tuning recipe behind ``pip-adapter train`` and the example scripts.

Build or load a backbone, inject PIP with its preset, train (the adapter alone when starting
from a checkpoint), optionally train a degradation sensor for blind mode, evaluate per
degradation, and save a bundle that ``pip-adapter eval`` / ``restore`` and
``pip_adapter.bundle.load_bundle`` read back.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pip_adapter.backbones import BACKBONES, build_backbone, load_backbone
from pip_adapter.bundle import save_bundle
from pip_adapter.config import PIPConfig
from pip_adapter.data import SyntheticAllInOne
from pip_adapter.data.sources import training_data
from pip_adapter.injection import PIPModel, inject_pip
from pip_adapter.sensor import DEFAULT_SENSOR_BACKBONE, DegradationSensor
from pip_adapter.training import TrainConfig, Trainer, train_sensor
from pip_adapter.training.run_folder import check_run_folder

__all__ = ["FinetuneRecipe", "finetune"]


@dataclass
class FinetuneRecipe:
    """Everything one fine-tuning run needs; ``pip-adapter train``'s options fill it (and take
    their defaults from it).

    ``pip`` holds the PIP settings (``pip.degradations`` are also the degradations of the data
    and the sensor) and ``train`` the trainer's; the other fields say which backbone, which
    data, and what to do around training. Without ``checkpoint`` the backbone of size ``size``
    is trained from scratch with the adapter; with one, the adapter alone (``full`` trains both).
    An ``out`` that holds a previous run is refused unless ``resume`` (continue it, with the
    same settings) or ``overwrite`` (replace it).
    """

    backbone: str
    checkpoint: Path | None = None
    size: str = "official"
    data: str = "samples"
    patch_size: int = 128
    full: bool = False
    resume: bool = False
    overwrite: bool = False
    sensor_steps: int = 300
    sensor_backbone: str = DEFAULT_SENSOR_BACKBONE
    out: Path = Path("runs/train")
    pip: PIPConfig = field(default_factory=PIPConfig)
    # long runs: a resumable checkpoint every 500 steps
    train: TrainConfig = field(default_factory=lambda: TrainConfig(checkpoint_every=500))

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.checkpoint = Path(self.checkpoint) if self.checkpoint is not None else None
        if self.backbone not in BACKBONES:
            raise ValueError(
                f"unknown backbone {self.backbone!r}; choose one of {sorted(BACKBONES)}"
            )
        if self.sensor_steps < 0:
            raise ValueError(f"sensor_steps must be >= 0, got {self.sensor_steps}")
        if self.resume and self.overwrite:
            raise ValueError(
                "resume and overwrite exclude each other: continue the run or replace it"
            )

    def settings(self) -> dict[str, Any]:
        """What defines the run besides the trainer's settings: saved in its checkpoints, and
        compared when it is resumed (paths absolute, so that resuming from another folder
        compares the same files)."""
        return {
            "backbone": self.backbone,
            "size": None if self.checkpoint else self.size,
            "checkpoint": str(self.checkpoint.resolve()) if self.checkpoint else None,
            "data": self.data if self.data == "samples" else str(Path(self.data).resolve()),
            "patch_size": self.patch_size,
            "full": self.full,
            "pip": self.pip.to_dict(),
        }

    def smoke(self) -> FinetuneRecipe:
        """The same recipe in a tiny configuration that runs in seconds on a CPU."""
        train = dataclasses.replace(self.train, steps=3, batch_size=2, checkpoint_every=0)
        return dataclasses.replace(self, size="tiny", patch_size=32, sensor_steps=2, train=train)


def finetune(recipe: FinetuneRecipe) -> tuple[PIPModel, dict | None]:
    """Run the recipe; returns the trained model and its per-degradation validation report
    (``None`` on ranks other than 0 under torchrun). The bundle goes to ``recipe.out/adapter``."""
    check_run_folder(recipe.out, resume=recipe.resume, overwrite=recipe.overwrite)
    degradations, seed = recipe.pip.degradations, recipe.train.seed
    train_set, val_set = training_data(recipe.data, degradations, recipe.patch_size, seed)
    if recipe.checkpoint is not None:
        backbone = load_backbone(recipe.checkpoint, expected=recipe.backbone)
    else:
        backbone = build_backbone(recipe.backbone, recipe.size)
    model = inject_pip(backbone, recipe.pip)
    train_backbone = recipe.full or recipe.checkpoint is None
    if not train_backbone:
        model.freeze_backbone()
    model.print_trainable_parameters()
    # the model is written once, as the bundle below (with the sensor and the backbone recipe)
    trainer = Trainer(
        model,
        train_set,
        recipe.train,
        out_dir=recipe.out,
        val_set=val_set,
        save_model=False,
        overwrite=recipe.overwrite,
        settings=recipe.settings(),
    )
    if recipe.resume:
        trainer.resume()
    report = trainer.fit()
    if not trainer.context.is_main:
        return model, None
    if recipe.sensor_steps:
        sensor = DegradationSensor(
            degradations, recipe.sensor_backbone, crop_size=recipe.patch_size
        )
        # synthetic data: the sensor draws its own (recoloured) crops from the same photos
        source = train_set.sources if isinstance(train_set, SyntheticAllInOne) else train_set
        model.sensor = train_sensor(
            sensor,
            source,
            steps=recipe.sensor_steps,
            seed=seed,
            num_workers=recipe.train.num_workers,
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
