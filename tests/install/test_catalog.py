"""The catalog's data and the choice of a model from the hardware."""

from __future__ import annotations

from pathlib import Path

import pytest

from geri.errors import InputError
from geri.install.catalog import catalog, choose, entry
from geri.install.download import sha256_of
from geri.install.hardware import Hardware, detect

GIB = 1024**3


def test_entries_are_complete_and_unique() -> None:
    names = [m.name for m in catalog()]
    assert len(names) == len(set(names))
    assert {m.tier for m in catalog()} == {"standard", "weak", "tiny"}
    assert entry("llama3-8b").context_length == 8192
    assert entry("bitnet-2b").runtime == "bitnet"
    with pytest.raises(InputError, match="choose one of: llama3-8b, bitnet-2b, tiny"):
        entry("gpt-5")


def test_the_tiny_pin_matches_the_real_file(smollm_path: Path) -> None:
    tiny = entry("tiny")
    assert tiny.size == smollm_path.stat().st_size
    assert tiny.sha256 == sha256_of(smollm_path)


@pytest.mark.parametrize(
    ("hardware", "name", "why"),
    [
        (Hardware(32 * GIB, 24 * GIB, 10**12, 8, 16), "llama3-8b", "runs well"),
        (Hardware(32 * GIB, 24 * GIB, 10**12, 2, 2), "bitnet-2b", "wants 4 cores"),
        (Hardware(8 * GIB, 3 * GIB, 10**12, 8, 8), "bitnet-2b", "free RAM"),
    ],
)
def test_the_choice_follows_the_hardware(hardware: Hardware, name: str, why: str) -> None:
    choice = choose(hardware)
    assert choice.entry.name == name
    assert why in choice.reason


def test_a_machine_too_small_for_anything_is_told_so() -> None:
    with pytest.raises(InputError, match="try 'geri install tiny'"):
        choose(Hardware(2 * GIB, GIB // 2, 10**12, 1, 1))


def test_detect_reads_this_machine(tmp_path: Path) -> None:
    hardware = detect(tmp_path / "not" / "yet")
    assert hardware.total_ram >= hardware.available_ram > 0
    assert hardware.free_disk > 0
    assert hardware.logical_cores >= hardware.physical_cores >= 1
