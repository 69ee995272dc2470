"""OpenAI chat completions, and every server that speaks the same API.

That covers OpenAI itself and, through `base_url`, llama.cpp's server, vLLM, Ollama and LM
Studio. Translation is pure (`build_payload`, `parse_response`, `parse_event`) and tested on
recorded and literal JSON; streaming asks for usage in the final event
(`stream_options.include_usage`).

A server other than OpenAI's often runs a tokenizer geri does not have, and geri's estimate for
one it does not know errs high. So where the server offers its own count, geri uses it: the first
count tries llama.cpp's `POST /tokenize {"content"}`, vLLM's `POST /tokenize {"model", "prompt"}`
and llama-cpp-python's `POST /extras/tokenize/count {"input"}` (paths from the server's root,
`base_url` without `/v1`), and remembers which one answered, or that none did. A server that
takes more than `COUNT_TIMEOUT` seconds to count, or fails, is not asked again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from geri.errors import GeriError, MalformedReply
from geri.inputs import json_loads
from geri.prompt.tokens import chat_tokens
from geri.providers.base import reported_usage
from geri.providers.http import TRANSPORT_ERRORS, HttpProvider, error_for_status, timeouts
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
        event = json_loads(data)
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


# (path from the server's root, request body) for a server's own token count; {text} and
# {model} are filled in
TOKENIZERS: tuple[tuple[str, dict[str, str]], ...] = (
    ("/tokenize", {"content": "{text}"}),  # llama.cpp's llama-server
    ("/tokenize", {"model": "{model}", "prompt": "{text}"}),  # vLLM
    ("/extras/tokenize/count", {"input": "{text}", "model": "{model}"}),  # llama_cpp.server
)
# tokens a chat template adds per message beyond its text (ChatML and Llama 3 add 5; high on
# purpose), and once for the assistant's turn
TEMPLATE_TOKENS_PER_MESSAGE, TEMPLATE_TOKENS_PER_CHAT = 8, 8
COUNT_TIMEOUT = 5.0  # seconds a server may take to count: a prompt is not held up longer
UNKNOWN, NONE = -2, -1  # which TOKENIZERS entry answers: not yet tried, or none of them


def token_count(data: Any) -> int | None:
    """The count in a tokenize reply: `count`, or the length of `tokens`; None if neither.

    >>> token_count({"tokens": [1, 2, 3]}), token_count({"count": 7}), token_count({"n": 1})
    (3, 7, None)
    """
    if not isinstance(data, dict):
        return None
    count = data.get("count")
    if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
        return count
    tokens = data.get("tokens")
    return len(tokens) if isinstance(tokens, list) else None


class OpenAIProvider(HttpProvider):
    """A chat model behind an OpenAI-compatible `/chat/completions` endpoint."""

    _tokenizer = UNKNOWN

    async def count_tokens(self, text: str) -> int:
        """The server's own count where it offers one, else tiktoken or a high estimate."""
        if self._provider != "openai":
            counted = await self._server_count(text)
            if counted is not None:
                return counted
        return await super().count_tokens(text)

    async def count_messages(self, messages: Sequence[Message]) -> int:
        if self._provider == "openai" or self._tokenizer == NONE:
            return await super().count_messages(messages)
        counts: dict[str, int] = {}
        for message in messages:
            counted = await self._server_count(message.content)
            if counted is None:
                return await super().count_messages(messages)
            counts[message.content] = counted
        return chat_tokens(
            messages,
            counts.__getitem__,
            per_message=TEMPLATE_TOKENS_PER_MESSAGE,
            per_chat=TEMPLATE_TOKENS_PER_CHAT,
        )

    async def _server_count(self, text: str) -> int | None:
        """`text`'s tokens as the server counts them; None if it offers no count or failed."""
        if self._tokenizer == NONE:
            return None
        root = self.base_url.removesuffix("/v1")
        tried = range(len(TOKENIZERS)) if self._tokenizer == UNKNOWN else [self._tokenizer]
        for index in tried:
            path, template = TOKENIZERS[index]
            body = {k: v.format(text=text, model=self.info().source) for k, v in template.items()}
            try:
                counted = await self._ask_count(root + path, body)
            except (*TRANSPORT_ERRORS, GeriError):
                self._tokenizer = NONE  # slow, broken or gone: never hold a prompt up again
                return None
            if counted is not None:
                self._tokenizer = index
                return counted
        if self._tokenizer == UNKNOWN:
            self._tokenizer = NONE
        return None

    async def _ask_count(self, url: str, body: dict[str, str]) -> int | None:
        """The count `url` gives for `body`; None if it does not count (an error status, a
        reply without a count)."""
        limit = timeouts(min(COUNT_TIMEOUT, self._read_seconds), self._connect_seconds)
        async with self._context.http().post(
            url,
            json=body,
            headers=self.headers(self._key()),
            timeout=limit,
            allow_redirects=False,  # as every call: see geri.providers.http
        ) as response:
            if response.status >= 300:
                return None
            reply = await self._body(response)
        try:
            return token_count(json_loads(reply))
        except ValueError:
            return None

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
