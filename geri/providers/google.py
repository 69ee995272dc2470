"""Google Gemini `generateContent` and `streamGenerateContent` (server-sent events).

The key travels in the `x-goog-api-key` header, never in the URL, so it cannot end up in
access logs or in an error message quoting the URL.
"""

from __future__ import annotations

import json
from typing import Any

from geri.errors import MalformedReply
from geri.inputs import json_loads
from geri.providers.base import reported_usage
from geri.providers.http import HttpProvider, error_for_status
from geri.types import ChatRequest, Chunk, Completion, FinishReason, Message, Usage

FINISH: dict[str, FinishReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "LANGUAGE": "content_filter",
    "MALFORMED_FUNCTION_CALL": "tool_calls",
    "UNEXPECTED_TOOL_CALL": "tool_calls",
    "FINISH_REASON_UNSPECIFIED": "stop",
    "OTHER": "stop",
}
ROLES = {"user": "user", "assistant": "model"}


def content_json(message: Message) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [
        {"inline_data": {"mime_type": i.mime_type, "data": i.base64()}} for i in message.images
    ]
    parts.append({"text": message.content})
    return {"role": ROLES[message.role], "parts": parts}


def build_payload(request: ChatRequest) -> dict[str, Any]:
    system = "\n\n".join(m.content for m in request.messages if m.role == "system")
    config: dict[str, Any] = {
        "maxOutputTokens": request.max_tokens,
        "temperature": request.temperature,
        "topP": request.top_p,
    }
    if request.stop:
        config["stopSequences"] = list(request.stop)
    if request.seed is not None:
        config["seed"] = request.seed
    if request.json_schema is not None:  # Gemini's native JSON mode, with the schema itself
        config["responseMimeType"] = "application/json"
        config["responseJsonSchema"] = json.loads(request.json_schema)
    payload: dict[str, Any] = {
        "contents": [content_json(m) for m in request.messages if m.role != "system"],
        "generationConfig": config,
    }
    if system:
        payload["systemInstruction"] = {"parts": [{"text": system}]}
    return payload


def parse_usage(data: Any) -> Usage | None:
    if not isinstance(data, dict):
        return None
    # thinking is billed as output: candidates + thoughts, the thoughts also told apart
    thoughts = data.get("thoughtsTokenCount")
    candidates = data.get("candidatesTokenCount")
    output = candidates
    if isinstance(thoughts, int) and not isinstance(thoughts, bool):
        output = (candidates if isinstance(candidates, int) else 0) + thoughts
    return reported_usage(data.get("promptTokenCount"), output, thoughts)


def _candidate(data: Any) -> tuple[str, FinishReason | None]:
    candidates = data.get("candidates") or []
    if not candidates:
        feedback = data.get("promptFeedback")
        if isinstance(feedback, dict) and (
            feedback.get("blockReason") or feedback.get("blockReasonMessage")
        ):  # the prompt itself was blocked: that is the whole answer
            return str(feedback.get("blockReasonMessage") or ""), "content_filter"
        return "", None
    first = candidates[0]
    parts = (first.get("content") or {}).get("parts") or []
    text = "".join(p.get("text", "") for p in parts if not p.get("thought"))
    reason = first.get("finishReason")
    return text, (FINISH.get(reason, "stop") if reason else None)


def parse_response(data: Any) -> Completion:
    try:
        text, finish = _candidate(data)
    except (AttributeError, TypeError) as exc:
        raise MalformedReply("a generateContent reply without candidates") from exc
    return Completion(text, parse_usage(data.get("usageMetadata")) or Usage(), finish or "stop")


def parse_event(data: str) -> Chunk | None:
    """One SSE `data:` payload (a partial GenerateContentResponse) as a chunk."""
    try:
        event = json_loads(data)
    except ValueError as exc:
        raise MalformedReply("Unreadable stream event: not JSON") from exc
    if isinstance(event, dict) and isinstance(event.get("error"), dict):
        error = event["error"]
        code = error.get("code")
        raise error_for_status(
            code if isinstance(code, int) else 500,
            str(error.get("message", error)),
            "Google Gemini",
            "google",
            event=str(error.get("status") or code or "error"),
        )
    try:
        text, finish = _candidate(event)
    except (AttributeError, TypeError) as exc:
        raise MalformedReply("a stream event without candidates") from exc
    return Chunk(text=text, usage=parse_usage(event.get("usageMetadata")), finish_reason=finish)


class GoogleProvider(HttpProvider):
    """A Gemini model."""

    def endpoint(self, stream: bool) -> str:
        model = self.info().source
        if stream:
            return f"{self.base_url}/v1beta/models/{model}:streamGenerateContent?alt=sse"
        return f"{self.base_url}/v1beta/models/{model}:generateContent"

    def models_endpoint(self) -> str:
        return f"{self.base_url}/v1beta/models"

    def headers(self, key: str | None) -> dict[str, str]:
        return {"x-goog-api-key": key or ""}

    def build_payload(self, request: ChatRequest, stream: bool) -> dict[str, Any]:
        return build_payload(request)

    def parse_response(self, data: Any) -> Completion:
        return parse_response(data)

    def parse_event(self, data: str) -> Chunk | None:
        return parse_event(data)
