"""A Hugging Face hub stand-in on 127.0.0.1: enough of its file API for huggingface_hub.

It answers `HEAD` and `GET /{owner}/{repo}/resolve/{revision}/{file}` with the hub's headers
(X-Repo-Commit, X-Linked-Etag holding the LFS sha256, X-Linked-Size, X-Error-Code on errors),
honours `Range` requests, and can misbehave on purpose: gate a repository behind a token, cut
a transfer at a given fraction, serve bytes that do not match the hash, or trickle slowly.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class HubFile:
    data: bytes
    gated: bool = False
    corrupt: bool = False  # serve different bytes of the same length

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class Served:
    path: str
    start: int
    sent: int


class HubServer:
    def __init__(self) -> None:
        self.files: dict[tuple[str, str], HubFile] = {}
        self.served: list[Served] = []
        self.heads: list[str] = []
        self.cut_at: float | None = None  # fraction of the file after which the next GET drops
        self.delay_per_mb = 0.0
        self.token = "hf_test_token"
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_HEAD(self) -> None:
                hub.heads.append(self.path)
                found = self._find()
                if found is None:
                    return
                self._headers(200, found, len(found.data))
                self.end_headers()

            def do_GET(self) -> None:
                found = self._find()
                if found is None:
                    return
                data = bytes(b ^ 0xFF for b in found.data) if found.corrupt else found.data
                start = 0
                match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("range", ""))
                if match:
                    start = int(match.group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("content-length", "0")
                        self.end_headers()
                        return
                    self._headers(206, found, len(data) - start)
                    self.send_header("content-range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self._headers(200, found, len(data))
                self.end_headers()
                stop = len(data)
                if hub.cut_at is not None:
                    stop, hub.cut_at = max(int(len(data) * hub.cut_at), start), None
                record = Served(self.path, start, 0)
                hub.served.append(record)
                try:
                    for offset in range(start, stop, 1 << 20):
                        block = data[offset : min(offset + (1 << 20), stop)]
                        self.wfile.write(block)
                        record.sent += len(block)
                        time.sleep(hub.delay_per_mb)
                except (BrokenPipeError, ConnectionResetError):
                    return
                if stop < len(data):
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)

            def _find(self) -> HubFile | None:
                match = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", self.path)
                repo, file = (match.group(1), match.group(3)) if match else ("", "")
                if not any(r == repo for r, _ in hub.files):
                    self._error(404, "RepoNotFound")
                    return None
                found = hub.files.get((repo, file))
                if found is None:
                    self._error(404, "EntryNotFound")
                    return None
                if found.gated and self.headers.get("authorization") != f"Bearer {hub.token}":
                    self._error(401, "GatedRepo")
                    return None
                return found

            def _error(self, status: int, code: str) -> None:
                self.send_response(status)
                self.send_header("x-error-code", code)
                self.send_header("content-length", "0")
                self.end_headers()

            def _headers(self, status: int, found: HubFile, length: int) -> None:
                self.send_response(status)
                self.send_header("x-repo-commit", COMMIT)
                self.send_header("x-linked-etag", f'"{found.sha256}"')
                self.send_header("x-linked-size", str(len(found.data)))
                self.send_header("etag", f'"{found.sha256}"')
                self.send_header("accept-ranges", "bytes")
                self.send_header("content-length", str(length))

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def gets(self, file: str) -> list[Served]:
        return [s for s in self.served if s.path.endswith("/" + file)]

    def __enter__(self) -> HubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
