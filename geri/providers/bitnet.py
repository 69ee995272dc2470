"""1-bit BitNet models, in-process through llama.cpp or in a managed bitnet.cpp server.

llama.cpp runs the ternary GGUF formats it knows (TQ1_0, TQ2_0) like any other model; this
provider then only applies the `bitnet` efficiency settings (threads, a smaller context and
batch) meant for the weak machines BitNet is chosen for. bitnet.cpp's own formats (i2_s, the one
Microsoft ships) need its server: with `bitnet.server` set, geri starts that binary on demand on
127.0.0.1 with a free port, waits until it answers, talks to it over its OpenAI-compatible API,
starts it again if it died, and stops it when the engine closes (or, failing that, when the
Python process exits).
"""

from __future__ import annotations

import asyncio
import atexit
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncGenerator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from geri.errors import ModelLoadError, Unavailable
from geri.providers.base import Provider, ProviderContext
from geri.providers.gguf import read_gguf
from geri.settings import BitNet
from geri.types import ChatRequest, Chunk, Completion, Message, ModelInfo

LOG_TAIL = 2000


class BitNetProvider:
    """A BitNet model; which backend runs it is the settings' choice."""

    def __init__(self, info: ModelInfo, context: ProviderContext) -> None:
        self._info = info
        self._context = context
        options = context.bitnet
        window = min(info.context_window, options.context_size)
        self._inner_info = replace(info, context_window=window)
        self._server = ManagedServer(info.source, options) if options.server else None
        self._inner: Provider | None = None
        self._inner_url: str | None = None

    def info(self) -> ModelInfo:
        return self._info

    async def generate(self, request: ChatRequest) -> Completion:
        with _advice():
            return await (await self._backend()).generate(request)

    async def stream(self, request: ChatRequest) -> AsyncGenerator[Chunk, None]:
        with _advice():
            backend = await self._backend()
            async for chunk in backend.stream(request):
                yield chunk

    async def count_tokens(self, text: str) -> int:
        with _advice():
            return await (await self._backend()).count_tokens(text)

    async def count_messages(self, messages: Sequence[Message]) -> int:
        with _advice():
            return await (await self._backend()).count_messages(messages)

    async def probe(self) -> None:
        """The file is still there and whole (its header and size are read, nothing loaded)."""
        await asyncio.to_thread(read_gguf, Path(self._info.source))

    async def aclose(self) -> None:
        if self._inner is not None:
            await self._inner.aclose()
            self._inner = None
        if self._server is not None:
            await asyncio.to_thread(self._server.stop)

    async def _backend(self) -> Provider:
        if self._server is None:
            if self._inner is None:
                self._inner = self._in_process()
            return self._inner
        url = await self._server.ensure()
        if self._inner is None or self._inner_url != url:  # first start, or a restart
            from geri.providers.openai import OpenAIProvider

            remote = replace(
                self._inner_info, provider="openai_compatible", metadata={"base_url": url}
            )
            self._inner, self._inner_url = OpenAIProvider(remote, self._context), url
        return self._inner

    def _in_process(self) -> Provider:
        from geri.providers.llamacpp import LlamaCppProvider

        options, performance = self._context.bitnet, self._context.performance
        tuned = performance.model_copy(
            update={
                "threads": options.threads or performance.threads,
                "batch_size": options.batch_size,
            }
        )
        return LlamaCppProvider(self._inner_info, replace(self._context, performance=tuned))


@contextmanager
def _advice() -> Iterator[None]:
    """Turn llama.cpp's refusal of a bitnet.cpp-only file into advice."""
    try:
        yield
    except ModelLoadError as exc:
        raise ModelLoadError(
            f"{exc} BitNet files in bitnet.cpp's own formats (such as i2_s) need its server: "
            "build bitnet.cpp and set bitnet.server to its llama-server binary."
        ) from exc


class ManagedServer:
    """bitnet.cpp's `llama-server` (or any server taking its arguments) as a child process."""

    def __init__(self, model: str, options: BitNet) -> None:
        self.model = model
        self.options = options
        self.process: subprocess.Popen[bytes] | None = None
        self.url: str | None = None
        self.starts = 0
        self._lock = asyncio.Lock()
        self._log = Path(tempfile.gettempdir()) / f"geri-bitnet-{id(self)}.log"
        atexit.register(self.stop)

    async def ensure(self) -> str:
        """The base URL of a running, answering server; started (again) if needed."""
        async with self._lock:
            if self.process is not None and self.process.poll() is None and self.url:
                return self.url
            return await self._start()

    async def _start(self) -> str:
        import httpx

        assert self.options.server is not None
        port = _free_port()
        threads = self.options.threads or _physical_cores()
        command = [
            str(self.options.server),
            "-m", self.model,
            "--host", "127.0.0.1",
            "--port", str(port),
            "-c", str(self.options.context_size),
            "-t", str(threads),
            "-b", str(self.options.batch_size),
            *self.options.server_args,
        ]  # fmt: skip
        try:
            with self._log.open("wb") as log:  # the child keeps its own handle
                self.process = await asyncio.to_thread(
                    subprocess.Popen,
                    command,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
        except OSError as exc:
            raise ModelLoadError(
                f"Cannot start the BitNet server {self.options.server}: {exc.strerror}. "
                "Check bitnet.server in the settings."
            ) from exc
        self.starts += 1
        url = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + self.options.startup_timeout
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise Unavailable(
                        f"The BitNet server exited with code {self.process.returncode} while "
                        f"starting: {self._tail()}"
                    )
                try:
                    if (await client.get(f"{url}/models")).status_code == 200:
                        self.url = url
                        return url
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        self.stop()
        raise Unavailable(
            f"The BitNet server did not answer within {self.options.startup_timeout:g} s; "
            f"its log ends: {self._tail()}"
        )

    def stop(self) -> None:
        """Stop the server, and remove its log (what it said was only needed while it ran)."""
        process, self.process, self.url = self.process, None, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        self._log.unlink(missing_ok=True)

    def _tail(self) -> str:
        try:
            return self._log.read_text(errors="replace")[-LOG_TAIL:].strip() or "(no output)"
        except OSError:
            return "(no log)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _physical_cores() -> int:
    from geri.providers.llamacpp import default_threads

    return default_threads()
