"""Turning a `Request` into the messages a model sees.

The order is fixed: system prompt, then the user's prompt. Everything a model is sent is
built here, so the request log and the cache key see exactly what the model saw.
"""

from __future__ import annotations

from geri.types import Message, Request


def build_messages(request: Request) -> tuple[Message, ...]:
    """The chat messages for `request`.

    >>> build_messages(Request("Hi", system="Be brief."))
    (Message(role='system', content='Be brief.'), Message(role='user', content='Hi'))
    """
    messages: list[Message] = []
    if request.system:
        messages.append(Message("system", request.system))
    messages.append(Message("user", request.prompt))
    return tuple(messages)
