"""The training loop: AdamW, warm-up + cosine, pixel loss + prompt regulariser, AMP, DDP,
periodic validation, atomic resumable checkpoints."""

from __future__ import annotations

import math
import numbers
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence, Sized
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, cast

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler
from tqdm.auto import tqdm

from pip_adapter.devices import check_device_name
from pip_adapter.evaluation import evaluate
from pip_adapter.files import write_safetensors
from pip_adapter.injection.model import PIPModel
from pip_adapter.training.checkpoint import (
    load_checkpoint,
    restore_rng_state,
    rng_state,
    save_checkpoint,
)
from pip_adapter.training.distributed import setup_distributed
from pip_adapter.training.report import JsonLinesLog, plot_curves
from pip_adapter.training.run_folder import check_resumable, check_run_folder
from pip_adapter.training.schedule import warmup_cosine
from pip_adapter.weights import check_same_tensors

__all__ = [
    "TrainConfig",
    "Trainer",
    "TrainingDiverged",
    "psnr_fft_loss",
    "psnr_loss",
    "psnr_no_harm_loss",
    "relative_l1_loss",
]


def psnr_loss(restored: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """Minus the mean PSNR of the images in dB (NAFNet's loss): each image's error counts by
    its logarithm, so a small error (blur, a mild degradation, an image with little to repair)
    weighs as much as a large one (low light, haze), where an L1 loss lets the large ones
    dominate and the model learns to damage what it cannot repair."""
    mse = (restored - clean).square().flatten(1).mean(dim=1)
    return 10 / math.log(10) * torch.log(mse + 1e-8).mean()


# the degraded input's error below which it counts as this one (one grey level): an image that
# needs nothing ("clean") then weighs as a lightly degraded one, not without bound
INPUT_ERROR_FLOOR = 1 / 255
# the weight of the do-no-harm term of "psnr_no_harm": the dB an image loses against its degraded
# input count this many times more in the PSNR loss
NO_HARM_WEIGHT = 1.0
# the default weight, against the PSNR loss's, of the frequency term of "psnr_fft" (both in
# dB; ``TrainConfig.fft_weight``)
FFT_WEIGHT = 1.0


def _check_degraded(loss: str, clean: torch.Tensor, degraded: torch.Tensor) -> None:
    """A loss that compares with the degraded input needs it at the target's shape."""
    if degraded.shape != clean.shape:
        raise ValueError(
            f"the {loss} loss compares the restored image with its degraded input, which "
            f"must have the target's shape {tuple(clean.shape)}, got {tuple(degraded.shape)}"
        )


def _image_mean(error: torch.Tensor) -> torch.Tensor:
    """Each image's mean of ``error`` (B×... -> B)."""
    return error.flatten(1).mean(dim=1)


def _decibels(mean_error: torch.Tensor) -> torch.Tensor:
    """10·log10 of each image's mean error: the PSNR loss's unit."""
    return 10 / math.log(10) * torch.log(mean_error)


def psnr_no_harm_loss(
    restored: torch.Tensor, clean: torch.Tensor, degraded: torch.Tensor
) -> torch.Tensor:
    """``psnr_loss`` plus, for each image restored below its degraded input, the dB it lost
    (``NO_HARM_WEIGHT`` times; the input's error floored at ``INPUT_ERROR_FLOOR``): where the
    model cannot repair (strong motion blur, for a small network) it learns to return the image
    as it came rather than worse."""
    _check_degraded("psnr_no_harm", clean, degraded)
    output = _decibels(_image_mean((restored - clean).square()) + 1e-8)  # minus each's PSNR
    given = _image_mean((degraded - clean).square()).clamp_min(INPUT_ERROR_FLOOR**2)
    lost = (output - _decibels(given)).clamp_min(0)
    return output.mean() + NO_HARM_WEIGHT * lost.mean()


def psnr_fft_loss(
    restored: torch.Tensor, clean: torch.Tensor, weight: float = FFT_WEIGHT
) -> torch.Tensor:
    """``psnr_loss`` plus ``weight`` times each image's mean L1 error between the 2-D
    Fourier transforms of output and target (real and imaginary parts: phase counts), in dB
    (MIMO-UNet's frequency loss, in the PSNR loss's unit): the L1 norm weighs the small
    high-frequency errors that a squared error neglects, which is what deblurring restores."""
    spectrum = torch.fft.rfft2((restored - clean).float(), norm="ortho")  # no bf16/fp16 FFT
    return (
        psnr_loss(restored, clean)
        + weight * _decibels(_image_mean(torch.view_as_real(spectrum).abs()) + 1e-8).mean()
    )


def relative_l1_loss(
    restored: torch.Tensor, clean: torch.Tensor, degraded: torch.Tensor
) -> torch.Tensor:
    """The mean over images of each one's L1 error divided by its degraded input's (a constant
    of the batch, floored at ``INPUT_ERROR_FLOOR``): the fraction of the input's error left, so
    that every degradation counts by how much it is improved, whatever the size of its error.
    Under a plain L1 loss the degradations with large errors (low light, haze) take the
    capacity and those with small ones (blur) are never learned past their input."""
    _check_degraded("relative_l1", clean, degraded)
    error = _image_mean((restored - clean).abs())
    input_error = _image_mean((degraded - clean).abs()).clamp_min(INPUT_ERROR_FLOOR)
    return (error / input_error).mean()


# every loss sees (restored, clean, degraded)
LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "l1": lambda restored, clean, _: F.l1_loss(restored, clean),
    "smooth_l1": lambda restored, clean, _: F.smooth_l1_loss(restored, clean),
    "psnr": lambda restored, clean, _: psnr_loss(restored, clean),
    "relative_l1": relative_l1_loss,
    "psnr_no_harm": psnr_no_harm_loss,
    "psnr_fft": lambda restored, clean, _: psnr_fft_loss(restored, clean),
}


def _loss_function(
    config: TrainConfig,
) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """The pixel loss ``config`` names, at its weight where it has one (``fft_weight``)."""
    if config.loss == "psnr_fft":
        return lambda restored, clean, _: psnr_fft_loss(restored, clean, config.fft_weight)
    return LOSSES[config.loss]


# TrainConfig fields that may change when a run is resumed (more steps, other logging)
RESUMABLE_CHANGES = (
    "steps",
    "val_every",
    "checkpoint_every",
    "log_every",
    "num_workers",
    "progress",
    "device",
    "recompute_units",
)
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainConfig:
    """Hyperparameters of ``Trainer``; the defaults suit adapter fine-tuning.

    ``loss``: ``"l1"``, ``"smooth_l1"``, ``"psnr"`` (``psnr_loss``: minus the images' mean
    PSNR; the all-in-one recipe's, see docs/benchmarks/quality.md), ``"relative_l1"``
    (``relative_l1_loss``: each image's L1 error over its degraded input's, so that a
    degradation with a small error, such as blur, weighs as much as one with a large error),
    ``"psnr_no_harm"`` (``psnr_no_harm_loss``: the PSNR loss, and the dB an image is restored
    below its degraded input counted again) or ``"psnr_fft"`` (``psnr_fft_loss``: the PSNR loss
    and a Fourier-domain L1 term, ``fft_weight`` times); the last two were tried against blur
    coming out below its input (docs/benchmarks/quality.md).
    ``prompt_reg_weight`` multiplies the prompt regulariser (the authors' 0.01 × 0.002).
    ``warmup_steps=None`` warms up over 5% of the steps. ``amp`` needs CUDA for ``"fp16"``.
    ``val_every`` / ``checkpoint_every`` of 0 validate / checkpoint only at the end.
    ``grad_clip=None`` does not clip; ``min_lr_ratio`` is the final learning rate as a fraction
    of ``lr``. ``recompute_units`` sets ``PIPModel.recompute_units`` (activation checkpointing
    of the units: less memory, the same gradients, one more forward pass of the units);
    ``None`` turns it on when the model's backbone is frozen (adapter training, where the units
    hold most of a step's memory) and otherwise leaves the model's setting.
    ``ema_decay`` keeps an exponential moving average of the trainable parameters (as BasicSR's
    ``params_ema``): after each step ``average = d * average + (1 - d) * weights`` with
    ``d = min(ema_decay, (1 + updates) / (10 + updates))`` (the warm-up of TensorFlow's and
    timm's averages), so that a short run does not average in its start; validation uses the
    average and the run ends with it in the model (what
    ``fit`` returns, saves and evaluates). ``None`` keeps the last weights.
    ``seed`` fixes the training patches and their order (the model's initial weights are
    whatever it was built with: the recipes build it under the same seed, see
    ``pip_adapter.recipes.seeded``). A run is bit-reproducible on the CPU for one version of
    the library, one machine and one thread count; another thread count or version sums in
    another order, and training grows such last-digit differences as a change of seed does.
    Every field is checked when the config is made: a wrong value is a one-line ValueError
    naming the field and what it accepts.
    """

    steps: int = 2000
    batch_size: int = 8
    lr: float = 5e-4
    weight_decay: float = 1e-4
    warmup_steps: int | None = None
    min_lr_ratio: float = 0.01
    loss: Literal["l1", "smooth_l1", "psnr", "relative_l1", "psnr_no_harm", "psnr_fft"] = "l1"
    fft_weight: float = FFT_WEIGHT
    prompt_reg_weight: float = 2e-5
    grad_clip: float | None = 1.0
    amp: Literal["bf16", "fp16"] | None = None
    val_every: int = 0
    checkpoint_every: int = 0
    log_every: int = 10
    num_workers: int = 0
    seed: int = 0
    progress: bool = True
    device: str | None = None
    recompute_units: bool | None = None
    ema_decay: float | None = None

    def __post_init__(self) -> None:
        for name, minimum in _INTEGER_FIELDS.items():
            _check_integer(name, getattr(self, name), minimum)
        for name, lowest in (("lr", "> 0"), ("weight_decay", ">= 0")):
            _check_number(name, getattr(self, name), lowest)
        _check_number("prompt_reg_weight", self.prompt_reg_weight, ">= 0")
        _check_number("fft_weight", self.fft_weight, ">= 0")
        if self.fft_weight != FFT_WEIGHT and self.loss != "psnr_fft":
            raise ValueError(
                f"TrainConfig.fft_weight weighs the Fourier term of loss='psnr_fft'; with "
                f"loss={self.loss!r} it would do nothing: leave it at {FFT_WEIGHT:g}"
            )
        if self.grad_clip is not None:
            _check_number("grad_clip", self.grad_clip, "> 0", "None (no clipping) or ")
        if self.warmup_steps is not None:
            _check_integer("warmup_steps", self.warmup_steps, 0, "None (5% of the steps) or ")
            if self.warmup_steps > self.steps:
                raise ValueError(
                    f"TrainConfig.warmup_steps ({self.warmup_steps}) must not exceed steps "
                    f"({self.steps})"
                )
        _check_number("min_lr_ratio", self.min_lr_ratio, ">= 0")
        if self.min_lr_ratio > 1:
            raise ValueError(
                f"TrainConfig.min_lr_ratio must be in [0, 1] (the final learning rate as a "
                f"fraction of lr), got {self.min_lr_ratio!r}"
            )
        if self.loss not in LOSSES:
            raise ValueError(f"TrainConfig.loss must be one of {sorted(LOSSES)}, got {self.loss!r}")
        if self.amp is not None and self.amp not in AMP_DTYPES:
            raise ValueError(
                f"TrainConfig.amp must be None or one of {sorted(AMP_DTYPES)}, got {self.amp!r}"
            )
        if not isinstance(self.progress, bool):
            raise ValueError(f"TrainConfig.progress must be True or False, got {self.progress!r}")
        if self.device is not None:
            check_device_name(self.device, "TrainConfig.device")
        if self.ema_decay is not None:
            _check_number("ema_decay", self.ema_decay, "> 0", "None (the last weights) or ")
            if self.ema_decay >= 1:
                raise ValueError(
                    "TrainConfig.ema_decay must be None (the last weights) or a number in (0, 1), "
                    f"e.g. 0.999, got {self.ema_decay!r}"
                )
        if self.recompute_units is not None and not isinstance(self.recompute_units, bool):
            raise ValueError(
                "TrainConfig.recompute_units must be None (on for a frozen backbone), True or "
                f"False, got {self.recompute_units!r}"
            )


@torch.no_grad()
def _copy(targets: Sequence[torch.Tensor], sources: Sequence[torch.Tensor]) -> None:
    for target, source in zip(targets, sources, strict=True):
        target.copy_(source)


# integer fields and their smallest valid value
_INTEGER_FIELDS = {
    "steps": 1,
    "batch_size": 1,
    "val_every": 0,
    "checkpoint_every": 0,
    "log_every": 1,
    "num_workers": 0,
    "seed": 0,
}


def _check_integer(name: str, value: object, minimum: int, alternative: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < minimum:
        raise ValueError(
            f"TrainConfig.{name} must be {alternative}an integer >= {minimum}, got {value!r}"
        )


def _check_number(name: str, value: object, lowest: str, alternative: str = "") -> None:
    """A finite real number that is ``"> 0"`` or ``">= 0"``."""
    valid = (
        not isinstance(value, bool)
        and isinstance(value, numbers.Real)
        and math.isfinite(value)
        and (float(value) > 0 if lowest == "> 0" else float(value) >= 0)
    )
    if not valid:
        raise ValueError(
            f"TrainConfig.{name} must be {alternative}a finite number {lowest}, got {value!r}"
        )


class Trainer:
    """Train a PIPModel (steered by each sample's degradation id) or a plain backbone.

    Items of ``train_set`` / ``val_set`` are ``(degraded, clean, degradation_id)``; the ids index
    the dataset's ``degradations``, which must all be among the model's: they are matched by name
    (a model that also knows ``"clean"`` trains on data without it). Only parameters
    that require gradients are optimised: call ``model.freeze_backbone()`` first to train the
    adapter alone. Under ``torchrun`` the model is wrapped in DistributedDataParallel, batches
    come from a DistributedSampler, and only rank 0 logs, validates and writes files.

    Everything goes to ``out_dir``: ``log.jsonl``, ``curves.png``, ``checkpoint.pt`` (model,
    optimizer, scheduler, step, RNG states and the moving average of ``ema_decay``; the trained
    weights, also at the end; resuming reproduces an uninterrupted run), and at
    the end, unless ``save_model=False`` (when the caller saves the model itself, e.g. as a
    bundle), the adapter (``adapter/``) or the plain model (``model.safetensors``). Files are
    written atomically.

    A new run refuses an ``out_dir`` that holds a previous one unless ``overwrite=True`` (its
    log and checkpoint are then removed) or ``resume()`` was called. ``settings`` describe the
    run beyond ``config`` (the recipe's backbone, data, ...): they are saved in checkpoints, and
    ``resume`` refuses a checkpoint written with other settings or another ``config`` (except
    ``RESUMABLE_CHANGES``: more steps, other logging).
    """

    def __init__(
        self,
        model: nn.Module,
        train_set: Dataset,
        config: TrainConfig | None = None,
        out_dir: str | os.PathLike | None = None,
        val_set: Dataset | None = None,
        run_name: str = "",
        save_model: bool = True,
        overwrite: bool = False,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.config = config or TrainConfig()
        self.context = setup_distributed(self.config.device)
        self.model = model.to(self.context.device)
        self.train_set, self.val_set = train_set, val_set
        self.conditioned = isinstance(model, PIPModel)
        if isinstance(model, PIPModel):
            recompute = self.config.recompute_units
            if recompute is None:
                recompute = model.recompute_units or not any(
                    p.requires_grad for p in model.backbone.parameters()
                )
            model.recompute_units = recompute
        self.degradations = tuple(getattr(train_set, "degradations", ()))
        # the model's id of each of the dataset's degradations, when they differ
        self.prompt_ids: torch.Tensor | None = None
        if isinstance(model, PIPModel) and self.degradations:
            unknown = [d for d in self.degradations if d not in model.degradations]
            if unknown:
                raise ValueError(
                    f"the training set's degradations {unknown} are not among the model's "
                    f"{list(model.degradations)}; it has no prompts for them"
                )
            if self.degradations != model.degradations:
                self.prompt_ids = torch.tensor(
                    [model.degradations.index(d) for d in self.degradations]
                )
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.run_name = run_name
        self.save_model = save_model
        self.overwrite = overwrite
        self.settings = dict(settings or {})
        self.resumed = False
        self.log = JsonLinesLog(self.out_dir / "log.jsonl") if self.out_dir else None
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("the model has no trainable parameters")
        self.trained = params
        self.optimizer = torch.optim.AdamW(
            params, lr=self.config.lr, weight_decay=self.config.weight_decay
        )
        warmup = self.config.warmup_steps
        warmup = max(1, self.config.steps // 20) if warmup is None else warmup
        self.scheduler = warmup_cosine(
            self.optimizer, self.config.steps, warmup, self.config.min_lr_ratio
        )
        if self.config.amp == "fp16" and self.context.device.type != "cuda":
            raise ValueError("amp='fp16' needs a CUDA device; use amp='bf16' on the CPU")
        self.scaler = torch.amp.GradScaler(
            self.context.device.type, enabled=self.config.amp == "fp16"
        )
        self.network: nn.Module = self.model
        if self.context.enabled:
            device_ids = [self.context.device] if self.context.device.type == "cuda" else None
            self.network = DistributedDataParallel(self.model, device_ids=device_ids)
        # the moving average of the trainable parameters (config.ema_decay), or None; taken
        # after the wrapper has given every rank rank 0's weights
        self.average: list[torch.Tensor] | None = None
        if self.config.ema_decay is not None:
            self.average = [p.detach().clone() for p in params]
        self.sampler: DistributedSampler[Any] = DistributedSampler(
            train_set,
            num_replicas=self.context.world_size,
            rank=self.context.rank,
            shuffle=True,
            seed=self.config.seed,
            drop_last=True,
        )
        self.batches_per_epoch = len(self.sampler) // self.config.batch_size
        if self.batches_per_epoch == 0:
            items = len(cast(Sized, train_set))
            raise ValueError(
                f"the training set ({items} items over {self.context.world_size} "
                f"processes) is smaller than one batch of {self.config.batch_size}"
            )
        self.step = 0
        self.last_checkpoint: Path | None = None

    @property
    def checkpoint_path(self) -> Path | None:
        return self.out_dir / "checkpoint.pt" if self.out_dir else None

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "average": self.average,
            "rng": rng_state(),
            "config": asdict(self.config),
            "settings": self.settings,
        }

    def resume(self, path: str | os.PathLike | None = None) -> Trainer:
        """Continue from a checkpoint (default: this run's ``checkpoint.pt``)."""
        path = Path(path) if path is not None else self.checkpoint_path
        if path is None:
            raise ValueError("resume needs a checkpoint path or an out_dir")
        state = load_checkpoint(path, map_location=self.context.device)
        # every check before anything changes: a refused resume leaves the trainer as it was
        check_resumable(path, state.get("config", {}), self._fixed_config())
        check_resumable(path, state.get("settings", {}), self.settings)
        check_same_tensors(self.model, state["model"], f"the model in {path} differs from this one")
        saved_groups = [len(g["params"]) for g in state["optimizer"]["param_groups"]]
        if saved_groups != [len(g["params"]) for g in self.optimizer.param_groups]:
            raise ValueError(
                f"cannot resume from {path}: it trained other parameters than this model's "
                "trainable ones (frozen backbone or not?)"
            )
        if self.average is not None and state.get("average") is None:
            raise ValueError(
                f"cannot resume from {path} with ema_decay: it was written without a moving "
                "average; resume with ema_decay=None, or start again with --overwrite"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        if self.average is not None:
            _copy(self.average, state["average"])
        self.step = state["step"]
        restore_rng_state(state["rng"])
        self.last_checkpoint = path
        self.resumed = True
        if self.log is not None and self.context.is_main:
            self.log.keep_until(self.step)  # records after the checkpoint are redone
        return self

    def _fixed_config(self) -> dict[str, Any]:
        """The TrainConfig fields a resumed run must share with the run it continues."""
        return {k: v for k, v in asdict(self.config).items() if k not in RESUMABLE_CHANGES}

    def save_checkpoint(self) -> None:
        if self.context.is_main and self.checkpoint_path is not None:
            self.last_checkpoint = save_checkpoint(self.checkpoint_path, self.state_dict())
        self._barrier()

    def _barrier(self) -> None:
        if self.context.enabled:
            dist.barrier()

    def _batches(self, epoch: int, skip: int) -> DataLoader:
        self.sampler.set_epoch(epoch)
        if hasattr(self.train_set, "set_epoch"):
            self.train_set.set_epoch(epoch)
        indices = list(self.sampler)
        size = self.config.batch_size
        batches = [indices[i : i + size] for i in range(0, self.batches_per_epoch * size, size)]
        return DataLoader(
            self.train_set,
            batch_sampler=batches[skip:],
            num_workers=self.config.num_workers,
            pin_memory=self.context.device.type == "cuda",
        )

    def _loss(self, degraded: torch.Tensor, clean: torch.Tensor, ids: torch.Tensor):
        amp = self.config.amp
        with torch.autocast(
            self.context.device.type,
            dtype=AMP_DTYPES[amp] if amp else None,
            enabled=amp is not None,
        ):
            if self.conditioned:
                if self.prompt_ids is not None:
                    ids = self.prompt_ids.to(ids.device)[ids]
                restored = self.network(degraded, degradation=ids)
            else:
                restored = self.network(degraded)
        loss = _loss_function(self.config)(restored.float(), clean, degraded.float())
        if isinstance(self.model, PIPModel) and self.config.prompt_reg_weight:
            loss = loss + self.config.prompt_reg_weight * self.model.prompt_regularization()
        return loss

    def _train_step(self, degraded, clean, ids) -> float:
        device = self.context.device
        degraded, clean = (
            degraded.to(device, non_blocking=True),
            clean.to(device, non_blocking=True),
        )
        self.optimizer.zero_grad(set_to_none=True)
        loss = self._loss(degraded, clean, ids.to(device))
        reported = loss.detach()
        if self.context.enabled:
            dist.all_reduce(reported)
            reported /= self.context.world_size
        value = reported.item()
        if not math.isfinite(value):
            where = (
                f"the last good checkpoint is {self.last_checkpoint}"
                if self.last_checkpoint
                else "no checkpoint was written yet"
            )
            raise TrainingDiverged(
                f"loss became {value} at step {self.step + 1}; training stopped ({where}). "
                "Try a lower learning rate, amp=None, or a smaller grad_clip."
            )
        self.scaler.scale(loss).backward()
        if self.config.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(
                [p for g in self.optimizer.param_groups for p in g["params"]], self.config.grad_clip
            )
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self._update_average()
        return value

    @torch.no_grad()
    def _update_average(self) -> None:
        """One step of the moving average, its decay warmed up over the first updates."""
        if self.average is None or self.config.ema_decay is None:
            return
        updates = self.step + 1
        decay = min(self.config.ema_decay, (1 + updates) / (10 + updates))
        for average, param in zip(self.average, self.trained, strict=True):
            average.lerp_(param.detach(), 1 - decay)

    @contextmanager
    def _averaged_weights(self) -> Iterator[None]:
        """The moving average in the model for the duration (no-op without ``ema_decay``)."""
        if self.average is None:
            yield
            return
        last = [p.detach().clone() for p in self.trained]
        _copy(self.trained, self.average)
        try:
            yield
        finally:
            _copy(self.trained, last)

    def validate(self) -> dict | None:
        """Per-degradation PSNR / SSIM on ``val_set`` (rank 0 only; other ranks return None)."""
        report = None
        if self.val_set is not None and self.context.is_main:
            with self._averaged_weights():
                report = evaluate(
                    self.model,
                    self.val_set,
                    self.degradations or None,
                    conditioned=self.conditioned,
                )
            self._record({"step": self.step, "val": report})
        self._barrier()
        return report

    def _record(self, record: dict[str, Any]) -> None:
        if self.log is not None and self.context.is_main:
            self.log.write({"run": self.run_name, **record})

    def fit(self, stop_at: int | None = None) -> dict | None:
        """Train until ``config.steps`` (or ``stop_at``, to split a run); returns the final
        validation report (None without a validation set)."""
        config = self.config
        stop = min(config.steps, stop_at if stop_at is not None else config.steps)
        bar = tqdm(
            total=stop,
            initial=self.step,
            desc=self.run_name or "train",
            disable=not (config.progress and self.context.is_main),
            dynamic_ncols=True,
        )
        if self.step == 0 and not self.resumed:
            self._start_fresh()
        started = time.perf_counter()
        recent: list[float] = []
        self.model.train()
        while self.step < stop:
            epoch, skip = divmod(self.step, self.batches_per_epoch)
            for degraded, clean, ids in self._batches(epoch, skip):
                recent.append(self._train_step(degraded, clean, ids))
                self.step += 1
                bar.update(1)
                if self.step % config.log_every == 0 or self.step == stop:
                    loss, lr = sum(recent) / len(recent), self.scheduler.get_last_lr()[0]
                    recent.clear()
                    bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}")
                    elapsed = time.perf_counter() - started
                    self._record({"step": self.step, "loss": loss, "lr": lr, "time": elapsed})
                if config.val_every and self.step % config.val_every == 0 and self.step < stop:
                    self.validate()
                    self.model.train()
                if config.checkpoint_every and self.step % config.checkpoint_every == 0:
                    self.save_checkpoint()
                if self.step >= stop:
                    break
        bar.close()
        if self.step < config.steps:
            self.save_checkpoint()
            return None
        return self._finish()

    def _start_fresh(self) -> None:
        """A new run: refuse an out_dir holding a previous one, unless ``overwrite``, in which
        case its log and checkpoint go (the rest is replaced when this run writes it)."""
        if self.out_dir is None:
            return
        check_run_folder(self.out_dir, overwrite=self.overwrite)
        self._barrier()  # every rank has looked before the main one removes anything
        if self.context.is_main:
            for name in ("log.jsonl", "checkpoint.pt"):
                (self.out_dir / name).unlink(missing_ok=True)

    def _finish(self) -> dict | None:
        report = self.validate()
        self.save_checkpoint()  # the trained weights: a resume with more steps goes on from them
        if self.average is not None:  # the run ends with the average in the model
            _copy(self.trained, self.average)
        if self.out_dir is not None and self.log is not None and self.context.is_main:
            if self.save_model and isinstance(self.model, PIPModel):
                self.model.save_adapter(self.out_dir / "adapter")
            elif self.save_model:
                write_safetensors(self.out_dir / "model.safetensors", self.model.state_dict())
            plot_curves(self.log.read(), self.out_dir / "curves.png", title=self.run_name)
        self._barrier()
        return report
