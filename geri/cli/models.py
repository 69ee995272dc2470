"""`geri models`: list, register and unregister models."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from geri.cli import render
from geri.cli.common import with_engine
from geri.errors import InputError

if TYPE_CHECKING:
    from geri.types import ModelInfo

app = typer.Typer(
    help="List, register and remove models.",
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,
)


@app.command("list")
def list_models(
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show every model geri can use; the default is marked with *."""
    from dataclasses import asdict

    async def work(engine):  # type: ignore[no-untyped-def]
        models = await engine.list_models()
        default = await engine.default_model()
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
        ["id", "provider", "params", "quant", "size", "context", "source"],
        [
            [
                ("*" if m.id == default else "") + m.id,
                m.provider,
                render.count(m.parameters),
                m.quantization,
                render.size(m.size_bytes),
                m.context_window,
                _source(m),
            ]
            for m in models
        ],
        wrap={"source"},
        notes=["* the default model. 'geri models list --json' has every detail."],
    )


def _source(model: ModelInfo) -> str:
    """The file of a local model; a remote model's name at its provider, where not its id."""
    if model.location == "local":
        return Path(model.source).name
    return "" if model.source == model.id else model.source


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
    target = _single_gguf(path)
    info, added = with_engine(lambda engine: engine.add_model(target, model_id))
    render.registered(
        info,
        added,
        json_output,
        new="Added {info.id} ({info.name}, {size}).",
        known="{info.id} is already registered for {info.source}.",
    )


@app.command("remove")
def remove(
    model_id: Annotated[str, typer.Argument(help="Model id, as 'geri models list' shows it.")],
) -> None:
    """Unregister a model. The file itself is left where it is."""
    removed = with_engine(lambda engine: engine.remove_model(model_id))
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


@app.command("health")
def health(
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Probe every usable model now (file checks, API listings) and log the results."""
    checks = with_engine(lambda engine: engine.router.check_health())
    if json_output:
        render.print_json(
            [
                {
                    "model": c.model_id,
                    "ok": c.ok,
                    "latency_ms": c.latency_ms,
                    "error": c.error,
                    "checked_at": c.checked_at.isoformat(),
                }
                for c in checks
            ]
        )
        return
    render.table(
        None,
        ["model", "status", "ms", "error"],
        [
            [c.model_id, "up" if c.ok else "down", c.latency_ms, render.clip(c.error or "", 70)]
            for c in checks
        ],
        wrap={"error"},
    )


@app.command("discover")
def discover(
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Ask the peers in the settings for their models and register what they serve."""
    found = with_engine(lambda engine: engine.router.discover())
    if json_output:
        render.print_json(
            [
                {
                    "peer": f.peer,
                    "models": [m.id for m in f.models],
                    "rtt_ms": f.rtt_ms,
                    "error": f.error,
                }
                for f in found
            ]
        )
        return
    if not found:
        render.line("No peers in the settings: add them under 'peers' (geri config path).")
    for f in found:
        if f.error:
            render.line(f"{f.peer}: unreachable ({f.error})")
        else:
            names = ", ".join(m.id for m in f.models) or "no models"
            render.line(f"{f.peer}: {names} ({f.rtt_ms:.1f} ms)")
