"""Placement on networks presets do not cover: automatic decoder stages from one traced dry
run, layouts read from two input sizes, outputs that are tuples or dicts, ``list_stages``'s
table, and the three failures found on foreign networks (MPRNet's tuple output, SCUNet's
channels-last features, Uformer's token concatenations)."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from architectures import build_tiny
from backbones import train_conditioning
from einops import rearrange
from spandrel.architectures.NAFNet import NAFNet
from torch import nn

import pip_adapter as pa
from pip_adapter.architectures import size_requirements
from pip_adapter.injection import presets
from pip_adapter.recipes import default_pip


class ConvBlock(nn.Module):
    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels_in, channels_out, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.conv(x))


class UNet(nn.Module):
    """A U-Net of ``levels`` levels whose decoder merges the skip by concatenation
    (``cat([upsampled, skip])``, then a block) or by a sum (``upsampled + skip``)."""

    def __init__(self, levels: int, merge: str, width: int = 4) -> None:
        super().__init__()
        widths = [width * 2**i for i in range(levels)]
        self.merge = merge
        self.head = nn.Conv2d(3, widths[0], 3, padding=1)
        self.encoders = nn.ModuleList(ConvBlock(w, w) for w in widths[:-1])
        self.downs = nn.ModuleList(nn.Conv2d(w, 2 * w, 2, stride=2) for w in widths[:-1])
        self.bottleneck = ConvBlock(widths[-1], widths[-1])
        self.ups = nn.ModuleList(nn.ConvTranspose2d(2 * w, w, 2, stride=2) for w in widths[:-1])
        factor = 2 if merge == "cat" else 1
        self.decoders = nn.ModuleList(ConvBlock(factor * w, w) for w in widths[:-1])
        self.tail = nn.Conv2d(widths[0], 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feature, skips = self.head(x), []
        for encoder, down in zip(self.encoders, self.downs, strict=True):
            feature = encoder(feature)
            skips.append(feature)
            feature = down(feature)
        feature = self.bottleneck(feature)
        for index in reversed(range(len(skips))):
            up = self.ups[index](feature)
            merged = torch.cat([up, skips[index]], 1) if self.merge == "cat" else up + skips[index]
            feature = self.decoders[index](merged)
        return x + self.tail(feature)


class ChannelsLastBlock(nn.Module):
    """A ConvNeXt-style block on ``B×H×W×C`` features (LayerNorm and Linear on the last dim)."""

    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels_in)
        self.mix = nn.Linear(channels_in, channels_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.mix(self.norm(x)))


class ChannelsLastUNet(nn.Module):
    """A two-level U-Net whose blocks and skip concatenation work on ``B×H×W×C``."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.head = nn.Conv2d(3, width, 3, padding=1)
        self.encoder = ChannelsLastBlock(width, width)
        self.down = nn.Conv2d(width, 2 * width, 2, stride=2)
        self.bottleneck = ChannelsLastBlock(2 * width, 2 * width)
        self.up = nn.ConvTranspose2d(2 * width, width, 2, stride=2)
        self.decoder = ChannelsLastBlock(2 * width, width)
        self.tail = nn.Conv2d(width, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.encoder(rearrange(self.head(x), "b c h w -> b h w c"))
        deep = self.down(rearrange(skip, "b h w c -> b c h w"))
        deep = self.bottleneck(rearrange(deep, "b c h w -> b h w c"))
        up = rearrange(self.up(rearrange(deep, "b h w c -> b c h w")), "b c h w -> b h w c")
        decoded = self.decoder(torch.cat([up, skip], dim=-1))
        return x + self.tail(rearrange(decoded, "b h w c -> b c h w"))


def assert_identity_then_steerable(model, backbone, sizes):
    for height, width in sizes:
        x = torch.rand(1, 3, height, width)
        with torch.no_grad():
            assert torch.equal(model(x, degradation="rain"), backbone(x))
    train_conditioning(model.freeze_backbone(), steps=2)
    x = torch.rand(1, 3, *sizes[0])
    with torch.no_grad():
        assert not torch.equal(model(x, degradation="rain"), model(x, degradation="noise"))


@pytest.mark.parametrize(
    ("levels", "merge", "expected"),
    [
        (3, "cat", [("decoders.1", (8, 16)), ("decoders.0", (4, 8))]),
        (4, "cat", [("decoders.2", (16, 32)), ("decoders.1", (8, 16)), ("decoders.0", (4, 8))]),
        (3, "add", [("decoders.1", (0, 8)), ("decoders.0", (0, 4))]),
        (4, "add", [("decoders.2", (0, 16)), ("decoders.1", (0, 8)), ("decoders.0", (0, 4))]),
    ],
)
def test_auto_finds_the_decoder_inputs_of_u_nets(levels, merge, expected, caplog):
    torch.manual_seed(0)
    backbone = UNet(levels, merge).eval()
    with caplog.at_level("INFO", logger="pip_adapter"):
        model = pa.inject_pip(backbone, size_multiple=2 ** (levels - 1))
    assert sorted((p.name, p.channels) for p in model.plan) == sorted(expected)
    assert model.placement.startswith(f"automatic: {len(expected)} decoder inputs receiving skip")
    assert "no preset for UNet" in caplog.text and model.placement in caplog.text
    multiple = 2 ** (levels - 1)
    assert_identity_then_steerable(model, backbone, [(4 * multiple, 6 * multiple)])
    with torch.no_grad():  # any size: padded to the multiple, cropped back
        assert model(torch.rand(1, 3, 13, 11), degradation="haze").shape == (1, 3, 13, 11)


def test_auto_on_a_channels_last_u_net():
    torch.manual_seed(0)
    backbone = ChannelsLastUNet().eval()
    model = pa.inject_pip(backbone, size_multiple=2)
    [stage] = model.plan
    assert (stage.name, stage.layout, stage.stage_channels, stage.channels) == (
        "decoder",
        "channels_last",
        16,
        (8, 16),
    )
    assert_identity_then_steerable(model, backbone, [(16, 24), (20, 30)])


# spandrel architectures whose preset automatic placement must reproduce
REPRODUCED = ["NAFNet", "Restormer", "SCUNet", "Uformer", "RetinexFormer", "HVICIDNet", "SwinIR"]


@pytest.mark.parametrize("identity", REPRODUCED)
def test_auto_reproduces_the_preset_when_it_is_removed(identity, monkeypatch):
    preset_stages = pa.inject_pip(build_tiny(identity)).config.stages
    without = {key: value for key, value in presets.PRESETS.items() if key != identity}
    monkeypatch.setattr(presets, "PRESETS", without)
    model = pa.inject_pip(build_tiny(identity))
    assert model.placement.startswith("automatic")
    placement = [(s.pattern, s.at, s.channels, s.prompt_dim, s.heads) for s in preset_stages]
    assert [(s.pattern, s.at, s.channels, s.prompt_dim, s.heads) for s in model.config.stages] == (
        placement
    )  # the unit sizes are the preset's own (NAFNet's lighter units)


def test_deep_bodies_get_at_most_four_units_spread_over_their_second_half():
    """A stack of light blocks (DnCNN's convolutions) does not get a unit on every block of its
    second half: four at most, evenly spaced, ending at the last, by preset or automatically."""
    from spandrel.architectures.DnCNN import DnCNN

    dncnn = DnCNN(in_nc=3, out_nc=3, nc=4, nb=17).eval()
    convs = [name for name, m in dncnn.named_modules() if isinstance(m, nn.Conv2d)]
    model = pa.inject_pip(dncnn)
    assert [p.name for p in model.plan] == [convs[i] for i in (8, 11, 13, 16)]

    class Deep(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = nn.Conv2d(3, 8, 3, padding=1)
            self.body = nn.Sequential(*(ConvBlock(8, 8) for _ in range(12)))
            self.tail = nn.Conv2d(8, 3, 3, padding=1)

        def forward(self, x):
            return x + self.tail(self.body(self.head(x)))

    model = pa.inject_pip(Deep())
    assert [p.name for p in model.plan] == ["body.6", "body.8", "body.9", "body.11"]
    assert model.placement == (
        "automatic: no skip connections; the inputs of 4 blocks over the second half of the "
        "body (12 blocks body.N)"
    )


def test_auto_refuses_what_it_cannot_place_and_lists_candidates(untouched):
    class Plain(nn.Module):  # no skip connection, no stack of blocks
        def __init__(self):
            super().__init__()
            self.first = nn.Conv2d(3, 8, 3, padding=1)
            self.middle = nn.Conv2d(8, 8, 3, padding=1)
            self.last = nn.Conv2d(8, 3, 3, padding=1)

        def forward(self, x):
            return self.last(F.relu(self.middle(F.relu(self.first(x)))))

    class TwoStacks(nn.Module):  # two equal stacks of blocks
        def __init__(self):
            super().__init__()
            self.a = nn.Sequential(*(nn.Conv2d(3, 3, 3, padding=1) for _ in range(2)))
            self.b = nn.Sequential(*(nn.Conv2d(3, 3, 3, padding=1) for _ in range(2)))

        def forward(self, x):
            return self.b(self.a(x))

    plain = Plain()
    with untouched(plain), pytest.raises(ValueError, match=r"automatically.*'middle \(Conv2d"):
        pa.inject_pip(plain)
    with pytest.raises(ValueError, match=r"two equal stacks of blocks \(a\.N and b\.N\)"):
        pa.inject_pip(TwoStacks())


def test_mprnet_tuple_output_regression(monkeypatch):
    """MPRNet returns (stage 3, stage 2, stage 1) images: once a crash on the first call."""
    backbone = build_tiny("MPRNet")
    model = pa.inject_pip(backbone)
    assert model.config.output == 0
    x = torch.rand(1, 3, 21, 19)
    with torch.no_grad():
        out = model(x, degradation="rain")
    assert isinstance(out, torch.Tensor) and out.shape == x.shape
    model.unload()
    without_output = {k: v for k, v in presets.PRESETS["MPRNet"].items() if k != "output"}
    monkeypatch.setitem(presets.PRESETS, "MPRNet", without_output)
    with pytest.raises(ValueError, match=r"returns a tuple of 3: \[0\] 1×3×64×64.*output="):
        pa.inject_pip(backbone)
    stage2 = pa.inject_pip(backbone, output=1)
    with torch.no_grad():
        expected = backbone(F.pad(x, (0, 5, 0, 3), mode="reflect"))[1][..., :21, :19]
        assert torch.equal(stage2(x, degradation="rain"), expected)
    stage2.unload()
    with pytest.raises(ValueError, match=r"output=5 is not an image"):
        pa.inject_pip(backbone, output=5)


def test_outputs_with_one_image_or_named_images():
    class WithQuality(nn.Module):  # (image, quality factor), as FBCNN
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 3, 3, padding=1))

        def forward(self, x):
            return self.body(x), x.mean(dim=(1, 2, 3))[:, None]

    class Named(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 3, 3, padding=1))

        def forward(self, x):
            return {"coarse": x, "restored": self.body(x)}

    x = torch.rand(2, 3, 12, 10)
    single = WithQuality()
    model = pa.inject_pip(single, ["body.1"])
    assert model.config.output == 0
    with torch.no_grad():
        assert torch.equal(model(x, degradation="rain"), single(x)[0])
    named = Named()
    with pytest.raises(ValueError, match=r"dict of 2: \['coarse'\] .*with 2 images"):
        pa.inject_pip(named, ["body.1"])
    model = pa.inject_pip(named, ["body.1"], output="restored")
    with torch.no_grad():
        assert torch.equal(model(x, degradation="rain"), named(x)["restored"])
    with pytest.raises(ValueError, match="returns a tensor; leave output=None"):
        pa.inject_pip(nn.Sequential(nn.Conv2d(3, 3, 1), nn.Conv2d(3, 3, 1)), output=0)


def test_scunet_channels_last_regression():
    """SCUNet's trans_block receives B×H×W×C features: once read as B×C×H×W, and the adapted
    model ran silently wrong at other sizes."""
    backbone = build_tiny("SCUNet")
    rows = pa.list_stages(backbone, verbose=False, pattern=r"trans_block$")
    assert len(rows) == 7  # one per level of config=[1] * 7
    for row in rows:  # half the level's width goes through the Swin branch, channels last
        assert row.layout == "channels_last" and row.input_shape == (
            1,
            *row.spatial_size,
            row.channels,
        )
    first = rows[0]
    assert (first.channels, first.spatial_size) == (32, (64, 64))
    model = pa.inject_pip(backbone, [first.name])
    [stage] = model.plan
    assert (stage.layout, stage.stage_channels, stage.channels) == ("channels_last", 32, (0, 32))
    for height, width in [(64, 64), (45, 70)]:  # another size and an odd one
        x = torch.rand(1, 3, height, width)
        with torch.no_grad():
            assert torch.equal(model(x, degradation="rain"), backbone(x))
    unit = next(iter(model.pip_units.values()))
    with torch.no_grad():
        for parameter in unit.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
        x = torch.rand(1, 3, 45, 70)
        assert not torch.equal(model(x, degradation="rain"), backbone(x))


@pytest.mark.slow
def test_uformer_token_concatenation_regression():
    """Uformer's decoder layers receive cat([up, skip]) as tokens without (H, W): once dropped
    by list_stages, so the paper's location could not be used; its attention maps were
    offered as images."""
    backbone = build_tiny("Uformer")
    rows = {r.name: r for r in pa.list_stages(backbone, verbose=False)}
    layer = rows["decoderlayer_0"]
    assert (layer.layout, layer.channels, layer.skip, layer.refused) == (
        "tokens",
        128,
        (64, 128),
        None,
    )
    assert not [r for r in rows.values() if r.type == "Softmax" or r.name.endswith("attn")]
    model = pa.inject_pip(backbone)
    assert [(p.name, p.layout, p.channels) for p in model.plan] == [
        (f"decoderlayer_{i}", "tokens", (c // 2, c)) for i, c in enumerate((128, 64, 32, 16))
    ]


def test_ambiguous_layouts_are_refused():
    class OneSize(nn.Module):
        """Runs at 16×16 only, with a 16-channel B×H×W×C feature: H, W and C all 16."""

        def __init__(self):
            super().__init__()
            self.head = nn.Conv2d(3, 16, 3, padding=1)
            self.block = ChannelsLastBlock(16, 16)
            self.tail = nn.Conv2d(16, 3, 3, padding=1)

        def forward(self, x):
            if x.shape[-2:] != (16, 16):
                raise ValueError("16×16 only")
            feature = self.block(rearrange(self.head(x), "b c h w -> b h w c"))
            return self.tail(rearrange(feature, "b h w c -> b c h w"))

    net = OneSize()
    sample = torch.rand(1, 3, 16, 16)
    with pytest.raises(
        ValueError, match=r"stage 'block' input \[1, 16, 16, 16\]: layout ambiguous"
    ):
        pa.inject_pip(net, ["block"], sample_input=sample)
    rows = {r.name: r for r in pa.list_stages(net, sample, verbose=False)}
    assert rows["block"].refused.startswith("input [1, 16, 16, 16]: layout ambiguous")
    assert rows["head"].layout == "image" and rows["head"].refused is None  # 3 ≠ 16: clear


def test_list_stages_calls_filters_and_refusals(capsys):
    mprnet = build_tiny("MPRNet")
    rows = pa.list_stages(mprnet, verbose=False, max_depth=2)
    assert all(r.depth <= 2 for r in rows)
    by_name = {r.name: r for r in rows}
    assert by_name["stage1_encoder.encoder_level1"].calls == 4
    assert by_name["stage1_encoder.encoder_level1"].refused.startswith("runs 4 times")
    assert by_name["stage2_decoder.decoder_level1"].refused is None
    assert by_name["stage2_decoder.decoder_level1"].skip == (0, 8)
    pa.list_stages(mprnet, pattern=r"^stage3_orsnet\.orb\d$")
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[1:]] == [
        "stage3_orsnet.orb1",
        "stage3_orsnet.orb2",
        "stage3_orsnet.orb3",
    ]


def test_a_spandrel_descriptor_is_accepted_and_its_size_rule_used():
    import spandrel

    backbone = build_tiny("FFTformer")
    descriptor = spandrel.ModelLoader().load_from_state_dict(backbone.state_dict())
    model = pa.inject_pip(descriptor)
    assert model.backbone is descriptor.model
    assert model.size_requirements == descriptor.size_requirements  # multiple of 32
    assert size_requirements(backbone).multiple_of == 32
    x = torch.rand(1, 3, 40, 50)
    with torch.no_grad():
        out = model(x, degradation="blur")
        expected = descriptor.model(F.pad(x, (0, 14, 0, 24), mode="reflect"))[..., :40, :50]
    assert torch.equal(out, expected)


def test_nafnets_preset_has_light_units_that_any_unit_size_in_the_config_replaces():
    """NAFNet's preset: 8×8 basic prompts and a half-width feed-forward at every decoder level,
    the full-resolution one's on the 2×-pooled feature (issue 14's cost); a unit size in the
    config, or the paper design, gives every stage the config's own sizes instead."""

    def units(**options):
        model = pa.inject_pip(build_tiny("NAFNet"), **options)
        assert model.config.prompt_size is not None  # resolved
        found = []
        for unit in model.pip_units.values():
            feed_forward = unit.prompt_to_feature
            width = feed_forward.ffn.project_out.in_channels / unit.prompt_dim
            found.append((unit.prompt_size, width, feed_forward.ffn_stride))
        return found

    assert units() == [(8, 0.5, 1), (8, 0.5, 2)]
    assert units(**presets.FULL_UNITS) == [(16, 1.0, 1), (16, 1.0, 1)]
    assert units(prompt_size=4) == [(4, 1.0, 1), (4, 1.0, 1)]
    # an explicit 16 is a size given (DESIGN.md's own example), not the default left alone
    assert units(prompt_size=16) == [(16, 1.0, 1), (16, 1.0, 1)]
    assert units(config=pa.PIPConfig(prompt_size=16)) == [(16, 1.0, 1), (16, 1.0, 1)]
    assert units(feature_ffn_expansion=2) == [(16, 2.0, 1), (16, 2.0, 1)]
    assert units(design="paper")[0][0] == 16

    # a NAFNet of one level: its only decoder level is the full-resolution one, which the
    # preset's split keeps; a portion that keeps nothing is still an error in given stages
    def shallow():
        return NAFNet(width=8, enc_blk_nums=[1], middle_blk_num=1, dec_blk_nums=[1])

    model = pa.inject_pip(shallow())
    assert [(k, u.prompt_to_feature.ffn_stride) for k, u in model.pip_units.items()] == [
        ("decoders/0", 2)
    ]
    with pytest.raises(ValueError, match=r"portion \(0, 0.75\) keeps no module"):
        pa.inject_pip(shallow(), stages=[{"pattern": r"decoders\.\d+", "portion": [0, 0.75]}])
    # the adapter recipe (a pretrained backbone, frozen) keeps the full units; from scratch, the
    # preset's
    assert default_pip(Path("pretrained.pth"), full=False).feature_ffn_stride == 1
    assert default_pip(None, full=False) == pa.PIPConfig()
