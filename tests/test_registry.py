"""The model registry: registering GGUF files, defaults, settings entries, lookups."""

from __future__ import annotations

from pathlib import Path

import pytest

from geri.errors import InputError, ModelFileError, ModelNotFound
from geri.registry import ModelRegistry
from geri.settings import CloudModel, LocalModel, Performance, Settings
from geri.store import open_store


def registry(tmp_path: Path, settings: Settings | None = None) -> ModelRegistry:
    return ModelRegistry(settings or Settings(), open_store(tmp_path / "g.db"))


def test_the_first_registered_model_becomes_the_default(tmp_path: Path, smollm_path: Path) -> None:
    reg = registry(tmp_path)
    info, added = reg.add_local(smollm_path)
    assert added
    assert info.id == "smollm2-135m-instruct.q4_1"
    assert (info.quantization, info.size_bytes) == ("Q4_1", smollm_path.stat().st_size)
    assert reg.default_id() == info.id
    assert reg.get().id == info.id
    # the file's 8192-token window is capped by performance.context_size (4096 by default)
    assert reg.get().context_window == 4096
    again, added = reg.add_local(smollm_path)
    assert not added
    assert again.id == info.id


def test_an_id_taken_by_another_file_is_refused(tmp_path: Path, smollm_path: Path) -> None:
    reg = registry(tmp_path)
    reg.add_local(smollm_path, "smol")
    copy = tmp_path / "copy.gguf"
    copy.write_bytes(smollm_path.read_bytes())
    with pytest.raises(InputError, match="already registered"):
        reg.add_local(copy, "smol")
    with pytest.raises(InputError, match="Invalid model id"):
        reg.add_local(copy, "-bad id")


def test_a_bad_file_is_never_registered(tmp_path: Path) -> None:
    reg = registry(tmp_path)
    text = tmp_path / "notes.gguf"
    text.write_text("hello")
    with pytest.raises(ModelFileError):
        reg.add_local(text)
    assert reg.store.list_models() == []


def test_removing_the_default_moves_it_on(tmp_path: Path, smollm_path: Path) -> None:
    reg = registry(tmp_path)
    reg.add_local(smollm_path, "one")
    reg.add_local(smollm_path, "two")
    assert reg.remove("one")
    assert reg.default_id() == "two"
    assert reg.remove("two")
    assert reg.default_id() is None
    assert not reg.remove("two")


def test_settings_entries_win_and_cannot_be_removed_here(tmp_path: Path) -> None:
    settings = Settings(
        models=(
            LocalModel(id="mine", path=Path("~/m.gguf"), context_window=1024),
            CloudModel(kind="cloud", id="gpt", provider="openai", model="gpt-4o", input_price=2.5),
        ),
        default_model="gpt",
        performance=Performance(context_size=2048),
    )
    reg = registry(tmp_path, settings)
    assert reg.get().id == "gpt"
    assert reg.get("gpt").input_price == 2_500_000
    assert reg.get("gpt").location == "cloud"
    assert reg.get("mine").context_window == 1024
    assert not reg.get("mine").source.startswith("~")
    with pytest.raises(InputError, match="settings file"):
        reg.remove("mine")


def test_unknown_ids_suggest_close_ones(tmp_path: Path, smollm_path: Path) -> None:
    reg = registry(tmp_path)
    reg.add_local(smollm_path, "smol")
    with pytest.raises(ModelNotFound, match="Did you mean 'smol'"):
        reg.get("smoll")


def test_filter_by_kind_location_provider_and_window(tmp_path: Path, smollm_path: Path) -> None:
    reg = registry(tmp_path)
    reg.add_local(smollm_path, "smol")
    assert [m.id for m in reg.filter(location="local")] == ["smol"]
    vision = reg.filter(kind="vision", provider="anthropic")
    assert {m.id for m in vision} == {"claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"}
    assert all(m.context_window >= 1_000_000 for m in reg.filter(min_context=1_000_000))
    assert {m.provider for m in reg.filter(min_context=1_000_000)} == {"openai", "google"}
