"""Request-scoped dependencies: who calls, the database session (seeing the caller's project
only: db/tenancy.py; committed when the endpoint returns, then what the request queued to
follow the commit: kit/uow.py) and the app's settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from assistants_server.auth.keys import KeyStore, Principal, ProjectAccess
from assistants_server.backends.catalog import ModelCatalog
from assistants_server.config import Settings
from assistants_server.db.tenancy import PROJECT
from assistants_server.events.wakeups import SESSION_INFO
from assistants_server.kit.uow import commit, rollback


async def _principal(request: Request) -> Principal:
    principal: Principal = request.state.principal  # the gate's (api/middleware.py)
    return principal


def project_of(request: Request) -> dict[str, str]:
    """The `info` a session of this request is made with: its caller's project, whose rows
    are the only ones it sees. An admin's session names none (admin endpoints read no
    project's objects through it)."""
    principal: Principal = request.state.principal
    return {PROJECT: principal.project_id} if principal.project_id is not None else {}


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    # Services only flush; the request commits once, after the endpoint succeeded.
    info = {**project_of(request), SESSION_INFO: request.app.state.wakeups}
    async with request.app.state.sessionmaker(info=info) as session:
        try:
            yield session
        except BaseException:
            await rollback(session)
            raise
        await commit(session)


async def _settings(request: Request) -> Settings:  # async: no hop to the thread pool
    settings: Settings = request.app.state.settings
    return settings


async def _project(request: Request) -> ProjectAccess | None:
    """What the caller's project may do, read before the request's session begins: a read on
    another connection while that session holds SQLite's write lock could wait for the pool
    with the lock held, and every other writer behind it."""
    project_id = request.state.principal.project_id
    if project_id is None:
        return None
    keys: KeyStore = request.app.state.keys
    return await keys.project(project_id)


async def _models(request: Request, project: ProjectDep) -> ModelCatalog:
    """The models, as the caller's project may use them."""
    catalog: ModelCatalog = request.app.state.catalog
    if project is None:  # an admin's request, or a project gone meanwhile: no permissions
        return catalog
    return catalog.restricted(request.state.principal.project_id, project.model_permissions)


# scope="function": commit before the response is sent, so a client that reads right after a
# write (another connection, another process) sees it.
SessionDep = Annotated[AsyncSession, Depends(_session, scope="function")]
PrincipalDep = Annotated[Principal, Depends(_principal)]
ProjectDep = Annotated[ProjectAccess | None, Depends(_project)]
SettingsDep = Annotated[Settings, Depends(_settings)]
ModelsDep = Annotated[ModelCatalog, Depends(_models)]
