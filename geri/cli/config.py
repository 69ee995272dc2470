"""`geri config`: where the settings file is, what is in effect, and whether it is valid."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from geri.cli import render

if TYPE_CHECKING:
    from geri.engine import Engine

app = typer.Typer(
    help="Show and check the settings file.",
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,
)


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
    """Print the settings in effect as JSON: defaults included, the default model as chosen
    (in the settings or by 'geri models add'), and under "registry" where the store is and
    which models are registered in it."""
    from geri.cli.common import with_engine
    from geri.engine import store_location
    from geri.paths import Paths
    from geri.store.postgres import safe_url

    async def in_effect(engine: Engine) -> dict[str, Any]:
        data = engine.settings.model_dump(mode="json")
        data["default_model"] = await engine.default_model()
        data["registry"] = {
            "store": safe_url(str(store_location(Paths.from_env(), engine.settings))),
            "models": [
                {"id": m.id, "provider": m.provider, "source": m.source}
                for m in await engine.registered_models()
            ],
        }
        return data

    render.print_json(with_engine(in_effect))


@app.command("validate")
def validate() -> None:
    """Check the settings file; exit non-zero with the problems if it is invalid."""
    from geri.paths import Paths
    from geri.settings import load_settings

    file = Paths.from_env().settings_file
    load_settings(file)
    state = "valid" if file.exists() else "absent, so the defaults apply"
    render.line(f"{file}: {state}.")
