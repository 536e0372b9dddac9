"""Training logs (JSON lines), curves (PNG) and metric tables."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pip_adapter._extras import needs_extra
from pip_adapter.conditioning import CLEAN
from pip_adapter.files import atomic_write, write_text

__all__ = ["JsonLinesLog", "format_metrics_table", "plot_curves"]


class JsonLinesLog:
    """Append-only log, one JSON object per line; readable with pandas or ``jq``.

    Each record is flushed to disk as it is written (``fsync``), so a crash loses at most the
    record being written; ``read`` skips such a torn last line.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: Mapping[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def read(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        text = self.path.read_text(encoding="utf-8")
        lines = text.splitlines()
        if lines and not text.endswith("\n"):
            lines.pop()  # torn by a crash while it was written
        return [json.loads(line) for line in lines if line]

    def keep_until(self, step: int) -> None:
        """Drop the records of steps after ``step`` (written after the checkpoint a resumed run
        restarts from, so that they are not logged twice); rewritten atomically."""
        records = [r for r in self.read() if r.get("step", 0) <= step]
        write_text(self.path, "".join(json.dumps(r) + "\n" for r in records))


def plot_curves(
    records: Sequence[Mapping[str, Any]], path: str | os.PathLike, title: str = ""
) -> Path:
    """Training loss and validation PSNR against the step, side by side, as a PNG."""
    with needs_extra("train", "plot_curves"):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

    runs: dict[str, dict[str, list]] = {}
    for record in records:
        run = runs.setdefault(
            record.get("run", ""), {"step": [], "loss": [], "vstep": [], "psnr": []}
        )
        if "loss" in record:
            run["step"].append(record["step"])
            run["loss"].append(record["loss"])
        if "val" in record:
            run["vstep"].append(record["step"])
            run["psnr"].append(record["val"]["average"]["psnr"])
    figure, (loss_axis, psnr_axis) = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, run in runs.items():
        loss_axis.plot(run["step"], run["loss"], label=name or None)
        psnr_axis.plot(run["vstep"], run["psnr"], marker="o", label=name or None)
    # a PSNR loss is negative: a linear axis then
    scale = "log" if all(v > 0 for run in runs.values() for v in run["loss"]) else "linear"
    loss_axis.set(xlabel="step", ylabel="training loss", yscale=scale, title="loss")
    psnr_axis.set(
        xlabel="step", ylabel="PSNR (dB)", title="validation PSNR, average over degradations"
    )
    for axis in (loss_axis, psnr_axis):
        axis.grid(alpha=0.3)
        if any(runs):
            axis.legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    try:
        return atomic_write(path, lambda p: figure.savefig(p, dpi=110, format="png"))
    finally:
        plt.close(figure)


def format_metrics_table(
    reports: Mapping[str, Mapping[str, Mapping[str, float]]], with_input: bool = True
) -> str:
    """A Markdown table, one row per degradation plus the average, one PSNR / SSIM column pair per
    report (e.g. ``{"plain": ..., "PIP": ...}``), after the degraded input's. A ``"clean"`` row
    (not in the average) comes last; an output identical to its target reads "identical"."""
    names = list(reports)
    first = reports[names[0]]
    header = ["degradation"]
    if with_input:
        header.append("input PSNR / SSIM")
    header += [f"{name} PSNR / SSIM" for name in names]
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    rows = [d for d in first if d not in ("average", CLEAN)] + ["average"]
    rows += [CLEAN] if CLEAN in first else []
    labels = {"average": "**average**", CLEAN: "clean (not in the average)"}
    for degradation in rows:
        cells = [labels.get(degradation, degradation)]
        if with_input:
            cells.append(_pair(first[degradation], "input_"))
        cells += [_pair(reports[name][degradation]) for name in names]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _pair(entry: Mapping[str, float], prefix: str = "") -> str:
    psnr, ssim = entry[f"{prefix}psnr"], entry[f"{prefix}ssim"]
    return "identical" if math.isinf(psnr) else f"{psnr:.2f} / {ssim:.4f}"
