"""The options that limit which model may answer, shared by `ask` and `route`."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import typer

from geri.types import Constraints


class ConstraintOptions:
    local_only = Annotated[
        bool, typer.Option("--local-only", help="Only models running on this machine.")
    ]
    max_cost = Annotated[
        float | None,
        typer.Option("--max-cost", min=0.0, help="Most US dollars the request may cost."),
    ]
    max_latency = Annotated[
        float | None,
        typer.Option("--max-latency", min=1.0, help="Skip models slower than this (ms, median)."),
    ]
    min_context = Annotated[
        int | None, typer.Option("--min-context", min=1, help="Smallest context window allowed.")
    ]


def constraints_from(
    local_only: bool, max_cost: float | None, max_latency: float | None, min_context: int | None
) -> Constraints:
    micros = None if max_cost is None else int(Decimal(str(max_cost)) * 1_000_000)
    return Constraints(
        local_only=local_only,
        min_context=min_context,
        max_cost_micros=micros,
        max_latency_ms=max_latency,
    )
