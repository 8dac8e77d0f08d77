"""Where settings come from: the configuration file, the environment over it, and the
one-backend variables when there is no file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from assistants_server.config import Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.upper().startswith("ASSISTANTS_"):
            monkeypatch.delenv(name)


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "assistants.yaml"
    path.write_text(text)
    return path


def test_the_file_sets_the_database_and_the_environment_overrides_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _file(tmp_path, "database_url: postgresql+asyncpg://app@db/assistants\n"
                             "port: 8080\nlog_level: debug\n")
    monkeypatch.setenv("ASSISTANTS_PORT", "9000")
    settings = Settings.load(config)
    assert settings.database_url == "postgresql+asyncpg://app@db/assistants"
    assert (settings.port, settings.log_level) == (9000, "debug")


def test_the_file_data_dir_places_the_default_database(tmp_path: Path) -> None:
    config = _file(tmp_path, f"data_dir: {tmp_path / 'store'}\n")
    settings = Settings.load(config)
    assert settings.resolved_database_url.endswith(f"{tmp_path}/store/assistants.db")


def test_the_file_is_read_from_assistants_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _file(tmp_path, "backends:\n  - {name: local, base_url: http://127.0.0.1:1/v1}\n"
                             "models:\n  - {name: gpt-4o, backend: local, model: qwen}\n")
    monkeypatch.setenv("ASSISTANTS_CONFIG", str(config))
    settings = Settings.load()
    assert [route.name for route in settings.models_config.models] == ["gpt-4o"]


def test_a_bad_setting_in_the_file_names_its_line(tmp_path: Path) -> None:
    from assistants_server.backends.config_file import ConfigFileError

    config = _file(tmp_path, "port: 8080\nworkers: none\n")
    with pytest.raises(ConfigFileError) as caught:
        Settings.load(config)
    assert str(caught.value).startswith(f"{config}:2: workers:")


def test_without_a_file_the_backend_variables_make_one_backend_for_every_name(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSISTANTS_BACKEND_BASE_URL", "http://localhost:11434/v1/")
    monkeypatch.setenv("ASSISTANTS_BACKEND_TIMEOUT_SECONDS", "900")
    settings = Settings.load()
    (backend,) = settings.models_config.backends
    assert backend.base_url == "http://localhost:11434/v1"
    assert (backend.timeouts.first_token, backend.timeouts.total) == (900, 900)
    assert [route.name for route in settings.models_config.models] == ["*"]


def test_an_empty_variable_does_not_override_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _file(tmp_path, "api_keys: [sk-team-a]\nhost: 0.0.0.0\n")
    monkeypatch.setenv("ASSISTANTS_API_KEYS", "")
    settings = Settings.load(config)
    assert settings.api_keys == ["sk-team-a"]


def test_every_setting_has_a_row_in_the_readme() -> None:
    """A new user learns the settings from README.md's table: none may be missing from it."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    first_cells = [line.split("|")[1] for line in readme.splitlines()
                   if line.startswith("| `ASSISTANTS_")]
    rows = {name for cell in first_cells for name in re.findall(r"`(ASSISTANTS_\w+)`", cell)}
    internal = {"models_config"}  # the configuration file's content, set by ASSISTANTS_CONFIG
    settings = {f"ASSISTANTS_{name.upper()}" for name in Settings.model_fields} - {
        f"ASSISTANTS_{name.upper()}" for name in internal}
    assert sorted(settings - rows) == []
