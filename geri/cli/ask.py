"""`geri ask`: one prompt, answered on stdout as it is generated."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from geri.cli import render
from geri.cli.common import piped_bytes, piped_text
from geri.cli.constraints import AnswerOptions, ConstraintOptions, constraints_from
from geri.errors import InputError


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
    rag_format: Annotated[
        str | None,
        typer.Option(
            "--rag-format",
            help="The --rag file's format when it is not recognised: geri, langchain, "
            "llamaindex, haystack, chroma, openai or qdrant.",
            show_default=False,
        ),
    ] = None,
    schema: Annotated[
        Path | None,
        typer.Option(
            "--schema",
            help="Answer with JSON valid against this JSON Schema file (local models are "
            "constrained to it; an answer that does not follow it is an error).",
            show_default=False,
        ),
    ] = None,
    json_object: Annotated[
        bool, typer.Option("--json-object", help="Answer with a JSON object (any shape).")
    ] = False,
) -> None:
    """Ask a model and print its answer as it is written.

    Examples:

    \b
      geri ask "Why is the sky blue?"
      cat notes.txt | geri ask "Summarise the notes above in three bullets"
      geri ask --json --temperature 0 "2 + 2 =" | jq .text
      geri ask --rag context.json --explain "What is our refund policy?"
      geri ask --schema person.json "Invent a person: name and age"
    """
    from geri.types import Request

    text, rag_data = _prompt_and_documents(prompt, rag)
    request = Request(
        text,
        system=system,
        model=model,
        max_tokens=max_tokens,
        temperature=temperature,
        seed=seed,
        constraints=constraints_from(local_only, max_cost, max_latency, min_context),
        use_cache=not no_cache,
        json_schema=_schema(schema, json_object),
    )
    from geri.cli.answer import Documents, answer_here_or_in_daemon, exit_for

    where = Documents(rag, rag_data, rag_format) if rag is not None else None
    result = answer_here_or_in_daemon(
        request, where, streaming=not no_stream, quiet=json_output, in_process=no_daemon
    )
    if explain and result.context is not None:
        render.context_report(result.context)
    if json_output:
        render.print_json(result.as_dict())
    elif no_stream:
        render.write(result.text + "\n")
    exit_for(result)


def _schema(path: Path | None, json_object: bool) -> str | None:
    """The JSON Schema the answer must follow, as JSON text, if one was asked for."""
    from geri.inputs import read_file
    from geri.prompt.structured import JSON_OBJECT, MAX_SCHEMA_BYTES, parse_schema

    if path is not None and json_object:
        raise InputError("Give --schema or --json-object, not both.")
    if json_object:
        return JSON_OBJECT
    if path is None:
        return None
    raw = read_file(path, MAX_SCHEMA_BYTES, "The schema file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"The schema file {path} is not UTF-8 text.") from None
    return parse_schema(text, str(path))


def _prompt_and_documents(prompt: str | None, rag: str | None) -> tuple[str, bytes | None]:
    """The text to ask (piped text first, then the prompt) and, for `--rag -`, the documents
    read from stdin instead."""
    stdin, rag_data = None, None
    if rag == "-":
        if not prompt:
            raise InputError(
                "With --rag -, stdin holds the documents: give the prompt as an argument."
            )
        from geri.paths import Paths
        from geri.settings import load_settings

        limit = load_settings(Paths.from_env().settings_file).prompt.max_rag_bytes
        rag_data = piped_bytes(limit, "prompt.max_rag_bytes") or b""
    else:
        stdin = piped_text()
    text = "\n\n".join(part for part in (stdin, prompt) if part and part.strip())
    if not text:
        raise InputError('Nothing to ask: give a prompt, e.g. geri ask "Why is the sky blue?"')
    return text, rag_data
