"""`geri budget`: spending limits on cloud calls, and where spending stands."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated

import typer

from geri.cli import render
from geri.cli.common import with_engine
from geri.errors import InputError

app = typer.Typer(
    help="Limit what cloud calls may spend per day, week or month.\n\n"
    "When a limit is reached, requests are answered by a local model until it resets.",
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,
)

PERIOD_HELP = "daily, weekly or monthly (calendar periods in budgets.timezone)."
Provider = Annotated[
    str | None,
    typer.Option(
        "--provider",
        "-p",
        help="Limit one provider (e.g. openai); all cloud providers together if unset.",
        show_default=False,
    ),
]


@app.command("set")
def set_(
    period: Annotated[str, typer.Argument(help=PERIOD_HELP, show_default=False)],
    amount: Annotated[str, typer.Argument(help="Limit in US dollars, e.g. 5 or 12.50.")],
    provider: Provider = None,
) -> None:
    """Set a spending limit.

    Examples:

    \b
      geri budget set monthly 20
      geri budget set daily 1.50 --provider openai
    """
    from geri.cost import dollars, dollars_to_micros
    from geri.cost.ledger import scope_label
    from geri.store.base import ALL_CLOUD

    micros = dollars_to_micros(_amount(amount))
    scope = provider or ALL_CLOUD
    limit = with_engine(lambda engine: engine.set_budget(scope, period, micros))
    render.line(
        f"{scope_label(limit.scope)} budget, {limit.period}: {dollars(limit.limit_micros)}."
    )


@app.command()
def remove(
    period: Annotated[str, typer.Argument(help=PERIOD_HELP, show_default=False)],
    provider: Provider = None,
) -> None:
    """Remove a spending limit."""
    from geri.store.base import ALL_CLOUD

    scope = provider or ALL_CLOUD
    removed = with_engine(lambda engine: engine.remove_budget(scope, period))
    if not removed:
        raise InputError(f"There is no {period} limit for {provider or 'all cloud providers'}.")
    render.line("Removed.")


@app.command()
def status(
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show each limit: spent, reserved by calls in flight, remaining, and the next reset."""
    from geri.cost import dollars
    from geri.cost.ledger import scope_label

    states = with_engine(lambda engine: engine.budgets())
    if json_output:
        render.print_json([s.as_dict() for s in states])
        return
    if not states:
        render.line("No budget is set. Try: geri budget set monthly 20")
        return
    render.table(
        None,
        ["scope", "period", "limit", "spent", "reserved", "remaining", "used", "resets"],
        [
            [
                scope_label(s.limit.scope),
                f"{s.limit.period} ({s.period_label})",
                dollars(s.limit.limit_micros),
                dollars(s.spend.settled_micros),
                dollars(s.spend.reserved_micros),
                dollars(s.remaining_micros),
                f"{s.share:.0%}",
                render.when(s.resets_at),
            ]
            for s in states
        ],
        wrap={"scope", "period", "resets"},
    )


def _amount(text: str) -> Decimal:
    try:
        amount = Decimal(text.strip().lstrip("$"))
    except InvalidOperation:
        raise InputError(f"Not an amount of dollars: {text!r} (e.g. 5 or 12.50).") from None
    if not amount.is_finite() or amount < 0:
        raise InputError(f"A budget must be zero or more dollars (got {text!r}).")
    return amount
