"""The model names the server answers to: a backend that does not answer its model list slows
no one down more than once, and the named routes are listed whatever it does."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest

from assistants_server.backends.catalog import ModelCatalog
from assistants_server.backends.config import (
    BackendConfig,
    ModelRoute,
    ModelsConfig,
    Timeouts,
)
from assistants_server.backends.router import ModelRouter
from assistants_server.kit.errors import BackendUnavailableError, InvalidRequestError


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung server)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield int(listener.getsockname()[1])


def _catalog(port: int, *routes: ModelRoute) -> ModelCatalog:
    backend = BackendConfig(name="hung", base_url=f"http://127.0.0.1:{port}/v1",
                            timeouts=Timeouts(connect=0.3))
    return ModelCatalog(ModelRouter.from_config(ModelsConfig(
        backends=[backend], models=list(routes))), [], 0)


async def test_a_hung_catch_all_backend_delays_only_the_first_check(silent_port: int) -> None:
    catalog = _catalog(silent_port, ModelRoute(name="*", backend="hung"))
    started = time.monotonic()
    await catalog.check_model("llama3")  # cannot tell: accepted, the run will say
    first = time.monotonic() - started
    started = time.monotonic()
    await asyncio.gather(*[catalog.check_model("llama3") for _ in range(4)])
    assert first >= 0.3 and time.monotonic() - started < 0.1
    await catalog.router.aclose()


async def test_named_routes_are_listed_while_the_catch_all_backend_is_down(
    silent_port: int
) -> None:
    catalog = _catalog(silent_port, ModelRoute(name="gpt-4o", backend="hung"),
                       ModelRoute(name="*", backend="hung"))
    assert [m["id"] for m in await catalog.list_models()] == ["gpt-4o"]
    assert (await catalog.retrieve_model("gpt-4o") or {}).get("id") == "gpt-4o"
    await catalog.router.aclose()


async def test_with_only_a_catch_all_an_unreachable_backend_is_reported(
    silent_port: int
) -> None:
    catalog = _catalog(silent_port, ModelRoute(name="*", backend="hung"))
    with pytest.raises(BackendUnavailableError) as caught:
        await catalog.list_models()
    assert "'hung'" in caught.value.message and "could not be reached" in caught.value.message
    await catalog.router.aclose()


async def test_a_name_outside_every_route_is_refused_naming_the_served_ones(
    silent_port: int
) -> None:
    catalog = _catalog(silent_port, ModelRoute(name="gpt-4o", backend="hung",
                                               aliases=["gpt-4o-mini"]))
    with pytest.raises(InvalidRequestError) as caught:
        await catalog.check_model("gpt-3.5-turbo")
    assert caught.value.message == (
        "The requested model 'gpt-3.5-turbo' does not exist. This server serves: gpt-4o, "
        "gpt-4o-mini (see GET /v1/models).")
    await catalog.router.aclose()


async def test_a_backend_that_lists_no_models_refuses_no_name() -> None:
    from tests.conftest import LiveServer
    from tests.fake_backend import create_fake_backend

    with LiveServer(create_fake_backend([])) as fake:
        backend = BackendConfig(name="quiet", base_url=fake.url + "/v1")
        catalog = ModelCatalog(ModelRouter.from_config(ModelsConfig(
            backends=[backend], models=[ModelRoute(name="*", backend="quiet")])), [], 0)
        await catalog.check_model("gpt-4o")  # an empty list tells nothing: accepted
        await catalog.router.aclose()
