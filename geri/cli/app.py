"""The Typer application: the top-level options and the command groups."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from geri._version import __version__
from geri.cli import (
    ask,
    budget,
    cache,
    config,
    daemon,
    install,
    keys,
    logs,
    models,
    route,
    stats,
    vision,
)

HELP = ["-h", "--help"]

app = typer.Typer(
    name="geri",
    help="A local LLM service: run local GGUF models, call cloud models, serve both over gRPC.\n\n"
    "Start with [bold]geri models add PATH.gguf[/] (or [bold]geri install[/]), then "
    '[bold]geri ask "your question"[/].',
    no_args_is_help=True,
    add_completion=False,  # static scripts ship in completions/ (scripts/gen_completions.py)
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": HELP},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"geri {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", help="Show the version and exit.", callback=_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Top-level options."""


app.command(name="install")(install.install)
app.command(name="ask")(ask.ask)
app.command(name="vision")(vision.vision)
app.command(name="route")(route.route)
app.command(name="logs")(logs.logs)
app.command(name="stats")(stats.stats)
app.add_typer(models.app, name="models")
app.add_typer(keys.app, name="keys")
app.add_typer(budget.app, name="budget")
app.add_typer(cache.app, name="cache")
app.add_typer(daemon.app, name="daemon")
app.add_typer(config.app, name="config")


def command() -> Any:
    """The command tree that `geri` runs: `app`, with flags shown as the bare switches they
    are (Typer labels them `<bool>` in `--help`, as if they took a value)."""
    import typer.main

    tree = typer.main.get_command(app)
    _bare_flags(tree)
    return tree


def _bare_flags(node: Any) -> None:
    # duck-typed: Typer may build on its own copy of click, so click's classes do not match
    # the help option is made on first use and kept: make it now, to reach it
    options = [*node.params, node.get_help_option(node.context_class(node, help_option_names=HELP))]
    for param in options:
        if getattr(param, "is_flag", False):
            param.metavar = ""
    for child in getattr(node, "commands", {}).values():
        _bare_flags(child)
