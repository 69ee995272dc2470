"""The catalog of installable models (`catalog.json`) and the choice among them.

`choose` picks from the machine's resources: Llama 3 8B where it runs well, the 1-bit BitNet
model where memory or cores are short, and says why. The tiny model is never picked on its own:
it is there to try geri out, by name.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from geri.errors import InputError
from geri.install.hardware import Hardware, gib

# what "runs well" means for the standard model, beyond fitting in memory
STANDARD_MIN_TOTAL_RAM = 12 * 1024**3
STANDARD_MIN_CORES = 4


class CatalogEntry(BaseModel):
    """One installable model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    title: str
    tier: Literal["standard", "weak", "tiny"]
    repo: str = Field(description="Hub repository, owner/name.")
    file: str
    revision: str = "main"
    size: int | None = Field(None, description="Exact size in bytes, when pinned.")
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    approx_size: int = Field(description="For planning before the hub is asked.")
    ram_bytes: int = Field(description="Memory needed with the model loaded.")
    context_length: int
    license: str
    runtime: Literal["llama.cpp", "bitnet"] = "llama.cpp"


@functools.cache
def catalog() -> tuple[CatalogEntry, ...]:
    raw = resources.files("geri.install").joinpath("catalog.json").read_text("utf-8")
    return tuple(CatalogEntry.model_validate(m) for m in json.loads(raw)["models"])


def needs_bitnet_server(item: CatalogEntry) -> bool:
    """Whether `item` runs only in bitnet.cpp's server (its i2_s format; llama.cpp runs the
    ternary TQ1_0 and TQ2_0 formats in-process)."""
    return item.runtime == "bitnet" and "i2_s" in item.file.lower()


def entry(name: str) -> CatalogEntry:
    for item in catalog():
        if item.name == name:
            return item
    names = ", ".join(m.name for m in catalog())
    raise InputError(f"No model {name!r} in the catalog; choose one of: {names}.")


@dataclass(frozen=True, slots=True)
class Choice:
    entry: CatalogEntry
    reason: str


def choose(hardware: Hardware, *, bitnet_server: bool = False) -> Choice:
    """The model this machine should run, and why; `InputError` if none fits.

    `bitnet_server` says whether bitnet.cpp's server is set up: the weak tier's file is in its
    own i2_s format, which llama.cpp cannot run, so without it that pick would never answer.
    Then a machine with the memory for the standard model gets it (fewer cores only make it
    slower: about 4 tokens/s on 2 cores), and one without gets the tiny model, which runs
    anywhere; each choice says so.
    """
    by_tier = {m.tier: m for m in catalog()}
    standard, weak, tiny = by_tier["standard"], by_tier["weak"], by_tier["tiny"]
    ram = f"{gib(hardware.total_ram)} RAM ({gib(hardware.available_ram)} free)"
    cores = f"{hardware.physical_cores} cores"
    if (
        hardware.available_ram >= standard.ram_bytes
        and hardware.total_ram >= STANDARD_MIN_TOTAL_RAM
        and hardware.physical_cores >= STANDARD_MIN_CORES
    ):
        return Choice(standard, f"{ram} and {cores}: {standard.title} runs well here.")
    if needs_bitnet_server(weak) and not bitnet_server:
        if hardware.available_ram >= standard.ram_bytes:
            return Choice(
                standard,
                f"{ram} and {cores}: {standard.title} fits, and answers at a few tokens a "
                f"second on {cores} (about 4 on 2); {weak.title} would be faster but needs "
                "bitnet.cpp's server (bitnet.server in the settings), which is not set up.",
            )
        if hardware.available_ram >= tiny.ram_bytes:
            return Choice(
                tiny,
                f"{ram} and {cores}: {standard.title} needs {gib(standard.ram_bytes)} free, "
                f"and {weak.title} needs bitnet.cpp's server (bitnet.server in the settings), "
                f"which is not set up; {tiny.title} runs anywhere.",
            )
    if hardware.available_ram >= weak.ram_bytes:
        short = (
            f"{gib(standard.ram_bytes)} free RAM"
            if hardware.available_ram < standard.ram_bytes
            else f"{STANDARD_MIN_CORES} cores and {gib(STANDARD_MIN_TOTAL_RAM)} RAM"
        )
        return Choice(
            weak,
            f"{ram} and {cores}: {standard.title} wants {short}; "
            "the 1-bit BitNet model runs well on less.",
        )
    raise InputError(
        f"This machine has {ram}: not enough for {weak.title} ({gib(weak.ram_bytes)}). "
        "Free some memory, or try 'geri install tiny'."
    )
