"""Answering on the terminal, shared by `geri ask` and `geri vision`: the answer streamed to
stdout as it comes (or printed once complete), notices on stderr where they happen; by the
engine in this process, or by the user's running daemon, which keeps models loaded."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from geri.cli import render, stopping
from geri.types import REFUSED, Chunk, Request, Result

if TYPE_CHECKING:
    from geri.settings import PromptSettings
    from geri.types import Document


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
    if result.finish_reason in REFUSED:
        render.notice(REFUSAL_LINES[result.finish_reason].format(model=result.model))
    _from_cache(result, quiet)
    return result


REFUSAL_LINES = {
    "refusal": "{model} declined to answer (finish reason 'refusal'); exit code 3.",
    "content_filter": "{model}'s provider blocked the prompt or the answer with its safety "
    "filter (finish reason 'content_filter'); exit code 3.",
}
REFUSED_EXIT = 3  # the command ran, but the model refused or the provider blocked the answer


def exit_for(result: Result) -> None:
    """End the command with exit code 3 when the answer was a refusal or was blocked."""
    if result.finish_reason in REFUSED:
        raise SystemExit(REFUSED_EXIT)


def _from_cache(result: Result, quiet: bool) -> None:
    """One quiet line on stderr when the answer is a stored one (`--json` says `cached`)."""
    if result.cached and not quiet:
        render.aside("(answered from the cache; --no-cache asks the model afresh)")


@dataclass(frozen=True, slots=True)
class Documents:
    """RAG documents to load: a path (or '-' with the bytes already read from stdin)."""

    source: str
    data: bytes | None = None
    form: str | None = None  # a retriever's format (--rag-format); recognised when None

    def load(self, limits: PromptSettings) -> tuple[Document, ...]:
        from geri.prompt.rag import load_documents

        return load_documents(
            self.source,
            data=self.data,
            max_bytes=limits.max_rag_bytes,
            max_documents=limits.max_documents,
            form=self.form,
        )


def answer_here_or_in_daemon(
    request: Request,
    documents: Documents | None,
    *,
    streaming: bool,
    quiet: bool,
    in_process: bool,
) -> Result:
    """Answer `request` on the terminal: by the running daemon if there is one (unless
    `in_process`), else by an engine in this process. RAG files are read here either way."""
    from geri.daemon.control import running
    from geri.paths import Paths

    async def work(answerer: Answerer, limits: PromptSettings) -> Result:
        full = request
        if documents is not None:
            full = replace(request, documents=documents.load(limits))
        return await answer(answerer, full, streaming, quiet)

    paths = Paths.from_env()
    daemon = None if in_process else running(paths)
    try:
        if daemon is None:
            from geri.cli.common import with_engine

            return with_engine(lambda engine: work(engine, engine.settings.prompt))

        async def via_daemon() -> Result:
            from geri.settings import load_settings
            from geri.wire.client import DaemonClient

            async with DaemonClient(daemon) as client:
                return await work(client, load_settings(paths.settings_file).prompt)

        return asyncio.run(via_daemon())
    except KeyboardInterrupt:
        render.notice(f"\n{stopping.how()}; the call is logged as cancelled (see 'geri logs').")
        sys.exit(stopping.exit_code())
