"""The `assistants-server` command as an operator runs it: --help, migrate, serve."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from assistants_server.config import Settings

EXE = str(Path(sys.executable).with_name("assistants-server"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANTS_")}
    return {**env, "ASSISTANTS_DATA_DIR": str(tmp_path / "data"), **extra}


def test_help_explains_every_setting() -> None:
    out = subprocess.run([EXE, "--help"], capture_output=True, text=True, check=True).stdout
    for name, field in Settings.model_fields.items():
        assert f"ASSISTANTS_{name.upper()}" in out
        assert field.description and field.description.split(".")[0] in out
    assert "serve" in out and "migrate" in out


def test_migrate_creates_the_sqlite_database_in_the_data_dir(tmp_path: Path) -> None:
    result = subprocess.run([EXE, "migrate"], env=_env(tmp_path), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "assistants.db").exists()


def test_invalid_setting_is_reported_without_a_traceback(tmp_path: Path) -> None:
    result = subprocess.run([EXE, "migrate"], env=_env(tmp_path, ASSISTANTS_PORT="eighty"),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "invalid configuration" in result.stderr and "port" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_without_keys_listens_on_loopback_and_says_so(tmp_path: Path) -> None:
    port = _free_port()
    process = subprocess.Popen(
        [EXE, "serve", "--port", str(port)], env=_env(tmp_path),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        response = _wait_for(f"http://127.0.0.1:{port}/health")
        assert response.json() == {"status": "ok"}
        created = httpx.post(
            f"http://127.0.0.1:{port}/v1/threads", json={},
            headers={"OpenAI-Beta": "assistants=v2", "Authorization": "Bearer any"},
        )
        assert created.status_code == 200 and created.json()["object"] == "thread"
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=20)
    assert "no API key is configured or created" in output
    assert f"127.0.0.1:{port}" in output


def _wait_for(url: str) -> httpx.Response:
    deadline = time.monotonic() + 30
    while True:
        try:
            return httpx.get(url)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_workers_on_a_port_in_use_say_so_and_exit(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([EXE, "serve", "--port", str(port)],
                                env=_env(tmp_path, ASSISTANTS_WORKERS="2"),
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_doctor_says_which_backend_works_and_which_does_not(tmp_path: Path) -> None:
    from tests.conftest import LiveServer
    from tests.fake_backend import Reply, create_fake_backend

    calls = [{"id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'}]
    with LiveServer(create_fake_backend(["qwen2.5"])) as fake:
        fake.server.config.app.state.script.extend([Reply(text="OK"), Reply(tool_calls=calls)])
        config = tmp_path / "assistants.yaml"
        config.write_text(
            "backends:\n"
            f"  - name: local\n    base_url: {fake.url}/v1\n"
            "  - name: gone\n    base_url: http://127.0.0.1:9/v1\n    retries: 0\n"
            "models:\n"
            "  - name: gpt-4o\n    backend: local\n    model: qwen2.5\n"
            "    fallbacks: [{backend: gone}]\n")
        result = subprocess.run([EXE, "--config", str(config), "doctor"], env=_env(tmp_path),
                                capture_output=True, text=True, timeout=60)
        bodies = fake.server.config.app.state.bodies
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("[ok  ] local: model list") and "qwen2.5" in line
               for line in lines), result.stdout
    assert any(line.startswith("[ok  ] local: a one-token answer from 'qwen2.5'")
               for line in lines)
    assert any(line.startswith("[ok  ] local: a function call") and "get_weather" in line
               for line in lines)
    assert any(line.startswith("[FAIL] gone: model list") and "could not be reached" in line
               for line in lines)
    assert "model gpt-4o: local:qwen2.5 -> gone:gpt-4o" in lines
    assert [body["model"] for body in bodies] == ["qwen2.5", "qwen2.5"]
    assert bodies[0]["max_completion_tokens"] == 1


def test_a_configuration_mistake_names_its_line(tmp_path: Path) -> None:
    config = tmp_path / "assistants.yaml"
    config.write_text("backends:\n  - name: local\n    base_url: http://x/v1\n"
                      "models:\n  - name: gpt-4o\n    backend: olama\n")
    result = subprocess.run([EXE, "--config", str(config), "doctor"], env=_env(tmp_path),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "assistants.yaml:6: models[0].backend:" in result.stderr
    assert "'olama', which is not declared" in result.stderr
