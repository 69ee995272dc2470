"""`geri ask`: one prompt, answered on stdout as it is generated."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated

import typer

from geri.cli import render
from geri.cli.answer import Answerer, answer
from geri.cli.common import piped_stdin, with_engine
from geri.cli.constraints import AnswerOptions, ConstraintOptions, constraints_from
from geri.errors import InputError

if TYPE_CHECKING:
    from geri.settings import PromptSettings
    from geri.types import Result
    from geri.wire import DaemonAddress


def ask(
    prompt: Annotated[
        str | None,
        typer.Argument(
            help="The prompt. Text piped on stdin comes first, then the prompt after it.",
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Model id (see 'geri models list'), or 'auto' to pick by efficiency score. "
            "The default model if unset.",
        ),
    ] = None,
    system: Annotated[
        str | None, typer.Option("--system", "-s", help="System prompt.", show_default=False)
    ] = None,
    max_tokens: Annotated[
        int, typer.Option("--max-tokens", min=1, help="Most tokens to generate.")
    ] = 512,
    temperature: Annotated[
        float,
        typer.Option("--temperature", "-t", min=0.0, max=2.0, help="0 is deterministic."),
    ] = 0.7,
    seed: Annotated[
        int | None, typer.Option(help="Sampling seed, for repeatable answers above 0 degrees.")
    ] = None,
    rag: Annotated[
        str | None,
        typer.Option(
            "--rag",
            help="RAG documents to ground the answer in: a JSON or JSON Lines file, or - for "
            'stdin. Each document is {"id": ..., "content": ...}, optionally with score, '
            "source, title and metadata; see 'Grounding answers in documents' in the README.",
            show_default=False,
        ),
    ] = None,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain", help="Show on stderr which documents went in and the token budget."
        ),
    ] = False,
    local_only: ConstraintOptions.local_only = False,
    max_cost: ConstraintOptions.max_cost = None,
    max_latency: ConstraintOptions.max_latency = None,
    min_context: ConstraintOptions.min_context = None,
    json_output: AnswerOptions.json_output = False,
    no_stream: AnswerOptions.no_stream = False,
    no_cache: AnswerOptions.no_cache = False,
    no_daemon: Annotated[
        bool,
        typer.Option("--no-daemon", help="Answer in this process even if a daemon is running."),
    ] = False,
) -> None:
    """Ask a model and print its answer as it is written.

    [bold]Examples[/]

      geri ask "Why is the sky blue?"

      cat notes.txt | geri ask "Summarise the notes above in three bullets"

      geri ask --json --temperature 0 "2 + 2 =" | jq .text

      geri ask --rag context.json --explain "What is our refund policy?"
    """
    from geri.types import Request

    stdin = piped_stdin()
    rag_data = None
    if rag == "-":
        if not prompt:
            raise InputError(
                "With --rag -, stdin holds the documents: give the prompt as an argument."
            )
        rag_data, stdin = (stdin or "").encode("utf-8"), None
    text = "\n\n".join(part for part in (stdin, prompt) if part and part.strip())
    if not text:
        raise InputError('Nothing to ask: give a prompt, e.g. geri ask "Why is the sky blue?"')
    request = Request(
        text,
        system=system,
        model=model,
        max_tokens=max_tokens,
        temperature=temperature,
        seed=seed,
        constraints=constraints_from(local_only, max_cost, max_latency, min_context),
        use_cache=not no_cache,
    )
    streaming = not no_stream

    async def work(answerer: Answerer, limits: PromptSettings) -> Result:
        full = request
        if rag is not None:
            from dataclasses import replace

            from geri.prompt.rag import load_documents

            documents = load_documents(
                rag,
                data=rag_data,
                max_bytes=limits.max_rag_bytes,
                max_documents=limits.max_documents,
            )
            full = replace(request, documents=documents)
        return await answer(answerer, full, streaming, json_output)

    try:
        daemon = None if no_daemon else _daemon()
        if daemon is None:
            result = with_engine(lambda engine: work(engine, engine.settings.prompt))
        else:
            result = asyncio.run(_via(daemon, work))
    except KeyboardInterrupt:
        render.notice("\nInterrupted; the partial answer is in 'geri logs'.")
        sys.exit(130)
    if explain and result.context is not None:
        render.context_report(result.context)
    if json_output:
        render.print_json(result.as_dict())
    elif not streaming:
        render.write(result.text + "\n")


def _daemon() -> DaemonAddress | None:
    """The running daemon, if any (grpc is imported only when there is one)."""
    from geri.daemon.control import running
    from geri.paths import Paths

    return running(Paths.from_env())


async def _via(
    found: DaemonAddress, work: Callable[[Answerer, PromptSettings], Awaitable[Result]]
) -> Result:
    """Run `work` with the daemon standing in for the engine."""
    from geri.paths import Paths
    from geri.settings import load_settings
    from geri.wire.client import DaemonClient

    limits = load_settings(Paths.from_env().settings_file).prompt  # RAG files are read here
    async with DaemonClient(found) as client:
        return await work(client, limits)
