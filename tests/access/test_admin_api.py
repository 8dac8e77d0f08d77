"""The Admin API: projects, service accounts and their keys, admin keys, key scopes and model
permissions, driven by plain HTTP as an operator's script would, every answer checked against
OpenAI's admin OpenAPI schemas."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from assistants_server.db.tenancy import DEFAULT_PROJECT

ADMIN = "sk-admin-configured-for-tests"
SPEC = Path(__file__).resolve().parents[1] / "contract" / "admin-openapi-2026.yaml"
_spec = yaml.safe_load(SPEC.read_text())
_registry = Registry().with_resource("urn:admin", Resource.from_contents(
    {**_spec, "$schema": "https://json-schema.org/draft/2020-12/schema"}))


def conforms(name: str, value: Any) -> None:
    """`value` is valid against the admin spec's component schema `name`."""
    schema = {"$ref": f"urn:admin#/components/schemas/{name}"}
    errors = list(Draft202012Validator(schema, registry=_registry).iter_errors(value))
    assert errors == [], f"{name}: {errors[0].message} at {list(errors[0].absolute_path)}"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"admin_keys": [ADMIN], "key_cache_seconds": 0, "models": ["gpt-4o", "gpt-4o-mini"]}


def bearer(key: str = ADMIN) -> dict[str, str]:
    """The Authorization header for `key`: the admin key unless another is named."""
    return {"Authorization": f"Bearer {key}"}


async def new_project(client: httpx.AsyncClient, name: str = "Team A",
                      scopes: list[str] | None = None) -> tuple[str, str]:
    """A project and the key of its first service account."""
    project = await client.post("/v1/organization/projects", json={"name": name},
                                headers=bearer())
    assert project.status_code == 200, project.text
    conforms("Project", project.json())
    body: dict[str, Any] = {"name": "app"} | ({"scopes": scopes} if scopes is not None else {})
    account = await client.post(f"/v1/organization/projects/{project.json()['id']}/"
                                "service_accounts", json=body, headers=bearer())
    assert account.status_code == 200, account.text
    conforms("ProjectServiceAccountCreateResponse", account.json())
    return project.json()["id"], account.json()["api_key"]["value"]


async def test_a_service_accounts_key_is_shown_once_and_works(client: httpx.AsyncClient) -> None:
    project_id, key = await new_project(client)
    assert key.startswith("sk-proj-") and len(key) > 60
    made = await client.post("/v1/assistants", json={"model": "gpt-4o"}, headers=bearer(key))
    assert made.status_code == 200, made.text
    listed = await client.get(f"/v1/organization/projects/{project_id}/api_keys",
                              headers=bearer())
    conforms("ProjectApiKeyListResponse", listed.json())
    [shown] = listed.json()["data"]
    assert key not in listed.text and shown["redacted_value"].endswith(key[-4:])
    assert shown["owner"]["type"] == "service_account"
    one = await client.get(f"/v1/organization/projects/{project_id}/api_keys/{shown['id']}",
                           headers=bearer())
    conforms("ProjectApiKey", one.json())
    assert one.json()["last_used_at"] is not None


async def test_a_deleted_key_fails_at_once(client: httpx.AsyncClient) -> None:
    project_id, key = await new_project(client)
    assert (await client.get("/v1/assistants", headers=bearer(key))).status_code == 200
    [shown] = (await client.get(f"/v1/organization/projects/{project_id}/api_keys",
                                headers=bearer())).json()["data"]
    gone = await client.delete(f"/v1/organization/projects/{project_id}/api_keys/{shown['id']}",
                               headers=bearer())
    conforms("ProjectApiKeyDeleteResponse", gone.json())
    refused = await client.get("/v1/assistants", headers=bearer(key))
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"


class TestWithTheDefaultCache:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"admin_keys": [ADMIN]}  # key_cache_seconds: 1

    async def test_a_revocation_reaches_a_process_that_cached_the_key(
        self, client: httpx.AsyncClient,
    ) -> None:
        project_id, key = await new_project(client)
        assert (await client.get("/v1/threads", headers=bearer(key))).status_code == 200
        [shown] = (await client.get(f"/v1/organization/projects/{project_id}/api_keys",
                                    headers=bearer())).json()["data"]
        await client.delete(f"/v1/organization/projects/{project_id}/api_keys/{shown['id']}",
                            headers=bearer())
        deadline = time.monotonic() + 2
        while (await client.get("/v1/threads", headers=bearer(key))).status_code == 200:
            assert time.monotonic() < deadline, "the key kept working past its cache"
            await asyncio.sleep(0.05)


async def test_an_archived_projects_keys_stop(client: httpx.AsyncClient) -> None:
    project_id, key = await new_project(client)
    archived = await client.post(f"/v1/organization/projects/{project_id}/archive",
                                 headers=bearer())
    conforms("Project", archived.json())
    assert archived.json()["status"] == "archived" and archived.json()["archived_at"]
    refused = await client.get("/v1/assistants", headers=bearer(key))
    assert refused.status_code == 401 and "archived" in refused.json()["error"]["message"]
    listed = (await client.get("/v1/organization/projects", headers=bearer())).json()
    assert project_id not in [p["id"] for p in listed["data"]]
    everything = (await client.get("/v1/organization/projects?include_archived=true",
                                   headers=bearer())).json()
    conforms("ProjectListResponse", everything)
    assert project_id in [p["id"] for p in everything["data"]]
    default = await client.post(f"/v1/organization/projects/{DEFAULT_PROJECT}/archive",
                                headers=bearer())
    assert default.status_code == 400


async def test_admin_and_project_keys_stay_on_their_side(client: httpx.AsyncClient) -> None:
    _, key = await new_project(client)
    admin_on_api = await client.get("/v1/assistants", headers=bearer())
    assert admin_on_api.status_code == 401
    assert "project's API key" in admin_on_api.json()["error"]["message"]
    project_on_admin = await client.get("/v1/organization/projects", headers=bearer(key))
    assert project_on_admin.status_code == 401
    assert "admin API key" in project_on_admin.json()["error"]["message"]
    nobody = await client.get("/v1/assistants")
    assert nobody.status_code == 401 and nobody.json()["error"]["code"] == "missing_api_key"


async def test_a_read_only_key_reads_and_cannot_write(client: httpx.AsyncClient) -> None:
    reads = ["api.assistants.read", "api.threads.read", "api.runs.read", "api.files.read",
             "api.vector_stores.read", "api.model.read"]
    _, key = await new_project(client, scopes=reads)
    assert (await client.get("/v1/assistants", headers=bearer(key))).status_code == 200
    refused = await client.post("/v1/assistants", json={"model": "gpt-4o"},
                                headers=bearer(key))
    assert refused.status_code == 401
    assert "Missing scopes: api.assistants.write" in refused.json()["error"]["message"]
    search = await client.post("/v1/vector_stores/vs_x/search", json={"query": "q"},
                               headers=bearer(key))
    assert search.status_code == 404  # a read: past the gate, and no such store


async def test_a_key_restricted_to_threads_cannot_start_runs(client: httpx.AsyncClient) -> None:
    _, key = await new_project(client, scopes=["api.threads.write"])
    thread = await client.post("/v1/threads", json={}, headers=bearer(key))
    assert thread.status_code == 200, thread.text
    run = await client.post(f"/v1/threads/{thread.json()['id']}/runs",
                            json={"assistant_id": "asst_x"}, headers=bearer(key))
    assert run.status_code == 401 and "api.runs.write" in run.json()["error"]["message"]
    assert (await client.get("/v1/assistants", headers=bearer(key))).status_code == 401


async def test_unknown_scopes_are_refused_naming_them(client: httpx.AsyncClient) -> None:
    project_id, _ = await new_project(client)
    made = await client.post(f"/v1/organization/projects/{project_id}/service_accounts",
                             json={"name": "x", "scopes": ["api.everything"]},
                             headers=bearer())
    assert made.status_code == 400 and "api.everything" in made.json()["error"]["message"]


async def test_admin_keys_are_made_listed_and_deleted(client: httpx.AsyncClient) -> None:
    made = await client.post("/v1/organization/admin_api_keys", json={"name": "ops"},
                             headers=bearer())
    conforms("AdminApiKeyCreateResponse", made.json())
    second = made.json()["value"]
    assert second.startswith("sk-admin-")
    listed = await client.get("/v1/organization/admin_api_keys", headers=bearer(second))
    conforms("ApiKeyList", listed.json())
    assert [k["id"] for k in listed.json()["data"]] == [made.json()["id"]]
    itself = await client.delete(f"/v1/organization/admin_api_keys/{made.json()['id']}",
                                 headers=bearer(second))
    assert itself.status_code == 400
    gone = await client.delete(f"/v1/organization/admin_api_keys/{made.json()['id']}",
                               headers=bearer())
    assert gone.json() == {"id": made.json()["id"], "object": "organization.admin_api_key.deleted",
                           "deleted": True}
    assert (await client.get("/v1/organization/projects",
                             headers=bearer(second))).status_code == 401


async def test_service_accounts_are_listed_renamed_and_deleted_with_their_keys(
    client: httpx.AsyncClient,
) -> None:
    project_id, key = await new_project(client)
    base = f"/v1/organization/projects/{project_id}/service_accounts"
    listed = (await client.get(base, headers=bearer())).json()
    conforms("ProjectServiceAccountListResponse", listed)
    [account] = listed["data"]
    renamed = await client.post(f"{base}/{account['id']}", json={"name": "renamed"},
                                headers=bearer())
    conforms("ProjectServiceAccount", renamed.json())
    extra = await client.post(f"{base}/{account['id']}/api_keys", json={"name": "second"},
                              headers=bearer())
    conforms("ServiceAccountApiKeyBody", extra.json())
    gone = await client.delete(f"{base}/{account['id']}", headers=bearer())
    conforms("ProjectServiceAccountDeleteResponse", gone.json())
    for secret in (key, extra.json()["value"]):
        assert (await client.get("/v1/threads", headers=bearer(secret))).status_code == 401


async def test_model_permissions_limit_what_a_project_sees_and_uses(
    client: httpx.AsyncClient,
) -> None:
    project_id, key = await new_project(client)
    path = f"/v1/organization/projects/{project_id}/model_permissions"
    unset = await client.get(path, headers=bearer())
    conforms("ProjectModelPermissions", unset.json())
    allowed = await client.post(path, json={"mode": "allow_list", "model_ids": ["gpt-4o"]},
                                headers=bearer())
    conforms("ProjectModelPermissions", allowed.json())
    models = (await client.get("/v1/models", headers=bearer(key))).json()["data"]
    assert [m["id"] for m in models] == ["gpt-4o"]
    refused = await client.post("/v1/assistants", json={"model": "gpt-4o-mini"},
                                headers=bearer(key))
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "model_not_found"
    assert (await client.post("/v1/assistants", json={"model": "gpt-4o"},
                              headers=bearer(key))).status_code == 200
    removed = await client.delete(path, headers=bearer())
    conforms("ProjectModelPermissionsDeleteResponse", removed.json())
    assert (await client.post("/v1/assistants", json={"model": "gpt-4o-mini"},
                              headers=bearer(key))).status_code == 200


async def test_unknown_projects_are_404s(client: httpx.AsyncClient) -> None:
    for method, path in (("GET", "/v1/organization/projects/proj_nope"),
                         ("GET", "/v1/organization/projects/proj_nope/api_keys"),
                         ("POST", "/v1/organization/projects/proj_nope/service_accounts")):
        response = await client.request(method, path, headers=bearer(),
                                        json={"name": "x"} if method == "POST" else None)
        assert response.status_code == 404, (path, response.text)
        assert "proj_nope" in response.json()["error"]["message"]


def test_the_sdk_with_a_revoked_key_gets_authentication_error(live_server: Any) -> None:
    import openai

    http = httpx.Client(base_url=live_server.url, headers=bearer())
    project = http.post("/v1/organization/projects", json={"name": "sdk"}).json()
    account = http.post(f"/v1/organization/projects/{project['id']}/service_accounts",
                        json={"name": "app"}).json()
    sdk = openai.OpenAI(base_url=live_server.url + "/v1", api_key=account["api_key"]["value"],
                        max_retries=0)
    assistant = sdk.beta.assistants.create(model="gpt-4o", name="mine")
    assert sdk.beta.assistants.retrieve(assistant.id).name == "mine"
    http.delete(f"/v1/organization/projects/{project['id']}/api_keys/"
                f"{account['api_key']['id']}")
    with pytest.raises(openai.AuthenticationError):
        sdk.beta.assistants.list()
