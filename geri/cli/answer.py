"""Answering on the terminal, shared by `geri ask` and `geri vision`: the answer streamed to
stdout as it comes (or printed once complete), notices on stderr where they happen."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Protocol

from geri.cli import render
from geri.types import Chunk, Request, Result


class Answerer(Protocol):
    """The engine, or a client of the daemon: both answer alike."""

    async def ask(self, request: Request) -> Result: ...

    def stream(self, request: Request) -> AsyncGenerator[Chunk, None]: ...


async def answer(engine: Answerer, request: Request, streaming: bool, quiet: bool) -> Result:
    """Answer `request`; notices (fallbacks, budget alerts) go to stderr as they come."""
    if not streaming:
        answer = await engine.ask(request)
        for notice in answer.notices:
            render.notice(notice.message)
        _from_cache(answer, quiet)
        return answer
    result = None
    wrote = False
    async with aclosing(engine.stream(request)) as chunks:
        async for chunk in chunks:
            if chunk.result is not None:
                result = chunk.result
            elif chunk.notice is not None:
                if wrote:
                    render.write("\n")
                    wrote = False
                render.notice(chunk.notice.message)
            elif not quiet:
                render.write(chunk.text)
                wrote = True
    if wrote:
        render.write("\n")
    if result is None:  # the stream always ends with its result; this is a broken invariant
        raise asyncio.InvalidStateError("stream ended without a result")
    if result.finish_reason == "length" and not quiet:
        render.notice(f"(stopped at --max-tokens {request.max_tokens})")
    _from_cache(result, quiet)
    return result


def _from_cache(result: Result, quiet: bool) -> None:
    """One quiet line on stderr when the answer is a stored one (`--json` says `cached`)."""
    if result.cached and not quiet:
        render.aside("(answered from the cache; --no-cache asks the model afresh)")
