"""A minimal OpenAI-compatible server for benchmarks: asyncio streams, keep-alive, fixed replies.

It does as little as possible per request so that what a benchmark measures is the client.
`POST .../chat/completions` answers with a fixed completion, or with a fixed stream of server-sent
events when the request body asks for `"stream": true`.

    python benchmarks/mock_openai.py PORT
"""

from __future__ import annotations

import asyncio
import json
import sys

COMPLETION = json.dumps(
    {
        "id": "bench",
        "object": "chat.completion",
        "created": 0,
        "model": "bench",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello from the benchmark server."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
    }
).encode()

_EVENTS = [
    {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
    *(
        {"choices": [{"index": 0, "delta": {"content": w}}]}
        for w in ["Hello", " from", " the", " stream."]
    ),
    {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    {"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16}},
]
STREAM = b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in _EVENTS) + b"data: [DONE]\n\n"


def _response(body: bytes, content_type: bytes) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: "
        + content_type
        + b"\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


PLAIN = _response(COMPLETION, b"application/json")
EVENTS = _response(STREAM, b"text/event-stream")
MODELS = _response(b'{"object":"list","data":[{"id":"bench"}]}', b"application/json")


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = await reader.readexactly(length) if length else b""
            if head.startswith(b"GET"):
                writer.write(MODELS)
            else:
                writer.write(
                    EVENTS if b'"stream": true' in body or b'"stream":true' in body else PLAIN
                )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionResetError):
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
