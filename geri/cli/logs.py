"""`geri logs`: the request log, newest first."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from geri.cli import render
from geri.cli.common import with_engine


def logs(
    count: Annotated[int, typer.Option("-n", "--count", min=1, help="How many requests.")] = 20,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON, full texts.")] = False,
) -> None:
    """Show recent requests: when, which model, tokens, latency, and what was asked."""
    from dataclasses import asdict

    records = with_engine(lambda engine: engine.recent_requests(count))
    if json_output:
        render.print_json(
            [
                {
                    **asdict(r),
                    "prompt": json.loads(r.prompt),
                    "created_at": r.created_at.isoformat(),
                }
                for r in records
            ]
        )
        return
    if not records:
        render.line('No requests yet. Try: geri ask "Hello"')
        return
    for r in records:
        cached = ", cached" if r.cached else ""
        cached += f", for {r.end_user}" if r.end_user else ""
        render.line(
            f"{render.when(r.created_at)}  {r.model}  {r.status}  "
            f"{r.input_tokens}→{r.output_tokens} tokens  {r.latency_ms:.0f} ms{cached}"
        )
        asked, said = _last_user_message(r.prompt), r.error or r.response
        render.line("  " + render.clip(f"{asked} → {said}", render.width() - 2))


def _last_user_message(prompt_json: str) -> str:
    messages = json.loads(prompt_json)
    users = [m["content"] for m in messages if m.get("role") == "user"]
    return users[-1] if users else ""
