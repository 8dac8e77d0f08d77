"""`GET /v1/threads`, an extension (the hosted service could not list threads): newest first,
paged like every list, filtered by `metadata[KEY]=VALUE`, and reachable from the SDK."""

from __future__ import annotations

from typing import Any

import httpx


async def _threads(client: httpx.AsyncClient, n: int, **metadata: str) -> list[str]:
    return [(await client.post("/v1/threads", json={"metadata": {**metadata, "n": str(i)}})
             ).json()["id"] for i in range(n)]


async def _page(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/v1/threads", params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_threads_are_listed_newest_first_and_paged_both_ways(
    client: httpx.AsyncClient,
) -> None:
    ids = await _threads(client, 5)
    page = await _page(client)
    assert page["object"] == "list" and [t["id"] for t in page["data"]] == ids[::-1]
    assert page["first_id"] == ids[-1] and page["last_id"] == ids[0] and not page["has_more"]
    first = await _page(client, limit=2)
    assert [t["id"] for t in first["data"]] == ids[:2:-1][:2] and first["has_more"]
    rest = await _page(client, limit=2, after=first["last_id"])
    assert [t["id"] for t in rest["data"]] == [ids[2], ids[1]] and rest["has_more"]
    back = await _page(client, limit=2, before=rest["first_id"])
    assert [t["id"] for t in back["data"]] == [ids[4], ids[3]] and not back["has_more"]
    ascending = await _page(client, order="asc", limit=100)
    assert [t["id"] for t in ascending["data"]] == ids and not ascending["has_more"]
    one = await _page(client, order="asc", limit=1, after=ids[1])
    assert [t["id"] for t in one["data"]] == [ids[2]] and one["has_more"]


async def test_metadata_filters_must_all_match(client: httpx.AsyncClient) -> None:
    support = await _threads(client, 2, team="support", tier="gold")
    await _threads(client, 2, team="sales", tier="gold")
    page = await _page(client, **{"metadata[team]": "support"})
    assert sorted(t["id"] for t in page["data"]) == sorted(support)
    both = await _page(client, **{"metadata[tier]": "gold", "metadata[n]": "1"})
    assert len(both["data"]) == 2 and {t["metadata"]["n"] for t in both["data"]} == {"1"}
    assert (await _page(client, **{"metadata[team]": "nobody"}))["data"] == []


async def test_metadata_keys_match_whatever_their_characters(
    client: httpx.AsyncClient,
) -> None:
    metadata = {"café": "crème", 'say "hi"': "1", "C:\\dir": "2", "日本": "語"}
    [mine] = await _threads(client, 1, **metadata)
    await _threads(client, 1)
    for key, value in metadata.items():
        page = await _page(client, **{f"metadata[{key}]": value})
        assert [t["id"] for t in page["data"]] == [mine], key


async def test_azure_clients_api_version_is_not_a_filter(client: httpx.AsyncClient) -> None:
    [mine] = await _threads(client, 1)
    page = await _page(client, **{"api-version": "2024-05-01-preview"})
    assert [t["id"] for t in page["data"]] == [mine]


async def test_deleted_threads_are_not_listed(client: httpx.AsyncClient) -> None:
    kept, gone = await _threads(client, 2)
    assert (await client.delete(f"/v1/threads/{gone}")).json()["deleted"] is True
    assert [t["id"] for t in (await _page(client))["data"]] == [kept]


async def test_a_deleted_thread_still_marks_its_place_for_the_next_page(
    client: httpx.AsyncClient,
) -> None:
    """Listing and deleting page by page names a deleted thread as `after`."""
    first, second, third = await _threads(client, 3)
    await client.delete(f"/v1/threads/{third}")
    page = await _page(client, after=third)
    assert [t["id"] for t in page["data"]] == [second, first]


async def test_bad_parameters_are_400s_naming_them(client: httpx.AsyncClient) -> None:
    cases: list[tuple[Any, str]] = [
        ({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"limit": "ten"}, "limit"),
        ({"order": "newest"}, "order"), ({"metadata": "team"}, "metadata"),
        ({"metadata[" + "k" * 65 + "]": "v"}, "metadata[" + "k" * 65 + "]"),
        ({"metadata[]": "v"}, "metadata[]"), ({"metdata[team]": "x"}, "metdata[team]"),
        ({"team": "support"}, "team"), ([("metadata[a]", "1"), ("metadata[a]", "2")],
                                        "metadata[a]")]
    for params, param in cases:
        response = await client.get("/v1/threads", params=params)
        assert response.status_code == 400, params
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error" and error["param"] == param


def test_the_sdk_lists_threads_with_a_metadata_filter(sdk: Any) -> None:
    mine = sdk.beta.threads.create(metadata={"user": "u_42"})
    sdk.beta.threads.create(metadata={"user": "u_7"})
    page = sdk.get("/threads", cast_to=object, options={
        "params": {"metadata": {"user": "u_42"}, "limit": 5},
        "headers": {"OpenAI-Beta": "assistants=v2"}})
    assert [t["id"] for t in page["data"]] == [mine.id]


async def test_the_openapi_document_describes_the_metadata_filter(
    client: httpx.AsyncClient,
) -> None:
    operation = (await client.get("/openapi.json")).json()["paths"]["/v1/threads"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert set(parameters) == {"limit", "order", "after", "before", "metadata"}
    assert parameters["metadata"]["in"] == "query"
    assert parameters["metadata"]["style"] == "deepObject"
    assert "extension" in operation["summary"]
