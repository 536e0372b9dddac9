"""Training output folders: a previous run is never replaced without --overwrite, resumed only
with the same settings; logs survive crashes; --device and TrainConfig are checked."""

import hashlib
import json
import shutil

import pytest
import torch

import pip_adapter as pa
from pip_adapter.backbones import build_backbone
from pip_adapter.cli import main
from pip_adapter.data import SyntheticAllInOne
from pip_adapter.devices import resolve_device
from pip_adapter.recipes import ADAPTER_FFN_RANK
from pip_adapter.training import JsonLinesLog, TrainConfig, Trainer

TRAIN = ["train", "--backbone", "nafnet", "--size", "tiny", "--steps", "2", "--batch-size", "2"]
TRAIN += ["--patch-size", "32", "--checkpoint-every", "0", "--sensor-steps", "0"]


def snapshot(folder):
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main([*TRAIN, "--out", str(out)]) == 0
    return out


def test_train_refuses_a_folder_holding_a_run(run, capsys):
    before = snapshot(run)
    assert main([*TRAIN, "--out", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert f"{run} holds a previous run (log.jsonl, checkpoint.pt, curves.png, adapter)" in err
    assert "--resume" in err and "--overwrite" in err
    assert snapshot(run) == before
    assert main([*TRAIN, "--out", str(run), "--resume", "--overwrite"]) == 2
    assert "exclude each other" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--size", "small"], "size 'tiny' (now 'small')"),
        (["--backbone", "swinir"], "backbone 'nafnet' (now 'swinir')"),
        (["--tasks", "noise,rain"], "pip.degradations ["),
        (["--patch-size", "48"], "patch_size 32 (now 48)"),
        (["--lr", "0.123"], "(now 0.123)"),
        (["--batch-size", "4"], "batch_size 2 (now 4)"),
    ],
)
def test_resume_with_other_settings_is_refused(run, capsys, change, message):
    before = snapshot(run)
    assert main([*TRAIN, "--out", str(run), "--resume", *change]) == 2
    err = capsys.readouterr().err.strip()
    assert f"cannot resume from {run / 'checkpoint.pt'}: it was written with" in err
    assert message in err and "\n" not in err
    assert snapshot(run) == before


def test_a_checkpoint_written_before_a_config_field_existed_resumes(run, tmp_path, capsys):
    # older versions wrote the model's config without fields added since (output_strength);
    # the missing field is not a changed setting, a changed field inside it still is
    old = tmp_path / "run"
    shutil.copytree(run, old)
    state = torch.load(old / "checkpoint.pt", weights_only=True)
    del state["settings"]["pip"]["output_strength"]
    torch.save(state, old / "checkpoint.pt")
    assert main([*TRAIN, "--out", str(old), "--resume", "--steps", "3"]) == 0
    assert [r["step"] for r in JsonLinesLog(old / "log.jsonl").read() if "loss" in r] == [2, 3]
    capsys.readouterr()
    assert main([*TRAIN, "--out", str(old), "--resume", "--steps", "4", "--tasks", "noise"]) == 2
    assert "pip.degradations [" in capsys.readouterr().err


@pytest.mark.slow
def test_an_adapter_run_from_before_the_rank_default_is_told_how_to_resume(tmp_path, capsys):
    # a frozen backbone's units had shared feed-forwards (rank 0) before ADAPTER_FFN_RANK
    checkpoint, out = tmp_path / "denoiser.pth", tmp_path / "run"
    torch.save({"params": build_backbone("nafnet", "tiny").state_dict()}, checkpoint)
    adapter = [*TRAIN[:3], "--checkpoint", str(checkpoint), *TRAIN[5:], "--out", str(out)]
    assert main([*adapter, "--degradation-ffn-rank", "0"]) == 0
    before = snapshot(out)
    capsys.readouterr()
    assert main([*adapter, "--resume", "--steps", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"pip.degradation_ffn_rank 0 (now {ADAPTER_FFN_RANK})" in err and "\n" not in err
    before_default = f"(a run started before the adapter default became {ADAPTER_FFN_RANK}): "
    assert before_default + "resume it with --degradation-ffn-rank 0 (in Python: pip=" in err
    assert snapshot(out) == before
    assert main([*adapter, "--resume", "--steps", "3", "--degradation-ffn-rank", "0"]) == 0
    assert [r["step"] for r in JsonLinesLog(out / "log.jsonl").read() if "loss" in r] == [2, 3]
    capsys.readouterr()
    shared = ["--degradation-ffn-rank", "0"]
    assert main([*adapter, "--resume", "--steps", "4", *shared, "--batch-size", "4"]) == 2
    assert "--degradation-ffn-rank" not in capsys.readouterr().err  # only for a changed rank


def test_the_rank_hint_names_the_saved_rank_and_dates_only_an_earlier_default_s_run():
    from pip_adapter.recipes import _rank_hint
    from pip_adapter.training.run_folder import ChangedSettings

    def hint(saved: int, current: int) -> str:
        changed = {"pip.degradation_ffn_rank": (saved, current)}
        return _rank_hint(ChangedSettings("cannot resume", changed))

    before = f"(a run started before the adapter default became {ADAPTER_FFN_RANK})"
    for earlier in (0, 32):  # the adapter defaults before ADAPTER_FFN_RANK
        now = hint(earlier, ADAPTER_FFN_RANK)
        assert f"degradation_ffn_rank {earlier} {before}: " in now
        assert f"--degradation-ffn-rank {earlier} " in now
    assert "--degradation-ffn-rank 32 " in hint(32, 0) and "before" not in hint(32, 0)
    assert "before" not in hint(ADAPTER_FFN_RANK + 1, ADAPTER_FFN_RANK)  # a rank of one's own
    assert _rank_hint(ChangedSettings("cannot resume", {"batch_size": (2, 4)})) == ""


@pytest.mark.slow
def test_overwrite_replaces_the_run_and_resume_continues_it(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*TRAIN, "--out", str(out)]) == 0
    (out / "adapter" / "notes.txt").write_text("mine")  # not the library's: kept
    assert main([*TRAIN, "--out", str(out), "--overwrite", "--steps", "3", "--seed", "1"]) == 0
    records = JsonLinesLog(out / "log.jsonl").read()
    assert [r["step"] for r in records if "loss" in r] == [3]  # the old run's log is gone
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 3
    assert (out / "adapter" / "notes.txt").read_text() == "mine"
    same = ["--steps", "5", "--seed", "1", "--resume", "--out", str(out)]
    assert main([*TRAIN, *same]) == 0
    assert [r["step"] for r in JsonLinesLog(out / "log.jsonl").read() if "loss" in r] == [3, 5]
    assert main([*TRAIN, "--out", str(tmp_path / "none"), "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_the_trainer_refuses_a_previous_run_unless_told(tmp_path):
    def trainer(**options):
        torch.manual_seed(0)
        model = pa.inject_pip(build_backbone("nafnet", "tiny"))
        data = SyntheticAllInOne(patch_size=32, samples_per_degradation=2, seed=0)
        config = TrainConfig(steps=2, batch_size=2, progress=False, log_every=1)
        return Trainer(model, data, config, out_dir=tmp_path, save_model=False, **options)

    (tmp_path / "log.jsonl").write_text('{"step": 99, "loss": 1.0}\n')
    with pytest.raises(ValueError, match=r"holds a previous run \(log.jsonl\)"):
        trainer().fit()
    assert (tmp_path / "log.jsonl").read_text() == '{"step": 99, "loss": 1.0}\n'
    trainer(overwrite=True).fit()
    assert [r["step"] for r in JsonLinesLog(tmp_path / "log.jsonl").read()] == [1, 2]
    resumed = trainer()
    resumed.resume()  # a resumed run is not a new one: no refusal
    assert resumed.fit() is None and resumed.step == 2


def test_a_resume_that_does_not_fit_leaves_the_trainer_untouched(tmp_path):
    torch.manual_seed(0)
    data = SyntheticAllInOne(patch_size=32, samples_per_degradation=2, seed=0)
    config = TrainConfig(steps=2, batch_size=2, progress=False)
    Trainer(pa.inject_pip(build_backbone("nafnet", "tiny")), data, config, tmp_path).fit()
    other = pa.inject_pip(build_backbone("nafnet", "small"))
    before = {k: v.clone() for k, v in other.state_dict().items()}
    trainer = Trainer(other, data, config, out_dir=tmp_path / "other")
    with pytest.raises(ValueError, match="differs from this one: .*size mismatch"):
        trainer.resume(tmp_path / "checkpoint.pt")
    assert all(torch.equal(v, other.state_dict()[k]) for k, v in before.items())
    frozen = pa.inject_pip(build_backbone("nafnet", "tiny")).freeze_backbone()
    with pytest.raises(ValueError, match="trained other parameters"):
        Trainer(frozen, data, config).resume(tmp_path / "checkpoint.pt")


def test_the_log_survives_a_torn_last_line_and_drops_steps_redone_after_a_resume(tmp_path):
    log = JsonLinesLog(tmp_path / "log.jsonl")
    for step in (1, 2, 3):
        log.write({"step": step, "loss": 0.5})
    with log.path.open("a") as handle:
        handle.write('{"step": 4, "lo')  # the crash
    assert [r["step"] for r in log.read()] == [1, 2, 3]
    log.keep_until(2)
    assert log.path.read_text() == "".join(
        json.dumps({"step": s, "loss": 0.5}) + "\n" for s in (1, 2)
    )


def test_demo_refuses_a_folder_holding_its_outputs(tmp_path, capsys):
    (tmp_path / "results.md").write_text("mine")
    assert main(["demo", "--steps", "1", "--out", str(tmp_path)]) == 2
    assert "holds a previous run (results.md)" in capsys.readouterr().err
    assert (tmp_path / "results.md").read_text() == "mine"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("grad_clip", -1.0, "grad_clip must be None \\(no clipping\\) or a finite number > 0"),
        ("grad_clip", float("nan"), "grad_clip"),
        ("min_lr_ratio", -0.1, "min_lr_ratio must be a finite number >= 0"),
        ("min_lr_ratio", 1.5, "min_lr_ratio must be in \\[0, 1\\]"),
        ("log_every", 0, "log_every must be an integer >= 1"),
        ("steps", 0, "steps must be an integer >= 1"),
        ("steps", 2.5, "steps must be an integer"),
        ("batch_size", True, "batch_size must be an integer"),
        ("lr", 0.0, "lr must be a finite number > 0"),
        ("lr", float("inf"), "lr must be a finite number"),
        ("lr", "1e-3", "lr must be a finite number"),
        ("weight_decay", -1e-4, "weight_decay must be a finite number >= 0"),
        ("warmup_steps", -1, "warmup_steps must be None"),
        ("warmup_steps", 3000, "warmup_steps \\(3000\\) must not exceed steps \\(2000\\)"),
        ("prompt_reg_weight", -1.0, "prompt_reg_weight"),
        ("val_every", -1, "val_every must be an integer >= 0"),
        ("checkpoint_every", -5, "checkpoint_every"),
        ("num_workers", -1, "num_workers"),
        ("seed", -1, "seed must be an integer >= 0"),
        ("loss", "l3", "loss must be one of"),
        ("amp", "fp8", "amp must be None or one of"),
        ("progress", "yes", "progress must be True or False"),
        ("device", "bogus", "TrainConfig.device 'bogus' is not a device; use one of cpu, cuda"),
        ("device", 0, "TrainConfig.device must be a device name"),
    ],
)
def test_train_config_checks_every_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{field: value})


def test_devices_are_checked_with_one_clear_line(tmp_path, capsys):
    assert main([*TRAIN, "--device", "bogus", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "pip-adapter train: error: TrainConfig.device 'bogus' is not a device; use one of "
        "cpu, cuda, cuda:1, mps"
    )
    assert not (tmp_path / "a").exists()
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="'cuda' is not available on this machine: no CUDA"):
            resolve_device("cuda")
    assert resolve_device("cpu") == torch.device("cpu")
