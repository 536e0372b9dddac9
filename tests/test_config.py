"""PIPConfig: the one home of the unit and injection settings, its JSON form, and inject_pip."""

import json

import pytest
import torch
from backbones import build

import pip_adapter as pa
from pip_adapter.layers import FFN_EXPANSION
from pip_adapter.unit import DEFAULT_PROMPT_SIZE

CONFIGS = [
    pa.PIPConfig(),
    pa.PIPConfig(
        stages=["decoders.0", r"decoders\.1", pa.Stage("x", at="output", channels=(2, 6))],
        degradations=("noise", "jpeg"),
        prompt_dim=12,
        prompt_size=8,
        heads=3,
        ffn_expansion=2,
        topm_ratios=None,
        size_multiple=4,
    ),
    pa.PIPConfig(
        stages=[{"pattern": "a", "channel_fraction": [0.5, 1.0], "portion": [0, 0.5]}],
        topm_ratios=[0.5, 0.75],
    ),
    pa.PIPConfig(design="paper", feature_ffn_expansion=1.5),
    pa.PIPConfig(feature_ffn_stride=3),
    pa.PIPConfig(stages=[pa.Stage("a", feature_ffn_expansion=0.5, feature_ffn_stride=4)]),
    pa.PIPConfig(degradation_ffn_rank=8, native_degradations=("noise",)),
    pa.PIPConfig(
        stages=[{"pattern": r"body\.\d+", "module_type": "Conv2d", "portion": [0.5, 1.0]}],
        size_minimum=16,
        size_square=True,
        output="restored",
        noise_level_map=15 / 255,
        value_range=(-1, 1),
    ),
]


@pytest.mark.parametrize("config", CONFIGS)
def test_dict_round_trip_through_json(config):
    data = json.loads(json.dumps(config.to_dict()))
    assert data == config.to_dict()
    assert pa.PIPConfig.from_dict(data) == config


def test_defaults_are_the_units_and_lists_are_normalised():
    config = pa.PIPConfig()
    assert config.ffn_expansion == FFN_EXPANSION
    assert config.prompt_size is None  # the preset's per-stage size, else 16 (resolved)
    assert config.degradations == pa.DEFAULT_DEGRADATIONS
    unit = pa.PromptInPrompt(8, 5)
    assert unit.prompt_size == DEFAULT_PROMPT_SIZE
    assert unit.prompt_to_feature.attention.topm_ratios == config.topm_ratios
    same = pa.PIPConfig(stages=["a", {"pattern": "b"}], degradations=["noise", "rain"])
    assert same == pa.PIPConfig(
        stages=(pa.Stage("a"), pa.Stage("b")), degradations=("noise", "rain")
    )
    assert pa.PIPConfig(ffn_expansion=2).ffn_expansion == 2.0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"prompt_sise": 8}, r"unknown PIPConfig fields \['prompt_sise'\]; valid: \['stages'"),
        (
            {"prompt_size": "8"},
            "PIPConfig.prompt_size must be None or an integer of at least 1 and at most 128, "
            "got '8'",
        ),
        ({"prompt_size": True}, "PIPConfig.prompt_size must be None or an integer"),
        ({"prompt_dim": 1}, "PIPConfig.prompt_dim must be None or an integer of at least 2"),
        ({"heads": 0}, "PIPConfig.heads must be None or an integer of at least 1"),
        ({"size_multiple": 2.0}, "PIPConfig.size_multiple must be None or an integer"),
        ({"ffn_expansion": -1}, "PIPConfig.ffn_expansion must be a positive number"),
        ({"topm_ratios": [0.5, 1.5]}, r"PIPConfig.topm_ratios must be None .* ratios in \(0, 1\]"),
        ({"topm_ratios": "dense"}, "PIPConfig.topm_ratios"),
        ({"design": "fast"}, r"PIPConfig.design must be one of \('compact', 'paper'\), got 'fast'"),
        ({"feature_ffn_expansion": 0}, "PIPConfig.feature_ffn_expansion must be None or a posi"),
        ({"feature_ffn_stride": 0}, "PIPConfig.feature_ffn_stride must be None or an integer"),
        ({"degradation_ffn_rank": -1}, "PIPConfig.degradation_ffn_rank must be an integer of at"),
        ({"degradation_ffn_rank": None}, "PIPConfig.degradation_ffn_rank must be an integer"),
        (
            {"design": "paper", "feature_ffn_stride": 2},
            "PIPConfig.feature_ffn_stride needs design='compact', got 2 with design='paper'",
        ),
        ({"degradations": "rain"}, "degradations must be a sequence of names"),
        ({"stages": "decoders.0"}, "stages must be 'auto' or a non-empty list"),
        ({"stages": [{"pattern": "a", "hoook": "x"}]}, r"unknown stage fields \['hoook'\]"),
        ({"stages": [{"pattern": "a", "at": "inside"}]}, "at must be 'input' or 'output'"),
        ({"stages": [{"pattern": "a", "heads": 0}]}, "stage 'a': heads must be a positive"),
        ({"stages": [{"pattern": "a", "channels": [0.5, 1]}]}, "channels must be"),
        (
            {"stages": [{"pattern": "a", "feature_ffn_stride": 0}]},
            "stage 'a': feature_ffn_stride must be a positive integer of at most 16, got 0",
        ),
        (
            {"stages": [{"pattern": "a", "feature_ffn_expansion": 9}]},
            "stage 'a': feature_ffn_expansion must be a positive number of at most 8, got 9",
        ),
        (
            {"design": "paper", "stages": [{"pattern": "a", "feature_ffn_stride": 2}]},
            r"a stage's feature_ffn_stride needs design='compact', got one for \['a'\] with "
            "design='paper'",
        ),
        ({"stages": [{"pattern": "a", "module_type": "("}]}, "module_type must be a regular"),
        ({"size_minimum": -1}, "PIPConfig.size_minimum must be None or an integer of at least 0"),
        (
            {"size_minimum": 4096},
            "PIPConfig.size_minimum must be None or an integer of at least 0 and at most 2048",
        ),
        ({"size_square": "yes"}, "PIPConfig.size_square must be None, True or False"),
        ({"output": -1}, r"PIPConfig.output must be None, an index \(0, 1, ...\)"),
        ({"output": 1.5}, "PIPConfig.output must be None"),
        ({"noise_level_map": 2}, r"PIPConfig.noise_level_map must be None or in \[0, 1\]"),
        ({"value_range": [1, -1]}, r"PIPConfig.value_range must be None or \(low, high\)"),
        ({"value_range": "big"}, "PIPConfig.value_range"),
    ],
)
def test_bad_fields_are_one_line_errors_naming_the_field(data, message):
    with pytest.raises(ValueError, match=message) as error:
        pa.PIPConfig.from_dict(data)
    assert "\n" not in str(error.value)


def test_the_legacy_hook_key_is_read_as_at():
    assert pa.Stage.coerce({"pattern": "a", "hook": "output"}) == pa.Stage("a", at="output")
    assert pa.Stage("a", at="output").to_dict() == {"pattern": "a", "at": "output"}


def test_replace_checks_its_fields():
    config = pa.PIPConfig()
    assert config.replace(prompt_size=8).prompt_size == 8
    assert config.prompt_size is None  # frozen: a copy changed
    with pytest.raises(ValueError, match="unknown PIPConfig fields"):
        config.replace(prompt_sise=8)
    with pytest.raises(AttributeError):
        config.prompt_size = 8


def outputs(model, x):
    with torch.no_grad():
        return [model(x, degradation=d) for d in ("rain", {"noise": 0.5, "haze": 0.5})]


def perturb(model):
    torch.manual_seed(1)
    with torch.no_grad():
        for parameter in model.pip_units.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return model


def test_a_config_and_keywords_inject_the_same_model():
    options = {"stages": [r"decoders\.\d"], "prompt_size": 8, "heads": 2, "topm_ratios": None}
    torch.manual_seed(0)
    by_keywords = perturb(pa.inject_pip(build("nafnet"), **options))
    torch.manual_seed(0)
    by_config = perturb(pa.inject_pip(build("nafnet"), pa.PIPConfig(**options)))
    torch.manual_seed(0)
    positional = perturb(pa.inject_pip(build("nafnet"), options.pop("stages"), **options))
    assert by_keywords.config == by_config.config == positional.config
    x = torch.rand(2, 3, 16, 16)
    expected = outputs(by_keywords, x)
    for other in (by_config, positional):
        assert all(torch.equal(a, b) for a, b in zip(outputs(other, x), expected, strict=True))


def test_keywords_replace_the_fields_of_a_config():
    config = pa.PIPConfig(prompt_size=8, degradations=("noise", "rain"))
    model = pa.inject_pip(build("nafnet"), config, prompt_size=4)
    assert model.config.prompt_size == 4 and model.degradations == ("noise", "rain")
    assert {stage.prompt_size for stage in model.config.stages} == {4}
    with pytest.raises(ValueError, match="stages given twice"):
        pa.inject_pip(build("nafnet"), ["decoders.0"], stages=["decoders.1"])
    with pytest.raises(ValueError, match=r"unknown PIPConfig fields \['prompt_sise'\]"):
        pa.inject_pip(build("nafnet"), config, prompt_sise=4)


def test_the_resolved_config_rebuilds_the_same_model():
    model = perturb(pa.inject_pip(build("restormer"), prompt_dim=6))
    config = model.config
    assert config.size_multiple == 8  # the preset's
    assert [(s.pattern, s.at, s.channels) for s in config.stages] == [
        ("reduce_chan_level3", "input", (32, 64)),
        ("reduce_chan_level2", "input", (16, 32)),
        ("decoder_level1", "input", (8, 16)),
    ]
    assert {(s.prompt_dim, s.prompt_size, s.heads) for s in config.stages} == {(6, 16, 1)}
    again = pa.inject_pip(build("restormer"), pa.PIPConfig.from_dict(config.to_dict()))
    assert again.config == config
    again.pip_units.load_state_dict(model.pip_units.state_dict())
    x = torch.rand(1, 3, 13, 9)
    assert all(torch.equal(a, b) for a, b in zip(outputs(again, x), outputs(model, x), strict=True))


def test_per_stage_sizes_override_the_config():
    stages = [pa.Stage("decoders.0", prompt_dim=4, heads=2), pa.Stage("decoders.1", prompt_size=4)]
    model = pa.inject_pip(build("nafnet"), stages, prompt_size=8)
    first, second = model.pip_units.values()
    assert (first.prompt_dim, first.heads, first.prompt_size) == (4, 2, 8)
    assert (second.prompt_dim, second.heads, second.prompt_size) == (8, 1, 4)


def test_per_stage_feed_forwards_override_the_config():
    """A narrower or strided feed-forward for some stages only (the full-resolution one, where
    it costs the most); the others keep the config's, and the resolved config rebuilds it."""
    stages = [
        {"pattern": r"decoders\.\d", "portion": [0, 0.5]},
        {"pattern": r"decoders\.\d", "portion": [0.5, 1], "feature_ffn_stride": 2},
        pa.Stage("middle_blks", feature_ffn_expansion=2),
    ]
    model = perturb(pa.inject_pip(build("nafnet"), stages, feature_ffn_expansion=0.5))
    strides = {key: unit.prompt_to_feature.ffn_stride for key, unit in model.pip_units.items()}
    hidden = {
        key: unit.prompt_to_feature.ffn.project_out.in_channels
        for key, unit in model.pip_units.items()
    }
    dims = {key: unit.prompt_dim for key, unit in model.pip_units.items()}
    assert strides == {"middle_blks": 1, "decoders/0": 1, "decoders/1": 2}
    assert hidden == {
        "middle_blks": 2 * dims["middle_blks"],
        "decoders/0": dims["decoders/0"] // 2,
        "decoders/1": dims["decoders/1"] // 2,
    }
    again = pa.inject_pip(build("nafnet"), pa.PIPConfig.from_dict(model.config.to_dict()))
    assert again.config == model.config
    again.pip_units.load_state_dict(model.pip_units.state_dict())
    x = torch.rand(1, 3, 13, 9)
    assert all(torch.equal(a, b) for a, b in zip(outputs(again, x), outputs(model, x), strict=True))
