"""`geri keys`: API keys in the OS keyring.

A key is read from a hidden prompt, or from stdin when piped (`pass show openai | geri keys set
openai`), never from the command line, where it would land in the shell history and in `ps`.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, ParamSpec, TypeVar

import typer

from geri.cli import render
from geri.cli.common import piped_text, with_engine
from geri.errors import InputError

if TYPE_CHECKING:
    from geri.engine import Engine

P = ParamSpec("P")
T = TypeVar("T")

app = typer.Typer(
    help="Store, list, rotate and remove API keys (kept in the OS keyring).",
    rich_markup_mode=None,
    add_completion=False,
)

Provider = Annotated[str, typer.Argument(help="Provider name: openai, anthropic, google, ...")]


def _read_key(provider: str) -> str:
    piped = piped_text(64 * 1024)
    if piped is not None:
        return piped.strip()
    if sys.stdin is None or not sys.stdin.isatty():  # None: stdin closed
        raise InputError(f"No key given: pipe it in, e.g. 'geri keys set {provider} < key.txt'.")
    return str(typer.prompt(f"API key for {provider}", hide_input=True)).strip()


@app.command("set")
def set_key(provider: Provider) -> None:
    """Store the key for PROVIDER, typed at a hidden prompt or piped on stdin."""
    key = _read_key(provider)
    with_engine(lambda engine: engine.set_key(provider, key))
    render.line(f"Stored the key for {provider} in the OS keyring.")


@app.command("list")
def list_keys(
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show which providers have a key, where it comes from, and a masked form of it."""

    rows, problem = with_engine(lambda engine: engine.key_status())
    if problem and not json_output:
        render.notice(problem)
    if json_output:
        render.print_json(
            [{"provider": r.provider, "source": r.source, "key": r.masked} for r in rows]
        )
        return
    render.table(
        None,
        ["provider", "key", "from"],
        [[r.provider, r.masked or "-", r.source or "not set"] for r in rows],
        wrap={"from"},
    )


@app.command("remove")
def remove_key(provider: Provider) -> None:
    """Delete the stored key for PROVIDER (environment variables are not touched)."""
    removed = with_engine(lambda engine: engine.remove_key(provider))
    if not removed:
        raise InputError(f"No key for {provider} is stored in the keyring.")
    render.line(f"Removed the key for {provider}.")


@app.command("rotate")
def rotate_key(
    provider: Provider,
    verify: Annotated[
        bool, typer.Option("--verify", help="Store the new key only if the provider accepts it.")
    ] = False,
) -> None:
    """Replace the key for PROVIDER with a new one, read like 'geri keys set'."""
    key = _read_key(provider)

    async def rotate(engine: Engine) -> None:
        if verify:
            await engine.verify_key(provider, key)
        await engine.set_key(provider, key)

    with_engine(rotate)
    checked = " after the provider accepted it" if verify else ""
    render.line(f"Replaced the key for {provider}{checked}.")
