"""Request-scoped dependencies: the database session (committed when the endpoint returns,
then what the request queued to follow the commit: kit/uow.py) and the app's settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from assistants_server.backends.catalog import ModelCatalog
from assistants_server.config import Settings
from assistants_server.kit.uow import commit, rollback


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    # Services only flush; the request commits once, after the endpoint succeeded.
    async with request.app.state.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await rollback(session)
            raise
        await commit(session)


async def _settings(request: Request) -> Settings:  # async: no hop to the thread pool
    settings: Settings = request.app.state.settings
    return settings


async def _models(request: Request) -> ModelCatalog:
    catalog: ModelCatalog = request.app.state.catalog
    return catalog


# scope="function": commit before the response is sent, so a client that reads right after a
# write (another connection, another process) sees it.
SessionDep = Annotated[AsyncSession, Depends(_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(_settings)]
ModelsDep = Annotated[ModelCatalog, Depends(_models)]
