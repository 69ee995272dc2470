"""The command tree: the top-level options, and each command loaded only when it is run.

`geri --help` lists the commands from the table below and imports none of their modules, so
it costs Python, Typer and this file; `geri ask` imports `ask` and nothing of `vision`,
`daemon` or the rest. Help is click's plain text, not Typer's rich panels: rendering those
imports rich's console, markdown and traceback modules, which tripled the cost of `--help`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Annotated, Any

import typer
import typer.main
from typer.core import TyperGroup

from geri._version import __version__

HELP = ["-h", "--help"]


@dataclass(frozen=True, slots=True)
class Entry:
    """A command in the table: where it lives and its line in `geri --help`."""

    module: str  # under geri.cli
    attribute: str  # a command function, or a Typer app for a group of commands
    summary: str

    def load(self, name: str) -> Any:
        target = getattr(importlib.import_module(f"geri.cli.{self.module}"), self.attribute)
        if not isinstance(target, typer.Typer):
            target = single(target, name)
        tree = typer.main.get_command(target)
        tree.name = name
        tree.short_help = self.summary
        _bare_flags(tree)
        return tree


COMMANDS = {
    "install": Entry("install", "install", "Download the right local model for this machine."),
    "ask": Entry("ask", "ask", "Ask a model; the answer is printed as it is written."),
    "vision": Entry("vision", "vision", "Ask a vision model about an image or a video."),
    "route": Entry("route", "route", "Rank the models for a prompt, without sending it."),
    "logs": Entry("logs", "logs", "Show recent requests: model, tokens, latency, prompt."),
    "stats": Entry("stats", "stats", "Requests, latency, tokens/s, cache hits and spend."),
    "models": Entry("models", "app", "List, register and remove models."),
    "keys": Entry("keys", "app", "Store, list, rotate and remove API keys (OS keyring)."),
    "budget": Entry("budget", "app", "Limit what cloud calls may spend per period."),
    "cache": Entry("cache", "app", "The response cache: statistics and clearing."),
    "daemon": Entry("daemon", "app", "Serve the engine over gRPC (and HTTP), models warm."),
    "config": Entry("config", "app", "Show and check the settings file."),
}


def single(function: Any, name: str) -> typer.Typer:
    """A Typer app holding only `function`, as command `name`, with geri's help style."""
    app = typer.Typer(rich_markup_mode=None, add_completion=False)
    app.command(name=name)(function)
    return app


class LazyGroup(TyperGroup):
    """A group whose commands are imported when they are looked up, not before."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *COMMANDS]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            self.commands[cmd_name] = COMMANDS[cmd_name].load(cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = [(name, entry.summary) for name, entry in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def load_all(self) -> None:
        """Import every command (for tools that walk the whole tree)."""
        for name in COMMANDS:
            self.get_command(None, name)


app = typer.Typer(
    name="geri",
    cls=LazyGroup,
    help="A local LLM service: run local GGUF models, call cloud models, serve both over gRPC."
    "\n\nStart with 'geri install' (or 'geri models add PATH.gguf'), then "
    "'geri ask \"your question\"'. Each command has its own --help, with examples.",
    no_args_is_help=True,
    add_completion=False,  # static scripts ship in completions/ (scripts/gen_completions.py)
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
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


def command() -> Any:
    """The command tree that `geri` runs: `app`, its commands loaded as they are asked for."""
    tree = typer.main.get_command(app)
    _bare_flags(tree)
    return tree


def _bare_flags(node: Any) -> None:
    """Flags shown as the bare switches they are (Typer labels them `<bool>` in `--help`, as
    if they took a value)."""
    # duck-typed: Typer may build on its own copy of click, so click's classes do not match
    # the help option is made on first use and kept: make it now, to reach it
    options = [*node.params, node.get_help_option(node.context_class(node, help_option_names=HELP))]
    for param in options:
        if getattr(param, "is_flag", False):
            param.metavar = ""
    for child in getattr(node, "commands", {}).values():
        _bare_flags(child)
