"""benchmarks/transfer.py's training options (seed, milder blur, loss, moving average): they
change what they name, reach the trainer, and enter the cache key only when set (the results
cached before them stay valid)."""

import argparse
import dataclasses
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import transfer  # benchmarks/ is not a package: found through the path above


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


def test_the_loss_and_the_moving_average_reach_the_trainer():
    import pip_adapter as pa
    from pip_adapter.backbones import build_backbone

    options = argparse.Namespace(seed=0, patch_size=32, batch_size=2)
    for name, choice in (
        ("pip_relative", {"loss": "relative_l1"}),
        ("pip_ema", {"ema_decay": 0.999}),
    ):
        variant = transfer.VARIANTS[name]
        assert variant.recipe() == choice  # in the cache key
        model = pa.inject_pip(build_backbone("nafnet", "tiny"))
        train_set = transfer.training_set(options, variant)
        trainer = transfer.make_trainer(variant, model, options, 2, None, train_set)
        assert {key: getattr(trainer.config, key) for key in choice} == choice


def test_the_cache_key_leaves_out_settings_at_their_no_op_value():
    # a stride of 1 is the compact unit as it ran before the option: the cached results hold
    config = {"design": "compact", "size_multiple": 1, "feature_ffn_stride": 1, "heads": None}
    config["output_strength"] = {}  # none set: full strength, as before strengths existed
    assert transfer.essential(config) == {"design": "compact", "size_multiple": 1}
    assert transfer.essential({"feature_ffn_stride": 2}) == {"feature_ffn_stride": 2}


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

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter.safetensors").write_bytes(b"first")
    calls = []

    def measure():
        calls.append(1)
        return {"strengths": {"blur": 0.5}}

    def fitted():
        key = {"adapter": output_strength.files_digest(adapter)}
        return output_strength.cached(tmp_path / "strength.json", key, measure)

    assert fitted() == fitted() == {"strengths": {"blur": 0.5}}
    assert len(calls) == 1  # measured once, then read back
    (adapter / "adapter.safetensors").write_bytes(b"retrained")
    fitted()
    assert len(calls) == 2  # another adapter: measured again
