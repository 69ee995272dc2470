"""The settings file: defaults, validation messages, and GERI_HOME."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from geri.errors import ConfigError
from geri.paths import Paths
from geri.settings import CloudModel, LocalModel, Settings, load_settings


def write(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_a_missing_file_means_defaults(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "none.json")
    assert settings == Settings()
    assert settings.performance.context_size == 4096
    assert settings.fallback.enabled


def test_a_full_file_is_read(tmp_path: Path) -> None:
    path = write(
        tmp_path / "s.json",
        {
            "models": [
                {"kind": "local", "id": "llama3", "path": "/models/llama3.gguf"},
                {
                    "kind": "cloud",
                    "id": "gpt",
                    "provider": "openai",
                    "model": "gpt-4o",
                    "input_price": "2.5",
                    "output_price": 10,
                },
            ],
            "default_model": "llama3",
            "vision_models": ["gpt"],
            "fallback": {"local_model": "llama3"},
            "performance": {"threads": 4, "keep_loaded": False},
        },
    )
    settings = load_settings(path)
    local, cloud = settings.models
    assert isinstance(local, LocalModel)
    assert local.path == Path("/models/llama3.gguf")
    assert isinstance(cloud, CloudModel)
    assert str(cloud.input_price) == "2.5"
    assert settings.performance.threads == 4
    assert settings.model_entry("gpt") is cloud


def test_invalid_json_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "s.json", '{\n  "default_model": "x",\n}')
    with pytest.raises(ConfigError, match=r"s\.json is not valid JSON.*line 3"):
        load_settings(path)


def test_an_unknown_field_lists_the_allowed_ones(tmp_path: Path) -> None:
    path = write(tmp_path / "s.json", {"performance": {"thread": 4}})
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    message = str(err.value)
    assert str(path) in message
    assert "performance.thread: unknown field" in message
    assert "threads" in message
    assert "context_size" in message


def test_a_bad_value_names_the_field_and_what_is_allowed(tmp_path: Path) -> None:
    path = write(tmp_path / "s.json", {"models": [{"kind": "remote", "id": "x"}]})
    with pytest.raises(ConfigError, match=r"models\.0.*'local', 'cloud'"):
        load_settings(path)
    path = write(tmp_path / "s.json", {"performance": {"threads": 0}})
    with pytest.raises(ConfigError, match=r"performance\.threads: .*greater than or equal to 1"):
        load_settings(path)


def test_duplicate_model_ids_are_refused(tmp_path: Path) -> None:
    entry = {"kind": "local", "id": "a", "path": "/a.gguf"}
    path = write(tmp_path / "s.json", {"models": [entry, entry]})
    with pytest.raises(ConfigError, match="duplicate model id 'a'"):
        load_settings(path)


def test_the_top_level_must_be_an_object(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="JSON object"):
        load_settings(write(tmp_path / "s.json", "[]"))


def test_geri_home_relocates_every_path(tmp_path: Path) -> None:
    paths = Paths.from_env({"GERI_HOME": str(tmp_path)})
    for directory in (paths.config_dir, paths.data_dir, paths.cache_dir, paths.log_dir):
        assert directory.is_relative_to(tmp_path)
    assert paths.settings_file == tmp_path / "config" / "settings.json"
    assert paths.database.is_relative_to(tmp_path)


def test_without_geri_home_the_os_locations_are_used() -> None:
    import platformdirs

    paths = Paths.from_env({})
    assert paths.config_dir == Path(platformdirs.user_config_dir("geri"))
    assert paths.data_dir == Path(platformdirs.user_data_dir("geri"))
