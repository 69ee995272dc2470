"""`geri install`: download the right local model for this machine, or register a file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from geri.cli import render
from geri.cli.common import with_engine

if TYPE_CHECKING:
    from geri.types import ModelInfo


def install(
    target: Annotated[
        str | None,
        typer.Argument(
            help="A catalog model (see --list) or a .gguf file on disk. Chosen from the "
            "hardware if omitted.",
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Catalog model to install.")
    ] = None,
    model_id: Annotated[
        str | None, typer.Option("--id", help="Id for a .gguf file installed from disk.")
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Show the plan and what the machine has; fetch nothing."),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Install even if RAM or disk look too small.")
    ] = False,
    list_models: Annotated[
        bool, typer.Option("--list", help="List the models that can be installed.")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Download a local model picked for this machine: verified, resumable, registered.

    On ordinary hardware that is Llama 3 8B Instruct; on weak hardware (little RAM, few cores)
    a 1-bit BitNet model. HF_TOKEN is used for gated models and HF_ENDPOINT for a mirror.
    An interrupted download resumes when you run the same command again.

    Examples:

    \b
      geri install --dry-run
      geri install tiny
      geri install ~/Downloads/mistral-7b-instruct.Q4_K_M.gguf --id mistral
    """
    import asyncio

    from geri import install as service
    from geri.paths import Paths

    if list_models:
        _list(json_output)
        return
    name = model or target
    if target and model is None and (target.endswith(".gguf") or Path(target).exists()):
        path = Path(target).expanduser()
        with render.transfer(f"Hashing {path.name}") as progress:
            info, added = with_engine(
                lambda e: asyncio.to_thread(
                    service.install_file, e.registry, path, model_id, progress=progress
                )
            )
        _done(info, added, json_output)
        return
    from geri.settings import load_settings

    paths = Paths.from_env()
    server = load_settings(paths.settings_file).bitnet.server
    steps = service.plan(paths.models_dir, name, bitnet_server=server is not None)
    if json_output and dry_run:
        render.print_json(steps.as_dict())
        return
    render.install_plan(steps, output=dry_run)
    if dry_run:
        return
    with render.transfer(f"Downloading {steps.entry.file}") as progress:
        info, added = with_engine(
            lambda e: asyncio.to_thread(
                service.install,
                e.registry,
                steps,
                force=force,
                progress=progress,
                on_wait=lambda: render.notice(
                    "Another geri install is fetching this model; waiting for it to finish."
                ),
            )
        )
    _done(info, added, json_output)


def _done(info: ModelInfo, added: bool, json_output: bool) -> None:
    render.registered(
        info,
        added,
        json_output,
        new="Installed {info.id}: {info.name} ({size}).",
        known="{info.id} was already installed.",
    )


def _list(json_output: bool) -> None:
    from geri.install import catalog

    items = catalog()
    if json_output:
        render.print_json([m.model_dump() for m in items])
        return
    render.table(
        None,
        ["name", "model", "size", "RAM", "context", "license", "runs on"],
        [
            [
                m.name,
                m.title,
                render.size(m.size or m.approx_size),
                render.size(m.ram_bytes),
                m.context_length,
                m.license,
                m.runtime,
            ]
            for m in items
        ],
        wrap={"model", "license", "runs on"},
    )
