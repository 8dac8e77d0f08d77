"""The operator's commands make projects and keys a server then honours, and say clearly what
is wrong. They share the server's database code, so they run on SQLite only here."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from assistants_server.app import create_app
from assistants_server.cli import main
from assistants_server.config import Settings
from tests.conftest import BETA


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def test_keys_made_by_the_cli_work_until_revoked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in {"DATA_DIR": str(tmp_path), "KEY_CACHE_SECONDS": "0"}.items():
        monkeypatch.setenv(f"ASSISTANTS_{name}", value)
    code, out, _ = _run(capsys, "projects", "create", "Support team")
    [project_id] = re.findall(r"proj_\w+", out)
    code, out, _ = _run(capsys, "keys", "create", "--project", project_id,
                        "--scope", "api.threads.write")
    assert code == 0 and "shown this once" in out
    key_id, secret = re.findall(r"key_\w+", out)[0], out.strip().splitlines()[-1]
    code, out, _ = _run(capsys, "admin-keys", "create", "--name", "ops")
    admin = out.strip().splitlines()[-1]
    app = create_app(Settings())
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://cli", headers=BETA) as http:
        auth = {"Authorization": f"Bearer {secret}"}
        assert (await http.post("/v1/threads", json={}, headers=auth)).status_code == 200
        assert (await http.get("/v1/assistants", headers=auth)).status_code == 401  # scope
        assert (await http.get("/v1/threads", headers={})).status_code == 401  # keys exist
        projects = await http.get("/v1/organization/projects",
                                  headers={"Authorization": f"Bearer {admin}"})
        assert project_id in projects.text
        code, out, _ = _run(capsys, "keys", "list", "--project", project_id)
        assert key_id in out and secret not in out and "api.threads.write" in out
        assert _run(capsys, "keys", "revoke", key_id)[0] == 0
        assert (await http.post("/v1/threads", json={}, headers=auth)).status_code == 401
    code, _, err = _run(capsys, "keys", "create", "--project", "proj_missing")
    assert code == 1 and "proj_missing was not found" in err
    code, _, err = _run(capsys, "keys", "create", "--project", project_id, "--scope", "api.x")
    assert code == 1 and "unknown scope 'api.x'" in err


async def test_revoking_the_only_key_keeps_the_server_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """A server whose one created key is revoked does not fall back to the keyless default,
    where any key (the revoked one too) would be accepted."""
    for name, value in {"DATA_DIR": str(tmp_path), "KEY_CACHE_SECONDS": "0"}.items():
        monkeypatch.setenv(f"ASSISTANTS_{name}", value)
    code, out, _ = _run(capsys, "keys", "create", "--project", "proj_default")
    key_id, secret = re.findall(r"key_\w+", out)[0], out.strip().splitlines()[-1]
    app = create_app(Settings())
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://cli", headers=BETA) as http:
        auth = {"Authorization": f"Bearer {secret}"}
        assert (await http.get("/v1/threads", headers=auth)).status_code == 200
        assert _run(capsys, "keys", "revoke", key_id)[0] == 0
        assert (await http.get("/v1/threads", headers=auth)).status_code == 401
        assert (await http.get("/v1/threads")).status_code == 401
        assert key_id not in _run(capsys, "keys", "list", "--project", "proj_default")[1]
        assert _run(capsys, "keys", "revoke", key_id)[0] == 1  # already revoked
