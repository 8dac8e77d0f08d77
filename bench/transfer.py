"""Export and import throughput (records/s, MB/s), and peak memory that does not grow with
the data: the same steps at two sizes, in the same run.

For each size, a bundle is made as another tool would write one (docs/bundle.md): messages in
threads of 100, a few assistants, and files of 10 MB of random bytes. Then, each step an
`assistants-server` process of its own whose peak RSS is read from the kernel (wait4):

1. `import` it into an empty SQLite server;
2. `export` that server into a new bundle (a directory);
3. `import` the exported bundle into PostgreSQL (a throwaway schema), when --database-url names
   one.

The baseline, in the same run: copying the same files as the file store keeps them (each
synced to disk), the ceiling of any step that moves the bytes; "vs copy" is a step's MB/s over
it. Goal: each step's peak RSS at the large size within 1.25x of
its peak at the small one (memory flat: records stream a batch at a time, bytes a chunk at a
time).

Prints a table, writes JSON to bench/results/, exits 0.

    .venv/bin/python bench/transfer.py [--small 10000:100] [--large 100000:1024] \
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from harness import RESULTS, ROOT, argument_parser, drop_schema, machine

FILE_MB = 10
GOAL_RSS_RATIO = 1.25
TEXT = "The keeper logs the tide at dawn and the wind at dusk; " * 5


def make_bundle(path: Path, messages: int, megabytes: int) -> dict[str, int]:
    """A bundle of `messages` messages and `megabytes` MB of files; its record counts."""
    (path / "records").mkdir(parents=True)
    (path / "files").mkdir()
    now = int(time.time()) - 86400
    records: dict[str, int] = {}

    def write(kind: str, rows: Any) -> None:
        with (path / "records" / f"{kind}.jsonl").open("w") as out:
            records[kind] = 0
            for row in rows:
                out.write(json.dumps(row, separators=(",", ":")) + "\n")
                records[kind] += 1

    files = [f"file-bench{n:06d}" for n in range(megabytes // FILE_MB)]
    for file_id in files:
        (path / "files" / file_id).write_bytes(os.urandom(FILE_MB << 20))
    write("files", ({"id": f, "created_at": now, "bytes": FILE_MB << 20,
                     "filename": f"{f}.bin", "purpose": "assistants"} for f in files))
    write("assistants", ({"id": f"asst_bench{n:06d}", "created_at": now, "model": "gpt-4o",
                          "name": f"Assistant {n}", "instructions": TEXT} for n in range(20)))
    threads = max(1, messages // 100)
    write("threads", ({"id": f"thread_bench{n:06d}", "created_at": now}
                      for n in range(threads)))
    write("messages", ({
        "id": f"msg_bench{n:08d}", "created_at": now + n // 100,
        "thread_id": f"thread_bench{n % threads:06d}", "role": "user" if n % 2 else "assistant",
        "content": [{"type": "text", "text": {"value": f"{n}: {TEXT}", "annotations": []}}],
        "token_count": 80, "metadata": {"n": str(n)}} for n in range(messages)))
    (path / "manifest.json").write_text(json.dumps({
        "format": "assistants-server-bundle", "version": 1, "counts": records,
        "bytes": len(files) * (FILE_MB << 20)}))
    return records


def durable_copy(source: Path, target: Path) -> float:
    """Copy every file of `source` as the file store keeps one (the bytes synced before the
    file counts as stored): the seconds it took."""
    started = time.monotonic()
    target.mkdir()
    for path in source.iterdir():
        with path.open("rb") as reader, (target / path.name).open("wb") as writer:
            shutil.copyfileobj(reader, writer, 1 << 20)
            writer.flush()
            os.fsync(writer.fileno())
    seconds = time.monotonic() - started
    shutil.rmtree(target)
    return seconds


def timed(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Run one `assistants-server` command: its seconds and peak RSS in MB."""
    started = time.monotonic()
    process = subprocess.Popen([str(ROOT / ".venv" / "bin" / "assistants-server"), *command],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.monotonic() - started
    if status != 0:
        raise SystemExit(f"{command} failed: {process.stderr.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss // 1024


def measure(work: Path, messages: int, megabytes: int, database_url: str | None) -> dict[str, Any]:
    bundle = work / "bundle"
    counts = make_bundle(bundle, messages, megabytes)
    total, size = sum(counts.values()), megabytes
    copy_mbs = size / durable_copy(bundle / "files", work / "copied")
    env = {**os.environ, "ASSISTANTS_DATA_DIR": str(work / "sqlite")}
    env.pop("ASSISTANTS_DATABASE_URL", None)
    steps: dict[str, Any] = {}
    for name, command, step_env in [
        ("import into SQLite", ["import", str(bundle)], env),
        ("export from SQLite", ["export", str(work / "exported")], env),
    ]:
        seconds, rss = timed(command, step_env)
        steps[name] = {"seconds": seconds, "records_per_s": total / seconds,
                       "mb_per_s": size / seconds, "peak_rss_mb": rss}
    if database_url:
        schema = "bench_" + uuid.uuid4().hex[:12]
        pg_env = {**env, "ASSISTANTS_DATA_DIR": str(work / "postgres"),
                  "ASSISTANTS_DATABASE_URL": database_url, "ASSISTANTS_DATABASE_SCHEMA": schema}
        try:
            seconds, rss = timed(["import", str(work / "exported")], pg_env)
        finally:
            asyncio.run(drop_schema(database_url, schema))
        steps["import into PostgreSQL"] = {"seconds": seconds, "records_per_s": total / seconds,
                                           "mb_per_s": size / seconds, "peak_rss_mb": rss}
    shutil.rmtree(work)
    return {"messages": messages, "megabytes": size, "records": total,
            "copy_mb_per_s": copy_mbs, "steps": steps}


def main() -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--small", default="10000:100", help="MESSAGES:MEGABYTES")
    parser.add_argument("--large", default="100000:1024", help="MESSAGES:MEGABYTES")
    args = parser.parse_args()
    sizes = {}
    for label in ("small", "large"):
        messages, megabytes = (int(x) for x in getattr(args, label).split(":"))
        work = Path(tempfile.mkdtemp(prefix=f"bench-transfer-{label}-"))
        sizes[label] = measure(work, messages, megabytes, args.database_url)
    small, large = sizes["small"], sizes["large"]
    print(f"{'step':<26}{'size':>22}{'records/s':>11}{'MB/s':>8}{'vs copy':>9}{'peak RSS':>10}")
    for result in sizes.values():
        for step, figures in result["steps"].items():
            print(f"{step:<26}{result['messages']:>9} msgs {result['megabytes']:>5} MB"
                  f"{figures['records_per_s']:>11.0f}{figures['mb_per_s']:>8.0f}"
                  f"{figures['mb_per_s'] / result['copy_mb_per_s']:>9.2f}"
                  f"{figures['peak_rss_mb']:>7} MB")
    ratios = {step: large["steps"][step]["peak_rss_mb"] / small["steps"][step]["peak_rss_mb"]
              for step in small["steps"]}
    for step, ratio in ratios.items():
        verdict = "met" if ratio <= GOAL_RSS_RATIO else "missed"
        print(f"peak RSS, large / small, {step}: {ratio:.2f} (goal <= {GOAL_RSS_RATIO}): "
              f"{verdict}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"transfer-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps({"machine": machine(), "sizes": sizes, "rss_ratios": ratios},
                              indent=2))
    print(f"written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
