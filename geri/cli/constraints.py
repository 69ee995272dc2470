"""Options shared by several commands: what limits the model (`ask`, `route`) and how an
answer is delivered (`ask`, `vision`)."""

from __future__ import annotations

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


class AnswerOptions:
    json_output = Annotated[
        bool, typer.Option("--json", help="Print one JSON object with the answer and its stats.")
    ]
    no_stream = Annotated[
        bool, typer.Option("--no-stream", help="Print the answer only once it is complete.")
    ]
    no_cache = Annotated[
        bool,
        typer.Option("--no-cache", help="Neither answer from the response cache nor store in it."),
    ]


def constraints_from(
    local_only: bool, max_cost: float | None, max_latency: float | None, min_context: int | None
) -> Constraints:
    from geri.cost import dollars_to_micros

    micros = None if max_cost is None else dollars_to_micros(max_cost)
    return Constraints(
        local_only=local_only,
        min_context=min_context,
        max_cost_micros=micros,
        max_latency_ms=max_latency,
    )
