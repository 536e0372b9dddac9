"""Haze's output strength, and the gap between blind mode and the labels on hazy photos
(issue 19).

Blind mode's haze is ~2 dB below the labels' on the bundled held-out photos and ~2 dB above
them out of domain. This page splits that gap per photo into what the sensor's steering makes
(the backbone steered by the sensor's weights rather than the label) and what its blend makes
(blind mode keeps ``Σ w_i · a_i`` of the network's output, ``PIPModel.output_amount``: a hazy
photo's clean weight hands part of the input back). Then one haze output strength
(``PIPConfig.output_strength={"haze": a}``), fitted by least squares on the validation photos'
haze draws ``FIT_DRAWS`` restored with the label (``fit_output_strength``), is judged on the
validation photos' own draws (seed 0) by the rule fixed before its numbers (notes/issue-19.md,
session 21); the held-out sets choose nothing.

Run:  python benchmarks/haze_strength.py [--runs runs/quality] [--threads 1]
It measures the bundle ``benchmarks/blur_strength.py`` keeps at its adopted blur line
(``runs/quality/pip/adopted``) and writes docs/benchmarks/haze_strength.md; the measurements are
kept in ``runs/quality/pip/haze_strength/`` (one file a part: a stopped run resumes) while the
bundle, the photos and the code are the same."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from blur_strength import FIT_DRAWS, arguments
from digests import code_digest, files_digest
from machine import at_least, page_head, verdict
from output_strength import VALIDATION_SEED, cached, sets_digest, strength_photos
from sensor_tuning import VALIDATION_NAMES

from pip_adapter.bundle import load_bundle
from pip_adapter.conditioning import CLEAN
from pip_adapter.data import PairedImages, build_eval_set
from pip_adapter.evaluation import average_report
from pip_adapter.files import write_text
from pip_adapter.injection import PIPModel
from pip_adapter.injection.model import blend_output
from pip_adapter.metrics import psnr
from pip_adapter.training import fit_output_strength

HAZE = "haze"
VALIDATION = "validation"
STRENGTHS = ("full", "fitted")  # haze at full strength (the bundle's), and the fitted one
GRID = 20  # the best one strength of each set: searched on a grid of this step over [0, 1]
# the rule (notes/issue-19.md, session 21), on the validation photos' seed-0 draws against full
# strength: haze with labels gains the first, blind haze does not fall, |blind − labels| on haze
# shrinks by the first, the blind average and clean images through blind mode lose at most the
# second and third
GAIN_DB = 0.10
AVERAGE_KEEP_DB = 0.05
CLEAN_KEEP_DB = 0.10
# the sets' names on the pages
SET_TITLES = {
    VALIDATION: "validation (seed-0 draws)",
    "test": "bundled held-out",
    "ood": "out-of-domain held-out",
}


def blended_psnr(x: torch.Tensor, f: torch.Tensor, y: torch.Tensor, amount: float) -> float:
    """The PSNR of ``x + amount · (f − x)`` (the library's ``blend_output``) clamped to
    [0, 1], as ``evaluate`` measures."""
    return psnr(blend_output(x, f, amount).float().clamp(0, 1), y).item()


@torch.no_grad()
def fit_haze(model: PIPModel, degradations: Sequence[str]) -> float:
    """The haze strength of least squared error on the validation photos' haze draws
    ``FIT_DRAWS``, restored with the label at full strength."""
    inputs, outputs, targets = [], [], []
    for seed in FIT_DRAWS:
        pairs = build_eval_set(strength_photos(), degradations, seed=seed).select([HAZE])
        for x, y in zip(pairs.degraded, pairs.clean, strict=True):
            weights = model.degradation_weights(x[None], HAZE)
            inputs.append(x[None])
            outputs.append(model.full_output(x[None], weights))
            targets.append(y[None])
    return fit_output_strength(inputs, outputs, targets)


def with_haze(model: PIPModel, strength: float) -> PIPModel:
    """``model`` with haze's output strength set (its other strengths and blur's line kept)."""
    others = {d: a for d, a in model.config.output_strength if d != HAZE}
    model.config = model.config.replace(output_strength={**others, HAZE: strength})
    return model


@torch.no_grad()
def measure_set(model: PIPModel, pairs: PairedImages, strengths: Mapping[str, float]) -> dict:
    """On every pair: PSNR with labels and blind (the model's sensor) at each haze strength of
    ``strengths`` (a re-blend of the same full outputs, ``output_amount``), and for the hazy
    photos at the first strength the split of blind − labels and the labelled output's PSNR
    at strengths ``0, 1/GRID, …, 1``."""
    scores: dict = {name: defaultdict(lambda: defaultdict(list)) for name in strengths}
    hazy = []
    for x, y, name, label in zip(
        pairs.degraded, pairs.clean, pairs.names, pairs.labels, strict=True
    ):
        x, y = x[None], y[None]
        blind_weights = model.degradation_weights(x, None)
        label_weights = model.degradation_weights(x, label)
        blind = model.full_output(x, blind_weights)
        labelled = model.full_output(x, label_weights) if label != CLEAN else x
        amounts = {}  # blind mode's amount at each haze strength
        for strength_name, strength in strengths.items():
            with_haze(model, strength)
            amount = amounts[strength_name] = model.output_amount(x, blind_weights).item()
            entry = scores[strength_name]
            entry["blind"][label].append(blended_psnr(x, blind, y, amount))
            if label != CLEAN:
                label_amount = model.output_amount(x, label_weights).item()
                entry["labels"][label].append(blended_psnr(x, labelled, y, label_amount))
                entry["input"][label].append(psnr(x.float(), y).item())
        if label == HAZE:
            amount = amounts[next(iter(strengths))]
            w = blind_weights[0]
            haze, clean = model.degradations.index(HAZE), model.degradations.index(CLEAN)
            labels_psnr = blended_psnr(x, labelled, y, 1.0)
            at_amount = blended_psnr(x, labelled, y, amount)  # the label's output, blind's amount
            blind_psnr = blended_psnr(x, blind, y, amount)
            hazy.append(
                {
                    "photo": name.split("/")[0],
                    "input": psnr(x.float(), y).item(),
                    "labels": labels_psnr,
                    "blind": blind_psnr,
                    "steering": blind_psnr - at_amount,
                    "amount_part": at_amount - labels_psnr,
                    "weights": [
                        w[haze].item(),
                        w[clean].item(),
                        1 - w[haze].item() - w[clean].item(),
                    ],
                    "top": model.degradations[int(w.argmax())],
                    "amount": amount,
                    "curve": [blended_psnr(x, labelled, y, k / GRID) for k in range(GRID + 1)],
                }
            )
    reports = {}
    for strength_name, modes in scores.items():
        reports[strength_name] = {}
        for mode, by_degradation in modes.items():
            report = {d: {"psnr": sum(v) / len(v)} for d, v in by_degradation.items()}
            report["average"] = average_report(report, ["psnr"])
            reports[strength_name][mode] = report
    return {"reports": reports, "hazy": hazy}


def measure(model: PIPModel, sets: Mapping[str, PairedImages], folder: Path, key: dict) -> dict:
    """The fitted haze strength and each set's ``measure_set`` at full and fitted strength,
    each part kept in ``folder`` under ``key`` (and the strengths) while it holds, so that a run
    stopped part-way resumes where it was."""
    folder.mkdir(parents=True, exist_ok=True)
    degradations = sets[VALIDATION].degradations
    fit = cached(folder / "fit.json", key, lambda: {"fitted": fit_haze(model, degradations)})
    strengths = {"full": 1.0, "fitted": fit["fitted"]}
    return {
        "strengths": strengths,
        "sets": {
            split: cached(
                folder / f"{split}.json",
                {**key, "strengths": strengths},
                lambda pairs=pairs: measure_set(model, pairs, strengths),
            )
            for split, pairs in sets.items()
        },
    }


def psnr_of(reports: Mapping[str, dict], strength: str, mode: str, entry: str) -> float:
    return reports[strength][mode][entry]["psnr"]


def gap(reports: Mapping[str, dict], strength: str, entry: str) -> float:
    """Blind − labels on ``entry`` (a degradation or ``"average"``) at ``strength``."""
    return psnr_of(reports, strength, "blind", entry) - psnr_of(reports, strength, "labels", entry)


def checks(reports: Mapping[str, dict]) -> list[tuple[str, bool]]:
    """The rule's conditions on one set's ``reports`` (the fitted strength against full): what
    each measured and whether it holds."""
    labels = psnr_of(reports, "fitted", "labels", HAZE) - psnr_of(reports, "full", "labels", HAZE)
    blind = psnr_of(reports, "fitted", "blind", HAZE) - psnr_of(reports, "full", "blind", HAZE)
    shrink = abs(gap(reports, "full", HAZE)) - abs(gap(reports, "fitted", HAZE))
    average = psnr_of(reports, "fitted", "blind", "average") - psnr_of(
        reports, "full", "blind", "average"
    )
    clean = psnr_of(reports, "fitted", "blind", CLEAN) - psnr_of(reports, "full", "blind", CLEAN)
    return [
        (
            f"haze with labels {labels:+.3f} dB (at least +{GAIN_DB:.2f})",
            at_least(labels, GAIN_DB),
        ),
        (f"blind haze {blind:+.3f} dB (not below 0)", at_least(blind, 0.0)),
        (
            f"|blind − labels| on haze {shrink:+.3f} dB smaller (at least +{GAIN_DB:.2f})",
            at_least(shrink, GAIN_DB),
        ),
        (
            f"the blind average {average:+.3f} dB (at least -{AVERAGE_KEEP_DB:.2f}), clean images "
            f"through blind mode {clean:+.3f} dB (at least -{CLEAN_KEEP_DB:.2f})",
            at_least(average, -AVERAGE_KEEP_DB) and at_least(clean, -CLEAN_KEEP_DB),
        ),
    ]


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def split_table(measured: dict, names: Mapping[str, str]) -> list[str]:
    """Per set: haze with labels and blind at full strength, blind − labels split into its
    steering and amount parts, the sensor's mean weights and blind mode's mean amount, and the
    best one strength for the labelled output."""
    lines = [
        "| photos (hazy) | input | labels | blind | blind − labels | steering part | amount part "
        "| sensor's weight: haze / clean / other | blind amount | best one strength (labels) |",
        "| --- |" + " ---: |" * 6 + " --- | ---: | --- |",
    ]
    for split, title in names.items():
        rows = measured["sets"][split]["hazy"]
        curve = [mean([r["curve"][k] for r in rows]) for k in range(GRID + 1)]
        best = max(range(GRID + 1), key=lambda k: curve[k])
        weights = " / ".join(f"{mean([r['weights'][i] for r in rows]):.2f}" for i in range(3))
        cells = [title] + [
            f"{mean([r[k] for r in rows]):.2f}" for k in ("input", "labels", "blind")
        ]
        cells += [f"{mean([r[k] for r in rows]):+.2f}" for k in ("steering", "amount_part")]
        cells.insert(4, f"{mean([r['blind'] - r['labels'] for r in rows]):+.2f}")
        cells += [weights, f"{mean([r['amount'] for r in rows]):.2f}"]
        cells.append(f"{best / GRID:.2f}: {curve[best]:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def photo_table(measured: dict, names: Mapping[str, str]) -> list[str]:
    """Every hazy photo: its numbers at full strength and what the sensor made of it."""
    lines = [
        "| photos | photo | input | labels | blind | steering part | amount part | weight haze / "
        "clean / other | top class | best one strength |",
        "| --- | --- |" + " ---: |" * 5 + " --- | --- | ---: |",
    ]
    for split, title in names.items():
        for r in measured["sets"][split]["hazy"]:
            best = max(range(GRID + 1), key=lambda k: r["curve"][k])
            cells = [title, r["photo"]] + [f"{r[k]:.2f}" for k in ("input", "labels", "blind")]
            cells += [f"{r[k]:+.2f}" for k in ("steering", "amount_part")]
            cells += [" / ".join(f"{w:.2f}" for w in r["weights"]), r["top"], f"{best / GRID:.2f}"]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def strength_table(measured: dict, split: str) -> list[str]:
    """Set ``split`` at each haze strength: haze and the average with labels and blind, their
    gaps, and clean images through blind mode."""
    reports = measured["sets"][split]["reports"]
    lines = [
        "| haze strength | a | haze, labels | haze, blind | blind − labels (haze) | average, "
        "labels | average, blind | blind − labels (average) | clean through blind |",
        "| --- |" + " ---: |" * 8,
    ]
    for name in STRENGTHS:
        label = "full (the network's output)" if name == "full" else "fitted (least squares)"
        cells = [label, f"{measured['strengths'][name]:.3f}"]
        cells += [f"{psnr_of(reports, name, m, HAZE):.2f}" for m in ("labels", "blind")]
        cells.append(f"{gap(reports, name, HAZE):+.2f}")
        cells += [f"{psnr_of(reports, name, m, 'average'):.2f}" for m in ("labels", "blind")]
        cells.append(f"{gap(reports, name, 'average'):+.3f}")
        cells.append(f"{psnr_of(reports, name, 'blind', CLEAN):.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def cache_key(bundle: Path, sets: Mapping[str, PairedImages]) -> dict:
    """What ``measure``'s kept parts hold for: the bundle's files, the sets, the code, this
    script and the draws the strength is fitted on (``FIT_DRAWS``, kept in blur_strength.py)."""
    key = {"bundle": files_digest(bundle), "eval_sets": sets_digest(sets)}
    key |= {"code": code_digest(), "script": files_digest(Path(__file__))}
    return key | {"fit_draws": list(FIT_DRAWS)}


def main() -> None:
    import quality

    args = arguments(__doc__)
    photos = strength_photos()
    named = VALIDATION_NAMES[: len(photos)]
    sets = {
        VALIDATION: build_eval_set(photos, quality.WITH_CLEAN, seed=VALIDATION_SEED, names=named),
        **{s: build_eval_set(s, quality.WITH_CLEAN, seed=args.seed) for s in quality.EVAL_SETS},
    }
    bundle = args.runs / "pip" / "adopted"
    if not bundle.is_dir():
        raise SystemExit(
            f"no adopted PIP bundle in {bundle}: no blur line adopted by "
            "benchmarks/blur_strength.py's last run (docs/benchmarks/blur_strength.md)"
        )
    key = cache_key(bundle, sets)
    measured = measure(load_bundle(bundle), sets, args.runs / "pip" / "haze_strength", key)
    names = SET_TITLES
    conditions = checks(measured["sets"][VALIDATION]["reports"])
    adopted = all(ok for _, ok in conditions)
    title = "Haze strength, and blind mode against the labels on hazy photos"
    lines = [
        *page_head(title, "benchmarks/haze_strength.py", args.threads),
        "The PIP network and sensor measured: the bundle `benchmarks/blur_strength.py` keeps at "
        f"its adopted blur line (files digest `{files_digest(bundle)[:12]}`); every other "
        "degradation at full strength. Whole photos: the validation photos "
        "(`output_strength.strength_photos()`, 9, in no split of the bundled ones) and the two "
        f"held-out sets (seed {args.seed}). PSNR in dB.",
        "",
        "## Where blind − labels on haze comes from",
        "",
        "Blind mode's output is `x + amount · (f_w − x)`: `f_w` the network's output steered by "
        "the sensor's weights `w`, `amount` = `Σ w_i · a_i` (each degradation's strength, clean "
        "0). Per hazy photo, blind − labels = the *steering part* (`f_w` against the label's "
        "output, both at blind's amount) + the *amount part* (the label's output at blind's "
        "amount against it at full strength). *Best one strength*: the strength of the "
        "labelled output with the highest mean PSNR on those photos (a step of "
        f"{1 / GRID:.2f}).",
        "",
        *split_table(measured, names),
        "",
        *photo_table(measured, names),
        "",
        "## One haze strength",
        "",
        f"Haze's output strength fitted by least squares on the validation photos' haze draws "
        f"{', '.join(map(str, FIT_DRAWS))} restored with the label (`fit_output_strength`; "
        "`PIPConfig.output_strength`), the blur line kept; blind mode mixes it by the sensor's "
        "weights. The rule, fixed before its numbers, is checked on the validation photos' "
        "seed-0 draws; the held-out sets are reported only.",
    ]
    for split, title in names.items():
        lines += ["", f"### {title[0].upper()}{title[1:]}", "", *strength_table(measured, split)]
    text = "; ".join(f"{what}: {verdict(ok)}" for what, ok in conditions)
    lines += [
        "",
        f"- The rule: {text}.",
        "- Adopted: the fitted haze strength."
        if adopted
        else "- Adopted: none (haze stays at full strength).",
    ]
    out = quality.ROOT / "docs" / "benchmarks" / "haze_strength.md"
    write_text(out, "\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
