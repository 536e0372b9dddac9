"""``pip-adapter train`` / ``eval`` on a miniature copy of the AirNet / PromptIR layout."""

from test_cli import TRAIN
from test_standard_layout import layout  # noqa: F401  (fixture)

from pip_adapter.cli import main


def test_train_and_eval_on_the_standard_layout(layout, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "run"
    assert main(["train", *TRAIN, "--data", str(layout), "--out", str(out)]) == 0
    assert main(["eval", "--adapter", str(out / "adapter"), "--data", str(layout)]) == 0
    table = capsys.readouterr().out.split("| degradation")[-1]
    for degradation in ("noise", "rain", "haze", "blur", "lowlight"):
        assert f"| {degradation} |" in table
