"""Checking and shaping a request before the engine serves it.

Validation of what a caller asked for, the chat request a provider receives, the trace id that
follows the request through the logs, and the cut of a cached answer into chunks for replay.
"""

from __future__ import annotations

import re
from contextvars import Token
from dataclasses import replace

from geri.errors import InputError
from geri.logs import TRACE_ID, new_trace_id
from geri.types import ChatRequest, Message, ModelInfo, Request

MAX_END_USER = 256  # characters of a caller's end-user id (OpenAI's `user`)


def chat_request(
    request: Request, messages: tuple[Message, ...], max_tokens: int | None = None
) -> ChatRequest:
    return ChatRequest(
        messages=messages,
        max_tokens=max_tokens or request.max_tokens,
        temperature=request.temperature,
        top_p=request.top_p,
        seed=request.seed,
        stop=request.stop,
        json_schema=request.json_schema,
    )


def replay_pieces(text: str) -> list[str]:
    """A cached answer cut into word-sized chunks, so it replays as a stream."""
    return re.findall(r"\s+|\S+\s*", text) or [text]


def traced(request: Request) -> tuple[Request, Token[str | None]]:
    """`request` with its trace id (the caller's, the one in context, or a new one), set in
    context for the logs of everything that serves it."""
    trace = request.trace_id or TRACE_ID.get() or new_trace_id()
    return replace(request, trace_id=trace), TRACE_ID.set(trace)


def takes_images(request: Request, info: ModelInfo) -> ModelInfo:
    if request.images and info.kind != "vision":
        raise InputError(
            f"Model {info.id!r} does not take images: choose a vision model (kind 'vision' "
            "in the model list), or set vision_models in the settings."
        )
    return info


def validate(request: Request) -> None:
    """Refuse a request the engine cannot serve. The messages name the request's fields, not
    any one front end's flags: they reach CLI users and gRPC and HTTP clients alike."""
    if not request.prompt.strip():
        raise InputError("The prompt is empty: give the question to ask.")
    if request.max_tokens < 1:
        raise InputError(f"max_tokens must be at least 1 (got {request.max_tokens}).")
    if not 0.0 <= request.temperature <= 2.0:
        raise InputError(f"temperature must be between 0 and 2 (got {request.temperature}).")
    if not 0.0 < request.top_p <= 1.0:
        raise InputError(f"top_p must be in (0, 1] (got {request.top_p}).")
    user = request.end_user
    if user is not None and not (0 < len(user) <= MAX_END_USER and user.isprintable()):
        raise InputError(
            f"user must be 1 to {MAX_END_USER} printable characters: an id for the person the "
            "calling program acts for."
        )
