"""``pip-adapter export``: an adapter (with its backbone) as one ONNX or ``.pt2`` file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

HELP = "export an adapter with its backbone to ONNX or torch.export (.pt2), checked"

FORMATS = {"onnx": ".onnx", "pt2": ".pt2"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--adapter", type=Path, required=True, help="adapter folder")
    parser.add_argument("--checkpoint", type=Path, help="backbone weights, if not in the folder")
    parser.add_argument(
        "--degradation",
        help="bake a steering into the graph: a name (rain) or a mixture (rain:0.7,noise:0.3); "
        "auto puts the adapter's sensor in the graph (blind); default: weights are an input",
    )
    parser.add_argument(
        "--format", choices=sorted(FORMATS), help="onnx or pt2 (default: from the file suffix)"
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="file to write")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the output file if it exists"
    )
    parser.add_argument("--opset", type=int, help="ONNX opset (default: the exporter's)")
    parser.add_argument(
        "--no-check",
        action="store_true",
        help="skip comparing the file with the eager model on several image sizes",
    )


def _format(args: argparse.Namespace) -> str:
    suffix = args.output.suffix.lower()
    name = args.format or next((f for f, s in FORMATS.items() if s == suffix), None)
    if name is None:
        raise ValueError(
            f"cannot tell the format from {str(args.output)!r}: end the file name in .onnx or "
            ".pt2, or pass --format"
        )
    if suffix != FORMATS[name]:
        raise ValueError(f"--format {name} writes a {FORMATS[name]} file, got {str(args.output)!r}")
    return name


def run(args: argparse.Namespace) -> None:
    from pip_adapter import export
    from pip_adapter.bundle import load_bundle
    from pip_adapter.vocabulary import parse_degradation

    form = _format(args)
    if args.opset is not None and form != "onnx":
        raise ValueError("--opset goes with ONNX files")
    model = load_bundle(args.adapter, args.checkpoint)
    degradation = None
    blind = args.degradation is not None and args.degradation.strip() == "auto"
    if args.degradation is not None and not blind:
        degradation = parse_degradation(args.degradation, model.degradations)
    options: dict[str, Any] = {"degradation": degradation, "sensor": blind}
    options |= {"check": not args.no_check, "overwrite": args.overwrite}
    if form == "onnx":
        export.to_onnx(model, args.output, opset=args.opset, **options)
    else:
        export.to_torch_export(model, args.output, **options)
    description = export.read_metadata(args.output)
    inputs = ", ".join(description["inputs"])
    outputs = ", ".join(description["outputs"])
    megabytes = args.output.stat().st_size / 2**20
    checked = "" if args.no_check else "; checked against the eager model"
    print(
        f"wrote {args.output} ({megabytes:.1f} MB): {inputs} -> {outputs}; degradations "
        f"{description['degradations']}, steering: {description['steering']}{checked}"
    )
