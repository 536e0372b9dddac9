"""inject_pip on spandrel's real Restormer / NAFNet / SwinIR and on a hand-written U-Net."""

import copy
import io
import pickle

import pytest
import torch
from backbones import build, injection_kwargs, train_conditioning

import pip_adapter as pa
from pip_adapter.conditioning import check_weights
from pip_adapter.injection.hooks import has_pip_hooks
from pip_adapter.padding import pad_to_requirements

ALL = ["nafnet", "restormer", "swinir", "unet"]


def reference_output(backbone, x, requirements):
    with torch.no_grad():
        return backbone(pad_to_requirements(x, requirements))[..., : x.shape[-2], : x.shape[-1]]


def inject(name, **kwargs):
    backbone = build(name)
    return backbone, pa.inject_pip(backbone, **injection_kwargs(name), **kwargs)


@pytest.mark.parametrize("name", ALL)
def test_identity_at_injection_for_every_degradation_form(name):
    backbone = build(name)
    x = torch.rand(2, 3, 27, 33)
    model = pa.inject_pip(backbone, **injection_kwargs(name))
    expected = reference_output(backbone, x, model.size_requirements)
    forms = [
        "rain",
        ["rain", "noise"],
        torch.tensor([1, 0]),
        {"rain": 0.5, "haze": 0.5},
        torch.rand(2, 5),
    ]
    with torch.no_grad():
        for degradation in forms:
            out = model(x, degradation=degradation)
            assert out.shape == x.shape
            assert (out - expected).abs().max() <= 1e-5


@pytest.mark.parametrize("name", ALL)
def test_training_makes_degradations_steer_the_output(name):
    _, model = inject(name)
    model.freeze_backbone()
    x = train_conditioning(model, steps=8)
    with torch.no_grad():
        rain, noise = model(x, degradation="rain"), model(x, degradation="noise")
        mixed = model(x, degradation={"rain": 0.5, "noise": 0.5})
    assert (rain - noise).abs().mean() > 1e-3
    assert not torch.allclose(mixed, rain) and not torch.allclose(mixed, noise)


@pytest.mark.parametrize("name", ALL)
def test_unload_restores_the_original_module_exactly(name):
    backbone = build(name)
    keys = list(backbone.state_dict())
    flags = {n: p.requires_grad for n, p in backbone.named_parameters()}
    attributes = [sorted(vars(m)) for m in backbone.modules()]
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        before = backbone(x)
    model = pa.inject_pip(backbone, **injection_kwargs(name)).freeze_backbone()
    train_conditioning(model, steps=2)
    original = model.unload()
    assert original is backbone
    assert not has_pip_hooks(original)
    assert list(original.state_dict()) == keys
    assert {n: p.requires_grad for n, p in original.named_parameters()} == flags
    assert [sorted(vars(m)) for m in original.modules()] == attributes
    with torch.no_grad():
        assert torch.equal(original(x), before)
    with pytest.raises(RuntimeError, match="unloaded"):
        model(x, degradation="rain")
    pa.inject_pip(original, **injection_kwargs(name))  # can be injected again


def test_backbone_called_directly_runs_as_before_injection():
    backbone, model = inject("nafnet")
    train_conditioning(model, steps=2)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        direct = backbone(x)
        restored = model.unload()(x)
    assert torch.equal(direct, restored)


def test_units_are_submodules_that_follow_dtype_and_state_dict():
    backbone, model = inject("nafnet")
    assert any(k.startswith("pip_units.") for k in model.state_dict())
    assert all(not k.startswith("pip_units.") for k in backbone.state_dict())
    model.double()
    assert all(p.dtype == torch.float64 for p in model.pip_units.parameters())
    out = model(torch.rand(1, 3, 16, 16, dtype=torch.float64), degradation="haze")
    assert out.dtype == torch.float64
    model.half()
    assert all(p.dtype == torch.float16 for p in model.pip_units.parameters())


def copy_of(model, how):
    if how == "deepcopy":
        return copy.deepcopy(model)
    buffer = io.BytesIO()
    pickle.dump(model, buffer)
    return pickle.loads(buffer.getvalue())


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_copies_carry_working_independent_hooks(how):
    _, model = inject("unet")
    train_conditioning(model, steps=2)
    x = torch.rand(1, 3, 16, 16)
    clone = copy_of(model, how)
    assert clone.config == model.config and clone.plan == model.plan
    with torch.no_grad():
        assert torch.equal(clone(x, degradation="rain"), model(x, degradation="rain"))
        for p in clone.pip_units.parameters():
            p.add_(1.0)
        assert not torch.equal(clone(x, degradation="rain"), model(x, degradation="rain"))
        original = model(x, degradation="rain")
        clone.unload()
        assert torch.equal(model(x, degradation="rain"), original)


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
@pytest.mark.parametrize("unloaded", ["original", "copy"])
def test_unloading_one_copy_keeps_the_other_working(how, unloaded):
    backbone, model = inject("swinir")  # token stages: hooks on a stack of blocks
    train_conditioning(model, steps=1)
    x = torch.rand(1, 3, 16, 16)
    clone = copy_of(model, how)
    with torch.no_grad():
        plain = backbone(x)
        steered = model(x, degradation="rain")
        gone, kept = (model, clone) if unloaded == "original" else (clone, model)
        bare = gone.unload()
        assert not has_pip_hooks(bare)
        assert torch.equal(bare(x), plain)
        assert has_pip_hooks(kept.backbone)
        assert torch.equal(kept(x, degradation="rain"), steered)
        assert torch.equal(kept.unload()(x), plain)


def test_weights_are_checked_once_per_forward_not_per_unit(monkeypatch):
    import pip_adapter.unit.prompt_in_prompt as unit_module

    calls = []

    def counting(weights, batch, num_degradations):
        calls.append(batch)
        return check_weights(weights, batch, num_degradations)

    monkeypatch.setattr(unit_module, "check_weights", counting)
    _, model = inject("nafnet")
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        model(x, degradation=torch.rand(2, 5))
        assert calls == []  # the model checked them: no unit checks again
        unit = next(iter(model.pip_units.values()))
        feature = torch.rand(2, unit.channels, 8, 8)
        direct = unit(feature, torch.rand(2, 5))
        assert calls == [2]  # called by hand, the unit checks
        with pytest.raises(ValueError, match="non-negative"):
            unit(feature, -torch.ones(2, 5))
    assert direct.shape == feature.shape


def test_torch_compile_matches_eager():
    _, model = inject("unet")
    train_conditioning(model, steps=2)
    x = torch.rand(2, 3, 16, 16)
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    with torch.no_grad():
        for degradation in ("rain", torch.tensor([2, 4])):
            torch.testing.assert_close(
                compiled(x, degradation=degradation), model(x, degradation=degradation)
            )
        # output strengths set afterwards: the compiled model follows (one graph, no break)
        full = model(x, degradation="rain")
        model.config = model.config.replace(output_strength={"rain": 0.5})
        torch.testing.assert_close(compiled(x, degradation="rain"), x + 0.5 * (full - x))


@pytest.mark.slow
def test_torch_compile_inductor_matches_eager():
    _, model = inject("nafnet")
    train_conditioning(model, steps=1)
    x = torch.rand(1, 3, 16, 16)
    compiled = copy.deepcopy(model)
    compiled.compile(dynamic=False)  # the one-liner docs/deploy.md recommends
    with torch.no_grad():
        torch.testing.assert_close(
            compiled(x, degradation="blur"), model(x, degradation="blur"), atol=1e-5, rtol=1e-4
        )


def test_ddp_wraps_and_trains(tmp_path):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1
    )
    try:
        _, model = inject("nafnet")
        ddp = DistributedDataParallel(model.freeze_backbone())
        loss = ddp(torch.rand(2, 3, 16, 16), degradation=["rain", "haze"]).mean()
        loss.backward()
        assert all(p.grad is not None for p in model.pip_units.parameters())
    finally:
        dist.destroy_process_group()


def test_adapter_alone_learns_on_one_image():
    torch.manual_seed(0)
    backbone, model = inject("nafnet")
    model.freeze_backbone()
    frozen = {k: v.clone() for k, v in backbone.state_dict().items()}
    g = torch.Generator().manual_seed(0)
    clean = torch.rand(1, 3, 32, 32, generator=g)
    noisy = (clean + 0.2 * torch.randn(clean.shape, generator=g)).clamp(0, 1)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-3)
    losses = []
    for _ in range(40):
        optimizer.zero_grad()
        loss = (model(noisy, degradation="noise") - clean).abs().mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]
    assert all(torch.equal(v, backbone.state_dict()[k]) for k, v in frozen.items())


def test_freeze_and_print_trainable_parameters(capsys):
    backbone, model = inject("nafnet")
    model.freeze_backbone()
    trainable, total = model.parameter_counts()
    assert trainable == sum(p.numel() for p in model.pip_units.parameters())
    assert total == trainable + sum(p.numel() for p in backbone.parameters())
    model.print_trainable_parameters()
    line = capsys.readouterr().out.strip()
    assert line == (
        f"trainable params: {trainable:,d} || all params: {total:,d} || "
        f"trainable%: {100 * trainable / total:.4f}"
    )


def test_prompt_regularization_is_a_differentiable_scalar():
    _, model = inject("nafnet")
    with torch.no_grad():
        for unit in model.pip_units.values():
            unit.degradation_prompt.prompts[1] = unit.degradation_prompt.prompts[0]
    penalty = model.prompt_regularization()
    assert penalty.dim() == 0 and penalty.item() == pytest.approx(2.0, abs=1e-5)
    penalty.backward()


def test_explicit_names_and_regexes_custom_vocabulary():
    backbone = build("nafnet")
    model = pa.inject_pip(
        backbone,
        stages=["decoders.0", r"decoders\.[1]"],
        degradations=("noise", "rain"),
        sample_input=torch.rand(1, 3, 32, 32),
    )
    assert model.stages == ["decoders.0", "decoders.1"]
    assert model.degradations == ("noise", "rain")
    with pytest.raises(ValueError, match=r"'haze'.*\['noise', 'rain'\]"):
        model(torch.rand(1, 3, 16, 16), degradation="haze")


def test_token_stages_of_swinir_and_output_hooks():
    backbone = build("swinir")
    model = pa.inject_pip(backbone, [r"layers\.\d+"], prompt_dim=8)
    assert [(p.layout, p.stage_channels) for p in model.plan] == [("tokens", 12)] * 2
    unet = build("unet")
    model = pa.inject_pip(unet, [pa.Stage("middle", at="output")])
    assert model.plan[0].at == "output"
    assert model.config.stages[0] == pa.Stage("middle", "output", (0, 16), None, None, 16, 16, 1)
    train_conditioning(model, steps=2)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert not torch.equal(model(x, degradation="rain"), unet(x))


def test_presets_and_size_multiple():
    assert {"Restormer", "NAFNet", "SwinIR"} <= set(pa.PRESETS)
    _, model = inject("restormer")
    assert model.size_multiple == 8  # spandrel's SizeRequirements for Restormer
    assert [p.channels for p in model.plan] == [(32, 64), (16, 32), (8, 16)]
    out = model(torch.rand(1, 3, 13, 9), degradation="rain")
    assert out.shape == (1, 3, 13, 9)


def test_list_stages(capsys):
    rows = pa.list_stages(build("swinir"), torch.rand(1, 3, 32, 32))
    by_name = {r.name: r for r in rows}
    assert by_name["layers.0"].layout == "tokens"
    assert by_name["layers.0"].input_shape == (1, 32 * 32, 12)
    assert (by_name["layers.0"].channels, by_name["layers.0"].spatial_size) == (12, (32, 32))
    assert by_name["conv_first"].input_shape == (1, 3, 32, 32)
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].split() == [
        "module",
        "type",
        "calls",
        "layout",
        "channels",
        "size",
        "skip",
        "refused",
    ]
    assert any(
        line.split()[:6] == ["layers.0", "RSTB", "1", "tokens", "12", "32×32"]
        for line in printed.splitlines()
    )
    unet_rows = pa.list_stages(build("unet"), verbose=False)
    assert [r.name for r in unet_rows] == ["encoder", "down", "middle", "up", "decoder", "head"]
    assert unet_rows[4].input_shape == (1, 16, 64, 64)
    assert unet_rows[4].skip == (8, 16)  # cat([upsampled, skip]): the skip is the second half


@pytest.mark.parametrize(
    ("stages", "kwargs", "error", "message"),
    [
        (
            ["decoders.0", "decoderz.1"],
            {},
            ValueError,
            r"'decoderz.1' matches no module.*decoders.1",
        ),
        ([r"decoders\.[7-9]"], {}, ValueError, r"matches no module of NAFNet"),
        (["decoders.(0"], {}, ValueError, "neither a module name nor a valid regular expression"),
        ([], {}, ValueError, "non-empty list"),
        ("decoders.0", {}, ValueError, "'auto' or a non-empty list"),
        (["decoders.0", r"decoders\.\d"], {}, ValueError, "matched by both"),
        (["decoders"], {}, ValueError, "did not run"),
        ([{"pattern": "decoders.0", "channels": [4, 99]}], {}, ValueError, "channel span"),
        ([{"pattern": "decoders.0", "hoook": "x"}], {}, ValueError, "unknown stage fields"),
        ([{"pattern": "decoders.0", "at": "inside"}], {}, ValueError, "'input' or 'output'"),
        (["decoders.0"], {"prompt_size": "big"}, ValueError, "PIPConfig.prompt_size"),
        (["decoders.0"], {"colour": "red"}, ValueError, r"unknown PIPConfig fields \['colour'\]"),
        (["decoders.0"], {"degradations": "rain"}, ValueError, "sequence of names"),
        (["decoders.0"], {"degradations": ("rain", "rain")}, ValueError, "unique"),
        (["decoders.0"], {"prompt_dim": 1}, ValueError, "at least 2"),
        (["decoders.0"], {"size_multiple": 0}, ValueError, "size_multiple"),
        (["decoders.0"], {"sample_input": torch.rand(1, 5, 32, 32)}, RuntimeError, "channels"),
    ],
)
def test_failed_injection_leaves_backbone_untouched(stages, kwargs, error, message, untouched):
    backbone = build("nafnet").train()
    with untouched(backbone), pytest.raises(error, match=message):
        pa.inject_pip(backbone, stages, **kwargs)


def test_refuses_double_injection_compiled_modules_and_non_modules():
    backbone, model = inject("nafnet")
    with pytest.raises(ValueError, match="already has PIP units"):
        pa.inject_pip(backbone)
    with pytest.raises(ValueError, match="already has PIP units"):
        pa.inject_pip(model)
    with pytest.raises(ValueError, match="inject first, then compile"):
        pa.inject_pip(torch.compile(build("nafnet")))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        pa.inject_pip("nafnet")


@pytest.mark.parametrize(
    ("degradation", "message"),
    [
        ("snow", r"unknown degradation 'snow'; valid names: \['noise', 'rain'"),
        (["rain"], "1 degradation names for a batch of 2"),
        (["rain", 3], "unknown degradation 3"),
        (torch.tensor([0, 5]), r"ids \[5\] out of range 0..4; 0=noise"),
        (torch.tensor([[0, 1]]), "one id or a 1-D tensor of 2 ids"),
        (torch.ones(2, 4), r"shape \(batch, 5\)"),
        (torch.tensor([[1.0, 0, 0, 0, -1], [1, 0, 0, 0, 0]]), "non-negative"),
        ({"rain": 0.5, "fog": 0.5}, "unknown degradation 'fog'"),
        ({"rain": -1.0}, "finite and >= 0"),
        ({"rain": 0.0}, "no positive weight"),
        (2.5, "got float; valid names"),
    ],
)
def test_malformed_degradations_name_the_valid_choices(degradation, message):
    _, model = inject("unet")
    with pytest.raises(ValueError, match=message):
        model(torch.rand(2, 3, 16, 16), degradation=degradation)


def test_blind_mode_needs_a_matching_sensor():
    _, model = inject("unet")
    x = torch.rand(2, 3, 16, 16)
    with pytest.raises(ValueError, match="model.sensor"):
        model(x)

    class FixedSensor(torch.nn.Module):
        def __init__(self, degradations):
            super().__init__()
            self.degradations = degradations

        def predict_weights(self, images):
            return torch.tensor([[0.0, 1.0, 0.0, 0.0, 0.0]]).expand(images.shape[0], -1)

    model.sensor = FixedSensor(("noise", "rain"))
    with pytest.raises(ValueError, match="predicts"):
        model(x)
    model.sensor = FixedSensor(pa.DEFAULT_DEGRADATIONS)
    train_conditioning(model, steps=2)
    with torch.no_grad():
        assert torch.equal(model(x), model(x, degradation="rain"))


def test_bad_image_input():
    _, model = inject("unet")
    with pytest.raises(ValueError, match="B×C×H×W image tensor, got \\(3, 16, 16\\)"):
        model(torch.rand(3, 16, 16), degradation="rain")
