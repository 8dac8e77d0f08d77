"""HTTP endpoints of the Admin API under /v1/organization, for admin keys only (the gate,
api/middleware.py, refuses any other): projects, their service accounts and API keys, admin
keys, model permissions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import select

from assistants_server.access import service
from assistants_server.access.schemas import (
    AdminApiKey,
    CreateAdminKeyRequest,
    CreateKeyRequest,
    CreateProjectRequest,
    CreateServiceAccountRequest,
    Deleted,
    ModelPermissions,
    ModelPermissionsDeleted,
    ModelPermissionsObject,
    ModifyProjectRequest,
    ModifyServiceAccountRequest,
    NewAdminApiKey,
    NewServiceAccount,
    NewServiceAccountKey,
    Project,
    ProjectApiKey,
    RateLimit,
    ServiceAccount,
    UpdateRateLimitRequest,
)
from assistants_server.access.usage import UsageQuery, Width, completions_usage
from assistants_server.api.deps import ModelsDep, PrincipalDep, SessionDep
from assistants_server.api.pagination import ListPage, ListQueryDep, fetch_page, page_of
from assistants_server.auth.keys import Principal
from assistants_server.db.access import RateLimitRow, ServiceAccountRow
from assistants_server.kit.errors import InvalidRequestError

router = APIRouter(prefix="/v1/organization", tags=["admin"])
PROJECT = "/projects/{project_id}"
ACCOUNT = PROJECT + "/service_accounts/{service_account_id}"


def _actor(principal: Principal) -> str:
    return principal.key_id or "configuration"


@router.post("/projects")
async def create_project(body: CreateProjectRequest, session: SessionDep,
                         principal: PrincipalDep) -> Project:
    return Project.from_row(await service.create_project(session, body.name, _actor(principal)))


@router.get("/projects")
async def list_projects(session: SessionDep, query: ListQueryDep,
                        include_archived: bool = Query(False)) -> ListPage[Project]:
    rows, more = await service.list_projects(session, query, include_archived)
    return ListPage[Project](**page_of([Project.from_row(r) for r in rows], more))


@router.get(PROJECT)
async def retrieve_project(project_id: str, session: SessionDep) -> Project:
    return Project.from_row(await service.get_project(session, project_id))


@router.post(PROJECT)
async def modify_project(project_id: str, body: ModifyProjectRequest, session: SessionDep,
                         principal: PrincipalDep) -> Project:
    row = await service.get_project(session, project_id, active=True)
    if body.name is not None:
        row.name = body.name
    if "max_active_runs" in body.model_fields_set:
        row.max_active_runs = body.max_active_runs
    await session.flush()
    service.record(_actor(principal), "project modified", row.id,
                   **body.model_dump(exclude_unset=True))
    return Project.from_row(row)


@router.post(PROJECT + "/archive")
async def archive_project(project_id: str, session: SessionDep,
                          principal: PrincipalDep) -> Project:
    return Project.from_row(await service.archive_project(session, project_id,
                                                          _actor(principal)))


@router.post(PROJECT + "/service_accounts")
async def create_service_account(project_id: str, body: CreateServiceAccountRequest,
                                 session: SessionDep, principal: PrincipalDep
                                 ) -> NewServiceAccount:
    """Creates the account and, unless `create_service_account_only`, its key, whose value is
    shown this once."""
    actor = _actor(principal)
    account = await service.create_service_account(session, project_id, body.name, actor)
    key = None
    if not body.create_service_account_only:
        key = await _new_key(session, account, "Secret Key", body.scopes, actor)
    return NewServiceAccount(**ServiceAccount.from_row(account).model_dump(), api_key=key)


@router.get(PROJECT + "/service_accounts")
async def list_service_accounts(project_id: str, session: SessionDep,
                                query: ListQueryDep) -> ListPage[ServiceAccount]:
    await service.get_project(session, project_id)
    rows, more = await fetch_page(session, ServiceAccountRow, query,
                                  ServiceAccountRow.project_id == project_id)
    return ListPage[ServiceAccount](**page_of([ServiceAccount.from_row(r) for r in rows], more))


@router.get(ACCOUNT)
async def retrieve_service_account(project_id: str, service_account_id: str,
                                   session: SessionDep) -> ServiceAccount:
    return ServiceAccount.from_row(
        await service.get_service_account(session, project_id, service_account_id))


@router.post(ACCOUNT)
async def modify_service_account(project_id: str, service_account_id: str,
                                 body: ModifyServiceAccountRequest, session: SessionDep
                                 ) -> ServiceAccount:
    row = await service.get_service_account(session, project_id, service_account_id)
    row.name = body.name if body.name is not None else row.name
    row.role = body.role if body.role is not None else row.role
    await session.flush()
    return ServiceAccount.from_row(row)


@router.delete(ACCOUNT)
async def delete_service_account(project_id: str, service_account_id: str,
                                 session: SessionDep, principal: PrincipalDep) -> Deleted:
    await service.delete_service_account(session, project_id, service_account_id,
                                         _actor(principal))
    return Deleted(id=service_account_id, object="organization.project.service_account.deleted")


@router.post(ACCOUNT + "/api_keys")
async def create_service_account_key(project_id: str, service_account_id: str,
                                     session: SessionDep, principal: PrincipalDep,
                                     body: CreateKeyRequest | None = None
                                     ) -> NewServiceAccountKey:
    body = body or CreateKeyRequest()
    await service.get_project(session, project_id, active=True)
    account = await service.get_service_account(session, project_id, service_account_id)
    return await _new_key(session, account, body.name, body.scopes, _actor(principal))


async def _new_key(session: SessionDep, account: ServiceAccountRow, name: str,
                   scopes: list[str] | None, actor: str) -> NewServiceAccountKey:
    row, secret = await service.create_key(session, "project", name, actor, account=account,
                                           scopes=scopes)
    return NewServiceAccountKey(value=secret, name=row.name, created_at=row.created_at,
                                id=row.id)


@router.get(PROJECT + "/api_keys")
async def list_project_keys(project_id: str, session: SessionDep,
                            query: ListQueryDep) -> ListPage[ProjectApiKey]:
    rows, more = await service.list_keys(session, "project", project_id, query)
    accounts = await service.accounts_of(session, rows)
    keys = [ProjectApiKey.from_row(r, accounts.get(r.service_account_id or "")) for r in rows]
    return ListPage[ProjectApiKey](**page_of(keys, more))


@router.get(PROJECT + "/api_keys/{api_key_id}")
async def retrieve_project_key(project_id: str, api_key_id: str,
                               session: SessionDep) -> ProjectApiKey:
    row = await service.get_key(session, "project", api_key_id, project_id)
    accounts = await service.accounts_of(session, [row])
    return ProjectApiKey.from_row(row, accounts.get(row.service_account_id or ""))


@router.delete(PROJECT + "/api_keys/{api_key_id}")
async def delete_project_key(project_id: str, api_key_id: str, session: SessionDep,
                             principal: PrincipalDep) -> Deleted:
    row = await service.get_key(session, "project", api_key_id, project_id)
    await service.delete_key(session, row, _actor(principal))
    return Deleted(id=api_key_id, object="organization.project.api_key.deleted")


@router.post("/admin_api_keys")
async def create_admin_key(body: CreateAdminKeyRequest, session: SessionDep,
                           principal: PrincipalDep) -> NewAdminApiKey:
    row, secret = await service.create_key(session, "admin", body.name, _actor(principal),
                                           expires_in=body.expires_in_seconds)
    return NewAdminApiKey(**AdminApiKey.from_row(row).model_dump(), value=secret)


@router.get("/admin_api_keys")
async def list_admin_keys(session: SessionDep, query: ListQueryDep) -> ListPage[AdminApiKey]:
    rows, more = await service.list_keys(session, "admin", None, query)
    return ListPage[AdminApiKey](**page_of([AdminApiKey.from_row(r) for r in rows], more))


@router.get("/admin_api_keys/{key_id}")
async def retrieve_admin_key(key_id: str, session: SessionDep) -> AdminApiKey:
    return AdminApiKey.from_row(await service.get_key(session, "admin", key_id))


@router.delete("/admin_api_keys/{key_id}")
async def delete_admin_key(key_id: str, session: SessionDep, principal: PrincipalDep
                           ) -> Deleted:
    row = await service.get_key(session, "admin", key_id)
    if row.id == principal.key_id:
        raise InvalidRequestError("An admin key cannot delete itself: use another admin key.",
                                  param="key_id")
    await service.delete_key(session, row, _actor(principal))
    return Deleted(id=key_id, object="organization.admin_api_key.deleted")


@router.get(PROJECT + "/model_permissions")
async def retrieve_model_permissions(project_id: str, session: SessionDep
                                     ) -> ModelPermissionsObject:
    row = await service.get_project(session, project_id)
    return ModelPermissionsObject(**(row.model_permissions or {"mode": "deny_list",
                                                               "model_ids": []}))


@router.post(PROJECT + "/model_permissions")
async def update_model_permissions(project_id: str, body: ModelPermissions,
                                   session: SessionDep, principal: PrincipalDep
                                   ) -> ModelPermissionsObject:
    row = await service.get_project(session, project_id, active=True)
    row.model_permissions = body.model_dump()
    await session.flush()
    service.record(_actor(principal), "model permissions set", row.id, mode=body.mode,
                   models=",".join(body.model_ids))
    return ModelPermissionsObject(**body.model_dump())


@router.delete(PROJECT + "/model_permissions")
async def delete_model_permissions(project_id: str, session: SessionDep,
                                   principal: PrincipalDep) -> ModelPermissionsDeleted:
    row = await service.get_project(session, project_id, active=True)
    row.model_permissions = None
    await session.flush()
    service.record(_actor(principal), "model permissions removed", row.id)
    return ModelPermissionsDeleted()


@router.get(PROJECT + "/rate_limits")
async def list_rate_limits(project_id: str, session: SessionDep, models: ModelsDep,
                           limit: int = Query(100, ge=1, le=100)) -> ListPage[RateLimit]:
    """Every model the server lists, and any other a limit was set on; 0: no limit."""
    await service.get_project(session, project_id)
    rows = {row.model: row for row in await session.scalars(
        select(RateLimitRow).where(RateLimitRow.project_id == project_id))}
    names = list(dict.fromkeys([m["id"] for m in await models.list_models()] + list(rows)))
    items = [RateLimit.from_row(name, rows.get(name)) for name in names]
    return ListPage[RateLimit](**page_of(items[:limit], len(items) > limit))


@router.post(PROJECT + "/rate_limits/{rate_limit_id}")
async def update_rate_limit(project_id: str, rate_limit_id: str, body: UpdateRateLimitRequest,
                            session: SessionDep, principal: PrincipalDep) -> RateLimit:
    await service.get_project(session, project_id, active=True)
    if not rate_limit_id.startswith("rl-") or len(rate_limit_id) < 4:
        raise InvalidRequestError(f"Invalid 'rate_limit_id': '{rate_limit_id}'. A rate limit's "
                                  "id is rl-<model>, e.g. rl-gpt-4o.", param="rate_limit_id")
    model = rate_limit_id[3:]
    row = await session.scalar(select(RateLimitRow).where(
        RateLimitRow.project_id == project_id, RateLimitRow.model == model))
    if row is None:
        row = RateLimitRow(project_id=project_id, model=model)
        session.add(row)
    for name in ("max_requests_per_1_minute", "max_tokens_per_1_minute",
                 "max_requests_per_1_day"):
        if name in body.model_fields_set:
            setattr(row, name, getattr(body, name) or None)  # 0: no limit
    await session.flush()
    service.record(_actor(principal), "rate limit set", project_id, model=model,
                   **body.model_dump(exclude_unset=True))
    return RateLimit.from_row(model, row)


Several = Annotated[list[str], Query()]


@router.get("/usage/completions")
async def usage_completions(
    session: SessionDep, start_time: int, end_time: int | None = None,
    bucket_width: Width = "1d", project_ids: Several = [],  # noqa: B006 (FastAPI copies)
    models: Several = [], group_by: Several = [],  # noqa: B006
    limit: int | None = None, page: str | None = None,
) -> dict[str, Any]:
    """Tokens per bucket of time, from the runs' model calls; `group_by` project_id and/or
    model. Lists are given as repeated parameters (`models=a&models=b`)."""
    return await completions_usage(session, UsageQuery(
        start_time, end_time, bucket_width, project_ids, models, group_by, limit, page))
