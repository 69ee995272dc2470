"""The provider protocol: the one interface every model backend implements.

A provider is a small object bound to one model. The engine asks it for `info()` (capabilities
are data the selector reads, never a name to branch on), `generate` / `stream` a completion,
`count_tokens`, `probe` its health, and `aclose` when done. Providers raise only `geri.errors`
types: whatever the backend throws is mapped once, inside the provider.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from geri.errors import MalformedReply
from geri.keys import KeyStore
from geri.settings import BitNet, Network, Peer, Performance, ProviderOptions, Settings
from geri.types import ChatRequest, Chunk, Completion, Message, ModelInfo, Usage

if TYPE_CHECKING:
    import aiohttp

MAX_USAGE = 10**9  # tokens: beyond any real call


def reported_usage(
    input_tokens: object, output_tokens: object, reasoning_tokens: object = None
) -> Usage:
    """Token counts as an upstream reported them (None: not reported).

    A count must be a whole number from 0 to `MAX_USAGE`. A number outside that (negative,
    fractional, astronomically large, infinite) is kept clamped, with an `anomaly` that makes
    the engine charge the call's reservation; anything that is not a number at all is a reply
    of the wrong shape.

    >>> reported_usage(12, None)
    Usage(input_tokens=12, output_tokens=0, anomaly=None, reasoning_tokens=0, estimated=False)
    >>> reported_usage(-5, 1e30).anomaly
    'input tokens -5; output tokens 1e+30'

    """
    counts, problems = [], []
    figures = (("input", input_tokens), ("output", output_tokens), ("reasoning", reasoning_tokens))
    for name, value in figures:
        if value is None:
            counts.append(0)
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise MalformedReply(f"{name} tokens {value!r:.40}")
        elif value == value and 0 <= value <= MAX_USAGE and value == int(value):
            counts.append(int(value))
        else:
            problems.append(f"{name} tokens {value!r:.40}")
            counts.append(0 if value != value else int(min(max(value, 0), MAX_USAGE)))
    return Usage(counts[0], counts[1], "; ".join(problems) or None, min(counts[2], counts[1]))


@runtime_checkable
class Provider(Protocol):
    """A model backend. Implementations must be safe to call from several tasks at once."""

    def info(self) -> ModelInfo:
        """What this model is and can do."""
        ...

    async def generate(self, request: ChatRequest) -> Completion:
        """The complete answer to `request`."""
        ...

    def stream(self, request: ChatRequest) -> AsyncGenerator[Chunk, None]:
        """The answer as it is produced; the last chunk carries usage and finish reason."""
        ...

    async def count_tokens(self, text: str) -> int:
        """Tokens `text` takes for this model."""
        ...

    async def count_messages(self, messages: Sequence[Message]) -> int:
        """Tokens the whole prompt of `messages` takes, chat formatting included."""
        ...

    async def probe(self) -> None:
        """The cheapest honest check that the model can be reached now (for a local one its
        file, nothing loaded); raises a `geri.errors` type when it cannot."""
        ...

    async def aclose(self) -> None:
        """Release the model, connections and threads. Safe to call twice."""
        ...


class KeyedProvider(Provider, Protocol):
    """A provider that calls an API with a key (`geri.specs` says which do: `takes_key`)."""

    async def verify_key(self, key: str) -> None:
        """Raise unless the provider accepts `key`; nothing is stored."""
        ...


@dataclass(frozen=True, slots=True)
class ProviderContext:
    """What the engine hands a provider when it builds one: the settings sections providers
    read (not the whole file), the key store, and `http`, which returns the engine's shared
    HTTP session (created on first use, so local-only runs never import aiohttp).

    `options` is the provider's own entry under `providers` in the settings, if it has one.
    """

    keys: KeyStore
    http: Callable[[], aiohttp.ClientSession]
    network: Network = field(default_factory=Network)
    performance: Performance = field(default_factory=Performance)
    bitnet: BitNet = field(default_factory=BitNet)
    peers: tuple[Peer, ...] = ()
    options: ProviderOptions | None = None

    @classmethod
    def of(
        cls,
        settings: Settings,
        provider: str,
        keys: KeyStore,
        http: Callable[[], aiohttp.ClientSession],
    ) -> ProviderContext:
        """The context for a provider named `provider` under `settings`."""
        return cls(
            keys,
            http,
            network=settings.network,
            performance=settings.performance,
            bitnet=settings.bitnet,
            peers=settings.peers,
            options=settings.providers.get(provider),
        )
