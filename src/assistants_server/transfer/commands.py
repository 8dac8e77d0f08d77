"""The `export` and `import` commands: their arguments, a progress bar on a terminal (tqdm),
and the summary they print when done."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from assistants_server.config import Settings
from assistants_server.db.migrate import run_blocking
from assistants_server.transfer.archive import BundleError
from assistants_server.transfer.exporting import ExportOptions, Progress, export_bundle
from assistants_server.transfer.importing import POLICIES, ConflictError, import_bundle
from assistants_server.transfer.kinds import RecordError

COMMANDS = ("export", "import")
MB = 1 << 20


def add_commands(commands: Any) -> None:
    """Add the commands to the `assistants-server` parser's subparsers."""
    export = commands.add_parser(
        "export", help="write the database's objects and files into a bundle (docs/bundle.md)")
    export.add_argument("path", type=Path, help="a new directory, or an archive: NAME.tar, "
                        "NAME.tar.gz or NAME.tgz")
    export.add_argument("--project", help="one project's objects only (proj_...)")
    export.add_argument("--since", type=_time, metavar="TIME",
                        help="only objects changed at or after TIME: Unix seconds or ISO 8601 "
                        "(UTC unless it says otherwise), e.g. the `exported_at` of an earlier "
                        "bundle's manifest")
    export.add_argument("--without-keys", action="store_true",
                        help="leave the API key records out (they hold the keys' SHA-256 "
                        "hashes, never the keys)")
    export.add_argument("--without-chunks", action="store_true",
                        help="leave vector stores' chunks and embeddings out: smaller, and the "
                        "importing server indexes the files again")
    load = commands.add_parser("import", help="read a bundle into the database")
    load.add_argument("path", type=Path, help="the bundle: a directory or an archive")
    load.add_argument("--on-conflict", choices=POLICIES, default="fail",
                      help="an object the database holds with other contents: 'fail' "
                      "(default: check first, import nothing), 'skip' (keep the database's) "
                      "or 'overwrite' (take the bundle's)")


def _time(value: str) -> int:
    if value.isdigit():
        return int(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"'{value}' is not Unix seconds or an ISO 8601 time (2026-12-01T08:00)") from exc
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def _progress(what: str) -> Any:
    def start(total: int) -> Progress:
        bar = tqdm(total=total, unit=" records", desc=what, disable=None, file=sys.stderr,
                   dynamic_ncols=True)
        moved = [0]

        def advance(records: int, size: int) -> None:
            moved[0] += size
            bar.update(records)
            if size:
                bar.set_postfix_str(f"{moved[0] / MB:.1f} MB", refresh=False)
            if bar.n >= total:
                bar.close()
        return advance
    return start


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} bytes"
    return f"{count / 1024:.1f} KB" if count < MB else f"{count / MB:.1f} MB"


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    try:
        if args.command == "export":
            return _export(args, settings)
        return _import(args, settings)
    except (BundleError, RecordError, ConflictError) as exc:
        print(f"assistants-server: {exc}", file=sys.stderr)
        return 1


def _export(args: argparse.Namespace, settings: Settings) -> int:
    options = ExportOptions(project=args.project, since=args.since,
                            keys=not args.without_keys, chunks=not args.without_chunks)
    summary = run_blocking(export_bundle(settings, args.path, options, _progress("export")))
    counts = ", ".join(f"{kind} {n}" for kind, n in summary.counts.items() if n)
    print(f"exported {sum(summary.counts.values())} records ({counts or 'none'}) and "
          f"{_size(summary.bytes)} of files to {args.path} in {summary.seconds:.1f} s")
    for file_id in summary.missing_blobs:
        print(f"warning: the bytes of file {file_id} were missing from the file store: its "
              "record is in the bundle, its content is not", file=sys.stderr)
    return 0


def _import(args: argparse.Namespace, settings: Settings) -> int:
    summary = run_blocking(import_bundle(settings, args.path, args.on_conflict,
                                         _progress("import")))
    print(f"imported {args.path} in {summary.seconds:.1f} s "
          f"({_size(summary.bytes)} of files stored)")
    print(f"{'kind':<28}{'inserted':>10}{'unchanged':>11}{'skipped':>9}{'overwritten':>13}")
    for kind, n in summary.outcomes.items():
        print(f"{kind:<28}{n['inserted']:>10}{n['unchanged']:>11}{n['skipped']:>9}"
              f"{n['overwritten']:>13}")
    return 0
