"""Projects, service accounts and keys: what the Admin API and the CLI do with them. Every change
is written to the audit log (logger `assistants_server.audit`) with who made it."""

from __future__ import annotations

import logging
import time
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from assistants_server.api.pagination import ListQuery, fetch_page
from assistants_server.auth.keys import new_secret, redact, secret_hash
from assistants_server.auth.scopes import check_scopes
from assistants_server.db.access import ApiKeyRow, ProjectRow, ServiceAccountRow
from assistants_server.db.tenancy import DEFAULT_PROJECT
from assistants_server.kit.errors import InvalidRequestError, NotFoundError
from assistants_server.kit.ids import new_id

audit = logging.getLogger("assistants_server.audit")


def record(actor: str, action: str, target: str, **details: object) -> None:
    extra = "".join(f" {name}={value}" for name, value in details.items() if value is not None)
    audit.info("%s by %s: %s%s", action, actor, target, extra)


async def create_project(session: AsyncSession, name: str, actor: str) -> ProjectRow:
    row = ProjectRow(id=new_id("proj_"), created_at=int(time.time()), metadata_={}, name=name,
                     status="active")
    session.add(row)
    await session.flush()
    record(actor, "project created", row.id, name=repr(name))
    return row


async def get_project(session: AsyncSession, project_id: str, *, active: bool = False
                      ) -> ProjectRow:
    row = await session.scalar(select(ProjectRow).where(ProjectRow.id == project_id))
    if row is None:
        raise NotFoundError(f"The project {project_id} was not found.", param="project_id")
    if active and row.status != "active":
        raise InvalidRequestError(f"The project {project_id} is archived and cannot be changed.",
                                  param="project_id")
    return row


async def list_projects(session: AsyncSession, query: ListQuery, include_archived: bool
                        ) -> tuple[list[ProjectRow], bool]:
    visible = [] if include_archived else [ProjectRow.status == "active"]
    return await fetch_page(session, ProjectRow, query, visible=visible)


async def archive_project(session: AsyncSession, project_id: str, actor: str) -> ProjectRow:
    row = await get_project(session, project_id)
    if row.id == DEFAULT_PROJECT:
        raise InvalidRequestError("The default project cannot be archived: the keyless default "
                                  "and ASSISTANTS_API_KEYS use it.", param="project_id")
    if row.status != "archived":
        row.status, row.archived_at = "archived", int(time.time())
        await session.flush()
        record(actor, "project archived", row.id)
    return row


async def create_service_account(
    session: AsyncSession, project_id: str, name: str, actor: str,
) -> ServiceAccountRow:
    await get_project(session, project_id, active=True)
    row = ServiceAccountRow(id=new_id("svc_acct_"), created_at=int(time.time()), metadata_={},
                            project_id=project_id, name=name, role="member")
    session.add(row)
    await session.flush()
    record(actor, "service account created", row.id, project=project_id, name=repr(name))
    return row


async def get_service_account(session: AsyncSession, project_id: str, account_id: str
                              ) -> ServiceAccountRow:
    await get_project(session, project_id)
    row = await session.scalar(select(ServiceAccountRow).where(
        ServiceAccountRow.id == account_id, ServiceAccountRow.project_id == project_id))
    if row is None:
        raise NotFoundError(f"No service account found with id '{account_id}' in project "
                            f"{project_id}.", param="service_account_id")
    return row


async def delete_service_account(session: AsyncSession, project_id: str, account_id: str,
                                 actor: str) -> None:
    row = await get_service_account(session, project_id, account_id)
    await session.execute(update(ApiKeyRow).where(ApiKeyRow.service_account_id == row.id)
                          .values(revoked_at=int(time.time()), service_account_id=None))
    await session.delete(row)
    await session.flush()
    record(actor, "service account deleted, with its keys", row.id, project=project_id)


async def create_key(
    session: AsyncSession, kind: Literal["project", "admin"], name: str, actor: str, *,
    account: ServiceAccountRow | None = None, scopes: list[str] | None = None,
    expires_in: int | None = None,
) -> tuple[ApiKeyRow, str]:
    """A new key and its secret, which is shown this once and kept only as a hash."""
    if scopes is not None:
        try:
            scopes = check_scopes(scopes)
        except ValueError as exc:
            raise InvalidRequestError(f"Invalid 'scopes': {exc}.", param="scopes") from None
    secret = new_secret(kind)
    now = int(time.time())
    row = ApiKeyRow(id=new_id("key_"), created_at=now, metadata_={}, kind=kind,
                    project_id=account.project_id if account is not None else None,
                    service_account_id=account.id if account is not None else None, name=name,
                    secret_hash=secret_hash(secret), redacted_value=redact(secret),
                    scopes=scopes, expires_at=now + expires_in if expires_in else None,
                    created_by=actor)
    session.add(row)
    await session.flush()
    record(actor, f"{kind} key created", row.id, project=row.project_id,
           service_account=row.service_account_id, scopes=scopes and ",".join(scopes))
    return row, secret


async def get_key(session: AsyncSession, kind: Literal["project", "admin"], key_id: str,
                  project_id: str | None = None) -> ApiKeyRow:
    if project_id is not None:
        await get_project(session, project_id)
    row = await session.scalar(select(ApiKeyRow).where(
        ApiKeyRow.id == key_id, ApiKeyRow.kind == kind, ApiKeyRow.project_id == project_id,
        ApiKeyRow.revoked_at.is_(None)))
    if row is None:
        where = f" in project {project_id}" if project_id else ""
        raise NotFoundError(f"No API key found with id '{key_id}'{where}.", param="key_id")
    return row


async def list_keys(session: AsyncSession, kind: Literal["project", "admin"],
                    project_id: str | None, query: ListQuery) -> tuple[list[ApiKeyRow], bool]:
    if project_id is not None:
        await get_project(session, project_id)
    return await fetch_page(session, ApiKeyRow, query, ApiKeyRow.kind == kind,
                            ApiKeyRow.project_id == project_id,
                            visible=[ApiKeyRow.revoked_at.is_(None)])


async def delete_key(session: AsyncSession, row: ApiKeyRow, actor: str) -> None:
    """Revoke the key: it stops working and is no longer listed; its record stays."""
    row.revoked_at = int(time.time())
    await session.flush()
    record(actor, f"{row.kind} key deleted", row.id, project=row.project_id)


async def accounts_of(session: AsyncSession, rows: list[ApiKeyRow]
                      ) -> dict[str, ServiceAccountRow]:
    ids = {row.service_account_id for row in rows if row.service_account_id}
    if not ids:
        return {}
    found = await session.scalars(select(ServiceAccountRow).where(ServiceAccountRow.id.in_(ids)))
    return {account.id: account for account in found}
