"""`geri config`: where the settings file is, what is in effect, and whether it is valid."""

from __future__ import annotations

from typing import Annotated

import typer

from geri.cli import render

app = typer.Typer(help="Show and check the settings file.", no_args_is_help=True)


@app.command("path")
def path() -> None:
    """Print the path of the settings file (it may not exist yet)."""
    from geri.paths import Paths

    render.write(f"{Paths.from_env().settings_file}\n")


@app.command("show")
def show(
    json_output: Annotated[
        bool, typer.Option("--json", help="Accepted for symmetry; always JSON.")
    ] = False,
) -> None:
    """Print the settings in effect, defaults included, as JSON."""
    from geri.paths import Paths
    from geri.settings import load_settings, settings_json

    render.write(settings_json(load_settings(Paths.from_env().settings_file)) + "\n")


@app.command("validate")
def validate() -> None:
    """Check the settings file; exit non-zero with the problems if it is invalid."""
    from geri.paths import Paths
    from geri.settings import load_settings

    file = Paths.from_env().settings_file
    load_settings(file)
    state = "valid" if file.exists() else "absent, so the defaults apply"
    render.line(f"{file}: {state}.")
