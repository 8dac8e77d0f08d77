"""The backend's model list (`GET {backend}/models`), as `/v1/models` relays it."""

from __future__ import annotations

from typing import Any

import httpx

from assistants_server.api.errors import BackendUnavailableError


async def fetch_backend_models(
    client: httpx.AsyncClient, base_url: str, api_key: str | None
) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    url = f"{base_url}/models"
    try:
        response = await client.get(url, headers=headers)
    except httpx.HTTPError as exc:
        raise BackendUnavailableError(
            f"The model backend at {base_url} could not be reached ({type(exc).__name__}: "
            f"{exc}). Check ASSISTANTS_BACKEND_BASE_URL.", code="backend_unavailable"
        ) from exc
    if response.status_code != 200:
        raise BackendUnavailableError(
            f"The model backend answered GET {url} with HTTP {response.status_code}: "
            f"{response.text[:300]}", code="backend_error"
        )
    try:
        data = response.json()["data"]
        return [_as_model(item) for item in data]
    except (ValueError, KeyError, TypeError) as exc:
        raise BackendUnavailableError(
            f"The model backend's GET {url} did not return an OpenAI model list "
            f"({type(exc).__name__}).", code="backend_error"
        ) from exc


def _as_model(item: dict[str, Any]) -> dict[str, Any]:
    # Some OpenAI-compatible servers omit `created` or `owned_by`; the SDK model wants both.
    return {
        "id": str(item["id"]),
        "object": "model",
        "created": int(item.get("created") or 0),
        "owned_by": str(item.get("owned_by") or "backend"),
    }
