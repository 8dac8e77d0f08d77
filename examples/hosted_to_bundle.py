"""Turn what was saved from OpenAI's hosted Assistants API into a bundle that
`assistants-server import` reads (docs/bundle.md).

Before the hosted service shut down, many users kept their assistants and conversations with
the SDK's `model_dump()`. This script takes such a folder, laid out as the snippet below writes
it, and makes a bundle directory of it: the assistants, the files whose bytes were kept, the
threads and their messages, with their ids, timestamps and order.

    import json, pathlib, openai
    client, saved = openai.OpenAI(), pathlib.Path("saved")
    (saved / "threads").mkdir(parents=True)
    (saved / "files").mkdir()
    dump = lambda objects: [o.model_dump(mode="json") for o in objects]
    (saved / "assistants.json").write_text(json.dumps(dump(client.beta.assistants.list())))
    files = [f for f in client.files.list() if f.purpose == "assistants"]
    (saved / "files.json").write_text(json.dumps(dump(files)))
    for f in files:
        (saved / "files" / f.id).write_bytes(client.files.content(f.id).read())
    for thread_id in MY_THREAD_IDS:  # the hosted API never listed threads: keep your ids
        thread = client.beta.threads.retrieve(thread_id)
        messages = client.beta.threads.messages.list(thread_id, order="asc")
        (saved / "threads" / f"{thread_id}.json").write_text(json.dumps(
            {"thread": thread.model_dump(mode="json"), "messages": dump(messages)}))

Then:

    python examples/hosted_to_bundle.py saved/ bundle/ [--project proj_default]
    assistants-server import bundle/

Runs and run steps were not kept by the snippet, so messages name no run. Vector stores are
not carried: put the files into new stores after the import. Ids a definition names that the
bundle does not hold (a vector store, a file whose bytes were not kept) are left out of it.
Only the standard library is used: run it with any Python 3.9+.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

FORMAT, VERSION = "assistants-server-bundle", 1


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else []


def _resources(resources: dict[str, Any] | None, files: set[str]) -> dict[str, Any]:
    """Tool resources with only the files the bundle holds; no vector stores."""
    kept: dict[str, Any] = {}
    code = (resources or {}).get("code_interpreter") or {}
    if code.get("file_ids"):
        kept["code_interpreter"] = {"file_ids": [f for f in code["file_ids"] if f in files]}
    return kept


def _file(saved: dict[str, Any], size: int) -> dict[str, Any]:
    return {"id": saved["id"], "created_at": saved["created_at"], "bytes": size,
            "filename": saved["filename"], "purpose": saved["purpose"], "status": "processed",
            "status_details": None, "expires_at": saved.get("expires_at")}


def _assistant(saved: dict[str, Any], files: set[str]) -> dict[str, Any]:
    record = {key: saved.get(key) for key in (
        "id", "created_at", "name", "description", "model", "instructions", "temperature",
        "top_p", "reasoning_effort")}
    return {**record, "metadata": saved.get("metadata") or {}, "tools": saved.get("tools") or [],
            "tool_resources": _resources(saved.get("tool_resources"), files),
            "response_format": saved.get("response_format") or "auto"}


def _message(saved: dict[str, Any], assistants: set[str], files: set[str]) -> dict[str, Any]:
    record = {key: saved.get(key) for key in (
        "id", "created_at", "thread_id", "role", "content", "incomplete_details",
        "completed_at", "incomplete_at")}
    attachments = [a for a in saved.get("attachments") or [] if a.get("file_id") in files]
    return {**record, "status": saved.get("status") or "completed",
            "assistant_id": saved.get("assistant_id") if saved.get("assistant_id") in assistants
            else None, "run_id": None, "attachments": attachments,
            "metadata": saved.get("metadata") or {}}


def convert(saved: Path, bundle: Path, project: str) -> dict[str, int]:
    """Write the bundle; the records written per kind."""
    records: dict[str, list[dict[str, Any]]] = {"files": [], "assistants": [], "threads": [],
                                                "messages": []}
    (bundle / "files").mkdir(parents=True)
    for file in _load(saved / "files.json"):
        content = saved / "files" / file["id"]
        if content.is_file():
            shutil.copyfile(content, bundle / "files" / file["id"])
            records["files"].append(_file(file, content.stat().st_size))
    files = {record["id"] for record in records["files"]}
    records["assistants"] = [_assistant(a, files) for a in _load(saved / "assistants.json")]
    assistants = {record["id"] for record in records["assistants"]}
    for path in sorted((saved / "threads").glob("*.json")):
        transcript = _load(path)
        thread = transcript["thread"]
        records["threads"].append({
            "id": thread["id"], "created_at": thread["created_at"],
            "metadata": thread.get("metadata") or {},
            "tool_resources": _resources(thread.get("tool_resources"), files)})
        records["messages"] += [_message(m, assistants, files) for m in transcript["messages"]]
    (bundle / "records").mkdir()
    for kind, rows in records.items():
        rows.sort(key=lambda row: row["created_at"])  # lists sort by it; stable for ties
        with (bundle / "records" / f"{kind}.jsonl").open("w", encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps({**row, "project_id": project}) + "\n")
    counts = {kind: len(rows) for kind, rows in records.items()}
    (bundle / "manifest.json").write_text(json.dumps(
        {"format": FORMAT, "version": VERSION, "project": project, "keys": False,
         "chunks": False, "counts": counts,
         "bytes": sum(r["bytes"] for r in records["files"])}, indent=2) + "\n")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("saved", type=Path, help="the folder the SDK snippet wrote")
    parser.add_argument("bundle", type=Path, help="the bundle directory to make (new)")
    parser.add_argument("--project", default="proj_default",
                        help="the project the objects go into (default: proj_default)")
    args = parser.parse_args(argv)
    if args.bundle.exists():
        print(f"{args.bundle} already exists: name a new directory", file=sys.stderr)
        return 1
    counts = convert(args.saved, args.bundle, args.project)
    print(", ".join(f"{n} {kind}" for kind, n in counts.items()) + f" written to {args.bundle}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
