"""A database from before projects (revision 0009) moves into the default project whole: what it
held is served as before to the keyless default, and to no other project."""

from __future__ import annotations

import httpx
from alembic import command
from sqlalchemy import text

from assistants_server.app import create_app
from assistants_server.config import Settings
from assistants_server.db.engine import create_engine
from assistants_server.db.migrate import alembic_config
from tests.conftest import BETA

OLD_ROWS = [
    "INSERT INTO assistants (id, created_at, metadata, name, model, tools, tool_resources, "
    "response_format) VALUES ('asst_old', 1, '{}', 'kept', 'gpt-4o', '[]', '{}', '\"auto\"')",
    "INSERT INTO threads (id, created_at, metadata, tool_resources) "
    "VALUES ('thread_old', 2, '{\"k\": \"v\"}', '{}')",
    "INSERT INTO messages (id, created_at, metadata, thread_id, role, content, status, "
    "attachments) VALUES ('msg_old', 3, '{}', 'thread_old', 'user', "
    "'[{\"type\": \"text\", \"text\": {\"value\": \"hello from before\", \"annotations\": []}}]',"
    " 'completed', '[]')",
    "INSERT INTO files (id, created_at, metadata, bytes, filename, purpose, status) "
    "VALUES ('file-old', 4, '{}', 5, 'old.txt', 'assistants', 'processed')",
    "INSERT INTO vector_stores (id, created_at, metadata, name, last_active_at) "
    "VALUES ('vs_old', 5, '{}', 'old store', 5)",
]


async def test_a_single_tenant_database_moves_into_the_default_project(
    settings: Settings,
) -> None:
    config = alembic_config(settings)
    command.downgrade(config, "0009")
    engine = create_engine(settings)
    try:
        async with engine.begin() as connection:
            for statement in OLD_ROWS:
                await connection.execute(text(statement))
    finally:
        await engine.dispose()
    command.upgrade(config, "head")
    admin = "sk-admin-migration"
    app = create_app(settings.model_copy(update={"admin_keys": [admin],
                                                 "key_cache_seconds": 0}))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://migrated",
            headers=BETA) as http:
        project = (await http.post("/v1/organization/projects", json={"name": "new"},
                                   headers={"Authorization": f"Bearer {admin}"})).json()
        account = (await http.post(
            f"/v1/organization/projects/{project['id']}/service_accounts", json={"name": "a"},
            headers={"Authorization": f"Bearer {admin}"})).json()
        other = {"Authorization": f"Bearer {account['api_key']['value']}"}
        assert (await http.get("/v1/assistants", headers=other)).json()["data"] == []
        assert (await http.get("/v1/threads/thread_old", headers=other)).status_code == 404
    # The default project's key (configured) sees everything the old database held.
    app = create_app(settings.model_copy(update={"api_keys": ["sk-default"]}))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://migrated",
            headers={**BETA, "Authorization": "Bearer sk-default"}) as http:
        assert (await http.get("/v1/assistants/asst_old")).json()["name"] == "kept"
        thread = (await http.get("/v1/threads/thread_old")).json()
        assert thread["metadata"] == {"k": "v"}
        [message] = (await http.get("/v1/threads/thread_old/messages")).json()["data"]
        assert message["content"][0]["text"]["value"] == "hello from before"
        assert [f["id"] for f in (await http.get("/v1/files")).json()["data"]] == ["file-old"]
        stores = (await http.get("/v1/vector_stores")).json()["data"]
        assert [s["name"] for s in stores] == ["old store"]
        assert [a["id"] for a in (await http.get("/v1/assistants")).json()["data"]] == [
            "asst_old"]
