"""Blur's output strength per image, from how blurred its input looks (``PIPConfig.
blur_strength``, issue 19): the quality benchmark's PIP network never deblurs past its input,
and its blur output is a near-identity that damages some photos and helps others. The line
``clip(a0 + a1 · e(x), 0, 1)``, ``e`` the input's blur effect, is fitted after training on blur
draws of the validation photos (``output_strength.strength_photos()``), beside one constant
blur strength (``output_strength``) fitted on the same images, and judged on the validation
photos' own draws by a rule fixed before its numbers (notes/issue-19.md, session 18). Every
other degradation keeps full strength; blind, the sensor's blur weight carries the strength."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from machine import at_least, verdict
from output_strength import strength_photos

from pip_adapter.conditioning import CLEAN
from pip_adapter.config import BLUR
from pip_adapter.data import PairedImages, build_eval_set
from pip_adapter.evaluation import average_report, evaluate
from pip_adapter.injection import PIPModel
from pip_adapter.training import fit_blur_strength, fit_output_strength

FIT_DRAWS = (1, 2, 3, 4)  # the blur draws of the validation photos the strengths are fitted on
# the strengths compared: full (the network's own output), one fitted constant, the fitted line
STRENGTHS = ("full", "constant", "per_image")
LABELS = {
    "full": "full (the network's output)",
    "constant": "one blur strength",
    "per_image": "per image, from the input's blur effect",
}
# the rule (notes/issue-19.md, session 18), on the validation photos' seed-0 draws: blur's
# output − input with labels gains this much over full strength and the constant's margin over
# it, blind blur does not fall, the blind average and clean images through blind mode lose at
# most the last
GAIN_OVER_FULL_DB = 0.05
GAIN_OVER_CONSTANT_DB = 0.02
KEEP_DB = 0.10


@torch.no_grad()
def fit(model: PIPModel, degradations: Sequence[str]) -> dict[str, tuple[float, float]]:
    """The strength lines ``(a0, a1)`` fitted on the validation photos' blur draws
    ``FIT_DRAWS`` (restored with the label, at full strength): ``"constant"`` (``a1 = 0``,
    ``fit_output_strength``) and ``"per_image"`` (``fit_blur_strength``); ``"full"`` is the
    network's own output."""
    inputs, outputs, targets = [], [], []
    model.eval()
    for seed in FIT_DRAWS:
        pairs = build_eval_set(strength_photos(), degradations, seed=seed).select([BLUR])
        for x, y in zip(pairs.degraded, pairs.clean, strict=True):
            inputs.append(x[None])
            outputs.append(model(x[None], degradation=BLUR))
            targets.append(y[None])
    constant = fit_output_strength(inputs, outputs, targets)
    return {
        "full": (1.0, 0.0),
        "constant": (constant, 0.0),
        "per_image": fit_blur_strength(inputs, outputs, targets),
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
    full, constant, ours = (reports[name] for name in STRENGTHS)
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


def rule_lines(measured: dict, split: str) -> list[str]:
    """The rule's verdict on set ``split`` (the validation photos)."""
    conditions = checks(measured["reports"][split])
    text = "; ".join(f"{what}: {verdict(ok)}" for what, ok in conditions)
    adopted = all(ok for _, ok in conditions)
    return [
        f"- The rule: {text}.",
        "- Adopted: yes (PIP's rows at the top of the page use it)."
        if adopted
        else "- Adopted: no (PIP's rows at the top of the page stay at full strength).",
    ]


def adopted(measured: dict, split: str) -> bool:
    """Whether the rule adopts the line per image on set ``split`` (the validation photos)."""
    return all(ok for _, ok in checks(measured["reports"][split]))


def with_blur(report: dict, blur: dict) -> dict:
    """A labelled ``report`` with its blur entry from ``blur`` (a report of blur's pairs alone)
    and the average over the degradations again: blur's strength changes nothing else when
    the label says which degradation an image has."""
    changed = {**report, BLUR: blur[BLUR]}
    return {**changed, "average": average_report(changed, report["average"])}
