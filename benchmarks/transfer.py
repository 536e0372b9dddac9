"""Adapter mode: a pretrained single-degradation network turned all-in-one, against what a user
would otherwise do.

Starting point: a NAFNet of the official family (width 32, the official block counts halved)
pretrained on noise only, on the bundled training photos, with the library's data pipeline,
saved once in the official BasicSR format (``{"params": state_dict}``) under
``runs/transfer/pretrained/`` and reused. ``--checkpoint FILE`` starts from a real official
checkpoint instead (NAFNet-SIDD, Restormer, SwinIR: anything ``load_backbone`` reads; say what it
restores with ``--native``; a GPU is then advisable).

Every variant then trains for the same steps on the same batches (same seed) under the five
degradations and is evaluated per degradation on 256² centre crops of the held-out bundled
photos and of the out-of-domain held-out photos. Variants:

* ``pretrained``: the network as is;
* ``full_low`` / ``full_high``: full fine-tuning of the plain network at two learning rates
  (the table shows the better one);
* ``pip``: PIP with the backbone frozen, the adapter alone (the library's defaults);
* ``pip_full``: PIP with the backbone fine-tuned as well;
* ``lora``: LoRA (``peft``) on the backbone's 1×1 convolutions / linear layers, its rank chosen
  so that its trainable count matches PIP's; blind, like the plain network;
* ``lora_default_size``: the same LoRA with the trainable count of the recipe's adapter default
  (``ADAPTER_DEFAULT``: PIP with ``recipes.ADAPTER_FFN_RANK``), the LoRA of equal size that the
  default's goals compare with;
* ``lora_per_degradation``: one such LoRA per degradation, switched by the label (PEFT's
  multi-adapter API, ``set_adapter`` per group of the batch), the backbone alone for the
  degradations it already restores: the per-task adapters of AdaIR / ABAIR;
* ``promptir``: the PromptIR-style block (:class:`pip_adapter.baselines.PromptIRBlock`) in
  adapter mode, at PIP's stages, sized to PIP's trainable count;
* further ``pip_*`` variants: what was tried to make PIP win (``--variants all``).

Time per step and peak training memory come from short probes, each in a fresh process
(``--costs`` measures them alone: run it under ``slot -x`` for numbers free of other load).
Each finished variant is kept in ``runs/transfer/<variant>/result.json`` (costs in
``cost.json``) and reused by a rerun with the same settings; ``--fresh`` retrains (the result it
replaces is kept as ``previous.json``). Every trained variant also keeps its weights
(``keep_weights``), from which the page measures it at full strength and at fitted output
strengths (``strength.json``, see the page's "Output strength").

``--device cuda`` runs everything (the pretraining included) on a GPU instead: ``--jobs``
variants train at once as processes sharing it, in the order ``--variants`` names them; results
are kept in ``runs/transfer_cuda/`` and the page goes to ``docs/benchmarks/transfer_cuda.md``
(the GPU and torch version named; costs from CUDA-synchronised step times and
``torch.cuda.max_memory_allocated``; no output-strength section: the GPU's weights are not kept
on this machine). ``--deadline SECONDS`` (for a lent machine) starts no variant that would not
end in time, stops those still training near the end, and writes the page from what finished.
``benchmarks/gpu_transfer.sh`` completes the GPU page on a lent GPU from the last GPU run's
folder: what did not finish trains, the time-per-step probes run again, the rest is reused.
``--quick`` is the low-fidelity fresh check (``QUICK``: 32² patches, half the pretraining and
fine-tuning steps, ``QUICK_VARIANTS`` unless ``--variants`` names others, the same evaluation,
no output-strength fitting), in its own runs folder
(``runs/transfer_quick``) and on its own page (``transfer_quick.md``, with the CPU time it took
and its goal verdicts beside the full run's on the same machine); the full run stays the
default and the headline. ``--tried-record FILE --tried-label TEXT`` keeps the summary of a
quick setting tried and not adopted (its run's record.json) in
``docs/benchmarks/transfer_quick_tried.json``, which the quick page lists.

Every run also writes ``record.json`` in its runs folder (results, costs, wall times), from
which ``--from-record FILE`` writes the page again without training. The CPU page keeps its
record in ``docs/benchmarks/transfer.json``, a section per pretrained network (each CPU
pretrains its own): a CPU run, or ``--from-record`` of a CPU run's record, adds its section
there (or replaces the one of the same network), and ``--from-record
docs/benchmarks/transfer.json`` rewrites the page.

Run:  python benchmarks/transfer.py [--jobs 2]   (writes docs/benchmarks/transfer.md)
      python benchmarks/transfer.py --quick      (writes docs/benchmarks/transfer_quick.md)
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import gc
import importlib.metadata
import importlib.util
import itertools
import json
import os
import re
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import torch
from machine import describe_machine, prepare_device, verdict
from safetensors.torch import load_file
from spandrel.architectures.NAFNet import NAFNet
from torch import nn

import pip_adapter as pa
from pip_adapter.backbones import load_backbone
from pip_adapter.baselines import PromptIRBlock
from pip_adapter.conditioning import degradation_weights
from pip_adapter.data import SyntheticAllInOne, build_eval_set, sample_image_names
from pip_adapter.data.degradations.blur import BLUR_PARAMETERS, motion_blur
from pip_adapter.devices import resolve_device
from pip_adapter.evaluation import evaluate
from pip_adapter.files import write_safetensors
from pip_adapter.injection import PIPModel
from pip_adapter.injection.presets import FULL_UNITS
from pip_adapter.recipes import ADAPTER_FFN_RANK
from pip_adapter.training import STRENGTH_OBJECTIVES, TrainConfig, Trainer, fit_output_strengths
from pip_adapter.unit import PromptInPrompt, default_prompt_dim

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "runs" / "transfer"
# each device keeps its own runs and page: training is reproducible per device, not across them
RUNS_ON = {"cpu": RUNS, "cuda": ROOT / "runs" / "transfer_cuda"}
PAGE_ON = {
    device: ROOT / "docs" / "benchmarks" / f"{runs.name}.md" for device, runs in RUNS_ON.items()
}
# the CPU page's committed record: every CPU run's record, each from the network pretrained on
# its CPU, beside the pages imported from runs whose records are lost (see render_cpu_page), so
# that neither a reset of the machine nor a run on another CPU loses a section
CPU_RECORD = ROOT / "docs" / "benchmarks" / "transfer.json"
# the Trainer plots its curves in its run folder (matplotlib, the "train" extra): where it is
# missing (a lent GPU machine), runs train without a folder: the loss goes to their log (progress)
PLOTS = importlib.util.find_spec("matplotlib") is not None
# with --deadline: seconds kept after the last training for the cost probes and the page, and
# after the last cost probe for the page
PROBE_RESERVE = 45.0
PAGE_RESERVE = 10.0
TASKS = pa.DEFAULT_DEGRADATIONS
EVAL_CROP = 256
# NAFNet-width32 as released for SIDD has enc [2, 2, 4, 8], middle 12, dec [2, 2, 2, 2]: halved
PRETRAIN_ARCH = dict(
    width=32, enc_blk_nums=[1, 1, 2, 4], middle_blk_num=6, dec_blk_nums=[1, 1, 1, 1]
)
PRETRAIN = dict(steps=1500, batch_size=8, patch_size=64, lr=1e-3, seed=1)
# --quick: the low-fidelity fresh check (a quarter of the pixels per patch, half the pretraining,
# half the fine-tuning steps, the same evaluation), in its own runs folder and on its own page;
# pretrain_patch: the pretraining's patches (a quick result's cache key names it)
QUICK = dict(steps=300, patch_size=32, pretrain_steps=750, pretrain_patch=32)
FULL = dict(
    steps=600,
    patch_size=64,
    pretrain_steps=PRETRAIN["steps"],
    pretrain_patch=PRETRAIN["patch_size"],
)
QUICK_RUNS = RUNS.with_name(f"{RUNS.name}_quick")


# --- the pretrained starting point --------------------------------------------------------------


def pretrained_checkpoint(
    runs: Path, device: str = "cpu", steps: int = 1500, patch_size: int = 64
) -> Path:
    """The noise-only NAFNet, trained once on ``device`` and saved as BasicSR does
    (``{"params": ...}``). ``steps`` and ``patch_size`` other than 1500 and 64 for ``--quick``
    or a check of the script."""
    folder = runs / "pretrained"
    path = folder / "nafnet32_noise.pth"
    stamp = folder / "settings.json"
    settings = {"arch": PRETRAIN_ARCH, **PRETRAIN, "steps": steps, "patch_size": patch_size}
    settings |= {} if device == "cpu" else {"device": device}
    if path.is_file() and stamp.is_file() and json.loads(stamp.read_text()) == settings:
        return path
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(PRETRAIN["seed"])
    network = NAFNet(**PRETRAIN_ARCH)
    train_set = SyntheticAllInOne(
        degradations=("noise",),
        patch_size=patch_size,
        samples_per_degradation=256,
        seed=PRETRAIN["seed"],
    )
    # no validation curve: nothing is chosen on one, the evaluation photos are held out, and the
    # validation photos need scikit-image, which a GPU run does without (a curve is only logged,
    # so the stamp above holds without it: the same weights)
    config = TrainConfig(
        steps=steps,
        batch_size=PRETRAIN["batch_size"],
        lr=PRETRAIN["lr"],
        seed=PRETRAIN["seed"],
        device=device,
    )
    started, cpu = time.perf_counter(), time.process_time()
    Trainer(
        network,
        train_set,
        config,
        out_dir=folder if PLOTS else None,
        run_name="pretrain",
        overwrite=True,  # a changed pretraining setting retrains in the same folder
    ).fit()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    (folder / "checkpoint.pt").unlink(missing_ok=True)
    torch.save({"params": network.state_dict()}, path)
    load_backbone(path, expected="nafnet")  # spandrel reads it back, as an official file
    stamp.write_text(json.dumps(settings, indent=2))
    (folder / "time.json").write_text(json.dumps({"train_seconds": seconds, "cpu_seconds": cpu}))
    return path


# --- the variants --------------------------------------------------------------------------------


@dataclass
class Context:
    """What every variant builder needs: a fresh copy of the pretrained backbone, the names
    it already restores, and the trainable counts of the variants the baselines match."""

    checkpoint: Path
    native: tuple[str, ...]
    _sizes: dict[str, int] = field(default_factory=dict, repr=False)

    def backbone(self) -> nn.Module:
        return load_backbone(self.checkpoint).train()

    def size(self, name: str = "pip") -> int:
        """The trainable count of variant ``name`` (PIP's by default) as built here."""
        if name not in self._sizes:
            build = VARIANTS[name].build
            self._sizes[name] = 0 if build is None else trainable(build(self))
        return self._sizes[name]


def trainable(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def build_pip(ctx: Context, frozen: bool = True, **options: Any) -> PIPModel:
    options = {"native_degradations": ctx.native, **FULL_UNITS, **options}
    model = pa.inject_pip(ctx.backbone(), degradations=TASKS, **options)
    return model.freeze_backbone() if frozen else model


def build_pip_encoders(levels: str) -> Callable[[Context], PIPModel]:
    """A builder of PIP at the default (decoder) stages plus narrow units (d = 32) on the
    inputs of the encoder levels ``levels`` matches (a regular expression of their index)."""

    def build(ctx: Context) -> PIPModel:
        encoders = {"pattern": rf"encoders\.{levels}", "prompt_dim": 32}
        return build_pip(ctx, stages=[encoders, r"decoders\.\d+"])

    return build


def build_pip_wide(ctx: Context) -> PIPModel:
    """PIP at the default stages with every unit as wide as its stage (``d = C``)."""
    stages = [
        dataclasses.replace(stage, prompt_dim=stage.channels[1] - stage.channels[0])
        for stage in build_pip(ctx).config.stages
    ]
    return build_pip(ctx, stages=stages)


def lora_targets(network: nn.Module) -> list[str]:
    """The layers a LoRA adapts: linear layers and ungrouped 1×1 convolutions (the channel
    mixers of NAFNet, Restormer and SwinIR; peft cannot adapt depthwise convolutions)."""
    return [
        name
        for name, module in network.named_modules()
        if isinstance(module, nn.Linear)
        or (isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1) and module.groups == 1)
    ]


def lora_rank(ctx: Context, size: int) -> int:
    """The rank whose LoRA has the trainable count closest to ``size``."""
    modules = dict(ctx.backbone().named_modules())
    per_rank = 0
    for name in lora_targets(modules[""]):
        layer = modules[name]
        per_rank += (
            layer.in_features + layer.out_features
            if isinstance(layer, nn.Linear)
            else layer.in_channels + layer.out_channels
        )
    return max(1, round(size / per_rank))


def lora_config(ctx: Context, network: nn.Module, matched: str = "pip"):
    """The LoRA whose trainable count is closest to variant ``matched``'s."""
    from peft import LoraConfig

    rank = lora_rank(ctx, ctx.size(matched))
    return LoraConfig(r=rank, lora_alpha=rank, target_modules=lora_targets(network))


def build_lora(ctx: Context, matched: str = "pip") -> nn.Module:
    """A LoRA of variant ``matched``'s size on the backbone."""
    from peft import get_peft_model

    network = ctx.backbone()
    return get_peft_model(network, lora_config(ctx, network, matched))


class LoRAPerDegradation(nn.Module):
    """One LoRA per degradation on one backbone (PEFT's multi-adapter API), picked by each
    sample's label; the degradations the backbone already restores run it without a LoRA.

    ``forward(x, degradation=ids)`` groups the batch by label and runs each group with its
    adapter (``set_adapter``), so that a batch of mixed degradations trains them all at once.
    """

    def __init__(self, ctx: Context) -> None:
        from peft import get_peft_model

        super().__init__()
        self.degradations = TASKS
        self.native = ctx.native
        network = ctx.backbone()
        config = lora_config(ctx, network)
        adapters = [name for name in TASKS if name not in ctx.native]
        self.network = get_peft_model(network, config, adapter_name=adapters[0])
        for name in adapters[1:]:
            self.network.add_adapter(name, config)
        self.lora = [p for n, p in self.network.named_parameters() if ".lora_" in n]
        self._train_all_adapters()

    def _train_all_adapters(self) -> None:
        # set_adapter freezes the inactive adapters; they must stay in the optimiser
        for param in self.lora:
            param.requires_grad_(True)

    def forward(self, x: torch.Tensor, degradation: Any) -> torch.Tensor:
        ids = degradation_weights(degradation, TASKS, x.shape[0], x.device).argmax(dim=1)
        outputs, order = [], []
        for task in ids.unique().tolist():
            index = (ids == task).nonzero().flatten()
            if TASKS[task] in self.native:
                with self.network.disable_adapter():
                    outputs.append(self.network(x[index]))
            else:
                self.network.set_adapter(TASKS[task])
                self._train_all_adapters()
                outputs.append(self.network(x[index]))
            order.append(index)
        return torch.cat(outputs)[torch.argsort(torch.cat(order))]


def build_promptir(ctx: Context) -> PIPModel:
    """PromptIR-style blocks at PIP's stages, in adapter mode, their prompt width chosen so
    that their trainable count is closest to PIP's (as benchmarks/quality.py does). Blind by
    design, so without native degradations."""
    reference = build_pip(ctx)
    target = trainable(reference)
    backbone = reference.unload()

    def blocks(divisor: int) -> list[PromptIRBlock]:
        return [
            PromptIRBlock(
                stop - start,
                prompt_dim=max(2, default_prompt_dim(stop - start) // divisor),
                prompt_size=stage.prompt_size,
            )
            for stage in reference.config.stages
            for start, stop in [stage.channels]
        ]

    divisor = min(range(1, 9), key=lambda k: abs(sum(map(trainable, blocks(k))) - target))
    config = reference.config.replace(native_degradations=())
    model = PIPModel(backbone, reference.plan, blocks(divisor), config)
    return model.freeze_backbone()


@dataclass(frozen=True)
class Variant:
    label: str
    build: Callable[[Context], nn.Module] | None  # None: the pretrained network, untrained
    lr: float = 0.0
    labelled: bool = False  # steered by the degradation label
    group: str = "headline"  # "headline", "tried" or "seeds"
    note: str = ""
    loss: str = "l1"  # the trainer's pixel loss
    context: int = 0  # pixels around each training patch that its degradation sees
    train_seed: int | None = None  # None: --seed; the evaluation sets always keep --seed
    blur_from: float | None = None  # training blur lengths from this (px) instead of 7
    ema_decay: float | None = None  # evaluate a moving average of the weights (TrainConfig)
    recompute_units: bool | None = None  # TrainConfig's; None: its default

    def recipe(self) -> dict[str, Any]:
        """The training choices that differ from every headline variant's (L1, no context,
        the run's seed)."""
        choices = (("loss", self.loss, "l1"), ("context", self.context, 0))
        choices += (("train_seed", self.train_seed, None), ("blur_from", self.blur_from, None))
        choices += (
            ("ema_decay", self.ema_decay, None),
            ("recompute_units", self.recompute_units, None),
        )
        return {key: value for key, value, default in choices if value != default}

    def seed(self, args: argparse.Namespace) -> int:
        """The seed of the initialisation, the training patches and the batch order."""
        return args.seed if self.train_seed is None else self.train_seed


def psnr_context(label: str, note: str, blur_from: float | None = None) -> Variant:
    """A tried variant for blur: frozen-backbone PIP trained with the no-harm recipe of the
    quality benchmark (PSNR loss, 16 px of context), optionally with milder training blur."""
    return Variant(
        label,
        build_pip,
        2e-3,
        labelled=True,
        group="tried",
        note=note,
        loss="psnr",
        context=16,
        blur_from=blur_from,
    )


def ffn_rank(rank: int, note: str) -> Variant:
    """A tried variant: frozen-backbone PIP whose units give each degradation its own rank-
    ``rank`` update of the feed-forward (``PIPConfig.degradation_ffn_rank``)."""
    return Variant(
        f"PIP, each degradation's own feed-forward update (rank {rank})",
        lambda ctx: build_pip(ctx, degradation_ffn_rank=rank),
        2e-3,
        labelled=True,
        group="tried",
        note=note,
    )


FULL_LRS = {"full_low": 2e-4, "full_high": 1e-3}
# the recipe's adapter default on a pretrained backbone (the page checks the issue's goals for
# it; its variant is among those tried below)
ADAPTER_DEFAULT = f"pip_ffn_rank{ADAPTER_FFN_RANK}"
# what --quick trains: the adapter default and the baselines its goals compare with (full
# fine-tuning at the learning rate the full run found better), the slowest first so that the two
# processes end close together
QUICK_VARIANTS = ("lora_per_degradation", ADAPTER_DEFAULT, "full_low", "lora_default_size")
VARIANTS: dict[str, Variant] = {
    "pretrained": Variant("pretrained (noise only)", None),
    "full_low": Variant(
        f"full fine-tuning, lr {FULL_LRS['full_low']:g}", Context.backbone, FULL_LRS["full_low"]
    ),
    "full_high": Variant(
        f"full fine-tuning, lr {FULL_LRS['full_high']:g}", Context.backbone, FULL_LRS["full_high"]
    ),
    "pip": Variant("PIP, backbone frozen", build_pip, 2e-3, labelled=True),
    "pip_full": Variant(
        "PIP + backbone fine-tuned",
        lambda ctx: build_pip(ctx, frozen=False),
        5e-4,
        labelled=True,
    ),
    "lora": Variant("LoRA (the shared units' size)", build_lora, 2e-3),
    "lora_default_size": Variant(
        "LoRA (the adapter default's size)",
        functools.partial(build_lora, matched=ADAPTER_DEFAULT),
        2e-3,
    ),
    "lora_per_degradation": Variant(
        "one LoRA per degradation", LoRAPerDegradation, 2e-3, labelled=True
    ),
    "promptir": Variant("PromptIR-style block, frozen", build_promptir, 2e-3, labelled=True),
    # what was tried to make frozen-backbone PIP win (--variants all)
    "pip_lr5e-4": Variant(
        "PIP, lr 5e-4",
        build_pip,
        5e-4,
        labelled=True,
        group="tried",
        note="the learning rate the recipe used for adapters before",
    ),
    "pip_lr5e-3": Variant(
        "PIP, lr 5e-3",
        build_pip,
        5e-3,
        labelled=True,
        group="tried",
        note="a higher learning rate: the adapter's training loss (0.045 over the last 100 "
        "steps) stays above the per-degradation LoRAs' (0.043)",
    ),
    "pip_no_native": Variant(
        "PIP, no native degradation",
        lambda ctx: build_pip(ctx, native_degradations=()),
        2e-3,
        labelled=True,
        group="tried",
        note="the units also learn noise, as before native_degradations existed",
    ),
    "pip_encoders": Variant(
        "PIP at encoder and decoder levels, d = 32",
        lambda ctx: build_pip(ctx, stages=[r"encoders\.\d+", r"decoders\.\d+"], prompt_dim=32),
        2e-3,
        labelled=True,
        group="tried",
        note="adapter-mode placement: the frozen encoder was trained for noise only, so the "
        "units also modulate what each encoder level receives; eight units of width 32",
    ),
    "pip_enc32": Variant(
        "PIP at decoder levels, and at encoder levels with d = 32",
        build_pip_encoders(r"\d+"),
        2e-3,
        labelled=True,
        group="tried",
        note="the default decoder units kept whole, plus narrow units on what each frozen "
        "encoder level receives (670K, 4.2% of the parameters): better (lowlight above all), "
        "but the gradients then run back through the whole frozen network, as in full "
        "fine-tuning: its probe kept 386 MiB at the peak, 77% of full fine-tuning's (the "
        "default: 44%), and its steps are slower than full fine-tuning's, so it is not the "
        "default",
    ),
    "pip_wide": Variant(
        "PIP, d = stage width (up to 256), 2 heads",
        build_pip_wide,
        2e-3,
        labelled=True,
        group="tried",
        note="the per-degradation LoRAs' budget: every unit as wide as its stage (d = C, "
        "not capped at 64; the default's heads), 2.7M trainable against their 4 × 496K",
    ),
    "pip_psnr_context": psnr_context(
        "PIP, PSNR loss, 16 px context",
        note="for blur: the all-in-one recipe of the quality benchmark (docs/benchmarks/"
        "no_harm.md), a loss in which every image's error counts by its PSNR and training "
        "patches degraded with 16 px of the photo around them: over two training seeds blur "
        "comes closer to its input (0.10 dB under it on the held-out photos, 0.17 out of "
        "domain; the default: 0.18 and 0.21) at about the same average (-0.08 / +0.02 dB), "
        "but stays under it (see Training seeds)",
    ),
    "pip_deep_encoders": Variant(
        "PIP at decoder levels, and at the two deepest encoder levels with d = 32",
        build_pip_encoders("[23]"),
        2e-3,
        labelled=True,
        group="tried",
        note="the encoder units that helped, only where the feature is small: the gradients "
        "stop at the third encoder level instead of running back to the input. 584K "
        "trainable (3.8%), the best PIP here on both sets, above the per-degradation LoRAs "
        "out of domain; its probe kept 300 MiB at the peak (60% of full fine-tuning's). Its "
        "lead came from the first training seed: under a second one it falls behind the "
        "default (see Training seeds), the two-seed means are level on the held-out photos, so "
        "it is not the adapter-mode default",
    ),
    "pip_psnr_context_blur3": psnr_context(
        "PIP, PSNR loss, 16 px context, blur from 3 px",
        blur_from=3.0,
        note="for blur: the PSNR-loss recipe with milder blur in training (lengths 3-21 px "
        "instead of 7-21; evaluated on 7-21 as every variant): the closest blur came to its "
        "input (0.07 dB under it, 0.13 out of domain; one seed, within the seeds' spread), "
        "still under it",
    ),
    "pip_psnr_context_blur1": psnr_context(
        "PIP, PSNR loss, 16 px context, blur from 1 px",
        blur_from=1.0,
        note="the same down to no blur at all (1 px): training also sees blurred patches "
        "that need next to nothing; no closer than from 3 px (0.09 dB under the input, 0.18 "
        "out of domain; one seed)",
    ),
    "pip_relative": Variant(
        "PIP, relative L1 loss",
        build_pip,
        2e-3,
        labelled=True,
        group="tried",
        note="for blur: each image's L1 error divided by its degraded input's "
        '(`TrainConfig(loss="relative_l1")`), so that every degradation counts by how much it '
        "is improved (under L1 the large errors of haze and low light take the capacity). Over "
        "two training seeds it moves capacity as meant: rain +0.75 dB (+0.77 out of domain), "
        "blur +0.07 (+0.05), but haze -1.60 (-1.08) and low light -2.22 (-1.06) against the "
        "default's means; blur stays under its input (0.11 dB, 0.15 out of domain) and the "
        "average falls 0.60 dB (0.26 out of domain), so the recipe keeps L1 (see Training seeds)",
        loss="relative_l1",
    ),
    "pip_ema": Variant(
        "PIP, moving average of the weights",
        build_pip,
        2e-3,
        labelled=True,
        group="tried",
        note="for the gap to the per-degradation LoRAs and the seed spread: the adapter "
        "evaluated with an exponential moving average of its weights (`TrainConfig(ema_decay="
        "0.999)`, warmed up: about the last 70 steps at the end). Over two training seeds "
        "-0.18 dB on average (-0.01 out of domain) against the default's means, and the seeds "
        "spread no less (0.42 dB apart on average, haze 2.06 dB; the default: 0.25 and 0.60): "
        "at the end of a cosine schedule the average adds nothing, so it is not the default",
        ema_decay=0.999,
    ),
    "pip_middle": Variant(
        "PIP at decoder levels and at the middle blocks' input",
        lambda ctx: build_pip(ctx, stages=[r"middle_blks", r"decoders\.\d+"]),
        2e-3,
        labelled=True,
        group="tried",
        note="for the gap to the per-degradation LoRAs: four fifths of their trainable "
        "parameters sit at the two deepest levels (the middle blocks alone, 512 channels at "
        "1/16 of the resolution, three fifths), where the frozen network sees the whole patch, "
        "and PIP had no unit there; one more unit (d = 64) on what the middle blocks receive "
        "(662K trainable, 4.3%): the gradients run back only through the middle blocks, at "
        "1/16 of the resolution. At the 64² training patches that input is 4×4, below the "
        "16×16 prompt grid: there the unit's grid work runs on 16 copies of each pixel (at "
        "the 256² evaluation crops the grid matches the feature). One training seed: 23.23 "
        "dB (21.03 out of domain) against the default's two-seed means 23.09 (21.20), +0.14 "
        "(-0.17), within the seeds' spread, and 0.89 dB under the per-degradation LoRAs "
        "(seed 0): the middle blocks are not where PIP loses to them; no second seed was "
        "run and it is not the default",
    ),
    "pip_s32": Variant(
        "PIP, s = 32",
        lambda ctx: build_pip(ctx, prompt_size=32),
        2e-3,
        labelled=True,
        group="tried",
        note="a basic prompt of 32×32 instead of 16×16: a finer universal prompt and "
        "attention grid, within 5% of the parameters",
    ),
    "pip_light": Variant(
        "PIP, light units",
        lambda ctx: build_pip(ctx, prompt_size=8, feature_ffn_expansion=0.5),
        2e-3,
        labelled=True,
        group="tried",
        note="8×8 basic prompts and a per-pixel feed-forward of half width (the quality "
        "benchmark's light units, which kept its two-seed average), for a cheaper NAFNet "
        "default: 425K trainable, but over two training seeds 0.55 dB under "
        "the default on the held-out photos (0.12 out of domain), and only +0.25 dB over full "
        "fine-tuning on the first seed (the goal is +0.50), so not the default (see Training "
        "seeds)",
    ),
    "pip_ffn_rank32": ffn_rank(
        32,
        "for the gap to the per-degradation LoRAs, which give each degradation its own "
        "weights in every 1×1 layer where PIP's units share everything but the degradation "
        "prompt: every unit's per-pixel feed-forward gets a rank-32 update of its two 1×1 "
        "projections per adapted degradation (`PIPConfig(degradation_ffn_rank=32)`), mixed by "
        "the degradation weights that mix the prompt (the same cost per pixel; its trainable "
        "count is in the cost table)",
    ),
    "pip_ffn_rank64": ffn_rank(
        64,
        "for haze, most of rank 32's held-out gap to the per-degradation LoRAs: the same "
        "updates at rank 64, still within 5% of the parameters (the cost table has the count); "
        "the recipe's adapter default (`pip_adapter.recipes.ADAPTER_FFN_RANK`) since its "
        "mean over two training seeds came out above the LoRAs' on both sets on the CPU page "
        "(transfer.md, AMD section), the rule fixed before the second seed ran",
    ),
    "pip_units_kept": Variant(
        "PIP, units not recomputed",
        build_pip,
        2e-3,
        labelled=True,
        group="tried",
        note="for the time per step on a GPU: the default PIP trained with "
        "`TrainConfig(recompute_units=False)`, its units keeping their intermediate tensors "
        "for the backward pass instead of running again in it: the same gradients, more "
        "memory, one forward pass of the units fewer (the cost table has both)",
        recompute_units=False,
    ),
}
# the recipe's adapter default probed without recomputation, as pip_units_kept is the default PIP
VARIANTS[f"{ADAPTER_DEFAULT}_units_kept"] = dataclasses.replace(
    VARIANTS[ADAPTER_DEFAULT],
    label=f"PIP, each degradation's own feed-forward update (rank {ADAPTER_FFN_RANK}), "
    "units not recomputed",
    note="for the time per step on a GPU of the recipe's adapter default "
    f"(`pip_adapter.recipes.ADAPTER_FFN_RANK`): `{ADAPTER_DEFAULT}` trained with "
    "`TrainConfig(recompute_units=False)`, as `pip_units_kept` is the default PIP's",
    recompute_units=False,
)


# the same training under another seed (initialisation, patches, batch order): the noise of a
# single-seed comparison
SEEDS = {
    "pip": (1, 2),
    "full_low": (1, 2),
    "full_high": (1, 2),
    "lora_default_size": (1, 2),
    "pip_light": (1,),
    "lora_per_degradation": (1, 2),
    "pip_deep_encoders": (1,),
    "pip_psnr_context": (1,),
    "pip_relative": (1,),
    "pip_ema": (1,),
    "pip_ffn_rank32": (1, 2),
    "pip_ffn_rank64": (1, 2),
}
VARIANTS |= {
    f"{name}_seed{seed}": dataclasses.replace(
        VARIANTS[name],
        label=f"{VARIANTS[name].label}, training seed {seed}",
        group="seeds",
        note="",
        train_seed=seed,
    )
    for name, seeds in SEEDS.items()
    for seed in seeds
}


# --- training, evaluation, costs -----------------------------------------------------------------


class LabelledTrainer(Trainer):
    """The library's Trainer for a model steered by ``degradation=`` that is not a PIPModel."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conditioned = True


def training_set(args: argparse.Namespace, variant: Variant) -> SyntheticAllInOne:
    custom = None if variant.blur_from is None else {"blur": milder_blur(variant.blur_from)}
    return SyntheticAllInOne(
        degradations=TASKS,
        patch_size=args.patch_size,
        samples_per_degradation=64,
        seed=variant.seed(args),
        context=variant.context,
        custom=custom,
    )


def milder_blur(shortest: float) -> Callable[..., torch.Tensor]:
    """Motion blur whose length is uniform from ``shortest`` to the default's longest (21 px):
    the training also sees blur milder than the default range (7-21 px) that it is evaluated on."""
    longest = BLUR_PARAMETERS["length"][0][1]

    def blur(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        length = shortest + (longest - shortest) * torch.rand((), generator=generator).item()
        return motion_blur(x, length=length, generator=generator)

    return blur


def make_trainer(
    variant: Variant,
    model: nn.Module,
    args: argparse.Namespace,
    steps: int,
    out: Path | None,
    train_set: SyntheticAllInOne,
) -> Trainer:
    config = TrainConfig(
        steps=steps,
        batch_size=args.batch_size,
        lr=variant.lr,
        loss=variant.loss,
        seed=variant.seed(args),
        ema_decay=variant.ema_decay,
        recompute_units=variant.recompute_units,
        prompt_reg_weight=2e-5 if isinstance(model, PIPModel) else 0.0,
        device=args.device,
        progress=not PLOTS,  # the step rate and loss in the run's log, where there is no folder
        log_every=max(1, steps // 50),
    )
    cls = LabelledTrainer if variant.labelled and not isinstance(model, PIPModel) else Trainer
    return cls(
        model,
        train_set,
        config,
        out_dir=out if PLOTS else None,
        run_name=variant.label,
        save_model=False,
        overwrite=True,  # the benchmark's own folder: a rerun replaces the variant's run
    )


@functools.cache
def eval_sets(seed: int) -> dict[str, Any]:
    """The held-out bundled photos and, when the library has them, the out-of-domain ones
    (built once per process: the cache keys name them too)."""
    sets = {"held-out photos": build_eval_set(degradations=TASKS, seed=seed, crop=EVAL_CROP)}
    try:
        sample_image_names("ood")  # type: ignore[arg-type]
    except ValueError:
        return sets  # this version of the library has no out-of-domain set yet
    sets["out-of-domain photos"] = build_eval_set(
        "ood", degradations=TASKS, seed=seed, crop=EVAL_CROP
    )
    return sets


def saves_adapter(model: nn.Module) -> bool:
    """Whether a trained variant is kept as a PIP adapter (``adapter_config.json`` +
    ``adapter.safetensors``): PIP on the frozen backbone, which the adapter and the pretrained
    checkpoint rebuild."""
    return (
        isinstance(model, PIPModel)
        and not trainable(model.backbone)
        and all(isinstance(unit, PromptInPrompt) for unit in model.pip_units.values())
    )


def keep_weights(model: nn.Module, folder: Path) -> Path:
    """Keep what a variant trained in ``folder``, so that what is fitted or measured after
    training (the output strengths) needs no retraining: frozen-backbone PIP its adapter
    (``adapter/``), the LoRAs their peft adapters (``lora/``), other units on a frozen backbone
    (the PromptIR-style block) their weights (``units.safetensors``), anything else every
    weight (``weights.safetensors``). Returns the path written."""
    peft = sys.modules.get("peft")  # a LoRA variant was built with it, so it is imported
    if saves_adapter(model):
        return model.save_adapter(folder / "adapter")
    if isinstance(model, LoRAPerDegradation) or (peft and isinstance(model, peft.PeftModel)):
        network = model.network if isinstance(model, LoRAPerDegradation) else model
        network.save_pretrained(folder / "lora")  # one subfolder per named adapter
        return folder / "lora"
    if isinstance(model, PIPModel) and not trainable(model.backbone):
        return write_safetensors(folder / "units.safetensors", model.pip_units.state_dict())
    return write_safetensors(folder / "weights.safetensors", model.state_dict())


KEPT = ("adapter", "lora", "units.safetensors", "weights.safetensors")


def kept_weights(folder: Path) -> Path | None:
    """The weights ``keep_weights`` kept in ``folder``, if any."""
    return next((folder / n for n in KEPT if (folder / n).exists()), None)


def load_trained(name: str, args: argparse.Namespace) -> nn.Module | None:
    """Variant ``name`` as trained, rebuilt from its kept weights (None when it kept none):
    the variant is built as for training and every kept tensor is loaded into it."""
    variant, path = VARIANTS[name], kept_weights(args.runs / name)
    if variant.build is None or path is None:
        return None
    ctx = Context(args.checkpoint, args.native)
    if path.name == "adapter":
        return pa.load_adapter(ctx.backbone(), path)
    model = variant.build(ctx)
    if path.name == "lora":
        from peft.utils import set_peft_model_state_dict

        network = model.network if isinstance(model, LoRAPerDegradation) else model
        for adapter in network.peft_config:
            folder = path if adapter == "default" else path / adapter
            state = load_file(folder / "adapter_model.safetensors")
            loaded = set_peft_model_state_dict(network, state, adapter_name=adapter)
            if loaded.unexpected_keys:
                raise ValueError(f"{folder}: tensors this LoRA lacks: {loaded.unexpected_keys}")
    elif path.name == "units.safetensors":
        model.pip_units.load_state_dict(load_file(path))
    else:
        model.load_state_dict(load_file(path))
    return model.eval()


def run_variant(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Train (unless it is the pretrained network) and evaluate one variant."""
    variant = VARIANTS[name]
    ctx = Context(args.checkpoint, args.native)
    torch.manual_seed(variant.seed(args))
    out = args.runs / name
    if variant.build is None:
        model, seconds = ctx.backbone().to(args.device), 0.0
    else:
        model = variant.build(ctx)
        started = time.perf_counter()
        make_trainer(variant, model, args, args.steps, out, training_set(args, variant)).fit()
        seconds = time.perf_counter() - started
        (out / "checkpoint.pt").unlink(missing_ok=True)  # optimiser state: not needed here
        keep_weights(model, out)
    reports = {
        label: evaluate(model, dataset, conditioned=variant.labelled)
        for label, dataset in eval_sets(args.seed).items()
    }
    return {
        "trainable": trainable(model) if variant.build else 0,
        "total": sum(p.numel() for p in model.parameters()),
        "storage": storage_per_degradation(name, model),
        "train_seconds": seconds,
        "reports": reports,
    }


def storage_per_degradation(name: str, model: nn.Module) -> int:
    """Bytes to store (float32) when one more degradation is added: the whole network for full
    fine-tuning, one LoRA for per-degradation LoRAs, the whole shared adapter otherwise."""
    if name == "pretrained":
        return 0
    if name.startswith(("full", "pip_full")):
        return 4 * sum(p.numel() for p in model.parameters())
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if isinstance(model, LoRAPerDegradation):  # one adapter's share
        adapter = next(t for t in TASKS if t not in model.native)
        named = [(n, p) for n, p in named if f".{adapter}." in n]
    return 4 * sum(p.numel() for _, p in named)


def probe_cost(name: str, args: argparse.Namespace) -> dict[str, float]:
    """Seconds per training step and peak training memory of a few steps (in this process): on
    the CPU the resident set's peak above the process before the model was built, on a GPU
    ``torch.cuda.max_memory_allocated`` above what was allocated before (the steps timed
    between CUDA synchronisations)."""
    variant = VARIANTS[name]
    ctx = Context(args.checkpoint, args.native)
    torch.manual_seed(variant.seed(args))
    status = Path("/proc/self/status")

    def kib(field: str) -> int:
        line = next(x for x in status.read_text().splitlines() if x.startswith(field))
        return int(line.split()[1])

    train_set = training_set(args, variant)
    ctx.size(), ctx.size(ADAPTER_DEFAULT)  # the sizes the baselines match, before measuring
    cuda = args.device == "cuda"
    if cuda:  # the earlier probes' garbage freed first, or its release would lower the peak
        gc.collect()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        before = 1024 * kib("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak
    model = variant.build(ctx)
    trainer = make_trainer(variant, model, args, args.probe_steps + 2, None, train_set)
    trainer.fit(stop_at=2)  # warm-up; the optimiser state exists from here on
    if cuda:
        torch.cuda.synchronize()
    started = time.perf_counter()
    trainer.fit()
    if cuda:
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - started) / args.probe_steps
    peak = torch.cuda.max_memory_allocated() if cuda else 1024 * kib("VmHWM")
    return {"seconds_per_step": seconds, "peak_mib": (peak - before) / 2**20}


def fingerprint(name: str, ctx: Context) -> dict[str, Any]:
    """What the current library builds for a variant (trainable count, PIP placement and
    sizes), so that a change of the library's defaults retrains it."""
    variant = VARIANTS[name]
    if variant.build is None:
        return {}
    torch.manual_seed(0)
    model = variant.build(ctx)
    config = model.config.to_dict() if isinstance(model, PIPModel) else {}
    return {"trainable": trainable(model), "config": essential(config), "version": pa.__version__}


# settings whose no-op value is not 0 / False / empty: the stride 1 runs the compact unit's
# feed-forward on the whole feature, as it ran before the option existed
NO_OP = {"feature_ffn_stride": 1}


def essential(config: dict[str, Any]) -> dict[str, Any]:
    """A config without the settings that impose nothing (unset, or resolved to their no-op
    value: 0 / False / empty, e.g. no output strengths, or the one ``NO_OP`` names), so that a
    library that starts resolving an unset option to its no-op value does not retrain the same
    model."""
    return {
        k: v
        for k, v in config.items()
        if v not in (None, 0, False, [], (), {}) and not (k in NO_OP and v == NO_OP[k])
    }


def checkpoint_key(args: argparse.Namespace) -> str:
    """The starting checkpoint as the cache knows it: relative to the runs folder when it is
    the benchmark's own (so that a copy of the folder, e.g. in another checkout, is reused),
    else its absolute path."""
    path = args.checkpoint.resolve()
    try:
        return str(path.relative_to(args.runs.resolve()))
    except ValueError:
        return str(path)


def settings(args: argparse.Namespace, name: str) -> dict[str, Any]:
    if name not in args.settings:
        keys = ("steps", "batch_size", "patch_size", "seed", "threads")
        args.settings[name] = {
            **{key: getattr(args, key) for key in keys},
            "checkpoint": checkpoint_key(args),
            "native": list(args.native),
            "lr": VARIANTS[name].lr,
            **VARIANTS[name].recipe(),
            "eval_crop": EVAL_CROP,
            "eval_sets": list(eval_sets(args.seed)),
            **fingerprint(name, Context(args.checkpoint, args.native)),
        }
        if args.device != "cpu":  # the CPU's keys stay as they were, so its cache stays valid
            args.settings[name]["device"] = args.device
        if args.pretrain_steps != PRETRAIN["steps"]:
            args.settings[name]["pretrain_steps"] = args.pretrain_steps
        if args.quick:  # its pretraining's patches too: never mixed with the full run's results
            args.settings[name] |= {"quick": True, "pretrain_patch": args.pretrain_patch}
        args.settings[name] = json.loads(json.dumps(args.settings[name]))  # as stored
    return args.settings[name]


def cached(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    if path.is_file():
        saved = json.loads(path.read_text())
        stored = saved.get("settings", {})
        if "config" in stored:
            stored = {**stored, "config": essential(stored["config"])}
        if stored == key:
            return saved["results"]
    return None


def start_child(args: argparse.Namespace, flag: str, name: str) -> subprocess.Popen:
    """This script on one variant in a fresh process (one thread, own memory), its output in
    ``runs/.../NAME/<flag>.log``."""
    command = [sys.executable, __file__, flag, name, *args.passthrough]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}  # RSS follows freed tensors
    log = args.runs / name / f"{flag.strip('-')}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as handle:  # the child holds its own copy of the file
        return subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT)


def child(args: argparse.Namespace, flag: str, name: str) -> None:
    """Run this script on one variant in a fresh process and wait for it; a failure raises."""
    process = start_child(args, flag, name)
    if process.wait():
        raise subprocess.CalledProcessError(process.returncode, process.args)


def train_all(args: argparse.Namespace, names: list[str]) -> dict[str, float]:
    """Train ``names`` in ``args.jobs`` processes at once, started in the order given; returns
    the wall seconds of each that finished (start to end, beside the others), also printed.
    Without a deadline the first failure stops the rest (those still training write no
    result) and raises. With one (``args.end_at``, a ``time.monotonic()``), trainings must
    end ``PROBE_RESERVE`` seconds before it: a failure is printed and the rest go on, no variant
    is started that would end later if it took as long as the slowest finished so far, and
    those still training then are stopped."""
    stop_at = None if args.end_at is None else args.end_at - PROBE_RESERVE
    pending, walls = list(names), {}
    running: dict[str, tuple[subprocess.Popen, float]] = {}

    def stop_running(why: str) -> None:
        for name, (process, _) in running.items():
            process.terminate()
            process.wait()
            print(f"{name}: stopped {why}", flush=True)

    while pending or running:
        for name, (process, started) in list(running.items()):
            if process.poll() is None:
                continue
            del running[name]
            if process.returncode:
                print(f"{name}: FAILED (exit {process.returncode}), see its train.log", flush=True)
                if stop_at is None:
                    stop_running(f"after {name} failed")
                    raise subprocess.CalledProcessError(process.returncode, process.args)
                continue
            walls[name] = time.monotonic() - started
            print(f"{name}: trained and evaluated in {walls[name]:.0f} s", flush=True)
        now = time.monotonic()
        if stop_at is not None and now >= stop_at:
            stop_running("at the deadline")
            break
        while pending and len(running) < args.jobs:
            if stop_at is not None and now + max(walls.values(), default=0) > stop_at:
                break
            name = pending.pop(0)
            running[name] = (start_child(args, "--train", name), time.monotonic())
        if running:
            time.sleep(0.5)
        elif pending:
            break  # none would end before the deadline
    if pending:
        print(f"not started (the deadline): {', '.join(pending)}", flush=True)
    return walls


def probe_all(args: argparse.Namespace, names: list[str], started: float) -> None:
    """Probe the cost of ``names`` one after another; with a deadline (``args.end_at``, a
    ``time.monotonic()``) none is started in its last ``PAGE_RESERVE`` seconds."""
    for name in names:
        if args.end_at is not None and time.monotonic() > args.end_at - PAGE_RESERVE:
            print(f"cost probes stopped at the deadline, before {name}", flush=True)
            break
        if args.device == "cuda":  # in turn in this process: the GPU to itself
            write_result(name, args, probe=True)
        else:
            child(args, "--probe", name)  # one at a time: the timings share no core
        print(f"{name}: cost probed at {time.monotonic() - started:.0f} s", flush=True)


# the ways each kept variant is measured: at full strength, then at the strengths each objective
# of ``fit_output_strength`` fits on the validation photos
WAYS = {"full": "full strength", **STRENGTH_OBJECTIVES}


# the strength of the page's headline comparison: "full", or an objective of WAYS whose fitted
# strengths put blur at or above its input on both sets, both kept seeds of PIP, while PIP keeps
# its lead over the baselines fitted the same way (see the Output strength section). "psnr":
# least squares ("mse") leaves blur 0.001-0.002 dB under its input on one set for each seed
HEADLINE_STRENGTH = "psnr"


def strength_results(name: str, args: argparse.Namespace) -> dict[str, Any] | None:
    """Variant ``name`` rebuilt from its kept weights and evaluated at full strength and at the
    output strengths each objective fits on the validation photos (256² centre crops, cut as
    the evaluation photos are): one per degradation if it is steered by labels, one for all
    if it is blind. Cached in ``runs/transfer/NAME/strength.json`` while the kept weights are
    the same. None when the variant kept no weights."""
    # here, not at the top: its validation photos need scikit-image, which a GPU run (no
    # output strengths) does without
    from digests import files_digest
    from output_strength import Blended, restorations, sets_digest, validation_pairs
    from output_strength import cached as cached_strength

    kept = kept_weights(args.runs / name)
    if VARIANTS[name].build is None or kept is None:
        return None
    labelled = VARIANTS[name].labelled

    def measure() -> dict[str, Any]:
        model = load_trained(name, args)
        sets = eval_sets(args.seed).items()
        measured = {"full": {s: evaluate(model, d, conditioned=labelled) for s, d in sets}}
        groups = restorations(model, validation_pairs(TASKS, crop=EVAL_CROP), labelled)
        for objective in STRENGTH_OBJECTIVES:
            strengths = fit_output_strengths(groups, objective)
            print(f"{name}: output strengths ({objective}) {strengths}")
            blended = Blended(model, strengths)
            reports = {s: evaluate(blended, d, conditioned=labelled) for s, d in sets}
            measured[objective] = {"strengths": strengths, "reports": reports}
        return measured

    key = {"weights": files_digest(kept), "checkpoint": checkpoint_key(args)}
    key |= {"labelled": labelled, "eval_sets": sets_digest(eval_sets(args.seed))}
    return cached_strength(args.runs / name / "strength.json", key, measure)


def keep_previous(path: Path, key: dict[str, Any]) -> None:
    """Before a finished retraining replaces the result at ``path``: keep it beside as
    ``previous.json`` when it was made with the same settings ``key`` (the page says how far
    the rerun moved it), else drop any ``previous.json`` (of other settings)."""
    previous = path.with_name("previous.json")
    if path.is_file() and json.loads(path.read_text()).get("settings") == key:
        path.replace(previous)
    else:
        previous.unlink(missing_ok=True)


def earlier_run(name: str, args: argparse.Namespace, result: dict, kept: dict) -> dict | None:
    """The reports of the run before the one whose weights are kept (``kept``: their reports):
    ``previous.json``, where a retraining moved the result it replaced, else the cached
    ``result`` when it differs from ``kept`` (the weights were kept by a later run of the same
    settings, with a library that sums in another order). Only runs of the current settings;
    None when there was no earlier one."""
    previous = cached(args.runs / name / "previous.json", settings(args, name))
    if previous is not None:
        return previous["reports"]
    return result["reports"] if result["reports"] != kept else None


# --- the page -----------------------------------------------------------------------------------


def fmt_params(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.0f}K"


def fmt_bytes(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.0f} KiB"


def best_full(results: dict[str, Any], eval_set: str) -> str:
    names = [n for n in FULL_LRS if n in results]
    return max(names, key=lambda n: results[n]["reports"][eval_set]["average"]["psnr"])


def quality_table(results: dict[str, Any], names: list[str], eval_set: str) -> list[str]:
    pretrained = results["pretrained"]["reports"][eval_set]
    header = ["variant", *TASKS, "average", "forgetting (noise)"]
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    inputs = ["degraded input"] + [f"{pretrained[t]['input_psnr']:.2f}" for t in TASKS]
    inputs += [f"{pretrained['average']['input_psnr']:.2f}", ""]
    lines.append("| " + " | ".join(inputs) + " |")
    for name in names:
        report = results[name]["reports"][eval_set]
        cells = [VARIANTS[name].label]
        cells += [f"{report[t]['psnr']:.2f} / {report[t]['ssim']:.3f}" for t in TASKS]
        cells.append(f"**{report['average']['psnr']:.2f}** / {report['average']['ssim']:.3f}")
        forgetting = report["noise"]["psnr"] - pretrained["noise"]["psnr"]
        cells.append("" if name == "pretrained" else f"{forgetting:+.2f} dB")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def cost_table(results: dict[str, Any], costs: dict[str, Any], names: list[str]) -> list[str]:
    lines = [
        "| variant | trainable | peak training memory | time per step | stored per added "
        "degradation |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name in names:
        if name == "pretrained":
            continue
        entry, cost = results[name], costs.get(name)
        memory = f"{cost['peak_mib']:.0f} MiB" if cost else "n/a"
        step = f"{cost['seconds_per_step']:.2f} s" if cost else "n/a"
        percent = 100 * entry["trainable"] / entry["total"]
        share = f"{fmt_params(entry['trainable'])} ({percent:.1f}%)"
        lines.append(
            f"| {VARIANTS[name].label} | {share} | {memory} | {step} | "
            f"{fmt_bytes(entry['storage'])} |"
        )
    return lines


def seed_table(results: dict[str, Any], sets: list[str]) -> list[str]:
    """Average and blur PSNR of each variant of ``SEEDS`` per training seed, and their mean."""
    header = ["variant", "training seed"]
    header += [f"{what}, {eval_set}" for eval_set in sets for what in ("average", "blur")]
    lines = ["| " + " | ".join(header) + " |", "| --- | ---: |" + " ---: |" * (len(header) - 2)]
    for name in SEEDS:
        rows = {s: seed_cells(results[run], sets) for s, run in seed_runs(name, results).items()}
        if len(rows) < 2:
            continue
        mean = [sum(column) / len(rows) for column in zip(*rows.values(), strict=True)]
        for seed, cells in rows.items():
            text = " | ".join(f"{v:.2f}" for v in cells)
            lines.append(f"| {VARIANTS[name].label} | {seed} | {text} |")
        lines.append(
            f"| {VARIANTS[name].label} | mean | " + " | ".join(f"**{v:.2f}**" for v in mean) + " |"
        )
    return lines


def seed_runs(name: str, results: dict[str, Any]) -> dict[int, str]:
    """The finished runs of a variant by training seed: itself (seed 0) and its ``SEEDS``."""
    runs = {0: name, **{seed: f"{name}_seed{seed}" for seed in SEEDS.get(name, ())}}
    return {seed: run for seed, run in runs.items() if run in results}


def seed_mean(results: dict[str, Any], name: str, eval_set: str, key: str) -> float:
    """The PSNR of ``key`` (a degradation or "average") over the variant's training seeds."""
    runs = seed_runs(name, results).values()
    return sum(results[run]["reports"][eval_set][key]["psnr"] for run in runs) / len(runs)


def trained_seeds(name: str, results: dict[str, Any]) -> str:
    """The training seeds a variant has results of, in words ("training seeds 0 and 1")."""
    seeds = list(seed_runs(name, results))
    return f"training seed{'s' * (len(seeds) > 1)} " + " and ".join(map(str, seeds))


def seed_cells(result: dict[str, Any], sets: list[str]) -> list[float]:
    """The average and blur PSNR of a result on each evaluation set."""
    reports = result["reports"]
    return [reports[eval_set][key]["psnr"] for eval_set in sets for key in ("average", "blur")]


def seeds_phrase(count: int) -> str:
    """How the page names a variant's ``count`` training seeds."""
    return "both training seeds" if count == 2 else f"the {count} training seeds"


def input_gap(results: dict[str, Any], eval_set: str, name: str, degradation: str) -> str:
    """Variant ``name``'s PSNR against the degraded input's for ``degradation``: training seed
    0's, and the training seeds' mean when there are several."""
    report = results[name]["reports"][eval_set][degradation]
    text = f"{degradation} ({report['psnr'] - report['input_psnr']:+.2f} dB"
    if len(seed_runs(name, results)) > 1:
        mean = seed_mean(results, name, eval_set, degradation)
        text += f"; over {seeds_phrase(len(seed_runs(name, results)))} (mean) "
        text += f"{mean - report['input_psnr']:+.2f} dB"
    return text + ")"


def versus(
    results: dict[str, Any], eval_set: str, name: str, other: str, what: str, bar: float
) -> str:
    """Variant ``name`` against variant ``other`` (``what``: "PIP vs ...") on average, and over
    the training seeds of both."""

    def avg(run: str) -> float:
        return results[run]["reports"][eval_set]["average"]["psnr"]

    diff = avg(name) - avg(other)
    goal = f"≥ +{bar:.2f}" if bar else "> 0"
    line = f"- {what}: {diff:+.2f} dB (goal {goal}): {verdict(beats(diff, bar))}"
    mine, theirs = seed_runs(name, results), seed_runs(other, results)
    shared = sorted(mine.keys() & theirs.keys())  # a mean over other seeds would compare them
    if len(shared) > 1:
        mean = sum(avg(mine[seed]) - avg(theirs[seed]) for seed in shared) / len(shared)
        line += f"; over {seeds_phrase(len(shared))} (means): {mean:+.2f} dB"
        if len(shared) < max(len(mine), len(theirs)):
            line += f" (the seeds both have: {' and '.join(map(str, shared))})"
    return line + "."


def ranks_versus_loras(results: dict[str, Any], eval_set: str) -> list[str]:
    """The goal "above the per-degradation LoRAs" for PIP with each degradation's own
    feed-forward update at the ranks tried besides the recipe's adapter default (which
    ``adapter_goals`` checks)."""
    loras = "lora_per_degradation"
    if loras not in results:
        return []
    names = [n for n in results if re.fullmatch(r"pip_ffn_rank\d+", n)]  # not seeds, not units_kept
    return [
        versus(
            results, eval_set, name, loras, f"{VARIANTS[name].label} vs {VARIANTS[loras].label}", 0
        )
        for name in names
        if name != ADAPTER_DEFAULT
    ]


# the issue's goals for a frozen-backbone PIP variant, by the names the quick page gives them:
# those measured per photo set (dB, with the bar of each "over" goal), then the others
DB_GOALS = ("≥ +0.50 dB over full fine-tuning", "≥ +0.50 dB over the LoRA of equal size")
DB_GOALS += ("above the per-degradation LoRAs", "pretrained task ≥ −0.10 dB")
DB_GOALS += ("no degradation below its input (closest, dB)",)
OVER = {DB_GOALS[0]: 0.5, DB_GOALS[1]: 0.5, DB_GOALS[2]: 0.0}
SHARE_GOAL = "≤ 5% trainable (%)"
MEMORY_GOAL = "peak memory ≤ 60% of full fine-tuning's (%)"
STEP_GOAL = "time per step ≤ 1.00×"
# the goals a quick run cannot resolve, with why
QUICK_UNRESOLVED = {
    DB_GOALS[2]: "thin at full fidelity (held out: within one variant's spread over training "
    "seeds), which one seed at low fidelity cannot resolve",
    DB_GOALS[4]: "a thin margin at full fidelity, which no quick setting tried reproduced (the "
    "numbers: Other quick settings tried)",
    STEP_GOAL: "probes on a machine shared with other jobs (the full run's figure is from a "
    "quiet window)",
}


def beats(diff: float, bar: float) -> bool:
    """Whether a lead of ``diff`` dB meets an "over" goal's ``bar``."""
    return diff > 0 and diff >= bar


def goal_values(
    results: dict[str, Any], costs: dict[str, Any], eval_set: str, name: str
) -> dict[str, tuple[float | None, bool | None]]:
    """The issue's goals for frozen-backbone PIP variant ``name`` (training seed 0) on
    ``eval_set``: each one's value and whether it is met (None, None: not measured). The
    page's goal list (``adapter_goals``) and the quick page's table both read them."""

    def psnr(run: str, degradation: str = "average") -> float:
        return results[run]["reports"][eval_set][degradation]["psnr"]

    full = best_full(results, eval_set) if set(FULL_LRS) & results.keys() else None
    values: dict[str, tuple[float | None, bool | None]] = {}
    for goal, other in zip(OVER, (full, EQUAL_LORA[name], "lora_per_degradation"), strict=True):
        diff = psnr(name) - psnr(other) if other in results else None
        values[goal] = (None, None) if diff is None else (diff, beats(diff, OVER[goal]))
    report = results[name]["reports"][eval_set]
    forgetting = psnr(name, "noise") - psnr("pretrained", "noise")
    closest = min(input_gain(report, t) for t in TASKS)
    share = results[name]["trainable"] / results[name]["total"]
    values |= {
        DB_GOALS[3]: (forgetting, forgetting >= -0.1),
        DB_GOALS[4]: (closest, closest >= 0),
        SHARE_GOAL: (100 * share, share <= 0.05),
    }
    for goal, (measure, bar) in {
        MEMORY_GOAL: ("peak_mib", 0.6),
        STEP_GOAL: ("seconds_per_step", 1.0),
    }.items():
        values[goal] = (None, None)
        if name in costs and full in costs:
            ratio = costs[name][measure] / costs[full][measure]
            values[goal] = (100 * ratio if goal == MEMORY_GOAL else ratio, ratio <= bar)
    return values


# the LoRA of each adapter's trainable count: the goal "+0.5 dB over LoRA at equal size"
EQUAL_LORA = {"pip": "lora", ADAPTER_DEFAULT: "lora_default_size"}


def adapter_goals(
    results: dict[str, Any], costs: dict[str, Any], eval_set: str, name: str
) -> list[str]:
    """The issue's goals for a frozen-backbone PIP variant ``name``, each checked against the
    numbers above, or named as not measured with the variants a run needs for it."""
    values = goal_values(results, costs, eval_set, name)
    pip = results[name]["reports"][eval_set]
    below = [t for t in TASKS if pip[t]["psnr"] < pip[t]["input_psnr"]]
    gaps = [input_gap(results, eval_set, name, t) for t in below]
    full = best_full(results, eval_set) if set(FULL_LRS) & results.keys() else None
    if full is None:
        names = ",".join(FULL_LRS)
        lines = [f"- PIP vs full fine-tuning: not measured (not run: `--variants {names}`)."]
    else:
        label = f"PIP vs full fine-tuning ({VARIANTS[full].label}) on average"
        lines = [versus(results, eval_set, name, full, label, OVER[DB_GOALS[0]])]
    share, small = values[SHARE_GOAL]
    lines.append(f"- Trainable share: {share:.1f}% (goal ≤ 5%): {verdict(bool(small))}.")
    for goal, other in ((DB_GOALS[1], EQUAL_LORA[name]), (DB_GOALS[2], "lora_per_degradation")):
        label = VARIANTS[other].label
        if other not in results:
            lines.append(f"- PIP vs {label}: not measured (not run: `--variants {other}`).")
            continue
        lines.append(versus(results, eval_set, name, other, f"PIP vs {label}", OVER[goal]))
    forgetting, kept = values[DB_GOALS[3]]
    lines += [
        f"- Pretrained task (noise, with its label) vs the pretrained network: "
        f"{forgetting:+.2f} dB (goal ≥ −0.10): {verdict(bool(kept))}.",
        f"- Degradations below their degraded input: {', '.join(gaps) or 'none'}: "
        f"{verdict(bool(values[DB_GOALS[4]][1]))}.",
    ]
    (memory, lighter), (step, faster) = values[MEMORY_GOAL], values[STEP_GOAL]
    if memory is not None and step is not None:
        lines += [
            f"- Peak training memory: {memory:.0f}% of full fine-tuning's (goal ≤ 60%): "
            f"{verdict(bool(lighter))}.",
            f"- Time per step: {step:.2f}× full fine-tuning's (goal ≤ 1.00×): "
            f"{verdict(bool(faster))}.",
        ]
    else:
        lines.append(
            "- Peak training memory (goal ≤ 60% of full fine-tuning's) and time per step (goal "
            "≤ 1.00×): not measured here (no cost probes of both in this run; "
            "training_cost.md times the recipe's adapter default on the official NAFNet)."
        )
    return lines


def goals(results: dict[str, Any], costs: dict[str, Any], eval_set: str) -> list[str]:
    """The issue's goals for frozen-backbone PIP (the shared units) and for the recipe's adapter
    default, for those of the two a record has; then the other feed-forward ranks tried
    against the per-degradation LoRAs."""
    subjects = [n for n in ("pip", ADAPTER_DEFAULT) if n in results]
    if "pretrained" not in results or not subjects:
        names = ("pretrained", "pip", ADAPTER_DEFAULT)
        missing = "; ".join(VARIANTS[n].label for n in names if n not in results)
        lines = [f"- Not measured (not run: {missing}): the goals of the adapter."]
        return lines + ranks_versus_loras(results, eval_set)
    lines = adapter_goals(results, costs, eval_set, "pip") if "pip" in results else []
    if ADAPTER_DEFAULT in results:
        lines.append(f"- {VARIANTS[ADAPTER_DEFAULT].label} (the recipe's adapter default):")
        lines += ["  " + line for line in adapter_goals(results, costs, eval_set, ADAPTER_DEFAULT)]
    return lines + ranks_versus_loras(results, eval_set)


def at_strength(results: dict[str, Any], strengths: dict[str, Any], way: str) -> dict[str, Any]:
    """The results of the variants with kept weights as measured ``way`` (a key of ``WAYS``),
    with the pretrained network's (the inputs, and the reference for forgetting)."""

    def reports(measured: dict[str, Any]) -> dict[str, Any]:
        return measured["full"] if way == "full" else measured[way]["reports"]

    kept = {name: {**results[name], "reports": reports(m)} for name, m in strengths.items()}
    return {"pretrained": results["pretrained"], **kept}


def strength_values(
    results: dict[str, Any], strengths: dict[str, Any], names: list[str]
) -> list[str]:
    """The strengths each objective fitted for every kept training seed of ``names``."""
    from output_strength import ALL

    header = ["variant", "training seed", "objective", *TASKS]
    lines = ["| " + " | ".join(header) + " |", "| --- | ---: | --- |" + " ---: |" * len(TASKS)]
    for name in names:
        for seed, run in seed_runs(name, results).items():
            for objective in STRENGTH_OBJECTIVES:
                fitted = strengths[run][objective]["strengths"]
                cells = [f"{fitted.get(t, fitted.get(ALL)):.2f}" for t in TASKS]
                what = WAYS[objective] + ("" if ALL not in fitted else " (blind: one for all)")
                lines.append(f"| {VARIANTS[name].label} | {seed} | {what} | {' | '.join(cells)} |")
    return lines


def strength_table(measured: dict[str, Any], names: list[str], eval_set: str) -> list[str]:
    """PSNR per degradation and on average of every kept training seed of ``names`` (and the
    seeds' mean), one row per way of ``WAYS``; ``measured`` maps each way to its results."""
    header = ["variant", "training seed", "strength", *TASKS, "average"]
    lines = [
        "| " + " | ".join(header) + " |",
        "| --- | ---: | --- |" + " ---: |" * (len(TASKS) + 1),
    ]
    inputs = measured["full"]["pretrained"]["reports"][eval_set]
    cells = " | ".join(f"{inputs[k]['input_psnr']:.2f}" for k in (*TASKS, "average"))
    lines.append(f"| degraded input | | | {cells} |")
    for name in names:
        for way, what in WAYS.items():
            runs = seed_runs(name, measured[way])
            rows = {
                str(seed): [
                    measured[way][run]["reports"][eval_set][k]["psnr"] for k in (*TASKS, "average")
                ]
                for seed, run in runs.items()
            }
            if len(rows) > 1:
                rows["mean"] = [sum(c) / len(runs) for c in zip(*rows.values(), strict=True)]
            for seed, values in rows.items():
                text = " | ".join(f"{v:.2f}" for v in values[:-1]) + f" | **{values[-1]:.2f}**"
                lines.append(f"| {VARIANTS[name].label} | {seed} | {what} | {text} |")
    return lines


def strength_goals(measured: dict[str, Any], eval_set: str) -> list[str]:
    """The issue's quality goals for PIP, measured every way of ``WAYS`` (each variant's mean
    over its kept training seeds). At fitted strengths PIP also meets each baseline at full
    strength: a blind network's one strength may cost it more than it gains."""
    full = measured["full"]
    if "pip" not in full:
        return []

    mean = functools.partial(mean_of, measured, eval_set)

    def cell(number: float, met: bool) -> str:
        return f"{number:+.3f} {'met' if met else '**not met**'}"

    header = ["goal (dB)", *WAYS.values()]
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * len(WAYS)]
    baselines = [(FULL_LRS, "full fine-tuning", 0.5)] if set(FULL_LRS) & full.keys() else []
    baselines += [
        ((name,), VARIANTS[name].label, bar)
        for name, bar in (("lora", 0.5), ("lora_per_degradation", 0.0))
        if name in full
    ]
    for names, label, bar in baselines:
        cells = []
        for way in WAYS:
            other = best_full(measured[way], eval_set) if names == FULL_LRS else names[0]
            diff = mean(way, "pip") - mean(way, other)
            text = cell(diff, diff > 0 and diff >= bar)
            if way != "full":
                against_full = mean(way, "pip") - mean("full", other)
                text += f"; {cell(against_full, against_full > 0 and against_full >= bar)} "
                text += "against it at full strength"
            cells.append(text)
        goal = f"≥ +{bar:.2f}" if bar else "> 0"
        lines.append(f"| PIP vs {label}, average (goal {goal}) | {' | '.join(cells)} |")
    for degradation in TASKS:
        inputs = full["pretrained"]["reports"][eval_set][degradation]["input_psnr"]
        gaps = [mean(way, "pip", degradation) - inputs for way in WAYS]
        cells = [cell(gap, gap >= 0) for gap in gaps]
        lines.append(
            f"| PIP's {degradation} vs its degraded input (goal ≥ 0) | {' | '.join(cells)} |"
        )
    pretrained = full["pretrained"]["reports"][eval_set]["noise"]["psnr"]
    gaps = [mean(way, "pip", "noise") - pretrained for way in WAYS]
    cells = [cell(gap, gap >= -0.1) for gap in gaps]
    lines.append(f"| PIP's noise vs the pretrained network (goal ≥ −0.10) | {' | '.join(cells)} |")
    return lines


def mean_of(
    measured: dict[str, Any], eval_set: str, way: str, name: str, key: str = "average"
) -> float:
    """PSNR of ``key`` for variant ``name`` measured ``way``: its kept training seeds' mean."""
    return seed_mean(measured[way], name, eval_set, key)


def headline_note(
    results: dict[str, Any], strengths: dict[str, Any], sets: list[str], way: str
) -> list[str]:
    """The page's headline comparison at the output strengths ``way`` fits (every variant with
    kept weights fitted the same way): PIP's average against each baseline's, and blur
    against its degraded input, per evaluation set (means over the kept training seeds)."""
    measured = {w: at_strength(results, strengths, w) for w in ("full", way)}
    if "pip" not in measured[way]:
        return []
    baselines = [best_full(measured[way], sets[0])] if set(FULL_LRS) & strengths.keys() else []
    baselines += [n for n in ("lora", "lora_per_degradation") if n in strengths]
    parts = []
    for eval_set in sets:
        mean = functools.partial(mean_of, measured, eval_set)

        versus = ", ".join(
            f"{mean(way, n):.2f} for {VARIANTS[n].label} ({mean(way, 'pip') - mean(way, n):+.2f}; "
            f"{mean('full', n):.2f} at full strength)"
            for n in baselines
        )
        blur = mean(way, "pip", "blur")
        blur -= measured[way]["pretrained"]["reports"][eval_set]["blur"]["input_psnr"]
        parts.append(
            f"{eval_set}: PIP {mean(way, 'pip'):.2f} dB ({mean('full', 'pip'):.2f} at full "
            f"strength) against {versus}; blur {blur:+.3f} dB against its degraded input"
        )
    return [
        f"**Headline comparison: at fitted output strength** ({STRENGTH_OBJECTIVES[way]}, "
        f'`objective="{way}"`, `pip-adapter train --strength-photos DIR --strength-objective '
        f"{way}`), every variant with kept weights fitted the same way (see Output strength; "
        "the tables below keep every variant at full strength). Means over the kept training "
        f"seeds, average PSNR: {'; '.join(parts)}.",
        "",
    ]


def strength_section(
    results: dict[str, Any], strengths: dict[str, Any], sets: list[str]
) -> list[str]:
    """Every variant with kept weights at full strength and at the output strengths each
    objective fits, per evaluation set, with the goals measured each way."""
    from output_strength import DESCRIPTION as STRENGTH_PHOTOS

    names = [n for n, v in VARIANTS.items() if v.group == "headline" and n in strengths]
    measured = {way: at_strength(results, strengths, way) for way in WAYS}
    kept = ", ".join(
        f"{VARIANTS[n].label} ({' and '.join(map(str, seed_runs(n, measured['full'])))})"
        for n in names
    )
    lines = [
        "## Output strength",
        "",
        "Every variant whose trained weights are kept (`runs/transfer/NAME/`), its output "
        "taken as `x + a · (model(x) − x)` with strengths `a` in [0, 1] "
        f"{STRENGTH_PHOTOS}, on 256² centre crops as the evaluation photos: one strength per "
        "degradation for a variant steered by labels (PIP's `PIPConfig.output_strength`), one "
        "for every image for a blind one (full fine-tuning, the equal-size LoRAs). Two "
        "objectives of `pip_adapter.training.fit_output_strength`: least squares over every "
        'pixel (`objective="mse"`, the default) and the highest mean PSNR per photo '
        '(`objective="psnr"`, as these tables average PSNR). Kept training seeds: '
        f"{kept}. The goals below compare the means over each variant's kept seeds, "
        "measured the same way for every variant.",
        "",
        "### Fitted strengths",
        "",
        *strength_values(measured["full"], strengths, names),
        "",
    ]
    for eval_set in sets:
        lines += [
            f"### {eval_set}",
            "",
            *strength_table(measured, names, eval_set),
            "",
            *strength_goals(measured, eval_set),
            "",
        ]
    return lines


def retrained_note(moved: dict[str, Any], results: dict[str, Any], sets: list[str]) -> list[str]:
    """Which rows come from a later training than the run cached before it (the kept weights
    are what the tables show), and how far each average moved."""
    if not moved:
        return []

    def change(name: str, earlier: dict[str, Any], eval_set: str) -> str:
        before = earlier[eval_set]["average"]["psnr"]
        now = results[name]["reports"][eval_set]["average"]["psnr"]
        return f"{before:.2f} → {now:.2f}" if before != now else f"{now:.2f} (identical)"

    changes = "; ".join(
        f"{VARIANTS[name].label}: " + ", ".join(change(name, earlier, s) for s in sets)
        for name, earlier in moved.items()
    )
    return [
        "Rows retrained to keep their weights: the tables show what the kept weights give. "
        "Training is bit-reproducible for one version of the library on one machine and "
        "thread count (tested), but PIP's earlier runs were made by earlier versions of the "
        "unit, changed since in ways equal only to rounding (the same maths summed in "
        "another order; for one, commit 1349bef makes the losses differ in the 8th digit by "
        "step 24), and 600 steps grow such differences into what a change of seed does (PIP, "
        "training seed 1: haze 19.04 → 17.11 dB held out). Full fine-tuning and the LoRAs "
        "run no PIP code and retrained bit for bit. "
        f"Average PSNR of the earlier run → the kept one ({', '.join(sets)}): {changes}.",
        "",
    ]


def render_page(record: dict[str, Any]) -> str:
    """The page of a run's ``record`` (see ``run_record``)."""
    results, costs, strengths = record["results"], record["costs"], record["strengths"]
    sets = list(results["pretrained"]["reports"])
    full = best_full(results, sets[0]) if any(n in results for n in FULL_LRS) else None
    headline = [
        n
        for n, v in VARIANTS.items()
        if v.group == "headline" and n in results and (n not in FULL_LRS or n == full)
    ]
    tried = [n for n, v in VARIANTS.items() if v.group == "tried" and n in results]
    seconds = record["pretrain_seconds"] + sum(r["train_seconds"] for r in results.values())
    cuda = record["device"] == "cuda"
    lines = [
        "# Adapter mode: a pretrained denoiser turned all-in-one" + (" (GPU)" if cuda else ""),
        "",
        f"`{record['command']}` — {record['date']}, {record['machine']}; "
        f"{seconds / 60:.0f} min of training in all (pretraining included"
        + (", summed over the processes sharing the GPU)." if cuda else ")."),
        "",
        f"Starting point: NAFNet, width 32, the official SIDD block counts halved "
        f"({fmt_params(results['pretrained']['total'])} parameters), pretrained on noise only "
        f"({record['pretrain_steps']} steps) on the bundled training photos and saved as an "
        "official BasicSR checkpoint. Then every variant trains "
        f"{record['steps']} steps (batch {record['batch_size']}, {record['patch_size']}² "
        "patches, the same "
        "batches) under the five degradations; PSNR (dB) / SSIM on 256² centre crops, "
        "per degradation. Forgetting: noise, restored with its label (plain networks: blind), "
        "against the pretrained network. The budget is the same for every variant: the one "
        "LoRA per degradation trains its four LoRAs in one optimiser on those batches, each "
        "on its degradation's share of every batch (about a fifth), so together they see "
        "the images PIP sees, no more steps.",
        "",
    ]
    lines += absent_note(record)
    if strengths and HEADLINE_STRENGTH != "full":
        lines += headline_note(results, strengths, sets, HEADLINE_STRENGTH)
    if not cuda and PAGE_ON["cuda"].is_file():
        lines += [
            "The same benchmark on a GPU (`--device cuda`), with more training seeds: "
            f"[{PAGE_ON['cuda'].name}]({PAGE_ON['cuda'].name}).",
            "",
        ]
    if cuda:
        lines += [
            "On the GPU (`--device cuda`): the pretraining and every variant trained and were "
            "evaluated there, up to "
            f"{record['jobs']} variants at once as processes sharing it, TF32 matmuls and "
            "convolutions. Training on a GPU is not bit-reproducible and sums in another order "
            "than the CPU, and the pretrained network is its own: compare these rows with each "
            "other, not with the CPU page (transfer.md). No output-strength section: it "
            "measures each variant's kept weights, and the GPU's stay on the GPU's machine.",
            "",
        ]
    if cuda and "pip" in results:
        here = "" if ADAPTER_DEFAULT in results else " (on the CPU page, transfer.md)"
        lines += [shared_units_note("", here), ""]
    lines += retrained_note(record["moved"], results, sets)
    for eval_set in sets:
        lines += [f"## {eval_set}", "", *quality_table(results, headline, eval_set), ""]
    seeds = seed_table(results, sets)
    if len(seeds) > 2:
        lines += [
            "## Training seeds",
            "",
            "Variants trained again under other seeds (their initialisation, training patches "
            "and batch order; the same pretrained network and evaluation photos): the noise of "
            "a single-seed comparison. Blur's degraded input: "
            + ", ".join(
                f"{results['pretrained']['reports'][s]['blur']['input_psnr']:.2f} dB ({s})"
                for s in sets
            )
            + ".",
            "",
            *seeds,
            "",
        ]
    if strengths:
        lines += strength_section(results, strengths, sets)
    if cuda:
        probe = (
            "Time per step (between CUDA synchronisations) and peak memory "
            "(`torch.cuda.max_memory_allocated` above what was allocated before the model was "
            f"built) over {record['probe_steps']} training steps after two warm-up steps, each "
            "variant in turn in one process after every training had ended (the GPU to itself)."
        )
        if not record.get("probes_collect_garbage"):
            probe += (
                " This run's probes did not collect the previous probe's garbage first: its "
                "release during a probe lowers that probe's peak, so a peak here may be "
                "understated (a later probe can read below an earlier one that trains fewer "
                "parameters); the script has collected it since."
            )
    else:
        probe = (
            "Time per step and peak memory (resident set above the process before the model "
            f"was built) over {record['probe_steps']} training steps after two warm-up steps, "
            "one thread, each variant in a fresh process, while other jobs shared the 2 cores "
            "(times are noisy; compare them within this table)."
        )
    if not costs:
        probe = (
            "This run probed no costs (`--page` gathers the trained results only): n/a below, "
            "the trainable counts and storage come from the trained variants."
        )
    lines += [
        "## Cost",
        "",
        f"{probe} The units on a frozen backbone (PIP, the "
        "PromptIR-style block) train as the library's Trainer does by default "
        "(`TrainConfig.recompute_units`): each unit runs again in the backward pass instead of "
        "keeping its intermediate tensors (the same gradients); full fine-tuning and the LoRAs "
        "keep everything, as torch and peft do by default.",
        "",
        *cost_table(results, costs, headline + [n for n in tried if n in costs or not costs]),
        "",
        "## Goals (held-out photos, full strength)",
        "",
        *goals(results, costs, sets[0]),
    ]
    if "pip" in strengths and HEADLINE_STRENGTH != "full":  # its goal tables need PIP
        lines += [
            f"- At fitted strength ({STRENGTH_OBJECTIVES[HEADLINE_STRENGTH]}, the headline "
            "above): the goal tables of Output strength, both sets.",
        ]
    if tried:
        lines += ["", "## What was tried", ""]
        for eval_set in sets:
            rows = [n for n in ("pip", "lora_per_degradation") if n in results] + tried
            lines += [f"### {eval_set}", "", *quality_table(results, rows, eval_set), ""]
        lines += [f"- {VARIANTS[n].label}: {VARIANTS[n].note}" for n in tried if VARIANTS[n].note]
    if cuda and record["walls"]:
        lines += ["", *wall_section(record)]
    return "\n".join(lines) + "\n"


def absent_note(record: dict[str, Any]) -> list[str]:
    """What a record compares when it lacks headline variants: those its run named but did not
    reach (the time ran out), those it did not name (``--variants``: run elsewhere or not on
    this pretrained network), and every variant it has with its training seeds. A record
    from before the run kept its names: every headline variant counts as named."""
    results = record["results"]
    named = record.get("variants", list(VARIANTS))
    absent = [n for n, v in VARIANTS.items() if v.group == "headline" and n not in results]
    cut = [VARIANTS[n].label for n in absent if n in named]
    cut += [  # a training seed the run named but did not reach
        VARIANTS[n].label
        for n in record.get("variants", ())
        if n in VARIANTS and VARIANTS[n].group == "seeds" and n not in results
    ]
    skipped = [VARIANTS[n].label for n in absent if n not in named]
    lines = []
    if cut:
        lines += [
            f"Not run yet (the time of this run ran out): {'; '.join(cut)}. Rerunning "
            "the script trains them and adds them here; the finished variants are kept.",
            "",
        ]
    if skipped:
        compared = "; ".join(
            VARIANTS[n].label + (f" ({trained_seeds(n, results)})" if v.build else "")
            for n, v in VARIANTS.items()
            if v.group != "seeds" and n in results
        )
        lines += [
            f"Not run on this pretrained network (this run named other variants): "
            f"{'; '.join(skipped)}. The rows and goals that need them are left out. This "
            f"section compares: {compared}.",
            "",
        ]
    return lines


def wall_section(record: dict[str, Any]) -> list[str]:
    """Each variant's wall time in this run (start to end of its process, beside the others),
    against its training alone: what to plan a run on the same machine with."""
    lines = [
        "## Wall time per variant",
        "",
        f"This run: pretraining {record['pretrain_seconds']:.0f} s; then up to {record['jobs']} "
        "variants at once, each in its own process (start, training, evaluation on both photo "
        "sets, end), in the order the command names them.",
        "",
        "| variant | wall | of which training |",
        "| --- | ---: | ---: |",
    ]
    for name, wall in record["walls"].items():
        train = record["results"].get(name, {}).get("train_seconds", 0.0)
        lines.append(f"| {name} | {wall:.0f} s | {train:.0f} s |")
    return lines


# --- the CPU page: one section per pretrained network -------------------------------------------


def same_network(first: dict[str, Any], second: dict[str, Any]) -> bool:
    """Whether two runs' records start from the same pretrained network: its evaluation (the
    first row of their tables) equal to the last bit."""
    return first["results"]["pretrained"]["reports"] == second["results"]["pretrained"]["reports"]


def add_run(book: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """The CPU page's record ``book`` with a CPU run's ``record`` in it: in place of the run
    from the same pretrained network, else after the others."""
    runs = [record if same_network(run, record) else run for run in book["runs"]]
    return {**book, "runs": runs if record in runs else [*runs, record]}


def as_section(page: str) -> str:
    """A page as a section of another: its title dropped, every heading one level deeper."""
    body = page.split("\n", 1)[1].lstrip("\n") if page.startswith("# ") else page
    return re.sub(r"^(#+) ", r"#\1 ", body, flags=re.M).rstrip("\n")


def shared_units_note(pages: str, rows_where: str) -> str:
    """Which units the "PIP, backbone frozen" rows (on ``pages``) measured, and where the
    recipe's adapter default, each degradation's own feed-forward update, has its rows
    (``rows_where``): the one sentence both pages say it with."""
    return (
        f'The rows "PIP, backbone frozen"{pages} are units with shared feed-forwards '
        "(`degradation_ffn_rank=0`: `inject_pip`'s default, and the adapter default when "
        "they ran); the recipe's adapter default now gives each degradation its own "
        f"rank-{ADAPTER_FFN_RANK} update (`pip_adapter.recipes.ADAPTER_FFN_RANK`): the rows "
        f'"each degradation\'s own feed-forward update (rank {ADAPTER_FFN_RANK})"{rows_where}.'
    )


def default_sections(book: dict[str, Any]) -> str:
    """Where on the CPU page of ``book`` the recipe's adapter default has its rows: the
    headings of the sections whose run has them."""
    headings = [
        f'"{r["date"]}: {r["machine"]}"' for r in book["runs"] if ADAPTER_DEFAULT in r["results"]
    ]
    if not headings:
        return ", in no section of this page yet"
    return f" in the section{'s' * (len(headings) > 1)} " + " and ".join(headings)


def render_cpu_page(book: dict[str, Any]) -> str:
    """The CPU page of ``book`` (``CPU_RECORD``): a section per pretrained network, the
    imported pages first (as published), then every run's page."""
    lines = [
        "# Adapter mode: a pretrained denoiser turned all-in-one",
        "",
        "`python benchmarks/transfer.py --from-record docs/benchmarks/transfer.json` writes this "
        "page from its committed record. Each section is one pretrained starting network: the "
        "benchmark pretrains its noise-only NAFNet on the machine it runs on, and training is "
        "bit-reproducible on one machine and thread count, not across CPUs, so a run on "
        "another CPU starts from a network of its own. Compare rows within a section, not "
        "across sections. A CPU run (`python benchmarks/transfer.py`) adds its section to the "
        "record and to this page, or replaces the section of the same pretrained network (its "
        "evaluation equal to the last bit). "
        + shared_units_note(" here and on the GPU page (transfer_cuda.md)", default_sections(book)),
        "",
    ]
    quick = quick_page().with_suffix(".json")
    if quick.is_file():
        minutes = quick_seconds(json.loads(quick.read_text()))["quiet"] / 60
        lines += [
            "`python benchmarks/transfer.py --quick` retrains the benchmark from nothing at low "
            f"fidelity, in about {minutes:.0f} min on 2 quiet CPU cores, and sets its goal "
            f"verdicts beside this page's: [{quick.with_suffix('.md').name}]"
            f"({quick.with_suffix('.md').name}).",
            "",
        ]
    for entry in book["imported"]:
        lines += [f"## {entry['title']}", "", entry["source"], "", as_section(entry["page"]), ""]
    for record in book["runs"]:
        lines += [f"## {record['date']}: {record['machine']}", ""]
        lines += [as_section(render_page(record)), ""]
    return "\n".join(lines)


def full_reference(record: dict[str, Any], book: dict[str, Any]) -> dict[str, Any] | None:
    """The full run a quick run's verdicts are compared with: the last one with the adapter
    default on the CPU page's record ``book`` from the same machine (none if the quick run or
    every such run lacks the adapter default)."""
    full = [
        r
        for r in book["runs"]
        if r["machine"] == record["machine"] and ADAPTER_DEFAULT in r["results"]
    ]
    return full[-1] if full and ADAPTER_DEFAULT in record["results"] else None


Verdicts = tuple[float | None, bool | None]


def verdict_pairs(
    record: dict[str, Any], reference: dict[str, Any]
) -> Iterator[tuple[str, str, Verdicts, Verdicts]]:
    """Each goal of the adapter default, where it is measured (a photo set, or "any" for those
    that do not depend on the photos), its (value, met) in the quick run and in the full run."""
    sets = list(record["results"]["pretrained"]["reports"])
    for eval_set in sets:
        quick = goal_values(record["results"], record["costs"], eval_set, ADAPTER_DEFAULT)
        theirs = goal_values(reference["results"], reference["costs"], eval_set, ADAPTER_DEFAULT)
        for goal, values in quick.items():
            if eval_set != sets[0] and goal not in DB_GOALS:
                continue  # the trainable share and the costs do not depend on the photos
            yield goal, eval_set if goal in DB_GOALS else "any", values, theirs[goal]


def quick_comparison(record: dict[str, Any], book: dict[str, Any]) -> list[str]:
    """The adapter default's goal verdicts of a quick run beside those of the full run
    (``full_reference``: its full-fidelity section on this machine)."""
    reference = full_reference(record, book)
    if reference is None:
        return [
            f"No comparison: the quick run or a full run on {record['machine']} in "
            "transfer.json lacks the adapter default "
            f"(`--variants {ADAPTER_DEFAULT}`)."
        ]

    def cell(goal: str, value: float | None, met: bool | None) -> str:
        if value is None:
            return "not measured"
        number = f"{value:+.2f}" if goal in DB_GOALS else f"{value:.3g}"
        return f"{number}: {verdict(bool(met))}"

    lines = [
        f"The recipe's adapter default ({VARIANTS[ADAPTER_DEFAULT].label}), training seed 0, "
        f"full strength, against the full run on this machine (transfer.md, section "
        f'"{reference["date"]}: {reference["machine"]}"). "Same verdict" counts only the '
        "goals this check can resolve; the others are marked and say why.",
        "",
        "| goal | photos | this quick run | the full run | same verdict |",
        "| --- | --- | ---: | ---: | --- |",
    ]
    flipped = []
    for goal, where, (value, met), other in verdict_pairs(record, reference):
        if goal in QUICK_UNRESOLVED:
            same = "not counted: " + QUICK_UNRESOLVED[goal]
            if goal == STEP_GOAL and record["patch_size"] != reference["patch_size"]:
                same += (
                    f"; the time of a step at {record['patch_size']}² is not the time at "
                    f"{reference['patch_size']}²"
                )
        elif met is None or other[1] is None:
            same = "not measured"
        else:
            same = "yes" if met == other[1] else "**no**"
        cells = [goal, where, cell(goal, value, met), cell(goal, *other), same]
        lines.append("| " + " | ".join(cells) + " |")
        if same == "**no**":
            flipped.append(f"{goal} ({where})")
    if flipped:
        lines += [
            "",
            f"Verdicts that differ: {'; '.join(flipped)}. For these goals this check does not "
            "stand in for the full run: its verdict is the full run's (transfer.md).",
        ]
    else:
        lines += ["", "Every goal this check counts has the full run's verdict."]
    return lines


def quick_seconds(record: dict[str, Any]) -> dict[str, float]:
    """A quick run's CPU seconds (load-independent: user + system of each process) by part,
    and ``quiet``: the wall seconds it would take on 2 quiet cores, each process taking its CPU
    time: the pretraining, then the variants list-scheduled over ``--jobs`` processes (at
    most 2) in the run's order, then the cost probes one after another, plus the parent
    process's own. Only what this run did itself counts (the rest was cached), but for a
    pretrained network an earlier run trained with the same settings: it counts with the CPU
    time it took then, as a fresh run would spend it."""
    here, results, costs = record["trained_here"], record["results"], record["costs"]
    parts = {"pretraining": record["pretrain_cpu_seconds"] or 0.0}
    workers = [0.0] * min(2, record["jobs"])
    finished = [n for n in here["variants"] if n in results]  # not those a deadline stopped
    for name in finished:
        workers[workers.index(min(workers))] += results[name]["cpu_seconds"]
    parts["variants"] = sum(results[n]["cpu_seconds"] for n in finished)
    parts["probes"] = sum(costs[n]["cpu_seconds"] for n in here["probes"] if n in costs)
    own = parts["variants"] + parts["probes"] + parts["pretraining"] * here["pretraining"]
    parts["parent"] = record["cpu_seconds"] - own
    quiet = parts["pretraining"] + max(workers) + parts["probes"] + parts["parent"]
    total = record["cpu_seconds"] + parts["pretraining"] * (not here["pretraining"])
    return {**parts, "quiet": quiet, "total": total}


def quick_time(record: dict[str, Any]) -> list[str]:
    """What the quick run took: its CPU time by part and its wall time, and the wall time it
    would take on 2 quiet cores (``quick_seconds``)."""
    here, seconds = record["trained_here"], quick_seconds(record)
    trained = [n for n in here["variants"] if n in record["results"]]
    every = set(trained) >= set(record["variants"])
    what = "fresh: it pretrained and trained every variant itself"
    if every and not here["pretraining"] and record["pretrain_cpu_seconds"] is not None:
        when = record.get("pretrain_date")  # not in records written before it was
        what = (
            "fresh but for its pretrained network, which an earlier run trained with the same "
            f"settings{f' on {when}' if when else ''} (counted below with the CPU time it took "
            "then, on a machine whose load this page does not know): it trained every variant "
            "itself"
        )
    elif every and not here["pretraining"]:
        what = (
            "NOT fresh: its pretrained network was cached, its CPU time not known (counted as "
            "0 below); it trained every variant itself"
        )
    elif not every:
        what = "NOT fresh: it reused cached results or did not finish (pretraining "
        what += "run here" if here["pretraining"] else "cached"
        what += f", trained here: {', '.join(trained) or 'none'}"
        stopped = [n for n in here["variants"] if n not in trained]
        what += f"; stopped before its end: {', '.join(stopped)})" if stopped else ")"
    parts = ", ".join(
        f"{part} {seconds[part] / 60:.0f}"
        for part in ("pretraining", "variants", "probes", "parent")
    )
    return [
        f"This run was {what}. CPU time of all its processes (user + system, "
        f"load-independent): **{seconds['total'] / 60:.0f} thread-minutes** ({parts}: "
        "the pretraining, the variants' trainings and evaluations, the cost probes, the parent "
        f"process); wall time {record['wall_seconds'] / 60:.0f} min on a machine shared with "
        f"other jobs. On 2 quiet cores with `--jobs {min(2, record['jobs'])}` (one process per "
        "core, each taking its CPU time: the pretraining, then the variants list-scheduled over "
        "the processes in the run's order, then the probes, plus the parent) it takes about "
        f"**{seconds['quiet'] / 60:.0f} min**.",
    ]


def quick_page() -> Path:
    """The quick check's page, beside the CPU page (its record beside it as ``.json``)."""
    return PAGE_ON["cpu"].with_stem(f"{PAGE_ON['cpu'].stem}_quick")


def pretrain_patch(record: dict[str, Any]) -> int:
    """The patch size a run pretrained on: a record from before ``pretrain_patch`` was
    recorded pretrained on its fine-tuning patches."""
    return record.get("pretrain_patch", record["patch_size"])


def tried_path() -> Path:
    """The committed summaries of the quick settings tried and not adopted (``tried_summary``),
    beside the quick page's record."""
    return quick_page().with_name(f"{quick_page().stem}_tried.json")


def input_gain(report: dict[str, Any], degradation: str = "blur") -> float:
    """A degradation's PSNR over its degraded input's, in dB."""
    return report[degradation]["psnr"] - report[degradation]["input_psnr"]


# whose blur a tried setting's summary keeps: the network fine-tuning starts from, and the result
BLUR_OF = ("pretrained", ADAPTER_DEFAULT)


def tried_summary(record: dict[str, Any], book: dict[str, Any], label: str) -> dict[str, Any]:
    """What the quick page says of a quick setting tried and not adopted, from its run's
    ``record``: its settings, its time (``quick_seconds``, in minutes), blur's gain over its
    input from the pretrained network and from the adapter default on each photo set, and the
    goals whose verdict differed from the full run's (``full_reference``). A ValueError if
    there is no full run to compare with."""
    reference = full_reference(record, book)
    if reference is None:
        raise ValueError(
            f"no full run on {record['machine']} with the adapter default in transfer.json to "
            f"compare the quick run {label!r} with"
        )
    seconds, results = quick_seconds(record), record["results"]
    differ = [
        f"{goal} ({where})"
        for goal, where, (_, met), (_, theirs) in verdict_pairs(record, reference)
        if met is not None and theirs is not None and met != theirs
    ]
    return {
        "label": label,
        "command": record["command"],
        "date": record["date"],
        **{key: record[key] for key in ("pretrain_steps", "steps", "patch_size")},
        "pretrain_patch": pretrain_patch(record),
        "pretraining_reused": not record["trained_here"]["pretraining"],
        "minutes": {part: seconds[part] / 60 for part in ("total", "pretraining", "quiet")},
        "blur": {
            eval_set: {name: input_gain(results[name]["reports"][eval_set]) for name in BLUR_OF}
            for eval_set in results["pretrained"]["reports"]
        },
        "differ": differ,
    }


def gains(pairs: list[float]) -> str:
    """Gains in dB, one per photo set, as the page writes them ("+0.104 / +0.081")."""
    return " / ".join(f"{gain:+.3f}" for gain in pairs)


def tried_lines(book: dict[str, Any], record: dict[str, Any]) -> list[str]:
    """The quick settings tried and not adopted (``tried_path``), each rendered from its run's
    summary, after the full run's blur for comparison; then why the quick check does not count
    "no degradation below its input": the full run's margin over its training seeds against
    how far the same fine-tuning moved held-out blur between pretrained networks."""
    path = tried_path()
    tried = json.loads(path.read_text()) if path.is_file() else []
    reference = full_reference(record, book)
    if not tried:
        return ["None recorded."]
    if reference is None:
        return [f"Not listed: {path.name}'s runs compare with a full run that transfer.json lacks."]
    results = reference["results"]
    sets = list(results["pretrained"]["reports"])
    full = [[input_gain(results[n]["reports"][s]) for s in sets] for n in BLUR_OF]
    lines = [
        "Each run trained every variant itself, under a rule fixed before it ran: adopted only "
        "if every counted verdict matched the full run's within about 40 minutes on 2 quiet "
        f"cores. None was. Each line is rendered from its run's kept record (`{path.name}`, "
        "written by `--tried-record`). Blur's gain over its input, "
        f"{' / '.join(s.replace(' photos', '') for s in sets)}: in the full run "
        f"({reference['pretrain_steps']} pretraining steps on {pretrain_patch(reference)}², "
        f"{reference['steps']} fine-tuning steps on {reference['patch_size']}², training seed 0) "
        f"{gains(full[0])} dB from its pretrained network, {gains(full[1])} dB after "
        "fine-tuning.",
        "",
    ]
    for entry in tried:
        start, end = ([entry["blur"][s][n] for s in sets] for n in BLUR_OF)
        reused = ", an earlier run's network, reused" if entry["pretraining_reused"] else ""
        minutes = entry["minutes"]
        lines.append(
            f"- {entry['pretrain_steps']} pretraining steps on {entry['pretrain_patch']}² "
            f"patches{reused}, then {entry['steps']} fine-tuning steps on "
            f"{entry['patch_size']}² ({entry['label']}, {entry['date']}; "
            f"{minutes['total']:.0f} thread-minutes with the pretraining's "
            f"{minutes['pretraining']:.0f}, about {minutes['quiet']:.0f} min on 2 quiet cores): "
            f"blur {gains(start)} dB from its pretrained network, {gains(end)} dB after "
            f"fine-tuning (lifted {gains([b - a for a, b in zip(start, end, strict=True)])}). "
            f"Verdicts unlike the full run's: {'; '.join(entry['differ']) or 'none'}."
        )
    return [*lines, "", *blur_margin_lines(reference, record, tried, sets)]


def blur_margin_lines(
    reference: dict[str, Any], record: dict[str, Any], tried: list[dict[str, Any]], sets: list[str]
) -> list[str]:
    """Why the quick check leaves "no degradation below its input" to the full run, in numbers:
    where held-out blur ends in this page's run and in each tried run, against the full run's
    closest degradation over its training seeds; and, for tried runs with the same fine-tuning
    from different pretrained networks, how far apart their held-out lifts and end points are
    (the pair furthest apart)."""
    results = reference["results"]
    runs = seed_runs(ADAPTER_DEFAULT, results).values()  # full_reference: seed 0 at least
    margins = [
        [min(input_gain(results[run]["reports"][s], t) for t in TASKS) for run in runs]
        for s in sets
    ]
    ranges = " and ".join(
        f"{min(m):+.3f} to {max(m):+.3f} dB on the {s}" for s, m in zip(sets, margins, strict=True)
    )
    held = [entry["blur"][sets[0]] for entry in tried]
    ends = [input_gain(record["results"][ADAPTER_DEFAULT]["reports"][sets[0]])]
    ends += [blur[ADAPTER_DEFAULT] for blur in held]
    lines = [
        f'So this check does not count "{DB_GOALS[4]}". Held out, blur ends '
        f"{', '.join(f'{end:+.3f}' for end in ends)} dB against its input in this page's run "
        "and in the tried ones, in that order; over the full run's "
        f"{len(margins[0])} training seeds the adapter default's closest degradation ends "
        f"{ranges} against its input."
    ]
    pairs = [
        (first, second)
        for first, second in itertools.combinations(range(len(tried)), 2)
        if all(tried[first][k] == tried[second][k] for k in ("steps", "patch_size"))
        and tried[first]["pretrain_steps"] != tried[second]["pretrain_steps"]
    ]
    if pairs:

        def lift(index: int) -> float:
            return held[index][ADAPTER_DEFAULT] - held[index]["pretrained"]

        first, second = max(pairs, key=lambda pair: abs(lift(pair[0]) - lift(pair[1])))
        apart = abs(held[first][ADAPTER_DEFAULT] - held[second][ADAPTER_DEFAULT])
        entry = tried[first]
        lines[0] += (
            f" From two pretrained networks ({entry['label']}, {tried[second]['label']}) the "
            f"same {entry['steps']} fine-tuning steps on {entry['patch_size']}² patches lifted "
            f"held-out blur by {lift(first):+.3f} and {lift(second):+.3f} dB, "
            f"{abs(lift(first) - lift(second)):.3f} dB apart (their end points {apart:.3f} dB "
            "apart)."
        )
    lines[0] += " Its verdict is the full run's (transfer.md)."
    return lines


def render_quick_page(record: dict[str, Any]) -> str:
    """The page of a ``--quick`` run: what it is for, its time, its goal verdicts beside the
    full run's, then its tables as the full page shows them."""
    book = json.loads(CPU_RECORD.read_text())
    lines = [
        "# Adapter mode, quick check: the benchmark retrained from nothing (low fidelity)",
        "",
        f"`python benchmarks/transfer.py --quick` ({record['pretrain_steps']} pretraining steps "
        f"on {pretrain_patch(record)}² patches and {record['steps']} fine-tuning steps on "
        f"{record['patch_size']}²; the full run: {FULL['pretrain_steps']} on "
        f"{FULL['pretrain_patch']}² and {FULL['steps']} on {FULL['patch_size']}²; the same "
        "evaluation photos, crops and degradations), in its own runs folder (runs/"
        "transfer_quick) and on this page. It checks that a user can retrain the benchmark "
        "from nothing on 2 CPU cores and reach the full run's verdicts on the goals it counts; "
        'the goals it cannot resolve are marked "not counted" below, with why, and their '
        "verdicts are the full run's. Its numbers are "
        "lower-fidelity than the full run's: **the headline numbers are "
        "[transfer.md](transfer.md)'s**; quote this page for the verdicts it resolves only.",
        "",
        "## Time",
        "",
        *quick_time(record),
        "",
        "## Goals beside the full run",
        "",
        *quick_comparison(record, book),
        "",
        "## Other quick settings tried",
        "",
        *tried_lines(book, record),
        "",
        as_section(render_page(record)),
    ]
    return "\n".join(lines) + "\n"


def publish(record: dict[str, Any]) -> str:
    """Write the page of a run's ``record`` and return it: a GPU run's page is its own; a CPU
    run goes into the CPU page's record (``CPU_RECORD``) beside the runs of other pretrained
    networks, and the CPU page is written from that. Both are rendered before either file is
    written: a record that fails to render changes neither."""
    if record.get("quick"):  # its own page and record, beside the full run's
        page = render_quick_page(record)
        quick_page().with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
        quick_page().write_text(page)
        return page
    if record["device"] != "cpu":
        page = render_page(record)
    else:
        book = add_run(json.loads(CPU_RECORD.read_text()), record)
        page = render_cpu_page(book)
        CPU_RECORD.write_text(json.dumps(book, indent=1) + "\n")
    PAGE_ON[record["device"]].write_text(page)
    return page


def keep_tried(parser: argparse.ArgumentParser, path: Path, label: str | None) -> None:
    """``--tried-record``: the summary of a quick run's ``record.json`` replaces the tried
    entry of the same label, or is added after the others, and the quick page is written again
    from its own record. A wrong record or label is refused before anything is written."""
    if not label:
        parser.error("--tried-record needs --tried-label (how the quick page names the run)")
    page_record = quick_page().with_suffix(".json")
    for file in (path, page_record):
        if not file.is_file():
            parser.error(f"--tried-record: no file {file}")
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        parser.error(f"--tried-record: {path} is not JSON ({error})")
    if not isinstance(record, dict) or not record.get("quick"):
        parser.error(f"--tried-record takes a quick run's record.json; {path} is not one")
    try:
        summary = tried_summary(record, json.loads(CPU_RECORD.read_text()), label)
    except ValueError as error:
        parser.error(str(error))
    file = tried_path()
    tried = json.loads(file.read_text()) if file.is_file() else []
    labels = [entry["label"] for entry in tried]
    if label in labels:
        tried[labels.index(label)] = summary
    else:
        tried.append(summary)
    quick = json.loads(page_record.read_text())
    file.write_text(json.dumps(tried, indent=1) + "\n")
    print(publish(quick))


# --- command line -------------------------------------------------------------------------------


def finished(args: argparse.Namespace, name: str, file: str) -> dict[str, Any] | None:
    """What variant ``name`` keeps in ``file`` under the current settings, if anything (the
    settings, which build the variant, only for a file that is there)."""
    path = args.runs / name / file
    return cached(path, settings(args, name)) if path.is_file() else None


def write_result(name: str, args: argparse.Namespace, probe: bool = False) -> None:
    """Train and evaluate variant ``name`` (or probe its cost) and keep what it gives, with
    the settings it was made under, in its folder of the runs."""
    key = settings(args, name)
    if probe:
        path, results = args.runs / name / "cost.json", probe_cost(name, args)
    else:
        path, results = args.runs / name / "result.json", run_variant(name, args)
        keep_previous(path, key)
    results["cpu_seconds"] = time.process_time()  # this process's, start to end (its threads)
    path.write_text(json.dumps({"settings": key, "results": results}, indent=2))


def machine_line(args: argparse.Namespace) -> str:
    """The page's description of where the run ran."""
    if args.device == "cpu":
        return f"{describe_machine(args.threads)} per process"
    peft = importlib.util.find_spec("peft")
    version = importlib.metadata.version("peft") if peft else "not installed"
    return (
        f"{torch.cuda.get_device_name(args.device)}, torch {torch.__version__}, peft {version}, "
        f"{os.cpu_count()} CPU cores ({args.threads} thread(s) per process)"
    )


def run_record(
    args: argparse.Namespace,
    command: str,
    names: list[str],
    walls: dict[str, float],
    trained_here: dict[str, Any],
) -> dict[str, Any]:
    """What the page is written from, gathered from the runs folder: the variants this run
    named, every finished variant's results and costs under the current settings, its output
    strengths (CPU only), and this run's wall times; kept as ``record.json`` so that
    ``--from-record`` rewrites the page."""
    results, costs = (
        {n: kept for n in VARIANTS if (kept := finished(args, n, file)) is not None}
        for file in ("result.json", "cost.json")
    )
    headline = [n for n, v in VARIANTS.items() if v.group == "headline"]
    runs = [run for name in headline for run in seed_runs(name, results).values()]
    # a quick run measures at full strength only: the strength the issue's goals are stated at
    fits = args.device == "cpu" and not args.quick
    strengths = {run: strength_results(run, args) for run in runs if fits}
    strengths = {run: s for run, s in strengths.items() if s is not None}
    moved = {}
    for run, measured in strengths.items():  # the tables show what the kept weights give
        earlier = earlier_run(run, args, results[run], measured["full"])
        if earlier is not None:
            moved[run] = earlier
        results[run] = {**results[run], "reports": measured["full"]}
    pretrain = args.runs / "pretrained" / "time.json"
    options = ("steps", "batch_size", "patch_size", "probe_steps", "pretrain_steps", "jobs")
    options += ("pretrain_patch",)
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    timing = json.loads(pretrain.read_text()) if pretrain.is_file() else {}
    return {
        "command": command,
        "date": date.today().isoformat(),
        "device": args.device,
        "machine": machine_line(args),
        **{key: getattr(args, key) for key in options},
        "pretrain_seconds": timing.get("train_seconds", 0.0),
        "variants": names,
        "walls": walls,
        **({"quick": True} if args.quick else {}),
        "pretrain_cpu_seconds": timing.get("cpu_seconds"),
        # the day that CPU time was measured (a kept network's: the run that trained it)
        "pretrain_date": (
            date.fromtimestamp(pretrain.stat().st_mtime).isoformat() if pretrain.is_file() else None
        ),
        # this invocation's CPU time (its processes' user + system: load-independent) and wall
        # time, start to record; with what it trained and probed itself (the rest was cached)
        "cpu_seconds": sum(u.ru_utime + u.ru_stime for u in usage),
        "wall_seconds": time.monotonic() - args.started,
        "trained_here": trained_here,
        "probes_collect_garbage": True,  # see render_page
        "results": results,
        "costs": costs,
        "strengths": strengths,
        "moved": moved,
    }


def fidelity(args: argparse.Namespace) -> None:
    """Fill in what ``--quick`` changes, where the command did not set it: the fine-tuning and
    pretraining steps, the patch sizes (the fine-tuning's and the pretraining's:
    ``pretrain_patch``) and the runs folder (its own, so that a quick run never mixes with the
    full run's results)."""
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key, None) is None:  # pretrain_patch has no option
            setattr(args, key, value)
    if args.runs is None:
        args.runs = QUICK_RUNS if args.quick else RUNS_ON[args.device]
    if args.variants is None:
        args.variants = ",".join(QUICK_VARIANTS) if args.quick else "headline"


def main() -> None:
    started, clock = time.monotonic(), time.time()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, help="an official checkpoint to start from")
    parser.add_argument(
        "--native", default="noise", help="degradations the checkpoint restores (noise)"
    )
    parser.add_argument(
        "--device",
        choices=sorted(RUNS_ON),
        default="cpu",
        help="where the pretraining and every variant train and are evaluated (cpu)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the low-fidelity fresh check: {steps} fine-tuning steps on {patch_size}² patches, "
        "{pretrain_steps} pretraining steps on {pretrain_patch}² (the same evaluation), in its "
        "own runs folder and on its own page".format(**QUICK),
    )
    parser.add_argument(
        "--steps", type=int, help=f"fine-tuning steps ({FULL['steps']}; --quick {QUICK['steps']})"
    )
    parser.add_argument(
        "--pretrain-steps",
        type=int,
        help=f"pretraining steps ({FULL['pretrain_steps']}; --quick {QUICK['pretrain_steps']})",
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--patch-size",
        type=int,
        help=f"training patches ({FULL['patch_size']}²; --quick {QUICK['patch_size']}²)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process (1)")
    parser.add_argument("--jobs", type=int, default=2, help="variants trained at once (2)")
    parser.add_argument("--probe-steps", type=int, default=8)
    parser.add_argument(
        "--variants",
        help="'headline' (the default), 'all' or comma-separated names (trained in that order); "
        "--quick: the adapter default and the baselines its goals compare with ({})".format(
            ",".join(QUICK_VARIANTS)
        ),
    )
    parser.add_argument("--runs", type=Path, help="the runs folder (runs/transfer[_cuda])")
    parser.add_argument(
        "--deadline",
        type=float,
        help=f"seconds from the start to end by (more than {PROBE_RESERVE:.0f}): no variant "
        "is started that would not end in time, the last "
        f"{PROBE_RESERVE:.0f} s go to the cost probes and the page",
    )
    parser.add_argument("--fresh", action="store_true", help="retrain finished variants")
    parser.add_argument("--costs", action="store_true", help="measure the costs only")
    parser.add_argument(
        "--page", action="store_true", help="write the page from the finished variants only"
    )
    parser.add_argument(
        "--from-record", type=Path, help="write the page from a run's record.json, no training"
    )
    parser.add_argument(
        "--tried-record",
        type=Path,
        help="keep the summary of a quick setting tried and not adopted, from its run's "
        "record.json, in the quick page's tried list (with --tried-label), and write the quick "
        "page again from its record; no training",
    )
    parser.add_argument(
        "--tried-label", help="how the quick page names that run (e.g. its session)"
    )
    parser.add_argument("--train", help=argparse.SUPPRESS)
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tried_record is not None:
        keep_tried(parser, args.tried_record, args.tried_label)
        return
    if args.from_record is not None:
        record = json.loads(args.from_record.read_text())
        if "runs" in record:  # the CPU page's record
            PAGE_ON["cpu"].write_text(page := render_cpu_page(record))
            print(page)
        else:
            print(publish(record))
        return
    if args.quick and args.device != "cpu":
        parser.error("--quick is the 2-core CPU check: drop --device cuda or --quick")
    if args.deadline is not None and args.deadline <= PROBE_RESERVE:
        parser.error(f"--deadline must be more than {PROBE_RESERVE:.0f} s, got {args.deadline:g}")
    try:
        prepare_device(resolve_device(args.device, "--device"))
    except ValueError as error:  # before anything is written
        parser.error(str(error))
    args.native = tuple(n for n in args.native.split(",") if n)
    fidelity(args)
    args.end_at = None if args.deadline is None else started + args.deadline
    args.started = started
    args.passthrough = [a for a in sys.argv[1:] if a not in ("--fresh", "--costs", "--page")]
    args.settings = {}
    torch.set_num_threads(args.threads)
    if args.checkpoint is None:
        args.checkpoint = pretrained_checkpoint(
            args.runs, args.device, args.pretrain_steps, args.pretrain_patch
        )
        print(f"pretrained checkpoint ready at {time.monotonic() - started:.0f} s", flush=True)
    if args.train or args.probe:
        write_result(args.train or args.probe, args, probe=bool(args.probe))
        return
    if args.variants in ("headline", "all"):
        names = [n for n, v in VARIANTS.items() if args.variants == "all" or v.group == "headline"]
    else:
        names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = sorted(set(names) - VARIANTS.keys())
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    names = ["pretrained", *[n for n in names if n != "pretrained"]]

    def missing(file: str) -> list[str]:
        return [n for n in names if finished(args, n, file) is None]

    trained = [n for n in names if VARIANTS[n].build is not None]
    to_train = [] if args.costs or args.page else names if args.fresh else missing("result.json")
    to_probe = [] if args.page else trained if args.costs else missing("cost.json")
    walls: dict[str, float] = {}
    if args.jobs == 1 and args.end_at is None:  # each trained, then probed: a cut run keeps both
        probes = [n for n in to_probe if n in trained]
        for name in names:
            if name in to_train:
                child(args, "--train", name)
            if name in probes:
                child(args, "--probe", name)
    else:
        walls = train_all(args, to_train)
        done = set(names) - set(missing("result.json"))  # a probe of any other is not shown
        probes = [n for n in to_probe if n in trained and (args.costs or n in done)]
        probes = [n for n in probes if VARIANTS[n].group != "seeds"]
        probe_all(args, probes, started)
    if args.costs:
        return
    command = " ".join(["python", "benchmarks/transfer.py", *sys.argv[1:]])
    time_file = args.runs / "pretrained" / "time.json"
    pretrained = time_file.is_file() and time_file.stat().st_mtime >= clock
    here = {"pretraining": pretrained, "variants": to_train, "probes": probes}
    record = run_record(args, command, names, walls, here)
    (args.runs / "record.json").write_text(json.dumps(record, indent=1))
    if "pretrained" not in record["results"]:
        sys.exit("no page: the pretrained network's evaluation did not finish")
    print(publish(record))


if __name__ == "__main__":
    main()
