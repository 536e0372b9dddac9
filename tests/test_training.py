"""The trainer: exact resume, divergence handling, schedule, logs, and DDP with torchrun."""

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import pip_adapter as pa
from pip_adapter.backbones import build_backbone
from pip_adapter.data import SyntheticAllInOne, build_eval_set
from pip_adapter.recipes import FinetuneRecipe, finetune, seeded
from pip_adapter.training import TrainConfig, Trainer, TrainingDiverged, warmup_cosine

TESTS = Path(__file__).parent


def data():
    return SyntheticAllInOne(patch_size=32, samples_per_degradation=4, seed=3)


def model(seed=0):
    torch.manual_seed(seed)
    return pa.inject_pip(build_backbone("nafnet", "tiny"))


def config(**overrides):
    return TrainConfig(**{"steps": 6, "batch_size": 4, "lr": 1e-3, "progress": False} | overrides)


def test_resuming_reproduces_the_uninterrupted_run(tmp_path):
    straight = model()
    Trainer(straight, data(), config(), out_dir=tmp_path / "a").fit()
    first = model()
    Trainer(first, data(), config(checkpoint_every=2), out_dir=tmp_path / "b").fit(stop_at=3)
    resumed = model(seed=1)
    trainer = Trainer(resumed, data(), config(checkpoint_every=2), out_dir=tmp_path / "b")
    trainer.resume()
    assert trainer.step == 3
    trainer.fit()
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


def test_adapter_training_with_the_same_seed_gives_the_same_adapter():
    """Adapter training (frozen backbone, units run again in the backward pass) is
    deterministic on the CPU: the same seed gives the same adapter, bit for bit."""
    adapters = []
    for _ in range(2):
        net = model()
        start = {k: v.clone() for k, v in net.pip_units.state_dict().items()}
        net.freeze_backbone()
        Trainer(net, data(), config()).fit()
        assert net.recompute_units
        adapters.append(net.pip_units.state_dict())
    assert any(not torch.equal(start[k], v) for k, v in adapters[0].items())  # it trained
    for key, value in adapters[0].items():
        assert torch.equal(value, adapters[1][key]), key


def recipe_run(out, seed, sensor_steps=1):
    """A tiny ``finetune`` run (one step; ``sensor_steps`` sensor steps) with training seed
    ``seed``: the tensors of the files it wrote."""
    recipe = FinetuneRecipe("nafnet", out=out, patch_size=32, sensor_steps=sensor_steps)
    train = TrainConfig(steps=1, batch_size=2, seed=seed, progress=False)
    finetune(dataclasses.replace(recipe, size="tiny", train=train))
    return {path.name: load_file(path) for path in (out / "adapter").glob("*.safetensors")}


def test_a_recipe_rerun_with_its_seed_gives_the_same_model(tmp_path, monkeypatch):
    """``finetune`` builds the backbone, the units and the sensor from its seed, not from
    whatever the process drew before: a rerun in the same process gives the same files, bit
    for bit; another seed other ones."""
    monkeypatch.setattr(Trainer, "validate", lambda self: None)  # not what is tested: time
    first = recipe_run(tmp_path / "a", seed=0)
    torch.rand(3)  # the process draws something in between
    again = recipe_run(tmp_path / "b", seed=0)
    assert set(first) == {"adapter.safetensors", "sensor.safetensors", "backbone.safetensors"}
    for name, tensors in first.items():
        for key, value in tensors.items():
            assert torch.equal(value, again[name][key]), (name, key)
    other = recipe_run(tmp_path / "c", seed=1, sensor_steps=0)
    for name in ("adapter.safetensors", "backbone.safetensors"):
        assert any(not torch.equal(v, other[name][k]) for k, v in first[name].items()), name


def test_seeded_draws_from_its_seed_and_restores_the_callers_stream():
    state = torch.get_rng_state()
    with seeded(5):
        inside = torch.rand(4)
    assert torch.equal(torch.get_rng_state(), state)
    torch.rand(2)
    with seeded(5):
        assert torch.equal(torch.rand(4), inside)
    with seeded(6):
        assert not torch.equal(torch.rand(4), inside)


def test_divergence_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    net = model()
    calls = {"n": 0}

    def poison(module, args, output):
        calls["n"] += 1
        return output * float("nan") if calls["n"] == 3 else output

    net.backbone.register_forward_hook(poison)
    trainer = Trainer(net, data(), config(checkpoint_every=1), out_dir=tmp_path)
    with pytest.raises(TrainingDiverged, match=r"loss became nan at step 3.*checkpoint\.pt"):
        trainer.fit()
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert saved["step"] == 2
    assert all(torch.isfinite(p).all() for p in net.parameters())


def test_outputs_logs_curves_and_adapter(tmp_path):
    net = model()
    net.freeze_backbone()
    val = build_eval_set(crop=32)
    (tmp_path / "log.jsonl").write_text('{"step": 99, "loss": 1.0}\n')  # from an older run
    trainer = Trainer(
        net, data(), config(val_every=3, log_every=4), tmp_path, val_set=val, overwrite=True
    )
    report = trainer.fit()
    assert set(report) == {*pa.DEFAULT_DEGRADATIONS, "average"}
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [4, 6]
    assert [r["step"] for r in records if "val" in r] == [3, 6]
    assert (tmp_path / "curves.png").stat().st_size > 1000
    assert (tmp_path / "adapter" / "adapter.safetensors").is_file()
    pa.load_adapter(build_backbone("nafnet", "tiny"), tmp_path / "adapter")


def test_validation_is_only_logged_the_trained_weights_do_not_depend_on_it(tmp_path):
    """Benchmarks keep their trained networks under keys that name no validation set, so a
    changed validation set must leave the weights as they were, bit for bit."""
    trained, start = [], model().state_dict()
    for val_set in (None, build_eval_set(crop=16)):
        net = model()
        Trainer(net, data(), config(val_every=3), tmp_path, val_set=val_set, overwrite=True).fit()
        trained.append(net.state_dict())
    assert any(not torch.equal(v, start[k]) for k, v in trained[0].items())  # it trained
    for key, value in trained[0].items():
        assert torch.equal(value, trained[1][key]), key


def test_plain_backbones_train_too(tmp_path):
    torch.manual_seed(0)
    net = build_backbone("nafnet", "tiny")
    before = [p.clone() for p in net.parameters()]
    Trainer(net, data(), config(steps=2), out_dir=tmp_path).fit()
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))
    assert (tmp_path / "model.safetensors").is_file()


def test_dataset_degradations_are_matched_to_the_model_by_name():
    swapped = SyntheticAllInOne(
        degradations=("rain", "noise"), patch_size=32, samples_per_degradation=2
    )
    trainer = Trainer(model(), swapped, config())
    assert trainer.prompt_ids.tolist() == [1, 0]  # the model's ("noise", "rain") ids
    # with a degradation the model has no prompt for, training is refused
    two = pa.inject_pip(build_backbone("nafnet", "tiny"), degradations=("noise", "rain"))
    other = SyntheticAllInOne(degradations=("haze",), patch_size=32, samples_per_degradation=2)
    with pytest.raises(ValueError, match=r"\['haze'\] are not among the model's"):
        Trainer(two, other, config())


def test_psnr_loss_is_minus_the_mean_psnr():
    from pip_adapter.metrics import psnr
    from pip_adapter.training import psnr_loss

    a, b = torch.rand(3, 3, 16, 16), torch.rand(3, 3, 16, 16)
    torch.testing.assert_close(psnr_loss(a, b), -psnr(a, b).mean(), rtol=0, atol=1e-4)
    trained = model()
    Trainer(trained, data(), config(loss="psnr", steps=2)).fit()


def test_relative_l1_loss_counts_each_image_by_its_input_error():
    from pip_adapter.training import relative_l1_loss

    clean = torch.zeros(2, 3, 8, 8)
    degraded = torch.stack([torch.full((3, 8, 8), 0.02), torch.full((3, 8, 8), 0.4)])
    # an image restored no better than its input counts 1, whatever its error
    assert relative_l1_loss(degraded, clean, degraded).item() == pytest.approx(1.0)
    restored = (degraded / 2).requires_grad_(True)
    loss = relative_l1_loss(restored, clean, degraded)
    assert loss.item() == pytest.approx(0.5)
    loss.backward()
    # each image's gradient scales with 1 / its input's error: the small error weighs 20x more
    small, large = restored.grad.abs().flatten(1).mean(dim=1)
    assert (small / large).item() == pytest.approx(20.0)
    # an input without error (a clean image) counts against a floor of one grey level
    floored = relative_l1_loss(clean + 2 / 255, clean, clean)
    assert floored.item() == pytest.approx(2.0)
    with pytest.raises(ValueError, match="must have the target's shape"):
        relative_l1_loss(clean, clean, clean[..., :4, :4])


def test_psnr_no_harm_loss_adds_the_db_an_image_loses_against_its_input():
    from pip_adapter.metrics import psnr
    from pip_adapter.training import psnr_loss, psnr_no_harm_loss

    clean = torch.rand(2, 3, 16, 16)
    degraded = (clean + 0.05 * torch.randn_like(clean)).clamp(0, 1)
    better = (clean + 0.2 * (degraded - clean)).requires_grad_(True)
    # restored above its input: the PSNR loss alone, and its gradient
    torch.testing.assert_close(
        psnr_no_harm_loss(better, clean, degraded), psnr_loss(better, clean), rtol=0, atol=1e-5
    )
    # the first image below its input: its shortfall in dB is added (weight 1)
    worse = torch.stack([clean[0] + 2 * (degraded[0] - clean[0]), better[1].detach()])
    lost = (psnr(degraded[0], clean[0]) - psnr(worse[0], clean[0])) / 2  # mean over 2 images
    torch.testing.assert_close(
        psnr_no_harm_loss(worse, clean, degraded),
        psnr_loss(worse, clean) + lost,
        rtol=0,
        atol=1e-4,
    )
    # an input with no error counts as one grey level: a perfect output loses nothing
    assert psnr_no_harm_loss(clean, clean, clean).item() == pytest.approx(
        psnr_loss(clean, clean).item()
    )
    # returning it with 2 grey levels of error loses 20·log10(2) dB against the floor
    off = clean + 2 / 255
    extra = psnr_no_harm_loss(off, clean, clean) - psnr_loss(off, clean)
    assert extra.item() == pytest.approx(20 * math.log10(2), abs=1e-3)
    with pytest.raises(ValueError, match="psnr_no_harm loss .* must have the target's shape"):
        psnr_no_harm_loss(clean, clean, clean[..., :4, :4])


def test_psnr_fft_loss_counts_an_error_spread_over_frequencies_more():
    from pip_adapter.training import psnr_fft_loss, psnr_loss

    clean = torch.full((1, 1, 32, 32), 0.5)
    rows = torch.arange(32.0).view(1, 1, 32, 1)
    wave = 0.1 * math.sqrt(2) * torch.cos(2 * math.pi * 4 * rows / 32).expand(1, 1, 32, 32)
    noise = torch.randn(1, 1, 32, 32)
    noise = noise / noise.square().mean().sqrt() * 0.1  # the same squared error as the wave
    spread, concentrated = clean + noise, clean + wave
    # equal PSNR: the pixel loss cannot tell them apart, the Fourier L1 term can
    torch.testing.assert_close(psnr_loss(spread, clean), psnr_loss(concentrated, clean))
    assert psnr_fft_loss(spread, clean) > psnr_fft_loss(concentrated, clean) + 5
    # half-precision images (a caller's autocast) are transformed in float32
    half = psnr_fft_loss(spread.bfloat16(), clean.bfloat16())
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, psnr_fft_loss(spread, clean), rtol=0, atol=0.1)
    # the weight scales the Fourier term alone: weight 0 is the PSNR loss
    term = psnr_fft_loss(spread, clean) - psnr_loss(spread, clean)
    torch.testing.assert_close(psnr_fft_loss(spread, clean, weight=0.0), psnr_loss(spread, clean))
    torch.testing.assert_close(
        psnr_fft_loss(spread, clean, weight=0.3) - psnr_loss(spread, clean), 0.3 * term
    )


def test_trainer_trains_with_the_losses_tried_against_harm(tmp_path):
    def first_loss(loss: str) -> float:
        out = tmp_path / loss
        trainer = Trainer(Gain(), data(), config(loss=loss, steps=2, log_every=1), out)
        trainer.fit()
        assert trainer.model.gain.item() != 1.0  # it trained
        return json.loads((out / "log.jsonl").read_text().splitlines()[0])["loss"]

    psnr = first_loss("psnr")
    # the first step returns each input as it came (gain 1): nothing lost against it
    assert first_loss("psnr_no_harm") == pytest.approx(psnr, abs=1e-5)
    assert first_loss("psnr_fft") < psnr - 5  # the Fourier term, in dB, adds its own (< 0)
    # TrainConfig.fft_weight reaches the loss: at 0 the first step is the PSNR loss's
    out = tmp_path / "unweighted"
    Trainer(
        Gain(), data(), config(loss="psnr_fft", fft_weight=0.0, steps=2, log_every=1), out
    ).fit()
    first = json.loads((out / "log.jsonl").read_text().splitlines()[0])["loss"]
    assert first == pytest.approx(psnr, abs=1e-5)
    for bad in (-0.5, float("nan"), "0.3", True):
        with pytest.raises(ValueError, match="TrainConfig.fft_weight must be a finite number >= 0"):
            config(loss="psnr_fft", fft_weight=bad)
    with pytest.raises(ValueError, match="fft_weight weighs the Fourier term of loss='psnr_fft'"):
        config(loss="psnr", fft_weight=0.3)  # not silently ignored


class Gain(torch.nn.Module):
    """A network that scales its input: at gain 1 it returns the degraded image itself."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = torch.nn.Parameter(torch.ones(()))

    def forward(self, x):
        return x * self.gain


def test_trainer_relative_l1_loss_divides_by_the_degraded_input(tmp_path):
    Trainer(Gain(), data(), config(loss="relative_l1", steps=1, log_every=1), tmp_path).fit()
    first = json.loads((tmp_path / "log.jsonl").read_text().splitlines()[0])
    assert first["loss"] == pytest.approx(1.0)  # the input returned as is: its whole error left


def test_ema_ends_with_the_moving_average_of_the_weights(tmp_path):
    # the weights after each step of a run without the average
    weights, plain = [], Trainer(Gain(), data(), config(steps=4))
    for step in range(1, 5):
        plain.fit(stop_at=step)
        weights.append(plain.model.gain.item())
    trainer = Trainer(Gain(), data(), config(steps=4, ema_decay=0.5), tmp_path)
    trainer.fit()
    # the final checkpoint keeps the trained weights (a resume with more steps goes on from
    # them) and the average beside them
    state = pa.training.load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["model"]["gain"].item() == pytest.approx(weights[-1], rel=1e-6)
    assert torch.equal(state["average"][0], trainer.model.gain.detach())
    average = 1.0  # the initial gain
    for updates, weight in enumerate(weights, start=1):
        decay = min(0.5, (1 + updates) / (10 + updates))
        average = decay * average + (1 - decay) * weight
    assert trainer.model.gain.item() == pytest.approx(average, rel=1e-6)
    moved = abs(weights[-1] - 1.0)
    assert abs(trainer.model.gain.item() - weights[-1]) > 0.03 * moved > 0  # not the last one


def test_resuming_keeps_the_moving_average(tmp_path):
    straight = Trainer(model(), data(), config(ema_decay=0.9))
    straight.fit()
    first = Trainer(model(), data(), config(ema_decay=0.9, checkpoint_every=2), tmp_path)
    first.fit(stop_at=3)
    resumed = Trainer(model(), data(), config(ema_decay=0.9, checkpoint_every=2), tmp_path)
    resumed.resume().fit()
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    # a checkpoint written without the average cannot continue one
    Trainer(model(), data(), config(checkpoint_every=2), tmp_path / "plain").fit(stop_at=2)
    again = Trainer(model(), data(), config(checkpoint_every=2), tmp_path / "plain")
    with pytest.raises(ValueError, match="written with ema_decay None"):
        Trainer(model(), data(), config(ema_decay=0.9), tmp_path / "plain").resume()
    again.resume()
    # one from before ema_decay existed (no such key, no average) cannot continue one either
    old = pa.training.load_checkpoint(tmp_path / "plain" / "checkpoint.pt")
    del old["config"]["ema_decay"], old["average"]
    torch.save(old, tmp_path / "old.pt")
    with pytest.raises(ValueError, match="written without a moving average"):
        Trainer(model(), data(), config(ema_decay=0.9)).resume(tmp_path / "old.pt")


def test_bad_configs():
    with pytest.raises(ValueError, match="loss must be one of"):
        TrainConfig(loss="l3")
    with pytest.raises(ValueError, match="amp must be"):
        TrainConfig(amp="fp8")
    for decay in (0, 1, True, "0.9"):
        with pytest.raises(ValueError, match="ema_decay must be None"):
            TrainConfig(ema_decay=decay)
    with pytest.raises(ValueError, match="needs a CUDA device"):
        Trainer(model(), data(), config(amp="fp16", device="cpu"))
    with pytest.raises(ValueError, match="smaller than one batch"):
        Trainer(model(), data(), config(batch_size=64))
    frozen = model()
    frozen.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        Trainer(frozen, data(), config())


def hand_written_schedule(step, total_steps, warmup_steps, min_ratio):
    """The multiplier of the hand-written schedule torch's schedulers replaced (pip-adapter
    0.1.0's WarmupCosine)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


@pytest.mark.parametrize(
    ("total", "warmup", "min_ratio"),
    [(100, 10, 0.01), (2000, 100, 0.01), (7, 1, 0.0), (5, 0, 0.1), (6, 6, 0.01), (1, 1, 0.01)],
)
def test_warmup_then_cosine_schedule_equals_the_hand_written_one(total, warmup, min_ratio):
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([parameter], lr=5e-4)
    schedule = warmup_cosine(optimizer, total, warmup, min_ratio)
    for step in range(total + 1):
        expected = 5e-4 * hand_written_schedule(step, total, warmup, min_ratio)
        assert optimizer.param_groups[0]["lr"] == pytest.approx(expected, rel=1e-12, abs=1e-18)
        assert schedule.get_last_lr() == [optimizer.param_groups[0]["lr"]]
        optimizer.step()
        schedule.step()
    with pytest.raises(ValueError, match="0 <= warmup_steps <= total_steps"):
        warmup_cosine(optimizer, 10, 11)


@pytest.mark.slow
def test_torchrun_two_cpu_processes_keep_identical_weights(tmp_path, torchrun):
    torchrun(TESTS / "distributed_worker.py", tmp_path)
    first, second = (load_file(tmp_path / f"rank{r}.safetensors") for r in (0, 1))
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    untrained = model().state_dict()
    assert any(not torch.equal(first[k], untrained[k]) for k in first)


def test_bf16_autocast_trains(tmp_path):
    net = model()
    net.freeze_backbone()
    before = [p.clone() for p in net.pip_units.parameters()]
    Trainer(net, data(), config(steps=2, amp="bf16", device="cpu"), out_dir=tmp_path).fit()
    assert all(p.dtype == torch.float32 for p in net.parameters())  # weights stay float32
    changed = zip(before, net.pip_units.parameters(), strict=True)
    assert any(not torch.equal(a, b) for a, b in changed)
