"""`geri route`: which model would answer, and why: every factor of every candidate."""

from __future__ import annotations

from typing import Annotated

import typer

from geri.cli import render
from geri.cli.common import with_engine
from geri.cli.constraints import ConstraintOptions, constraints_from


def route(
    prompt: Annotated[str, typer.Argument(help="The prompt to route (it is not sent).")],
    explain: Annotated[
        bool, typer.Option("--explain", help="Show every candidate's factors and the weights.")
    ] = False,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1)] = 512,
    local_only: ConstraintOptions.local_only = False,
    max_cost: ConstraintOptions.max_cost = None,
    max_latency: ConstraintOptions.max_latency = None,
    min_context: ConstraintOptions.min_context = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Rank the models for a prompt by efficiency score, without sending it.

    The score weighs size (20 %), hardware fit (15 %), reliability (20 %), latency (25 %),
    distance (10 %) and cost (10 %); the weights are 'routing.weights' in the settings.
    """
    from geri.selection.selector import require
    from geri.types import Request

    request = Request(
        prompt,
        max_tokens=max_tokens,
        constraints=constraints_from(local_only, max_cost, max_latency, min_context),
    )

    async def work(engine):  # type: ignore[no-untyped-def]
        ranking = await engine.router.route(request)
        return ranking, [c.model.id for c in engine.balancer.leaders(ranking)]

    ranking, leaders = with_engine(work)
    if json_output:
        render.print_json({**ranking.as_dict(), "sharing_the_load": leaders})
        return
    if explain:
        render.ranking(ranking, leaders)
    require(ranking)
    render.line(ranking.candidates[0].model.id)
