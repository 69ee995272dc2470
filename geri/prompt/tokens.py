"""Counting tokens: exactly where geri can, with an estimate that errs high where it cannot.

Local models count with their own tokenizer (the provider does it). Cloud models count with
tiktoken when the model's encoding is known and already on this machine (tiktoken would
otherwise download it, which a request must never wait on); everything else gets an estimate
built to err high: used to check that a prompt fits, guessing low is the costly mistake.

The estimate counts character classes: Latin letters at 2.5 per token, every digit, ASCII symbol
and run of whitespace as a token, and other characters by their UTF-8 length (accented letters
1, CJK 2, emoji 3). Calibrated against the cl100k, o200k and Claude tokenizers on English, code,
German, Japanese, numbers, JSON, emoji and URLs (tests/prompt/test_tokens.py), it is never
below any of them and over-counts English by about half. `TokenCounter` caches counts per text,
so fitting many documents into a window tokenizes each of them once.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import re
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from geri.types import Message

LETTERS_PER_TOKEN = 2.5
_LETTERS = re.compile(r"[A-Za-z]")
_ONE_EACH = re.compile(r"[0-9!-/:-@\[-`{-~]|\s{2,}|\n|[\u0080-\u07ff]")
_TWO_EACH = re.compile("[\u0800-\uffff]")
_THREE_EACH = re.compile("[\U00010000-\U0010ffff]")
# OpenAI's documented chat overhead: tokens per message, and for priming the reply
MESSAGE_OVERHEAD, REPLY_PRIMING = 4, 3
# a high estimate for one image in a vision prompt (a detailed 2048 px image costs ~1100)
IMAGE_TOKENS = 1500
TIKTOKEN_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"


def estimate_tokens(text: str) -> int:
    """A high estimate of the tokens `text` takes.

    >>> estimate_tokens("Hello, world!")
    6
    """
    letters = math.ceil(len(_LETTERS.findall(text)) / LETTERS_PER_TOKEN)
    return (
        letters
        + len(_ONE_EACH.findall(text))
        + 2 * len(_TWO_EACH.findall(text))
        + 3 * len(_THREE_EACH.findall(text))
    )


def chat_tokens(
    messages: Sequence[Message],
    count: Callable[[str], int],
    per_message: int = MESSAGE_OVERHEAD,
    per_chat: int = REPLY_PRIMING,
) -> int:
    """Tokens of a chat: `count(text)` per message plus the chat format's overhead (OpenAI's
    unless told)."""
    return per_chat + sum(
        count(m.content) + per_message + IMAGE_TOKENS * len(m.images) for m in messages
    )


@functools.cache
def local_tiktoken(name: str) -> Any:
    """The tiktoken encoding `name` if tiktoken is installed and has it cached; else None."""
    try:
        import tiktoken
    except ImportError:
        return None
    key = hashlib.sha1(TIKTOKEN_URL.format(name=name).encode()).hexdigest()
    directories = [
        os.environ.get("TIKTOKEN_CACHE_DIR"),
        os.environ.get("DATA_GYM_CACHE_DIR"),
        str(Path(tempfile.gettempdir()) / "data-gym-cache"),
    ]
    if not any(d and (Path(d) / key).is_file() for d in directories):
        return None
    try:
        return tiktoken.get_encoding(name)
    except Exception:  # a corrupt cache file: fall back to the estimate, never to the network
        return None


class Tokenizer(Protocol):
    """What counts a model's tokens: its provider."""

    async def count_tokens(self, text: str) -> int: ...

    async def count_messages(self, messages: Sequence[Message]) -> int: ...


class TokenCounter:
    """Counts for one model through its provider, remembered per text (least recently used)."""

    def __init__(self, provider: Tokenizer, capacity: int = 4096) -> None:
        self._provider = provider
        self._capacity = capacity
        self._texts: OrderedDict[str, int] = OrderedDict()
        self._chats: OrderedDict[tuple[Message, ...], int] = OrderedDict()

    async def text(self, text: str) -> int:
        if text in self._texts:
            self._texts.move_to_end(text)
            return self._texts[text]
        n = await self._provider.count_tokens(text)
        self._remember(self._texts, text, n)
        return n

    async def messages(self, messages: tuple[Message, ...]) -> int:
        if messages in self._chats:
            self._chats.move_to_end(messages)
            return self._chats[messages]
        n = await self._provider.count_messages(messages)
        self._remember(self._chats, messages, n)
        return n

    def _remember(self, cache: OrderedDict[Any, int], key: Any, value: int) -> None:
        cache[key] = value
        if len(cache) > self._capacity:
            cache.popitem(last=False)
