"""benchmarks/transfer.py's training options (seed, milder blur, loss, moving average): they
change what they name, reach the trainer, and enter the cache key only when set (the results
cached before them stay valid)."""

import argparse
import dataclasses
import importlib.util
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import transfer  # benchmarks/ is not a package: found through the path above

from pip_adapter.recipes import ADAPTER_FFN_RANK


def args(seed: int = 0) -> argparse.Namespace:
    return argparse.Namespace(seed=seed, patch_size=32)


def first_items(dataset, count: int = 5) -> list[torch.Tensor]:
    return [dataset[index][0] for index in range(count)]


def test_a_second_seed_changes_the_training_data_and_nothing_else():
    base = transfer.VARIANTS["pip"]
    second = transfer.VARIANTS["pip_seed1"]
    assert base.recipe() == {}  # the cache keys of seed-0 results stay as they were
    assert second.recipe() == {"train_seed": 1}
    assert dataclasses.replace(second, label=base.label, group=base.group, train_seed=None) == base
    assert (base.seed(args()), second.seed(args())) == (0, 1)

    seed0, seed1 = (transfer.training_set(args(), v) for v in (base, second))
    again = transfer.training_set(args(), base)
    assert all(map(torch.equal, first_items(seed0), first_items(again)))
    assert not all(map(torch.equal, first_items(seed0), first_items(seed1)))


def test_milder_blur_changes_the_blurred_training_patches_only():
    base = transfer.VARIANTS["pip_psnr_context"]
    milder = transfer.VARIANTS["pip_psnr_context_blur3"]
    assert milder.recipe() == {**base.recipe(), "blur_from": 3.0}
    default, mild = (transfer.training_set(args(), v) for v in (base, milder))
    blur = transfer.TASKS.index("blur")
    changed = {
        default[index][2]: not torch.equal(default[index][0], mild[index][0])
        for index in range(0, len(default), 16)
    }
    assert changed.pop(blur) and set(changed) == set(range(len(transfer.TASKS))) - {blur}
    assert not any(changed.values())


def test_the_loss_the_moving_average_and_the_recomputation_reach_the_trainer():
    import pip_adapter as pa
    from pip_adapter.backbones import build_backbone

    options = argparse.Namespace(seed=0, patch_size=32, batch_size=2, device="cpu")
    for name, choice in (
        ("pip_relative", {"loss": "relative_l1"}),
        ("pip_ema", {"ema_decay": 0.999}),
        ("pip_units_kept", {"recompute_units": False}),
    ):
        variant = transfer.VARIANTS[name]
        assert variant.recipe() == choice  # in the cache key
        model = pa.inject_pip(build_backbone("nafnet", "tiny")).freeze_backbone()
        train_set = transfer.training_set(options, variant)
        trainer = transfer.make_trainer(variant, model, options, 2, None, train_set)
        assert {key: getattr(trainer.config, key) for key in choice} == choice
        assert model.recompute_units is (name != "pip_units_kept")  # frozen: on by default
    # the recipe's adapter default probed without recomputation too
    kept = transfer.VARIANTS[f"pip_ffn_rank{ADAPTER_FFN_RANK}_units_kept"]
    assert kept.recipe() == {"recompute_units": False}


def test_the_cache_key_leaves_out_settings_at_their_no_op_value():
    # a stride of 1 is the compact unit as it ran before the option: the cached results hold
    config = {"design": "compact", "size_multiple": 1, "feature_ffn_stride": 1, "heads": None}
    config["output_strength"] = {}  # none set: full strength, as before strengths existed
    assert transfer.essential(config) == {"design": "compact", "size_multiple": 1}
    assert transfer.essential({"feature_ffn_stride": 2}) == {"feature_ffn_stride": 2}
    # nor does the feed-forward shared by every degradation, as before its updates existed
    assert transfer.essential({"degradation_ffn_rank": 0}) == {}
    assert transfer.essential({"degradation_ffn_rank": 32}) == {"degradation_ffn_rank": 32}


def test_frozen_pip_variants_keep_their_adapter_for_fitting_strengths():
    import pip_adapter as pa
    from pip_adapter.backbones import build_backbone
    from pip_adapter.baselines import PromptIRBlock

    frozen = pa.inject_pip(build_backbone("nafnet", "tiny")).freeze_backbone()
    assert transfer.saves_adapter(frozen)
    assert not transfer.saves_adapter(pa.inject_pip(build_backbone("nafnet", "tiny")))  # full
    assert not transfer.saves_adapter(build_backbone("nafnet", "tiny"))
    units = [PromptIRBlock(unit.channels, 5, 8, 4) for unit in frozen.pip_units.values()]
    hosted = pa.PIPModel(frozen.backbone, frozen.plan, units, frozen.config)
    assert not transfer.saves_adapter(hosted)  # save_adapter stores PromptInPrompt units only


def test_fitted_strengths_are_cached_per_adapter(tmp_path):
    import output_strength
    from digests import files_digest

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter.safetensors").write_bytes(b"first")
    calls = []

    def measure():
        calls.append(1)
        return {"strengths": {"blur": 0.5}}

    def fitted():
        key = {"adapter": files_digest(adapter)}
        return output_strength.cached(tmp_path / "strength.json", key, measure)

    assert fitted() == fitted() == {"strengths": {"blur": 0.5}}
    assert len(calls) == 1  # measured once, then read back
    (adapter / "adapter.safetensors").write_bytes(b"retrained")
    fitted()
    assert len(calls) == 2  # another adapter: measured again


NEEDS_PEFT = pytest.mark.skipif(
    importlib.util.find_spec("peft") is None, reason="the LoRA baselines need peft"
)
KEPT_AS = {
    "full_low": "weights.safetensors",
    "pip": "adapter",
    "lora": "lora",
    "lora_default_size": "lora",
    "lora_per_degradation": "lora",
    "promptir": "units.safetensors",
    "pip_ffn_rank32": "adapter",  # the degradations' own feed-forward updates in the adapter
}


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=NEEDS_PEFT) if "lora" in n else n for n in KEPT_AS],
)
def test_every_trained_variant_is_rebuilt_from_what_it_keeps(tmp_path, name):
    from pip_adapter.backbones import build_backbone

    checkpoint = tmp_path / "tiny.pth"
    torch.save({"params": build_backbone("nafnet", "tiny").state_dict()}, checkpoint)
    options = argparse.Namespace(runs=tmp_path, checkpoint=checkpoint, native=("noise",))
    ctx = transfer.Context(checkpoint, options.native)
    x, labels = torch.rand(5, 3, 16, 16), list(transfer.TASKS)
    torch.manual_seed(1)
    model = transfer.VARIANTS[name].build(ctx)
    with torch.no_grad():  # as if trained: every trainable tensor moved
        for param in model.parameters():
            if param.requires_grad:
                param.add_(0.01 * torch.randn_like(param))
    assert transfer.keep_weights(model, tmp_path / name).name == KEPT_AS[name]
    labelled = transfer.VARIANTS[name].labelled
    call = (lambda m: m(x, degradation=labels)) if labelled else (lambda m: m(x))
    torch.manual_seed(2)  # another initialisation: only the kept tensors make them equal
    again = transfer.load_trained(name, options)
    with torch.no_grad():
        assert torch.equal(call(model.eval()), call(again))
    assert transfer.load_trained("pip_seed1", options) is None  # nothing kept


def test_every_variant_is_blended_as_pip_is():
    import output_strength
    from backbones import train_conditioning

    import pip_adapter as pa
    from pip_adapter.backbones import build_backbone
    from pip_adapter.training import calibrate_output_strength, fit_output_strengths

    generator = torch.Generator().manual_seed(0)
    degraded = [torch.rand(3, 16, 16, generator=generator) for _ in range(4)]
    clean = [x.flip(-1) for x in degraded]
    pairs = argparse.Namespace(
        degraded=degraded, clean=clean, labels=["rain", "rain", "blur", "haze"]
    )
    pip = pa.inject_pip(build_backbone("nafnet", "tiny")).freeze_backbone()
    train_conditioning(pip)
    pip.eval()
    for objective in ("mse", "psnr"):
        groups = output_strength.restorations(pip, pairs, labelled=True)
        strengths = fit_output_strengths(groups, objective)
        assert strengths.keys() == {"rain", "blur", "haze"}
        blended = output_strength.Blended(pip, strengths)  # around the network at full strength
        with torch.no_grad():
            outputs = [
                blended(x[None], name) for x, name in zip(degraded, pairs.labels, strict=True)
            ]
        calibrate_output_strength(pip, degraded, clean, pairs.labels, objective=objective)
        assert dict(pip.config.output_strength) == {k: v for k, v in strengths.items() if v < 1}
        with torch.no_grad():  # what the page reports for PIP is what the library gives
            for x, name, output in zip(degraded, pairs.labels, outputs, strict=True):
                assert torch.equal(output, pip(x[None], degradation=name))
        pip.config = pip.config.replace(output_strength={})
    # a blind network: one strength for every image, however it is labelled
    plain = build_backbone("nafnet", "tiny").eval()
    groups = output_strength.restorations(plain, pairs, labelled=False)
    assert list(groups) == [output_strength.ALL] and len(groups[output_strength.ALL]) == 4
    (strength,) = fit_output_strengths(groups).values()
    blended = output_strength.Blended(plain, {output_strength.ALL: strength})
    with torch.no_grad():
        x = degraded[0][None]
        assert torch.allclose(blended(x), x + strength * (plain(x) - x), atol=1e-6)


def reports(psnr: float, blur: float) -> dict:
    """Per-degradation reports on one set: every degradation at ``psnr``, blur at ``blur``,
    every degraded input at 20 dB."""
    cells = {t: {"psnr": psnr, "ssim": 0.5, "input_psnr": 20.0} for t in transfer.TASKS}
    cells["blur"] = {**cells["blur"], "psnr": blur}
    average = sum(c["psnr"] for c in cells.values()) / len(cells)
    return {**cells, "average": {"psnr": average, "ssim": 0.5, "input_psnr": 20.0}}


@NEEDS_PEFT
def test_each_equal_size_lora_has_the_rank_closest_to_its_adapter_s_count(tmp_path):
    from pip_adapter.backbones import build_backbone

    checkpoint = tmp_path / "tiny.pth"
    torch.save({"params": build_backbone("nafnet", "tiny").state_dict()}, checkpoint)
    ctx = transfer.Context(checkpoint, ("noise",))
    ranks = {}
    for lora, adapter in (("lora", "pip"), ("lora_default_size", transfer.ADAPTER_DEFAULT)):
        model = transfer.VARIANTS[lora].build(ctx)
        ranks[lora] = model.peft_config["default"].r
        step = transfer.trainable(model) // ranks[lora]  # trainable parameters per rank
        size = transfer.trainable(transfer.VARIANTS[adapter].build(ctx))
        assert abs(transfer.trainable(model) - size) <= step / 2  # no other rank is closer
    # the adapter default is larger than the shared units: its LoRA has the larger rank
    assert ranks["lora_default_size"] > ranks["lora"]


def test_the_adapter_default_s_goals_compare_it_with_the_lora_of_its_size():
    sets = ["held-out photos"]
    results = cpu_record(22.0, 23.0, "AMD EPYC (2 cores)")["results"]
    entry = results["pip"]
    psnr = {"lora": 22.0, transfer.ADAPTER_DEFAULT: 24.0, "lora_default_size": 23.5}
    psnr |= {f"{transfer.ADAPTER_DEFAULT}_units_kept": 24.0, "lora_per_degradation": 25.0}
    for name, value in psnr.items():
        results[name] = {**entry, "reports": {sets[0]: reports(value, 20.0)}}
    lines = transfer.goals(results, {}, sets[0])
    # the default trained without recomputation is the default, not another rank tried
    assert not [line for line in lines if "units not recomputed vs" in line]
    # averages: four degradations at the value, blur at 20
    assert "- PIP vs LoRA (the shared units' size): +0.80 dB (goal ≥ +0.50): met." in lines
    equal = "  - PIP vs LoRA (the adapter default's size): +0.40 dB (goal ≥ +0.50): **not met**."
    assert equal in lines
    del results["lora_default_size"]
    equal = "  - PIP vs LoRA (the adapter default's size): not measured (not run: `--variants "
    assert equal + "lora_default_size`)." in transfer.goals(results, {}, sets[0])


def test_the_strength_section_measures_every_kept_variant_each_way():
    sets = ["held-out photos"]
    names = ("pretrained", "full_low", "pip", "pip_seed1", "lora", "lora_per_degradation")
    results = {n: {"reports": {sets[0]: reports(22.0, 19.0)}} for n in names}
    results["pretrained"]["reports"][sets[0]]["noise"]["psnr"] = 22.0
    strengths = {
        name: {
            "full": {sets[0]: reports(full, 19.5)},
            "mse": {"strengths": {"all": 0.9}, "reports": {sets[0]: reports(full + 0.1, 19.9)}},
            "psnr": {"strengths": {"all": 0.8}, "reports": {sets[0]: reports(full + 0.1, 20.1)}},
        }
        for name, full in (("full_low", 22.0), ("pip", 23.0), ("pip_seed1", 23.2))
    }
    for name in ("pip", "pip_seed1"):
        for objective in ("mse", "psnr"):
            strengths[name][objective]["strengths"] = dict.fromkeys(transfer.TASKS, 0.5)
    page = "\n".join(transfer.strength_section(results, strengths, sets))
    assert "PIP, backbone frozen (0 and 1)" in page
    assert "| LoRA" not in page and "PIP vs LoRA" not in page  # only variants with kept weights
    assert "| full fine-tuning, lr 0.0002 | 0 | least squares (blind: one for all) | 0.90 |" in page
    assert "| PIP, backbone frozen | mean | per-image PSNR | 23.20 |" in page
    # PIP's means over seeds 0 and 1 against full fine-tuning's seed 0, each way
    versus = "| PIP vs full fine-tuning, average (goal ≥ +0.50) | +0.880 met | +0.880 met; "
    assert versus + "+1.040 met against it at full strength | +0.880 met; +1.080 met" in page
    # blur: under its input at full strength and by least squares, above it by PSNR
    blur = "| PIP's blur vs its degraded input (goal ≥ 0) | -0.500 **not met** | -0.100 **not met"
    assert blur + "** | +0.100 met |" in page
    note = " ".join(transfer.headline_note(results, strengths, sets, "psnr"))
    assert "at fitted output strength** (per-image PSNR" in note
    wanted = "held-out photos: PIP 22.58 dB (22.38 at full strength) against 21.70 for full "
    wanted += "fine-tuning, lr 0.0002 (+0.88; 21.50 at full strength); blur +0.100 dB"
    assert wanted in note


def test_a_retraining_keeps_the_result_it_replaces_only_for_the_same_settings(tmp_path):
    path, previous = tmp_path / "result.json", tmp_path / "previous.json"
    path.write_text(json.dumps({"settings": {"lr": 1}, "results": {"reports": "old"}}))
    transfer.keep_previous(path, {"lr": 1})
    assert json.loads(previous.read_text())["results"] == {"reports": "old"}
    assert not path.exists()  # the new result is written there next
    path.write_text(json.dumps({"settings": {"lr": 2}, "results": {"reports": "other"}}))
    transfer.keep_previous(path, {"lr": 1})  # made with other settings: nothing to compare
    assert not previous.exists() and path.exists()


def run_main(monkeypatch, *options: str) -> None:
    monkeypatch.setattr(sys, "argv", ["transfer.py", *options])
    transfer.main()


def test_an_unknown_or_missing_device_is_refused_before_anything_is_written(
    tmp_path, monkeypatch, capsys
):
    runs = tmp_path / "runs"
    with pytest.raises(SystemExit) as refused:
        run_main(monkeypatch, "--device", "tpu", "--runs", str(runs))
    assert refused.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]  # quoting varies by Python
    assert "--device: invalid choice: 'tpu'" in error and error.replace("'", "").endswith(
        "(choose from cpu, cuda)"
    )
    with pytest.raises(SystemExit):
        run_main(monkeypatch, "--deadline", "30", "--runs", str(runs))
    assert "--deadline must be more than 45 s, got 30" in capsys.readouterr().err
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit):
            run_main(monkeypatch, "--device", "cuda", "--runs", str(runs))
        error = capsys.readouterr().err.strip().splitlines()[-1]
        assert error.endswith(
            "--device 'cuda' is not available on this machine: no CUDA GPU is available (use cpu)"
        )
    assert not runs.exists()


def test_each_device_keeps_its_runs_and_page_and_the_cpu_keys_stay_as_they_were(tmp_path):
    from pip_adapter.backbones import build_backbone

    assert transfer.RUNS_ON["cpu"] == transfer.RUNS and transfer.RUNS_ON["cuda"] != transfer.RUNS
    assert transfer.PAGE_ON["cpu"].name == "transfer.md"
    assert transfer.PAGE_ON["cuda"].name == "transfer_cuda.md"
    checkpoint = tmp_path / "tiny.pth"
    torch.save({"params": build_backbone("nafnet", "tiny").state_dict()}, checkpoint)
    keys = {}
    for device, pretrain_steps, quick in (
        ("cpu", None, False),
        ("cuda", None, False),
        ("cpu", 3, False),
        ("cpu", None, True),
    ):
        options = argparse.Namespace(
            steps=None,
            batch_size=8,
            patch_size=None,
            seed=0,
            threads=1,
            runs=tmp_path,
            checkpoint=checkpoint,
            native=("noise",),
            device=device,
            pretrain_steps=pretrain_steps,
            quick=quick,
            variants=None,
            settings={},
        )
        transfer.fidelity(options)
        keys[device, pretrain_steps, quick] = transfer.settings(options, "pip")
    cpu = keys["cpu", None, False]
    assert "device" not in cpu and "pretrain_steps" not in cpu  # results cached before: valid
    assert cpu["steps"] == 600 and cpu["patch_size"] == 64
    assert keys["cuda", None, False] == {**cpu, "device": "cuda"}
    assert keys["cpu", 3, False] == {**cpu, "pretrain_steps": 3}
    quick = {"steps": 300, "patch_size": 32, "pretrain_steps": 750, "quick": True}
    assert keys["cpu", None, True] == {**cpu, **quick, "pretrain_patch": 32}


def test_quick_trains_less_in_its_own_folder_and_the_full_run_s_pretraining_stays_cached(
    tmp_path, monkeypatch, capsys
):
    def resolved(**given) -> argparse.Namespace:
        options = dict(steps=None, patch_size=None, pretrain_steps=None, device="cpu", runs=None)
        options = argparse.Namespace(**(options | {"variants": None} | given))
        transfer.fidelity(options)
        return options

    quick, full = resolved(quick=True), resolved(quick=False)
    assert (quick.steps, quick.patch_size, quick.pretrain_steps) == (300, 32, 750)
    assert (full.steps, full.patch_size, full.pretrain_steps) == (600, 64, 1500)
    assert (quick.pretrain_patch, full.pretrain_patch) == (32, 64)  # its pretraining's too
    # --quick alone trains the adapter default and its goals' baselines; the full run its headline
    assert quick.variants == ",".join(transfer.QUICK_VARIANTS) and full.variants == "headline"
    assert resolved(quick=True, variants="pip").variants == "pip"  # what the command names
    assert full.runs == transfer.RUNS and quick.runs == transfer.RUNS.with_name("transfer_quick")
    assert transfer.quick_page().name == "transfer_quick.md"
    with pytest.raises(SystemExit) as refused:  # the CPU check only, before anything is written
        run_main(monkeypatch, "--quick", "--device", "cuda", "--runs", str(tmp_path / "gpu"))
    assert refused.value.code == 2 and not (tmp_path / "gpu").exists()
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.endswith("--quick is the 2-core CPU check: drop --device cuda or --quick")
    assert resolved(quick=True, steps=20, runs=tmp_path).steps == 20  # what the command sets
    # the full run's kept pretrained network (its stamp as written before --quick existed) is
    # reused, not trained again
    folder = tmp_path / "pretrained"
    folder.mkdir()
    (folder / "nafnet32_noise.pth").write_bytes(b"kept")
    stamp = {"arch": transfer.PRETRAIN_ARCH, **transfer.PRETRAIN}
    (folder / "settings.json").write_text(json.dumps(stamp))
    assert transfer.pretrained_checkpoint(tmp_path) == folder / "nafnet32_noise.pth"
    assert (folder / "nafnet32_noise.pth").read_bytes() == b"kept"


def test_a_gpu_run_s_record_writes_its_own_page_with_three_seeds(tmp_path, monkeypatch):
    sets = ["held-out photos"]
    seeded = {"pip": 23.0, "full_low": 22.0, "lora_per_degradation": 23.3, "pip_ffn_rank32": 23.6}
    pretrained = {"trainable": 0, "total": 1000, "storage": 0, "train_seconds": 0.0}
    results = {"pretrained": {**pretrained, "reports": {sets[0]: reports(22.0, 19.0)}}}
    for name, psnr in seeded.items():
        for seed, run in enumerate((name, f"{name}_seed1", f"{name}_seed2")):
            results[run] = {
                "reports": {sets[0]: reports(psnr + 0.3 * seed, 20.0)},
                "trainable": 40 if "full" not in name else 1000,
                "total": 1000,
                "storage": 160,
                "train_seconds": 30.0 + seed,
            }
    costs = {
        n: {"seconds_per_step": 0.02, "peak_mib": 100.0}
        for n in ("pip", "full_low", "pip_ffn_rank32")
    }
    record = {
        "command": "python benchmarks/transfer.py --device cuda",
        "date": "2026-11-28",
        "device": "cuda",
        "machine": "NVIDIA H200, torch 2.11.0+cu130, peft 0.17.1, 16 CPU cores",
        "steps": 600,
        "batch_size": 8,
        "patch_size": 64,
        "probe_steps": 8,
        "pretrain_steps": 1500,
        "jobs": 14,
        "pretrain_seconds": 40.0,
        "walls": {"pip": 55.4, "pip_seed1": 61.0},
        "results": results,
        "costs": costs,
        "strengths": {},
        "moved": {},
    }
    file = tmp_path / "record.json"
    file.write_text(json.dumps(record))
    pages = {"cpu": tmp_path / "transfer.md", "cuda": tmp_path / "transfer_cuda.md"}
    monkeypatch.setattr(transfer, "PAGE_ON", pages)
    run_main(monkeypatch, "--from-record", str(file))
    assert not pages["cpu"].exists()
    page = pages["cuda"].read_text()
    assert "NVIDIA H200, torch 2.11.0+cu130, peft 0.17.1" in page
    shared = 'The rows "PIP, backbone frozen" are units with shared feed-forwards '
    assert shared + "(`degradation_ffn_rank=0`" in page
    # the adapter default's rows are not in this record: the note says where they are
    default = f"own rank-{ADAPTER_FFN_RANK} update (`pip_adapter.recipes.ADAPTER_FFN_RANK`): "
    default += f'the rows "each degradation\'s own feed-forward update (rank {ADAPTER_FFN_RANK})"'
    assert default + " (on the CPU page, transfer.md)." in page
    not_run = "Not run yet (the time of this run ran out): full fine-tuning, lr 0.001; PIP + "
    not_run += "backbone fine-tuned; LoRA (the shared units' size); LoRA (the adapter default's "
    assert not_run + "size); PromptIR-style block" in page
    # averages of seeds 0, 1, 2 (four degradations at 23.0, 23.3, 23.6, blur at 20) and their mean
    assert "| PIP, backbone frozen | 2 | 22.88 | 20.00 |" in page
    assert "| PIP, backbone frozen | mean | **22.64** | **20.00** |" in page
    goal = "- PIP vs one LoRA per degradation: -0.24 dB (goal > 0): **not met**; over the 3 "
    assert goal + "training seeds (means): -0.24 dB." in page
    assert "| pip_seed1 | 61 s | 31 s |" in page
    assert "| PIP, each degradation's own feed-forward update (rank 32) | 23.60" in page
    # a tried variant with a cost probe: in the cost table, as its note on the page says
    cost_row = "| PIP, each degradation's own feed-forward update (rank 32) | 0K (4.0%) | 100 MiB |"
    assert cost_row in page.split("## Cost")[1].split("## Goals")[0]
    assert "its trainable count is in the cost table" in page


@pytest.mark.parametrize("device, other", [("cpu", "cuda"), ("cuda", "cpu")])
def test_a_page_is_what_its_committed_record_gives(device, other, tmp_path, monkeypatch):
    docs = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"
    pages = {"cpu": tmp_path / "transfer.md", "cuda": tmp_path / "transfer_cuda.md"}
    monkeypatch.setattr(transfer, "PAGE_ON", pages)
    # the other device's page as committed: the CPU page links the GPU page when it exists,
    # and the quick check's page when its record exists
    pages[other].write_text((docs / pages[other].name).read_text())
    if device == "cpu":
        quick = docs / "transfer_quick.json"
        (tmp_path / quick.name).write_text(quick.read_text())
    written = pages[other].stat().st_mtime_ns
    run_main(monkeypatch, "--from-record", str(docs / pages[device].with_suffix(".json").name))
    assert pages[device].read_text() == (docs / pages[device].name).read_text()
    assert pages[other].stat().st_mtime_ns == written  # only its own page is written


def test_the_quick_page_is_what_its_committed_record_gives(tmp_path, monkeypatch):
    docs = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"
    pages = {"cpu": tmp_path / "transfer.md", "cuda": tmp_path / "transfer_cuda.md"}
    monkeypatch.setattr(transfer, "PAGE_ON", pages)
    pages["cuda"].write_text((docs / pages["cuda"].name).read_text())  # the GPU page's link
    tried = "transfer_quick_tried.json"  # the quick settings tried, which the page lists
    (tmp_path / tried).write_text((docs / tried).read_text())
    run_main(monkeypatch, "--from-record", str(docs / "transfer_quick.json"))
    quick = tmp_path / "transfer_quick.md"
    assert quick.read_text() == (docs / "transfer_quick.md").read_text()
    assert not pages["cpu"].exists()
    assert (tmp_path / "transfer_quick.json").read_text() == (
        docs / "transfer_quick.json"
    ).read_text()


def test_without_a_deadline_the_first_failure_stops_the_running_trainings(monkeypatch, capsys):
    started = {}

    def start_child(args, flag, name):  # real processes: one fails at once, one would run on
        code = "import sys; sys.exit(3)" if name == "fails" else "import time; time.sleep(60)"
        started[name] = subprocess.Popen([sys.executable, "-c", code])
        return started[name]

    monkeypatch.setattr(transfer, "start_child", start_child)
    options = argparse.Namespace(jobs=2, end_at=None)
    clock = time.monotonic()
    with pytest.raises(subprocess.CalledProcessError) as failed:
        transfer.train_all(options, ["runs_on", "fails", "not_started"])
    assert failed.value.returncode == 3
    assert started["runs_on"].returncode == -signal.SIGTERM and time.monotonic() - clock < 30
    assert "not_started" not in started
    assert "runs_on: stopped after fails failed" in capsys.readouterr().out


def cpu_record(pretrained_psnr: float, pip_psnr: float, machine: str) -> dict:
    """A CPU run's record: the pretrained network (``pretrained_psnr`` tells networks apart)
    and PIP."""
    sets = ["held-out photos"]
    entry = {"trainable": 40, "total": 1000, "storage": 160, "train_seconds": 30.0}
    results = {
        "pretrained": {**entry, "trainable": 0, "reports": {sets[0]: reports(pretrained_psnr, 19)}},
        "pip": {**entry, "reports": {sets[0]: reports(pip_psnr, 20.0)}},
    }
    return {
        "command": "python benchmarks/transfer.py",
        "date": "2026-11-28",
        "device": "cpu",
        "machine": machine,
        **{"steps": 600, "batch_size": 8, "patch_size": 64, "probe_steps": 8},
        **{"pretrain_steps": 1500, "jobs": 2, "pretrain_seconds": 3600.0, "walls": {}},
        **{"results": results, "costs": {}, "strengths": {}, "moved": {}},
    }


def goal_run(psnr: dict[str, tuple[float, float]], machine: str) -> dict:
    """A CPU run's record with the adapter default and the variants its goals compare with
    (``psnr``: each one's degradations and blur, every input at 20 dB), its costs probed."""
    record = cpu_record(*psnr.pop("pretrained"), machine)
    entry = record["results"].pop("pip")
    for name, (value, blur) in psnr.items():
        trainable = 1000 if name == "full_low" else 40
        report = {"held-out photos": reports(value, blur)}
        record["results"][name] = {**entry, "trainable": trainable, "reports": report}
    costs = {"full_low": (500.0, 1.8), ADAPTER_DEFAULT: (200.0, 1.7)}
    record["costs"] = {n: {"peak_mib": m, "seconds_per_step": t} for n, (m, t) in costs.items()}
    record["variants"] = list(record["results"])
    return record


ADAPTER_DEFAULT = transfer.ADAPTER_DEFAULT


def test_quick_trains_what_every_goal_of_the_adapter_default_compares_with():
    psnr = {"pretrained": (22.0, 19.0)} | dict.fromkeys(transfer.QUICK_VARIANTS, (23.0, 20.0))
    record = goal_run(psnr, "AMD EPYC (2 cores)")
    results, costs = record["results"], record["costs"]

    def unmeasured(results: dict) -> list[str]:
        values = transfer.goal_values(results, costs, "held-out photos", ADAPTER_DEFAULT)
        return [goal for goal, (value, _) in values.items() if value is None]

    assert ADAPTER_DEFAULT in transfer.QUICK_VARIANTS and unmeasured(results) == []
    for name in set(transfer.QUICK_VARIANTS) - {ADAPTER_DEFAULT}:  # none of them is spare
        assert unmeasured({n: r for n, r in results.items() if n != name}), name


def quick_beside_full(tmp_path: Path, monkeypatch) -> tuple[dict, dict]:
    """A quick run's record (32²/300, blur 0.1 dB below its input) and the full run on the
    same machine (blur 0.1 dB above it), the CPU page's record and pages put in ``tmp_path``."""
    full = goal_run(
        {
            "pretrained": (22.0, 19.0),
            ADAPTER_DEFAULT: (23.9, 20.1),
            "full_low": (22.5, 20.0),
            "lora_default_size": (21.0, 19.5),
            "lora_per_degradation": (23.8, 20.2),
        },
        "AMD EPYC (2 cores)",
    )
    quick = goal_run(
        {
            "pretrained": (20.0, 19.0),
            ADAPTER_DEFAULT: (21.0, 19.9),  # blur 0.1 dB below its input: that verdict flips
            "full_low": (19.8, 19.5),
            "lora_default_size": (19.0, 19.0),
            "lora_per_degradation": (21.1, 20.0),  # below: not a check at this fidelity
        },
        "AMD EPYC (2 cores)",
    )
    cpu = {"pretrained": 60.0, "lora_per_degradation": 600.0} | dict.fromkeys(
        ["full_low", "lora_default_size", ADAPTER_DEFAULT], 300.0
    )
    for name, seconds in cpu.items():
        quick["results"][name]["cpu_seconds"] = seconds
    for cost in quick["costs"].values():
        cost["cpu_seconds"] = 30.0
    order = ["pretrained", "lora_per_degradation", ADAPTER_DEFAULT, "full_low", "lora_default_size"]
    probes = order[1:]
    quick |= {"quick": True, "pretrain_cpu_seconds": 600.0, "cpu_seconds": 2400.0}
    quick |= {"wall_seconds": 3600.0, "variants": order, "patch_size": 32, "steps": 300}
    quick["pretrain_steps"] = 750
    quick["trained_here"] = {"pretraining": True, "variants": order, "probes": probes}
    book = tmp_path / "transfer.json"
    book.write_text(json.dumps({"imported": [], "runs": [full]}))
    pages = {"cpu": tmp_path / "transfer.md", "cuda": tmp_path / "transfer_cuda.md"}
    monkeypatch.setattr(transfer, "PAGE_ON", pages)
    monkeypatch.setattr(transfer, "CPU_RECORD", book)
    return quick, full


def test_a_quick_run_s_page_shows_its_verdicts_beside_the_full_run_s_and_its_time(
    tmp_path, monkeypatch
):
    quick, _ = quick_beside_full(tmp_path, monkeypatch)
    book, pages = transfer.CPU_RECORD, transfer.PAGE_ON
    committed = book.read_text()
    page = transfer.publish(quick)
    # its own page and record; the full run's record and page untouched
    quick_page = tmp_path / "transfer_quick.md"
    assert quick_page.read_text() == page and not pages["cpu"].exists()
    assert book.read_text() == committed
    assert json.loads(quick_page.with_suffix(".json").read_text()) == quick
    assert "**the headline numbers are [transfer.md](transfer.md)'s**" in page
    intro = "(750 pretraining steps on 32² patches and 300 fine-tuning steps on 32²; the full "
    assert intro + "run: 1500 on 64² and 600 on 64²; " in page  # pretrain_patch: not recorded
    # 40 thread-minutes; quietly: pretraining 600 s, then 60 + 300 + 300 s on one process
    # beside 600 + 300 s on the other (900 s), the two probes kept 60 s, the parent the rest
    # (2400 - 600 - 1560 - 60 = 180 s): 29 min
    time_line = "**40 thread-minutes** (pretraining 10, variants 26, probes 1, parent 3: "
    assert time_line in page and "wall time 60 min" in page and "about **29 min**." in page
    assert "This run was fresh: it pretrained and trained every variant itself." in page
    # a pretrained network an earlier run trained with the same settings counts with its CPU time
    reused = {**quick, "pretrain_patch": 64, "cpu_seconds": 1800.0, "pretrain_date": "2026-11-28"}
    reused["trained_here"] = {**quick["trained_here"], "pretraining": False}
    assert transfer.quick_seconds(reused) == transfer.quick_seconds(quick)
    assert "pretraining steps on 64² patches and 300" in transfer.render_quick_page(reused)
    again = transfer.quick_time(reused)[0]
    earlier = "This run was fresh but for its pretrained network, which an earlier run trained "
    assert earlier + "with the same settings on 2026-11-28 (counted below" in again
    assert time_line in again and "about **29 min**." in again
    # without the pretraining's CPU time (no time.json) it is not counted, and the page says so
    unknown = transfer.quick_time({**reused, "pretrain_cpu_seconds": None})[0]
    assert "This run was NOT fresh: its pretrained network was cached, its CPU time not " in unknown
    assert "(pretraining 0, variants 26, probes 1, parent 3: " in unknown
    rows = {
        line.split(" | ")[0][2:]: line.split(" | ")[2:]
        for line in page.split("## Goals beside the full run")[1].splitlines()
        if line.startswith("| ") and ("held-out photos" in line or "| any |" in line)
    }
    assert rows["≥ +0.50 dB over full fine-tuning"] == ["+1.04: met", "+1.14: met", "yes |"]
    closest = rows["no degradation below its input (closest, dB)"]  # one seed cannot settle it
    assert closest[:2] == ["-0.10: **not met**", "+0.10: met"]
    assert closest[2].startswith("not counted: a thin margin at full fidelity, which no quick")
    assert rows["pretrained task ≥ −0.10 dB"][2] == "yes |"
    assert rows["≥ +0.50 dB over the LoRA of equal size"][2] == "yes |"
    assert rows["above the per-degradation LoRAs"][0] == "-0.10: **not met**"
    assert rows["above the per-degradation LoRAs"][2].startswith("not counted: ")
    assert rows["peak memory ≤ 60% of full fine-tuning's (%)"] == ["40: met", "40: met", "yes |"]
    assert rows["time per step ≤ 1.00×"][2].startswith("not counted: ")
    assert rows["time per step ≤ 1.00×"][2].endswith(
        "the time of a step at 32² is not the time at 64² |"
    )
    assert "\nEvery goal this check counts has the full run's verdict.\n" in page
    # no quick setting tried and kept (--tried-record) beside this page
    assert "## Other quick settings tried\n\nNone recorded.\n" in page
    # the run's own tables follow as sections; --from-record writes the same page again
    assert "\n### held-out photos\n" in page and "\n## held-out photos" not in page
    quick_page.unlink()
    run_main(monkeypatch, "--from-record", str(quick_page.with_suffix(".json")))
    assert quick_page.read_text() == page
    # where a counted verdict differs, the page names it
    lora = quick["results"]["lora_default_size"]["reports"]["held-out photos"]["average"]
    lora["psnr"] = 30.0
    differing = transfer.render_quick_page(quick)
    differ = "Verdicts that differ: ≥ +0.50 dB over the LoRA of equal size (held-out photos). "
    assert differ + "For these goals this check does not stand in for the full run" in differing
    # a variant a deadline stopped: no result, counted nowhere, named
    del quick["results"]["lora_default_size"]
    cut = transfer.quick_time(quick)[0]
    assert "NOT fresh: it reused cached results or did not finish" in cut
    assert "; stopped before its end: lora_default_size)" in cut
    assert transfer.quick_seconds(quick)["variants"] == 1260.0


def test_a_cpu_run_adds_its_section_or_replaces_its_own_network_s(tmp_path, monkeypatch):
    pages = {"cpu": tmp_path / "transfer.md", "cuda": tmp_path / "transfer_cuda.md"}
    book = tmp_path / "transfer.json"
    imported = {"title": "Intel", "source": "From the page.", "page": "Intel text.\n\n## Cost\n"}
    book.write_text(json.dumps({"imported": [imported], "runs": []}))
    monkeypatch.setattr(transfer, "PAGE_ON", pages)
    monkeypatch.setattr(transfer, "CPU_RECORD", book)
    amd = cpu_record(22.0, 23.0, "AMD EPYC (2 cores)")
    for record in (amd, cpu_record(22.0, 23.5, "AMD EPYC (2 cores)")):  # the second replaces
        file = tmp_path / "record.json"
        file.write_text(json.dumps(record))
        run_main(monkeypatch, "--from-record", str(file))
    transfer.publish(cpu_record(22.5, 21.0, "Arm (4 cores)"))  # another pretrained network
    runs = json.loads(book.read_text())["runs"]
    assert [r["machine"] for r in runs] == ["AMD EPYC (2 cores)", "Arm (4 cores)"]
    page = pages["cpu"].read_text()
    assert page == transfer.render_cpu_page(json.loads(book.read_text()))
    intel, amd_part, arm_part = page.split("\n## ")[1:]
    assert intel == "Intel\n\nFrom the page.\n\nIntel text.\n\n### Cost\n"
    assert amd_part.startswith("2026-11-28: AMD EPYC (2 cores)\n")
    assert "\n### held-out photos\n" in amd_part and "\n# " not in page.split("\n", 1)[1]
    # each network's PIP against its own pretrained row only: 23.5 replaced 23.0
    assert "| PIP, backbone frozen | 23.50 / 0.500" in amd_part and "23.00 / 0.500 |" not in page
    assert "| PIP, backbone frozen | 21.00 / 0.500" in arm_part
    # a record that fails to render changes neither the record nor the page
    broken = cpu_record(23.0, 22.0, "Arm (4 cores)")
    del broken["steps"]
    before = (book.read_text(), page)
    with pytest.raises(KeyError):
        transfer.publish(broken)
    assert (book.read_text(), pages["cpu"].read_text()) == before


def test_a_run_of_named_variants_shows_the_rows_it_has_and_names_the_others(tmp_path, monkeypatch):
    # the AMD network's run: no PIP with shared units, no full fine-tuning, no cost probes
    record = cpu_record(22.0, 23.0, "AMD EPYC (2 cores)")
    results = record["results"]
    entry = results.pop("pip")
    psnr = {"lora_per_degradation": 23.8, "pip_ffn_rank32": 23.4, "pip_ffn_rank64": 23.9}
    psnr |= {"lora_per_degradation_seed1": 23.4, "pip_ffn_rank64_seed1": 23.5}
    for name, value in psnr.items():
        results[name] = {**entry, "reports": {"held-out photos": reports(value, 20.0)}}
    record["variants"] = ["pretrained", *psnr]
    fitted = {
        "strengths": dict.fromkeys(transfer.TASKS, 0.9),
        "reports": {"held-out photos": reports(23.9, 20.1)},
    }
    full = results["lora_per_degradation"]["reports"]
    record["strengths"] = {"lora_per_degradation": {"full": full, "mse": fitted, "psnr": fitted}}
    book = tmp_path / "transfer.json"
    book.write_text(json.dumps({"imported": [], "runs": []}))
    pages = {"cpu": tmp_path / "transfer.md", "cuda": tmp_path / "transfer_cuda.md"}
    monkeypatch.setattr(transfer, "PAGE_ON", pages)
    monkeypatch.setattr(transfer, "CPU_RECORD", book)
    page = transfer.publish(record)
    not_run = "Not run on this pretrained network (this run named other variants): full "
    not_run += "fine-tuning, lr 0.0002; full fine-tuning, lr 0.001; PIP, backbone frozen; PIP + "
    not_run += "backbone fine-tuned; LoRA (the shared units' size); LoRA (the adapter default's "
    not_run += "size); PromptIR-style block, frozen. The rows"
    compared = "This section compares: pretrained (noise only); one LoRA per degradation "
    compared += "(training seeds 0 and 1); PIP, each degradation's own feed-forward update "
    compared += "(rank 32) (training seed 0); PIP, each degradation's own feed-forward update "
    compared += "(rank 64) (training seeds 0 and 1)."
    assert not_run in page and compared in page and "Not run yet" not in page
    tried = page.split("### What was tried")[1]
    rows = [line.split(" | ")[0] for line in tried.splitlines() if line.startswith("| ")]
    rank = "| PIP, each degradation's own feed-forward update (rank "
    assert rows[:4] == ["| variant", "| ---", "| degraded input", "| one LoRA per degradation"]
    assert rows[4:] == [rank + "32)", rank + "64)"]
    # seed means: four degradations at the seed's value, blur at 20.0
    assert rank + "64) | mean | **22.96** | **20.00** |" in page
    assert "| one LoRA per degradation | mean | **22.88** | **20.00** |" in page
    costs = page.split("### Cost")[1].split("### Goals")[0]
    assert "This run probed no costs" in costs
    assert rank + "64) | 0K (4.0%) | n/a | n/a | 0 KiB |" in costs
    # the recipe's adapter default: each goal measured, or what a run needs for it
    default = [
        f"- {rank.removeprefix('| ')}{ADAPTER_FFN_RANK}) (the recipe's adapter default):",
        "  - PIP vs full fine-tuning: not measured (not run: `--variants full_low,full_high`).",
        "  - Trainable share: 4.0% (goal ≤ 5%): met.",
        "  - PIP vs LoRA (the adapter default's size): not measured (not run: `--variants "
        "lora_default_size`).",
        "  - PIP vs one LoRA per degradation: +0.08 dB (goal > 0): met; over both training "
        "seeds (means): +0.08 dB.",
        "  - Pretrained task (noise, with its label) vs the pretrained network: +1.90 dB "
        "(goal ≥ −0.10): met.",
        "  - Degradations below their degraded input: none: met.",
        "  - Peak training memory (goal ≤ 60% of full fine-tuning's) and time per step (goal "
        "≤ 1.00×): not measured here (no cost probes of both in this run; training_cost.md "
        "times the recipe's adapter default on the official NAFNet).",
        # the other rank tried, against the LoRAs
        f"- {rank.removeprefix('| ')}32) vs one LoRA per degradation: -0.32 dB (goal > 0): "
        "**not met**.",
    ]
    assert "\n".join(default) in page.split("### Goals")[1].split("### What was tried")[0]
    # the page's introduction names the section with the adapter default's rows
    section = '"2026-11-28: AMD EPYC (2 cores)"'
    assert f'(rank {ADAPTER_FFN_RANK})" in the section {section}.' in page
    assert "At fitted strength" not in page and "at fitted output strength" not in page
    assert "| one LoRA per degradation | 0 | least squares | 0.90 | 0.90 |" in page
    assert page == (tmp_path / "transfer.md").read_text()


def test_one_deadline_cuts_the_trainings_then_the_cost_probes(monkeypatch, capsys):
    started, probed = [], []
    monkeypatch.setattr(transfer, "start_child", lambda args, flag, name: started.append(name))
    monkeypatch.setattr(transfer, "child", lambda args, flag, name: probed.append(name))
    # past the trainings' end (the probes' reserve before the deadline), before the probes'
    now = time.monotonic()
    options = argparse.Namespace(jobs=2, device="cpu", end_at=now + transfer.PROBE_RESERVE - 1)
    assert transfer.train_all(options, ["pip", "lora"]) == {} and started == []
    transfer.probe_all(options, ["pip", "lora"], now)
    assert probed == ["pip", "lora"]
    options.end_at = time.monotonic() + transfer.PAGE_RESERVE - 1  # past the probes' end
    transfer.probe_all(options, ["full_low"], now)
    assert probed == ["pip", "lora"]
    out = capsys.readouterr().out
    assert "not started (the deadline): pip, lora" in out
    assert "cost probes stopped at the deadline, before full_low" in out


def test_seed_means_compare_only_the_training_seeds_both_variants_have():
    def run(average: float) -> dict:
        return {"reports": {"ood": {"average": {"psnr": average}}}}

    results = {
        "pip_ffn_rank64": run(24.0),
        "pip_ffn_rank64_seed1": run(24.2),
        "pip_ffn_rank64_seed2": run(23.0),  # a third seed the LoRAs did not reach
        "lora_per_degradation": run(23.9),
        "lora_per_degradation_seed1": run(24.1),
    }
    line = transfer.versus(results, "ood", "pip_ffn_rank64", "lora_per_degradation", "X", 0.0)
    both = "over both training seeds (means): +0.10 dB (the seeds both have: 0 and 1)."
    assert line.endswith(both)


def test_the_gpu_completion_script_probes_the_gpu_record_s_variants_and_needs_its_runs(tmp_path):
    """benchmarks/gpu_transfer.sh: it parses; the variants it names (probed first) are the
    committed GPU record's, so reused, not trained; without the last run's folder it stops
    before writing anything."""
    root = Path(__file__).resolve().parents[1]
    script = root / "benchmarks" / "gpu_transfer.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    first = re.search(r"^first=(\S+)$", script.read_text(), re.M).group(1).split(",")
    record = json.loads((root / "docs" / "benchmarks" / "transfer_cuda.json").read_text())
    assert set(record["variants"]) <= transfer.VARIANTS.keys()
    default = transfer.ADAPTER_DEFAULT
    assert {default, f"{default}_units_kept", "full_low"} == set(first) <= set(record["variants"])
    out = tmp_path / "out"
    ran = subprocess.run(
        ["bash", str(script), str(out)], cwd=tmp_path, capture_output=True, text=True
    )
    assert ran.returncode == 2
    assert "carry the last GPU run's runs folder" in ran.stderr
    assert not out.exists()


def test_a_quick_setting_tried_is_kept_from_its_record_and_the_page_says_why_blur_is_not_counted(
    tmp_path, monkeypatch, capsys
):
    # review 21 item 20: the tried list is rendered from each tried run's record, not typed
    quick, full = quick_beside_full(tmp_path, monkeypatch)
    seed = reports(23.9, 20.3)  # the full run's second training seed: blur +0.3 over its input
    full["results"][f"{ADAPTER_DEFAULT}_seed1"] = {"reports": {"held-out photos": seed}}
    transfer.CPU_RECORD.write_text(json.dumps({"imported": [], "runs": [full]}))
    transfer.publish(quick)  # the quick page's own record, which the tried list is rendered on
    tried = {}
    for label, steps, pretrained_blur in (("A", 750, 19.0), ("B", 1000, 19.5)):
        run = json.loads(json.dumps(quick)) | {"pretrain_steps": steps}
        run["results"]["pretrained"]["reports"]["held-out photos"]["blur"]["psnr"] = pretrained_blur
        tried[label] = tmp_path / f"{label}.json"
        tried[label].write_text(json.dumps(run))
        run_main(monkeypatch, "--tried-record", str(tried[label]), "--tried-label", label)
    kept = json.loads(transfer.tried_path().read_text())
    assert [entry["label"] for entry in kept] == ["A", "B"]
    assert kept[0]["blur"]["held-out photos"] == {
        "pretrained": -1.0,
        ADAPTER_DEFAULT: pytest.approx(-0.1),
    }
    assert kept[0]["minutes"] == {"total": 40.0, "pretraining": 10.0, "quiet": pytest.approx(29)}
    assert kept[0]["differ"] == [  # here the per-degradation LoRAs' verdict differs too
        "above the per-degradation LoRAs (held-out photos)",
        "no degradation below its input (closest, dB) (held-out photos)",
    ]
    page = transfer.quick_page().read_text()
    assert "- 750 pretraining steps on 32² patches, then 300 fine-tuning steps on 32² (A, " in page
    assert (
        "blur -1.000 dB from its pretrained network, -0.100 dB after fine-tuning (lifted +0.900)"
        in page
    )
    # why the quick check leaves that goal to the full run, in numbers: where blur ends in the
    # quick runs against the full run's seeds (+0.1, +0.3), and how far the same fine-tuning
    # moved it from two pretrained networks
    ends = "Held out, blur ends -0.100, -0.100, -0.100 dB against its input in this page's run "
    assert ends + "and in the tried ones, in that order; over the full run's 2 training" in page
    assert "closest degradation ends +0.100 to +0.300 dB on the held-out photos against" in page
    moved = "From two pretrained networks (A, B) the same 300 fine-tuning steps on 32² patches "
    lifts = "lifted held-out blur by +0.900 and +0.400 dB, 0.500 dB apart (their end points 0.000"
    assert moved + lifts in page
    # the same label replaces its entry in place; a wrong call writes nothing
    run_main(monkeypatch, "--tried-record", str(tried["B"]), "--tried-label", "A")
    assert [e["pretrain_steps"] for e in json.loads(transfer.tried_path().read_text())] == [
        1000,
        1000,
    ]
    written = transfer.tried_path().read_text()
    for options, error in (
        (["--tried-record", str(tried["A"])], "--tried-record needs --tried-label"),
        (["--tried-record", str(transfer.CPU_RECORD), "--tried-label", "C"], "is not one"),
        (["--tried-record", str(tmp_path / "none.json"), "--tried-label", "C"], "no file"),
    ):
        with pytest.raises(SystemExit):
            run_main(monkeypatch, *options)
        assert error in capsys.readouterr().err
    assert transfer.tried_path().read_text() == written
