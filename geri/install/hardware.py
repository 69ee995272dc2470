"""What the machine offers a local model: memory, disk, cores and CPU features.

Read with psutil (and /proc/cpuinfo for the SIMD flags llama.cpp uses, where it exists); cheap
enough to run before every install.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

FEATURES = ("avx", "avx2", "avx512f", "fma", "f16c", "neon", "asimd", "sve")


@dataclass(frozen=True, slots=True)
class Hardware:
    total_ram: int
    available_ram: int
    free_disk: int
    physical_cores: int
    logical_cores: int
    cpu_features: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {
            "total_ram": self.total_ram,
            "available_ram": self.available_ram,
            "free_disk": self.free_disk,
            "physical_cores": self.physical_cores,
            "logical_cores": self.logical_cores,
            "cpu_features": list(self.cpu_features),
        }


def detect(target: Path) -> Hardware:
    """The machine's resources, with the free disk space where `target` (a directory) would be."""
    import psutil

    memory = psutil.virtual_memory()
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return Hardware(
        total_ram=memory.total,
        available_ram=memory.available,
        free_disk=shutil.disk_usage(existing).free,
        physical_cores=psutil.cpu_count(logical=False) or os.cpu_count() or 1,
        logical_cores=psutil.cpu_count(logical=True) or os.cpu_count() or 1,
        cpu_features=_cpu_features(),
    )


def _cpu_features() -> tuple[str, ...]:
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            flags = set(line.split(":", 1)[1].split())
            return tuple(f for f in FEATURES if f in flags)
    return ()


def gib(nbytes: int) -> str:
    """
    >>> gib(6_500_000_000)
    '6.1 GiB'
    """
    return f"{nbytes / 1024**3:.1f} GiB"
