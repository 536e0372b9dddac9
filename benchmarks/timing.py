"""Timing ratios that can be read to a few hundredths on a shared machine, and a count of
executed instructions that does not depend on the machine's load at all.

Timing: one process, several rounds; in every round each network runs ``repeats`` times,
all networks interleaved, and a round keeps each network's best time. The ratio of a round
compares bests taken minutes apart at most, under the same load; over the rounds the median
ratio is reported with its spread (the lowest and highest round), so that a reader sees
whether a goal lies inside the noise. The one loop serves every timing script: overhead.py
(wall time, rounds), export.py (CPU time, the order rotated each round) and gpu_latency.py (the
GPU synchronised around each call, repeats cut to a time budget).

Instructions: the same forward pass under Valgrind's callgrind (at one thread, in a process
of its own), counting only the pass itself (``torch._C._valgrind_toggle``): the same code on
the same inputs executes the same instructions whatever else runs on the machine. With
``warm_start`` callgrind runs without instrumenting until the script has built and warmed up
what it counts (``instrument_from_here``): the counts are the same, the imports and set-up run
several times faster.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

__all__ = [
    "Rounds",
    "Spread",
    "count_instructions",
    "instrument_from_here",
    "interleaved_rounds",
    "ratio_spread",
    "run_counted",
    "synchronizer",
]


@dataclass(frozen=True)
class Spread:
    """The median of per-round ratios and the lowest and highest of them."""

    median: float
    low: float
    high: float

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies within the rounds' range (one run cannot decide it)."""
        return self.low <= value <= self.high

    def __str__(self) -> str:
        return f"{self.median:.3f}x ({self.low:.3f}-{self.high:.3f})"


@dataclass(frozen=True)
class Rounds:
    """What ``interleaved_rounds`` measured: per run, its best seconds in each round, and how
    many times each run was called in each round."""

    best: dict[str, list[float]]
    repeats: list[int]


def synchronizer(device: torch.device) -> Callable[[], None]:
    """What waits for ``device`` to finish its queued work before a clock is read (a GPU runs
    asynchronously; a CPU pass is done when its call returns)."""
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def seconds_per_call(
    call: Callable[[], object],
    warmup: int,
    calls: int,
    synchronize: Callable[[], object],
    *,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Mean seconds of ``call`` over ``calls`` calls in a row, after ``warmup`` untimed ones
    (they fill caches and pick kernels), the device's queue drained before each clock read."""
    for _ in range(warmup):
        call()
    synchronize()
    start = clock()
    for _ in range(calls):
        call()
    synchronize()
    return (clock() - start) / calls


def interleaved_rounds(
    runs: Mapping[str, Callable[[], object]],
    rounds: int,
    repeats: int,
    *,
    clock: Callable[[], float] = time.perf_counter,
    synchronize: Callable[[], object] = lambda: None,
    rotate: bool = False,
    budget: float | None = None,
) -> Rounds:
    """Time each of ``runs`` (no-argument callables) in ``rounds`` rounds; in a round every run
    is called ``repeats`` times, the runs interleaved, and the round keeps each run's best.

    A call is timed by ``clock`` (wall time by default; ``time.process_time`` leaves out the
    time other processes hold the cores) between two calls of ``synchronize`` (see
    ``synchronizer``). ``rotate``: round ``r`` starts with run ``r`` (modulo their number), so
    that no run always follows the same other. ``budget``: seconds a round should take; after
    each repeat the round's repeats are cut to what the budget allows at the bests so far (at
    least 3), so slow networks run fewer times."""
    if rounds < 1 or repeats < 1:
        raise ValueError(f"rounds and repeats must be at least 1, got {rounds} and {repeats}")
    names = list(runs)
    measured = Rounds({name: [] for name in names}, [])
    for index in range(rounds):
        shift = index % len(names) if rotate else 0
        order = names[shift:] + names[:shift]
        best = dict.fromkeys(names, float("inf"))
        done, limit = 0, repeats
        while done < limit:
            for name in order:
                synchronize()
                start = clock()
                runs[name]()
                synchronize()
                best[name] = min(best[name], clock() - start)
            done += 1
            total = sum(best.values())
            if budget is not None and total > 0:
                limit = min(limit, max(3, int(budget / total)))
        for name, seconds in best.items():
            measured.best[name].append(seconds)
        measured.repeats.append(done)
    return measured


def ratio_spread(seconds: Sequence[float], base: Sequence[float]) -> Spread:
    """The median, lowest and highest of the per-round ratios ``seconds[i] / base[i]``."""
    if len(seconds) != len(base) or not seconds:
        raise ValueError(f"need one time per round in both, got {len(seconds)} and {len(base)}")
    ratios = [a / b for a, b in zip(seconds, base, strict=True)]
    return Spread(statistics.median(ratios), min(ratios), max(ratios))


def run_counted(run: Callable[[], object], dump_prefix: str) -> int:
    """Inside a process started by ``count_instructions``: instructions executed by ``run()``
    (callgrind counts only between the two toggles; the dump is read back at once)."""
    torch._C._valgrind_toggle()
    run()
    torch._C._valgrind_toggle_and_dump_stats()
    newest = max(glob.glob(dump_prefix + ".*"), key=os.path.getmtime)
    with open(newest) as dump:
        for line in dump:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError(f"no instruction total in callgrind's dump {newest}")


def count_instructions(
    argv: Sequence[str], timeout: float = 3600, warm_start: bool = False
) -> dict:
    """Run ``python argv...`` under callgrind (collection off until the script toggles it, see
    ``run_counted``; the script receives the dump prefix in ``PIP_CALLGRIND_PREFIX``) and
    return the JSON object it prints last. ``warm_start``: nothing is instrumented until the
    script calls ``instrument_from_here`` (it must, once, before it counts)."""
    if shutil.which("valgrind") is None:
        raise FileNotFoundError("valgrind is not installed (needed to count instructions)")
    with tempfile.TemporaryDirectory() as folder:
        prefix = os.path.join(folder, "callgrind.out")
        ready = os.path.join(folder, "ready")
        command = [
            "valgrind",
            "--tool=callgrind",
            "--collect-atstart=no",
            *(["--instr-atstart=no"] if warm_start else []),
            f"--callgrind-out-file={prefix}",
            sys.executable,
            *argv,
        ]
        env = {**os.environ, "PIP_CALLGRIND_PREFIX": prefix, "OMP_NUM_THREADS": "1"}
        env |= {"PIP_CALLGRIND_READY": ready} if warm_start else {}
        start = time.perf_counter()
        # stderr to a file: valgrind's warnings must not fill a pipe nobody reads before ready
        with (
            open(os.path.join(folder, "stderr"), "w+") as errors,
            subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=errors, text=True, env=env
            ) as child,
        ):
            try:
                while warm_start and not os.path.exists(ready) and child.poll() is None:
                    if time.perf_counter() - start > timeout:  # the whole run, as without
                        raise subprocess.TimeoutExpired(command, timeout)
                    time.sleep(0.5)
                if warm_start and child.poll() is None:  # the script waits for instrumentation
                    on = ["callgrind_control", "--instr=on", str(child.pid)]
                    subprocess.run(on, check=True, capture_output=True)
                    open(ready + ".on", "w").close()
                left = max(timeout - (time.perf_counter() - start), 0.0)
                out, _ = child.communicate(timeout=left)
            except BaseException:  # a failed callgrind_control or a timeout: no child left
                child.kill()
                raise
            errors.seek(0)
            err = errors.read()
        if child.returncode:
            raise subprocess.CalledProcessError(child.returncode, command, out, err)
        print(f"callgrind: {time.perf_counter() - start:.0f} s", flush=True)
    return json.loads(out.strip().splitlines()[-1])


def instrument_from_here(wait: float = 600) -> None:
    """Inside a process started by ``count_instructions(..., warm_start=True)``: wait until
    callgrind instruments the code from here on (no-op otherwise); a RuntimeError after
    ``wait`` seconds rather than waiting for ever."""
    ready = os.environ.get("PIP_CALLGRIND_READY")
    if ready is None:
        return
    open(ready, "w").close()
    deadline = time.monotonic() + wait
    while not os.path.exists(ready + ".on"):
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"callgrind did not start instrumenting within {wait:.0f} s "
                "(callgrind_control --instr=on failed or was never run)"
            )
        time.sleep(0.2)
