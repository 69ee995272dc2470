"""`geri install`: plan, check, download and register a local model.

A plan is made first, from the catalog and the machine (`plan`): which model and why, where it
comes from, where it goes, and what would stop it. RAM and disk are checked before a single byte
is fetched; a model that will not fit is refused unless forced. `install` then downloads
(resumable, verified, locked: see `download`) and registers the model, the first one becoming
the default. `install_file` does the same offline for a GGUF file already on disk.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from geri.errors import InstallError
from geri.install.catalog import CatalogEntry, catalog, choose, entry, needs_bitnet_server
from geri.install.download import (
    Progress,
    fetch,
    hub_endpoint,
    hub_token,
    resolve,
    sha256_of,
)
from geri.install.hardware import Hardware, detect, gib
from geri.registry import ModelRegistry
from geri.types import ModelInfo

# room left over on the disk after a download, for the database, logs and the OS
DISK_MARGIN = 256 * 1024**2
PROVIDER_FOR_RUNTIME = {"llama.cpp": "llama.cpp", "bitnet": "bitnet"}


@dataclass(frozen=True, slots=True)
class Plan:
    entry: CatalogEntry
    reason: str
    destination: Path
    hardware: Hardware
    already_have: int = 0
    problems: tuple[str, ...] = field(default=())

    @property
    def to_download(self) -> int:
        return max((self.entry.size or self.entry.approx_size) - self.already_have, 0)

    def as_dict(self) -> dict[str, object]:
        return {
            "model": self.entry.name,
            "title": self.entry.title,
            "reason": self.reason,
            "source": f"{hub_endpoint()}/{self.entry.repo}/{self.entry.file}",
            "revision": self.entry.revision,
            "destination": str(self.destination),
            "size": self.entry.size or self.entry.approx_size,
            "already_downloaded": self.already_have,
            "ram_needed": self.entry.ram_bytes,
            "license": self.entry.license,
            "runtime": self.entry.runtime,
            "hardware": self.hardware.as_dict(),
            "problems": list(self.problems),
        }


def plan(models_dir: Path, name: str | None = None, *, bitnet_server: bool = False) -> Plan:
    """What `geri install [name]` would do on this machine, and what stands in its way.

    `bitnet_server`: whether bitnet.cpp's server is set up (`bitnet.server`). A model only it
    can run is a problem without it, found before anything is downloaded: no install ends in
    a model that cannot answer.
    """
    hardware = detect(models_dir)
    if name is None:
        choice = choose(hardware, bitnet_server=bitnet_server)
        chosen, reason = choice.entry, choice.reason
    else:
        chosen, reason = entry(name), "chosen by name"
    destination = models_dir / chosen.repo.replace("/", "--") / chosen.file
    part = destination.with_name(destination.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    problems = []
    if needs_bitnet_server(chosen) and not bitnet_server:
        problems.append(
            f"{chosen.title} runs only in bitnet.cpp's server, which is not set up: build "
            "bitnet.cpp and set bitnet.server to its llama-server binary, or it would not answer"
        )
    if chosen.ram_bytes > hardware.available_ram:
        problems.append(
            f"it needs {gib(chosen.ram_bytes)} of RAM and {gib(hardware.available_ram)} is free"
        )
    needed = (chosen.size or chosen.approx_size) - have + DISK_MARGIN
    if not destination.exists() and needed > hardware.free_disk:
        problems.append(
            f"it needs {gib(needed)} of disk at {models_dir} and {gib(hardware.free_disk)} is free"
        )
    return Plan(chosen, reason, destination, hardware, have, tuple(problems))


def install(
    registry: ModelRegistry,
    steps: Plan,
    *,
    force: bool = False,
    progress: Progress | None = None,
    on_wait: Callable[[], None] | None = None,
) -> tuple[ModelInfo, bool]:
    """Carry out `steps`: download, verify, register. Returns the model and whether it is new."""
    if steps.problems and not force:
        raise InstallError(
            f"Not installing {steps.entry.title}: {'; '.join(steps.problems)}. Nothing was "
            "downloaded. Free some space or memory, pick a smaller model (geri install "
            "--list), or use --force to install anyway."
        )
    token = hub_token()
    remote = resolve(steps.entry, hub_endpoint(), token)
    path = fetch(
        remote,
        steps.destination,
        expected_sha256=steps.entry.sha256,
        expected_size=steps.entry.size,
        token=token,
        progress=progress,
        on_wait=on_wait,
    )
    sha = steps.entry.sha256 or remote.sha256 or ""
    return registry.add_local(
        path,
        steps.entry.name,
        provider=PROVIDER_FOR_RUNTIME[steps.entry.runtime],
        metadata={
            "sha256": sha,
            "repo": steps.entry.repo,
            "revision": remote.commit or steps.entry.revision,
            "license": steps.entry.license,
        },
    )


def install_file(
    registry: ModelRegistry,
    path: Path,
    model_id: str | None = None,
    *,
    progress: Progress | None = None,
) -> tuple[ModelInfo, bool]:
    """Register a GGUF file already on disk: checked, hashed, registered; nothing downloaded."""
    from geri.providers.gguf import read_gguf

    header = read_gguf(path)  # fail fast, before hashing gigabytes
    # ternary BitNet files (TQ1_0, TQ2_0) run in-process through llama.cpp like any other
    provider = "bitnet" if header.architecture == "bitnet" else "llama.cpp"
    return registry.add_local(
        path, model_id, provider=provider, metadata={"sha256": sha256_of(path, progress)}
    )


__all__ = [
    "Plan",
    "catalog",
    "install",
    "install_file",
    "plan",
]
