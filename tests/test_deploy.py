"""The deployment files, exercised without a Docker engine (deploy/compose_check.py runs them on
one: minutes long, and it needs root, so not here).

docker-compose.yml is parsed and checked; the Dockerfile's CMD and HEALTHCHECK are run as the
container would run them, with the compose file's environment for `api` translated to this
machine (the `postgres` service becomes the PostgreSQL at 127.0.0.1:5432, in a throwaway schema);
and the Dockerfile's build steps are replayed on a copy of the build context that .dockerignore
lets through: its dependency step runs on pyproject.toml alone, and the wheel its pip step
installs is built, installed apart and made to migrate a database.

The slow tests are the two that start processes, `test_the_image_command_serves_...` and
`test_the_image_build_steps_...` (a few seconds each); everything else only reads files.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml  # type: ignore[import-untyped, unused-ignore]

from assistants_server.db.migrate import run_blocking
from tests.conftest import BETA, POSTGRES_URL, REQUIRE_SERVICES

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
API_KEY = "sk-deploy-test"
# What the operator exports before `docker compose up` (ASSISTANTS_API_KEYS is required).
HOST_ENV = {"ASSISTANTS_API_KEYS": API_KEY}
PASSED_THROUGH = ("ASSISTANTS_BACKEND_BASE_URL", "ASSISTANTS_BACKEND_API_KEY")


# --- the Dockerfile ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def dockerfile() -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined and comments dropped."""
    logical: list[str] = []
    current = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    assert not current, "the Dockerfile ends in a line continuation"
    instructions = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
    return instructions


def only(keyword: str) -> Instruction:
    found = [i for i in dockerfile() if i.keyword == keyword]
    assert len(found) == 1, f"expected one {keyword}, found {len(found)}"
    return found[0]


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in dockerfile():
        if instruction.keyword == "ENV":
            for item in shlex.split(instruction.args):
                name, sep, value = item.partition("=")
                assert sep, f"use ENV NAME=value, not {instruction.args!r}"
                env[name] = value
    return env


def image_cmd() -> list[str]:
    command = json.loads(only("CMD").args)
    assert isinstance(command, list), "CMD must be in exec (JSON) form"
    return [str(part) for part in command]


def image_healthcheck() -> tuple[dict[str, str], list[str]]:
    """The HEALTHCHECK's options (e.g. {"timeout": "5s"}) and its exec-form command."""
    options_text, sep, command_text = only("HEALTHCHECK").args.partition("CMD ")
    assert sep, "HEALTHCHECK must run a command"
    options = {}
    for option in shlex.split(options_text):
        name, _, value = option.removeprefix("--").partition("=")
        options[name] = value
    command = json.loads(command_text)
    assert isinstance(command, list), "the HEALTHCHECK command must be in exec (JSON) form"
    return options, [str(part) for part in command]


def seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)", duration)
    assert match, f"unexpected duration {duration!r}"
    return float(match[1]) * {"ms": 0.001, "s": 1.0, "m": 60.0}[match[2]]


def argument(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


# --- .dockerignore ------------------------------------------------------------------------------


def _pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex (Go filepath.Match, plus `**` for any directories)."""
    parts: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            parts.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            parts.append(".*")
            i += 2
        elif pattern[i] == "*":
            parts.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            parts.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            parts.append(pattern[i : end + 1])
            i = end + 1
        else:
            parts.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(parts))


def dockerignore() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        cleaned = str(PurePosixPath(line.removeprefix("!").lstrip("/")))
        rules.append((negated, _pattern(cleaned)))
    return rules


def ignored(path: str) -> bool:
    """Whether Docker leaves `path` (relative to the context) out: the last matching rule wins,
    and a rule matching a directory covers everything in it."""
    candidates = [str(p) for p in reversed(PurePosixPath(path).parents) if str(p) != "."]
    candidates.append(path)
    result = False
    for negated, rule in dockerignore():
        if any(rule.fullmatch(candidate) for candidate in candidates):
            result = not negated
    return result


# --- docker-compose.yml -----------------------------------------------------------------------


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


_VARIABLE = re.compile(
    r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|\$(?P<bare>\w+)"
)


def interpolate(value: str, host: Mapping[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `$$`."""

    def substitute(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        name = match["name"] or match["bare"]
        op, arg = match["op"], match["arg"] or ""
        current = host.get(name)
        missing = not current if op and op.startswith(":") else current is None
        if op and op.endswith("-") and missing:
            return arg
        if op and op.endswith("?") and missing:
            raise ValueError(f"required variable {name} is missing: {arg}")
        return current or ""

    return _VARIABLE.sub(substitute, value)


def service_env(service: str, host: Mapping[str, str]) -> dict[str, str]:
    """A service's environment as the container gets it, given the host's environment."""
    declared = compose()["services"][service].get("environment", {})
    if isinstance(declared, list):  # the `- NAME=value` form
        declared = {
            name: (value if sep else None)
            for name, sep, value in (item.partition("=") for item in declared)
        }
    env: dict[str, str] = {}
    for name, value in declared.items():
        if value is None:  # `NAME:` with no value: passed through from the host, when set there
            if name in host:
                env[name] = host[name]
        else:
            env[name] = interpolate(str(value), host)
    return env


def mounts(service: str) -> dict[str, str]:
    """A service's volumes, target path -> source."""
    found = {}
    for volume in compose()["services"][service].get("volumes", []):
        if isinstance(volume, str):
            source, _, target = volume.partition(":")
            found[target.split(":")[0]] = source
        else:
            found[volume["target"]] = volume["source"]
    return found


# --- tests that only read the files -------------------------------------------------------------


def test_compose_runs_api_processes_and_workers_on_postgres_and_redis() -> None:
    services = compose()["services"]
    assert set(services) == {"api", "worker", "postgres", "redis"}
    api, worker = services["api"], services["worker"]
    postgres, redis = services["postgres"], services["redis"]
    for server in (api, worker):  # one image, one environment, one volume
        assert server["build"]["context"] == "."
        assert server["image"] == api["image"]
        assert server["restart"] == "unless-stopped"
        assert server["depends_on"] == {"postgres": {"condition": "service_healthy"},
                                        "redis": {"condition": "service_healthy"}}
        assert "host.docker.internal:host-gateway" in server["extra_hosts"]
    assert service_env("api", HOST_ENV) == service_env("worker", HOST_ENV)
    assert mounts("api") == mounts("worker")
    # The API processes publish a port each; the workers none, and serve health on the port
    # the image's healthcheck asks.
    assert interpolate(str(api["ports"][0]), {}) == "8000-8001:8000"
    assert "ports" not in worker
    assert api["command"][:4] == ["assistants-server", "serve", "--role", "api"]
    assert worker["command"][:2] == ["assistants-server", "worker"]
    for server in (api, worker):
        assert argument(server["command"], "--port") == "8000"
        assert argument(server["command"], "--host") == "0.0.0.0"

    env = service_env("api", HOST_ENV)
    assert env["ASSISTANTS_API_KEYS"] == API_KEY
    url = urlsplit(env["ASSISTANTS_DATABASE_URL"])
    assert url.scheme == "postgresql+asyncpg"
    assert (url.hostname, url.port or 5432) == ("postgres", 5432)
    pg = service_env("postgres", HOST_ENV)
    assert url.username == pg["POSTGRES_USER"]
    assert url.password == pg["POSTGRES_PASSWORD"]
    assert url.path == "/" + pg["POSTGRES_DB"]

    redis_url = urlsplit(env["ASSISTANTS_REDIS_URL"])
    assert (redis_url.scheme, redis_url.hostname, redis_url.port) == ("redis", "redis", 6379)
    assert interpolate(redis["image"], {}) == "redis:7"
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]

    # The images are the official ones unless the operator names others (local stand-ins).
    assert interpolate(postgres["image"], {}) == "postgres:16"
    assert interpolate(postgres["image"], {"POSTGRES_IMAGE": "mirror/pg:16"}) == "mirror/pg:16"
    assert interpolate(api["build"]["args"]["PYTHON_IMAGE"], {}) == "python:3.11-slim"
    assert postgres["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"][1:])


def test_compose_requires_api_keys_and_passes_the_backend_through() -> None:
    with pytest.raises(ValueError, match="ASSISTANTS_API_KEYS"):
        service_env("api", {})
    assert not set(PASSED_THROUGH) & set(service_env("api", HOST_ENV))
    host = {**HOST_ENV, "ASSISTANTS_BACKEND_BASE_URL": "http://llm:11434/v1",
            "ASSISTANTS_BACKEND_API_KEY": "sk-backend"}
    env = service_env("api", host)
    assert {name: env[name] for name in PASSED_THROUGH} == {
        name: host[name] for name in PASSED_THROUGH
    }


def test_compose_keeps_data_in_named_volumes() -> None:
    declared = set(compose()["volumes"])
    server, postgres = mounts("api"), mounts("postgres")
    assert server["/data"] in declared
    assert postgres["/var/lib/postgresql/data"] in declared
    assert service_env("api", HOST_ENV)["ASSISTANTS_DATA_DIR"] == "/data"


def test_dockerfile_runs_unprivileged_with_a_data_volume() -> None:
    instructions = dockerfile()
    assert only("FROM").args == "${PYTHON_IMAGE}"
    assert only("ARG").args == "PYTHON_IMAGE=python:3.11-slim"
    user = only("USER").args
    assert user not in ("root", "0") and not user.startswith("0:")
    last_run = max(n for n, i in enumerate(instructions) if i.keyword == "RUN")
    assert instructions.index(only("USER")) > last_run, "switch user after installing"
    assert image_env()["ASSISTANTS_DATA_DIR"] == "/data"
    assert "/data" in json.loads(only("VOLUME").args)
    assert only("EXPOSE").args == "8000"
    command = image_cmd()
    assert command == ["assistants-server", "serve", "--host", "0.0.0.0", "--port", "8000"]
    # The compose file's port mapping and environment agree with the image.
    for service in ("api", "worker"):
        assert argument(compose()["services"][service]["command"], "--port") == argument(
            command, "--port")
    assert service_env("api", HOST_ENV)["ASSISTANTS_DATA_DIR"] == image_env()[
        "ASSISTANTS_DATA_DIR"]
    _, healthcheck = image_healthcheck()
    assert healthcheck[0] == "python"
    assert "http://127.0.0.1:8000/ready" in healthcheck[-1]


def test_dockerignore_keeps_local_state_out_and_lets_the_sources_in() -> None:
    for path in (".git/HEAD", ".venv/bin/python", "build/lib/assistants_server/app.py",
                 "src/assistants_server.egg-info/PKG-INFO", "data/assistants.db", ".env",
                 "src/assistants_server/__pycache__/app.cpython-311.pyc", "tests/conftest.py"):
        assert ignored(path), path
    for path in ("pyproject.toml", "README.md", "src/assistants_server/app.py",
                 "src/assistants_server/migrations", "migrations/env.py",
                 "migrations/versions/0001_assistants_threads_messages.py"):
        assert not ignored(path), path


# --- the image's command and healthcheck, run here ---------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])


async def _postgres(sql: str, *args: object) -> list[Any]:
    import asyncpg  # type: ignore[import-untyped, unused-ignore]

    connection = await asyncpg.connect(POSTGRES_URL.replace("postgresql+asyncpg://",
                                                            "postgresql://"))
    try:
        return list(await connection.fetch(sql, *args))
    finally:
        await connection.close()


@pytest.fixture
def schema() -> Iterator[str]:
    """A PostgreSQL schema no one else uses, dropped afterwards."""
    host = urlsplit(POSTGRES_URL)
    try:
        socket.create_connection((host.hostname or "127.0.0.1", host.port or 5432), 1).close()
    except OSError:
        message = f"PostgreSQL is not answering on {host.hostname}:{host.port}"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    name = "deploy_" + uuid.uuid4().hex[:16]
    try:
        yield name
    finally:
        run_blocking(_postgres(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))


def _local_database_url(compose_url: str) -> str:
    """The compose file's URL, aimed at this machine's PostgreSQL instead of `postgres`."""
    container, local = urlsplit(compose_url), urlsplit(POSTGRES_URL)
    assert container.hostname == "postgres"
    return container._replace(netloc=local.netloc, path=local.path).geturl()


def _local_redis_url(compose_url: str) -> str:
    """The compose file's Redis URL, aimed at this machine's Redis instead of `redis`."""
    container = urlsplit(compose_url)
    assert container.hostname == "redis"
    return container._replace(netloc="127.0.0.1:6379").geturl()


def _wait_for_health(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()}")
        try:
            response = httpx.get(url, timeout=2)
            assert response.json() == {"status": "ok"}
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not answer in 30 s:\n{log.read_text()}")
            time.sleep(0.1)


def test_the_image_command_serves_with_the_compose_environment(
    tmp_path: Path, schema: str
) -> None:
    """Slow: starts the server as the container's CMD, on PostgreSQL (about 3 s)."""
    port = _free_port()
    command = image_cmd()
    assert argument(command, "--host") == "0.0.0.0"  # kept: the container needs every interface
    command[0] = str(BIN / command[0])
    command[command.index("--port") + 1] = str(port)

    container_env = {**image_env(), **service_env("api", HOST_ENV)}
    data_dir = tmp_path / "data"
    assert container_env["ASSISTANTS_DATA_DIR"] in mounts("api")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANTS_")}
    env.update(container_env)
    env.update(
        ASSISTANTS_DATA_DIR=str(data_dir),
        ASSISTANTS_DATABASE_URL=_local_database_url(container_env["ASSISTANTS_DATABASE_URL"]),
        ASSISTANTS_DATABASE_SCHEMA=schema,
        ASSISTANTS_REDIS_URL=_local_redis_url(container_env["ASSISTANTS_REDIS_URL"]),
        ASSISTANTS_REDIS_PREFIX=schema,
    )

    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   cwd=tmp_path)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for_health(base + "/health", process, log)

        options, healthcheck = image_healthcheck()
        healthcheck[0] = sys.executable
        healthcheck[-1] = healthcheck[-1].replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        timeout = seconds(options.get("timeout", "30s"))
        healthy = subprocess.run(healthcheck, capture_output=True, text=True, timeout=timeout)
        assert healthy.returncode == 0, healthy.stderr
        # ...and it does report a server that is not there.
        down = [*healthcheck[:-1], healthcheck[-1].replace(str(port), str(_free_port()))]
        assert subprocess.run(down, capture_output=True, timeout=timeout).returncode != 0

        listed = httpx.get(base + "/v1/assistants",
                           headers={**BETA, "Authorization": f"Bearer {API_KEY}"})
        assert listed.status_code == 200, listed.text
        assert listed.json()["object"] == "list"
        assert httpx.get(base + "/v1/assistants", headers=BETA).status_code == 401
        wrong = httpx.get(base + "/v1/assistants",
                          headers={**BETA, "Authorization": "Bearer sk-wrong"})
        assert wrong.status_code == 401

        # A streamed run goes through the compose file's Redis (no model is configured, so
        # it fails, on the stream).
        auth = {**BETA, "Authorization": f"Bearer {API_KEY}"}
        assistant = httpx.post(base + "/v1/assistants", headers=auth,
                               json={"model": "any"}).json()
        streamed = httpx.post(base + "/v1/threads/runs", headers=auth, timeout=30, json={
            "assistant_id": assistant["id"], "stream": True})
        names = [line[7:] for line in streamed.text.splitlines() if line.startswith("event: ")]
        assert names[0] == "thread.created" and names[-2:] == ["thread.run.failed", "done"]
        import redis

        shared = redis.Redis.from_url(env["ASSISTANTS_REDIS_URL"])
        try:
            assert list(shared.scan_iter(f"{schema}:run:*:log"))
            for key in shared.scan_iter(f"{schema}:*"):
                shared.delete(key)
        finally:
            shared.close()

        tables = run_blocking(_postgres(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", schema
        ))
        assert {"alembic_version", "assistants"} <= {row["table_name"] for row in tables}
    finally:
        process.terminate()  # what `docker stop` sends to PID 1
        process.wait(timeout=20)
    output = log.read_text()
    # A clean shutdown: uvicorn finishes, then re-raises the SIGTERM it caught (as PID 1 in a
    # container that signal is ignored and the process exits 0).
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    assert f"http://0.0.0.0:{port}/v1" in output
    assert "no API key is configured or created" not in output
    assert not data_dir.exists() or not any(data_dir.glob("*.db"))  # PostgreSQL, not SQLite


# --- the image's build steps, replayed here -----------------------------------------------------


def _copy_into(image: Path, workdir: PurePosixPath, instruction: Instruction) -> None:
    """Replay a COPY from the project into `image` (standing for the image's /), leaving out
    what .dockerignore leaves out and keeping symlinks as symlinks, as BuildKit does."""
    *sources, destination = [t for t in shlex.split(instruction.args) if not t.startswith("--")]
    target_dir = image / (workdir / destination).relative_to("/")
    for source in sources:
        origin = ROOT / source
        assert origin.exists() and not ignored(source.rstrip("/")), f"{source} is not in context"
        if origin.is_file():
            into_dir = destination.endswith(("/", "."))
            target = target_dir / origin.name if into_dir else target_dir
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target)
            continue
        for path in sorted(origin.rglob("*")):
            if ignored(path.relative_to(ROOT).as_posix()):
                continue
            target = target_dir / path.relative_to(origin)
            if path.is_symlink():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(os.readlink(path))
            elif path.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)


def _pip_installs(run: str) -> list[list[str]]:
    """The arguments of each `pip install` in a RUN step."""
    found = []
    for segment in run.split("&&"):
        words = shlex.split(segment)
        if words[:2] == ["pip", "install"]:
            found.append(words[2:])
    return found


def _run_dependency_step(cwd: Path, run: str) -> str:
    """Run the dependency RUN step here, pip only resolving (against this venv, offline)."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    dry = run.replace("pip install", "pip install --dry-run")
    result = subprocess.run(["sh", "-c", dry], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_image_build_steps_install_a_wheel_that_can_migrate(tmp_path: Path) -> None:
    """Slow: replays the build, builds and installs the wheel, migrates SQLite (about 6 s)."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    image = tmp_path / "image"
    workdir = PurePosixPath("/")
    project_dirs: list[Path] = []
    dependency_steps = 0
    for instruction in dockerfile():
        cwd = image / workdir.relative_to("/")
        if instruction.keyword == "WORKDIR":
            workdir = workdir / instruction.args
        elif instruction.keyword == "COPY":
            _copy_into(image, workdir, instruction)
        elif instruction.keyword == "RUN":
            for arguments in _pip_installs(instruction.args):
                if any(a == "." or a.startswith(".[") for a in arguments):  # the project
                    assert "." in arguments, "install the project without extras"
                    assert "--no-deps" in arguments
                    project_dirs.append(cwd)
                    continue
                # The cached dependency layer: it must work from what was copied so far, and
                # that must not be the code, or every code change would reinstall everything.
                assert not (cwd / "src").exists(), "install the dependencies before the code"
                dependency_steps += 1
                output = _run_dependency_step(cwd, instruction.args)
                for requirement in project["dependencies"]:
                    assert f"Requirement already satisfied: {requirement} " in output
                extras = project["optional-dependencies"]
                for name in {*extras["dev"], *extras["test"]} - set(project["dependencies"]):
                    assert f"satisfied: {name}" not in output
    assert dependency_steps == 1 and len(project_dirs) == 1

    wheels = tmp_path / "wheels"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels),
         str(project_dirs[0])],
        capture_output=True, text=True, timeout=120,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = wheels.glob("assistants_server-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        console = archive.read(entry_points).decode()
    assert "assistants-server = assistants_server.cli:main" in console
    versions = [n for n in names if n.startswith("assistants_server/migrations/versions/")
                and n.endswith(".py") and not n.endswith("__init__.py")]
    expected = sorted(p.name for p in (ROOT / "migrations/versions").glob("[!_]*.py"))
    assert expected and sorted(PurePosixPath(n).name for n in versions) == expected
    assert {"assistants_server/migrations/env.py",
            "assistants_server/migrations/script.py.mako"} <= set(names)

    # Installed on its own (not this checkout's editable install), the wheel migrates.
    site = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
         str(wheel)], capture_output=True, text=True, timeout=120,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANTS_")}
    env.update(PYTHONPATH=str(site), ASSISTANTS_DATA_DIR=str(tmp_path / "data"))
    where = subprocess.run(
        [sys.executable, "-c", "import assistants_server; print(assistants_server.__file__)"],
        env=env, capture_output=True, text=True, timeout=30, cwd=tmp_path,
    )
    assert Path(where.stdout.strip()).is_relative_to(site), where.stdout + where.stderr
    migrated = subprocess.run(
        [sys.executable, "-m", "assistants_server", "migrate"],
        env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert migrated.returncode == 0, migrated.stderr
    assert (tmp_path / "data" / "assistants.db").exists()
