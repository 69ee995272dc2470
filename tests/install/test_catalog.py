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
    ("hardware", "server", "name", "why"),
    [
        (Hardware(32 * GIB, 24 * GIB, 10**12, 8, 16), False, "llama3-8b", "runs well"),
        # 2 cores, plenty of RAM: BitNet's i2_s file needs bitnet.cpp's server
        (Hardware(32 * GIB, 24 * GIB, 10**12, 2, 2), True, "bitnet-2b", "wants 4 cores"),
        (Hardware(32 * GIB, 24 * GIB, 10**12, 2, 2), False, "llama3-8b", "about 4 on 2"),
        (Hardware(8 * GIB, 3 * GIB, 10**12, 8, 8), True, "bitnet-2b", "free RAM"),
        (Hardware(8 * GIB, 3 * GIB, 10**12, 8, 8), False, "tiny", "runs anywhere"),
    ],
)
def test_the_choice_follows_the_hardware_and_what_can_run_here(
    hardware: Hardware, server: bool, name: str, why: str
) -> None:
    choice = choose(hardware, bitnet_server=server)
    assert choice.entry.name == name
    assert why in choice.reason


def test_a_model_only_bitnet_cpp_runs_is_refused_without_it_before_downloading(
    tmp_path: Path,
) -> None:
    from geri.install import plan

    steps = plan(tmp_path, "bitnet-2b", bitnet_server=False)
    assert any("bitnet.cpp's server" in p for p in steps.problems)
    with_server = plan(tmp_path, "bitnet-2b", bitnet_server=True)
    assert all("bitnet.cpp" not in p for p in with_server.problems)


def test_a_machine_too_small_for_anything_is_told_so() -> None:
    with pytest.raises(InputError, match="try 'geri install tiny'"):
        choose(Hardware(1 * GIB, GIB // 10, 10**12, 1, 1))
    assert choose(Hardware(2 * GIB, GIB // 2, 10**12, 1, 1)).entry.name == "tiny"


def test_detect_reads_this_machine(tmp_path: Path) -> None:
    hardware = detect(tmp_path / "not" / "yet")
    assert hardware.total_ram >= hardware.available_ram > 0
    assert hardware.free_disk > 0
    assert hardware.logical_cores >= hardware.physical_cores >= 1
