"""Anthropic's Messages API.

The system prompt travels apart from the messages; usage arrives in two pieces (input tokens
in `message_start`, output tokens in `message_delta`); and an `error` event can arrive after
the HTTP 200, mid-stream, which is mapped to the same error types as an HTTP status.
"""

from __future__ import annotations

from typing import Any

from geri.errors import MalformedReply, ProviderError
from geri.inputs import json_loads
from geri.providers.base import reported_usage
from geri.providers.http import HttpProvider, error_for_status
from geri.types import ChatRequest, Chunk, Completion, FinishReason, Message, Usage

API_VERSION = "2023-06-01"
FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "pause_turn": "length",  # the turn was paused unfinished
    "refusal": "refusal",
    "tool_use": "tool_calls",
}
# error types Anthropic sends in bodies and stream events -> the HTTP status they stand for
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


def message_json(message: Message) -> dict[str, Any]:
    if not message.images:
        return {"role": message.role, "content": message.content}
    blocks: list[dict[str, Any]] = [
        {
            "type": "image",
            "source": {"type": "base64", "media_type": i.mime_type, "data": i.base64()},
        }
        for i in message.images
    ]
    blocks.append({"type": "text", "text": message.content})
    return {"role": message.role, "content": blocks}


def build_payload(model: str, request: ChatRequest, stream: bool) -> dict[str, Any]:
    system = "\n\n".join(m.content for m in request.messages if m.role == "system")
    if request.json_schema is not None:  # the Messages API has no JSON mode: it is asked
        system = (
            f"{system}\n\n" if system else ""
        ) + f"Answer with JSON only, valid against this JSON Schema: {request.json_schema}"
    payload: dict[str, Any] = {
        "model": model,
        "max_tokens": request.max_tokens,
        "messages": [message_json(m) for m in request.messages if m.role != "system"],
        "temperature": request.temperature,
        "stream": stream,
    }
    if system:
        payload["system"] = system
    if request.top_p < 1.0:
        payload["top_p"] = request.top_p
    if request.stop:
        payload["stop_sequences"] = list(request.stop)
    return payload


def parse_usage(data: Any) -> Usage | None:
    if not isinstance(data, dict):
        return None
    return reported_usage(data.get("input_tokens"), data.get("output_tokens"))


def parse_response(data: Any) -> Completion:
    try:
        text = "".join(b["text"] for b in data["content"] if b.get("type") == "text")
        finish = FINISH.get(data.get("stop_reason") or "end_turn", "stop")
    except (KeyError, TypeError) as exc:
        raise MalformedReply("a Messages API reply without content blocks") from exc
    return Completion(text, parse_usage(data.get("usage")) or Usage(), finish)


def event_error(error: Any) -> ProviderError:
    kind = str(error.get("type", "api_error")) if isinstance(error, dict) else "api_error"
    message = str(error.get("message", kind)) if isinstance(error, dict) else str(error)
    return error_for_status(ERROR_STATUS.get(kind, 500), message, "Anthropic", "anthropic")


def stream_error(error: Any) -> ProviderError:
    """An `error` event mid-stream (after a 200): labelled as the event it was."""
    kind = str(error.get("type", "api_error")) if isinstance(error, dict) else "api_error"
    message = str(error.get("message", kind)) if isinstance(error, dict) else str(error)
    status = ERROR_STATUS.get(kind, 500)
    return error_for_status(status, message, "Anthropic", "anthropic", event=kind)


def parse_event(data: str) -> Chunk | None:
    """One SSE `data:` payload as a chunk; raises on an `error` event."""
    try:
        event = json_loads(data)
    except ValueError as exc:
        raise MalformedReply("Unreadable stream event: not JSON") from exc
    kind = event.get("type")
    if kind == "content_block_delta":
        delta = event.get("delta") or {}
        return Chunk(text=delta.get("text", "")) if delta.get("type") == "text_delta" else None
    if kind == "message_start":
        usage = parse_usage((event.get("message") or {}).get("usage"))
        return Chunk(usage=usage) if usage else None
    if kind == "message_delta":
        reason = (event.get("delta") or {}).get("stop_reason")
        return Chunk(
            usage=parse_usage(event.get("usage")),
            finish_reason=FINISH.get(reason, "stop") if reason else None,
        )
    if kind == "error":
        raise stream_error(event.get("error"))
    return None  # ping, content_block_start/stop, message_stop


class AnthropicProvider(HttpProvider):
    """A Claude model."""

    def endpoint(self, stream: bool) -> str:
        return f"{self.base_url}/v1/messages"

    def models_endpoint(self) -> str:
        return f"{self.base_url}/v1/models"

    def headers(self, key: str | None) -> dict[str, str]:
        return {"x-api-key": key or "", "anthropic-version": API_VERSION}

    def build_payload(self, request: ChatRequest, stream: bool) -> dict[str, Any]:
        return build_payload(self.info().source, request, stream)

    def parse_response(self, data: Any) -> Completion:
        return parse_response(data)

    def parse_event(self, data: str) -> Chunk | None:
        return parse_event(data)
