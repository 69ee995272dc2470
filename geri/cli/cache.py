"""`geri cache`: the response cache's size and hit rate, and emptying it."""

from __future__ import annotations

from typing import Annotated

import typer

from geri.cli import render
from geri.cli.common import with_engine

app = typer.Typer(
    help="The response cache: identical requests to an unchanged model are answered from it.\n\n"
    "Skip it for one request with 'geri ask --no-cache'; switch it off with cache.enabled.",
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,
)


@app.command()
def stats(
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show how many answers are cached and how often the cache answered."""
    result = with_engine(lambda engine: engine.cache_stats())
    rate = result.hits / result.requests if result.requests else 0.0
    if json_output:
        render.print_json(
            {
                "entries": result.entries,
                "characters": result.characters,
                "expired": result.expired,
                "hits": result.hits,
                "requests": result.requests,
                "hit_rate": round(rate, 4),
            }
        )
        return
    render.line(f"{result.entries} cached answers ({render.count(result.characters)} characters)")
    if result.expired:
        render.line(f"{result.expired} expired, dropped at the next store")
    render.line(
        f"{result.hits} of {result.requests} answered requests came from the cache ({rate:.0%})"
    )


@app.command()
def clear(
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Only this model's answers.", show_default=False),
    ] = None,
) -> None:
    """Delete cached answers."""
    removed = with_engine(lambda engine: engine.clear_cache(model))
    render.line(f"Removed {removed} cached answer{'s' if removed != 1 else ''}.")
