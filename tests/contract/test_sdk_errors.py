"""Every error path as the SDK surfaces it: exception class, status, message, request id."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.conftest import BETA, LiveServer
from tests.contract.sdk_errors import server_message


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"api_keys": ["sk-good"], "max_body_bytes": 4096}


def _client(live_server: LiveServer, key: str) -> Any:
    return openai.OpenAI(base_url=live_server.url + "/v1", api_key=key, max_retries=0)


def test_wrong_key_raises_authentication_error(live_server: LiveServer) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        _client(live_server, "sk-bad-key-000000").beta.assistants.list()
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"
    assert "ASSISTANTS_API_KEYS" in server_message(caught.value)
    assert caught.value.request_id.startswith("req_")


def test_right_key_is_served(live_server: LiveServer) -> None:
    assistant = _client(live_server, "sk-good").beta.assistants.create(model="m")
    assert assistant._request_id.startswith("req_")


def test_body_over_the_limit_raises_a_413_status_error(live_server: LiveServer) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        _client(live_server, "sk-good").beta.assistants.create(model="m", instructions="x" * 5000)
    assert caught.value.status_code == 413
    assert caught.value.code == "request_too_large"


def test_wrong_json_type_names_the_parameter(live_server: LiveServer) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        _client(live_server, "sk-good").beta.threads.create(metadata="not an object")
    assert (caught.value.param, caught.value.code) == ("metadata", "invalid_type")
    assert server_message(caught.value) == (
        "Invalid type for 'metadata': expected an object, but got a string instead.")


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"text"'])
def test_malformed_or_non_object_json_is_a_400_envelope(
    live_server: LiveServer, body: bytes
) -> None:
    response = httpx.post(
        live_server.url + "/v1/assistants", content=body,
        headers={"Authorization": "Bearer sk-good", "Content-Type": "application/json", **BETA},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert response.headers["x-request-id"].startswith("req_")


def test_cancel_style_empty_post_body_is_tolerated(live_server: LiveServer) -> None:
    response = httpx.post(
        live_server.url + "/v1/threads", content=b"",
        headers={"Authorization": "Bearer sk-good", "Content-Type": "application/json", **BETA},
    )
    assert response.status_code == 200
    assert response.json()["object"] == "thread"


def test_nul_character_is_refused_on_every_database(live_server: LiveServer) -> None:
    client = _client(live_server, "sk-good")
    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.threads.create(messages=[{"role": "user", "content": "a\x00b"}])
    assert caught.value.param == "messages[0].content"
    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.assistants.create(model="m", metadata={"k": "\x00"})
    assert caught.value.param == "metadata.k"
