"""The GPU latency benchmark (benchmarks/gpu_latency.py): its rows name their GPU, and it builds
SwinIR for the measured size: at another size spandrel's SwinIR makes its attention masks on
the host at every pass, a copy that a CUDA graph cannot record."""

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import gpu_latency  # benchmarks/ is not a package: found through the path above

import pip_adapter as pa
from pip_adapter.backbones import build_backbone


@pytest.mark.parametrize("fit", [False, True])
def test_swinir_fitted_to_the_size_makes_no_mask_during_a_pass(fit, monkeypatch):
    from spandrel.architectures.SwinIR.__arch.SwinIR import SwinTransformerBlock

    size = 128  # the tiny SwinIR is built for 64²
    made: list[tuple[int, int]] = []
    calculate = SwinTransformerBlock.calculate_mask
    monkeypatch.setattr(
        SwinTransformerBlock,
        "calculate_mask",
        lambda block, x_size: made.append(x_size) or calculate(block, x_size),
    )
    overrides = gpu_latency.fitted("swinir", size) if fit else {}
    torch.manual_seed(0)
    backbone = build_backbone("swinir", "tiny", **overrides).eval()
    model = pa.inject_pip(backbone).eval()
    made.clear()  # the masks built with the network, for its img_size
    x = torch.rand(1, 3, size, size)
    with torch.inference_mode():
        backbone(x)
        model(x, degradation="rain")
    assert (made == []) is fit


DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"


def test_rows_name_their_gpu_and_the_page_renders_from_them_alone(tmp_path, monkeypatch):
    rows = json.loads((DOCS / "gpu_latency_cuda.json").read_text())
    assert all(row["machine"].startswith("NVIDIA") for row in rows)
    (tmp_path / "gpu_latency_cuda.json").write_text(json.dumps(rows))  # no page to read back
    argv = ["gpu_latency.py", "--device", "cuda", "--merge", "--backbones", "", "--out"]
    monkeypatch.setattr(sys, "argv", [*argv, str(tmp_path)])
    gpu_latency.main()
    rendered = (tmp_path / "gpu_latency_cuda.md").read_text()
    assert rendered == (DOCS / "gpu_latency_cuda.md").read_text()


def test_rows_of_two_gpus_are_marked_and_summarised_apart():
    row = {"backbone": "nafnet", "size": 256, "mode": "eager", "command": "`c`"}
    row |= {"warmup_seconds": {"plain": 0.0, "pip": 0.0}}
    rows = [
        {**row, "machine": "GPU A", "seconds": [1.0, 2.0]},
        {**row, "machine": "GPU B", "seconds": [3.0, 3.0]},
    ]
    page = gpu_latency.render(rows)
    assert page.splitlines()[0] == "# PIP latency on a GPU, batch 1 (GPU A; GPU B)"
    assert "| nafnet | 256² | eager on GPU A | 1000.00 ms | 2000.00 ms |" in page
    assert "- nafnet 256² on GPU A: fastest PIP mode eager, 2.000x" in page
    assert "- nafnet 256² on GPU B: fastest PIP mode eager, 1.000x" in page
    assert gpu_latency.fastest_rows(rows)[("nafnet", 256)]["machine"] == "GPU B"


def test_a_row_replaces_only_the_row_of_its_own_gpu():
    row = {"backbone": "nafnet", "size": 256, "mode": "compile", "seconds": [1.0, 1.0]}
    rows = [{**row, "machine": "GPU A"}, {**row, "machine": "GPU A", "code": "abc"}]
    gpu_latency.merge(rows, {**row, "machine": "GPU B", "seconds": [2.0, 2.0]})
    assert [r["machine"] for r in rows] == ["GPU A", "GPU A", "GPU B"]
    gpu_latency.merge(rows, {**row, "machine": "GPU A", "seconds": [3.0, 3.0]})
    assert [r["seconds"][0] for r in rows] == [3.0, 1.0, 2.0]


def test_a_rerun_keeps_the_runs_it_replaces_and_the_page_shows_how_far_they_moved():
    row = {"backbone": "nafnet", "size": 256, "mode": "compile", "machine": "GPU A"}
    row |= {"command": "`c`", "warmup_seconds": {"plain": 27.0, "pip": 55.0}}
    rows = [{**row, "seconds": [0.0040, 0.0036], "inductor_cache": "cold"}]
    rows.append({**row, "code": "abc", "seconds": [0.0050, 0.0090]})  # other code, same plain
    warm = {"plain": 6.0, "pip": 10.0}
    gpu_latency.merge(rows, {**row, "seconds": [0.0044, 0.0044], "warmup_seconds": warm})
    gpu_latency.merge(rows, {**row, "seconds": [0.0042, 0.0040], "inductor_cache": "warm"})
    assert len(rows) == 2 and [run["seconds"][0] for run in rows[0]["earlier"]] == [0.004, 0.0044]
    page = gpu_latency.render(rows)
    assert "| 4.20 ms | 4.00 ms | **0.952x** | 27 s / 55 s, cache warm |" in page
    assert (
        "- nafnet 256² compile: 3 runs of this code, in order: 0.900x (plain 4.00 ms, warm-up "
        "27 s / 55 s, cache cold); 1.000x (plain 4.40 ms, warm-up 6 s / 10 s); 0.952x" in page
    )
    # the plain network's best over every run of the mode, the other code's included
    assert "best over the 4 runs of this mode on this GPU: 4.00-5.00 ms (25% apart)" in page
    # a failed run keeps nothing
    gpu_latency.merge(rows, {**row, "error": "RuntimeError: x"})
    gpu_latency.merge(rows, {**row, "seconds": [0.004, 0.004]})
    assert len(rows[0]["earlier"]) == 3


def test_a_compile_is_warm_only_if_it_added_no_graph_to_inductor_s_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "cache"))
    assert gpu_latency.fx_graphs() == 0  # no folder yet
    graphs = tmp_path / "cache" / "fxgraph" / "ab"
    graphs.mkdir(parents=True)
    (graphs / "graph1").write_text("x")
    (tmp_path / "cache" / "triton").mkdir()  # another network's kernels are not its graphs
    (tmp_path / "cache" / "triton" / "kernel").write_text("x")
    before = gpu_latency.fx_graphs()
    assert before == 1
    assert gpu_latency.inductor_cache(before, gpu_latency.fx_graphs()) == "warm"
    (graphs / "graph2").write_text("x")  # the warm-up compiled a graph
    assert gpu_latency.inductor_cache(before, gpu_latency.fx_graphs()) == "cold"


@pytest.mark.parametrize(
    "config, switch",
    [
        ("inductor", {"fx_graph_cache": False}),
        ("inductor", {"force_disable_caches": True}),
        ("functorch", {"bundled_autograd_cache": True}),
    ],
)
def test_a_compile_s_cache_state_is_not_known_when_inductor_keeps_no_graph_cache(config, switch):
    """An unchanged graph count would read "warm" although every graph was compiled."""
    import torch._functorch.config
    import torch._inductor.config

    assert gpu_latency.inductor_cache(3, 3) == "warm"
    module = torch._inductor.config if config == "inductor" else torch._functorch.config
    with module.patch(switch):
        assert gpu_latency.inductor_cache(3, 3) == "not known (inductor's FX graph cache is off)"
        assert gpu_latency.inductor_cache(3, 4) == "not known (inductor's FX graph cache is off)"
    assert gpu_latency.inductor_cache(3, 3) == "warm"
