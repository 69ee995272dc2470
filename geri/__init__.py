"""geri: a local LLM service with one engine behind a CLI and a gRPC daemon.

The async API is `Engine` (build one with `open_engine()`); `ask` is the blocking convenience
for scripts:

    >>> import geri                                              # doctest: +SKIP
    >>> geri.ask("Name a primary colour.", max_tokens=8).text    # doctest: +SKIP
    'Red.'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from geri._version import __version__

if TYPE_CHECKING:
    from geri.engine import Engine, open_engine
    from geri.types import (
        Chunk,
        Document,
        Image,
        Message,
        ModelInfo,
        Notice,
        Request,
        Result,
        Usage,
    )


def ask(prompt: str, **options: Any) -> Result:
    """Answer `prompt` with the user's engine, blocking; `options` are `Request` fields."""
    import asyncio

    from geri.engine import open_engine
    from geri.types import Request

    async def run() -> Result:
        async with open_engine() as engine:
            return await engine.ask(Request(prompt, **options))

    return asyncio.run(run())


def __getattr__(name: str) -> Any:
    # the public names resolve lazily, so `import geri` stays as light as the CLI needs
    if name in {"Engine", "open_engine"}:
        from geri import engine

        return getattr(engine, name)
    if name in {
        "Chunk",
        "Document",
        "Image",
        "Message",
        "ModelInfo",
        "Notice",
        "Request",
        "Result",
        "Usage",
    }:
        from geri import types

        return getattr(types, name)
    raise AttributeError(f"module 'geri' has no attribute {name!r}")


__all__ = [
    "Chunk",
    "Document",
    "Engine",
    "Image",
    "Message",
    "ModelInfo",
    "Notice",
    "Request",
    "Result",
    "Usage",
    "__version__",
    "ask",
    "open_engine",
]
