"""`geri models`: list, register and unregister models."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from geri.cli import render
from geri.cli.common import with_engine
from geri.errors import InputError

app = typer.Typer(help="List, register and remove models.", no_args_is_help=True)


@app.command("list")
def list_models(
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show every model geri can use; the default is marked with *."""
    from dataclasses import asdict

    async def work(engine):  # type: ignore[no-untyped-def]
        models = await engine.list_models()
        default = await asyncio.to_thread(engine.registry.default_id)
        return models, default

    models, default = with_engine(work)
    if json_output:
        render.print_json([{**asdict(m), "default": m.id == default} for m in models])
        return
    if not models:
        render.line("No models yet. Add one with 'geri models add PATH.gguf' or 'geri install'.")
        return
    render.table(
        None,
        ["", "id", "name", "where", "quant", "params", "size", "context", "file"],
        [
            [
                "*" if m.id == default else "",
                m.id,
                m.name,
                m.location,
                m.quantization,
                render.count(m.parameters),
                render.size(m.size_bytes),
                m.context_window,
                Path(m.source).name if m.location == "local" else m.source,
            ]
            for m in models
        ],
    )


@app.command("add")
def add(
    path: Annotated[
        Path,
        typer.Argument(
            help="A .gguf file, or a directory holding exactly one.", show_default=False
        ),
    ],
    model_id: Annotated[
        str | None, typer.Option("--id", help="Name to use for it; derived from the file if unset.")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Register a local GGUF file after checking it is complete.

    The first model you add becomes the default.
    """
    from dataclasses import asdict

    target = _single_gguf(path)
    info, added = with_engine(
        lambda engine: asyncio.to_thread(engine.registry.add_local, target, model_id)
    )
    if json_output:
        render.print_json({**asdict(info), "added": added})
    elif added:
        render.line(f"Added {info.id} ({info.name}, {render.size(info.size_bytes)}).")
    else:
        render.line(f"{info.id} is already registered for {info.source}.")


@app.command("remove")
def remove(
    model_id: Annotated[str, typer.Argument(help="Model id, as 'geri models list' shows it.")],
) -> None:
    """Unregister a model. The file itself is left where it is."""
    removed = with_engine(lambda engine: asyncio.to_thread(engine.registry.remove, model_id))
    if not removed:
        raise InputError(f"No registered model {model_id!r}; see 'geri models list'.")
    render.line(f"Removed {model_id}.")


def _single_gguf(path: Path) -> Path:
    if not path.is_dir():
        return path
    found = sorted(path.glob("*.gguf"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise InputError(f"{path} holds no .gguf file.")
    names = ", ".join(p.name for p in found)
    raise InputError(f"{path} holds several .gguf files ({names}); name one of them.")
