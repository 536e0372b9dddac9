"""PIP's latency overhead on a GPU at batch 1, in each way of running the model.

At batch 1 a GPU forward pass of NAFNet is bound by kernel launches, and the PIP units add
small kernels. This measures, for each backbone (official configurations) and input size, the
plain network and the network with PIP (default preset) in the same mode:

* ``eager``: fp32 (TF32 matmuls), as the model comes;
* ``eager-bf16``: under ``torch.autocast(dtype=torch.bfloat16)``;
* ``cudagraph`` / ``cudagraph-bf16``: the eager pass recorded once in a CUDA graph
  (``torch.cuda.graph``) and replayed: one launch for the whole pass, no compilation;
* ``compile``: ``torch.compile(model, mode="reduce-overhead", dynamic=False)``: inductor's fused
  kernels, replayed as CUDA graphs; fp32; only for ``--compile-backbones`` (compiling takes
  about a minute per network).

SwinIR is built for the measured size (``img_size``; its weights do not depend on it). At any
other size spandrel's SwinIR (as the authors' code) computes the shifted windows' attention mask
on the host in every block at every pass and copies it to the device: a cost in eager mode and a
copy that a CUDA graph cannot record ("Cannot copy between CPU and CUDA tensors during CUDA
graph capture"), with or without PIP. A deployment at a fixed size builds it for that size.

Times are the best of ``--repeats`` interleaved runs after warm-up (which includes compiling
or recording, whose time is reported too). Writes docs/benchmarks/gpu_latency_DEVICE.md (and
.json) after every row, so a run cut short keeps what it measured.

Run:  python benchmarks/gpu_latency.py [--device cuda] [--sizes 256] [--modes eager,...]
      python benchmarks/gpu_latency.py --device cpu --size tiny --modes eager,compile (smoke)
"""

from __future__ import annotations

import argparse
import json
import time
from contextlib import nullcontext
from datetime import date
from pathlib import Path

import torch
from machine import prepare_device
from timing import interleaved_rounds, synchronizer

import pip_adapter as pa
from pip_adapter.backbones import build_backbone
from pip_adapter.evaluation import restore

ROOT = Path(__file__).resolve().parents[1]
MODES = ("eager", "eager-bf16", "cudagraph", "cudagraph-bf16", "compile")
GOAL = 1.10  # issue 14: at most 1.10x the plain network's latency at 256², batch 1


def runner(network, x: torch.Tensor, weights: torch.Tensor | None, mode: str):
    """A no-argument callable running one forward pass of ``network`` in ``mode``."""
    if mode == "compile":
        network = torch.compile(network, mode="reduce-overhead", dynamic=False)
    bf16 = mode.endswith("bf16")

    def run():
        if mode == "compile":  # two compiled networks alternate: each call is a new step
            torch.compiler.cudagraph_mark_step_begin()
        with (
            torch.inference_mode(),
            torch.autocast(x.device.type, dtype=torch.bfloat16) if bf16 else nullcontext(),
        ):
            if weights is None:
                return restore(network, x)
            return network(x, degradation=weights)

    if not mode.startswith("cudagraph"):
        return run
    # the CUDA graph recipe: warm up on a side stream, record one pass, replay it
    stream = torch.cuda.Stream(x.device)
    stream.wait_stream(torch.cuda.current_stream(x.device))
    with torch.cuda.stream(stream):
        for _ in range(3):
            run()
    torch.cuda.current_stream(x.device).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        run()
    return graph.replay


def fx_graphs() -> int:
    """How many compiled graphs inductor's on-disk cache holds (its FX graph cache)."""
    from torch._inductor.runtime.cache_dir_utils import cache_dir

    folder = Path(cache_dir()) / "fxgraph"
    return sum(1 for path in folder.rglob("*") if path.is_file()) if folder.is_dir() else 0


def fx_graph_cache_on() -> bool:
    """Whether inductor keeps the graphs it compiles in its on-disk FX graph cache (off with
    ``TORCHINDUCTOR_FX_GRAPH_CACHE=0``, ``TORCHINDUCTOR_FORCE_DISABLE_CACHES=1`` or functorch's
    bundled autograd cache, which stores them elsewhere)."""
    import torch._functorch.config as functorch_config
    from torch._inductor import config

    return (
        bool(config.fx_graph_cache)
        and not config.force_disable_caches
        and not functorch_config.bundled_autograd_cache
    )


def inductor_cache(before: int, after: int) -> str:
    """``"warm"`` when a warm-up added no graph to inductor's cache (``fx_graphs`` before and
    after it): every graph came from an earlier compile on the machine, loaded rather than
    compiled; ``"cold"`` when it compiled some. With that cache off no graph is ever added,
    compiled or not, so the count says nothing: "not known"."""
    if not fx_graph_cache_on():
        return "not known (inductor's FX graph cache is off)"
    return "warm" if after == before else "cold"


def fitted(name: str, size: int) -> dict[str, int]:
    """Constructor arguments that fit ``name`` to ``size`` inputs: SwinIR's ``img_size``, so that
    its attention masks are made once, on the device, not on the host at every pass."""
    return {"img_size": size} if name == "swinir" else {}


def measure(name: str, size: int, mode: str, args, device: torch.device) -> dict:
    torch.manual_seed(0)
    backbone = build_backbone(name, args.size, **fitted(name, size)).eval().to(device)
    model = pa.inject_pip(backbone).eval().to(device)
    x = torch.rand(1, 3, size, size, device=device)
    weights = torch.nn.functional.one_hot(torch.tensor([1]), len(model.degradations)).float()
    weights = weights.to(device)
    runs, compile_s, cache = {}, {}, {}
    synchronize = synchronizer(device)
    graphs = fx_graphs()
    if mode == "compile":  # once for both networks: a reset between them would drop the first
        torch._dynamo.reset()
    for key, network, w in (("plain", backbone, None), ("pip", model, weights)):
        start = time.perf_counter()
        runs[key] = runner(network, x, w, mode)
        for _ in range(3):  # compiles (compiled modes), records the CUDA graph, warms up
            runs[key]()
        synchronize()
        compile_s[key] = time.perf_counter() - start
    if mode == "compile":
        cache["inductor_cache"] = inductor_cache(graphs, fx_graphs())
    # one round of up to --repeats, cut so that a round takes about 5 s (slow networks: fewer)
    measured = interleaved_rounds(runs, 1, args.repeats, synchronize=synchronize, budget=5.0)
    return {
        "seconds": [measured.best["plain"][0], measured.best["pip"][0]],
        "warmup_seconds": compile_s,
        **cache,
        "repeats": measured.repeats[0],
    }


def command(args) -> str:
    """The command line that measures a row, with the date, for the page's caption."""
    return (
        f"`python benchmarks/gpu_latency.py --device {args.device} --backbones {args.backbones} "
        f"--sizes {args.sizes} --modes {args.modes} --repeats {args.repeats}"
        + (f" --code {args.code}" if args.code else "")
        + "` "
        f"(torch {torch.__version__}, {date.today()})"
    )


# what a row keeps of each earlier run it replaced
RUN_FIELDS = ("seconds", "warmup_seconds", "inductor_cache", "command")


def merge(results: list[dict], row: dict) -> None:
    """``row`` in place of the row of the same backbone, size, mode, code and GPU, keeping the
    measurements of the runs it replaces (``earlier``: how far runs of the same code move), or
    added (a row of another GPU joins the page beside the others)."""
    fields = ("backbone", "size", "mode", "code", "machine")
    keys = [tuple(r.get(field) for field in fields) for r in results]
    key = tuple(row.get(field) for field in fields)
    if key not in keys:
        results.append(row)
        return
    old = results[keys.index(key)]
    earlier = old.get("earlier", [])
    if "error" not in old:
        earlier = [*earlier, {k: old[k] for k in RUN_FIELDS if k in old}]
    results[keys.index(key)] = {**row, "earlier": earlier} if earlier else row


def warm_up(run: dict) -> str:
    """A run's warm-up seconds (plain / PIP), with the state of inductor's cache if compiled."""
    warm = run["warmup_seconds"]
    cache = f", cache {run['inductor_cache']}" if "inductor_cache" in run else ""
    return f"{warm['plain']:.0f} s / {warm['pip']:.0f} s{cache}"


def run_lines(results: list[dict]) -> list[str]:
    """For each row measured more than once: every run's ratio, and how far the plain
    network's best moved over the runs of that mode on that GPU (whatever PIP's code: the
    plain network runs none of it)."""
    lines = []
    for r in results:
        if "earlier" not in r:
            continue
        runs = [*r["earlier"], r]
        ratios = "; ".join(
            f"{run['seconds'][1] / run['seconds'][0]:.3f}x (plain {run['seconds'][0] * 1e3:.2f} "
            f"ms, warm-up {warm_up(run)})"
            for run in runs
        )
        plain = [
            run["seconds"][0]
            for other in results
            if "error" not in other
            and all(other[k] == r[k] for k in ("backbone", "size", "mode", "machine"))
            for run in [*other.get("earlier", []), other]
        ]
        lines.append(
            f"- {r['backbone']} {r['size']}² {r['mode']}: {len(runs)} runs of this code, in "
            f"order: {ratios}. The plain network's best over the {len(plain)} runs of this mode "
            f"on this GPU: {min(plain) * 1e3:.2f}-{max(plain) * 1e3:.2f} ms "
            f"({max(plain) / min(plain) - 1:.0%} apart): ratios closer than that are not "
            "ranked by one run."
        )
    return lines


def machines(results: list[dict]) -> list[str]:
    """The GPUs the rows were measured on, in the order they first appear."""
    return list(dict.fromkeys(r["machine"] for r in results))


def fastest_rows(
    results: list[dict], network: str = "pip", machine: str | None = None
) -> dict[tuple[str, int], dict]:
    """Per ``(backbone, size)``: the measured row whose pass of ``network`` (``"plain"`` or
    ``"pip"``) was the fastest, among the rows of ``machine`` (default: the last row's; rows
    of other code, ``--code``, left out)."""
    column = ("plain", "pip").index(network)
    machine = machine or results[-1]["machine"]
    best: dict[tuple[str, int], dict] = {}
    for r in results:
        if "error" not in r and "code" not in r and r["machine"] == machine:
            key = (r["backbone"], r["size"])
            if key not in best or r["seconds"][column] < best[key]["seconds"][column]:
                best[key] = r
    return best


def render(results: list[dict]) -> str:
    commands = list(dict.fromkeys(r["command"] for r in results))
    gpus = machines(results)
    lines = [
        f"# PIP latency on a GPU, batch 1 ({'; '.join(gpus)})",
        "",
        "Command: " + "; rows re-measured by ".join(commands) + ". Official configurations, "
        "default presets; plain and PIP timed interleaved in the same mode, best of the repeats "
        "(of at least 3 where a pass takes over 80 ms); warm-up = compile (compiled modes) or "
        "recording (CUDA graphs) and three passes; a compiled mode's warm-up says whether it "
        "compiled (cold: it added graphs to inductor's on-disk cache) or loaded every graph "
        "from that cache, filled by an earlier run on the machine (warm), or, with that cache "
        "off, that this is not known. TF32 on. SwinIR is "
        "built for the input size (`img_size`; otherwise spandrel's SwinIR computes its "
        "attention masks on the host at every pass, which a CUDA graph cannot record). Goal "
        "(issue 14): PIP ≤ "
        f"{GOAL:.2f}x the plain network at 256² in the best mode.",
        "",
        "A mode marked with a commit measured that code (`--code`), for comparison; the "
        "summary leaves such rows out.",
        "",
        "| backbone | input | mode | plain | + PIP | ratio | warm-up (plain / PIP) |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        mode = r["mode"] + (f" (code of {r['code']})" if "code" in r else "")
        mode += f" on {r['machine']}" if len(gpus) > 1 else ""
        if "error" in r:
            lines.append(
                f"| {r['backbone']} | {r['size']}² | {mode} | failed: {r['error']} | | | |"
            )
            continue
        plain, pip = r["seconds"]
        lines.append(
            f"| {r['backbone']} | {r['size']}² | {mode} | {plain * 1e3:.2f} ms | "
            f"{pip * 1e3:.2f} ms | **{pip / plain:.3f}x** | {warm_up(r)} |"
        )
    summary = []
    for gpu in gpus:
        best_plain = fastest_rows(results, "plain", gpu)
        for (name, size), row in fastest_rows(results, "pip", gpu).items():
            fastest, mode = row["seconds"][1], row["mode"]
            ratio = row["seconds"][1] / row["seconds"][0]
            ok = "met" if ratio <= GOAL else "**not met**"
            plain = best_plain[(name, size)]
            summary.append(
                f"- {name} {size}²"
                + (f" on {gpu}" if len(gpus) > 1 else "")
                + f": fastest PIP mode {mode}, {ratio:.3f}x its plain network"
                + (f" (goal ≤ {GOAL:.2f}x: {ok})" if size == 256 else "")
                + f"; {fastest / plain['seconds'][0]:.3f}x the plain network's fastest mode "
                f"({plain['mode']})."
            )
    runs = run_lines(results)
    return "\n".join([*lines, "", *summary, *(["", *runs] if runs else [])]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--size", default="official", choices=("official", "small", "tiny"))
    parser.add_argument("--backbones", default="nafnet,restormer,swinir")
    parser.add_argument("--sizes", default="256")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument(
        "--compile-backbones",
        default="nafnet",
        help="backbones measured in the compile mode, at the largest size only",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the rows of the page's JSON at --out that this run does not measure "
        '(with --backbones "": re-render the page from its JSON)',
    )
    parser.add_argument(
        "--code",
        help="the code measured when it is not the page's (e.g. a commit on PYTHONPATH): its "
        "rows are kept beside the page's own, marked, and left out of the summary",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    args = parser.parse_args()
    modes = args.modes.split(",")
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        parser.error(f"unknown modes {unknown}; choose from {', '.join(MODES)}")
    device = torch.device(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / f"gpu_latency_{device.type}.md"
    sizes = [int(s) for s in args.sizes.split(",")]
    tasks = [
        (name, size, mode)
        for name in args.backbones.split(",")
        if name
        for size in sizes
        for mode in modes
        if mode != "compile" or (name in args.compile_backbones.split(",") and size == max(sizes))
    ]
    tasks.sort(key=lambda task: task[2] == "compile")  # compiling is slow: last
    json_path = target.with_suffix(".json")
    merging = args.merge and json_path.is_file()  # the first step of a run may have failed
    results: list[dict] = json.loads(json_path.read_text()) if merging else []
    if not tasks and not merging:
        parser.error('nothing to measure: --backbones "" re-renders a page with --merge only')
    machine = prepare_device(device) if tasks else None
    for task in tasks:
        name, size, mode = task
        row = {"backbone": name, "size": size, "mode": mode, "machine": machine}
        row["command"] = command(args)
        if args.code:
            row["code"] = args.code
        try:
            row |= measure(name, size, mode, args, device)
        except Exception as err:  # a failed mode is reported, the others still run
            row["error"] = f"{type(err).__name__}: {' '.join(str(err).split())[:200]}"
        merge(results, row)
        print(row, flush=True)
        target.write_text(render(results))
        json_path.write_text(json.dumps(results, indent=2) + "\n")
    if results:  # also a re-rendered page (no task)
        target.write_text(render(results))
    print(render(results))


if __name__ == "__main__":
    main()
