"""Cost of a trivial execution (`1 + 1`) in the code_interpreter sandbox, cold and warm.

Cold: a new session each time (its process started, namespaces and jail built, the worker
ready) then the execution; warm: the same session again and again. Baselines measured in the
same run: spawning `python -I -c pass` (the least any process-per-session design pays) and
compiling and evaluating `1 + 1` in-process. Prints p50/p95 and the ratios, writes JSON to
bench/results/.
--database-url is accepted (the shared parser) but unused.

    .venv/bin/python bench/sandbox_exec.py [--cold N] [--warm N] [--isolation none]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from harness import RESULTS, argument_parser, machine, pct

from assistants_server.sandbox import LocalSandbox

CODE = "1 + 1"


def parse_args() -> argparse.Namespace:
    p = argument_parser(__doc__)
    p.add_argument("--cold", type=int, default=40, help="cold executions (new sessions)")
    p.add_argument("--warm", type=int, default=400, help="warm executions (one session)")
    p.add_argument("--isolation", choices=["namespaces", "none"], default="namespaces")
    p.add_argument("--python", default=sys.executable, help="the sandbox's interpreter")
    return p.parse_args()


async def timed(samples: int, action: Callable[[int], Awaitable[object]]) -> list[float]:
    durations = []
    for i in range(samples):
        started = time.perf_counter()
        await action(i)
        durations.append((time.perf_counter() - started) * 1000)
    return durations


async def measure(args: argparse.Namespace, root: Path) -> dict[str, list[float]]:
    box = LocalSandbox(root / "sandboxes", python=args.python, isolation=args.isolation)
    try:
        await box.execute("warmup", CODE)  # the one-time inspection of the sandbox's Python

        async def warm(_: int) -> None:
            assert (await box.execute("warm", CODE)).logs == "2"

        cold_ms = []
        for i in range(args.cold):
            started = time.perf_counter()
            result = await box.execute(f"cold_{i}", CODE)
            cold_ms.append((time.perf_counter() - started) * 1000)
            assert result.logs == "2", result
            await box.close(f"cold_{i}")  # not timed: closing is off the request path
        await warm(0)
        warm_ms = await timed(args.warm, warm)
    finally:
        await box.aclose()

    async def spawn(_: int) -> None:
        proc = await asyncio.create_subprocess_exec(args.python, "-I", "-c", "pass")
        await proc.wait()

    async def in_process(_: int) -> None:
        eval(compile(CODE, "<bench>", "eval"), {})  # noqa: S307 - the baseline is exactly this

    return {"cold": cold_ms, "warm": warm_ms,
            "spawn python -c pass": await timed(args.cold, spawn),
            "in-process compile+eval": await timed(args.warm, in_process)}


def summary(values: list[float]) -> dict[str, float]:
    return {"p50_ms": statistics.median(values), "p95_ms": pct(values, 95)}


def main() -> int:
    args = parse_args()
    root = Path(tempfile.mkdtemp(prefix="sandbox-bench-"))
    try:
        samples = asyncio.run(measure(args, root))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    stats = {name: summary(values) for name, values in samples.items()}
    head = f"{'scenario':<26}{'n':>6}{'p50 ms':>10}{'p95 ms':>10}"
    print(f"\nsandbox execution of {CODE!r}, isolation={args.isolation}\n{head}\n"
          + "-" * len(head))
    for name, s in stats.items():
        print(f"{name:<26}{len(samples[name]):>6}{s['p50_ms']:>10.3f}{s['p95_ms']:>10.3f}")
    p50 = {name: s["p50_ms"] for name, s in stats.items()}
    ratios = {"cold / spawn (p50)": p50["cold"] / p50["spawn python -c pass"],
              "warm / in-process (p50)": p50["warm"] / p50["in-process compile+eval"]}
    for name, ratio in ratios.items():
        print(f"{name:<26}{ratio:>16.1f}x")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"sandbox_exec-{args.isolation}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    record: dict[str, Any] = {"machine": machine(), "args": vars(args), "stats": stats,
                              "ratios": ratios, "samples_ms": samples}
    out.write_text(json.dumps(record, indent=1))
    print(f"results written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
