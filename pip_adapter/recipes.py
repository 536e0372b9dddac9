"""The fine-tuning recipe behind ``pip-adapter train`` and the example scripts.

Build or load a backbone, inject PIP with its preset, train (the adapter alone when starting
from a checkpoint), optionally train a degradation sensor for blind mode, evaluate per
degradation, and save a bundle that ``pip-adapter eval`` / ``restore`` and
``pip_adapter.bundle.load_bundle`` read back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from pip_adapter.backbones import BACKBONES, Size, build_backbone, load_backbone
from pip_adapter.bundle import load_bundle, read_recipe, save_bundle
from pip_adapter.conditioning import CLEAN, restorable_degradations
from pip_adapter.config import PIPConfig
from pip_adapter.data import PairedImages, SyntheticAllInOne, list_images
from pip_adapter.data.merged import MergedDegradations
from pip_adapter.data.sources import photo_pairs, training_data
from pip_adapter.injection import PIPModel, inject_pip
from pip_adapter.injection.growth import GROWTH_MODES, GrowthMode
from pip_adapter.injection.presets import FULL_UNITS
from pip_adapter.sensor import DEFAULT_SENSOR_BACKBONE, DegradationSensor
from pip_adapter.training import TrainConfig, Trainer, calibrate_output_strength, train_sensor
from pip_adapter.training.run_folder import ChangedSettings, check_run_folder
from pip_adapter.training.sensor import DEFAULT_SENSOR_STEPS
from pip_adapter.training.strength import check_objective

__all__ = [
    "ADAPTER_FFN_RANK",
    "FinetuneRecipe",
    "GrowRecipe",
    "default_pip",
    "finetune",
    "grow_adapter",
    "seeded",
    "strength_pairs",
]


# The rank of each degradation's own feed-forward update (PIPConfig.degradation_ffn_rank) when
# only the adapter trains on a pretrained backbone: the transfer benchmark's rank whose mean over
# two training seeds is above one LoRA per degradation on the held-out and out-of-domain photos
# (docs/benchmarks/transfer.md, the AMD section; rank 32 was below them there).
ADAPTER_FFN_RANK = 64
# the adapter defaults before it (shared feed-forwards, then rank 32): runs made with them resume
# only with their rank given
_EARLIER_ADAPTER_FFN_RANKS = (0, 32)


def default_pip(checkpoint: Path | None, full: bool) -> PIPConfig:
    """The PIP settings of a recipe given none: ``PIPConfig()``, and when only the adapter trains
    (a checkpoint, not ``full``) each degradation's own rank-``ADAPTER_FFN_RANK`` feed-forward
    update and the full units at every stage (``FULL_UNITS``, not a preset's lighter ones): the
    adapter the transfer benchmark measures; a network trained from scratch keeps the shared
    feed-forwards and the preset's units that the quality benchmark measures."""
    adapter_only = checkpoint is not None and not full
    if adapter_only:
        return PIPConfig(degradation_ffn_rank=ADAPTER_FFN_RANK, **FULL_UNITS)
    return PIPConfig()


@dataclass
class FinetuneRecipe:
    """Everything one fine-tuning run needs; ``pip-adapter train``'s options fill it (and take
    their defaults from it).

    ``pip`` holds the PIP settings (``pip.degradations`` are also the degradations of the data
    and the sensor; ``None``: ``default_pip``, which gives a frozen pretrained backbone's
    units each degradation's own feed-forward update; a given ``pip`` is used as it is, its
    ``degradation_ffn_rank`` included: start it from ``default_pip(checkpoint, full)`` to keep
    that default) and ``train`` the trainer's; the other
    fields say which backbone, which data, and what to do around training. Without
    ``checkpoint`` the backbone of size ``size`` is trained from scratch with the adapter; with
    one, the adapter alone (``full`` trains both).

    ``clean`` (the default) adds ``"clean"`` to the degradations of the model and its sensor:
    the sensor learns to recognise images that need nothing, and blind restoration leaves them
    exactly as they are (``pip-adapter train --no-clean`` leaves it out).
    ``train.seed`` also fixes the initial weights of what the run builds (a backbone trained
    from scratch, the units, the sensor; ``seeded``): a rerun with the same seed, also in
    the same process, gives the same model bit for bit (one machine, one thread count).
    An ``out`` that holds a previous run is refused unless ``resume`` (continue it, with the
    same settings) or ``overwrite`` (replace it).

    ``strength_photos``: a folder of clean photos that are neither training nor test photos;
    after training, every degradation gets the output strength that fits them best
    (``calibrate_output_strength`` on ``strength_pairs``): one the model cannot improve on
    unseen photos is restored softly, or not at all, instead of made worse.
    ``strength_objective`` says what fits best: ``"mse"`` (least squares over every pixel) or
    ``"psnr"`` (the highest mean PSNR per photo; see ``fit_output_strength``).
    """

    backbone: str
    checkpoint: Path | None = None
    size: Size = "official"
    data: str = "samples"
    patch_size: int = 128
    full: bool = False
    resume: bool = False
    overwrite: bool = False
    sensor_steps: int = DEFAULT_SENSOR_STEPS
    sensor_backbone: str = DEFAULT_SENSOR_BACKBONE
    clean: bool = True
    strength_photos: Path | None = None
    strength_objective: str = "mse"
    out: Path = Path("runs/train")
    pip: PIPConfig | None = None
    # long runs: a resumable checkpoint every 500 steps
    train: TrainConfig = field(default_factory=lambda: TrainConfig(checkpoint_every=500))

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.checkpoint = Path(self.checkpoint) if self.checkpoint is not None else None
        check_objective(self.strength_objective)
        if self.strength_photos is not None:
            self.strength_photos = Path(self.strength_photos)
            list_images(self.strength_photos)  # a missing folder: refused before training
        if self.backbone not in BACKBONES:
            raise ValueError(
                f"unknown backbone {self.backbone!r}; choose one of {sorted(BACKBONES)}"
            )
        if self.sensor_steps < 0:
            raise ValueError(f"sensor_steps must be >= 0, got {self.sensor_steps}")
        degradations = self.pip_config().degradations
        if not self.clean and CLEAN in degradations:
            raise ValueError(
                f"clean=False (--no-clean), but {CLEAN!r} is among the degradations "
                f"{list(degradations)}; drop one of the two"
            )
        if self.resume and self.overwrite:
            raise ValueError(
                "resume and overwrite exclude each other: continue the run or replace it"
            )

    def pip_config(self) -> PIPConfig:
        """``pip``, or ``default_pip`` for this recipe's checkpoint and ``full`` if it is None."""
        return self.pip if self.pip is not None else default_pip(self.checkpoint, self.full)

    def model_config(self) -> PIPConfig:
        """``pip_config()``, with ``"clean"`` added to its degradations when ``clean`` asks
        for it."""
        pip = self.pip_config()
        if self.clean and CLEAN not in pip.degradations:
            return pip.replace(degradations=(*pip.degradations, CLEAN))
        return pip

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
            "pip": self.model_config().to_dict(),
        }

    def smoke(self) -> FinetuneRecipe:
        """The same recipe in a tiny configuration that runs in seconds on a CPU."""
        train = dataclasses.replace(self.train, steps=3, batch_size=2, checkpoint_every=0)
        return dataclasses.replace(self, size="tiny", patch_size=32, sensor_steps=2, train=train)


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """The global CPU random generator seeded with ``seed`` for the duration and restored
    after: the initial weights of what is built inside (a backbone from scratch, the units,
    the sensor) depend on the recipe's seed alone, not on what the process drew before (a
    second run in the same process, a notebook), and the caller's random stream is left as
    it was."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield


def finetune(recipe: FinetuneRecipe) -> tuple[PIPModel, dict | None]:
    """Run the recipe; returns the trained model and its per-degradation validation report
    (``None`` on ranks other than 0 under torchrun), measured at full strength, before any
    output strengths are fitted (``strength_photos``). The bundle goes to
    ``recipe.out/adapter``."""
    check_run_folder(recipe.out, resume=recipe.resume, overwrite=recipe.overwrite)
    config, seed = recipe.model_config(), recipe.train.seed
    # the data holds the degradations to restore; "clean" needs no training of the model
    degradations = restorable_degradations(config.degradations)
    train_set, val_set = training_data(recipe.data, degradations, recipe.patch_size, seed)
    strength_set = None
    if recipe.strength_photos is not None:  # read before training: bad files fail early
        strength_set = strength_pairs(recipe.strength_photos, degradations, seed)
    with seeded(seed):
        if recipe.checkpoint is not None:
            backbone = load_backbone(recipe.checkpoint, expected=recipe.backbone)
        else:
            backbone = build_backbone(recipe.backbone, recipe.size)
        model = inject_pip(backbone, config)
    train_backbone = recipe.full or recipe.checkpoint is None
    if not train_backbone:
        model.freeze_backbone()
    model.print_trainable_parameters()
    trainer, report = _fit(model, train_set, val_set, recipe)
    if not trainer.context.is_main:
        return model, None
    if recipe.sensor_steps:
        with seeded(seed):
            sensor = DegradationSensor(
                model.degradations, recipe.sensor_backbone, crop_size=recipe.patch_size
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
    if strength_set is not None:
        pairs, objective = strength_set, recipe.strength_objective
        calibrate_output_strength(model, pairs.degraded, pairs.clean, pairs.labels, objective)
        print(f"output strengths fitted on {recipe.strength_photos}: {model.config.strengths()}")
    save_bundle(
        model,
        recipe.out / "adapter",
        backbone=recipe.backbone,
        size=None if recipe.checkpoint else recipe.size,
        checkpoint=recipe.checkpoint,
        save_backbone_weights=train_backbone,
    )
    return model, report


def strength_pairs(folder: Path, degradations: tuple[str, ...], seed: int) -> PairedImages:
    """The photos of ``folder`` (256² centre crops, as the evaluation cuts them) under every
    degradation, for fitting output strengths (``FinetuneRecipe.strength_photos``)."""
    paths = list_images(folder)
    if not paths:
        raise ValueError(f"--strength-photos {folder}: no image files in it")
    return photo_pairs(paths, degradations, seed)


@dataclass
class GrowRecipe:
    """Teach a trained bundle new degradations (``pip-adapter train --adapter DIR
    --add-degradations ...``): load it, ``add_degradations``, train, fine-tune its sensor on
    every degradation, and write a new bundle to ``out/adapter``.

    ``mode="prompts"`` trains the new prompt rows alone on the new degradations (the old ones
    stay bit-exact); ``mode="light"`` also trains a small part of the units, on the new
    degradations mixed with as many samples of each old one (replay). The sensor (if
    the bundle has one) is fine-tuned for ``sensor_steps`` at ``sensor_lr`` on all the
    degradations, which keeps what it knew while it learns the new classes.
    """

    adapter: Path
    degradations: tuple[str, ...]
    mode: GrowthMode = "prompts"
    checkpoint: Path | None = None
    data: str = "samples"
    patch_size: int = 128
    resume: bool = False
    overwrite: bool = False
    # benchmarks/grow.py: 400 steps at 1e-3 named the seven degradations better than 150 at 5e-4
    sensor_steps: int = 400
    sensor_lr: float = 1e-3
    out: Path = Path("runs/grow")
    train: TrainConfig = field(default_factory=lambda: TrainConfig(checkpoint_every=500))

    def __post_init__(self) -> None:
        self.adapter, self.out = Path(self.adapter), Path(self.out)
        self.checkpoint = Path(self.checkpoint) if self.checkpoint is not None else None
        self.degradations = tuple(self.degradations)
        if self.mode not in GROWTH_MODES:
            raise ValueError(f"mode must be one of {list(GROWTH_MODES)}, got {self.mode!r}")
        if self.sensor_steps < 0:
            raise ValueError(f"sensor_steps must be >= 0, got {self.sensor_steps}")
        if self.resume and self.overwrite:
            raise ValueError(
                "resume and overwrite exclude each other: continue the run or replace it"
            )
        written = (self.out / "adapter").resolve()
        if self.adapter.resolve() in (written, self.out.resolve()):
            raise ValueError(
                f"--out {self.out} would write over the adapter it starts from "
                f"({self.adapter}); choose another folder"
            )

    def settings(self) -> dict[str, Any]:
        """What defines the run besides the trainer's settings (saved in its checkpoints and
        compared on resume; paths absolute)."""
        return {
            "adapter": str(self.adapter.resolve()),
            "degradations": list(self.degradations),
            "mode": self.mode,
            "checkpoint": str(self.checkpoint.resolve()) if self.checkpoint else None,
            "data": self.data if self.data == "samples" else str(Path(self.data).resolve()),
            "patch_size": self.patch_size,
        }

    def smoke(self) -> GrowRecipe:
        """The same recipe in a tiny configuration that runs in seconds on a CPU."""
        train = dataclasses.replace(self.train, steps=3, batch_size=2, checkpoint_every=0)
        return dataclasses.replace(self, patch_size=32, sensor_steps=2, train=train)


def _growth_sets(
    recipe: GrowRecipe, old: tuple[str, ...], degradations: tuple[str, ...]
) -> tuple[Dataset, MergedDegradations, Dataset]:
    """(restoration training set, sensor training set, evaluation set) over the grown
    vocabulary ``degradations``: the new degradations, with replay of the old ones in light
    mode (always for the sensor)."""
    seed = recipe.train.seed
    # "clean" has no data: the datasets hold what is restored (matched to the model's and the
    # sensor's degradations by name; a sensor with "clean" learns it from the clean images)
    old, degradations = restorable_degradations(old), restorable_degradations(degradations)
    new_set, _ = training_data(recipe.data, recipe.degradations, recipe.patch_size, seed)
    old_set, _ = training_data(recipe.data, old, recipe.patch_size, seed + 1)
    replay = [old_set] if recipe.mode == "light" else []
    train_set = MergedDegradations([new_set, *replay], degradations)
    sensor_set = MergedDegradations([new_set, old_set], degradations)
    _, val_set = training_data(recipe.data, degradations, recipe.patch_size, seed)
    return train_set, sensor_set, val_set


def _fit(
    model: PIPModel,
    train_set: Dataset,
    val_set: Dataset | None,
    recipe: FinetuneRecipe | GrowRecipe,
) -> tuple[Trainer, dict | None]:
    """Train with a recipe's settings into its run folder, resumed when it asks; the model is
    written once, afterwards, as a bundle with the sensor and the backbone recipe."""
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
        try:
            trainer.resume()
        except ChangedSettings as error:
            if isinstance(recipe, FinetuneRecipe):
                raise ChangedSettings(str(error) + _rank_hint(error), error.changed) from None
            raise
    return trainer, trainer.fit()


def _rank_hint(error: ChangedSettings) -> str:
    """How to resume a fine-tuning run whose units have another feed-forward rank than the
    recipe now builds: its saved rank, given again; dated when the recipe now builds the
    adapter default and the run has an earlier default's rank."""
    ranks = error.changed.get("pip.degradation_ffn_rank")
    if ranks is None:
        return ""
    dated = ranks[0] in _EARLIER_ADAPTER_FFN_RANKS and ranks[1] == ADAPTER_FFN_RANK
    before = f" (a run started before the adapter default became {ADAPTER_FFN_RANK})"
    return (
        f"; its units have degradation_ffn_rank {ranks[0]}{before if dated else ''}: "
        f"resume it with --degradation-ffn-rank {ranks[0]} (in Python: "
        f"pip=default_pip(checkpoint, full).replace(degradation_ffn_rank={ranks[0]}))"
    )


def _keep_strengths(model: PIPModel, strengths: tuple[tuple[str, float], ...], mode: str) -> None:
    """After growth: the old output strengths back in prompts mode (the old degradations'
    outputs are bit-exact, so their fits hold; the new ones are at full strength), dropped in
    light mode (the units changed), with a note."""
    if not strengths:
        return
    if mode == "prompts":
        model.config = model.config.replace(output_strength=dict(strengths))
        return
    print(
        f"output strengths {dict(strengths)} dropped: light mode changed the units they were "
        "fitted for; fit them again with pip_adapter.training.calibrate_output_strength"
    )


def grow_adapter(recipe: GrowRecipe) -> tuple[PIPModel, dict | None]:
    """Run the recipe; returns the grown model and its per-degradation validation report
    (``None`` on ranks other than 0). The bundle goes to ``recipe.out/adapter``; the bundle
    it starts from is only read."""
    check_run_folder(recipe.out, resume=recipe.resume, overwrite=recipe.overwrite)
    model = load_bundle(recipe.adapter, recipe.checkpoint)
    backbone = read_recipe(recipe.adapter)
    name = backbone.get("name")
    if name is None:  # the grown bundle could not name its backbone either
        raise ValueError(
            f"{recipe.adapter} names no backbone (backbone.json with a name): grow takes the "
            "bundle of a pip-adapter train run"
        )
    checkpoint = recipe.checkpoint
    if checkpoint is None and backbone.get("checkpoint"):
        # stored relative to the bundle (an absolute path, from older bundles, stays as it is)
        checkpoint = recipe.adapter / backbone["checkpoint"]
    old = model.degradations
    model.add_degradations(recipe.degradations, mode=recipe.mode)
    model.print_trainable_parameters()
    train_set, sensor_set, val_set = _growth_sets(recipe, old, model.degradations)
    # train the network's own output: at a strength below 1 a replayed sample's gradient would
    # shrink with it (to none at 0)
    strengths = model.config.output_strength
    model.config = model.config.replace(output_strength={})
    trainer, report = _fit(model, train_set, val_set, recipe)
    _keep_strengths(model, strengths, recipe.mode)
    if not trainer.context.is_main:
        return model, None
    if isinstance(model.sensor, DegradationSensor) and recipe.sensor_steps:
        source = getattr(sensor_set.datasets[0], "sources", None)
        train_sensor(
            model.sensor,
            sensor_set if source is None else source,
            steps=recipe.sensor_steps,
            lr=recipe.sensor_lr,
            seed=recipe.train.seed,
            num_workers=recipe.train.num_workers,
            device=trainer.context.device,
        )
    save_bundle(
        model,
        recipe.out / "adapter",
        backbone=name,
        size=backbone.get("size"),
        checkpoint=checkpoint,
        save_backbone_weights=bool(backbone.get("weights")),
    )
    return model, report
