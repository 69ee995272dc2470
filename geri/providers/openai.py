"""OpenAI chat completions, and every server that speaks the same API.

That covers OpenAI itself and, through `base_url`, llama.cpp's server, vLLM, Ollama and LM
Studio. Translation is pure (`build_payload`, `parse_response`, `parse_event`) and tested on
literal JSON; streaming asks for usage in the final event (`stream_options.include_usage`).
"""

from __future__ import annotations

import json
from typing import Any

from geri.errors import MalformedReply
from geri.providers.base import reported_usage
from geri.providers.http import HttpProvider, error_for_status
from geri.types import ChatRequest, Chunk, Completion, FinishReason, Message, Usage

FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
}


def message_json(message: Message) -> dict[str, Any]:
    if not message.images:
        return {"role": message.role, "content": message.content}
    parts: list[dict[str, Any]] = [{"type": "text", "text": message.content}]
    parts += [{"type": "image_url", "image_url": {"url": i.data_url()}} for i in message.images]
    return {"role": message.role, "content": parts}


def build_payload(model: str, request: ChatRequest, stream: bool) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "model": model,
        "messages": [message_json(m) for m in request.messages],
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "stream": stream,
    }
    if request.stop:
        payload["stop"] = list(request.stop)
    if request.seed is not None:
        payload["seed"] = request.seed
    if stream:
        payload["stream_options"] = {"include_usage": True}
    if request.json_schema is not None:
        schema = json.loads(request.json_schema)
        payload["response_format"] = (
            {"type": "json_object"}
            if schema == {"type": "object"}
            else {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
        )
    return payload


def parse_usage(data: Any) -> Usage | None:
    """`usage`; completion tokens include the reasoning ones, which are also told apart."""
    if not isinstance(data, dict):
        return None
    details = data.get("completion_tokens_details")
    reasoning = details.get("reasoning_tokens") if isinstance(details, dict) else None
    return reported_usage(data.get("prompt_tokens"), data.get("completion_tokens"), reasoning)


def parse_response(data: Any) -> Completion:
    try:
        choice = data["choices"][0]
        message = choice["message"]
        refusal = message.get("refusal")
        text = message.get("content") or refusal or ""
        finish = FINISH.get(choice.get("finish_reason") or "stop", "stop")
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise MalformedReply("a chat completion without choices[0].message") from exc
    if refusal:  # the model declined; its words are the answer
        finish = "refusal"
    return Completion(text, parse_usage(data.get("usage")) or Usage(), finish)


def parse_event(data: str) -> Chunk | None:
    """One SSE `data:` payload as a chunk; `[DONE]` and keep-alives give None."""
    if data == "[DONE]" or not data:
        return None
    try:
        event = json.loads(data)
    except ValueError as exc:
        raise MalformedReply("Unreadable stream event: not JSON") from exc
    if event.get("error"):
        error = event["error"]
        message = str(error.get("message", error) if isinstance(error, dict) else error)
        code = error.get("code") if isinstance(error, dict) else None
        kind = error.get("type") if isinstance(error, dict) else None
        raise error_for_status(
            code if isinstance(code, int) else 500,
            message,
            "The server",
            "openai",
            event=str(kind or code or "error"),
        )
    usage = parse_usage(event.get("usage"))
    choices = event.get("choices") or []
    if not choices:
        return Chunk(usage=usage) if usage else None
    choice = choices[0]
    reason = choice.get("finish_reason")
    delta = choice.get("delta") or {}
    refusal = delta.get("refusal")
    return Chunk(
        text=delta.get("content") or refusal or "",
        usage=usage,
        finish_reason="refusal" if refusal else (FINISH.get(reason, "stop") if reason else None),
    )


class OpenAIProvider(HttpProvider):
    """A chat model behind an OpenAI-compatible `/chat/completions` endpoint."""

    def endpoint(self, stream: bool) -> str:
        return f"{self.base_url}/chat/completions"

    def models_endpoint(self) -> str:
        return f"{self.base_url}/models"

    def headers(self, key: str | None) -> dict[str, str]:
        return {"authorization": f"Bearer {key}"} if key else {}

    def build_payload(self, request: ChatRequest, stream: bool) -> dict[str, Any]:
        return build_payload(self.info().source, request, stream)

    def parse_response(self, data: Any) -> Completion:
        return parse_response(data)

    def parse_event(self, data: str) -> Chunk | None:
        return parse_event(data)
