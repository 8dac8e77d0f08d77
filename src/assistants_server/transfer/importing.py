"""`assistants-server import`: a bundle's records and files into this server's database.

Records are written a batch per transaction, parents before children. A record whose object
the database already holds is compared with it: the same is no conflict (so an import that was
interrupted is simply run again), a different one is a conflict, which the policy settles:

- `fail` (the default) reads the whole bundle first and writes nothing if any record conflicts;
- `skip` keeps the database's object;
- `overwrite` takes the bundle's.

A record's `pk` is kept when the database has no row with it (always, into an empty one), so
lists keep their order; otherwise the row gets a new one, after the others. The default
project, which every server has, is the same project in both: the bundle's settings win.
A file's bytes come before its record, so a file the database holds always has its bytes.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import bindparam, insert, select, text, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistants_server.config import Settings
from assistants_server.db.engine import create_engine, create_sessionmaker
from assistants_server.db.tenancy import DEFAULT_PROJECT
from assistants_server.files.blobs import BlobStore, blob_store
from assistants_server.transfer.archive import BundleError, Member, read_bundle
from assistants_server.transfer.exporting import FORMAT, VERSION, Progress
from assistants_server.transfer.kinds import BY_NAME, Kind

Policy = Literal["fail", "skip", "overwrite"]
POLICIES: tuple[Policy, ...] = ("fail", "skip", "overwrite")
SHOWN_CONFLICTS = 20
ANALYZE_FIRST = 2_000  # rows inserted into a table before its first ANALYZE (PostgreSQL)


class ConflictError(Exception):
    def __init__(self, conflicts: list[str], count: int) -> None:
        shown = "\n".join(f"  {c}" for c in conflicts)
        more = f"\n  ... and {count - len(conflicts)} more" if count > len(conflicts) else ""
        super().__init__(
            f"{count} record(s) of the bundle differ from the database's objects with the same "
            f"ids, so nothing was imported:\n{shown}{more}\nRun again with --on-conflict skip "
            "(keep the database's) or --on-conflict overwrite (take the bundle's).")


@dataclass
class ImportSummary:
    outcomes: dict[str, Counter[str]] = field(default_factory=dict)  # kind -> outcome -> n
    bytes: int = 0
    seconds: float = 0.0


@dataclass
class _Importer:
    sessionmaker: async_sessionmaker[AsyncSession]
    blobs: BlobStore
    policy: Policy
    postgresql: bool
    write: bool
    summary: ImportSummary = field(default_factory=ImportSummary)
    conflicts: list[str] = field(default_factory=list)
    conflict_count: int = 0

    async def records(self, kind: Kind, member: Member, advance: Progress) -> None:
        outcomes = self.summary.outcomes.setdefault(kind.name, Counter())
        analyzed = ANALYZE_FIRST
        async for first, batch in member.batches():
            values = [kind.decode(record, f"{kind.name}.jsonl:{number}")
                      for number, record in enumerate(batch, first)]
            async with self.sessionmaker() as session:
                try:
                    await self._batch(session, kind, values, outcomes)
                except IntegrityError as exc:
                    raise BundleError(
                        f"records/{kind.name}.jsonl, lines {first} to {first + len(batch) - 1}"
                        f": the database refused them ({exc.orig}). A "
                        "record names an object that is neither in the database nor before "
                        "it in the bundle (import the full bundle an incremental one was "
                        "taken after), or holds a value that is another object's.") from exc
                if self.write and self.postgresql and outcomes["inserted"] >= analyzed:
                    # A table filled faster than autovacuum looks has statistics that say it
                    # is small: each batch's lookup by id then scans it whole (an import of
                    # 100,000 messages slowed to 500 records/s). Fresh statistics keep the
                    # lookups on the index.
                    await session.execute(text(f"ANALYZE {kind.name}"))
                    analyzed *= 4
                if self.write:
                    await session.commit()
            advance(len(batch), 0)

    async def _batch(self, session: AsyncSession, kind: Kind, values: list[dict[str, Any]],
                     outcomes: Counter[str]) -> None:
        existing = await _existing(session, kind, values)
        new, replaced = [], []
        for record in values:
            held = existing.get(kind.key(record))
            if held is None:
                new.append(record)
            elif all(held[c.name] == record[c.name] for c in kind.columns if c.name != "pk"):
                outcomes["unchanged"] += 1
            elif self.policy == "overwrite" or (kind.name, record.get("id")) == (
                    "projects", DEFAULT_PROJECT):
                replaced.append(record)
            elif self.policy == "skip":
                outcomes["skipped"] += 1
            else:
                self.conflict_count += 1
                if len(self.conflicts) < SHOWN_CONFLICTS:
                    self.conflicts.append(f"{kind.name} {'/'.join(map(str, kind.key(record)))}")
        if self.write:
            await _insert(session, kind, new, self.postgresql)
            await _overwrite(session, kind, replaced)
        outcomes["inserted"] += len(new)
        outcomes["overwritten"] += len(replaced)

    async def blob(self, member: Member, advance: Progress) -> None:
        """A file's bytes: stored unless the database holds that file already (then kept, or
        replaced with `overwrite`)."""
        assert member.source is not None
        if not self.write:
            return
        async with self.sessionmaker() as session:
            files = BY_NAME["files"].table
            held = await session.scalar(select(files.c.pk).where(files.c.id == member.name))
        if held is None or self.policy == "overwrite":
            size = await self.blobs.put(member.name, member.source)
            self.summary.bytes += size
            advance(0, size)


async def _existing(session: AsyncSession, kind: Kind,
                    values: list[dict[str, Any]]) -> dict[tuple[Any, ...], Any]:
    identity = [kind.table.c[name] for name in kind.identity]
    keys = [kind.key(record) for record in values]
    where = identity[0].in_([k[0] for k in keys]) if len(identity) == 1 else \
        tuple_(*identity).in_(keys)
    rows = (await session.execute(select(*kind.columns).where(where))).mappings()
    return {kind.key(row): row for row in rows}


async def _insert(session: AsyncSession, kind: Kind, values: list[dict[str, Any]],
                  postgresql: bool) -> None:
    if not values:
        return
    kept, renumbered = values, []
    if kind.keeps_pk:  # a record keeps its pk where it is free
        pk = kind.table.c.pk
        wanted = [r["pk"] for r in values if "pk" in r]
        taken = set((await session.scalars(select(pk).where(pk.in_(wanted)))).all())
        kept = [r for r in values if "pk" in r and r["pk"] not in taken]
        renumbered = [{k: v for k, v in r.items() if k != "pk"} for r in values
                      if "pk" not in r or r["pk"] in taken]
    for group in (kept, renumbered):  # one statement per set of keys
        if group:
            await session.execute(insert(kind.table), group)
    if kept and kind.keeps_pk and postgresql:
        # Rows inserted with their pk leave the pk sequence where it was: move it past them.
        await session.execute(text(
            f"SELECT setval(pg_get_serial_sequence('{kind.name}', 'pk'), "
            f"(SELECT max(pk) FROM {kind.name}))"))


async def _overwrite(session: AsyncSession, kind: Kind, values: list[dict[str, Any]]) -> None:
    if not values:
        return
    where = [kind.table.c[name] == bindparam(f"key_{name}") for name in kind.identity]
    rows = [{**{k: v for k, v in r.items() if k != "pk"},
             **{f"key_{name}": r[name] for name in kind.identity}} for r in values]
    await session.execute(update(kind.table).where(*where), rows)


def _check(manifest: dict[str, Any] | None, path: Path) -> dict[str, Any]:
    if manifest is None or manifest.get("format") != FORMAT:
        raise BundleError(f"{path} is not an assistants-server bundle (its manifest does not "
                          f"say format '{FORMAT}').")
    if not isinstance(manifest.get("version"), int) or manifest["version"] > VERSION:
        raise BundleError(f"{path} is a bundle of version {manifest.get('version')}; this "
                          f"server reads version {VERSION} and older: upgrade the server.")
    return manifest


async def _pass(importer: _Importer, path: Path, advance: Progress) -> None:
    async for member in read_bundle(path):
        if member.kind == "manifest":
            _check(member.manifest, path)
        elif member.kind == "blob":
            await importer.blob(member, advance)
        elif member.kind in BY_NAME:
            await importer.records(BY_NAME[member.kind], member, advance)
        else:
            raise BundleError(f"{path} holds records of an unknown kind '{member.kind}'.")


async def read_manifest(path: Path) -> dict[str, Any]:
    async for member in read_bundle(path):
        return _check(member.manifest, path)
    raise BundleError(f"{path} is empty.")


async def import_bundle(settings: Settings, path: Path, policy: Policy,
                        progress: Callable[[int], Progress]) -> ImportSummary:
    """Import the bundle; `progress(total records)` gives the callback told of each batch."""
    started = time.monotonic()
    manifest = await read_manifest(path)
    total = sum(manifest.get("counts", {}).values())
    engine = create_engine(settings)
    try:
        def importer(write: bool) -> _Importer:
            return _Importer(create_sessionmaker(engine), blob_store(settings), policy,
                             engine.dialect.name == "postgresql", write)

        if policy == "fail":
            check = importer(write=False)
            await _pass(check, path, lambda records, size: None)
            if check.conflict_count:
                raise ConflictError(check.conflicts, check.conflict_count)
        run = importer(write=True)
        await _pass(run, path, progress(total))
    finally:
        await engine.dispose()
    run.summary.seconds = time.monotonic() - started
    return run.summary
