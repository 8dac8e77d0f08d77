"""The YAML configuration file: what a valid file gives, and that every mistake is reported
with the file, the line and the key path an operator has to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistants_server.backends.config import Target
from assistants_server.backends.config_file import (
    ConfigFileError,
    check_settings_keys,
    load_config_file,
)
from assistants_server.config import Settings

ROOT = Path(__file__).resolve().parents[2]

VALID = """\
port: 8080
data_dir: /var/lib/assistants
backends:
  - name: ollama
    base_url: http://localhost:11434/v1/
    tool_calling: native
    max_concurrency: 1
    timeouts:
      first_token: 120
  - name: openai
    base_url: https://api.openai.com/v1
    api_key_env: OPENAI_API_KEY
models:
  - name: gpt-4o
    aliases: [gpt-4o-mini]
    backend: ollama
    model: llama3.1:8b
    fallbacks:
      - backend: openai
        model: gpt-4o
  - name: gpt-4-turbo*
    backend: openai
embeddings:
  backend: openai
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "assistants.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> ConfigFileError:
    path = write(tmp_path, text)
    with pytest.raises(ConfigFileError) as caught:
        load_config_file(path)
    return caught.value


def test_valid_file_gives_backends_routes_embeddings_and_settings(tmp_path: Path) -> None:
    config = load_config_file(write(tmp_path, VALID))

    ollama, openai = config.models.backends
    assert (ollama.name, ollama.base_url, ollama.max_concurrency) == (
        "ollama", "http://localhost:11434/v1", 1)
    assert ollama.timeouts.first_token == 120
    assert openai.api_key_env == "OPENAI_API_KEY"
    gpt4o, turbo = config.models.models
    assert gpt4o.names == ["gpt-4o", "gpt-4o-mini"]
    assert gpt4o.targets == [Target(backend="ollama", model="llama3.1:8b"),
                             Target(backend="openai", model="gpt-4o")]
    assert (turbo.name, turbo.backend, turbo.model) == ("gpt-4-turbo*", "openai", None)
    assert config.models.embeddings is not None
    assert config.models.embeddings.backend == "openai"
    assert config.settings == {"port": 8080, "data_dir": "/var/lib/assistants"}
    assert config.lines == {"port": 1, "data_dir": 2, "backends": 3, "models": 13,
                            "embeddings": 23}


def test_example_file_loads_and_its_settings_are_server_settings(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    config = load_config_file(ROOT / "assistants.example.yaml")

    assert [b.name for b in config.models.backends] == ["ollama", "vllm", "openai", "llamacpp"]
    assert config.models.backend("llamacpp").tool_calling == "tagged"
    assert config.models.backend("llamacpp").stream_tools is False
    assert config.models.models[0].names == [
        "gpt-4o", "gpt-4o-2024-08-06", "gpt-4o-mini", "gpt-4o-mini-2024-07-18"]
    check_settings_keys(config, Settings.model_fields)


def test_empty_file_configures_nothing(tmp_path: Path) -> None:
    config = load_config_file(write(tmp_path, "# nothing yet\n"))

    assert config.models.backends == [] and config.settings == {}


def test_environment_variables_are_expanded_in_values(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    monkeypatch.setenv("LLM_HOST", "gpu-box")
    config = load_config_file(write(tmp_path, """\
backends:
  - name: openai
    base_url: http://${LLM_HOST}:8001/v1
    api_key: ${OPENAI_API_KEY}
    headers:
      X-Note: $${NOT_EXPANDED}
"""))

    backend = config.models.backends[0]
    assert backend.base_url == "http://gpu-box:8001/v1"
    assert backend.resolved_api_key() == "sk-secret"
    assert backend.headers == {"X-Note": "${NOT_EXPANDED}"}


def test_unset_environment_variable_names_line_and_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_KEY_SET", raising=False)
    error = load_error(tmp_path, """\
backends:
  - name: openai
    base_url: https://api.openai.com/v1
    api_key: ${NO_SUCH_KEY_SET}
""")

    assert (error.line, error.key) == (4, "backends[0].api_key")
    assert str(error).endswith(
        "assistants.yaml:4: backends[0].api_key: environment variable NO_SUCH_KEY_SET is not set")


def test_unknown_key_deep_inside_lists_the_expected_keys(tmp_path: Path) -> None:
    error = load_error(tmp_path, """\
backends:
  - name: ollama
    base_url: http://localhost:11434/v1
    timeouts:
      connect: 5
      first_tokn: 30
""")

    assert (error.line, error.key) == (6, "backends[0].timeouts.first_tokn")
    assert error.problem == ("unknown key (did you mean first_token? "
                             "expected one of connect, first_token, idle, total)")


def test_wrong_type_names_the_line_of_the_value(tmp_path: Path) -> None:
    error = load_error(tmp_path, """\
backends:
  - name: ollama
    base_url: http://localhost:11434/v1
  - name: vllm
    base_url: http://localhost:8001/v1
    retries: many
""")

    assert (error.line, error.key) == (6, "backends[1].retries")
    assert "valid integer" in error.problem


def test_field_check_message_comes_without_pydantic_prefix(tmp_path: Path) -> None:
    error = load_error(tmp_path, """\
backends:
  - name: ollama
    base_url: localhost:11434
""")

    assert (error.line, error.key) == (3, "backends[0].base_url")
    assert error.problem == "must start with http:// or https://"


def test_missing_base_url_points_at_the_backend_entry(tmp_path: Path) -> None:
    error = load_error(tmp_path, """\
backends:
  - name: ollama
    base_url: http://localhost:11434/v1

  - name: vllm
    max_concurrency: 4
""")

    assert (error.line, error.key) == (5, "backends[1].base_url")
    assert error.problem == "required key is missing"


def test_route_to_undeclared_backend_points_at_its_backend_key(tmp_path: Path) -> None:
    error = load_error(tmp_path, """\
backends:
  - name: ollama
    base_url: http://localhost:11434/v1
  - name: openai
    base_url: https://api.openai.com/v1
models:
  - name: gpt-4o-mini
    backend: ollama
  - name: gpt-4o
    model: llama3.1
    backend: olama
""")

    assert str(error) == (
        f"{tmp_path / 'assistants.yaml'}:11: models[1].backend: model 'gpt-4o' names backend "
        "'olama', which is not declared (declared: ollama, openai)")


def test_fallback_to_undeclared_backend_points_at_the_fallback(tmp_path: Path) -> None:
    error = load_error(tmp_path, """\
backends:
  - name: ollama
    base_url: http://localhost:11434/v1
models:
  - name: gpt-4o
    backend: ollama
    fallbacks:
      - backend: ollama
        model: other
      - backend: openai
""")

    assert (error.line, error.key) == (10, "models[0].fallbacks[1].backend")
    assert "names backend 'openai', which is not declared" in error.problem


def test_embeddings_on_undeclared_backend_points_at_its_backend_key(tmp_path: Path) -> None:
    error = load_error(tmp_path, """\
backends:
  - name: ollama
    base_url: http://localhost:11434/v1
embeddings:
  model: nomic-embed-text
  backend: openai
""")

    assert (error.line, error.key) == (6, "embeddings.backend")


def test_duplicate_alias_points_at_its_second_use(tmp_path: Path) -> None:
    error = load_error(tmp_path, """\
backends:
  - name: ollama
    base_url: http://localhost:11434/v1
models:
  - name: gpt-4o
    aliases: [gpt-4o-mini]
    backend: ollama
  - name: small
    aliases:
      - tiny
      - gpt-4o-mini
    backend: ollama
""")

    assert (error.line, error.key) == (11, "models[1].aliases[1]")
    assert error.problem == "model names and aliases must be unique; repeated: gpt-4o-mini"


def test_duplicate_backend_name_points_at_its_second_use(tmp_path: Path) -> None:
    error = load_error(tmp_path, """\
backends:
  - name: local
    base_url: http://localhost:11434/v1
  - name: local
    base_url: http://localhost:8001/v1
""")

    assert (error.line, error.key) == (4, "backends[1].name")


def test_every_mistake_is_reported_in_line_order(tmp_path: Path) -> None:
    error = load_error(tmp_path, """\
backends:
  - name: ollama
    base_url: http://localhost:11434/v1
    retries: 99
    vision: sometimes
""")

    path = tmp_path / "assistants.yaml"
    assert (error.line, error.key) == (4, "backends[0].retries")
    first, second = str(error).splitlines()
    assert first.startswith(f"{path}:4: backends[0].retries: ")
    assert second.startswith(f"{path}:5: backends[0].vision: ")


def test_repeated_key_is_refused_rather_than_silently_overwritten(tmp_path: Path) -> None:
    error = load_error(tmp_path, """\
backends:
  - name: ollama
    base_url: http://localhost:11434/v1
    base_url: http://localhost:8001/v1
""")

    assert (error.line, error.key) == (4, "backends[0].base_url")
    assert error.problem == "duplicate key (first at line 3)"


def test_anchors_and_merge_keys_work_and_own_keys_win(tmp_path: Path) -> None:
    config = load_config_file(write(tmp_path, """\
backends:
  - &local
    name: a
    base_url: http://localhost:8001/v1
    timeouts: &slow {first_token: 300}
  - <<: *local
    name: b
    timeouts: *slow
"""))

    a, b = config.models.backends
    assert (b.name, b.base_url, b.timeouts.first_token) == ("b", a.base_url, 300)


def test_invalid_yaml_gives_yamls_own_line(tmp_path: Path) -> None:
    error = load_error(tmp_path, """\
backends:
  - name: ollama
    base_url: http://localhost:11434/v1
    headers: {X-A: 1
port: 8080
""")

    assert error.line == 5
    assert str(error).startswith(f"{tmp_path / 'assistants.yaml'}:5: invalid YAML: ")


def test_non_string_key_is_refused(tmp_path: Path) -> None:
    error = load_error(tmp_path, "port: 8080\nyes: 1\n")

    assert (error.line, error.key) == (2, "yes")
    assert error.problem == "a key must be a string; quote it"


def test_top_level_list_is_refused(tmp_path: Path) -> None:
    error = load_error(tmp_path, "# servers\n- name: ollama\n- name: openai\n")

    assert error.line == 2
    assert "top level must be a mapping" in error.problem and "not a list" in error.problem


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError) as caught:
        load_config_file(tmp_path / "nowhere.yaml")

    assert str(caught.value) == f"{tmp_path / 'nowhere.yaml'}: configuration file not found"
    assert caught.value.line is None


def test_unknown_setting_is_reported_at_its_line(tmp_path: Path) -> None:
    config = load_config_file(write(tmp_path, "port: 8080\n\ndata_dir: /x\nprot: 1\n"))

    with pytest.raises(ConfigFileError) as caught:
        check_settings_keys(config, ["port", "data_dir", "host"])

    assert (caught.value.line, caught.value.key) == (4, "prot")
    assert caught.value.problem == ("unknown key (did you mean port? expected one of backends, "
                                    "data_dir, embeddings, host, models, port)")


def test_known_settings_pass_the_check(tmp_path: Path) -> None:
    config = load_config_file(write(tmp_path, VALID))

    check_settings_keys(config, Settings.model_fields)
