"""benchmarks/sensor_haze.py: a sensor recipe's scores on whole photos and the rules fixed before
their numbers (the sensor's S1-S4, a lever's aim S5 and R5, blind restoration's R1-R4 without
and with haze's strength)."""

import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import sensor_haze  # benchmarks/ is not a package: found through the path above
from sensor_accuracy import DEGRADATIONS, crop_draws, whole_photo_draws

T = sensor_haze.DEFAULT_SENSOR_TEMPERATURE
HAZE, BLUR, CLEAN = (DEGRADATIONS.index(d) for d in ("haze", "blur", "clean"))


def logits_for(top: int, clean_weight: float, blur_weight: float = 0.0) -> torch.Tensor:
    """Logits whose weights at the sensor's temperature are ``clean_weight`` on clean,
    ``blur_weight`` on blur and the rest on ``top`` (the others ~0)."""
    logits = torch.full((len(DEGRADATIONS),), -30.0)
    logits[top] = T * math.log(1 - clean_weight - blur_weight)
    logits[CLEAN] = T * math.log(clean_weight)
    if blur_weight:
        logits[BLUR] = T * math.log(blur_weight)
    return logits


def test_sensor_scores_read_the_clean_weight_by_true_class():
    truth = torch.tensor([HAZE, HAZE, HAZE, 0, CLEAN, CLEAN])
    logits = torch.stack(
        [
            logits_for(HAZE, 0.2, blur_weight=0.3),
            logits_for(HAZE, 0.05),
            logits_for(HAZE, 0.8),  # a hazy photo called clean
            logits_for(0, 0.01),
            logits_for(HAZE, 0.9),
            logits_for(HAZE, 0.3),  # a clean photo called haze
        ]
    )
    scores = sensor_haze.sensor_scores(logits, truth)
    assert scores["accuracy"] == pytest.approx(100 * 4 / 6)
    assert scores["clean_recall"] == pytest.approx(50.0)
    assert scores["called_clean"] == 1
    assert scores["clean_weight"][HAZE] == pytest.approx((0.2 + 0.05 + 0.8) / 3, abs=1e-6)
    assert scores["clean_weight"][0] == pytest.approx(0.01, abs=1e-6)
    assert scores["hazy_above"] == pytest.approx(100 * 2 / 3)
    assert scores["hazy_blur"] == pytest.approx(0.3 / 3, abs=1e-6)


def scores(
    haze_clean: float, called: int, accuracy: float, recall: float, hazy_blur: float = 0.1
) -> dict:
    weights = [0.0] * len(DEGRADATIONS)
    weights[HAZE] = haze_clean
    return {
        "clean_weight": weights,
        "called_clean": called,
        "accuracy": accuracy,
        "clean_recall": recall,
        "hazy_blur": hazy_blur,
    }


def test_the_sensor_conditions_ask_less_clean_weight_on_haze_and_keep_the_rest():
    base, rule = scores(0.2, 17, 89.3, 70.6), sensor_haze.FAINT_HAZE
    ok = [holds for _, holds in sensor_haze.sensor_checks(base, scores(0.15, 17, 88.3, 64.7), rule)]
    assert ok == [True, True, True, True]
    worse = scores(0.16, 18, 88.2, 64.5)  # each condition just missed
    assert [holds for _, holds in sensor_haze.sensor_checks(base, worse, rule)] == [False] * 4


def test_a_rules_aim_is_s5_and_r5_together():
    with pytest.raises(ValueError, match="both or neither"):
        sensor_haze.Rule(session=23, clean_weight_share=1.0, blur_weight_share=0.75)


def test_the_soft_crops_rule_asks_only_that_the_clean_weight_not_rise():
    base, rule = scores(0.2, 17, 89.3, 70.6), sensor_haze.SOFT_CONTENT
    assert sensor_haze.sensor_checks(base, scores(0.2, 17, 89.3, 70.6), rule)[0][1]
    assert not sensor_haze.sensor_checks(base, scores(0.201, 17, 89.3, 70.6), rule)[0][1]


def hazy(steering: float) -> dict:
    """A set's restoration with its hazy photos' rows, of mean steering part ``steering``."""
    return {"validation": {"hazy": [{"steering": steering - 1}, {"steering": steering + 1}]}}


def test_the_aim_of_the_soft_crops_is_less_blur_weight_and_steering_closer_to_the_label():
    base = sensor_haze.DEFAULT_RECIPE
    restored = {base: hazy(-1.0), "soft": hazy(-0.75), "mild_end": hazy(-0.75)}
    sensors = {
        base: scores(0.2, 17, 89.3, 70.6, hazy_blur=0.12),
        "soft": scores(0.2, 17, 89.3, 70.6, hazy_blur=0.09),
        "mild_end": scores(0.2, 17, 89.3, 70.6, hazy_blur=0.09),
    }
    met = sensor_haze.aim_checks(sensors, restored, "soft")
    assert [ok for _, ok in met] == [True, True]
    assert "blur weight 0.090 (at most 0.090)" in met[0][0]
    sensors["soft"]["hazy_blur"], restored["soft"] = 0.091, hazy(-0.8)
    assert [ok for _, ok in sensor_haze.aim_checks(sensors, restored, "soft")] == [False, False]
    assert sensor_haze.aim_checks(sensors, restored, "mild_end") == []  # no aim of its own


def reports(haze: tuple[float, float], average: tuple[float, float], clean: float, blur: float):
    """One haze strength's reports: (labels, blind) on haze and the average, clean through
    blind, and blind blur's output − input."""
    return {
        "labels": {"haze": {"psnr": haze[0]}, "average": {"psnr": average[0]}},
        "blind": {
            "haze": {"psnr": haze[1]},
            "average": {"psnr": average[1]},
            "clean": {"psnr": clean},
            "blur": {"psnr": 25.0 + blur},
        },
        "input": {"blur": {"psnr": 25.0}},
    }


def test_the_restoration_conditions_compare_the_strengths_each_judgement_names():
    base = {
        "full": reports((15.44, 16.32), (22.67, 22.75), 39.56, -0.59),
        "fitted": reports((18.75, 17.80), (23.33, 23.11), 41.50, -0.59),
    }
    # the candidate: blind follows the labels more closely at both strengths
    cand = {
        "full": reports((15.44, 15.80), (22.67, 22.68), 39.50, -0.60),
        "fitted": reports((18.75, 18.50), (23.33, 23.31), 41.45, -0.62),
    }
    j0 = sensor_haze.restoration_checks(base, "full", cand, "full")
    assert [ok for _, ok in j0] == [True, False, True, True]  # the blind average falls
    j1 = sensor_haze.restoration_checks(base, "fitted", cand, "fitted")
    assert [ok for _, ok in j1] == [True, True, True, True]
    j2 = sensor_haze.restoration_checks(base, "full", cand, "fitted")
    assert [ok for _, ok in j2] == [True, True, True, True]
    assert "+0.630 dB smaller on haze" in j2[0][0]  # |+0.88| − |−0.25|
    blurred = {**cand, "fitted": reports((18.75, 18.50), (23.33, 23.31), 41.45, -0.70)}
    assert not sensor_haze.restoration_checks(base, "fitted", blurred, "fitted")[3][1]


def test_the_verdict_adopts_the_recipe_alone_before_the_combination(monkeypatch):
    base_reports = {
        "full": reports((15.44, 16.32), (22.90, 22.75), 39.56, -0.59),
        "fitted": reports((18.75, 17.80), (23.33, 23.11), 41.50, -0.59),
    }
    helps_with_strength = {
        "full": reports((15.44, 15.80), (22.90, 22.70), 39.50, -0.60),  # blind average falls
        "fitted": reports((18.75, 18.50), (23.33, 23.31), 41.45, -0.62),
    }
    helps_alone = {
        "full": reports((15.44, 15.70), (22.90, 22.85), 39.50, -0.60),
        "fitted": reports((18.75, 18.50), (23.33, 23.31), 41.45, -0.62),
    }
    base = sensor_haze.DEFAULT_RECIPE
    restored = {
        base: {"validation": {"reports": base_reports}},
        "a": {"validation": {"reports": helps_with_strength}},
        "b": {"validation": {"reports": helps_alone}},
        "c": {"validation": {"reports": helps_alone}},
    }
    sensors = {
        base: scores(0.2, 17, 89.3, 70.6),
        "a": scores(0.1, 15, 89.0, 70.6),
        "b": scores(0.1, 15, 89.0, 70.6),
        "c": scores(0.1, 15, 89.0, 58.8),  # two clean photos fewer
    }
    faint, soft = sensor_haze.FAINT_HAZE, sensor_haze.SOFT_CONTENT
    monkeypatch.setattr(sensor_haze, "RULES", {"a": faint, "b": faint, "c": faint, "d": soft})
    assert sensor_haze.verdicts(sensors, restored, "a")["adopts"] == "combination"
    assert sensor_haze.verdicts(sensors, restored, "b")["adopts"] == "recipe"
    assert sensor_haze.verdicts(sensors, restored, "c")["adopts"] is None
    # session 23's rule: as "a", but its aim (steering) missed
    restored[base]["validation"]["hazy"] = hazy(-1.0)["validation"]["hazy"]
    restored["d"] = {"validation": {"reports": helps_with_strength, **hazy(-0.9)["validation"]}}
    sensors["d"] = scores(0.2, 15, 89.0, 70.6, hazy_blur=0.05)
    judged = sensor_haze.verdicts(sensors, restored, "d")
    assert [ok for _, ok in judged["aim"]] == [True, False]
    assert judged["adopts"] is None


def test_held_out_whole_photos_are_drawn_as_the_sensor_page_draws_them():
    assert [crop_draws(n) for n in (3, 8)] == [40, 15]
    assert [whole_photo_draws(n) for n in (3, 8)] == [10, 3]


def test_the_hazy_table_averages_each_sensors_hazy_photos():
    row = {"weights": [0.7, 0.2, 0.1], "blind": 16.0, "labels": 15.0, "steering": -1.0}
    other = {"weights": [0.5, 0.0, 0.5], "blind": 14.0, "labels": 15.0, "steering": -3.0}
    hazy = [{**row, "amount_part": 2.0}, {**other, "amount_part": 2.0}]
    restored = {"base": {split: {"hazy": hazy} for split in sensor_haze.SET_TITLES}}
    lines = sensor_haze.hazy_table(restored)
    assert len(lines) == 2 + len(sensor_haze.SET_TITLES)
    assert lines[2].endswith("| base | 0.600 / 0.100 / 0.300 | +0.00 | -2.00 | +2.00 |")


def test_of_two_candidates_passing_the_same_route_the_one_of_least_hazy_clean_weight_is_adopted():
    scores = {"a": {"clean_weight": [0, 0, 0.14]}, "b": {"clean_weight": [0, 0, 0.12]}}
    both = {"a": {"adopts": "recipe"}, "b": {"adopts": "recipe"}}
    assert sensor_haze.adopted(scores, both) == "`b`, its recipe"
    first_route = {"a": {"adopts": "recipe"}, "b": {"adopts": "combination"}}
    assert sensor_haze.adopted(scores, first_route) == "`a`, its recipe"
    assert sensor_haze.adopted(scores, {"a": {"adopts": None}}) == "none (the default recipe stays)"
