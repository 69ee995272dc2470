"""Models served by another geri daemon on the LAN, reached over its gRPC Wolf service.

Discovery registers them as `peer/model` (see `geri.selection.discovery`); this provider sends
the prompt geri has already built (system and user message) to that daemon, which answers with
its own model, and reports its own usage. Token counts here are estimates: the peer fits the
prompt to its model's window itself. The peer's errors arrive as the geri errors it raised
(`geri.wire.convert`), so its rate limits and outages are retried and fallen back from here.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import TypeVar

from geri.prompt.tokens import chat_tokens, estimate_tokens
from geri.providers.base import ProviderContext
from geri.types import ChatRequest, Chunk, Completion, Message, ModelInfo, Request
from geri.wire import DaemonAddress
from geri.wire.client import DaemonClient

T = TypeVar("T")


class PeerProvider:
    def __init__(self, info: ModelInfo, context: ProviderContext) -> None:
        self._info = info
        peer = next((p for p in context.peers if p.name == info.metadata.get("peer")), None)
        token = None
        if peer is not None and peer.token_file is not None:
            token = peer.token_file.expanduser().read_text().strip()
        self._daemon = DaemonAddress(info.metadata["address"], token=token)

    def info(self) -> ModelInfo:
        return self._info

    def _request(self, chat: ChatRequest) -> Request:
        system = "\n\n".join(m.content for m in chat.messages if m.role == "system")
        user = [m.content for m in chat.messages if m.role == "user"]
        return Request(
            user[-1] if user else "",
            system=system or None,
            model=self._info.source,
            max_tokens=chat.max_tokens,
            temperature=chat.temperature,
            top_p=chat.top_p,
            seed=chat.seed,
            stop=chat.stop,
        )

    async def generate(self, request: ChatRequest) -> Completion:
        async with DaemonClient(self._daemon) as client:
            result = await client.ask(self._request(request))
        return Completion(result.text, result.usage, result.finish_reason)

    async def stream(self, request: ChatRequest) -> AsyncGenerator[Chunk, None]:
        async with DaemonClient(self._daemon) as client:
            async for chunk in client.stream(self._request(request)):
                if chunk.result is not None:
                    yield Chunk(usage=chunk.result.usage, finish_reason=chunk.result.finish_reason)
                else:
                    yield chunk

    async def probe(self) -> None:
        async with DaemonClient(self._daemon) as client:
            await client.list_models()

    async def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    async def count_messages(self, messages: Sequence[Message]) -> int:
        return chat_tokens(messages, estimate_tokens)

    async def aclose(self) -> None:
        """Each call opens and closes its own channel."""
