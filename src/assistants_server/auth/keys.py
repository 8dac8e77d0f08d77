"""API keys: made, stored as hashes, and turned back into who is calling (a `Principal`).

Resolving a key reads the database at most once per `cache_seconds` per key (and per
project, for its status and model permissions), so a deleted key or an archived project
stops working in every process within that time, and a request in between costs a dict
lookup and a SHA-256.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistants_server.db.access import ApiKeyRow, ProjectRow, RateLimitRow
from assistants_server.db.tenancy import DEFAULT_PROJECT
from assistants_server.kit.errors import AuthenticationError

PREFIXES = {"project": "sk-proj-", "admin": "sk-admin-"}
# How often a key's last use is written: not on every request.
LAST_USED_EVERY = 60
_CACHE_LIMIT = 10_000


@dataclass(frozen=True)
class Principal:
    """Who is calling: a project's key (or the keyless default), or an admin key."""

    kind: Literal["project", "admin"]
    project_id: str | None
    key_id: str | None = None  # None: a configured key, or no key at all
    scopes: frozenset[str] | None = None  # None: every scope


@dataclass(frozen=True)
class ProjectAccess:
    """What a project's keys may do, read with the same freshness as the keys."""

    active: bool
    model_permissions: dict[str, Any] | None
    max_active_runs: int | None
    # model -> (requests per minute, tokens per minute, requests per day); None: no limit.
    rate_limits: dict[str, tuple[int | None, int | None, int | None]] = field(
        default_factory=dict)


def new_secret(kind: Literal["project", "admin"]) -> str:
    return PREFIXES[kind] + secrets.token_urlsafe(48)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def redact(secret: str) -> str:
    prefix = next((p for p in PREFIXES.values() if secret.startswith(p)), secret[:3])
    return f"{prefix}{secret[len(prefix):len(prefix) + 2]}...{secret[-4:]}"


class KeyStore:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, api_keys: Iterable[str],
        admin_keys: Iterable[str], cache_seconds: float,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.api_keys = [key.encode() for key in api_keys]
        self.admin_keys = [key.encode() for key in admin_keys]
        self.cache_seconds = cache_seconds
        self._keys: dict[str, tuple[float, Principal | None]] = {}
        self._projects: dict[str, tuple[float, ProjectAccess | None]] = {}
        self._any_stored: tuple[float, bool] = (-1.0, False)

    async def principal(self, authorization: str) -> Principal:
        """Who sends `authorization` (the header's value); AuthenticationError if nobody."""
        scheme, _, given = authorization.partition(" ")
        secret = given.strip() if scheme.lower() == "bearer" else ""
        if await self.keyless():
            return Principal("project", DEFAULT_PROJECT)
        if not secret:
            raise AuthenticationError(
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                code="missing_api_key")
        encoded = secret.encode()
        if any(hmac.compare_digest(encoded, known) for known in self.api_keys):
            return Principal("project", DEFAULT_PROJECT)
        if any(hmac.compare_digest(encoded, known) for known in self.admin_keys):
            return Principal("admin", None)
        principal = await self._stored(secret_hash(secret))
        if principal is None:
            raise AuthenticationError(
                f"Incorrect API key provided: {_shown(secret)}. Use a key this server issued "
                "(or one configured in ASSISTANTS_API_KEYS); a deleted key stops working.",
                code="invalid_api_key")
        if principal.project_id is not None:
            project = await self.project(principal.project_id)
            if project is None or not project.active:
                raise AuthenticationError(
                    f"The project {principal.project_id} of this API key is archived; its keys "
                    "no longer work. Use a key of an active project.", code="invalid_api_key")
        return principal

    async def keyless(self) -> bool:
        """No key is configured or was ever created (revoked ones count: revoking the only
        key must not open the server): the embedded default, open to any caller."""
        if self.api_keys or self.admin_keys:
            return False
        checked, stored = self._any_stored
        if time.monotonic() - checked >= self.cache_seconds:
            async with self.sessionmaker() as session:
                stored = await session.scalar(select(ApiKeyRow.pk).limit(1)) is not None
            self._any_stored = (time.monotonic(), stored)
        return not stored

    async def project(self, project_id: str) -> ProjectAccess | None:
        cached = self._projects.get(project_id)
        if cached is not None and time.monotonic() - cached[0] < self.cache_seconds:
            return cached[1]
        async with self.sessionmaker() as session:
            row = await session.scalar(select(ProjectRow).where(ProjectRow.id == project_id))
            limits = await session.scalars(select(RateLimitRow).where(
                RateLimitRow.project_id == project_id))
            rate_limits = {limit.model: (limit.max_requests_per_1_minute,
                                         limit.max_tokens_per_1_minute,
                                         limit.max_requests_per_1_day) for limit in limits}
        access = None if row is None else ProjectAccess(
            row.status == "active", row.model_permissions, row.max_active_runs, rate_limits)
        _remember(self._projects, project_id, access)
        return access

    async def _stored(self, digest: str) -> Principal | None:
        cached = self._keys.get(digest)
        if cached is not None and time.monotonic() - cached[0] < self.cache_seconds:
            return cached[1]
        async with self.sessionmaker() as session:
            row = await session.scalar(select(ApiKeyRow).where(ApiKeyRow.secret_hash == digest))
            now = int(time.time())
            principal = None
            if row is not None and hmac.compare_digest(row.secret_hash, digest) and (
                    row.revoked_at is None) and (row.expires_at is None or row.expires_at > now):
                principal = Principal(
                    "admin" if row.kind == "admin" else "project", row.project_id, row.id,
                    frozenset(row.scopes) if row.scopes is not None else None)
                await _note_use(session, row, now)
        _remember(self._keys, digest, principal)
        return principal


async def _note_use(session: AsyncSession, row: ApiKeyRow, now: int) -> None:
    if row.last_used_at is not None and now - row.last_used_at < LAST_USED_EVERY:
        return
    await session.execute(update(ApiKeyRow).where(ApiKeyRow.pk == row.pk)
                          .values(last_used_at=now))
    await session.commit()


def _remember(cache: dict[str, tuple[float, Any]], key: str, value: Any) -> None:
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()  # many distinct keys (a scan): start again rather than grow
    cache[key] = (time.monotonic(), value)


def _shown(secret: str) -> str:
    return secret[:3] + "*" * 4 + secret[-4:] if len(secret) > 8 else "*" * len(secret)
