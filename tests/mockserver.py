"""A scripted HTTP server on 127.0.0.1 standing in for a cloud provider or a model hub.

Tests queue replies (status, JSON, headers, server-sent events, delays, a connection cut
mid-stream) and read back the requests the server received. It is a real socket server, so
geri's whole HTTP stack (pooling, timeouts, chunked streams, disconnects) is exercised.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    json: Any = None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    events: list[str] | None = None  # SSE `data:` payloads, each sent as its own chunk
    event_names: list[str] | None = None  # optional `event:` lines, same length as events
    delay: float = 0.0  # before the status line
    event_delay: float = 0.0  # between events
    cut_after: int | None = None  # drop the connection after this many events, mid-stream


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class MockServer:
    """Use as a context manager; `url` is its base URL."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.lock = threading.Lock()
        self.requests: list[Seen] = []
        # the reply when none is queued: one for all, or made per request (a hostile upstream)
        self.default: Reply | Callable[[Seen], Reply] | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                server.requests.append(
                    Seen(
                        self.command,
                        self.path,
                        {k.lower(): v for k, v in self.headers.items()},
                        body,
                    )
                )
                with server.lock:
                    reply = server.replies.popleft() if server.replies else server.default
                    if callable(reply):
                        reply = reply(server.requests[-1])
                if reply is None:
                    reply = Reply(500, {"error": {"message": "mock server: no reply queued"}})
                time.sleep(reply.delay)
                try:
                    if reply.events is None:
                        self._plain(reply)
                    else:
                        self._events(reply)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _plain(self, reply: Reply) -> None:
                payload = json.dumps(reply.json).encode() if reply.json is not None else reply.body
                self.send_response(reply.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def _events(self, reply: Reply) -> None:
                self.send_response(reply.status)
                self.send_header("content-type", "text/event-stream")
                self.send_header("transfer-encoding", "chunked")
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                assert reply.events is not None
                for n, data in enumerate(reply.events):
                    if reply.cut_after is not None and n >= reply.cut_after:
                        self.wfile.flush()
                        self.close_connection = True
                        self.connection.shutdown(2)  # mid-body: no terminating chunk
                        return
                    event = reply.event_names[n] if reply.event_names else None
                    text = (f"event: {event}\n" if event else "") + f"data: {data}\n\n"
                    chunk = text.encode()
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    self.wfile.flush()
                    time.sleep(reply.event_delay)
                self.wfile.write(b"0\r\n\r\n")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def __enter__(self) -> MockServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
