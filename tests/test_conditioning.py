"""The ``degradation=`` forms and the command-line syntax ``rain:0.7,noise:0.3`` / ``auto``."""

import numpy as np
import pytest
import torch

from pip_adapter.conditioning import (
    DEFAULT_DEGRADATIONS,
    check_weights,
    degradation_weights,
    parse_degradation,
)

NAMES = DEFAULT_DEGRADATIONS


def one_hot(*ids):
    return torch.eye(len(NAMES))[list(ids)]


def test_a_degradation_is_named_by_name_or_id():
    from pip_adapter.vocabulary import degradation_name

    assert degradation_name("haze", NAMES) == degradation_name(2, NAMES) == "haze"
    assert degradation_name(np.int64(4), NAMES) == "lowlight"
    for bad in (5, -1, True, "snow", 2.0):
        with pytest.raises(ValueError, match=rf"unknown degradation {bad!r}; valid names: \["):
            degradation_name(bad, NAMES)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rain", "rain"),
        ("  lowlight\n", "lowlight"),
        ("auto", None),
        (" auto ", None),
        ("rain:1", {"rain": 1.0}),
        ("rain:0.7,noise:0.3", {"rain": 0.7, "noise": 0.3}),
        ("rain:7,noise:3", {"rain": 0.7, "noise": 0.3}),
        (" rain : 0.7 , noise : 0.3 ", {"rain": 0.7, "noise": 0.3}),
        ("haze:1e-1,blur:3e-1", {"haze": 0.25, "blur": 0.75}),
        ("rain:2,noise:0", {"rain": 1.0, "noise": 0.0}),
        ("noise:1,rain:1,haze:1,blur:1", {n: 0.25 for n in NAMES[:4]}),
    ],
)
def test_parse_accepts_names_mixtures_and_auto(text, expected):
    parsed = parse_degradation(text, NAMES)
    if isinstance(expected, dict):
        assert list(parsed) == list(expected)
        assert parsed == pytest.approx(expected, abs=1e-12)
        assert sum(parsed.values()) == pytest.approx(1.0)
    else:
        assert parsed == expected


def test_parsed_mixture_is_accepted_by_degradation_weights():
    weights = degradation_weights(parse_degradation("rain:0.7,noise:0.3", NAMES), NAMES, 2)
    expected = torch.tensor([0.3, 0.7, 0.0, 0.0, 0.0]).expand(2, -1)
    torch.testing.assert_close(weights, expected)


def test_parse_uses_the_given_vocabulary():
    names = ("noise", "jpeg", "snow")
    assert parse_degradation("snow:1,jpeg:3", names) == {"snow": 0.25, "jpeg": 0.75}
    with pytest.raises(
        ValueError, match=r"unknown degradation 'rain'.*\['noise', 'jpeg', 'snow'\]"
    ):
        parse_degradation("rain", names)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("snow", r"unknown degradation 'snow'; valid names: \['noise', .*'auto'.*rain:0.7"),
        ("RAIN", "unknown degradation 'RAIN'"),
        ("", "unknown degradation ''"),
        ("rain;0.7", "unknown degradation 'rain;0.7'"),
        ("snow:1,rain:1", "unknown degradation 'snow'; valid names"),
        ("auto:1", "unknown degradation 'auto'"),
        ("rain:-0.5,noise:1", "weight for 'rain' must be finite and >= 0, got -0.5"),
        ("rain:nan,noise:1", "must be finite and >= 0, got nan"),
        ("rain:inf", "must be finite and >= 0, got inf"),
        ("rain:1e400", "must be finite and >= 0, got inf"),
        ("rain:x", "weight 'x' for 'rain' in 'rain:x' is not a number"),
        ("rain:1:2", "weight '1:2' for 'rain'"),
        ("rain:0.7 noise:0.3", "is not a number"),
        ("rain:", "malformed degradation mixture 'rain:': expected name:weight pairs"),
        (":0.5", "malformed degradation mixture"),
        ("rain,noise", "malformed degradation mixture 'rain,noise'"),
        ("rain:0.7,", "malformed"),
        ("rain:0.7,,noise:0.3", "malformed"),
        ("rain:1,auto", "malformed"),
        ("rain:0.5,rain:0.5", "degradation 'rain' appears twice"),
        ("rain:0.5, noise:0.2 ,rain :1", "'rain' appears twice"),
        ("rain:0,noise:0", "has no positive weight"),
        ("rain:0", "has no positive weight"),
    ],
)
def test_parse_errors_say_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        parse_degradation(text, NAMES)


def test_parse_refuses_non_text():
    with pytest.raises(ValueError, match="must be given as text, got NoneType"):
        parse_degradation(None, NAMES)


@pytest.mark.parametrize(
    ("degradation", "batch", "expected"),
    [
        ("rain", 2, one_hot(1, 1)),
        (["rain", "noise", "lowlight"], 3, one_hot(1, 0, 4)),
        (("haze",), 1, one_hot(2)),
        (3, 2, one_hot(3, 3)),
        (np.int64(4), 1, one_hot(4)),
        (torch.tensor(2), 3, one_hot(2, 2, 2)),
        (torch.tensor([1]), 2, one_hot(1, 1)),
        (torch.tensor([4, 0], dtype=torch.uint8), 2, one_hot(4, 0)),
        ({"rain": 0.5, "haze": 0.5}, 2, torch.tensor([[0, 0.5, 0.5, 0, 0]] * 2)),
        ({"rain": 3, "noise": np.float32(1.0)}, 1, torch.tensor([[0.25, 0.75, 0, 0, 0]])),
        (torch.tensor([[1.0, 1, 0, 0, 2]]), 1, torch.tensor([[0.25, 0.25, 0, 0, 0.5]])),
        (torch.eye(5, dtype=torch.float64)[[2, 3]], 2, one_hot(2, 3)),
    ],
)
def test_every_form_gives_normalised_float32_weights(degradation, batch, expected):
    weights = degradation_weights(degradation, NAMES, batch)
    assert weights.dtype == torch.float32 and weights.shape == (batch, len(NAMES))
    torch.testing.assert_close(weights, expected.float())
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(batch))


@pytest.mark.parametrize(
    ("degradation", "batch", "message"),
    [
        ("snow", 1, r"unknown degradation 'snow'; valid names: \['noise'"),
        (["rain", "snow"], 2, "unknown degradation 'snow'"),
        (["rain"], 2, "got 1 degradation names for a batch of 2"),
        ([0, 1], 2, "unknown degradation 0"),
        (True, 1, "not a bool"),
        (5, 1, r"ids \[5\] out of range 0..4; 0=noise"),
        (-1, 1, r"ids \[-1\] out of range"),
        (torch.tensor([0, 1, 2]), 2, "one id or a 1-D tensor of 2 ids"),
        (torch.tensor([[0, 1]]), 2, "1-D tensor of 2 ids"),
        (torch.tensor([True, False]), 2, "must be integers, got dtype torch.bool"),
        ({"rain": -1.0, "noise": 2.0}, 1, "must be finite and >= 0, got -1.0"),
        ({"rain": float("nan")}, 1, "must be finite"),
        ({"rain": "0.5"}, 1, "must be a number, got '0.5'"),
        ({"rain": True}, 1, "must be a number, got True"),
        ({"snow": 1.0}, 1, "unknown degradation 'snow'"),
        ({"rain": 0.0}, 1, "has no positive weight"),
        ({}, 1, "has no positive weight"),
        (torch.ones(2, 4), 2, r"shape \(batch, 5\) = \(2, 5\).*got \(2, 4\)"),
        (torch.ones(5), 1, r"got \(5,\)"),
        (torch.tensor([[1.0, -1, 0, 0, 1]]), 1, "non-negative"),
        (torch.tensor([[1.0, float("nan"), 0, 0, 1]]), 1, "NaN or infinite"),
        (torch.zeros(2, 5), 2, r"rows \[0, 1\] are all zero"),
        (1.5, 1, "got float; valid names"),
        (None, 1, "got NoneType"),
    ],
)
def test_malformed_forms_are_refused(degradation, batch, message):
    with pytest.raises(ValueError, match=message):
        degradation_weights(degradation, NAMES, batch)


def test_check_weights_normalises_rows_and_checks_types():
    torch.testing.assert_close(
        check_weights(torch.tensor([[2.0, 2.0], [0.0, 3.0]]), 2, 2),
        torch.tensor([[0.5, 0.5], [0.0, 1.0]]),
    )
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        check_weights([[1.0, 0.0]], 1, 2)
    with pytest.raises(ValueError, match="floating-point"):
        check_weights(torch.tensor([[1, 0]]), 1, 2)
