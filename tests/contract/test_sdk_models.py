"""`client.models.list()` and `retrieve()`: the backend's catalogue, or the configured one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.conftest import LiveServer
from tests.contract.sdk_errors import server_message
from tests.fake_backend import create_fake_backend


@pytest.fixture
def backend() -> Iterator[LiveServer]:
    with LiveServer(create_fake_backend(["qwen2.5", "llama3.1"], api_key="sk-backend")) as s:
        yield s


class TestConfiguredModels:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"models": ["gpt-4o", "llama3"]}

    def test_list_names_the_configured_models(self, sdk: Any) -> None:
        assert [m.id for m in sdk.models.list()] == ["gpt-4o", "llama3"]
        assert {m.object for m in sdk.models.list()} == {"model"}

    def test_retrieve_unknown_model_is_not_found(self, sdk: Any) -> None:
        assert sdk.models.retrieve("llama3").id == "llama3"
        with pytest.raises(openai.NotFoundError) as caught:
            sdk.models.retrieve("gpt-2")
        assert caught.value.code == "model_not_found"

    def test_assistant_with_an_unconfigured_model_is_refused(self, sdk: Any) -> None:
        with pytest.raises(openai.BadRequestError) as caught:
            sdk.beta.assistants.create(model="gpt-2")
        assert caught.value.param == "model" and caught.value.code == "model_not_found"
        assert "gpt-4o, llama3" in server_message(caught.value)


class TestBackendModels:
    @pytest.fixture
    def settings_overrides(self, backend: LiveServer) -> dict[str, Any]:
        return {"backend_base_url": backend.url + "/v1", "backend_api_key": "sk-backend"}

    def test_list_relays_the_backend_catalogue_with_its_key(
        self, sdk: Any, backend: LiveServer
    ) -> None:
        models = list(sdk.models.list())
        assert [m.id for m in models] == ["qwen2.5", "llama3.1"]
        assert models[0].owned_by == "fake"
        sent = backend.server.config.app.state.requests[-1]
        assert sent["authorization"] == "Bearer sk-backend"


class TestUnreachableBackend:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"backend_base_url": "http://127.0.0.1:9/v1"}

    def test_list_explains_the_backend_could_not_be_reached(self, sdk: Any) -> None:
        with pytest.raises(openai.APIStatusError) as caught:
            sdk.models.list()
        assert caught.value.status_code == 502
        assert "could not be reached" in server_message(caught.value)
        assert caught.value.response.headers["x-should-retry"] == "false"
