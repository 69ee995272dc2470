"""BitNet models: ternary GGUF through llama.cpp, and a managed server standing in for bitnet.cpp.

The ternary file is made here: llama.cpp's own quantizer turns the test model into TQ2_0 (the
tensors whose shape allows it become ternary). The managed backend runs a real OpenAI-compatible
server, llama-cpp-python's, behind a small launcher that takes bitnet.cpp's llama-server
arguments; geri starts, health-checks, restarts and stops it exactly as it would bitnet.cpp.
"""

from __future__ import annotations

import ctypes
import os
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from geri.errors import ModelLoadError
from geri.keys import KeyStore
from geri.providers.base import ProviderContext
from geri.providers.bitnet import BitNetProvider
from geri.providers.gguf import read_gguf
from geri.providers.http import make_session
from geri.settings import BitNet, Network, Settings
from geri.types import ChatRequest, Message, ModelInfo

QUESTION = ChatRequest(
    (Message("user", "The secret word is banana. What is the secret word?"),),
    max_tokens=24,
    temperature=0.0,
)
LAUNCHER = """#!{python}
# Takes bitnet.cpp llama-server arguments and runs llama-cpp-python's OpenAI-compatible server.
import os, sys
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
os.execv(sys.executable, [
    sys.executable, "-m", "llama_cpp.server",
    "--model", args["-m"], "--host", args["--host"], "--port", args["--port"],
    "--n_ctx", args["-c"], "--n_threads", args["-t"], "--n_batch", args["-b"],
])
"""


SESSIONS: list[aiohttp.ClientSession] = []


@pytest.fixture(autouse=True)
async def _close_sessions() -> AsyncIterator[None]:
    yield
    while SESSIONS:
        await SESSIONS.pop().close()


def context(options: BitNet) -> ProviderContext:
    sessions: list[aiohttp.ClientSession] = []

    def session() -> aiohttp.ClientSession:  # made on first use, in the test's event loop
        if not sessions:
            sessions.append(make_session(Network()))
            SESSIONS.append(sessions[0])
        return sessions[0]

    return ProviderContext.of(Settings(bitnet=options), "bitnet", KeyStore({}, {}), session)


@pytest.fixture(scope="module")
def ternary(smollm_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import llama_cpp

    out = tmp_path_factory.mktemp("tq") / "smol-tq2_0.gguf"
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = 37  # LLAMA_FTYPE_MOSTLY_TQ2_0
    params.allow_requantize = True
    params.nthread = 2
    assert (
        llama_cpp.llama_model_quantize(
            str(smollm_path).encode(), str(out).encode(), ctypes.byref(params)
        )
        == 0
    )
    return out


async def test_a_ternary_gguf_runs_in_process_with_the_efficiency_settings(ternary: Path) -> None:
    assert read_gguf(ternary).quantization == "TQ2_0"
    info = ModelInfo("tq", "bitnet", str(ternary), context_window=8192)
    provider = BitNetProvider(info, context(BitNet(context_size=512, threads=1, batch_size=64)))
    completion = await provider.generate(
        ChatRequest((Message("user", "Hello"),), max_tokens=8, temperature=0.0)
    )
    assert completion.usage.output_tokens > 0
    llm = provider._inner._loaded.llm  # type: ignore[union-attr]
    assert (llm.n_ctx(), llm.n_threads, llm.n_batch) == (512, 1, 64)
    await provider.aclose()


async def test_a_file_llama_cpp_cannot_load_gets_bitnet_advice(tmp_path: Path) -> None:
    import struct

    key, value = b"general.architecture", b"bitnet-i2s-unknown"
    fake = tmp_path / "i2s.gguf"
    fake.write_bytes(
        b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", len(key)) + key
        + struct.pack("<IQ", 8, len(value)) + value
    )  # fmt: skip
    provider = BitNetProvider(ModelInfo("b", "bitnet", str(fake)), context(BitNet()))
    with pytest.raises(ModelLoadError, match=r"set bitnet\.server"):
        await provider.generate(QUESTION)


@pytest.fixture
def launcher(tmp_path: Path) -> Path:
    script = tmp_path / "llama-server"
    script.write_text(LAUNCHER.format(python=sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


@pytest.fixture
async def managed(smollm_path: Path, launcher: Path) -> AsyncIterator[BitNetProvider]:
    info = ModelInfo("bitnet-test", "bitnet", str(smollm_path), context_window=4096)
    provider = BitNetProvider(info, context(BitNet(server=launcher, context_size=1024)))
    yield provider
    await provider.aclose()


async def test_the_managed_server_starts_on_demand_and_answers(managed: BitNetProvider) -> None:
    server = managed._server
    assert server is not None
    assert server.process is None  # nothing runs until the first request
    completion = await managed.generate(QUESTION)
    assert "banana" in completion.text.lower()
    assert server.starts == 1
    assert server.url is not None
    assert server.url.startswith("http://127.0.0.1:")
    chunks = [c.text async for c in managed.stream(QUESTION)]
    assert "banana" in "".join(chunks).lower()
    assert server.starts == 1  # kept running between requests


async def test_a_crashed_server_is_restarted(managed: BitNetProvider) -> None:
    await managed.generate(QUESTION)
    server = managed._server
    assert server is not None
    assert server.process is not None
    first = server.process.pid
    os.kill(first, 9)
    server.process.wait(10)
    completion = await managed.generate(QUESTION)
    assert "banana" in completion.text.lower()
    assert server.starts == 2
    assert server.process.pid != first


async def test_the_server_stops_with_geri(managed: BitNetProvider) -> None:
    await managed.generate(QUESTION)
    server = managed._server
    assert server is not None
    process = server.process
    assert process is not None
    await managed.aclose()
    assert process.poll() is not None
    assert server.process is None


async def test_a_server_that_will_not_start_is_a_clear_error(
    smollm_path: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "llama-server"
    broken.write_text("#!/bin/sh\necho 'error: unknown model format' >&2\nexit 3\n")
    broken.chmod(0o755)
    info = ModelInfo("b", "bitnet", str(smollm_path))
    provider = BitNetProvider(info, context(BitNet(server=broken)))
    with pytest.raises(Exception, match=r"exited with code 3.*unknown model format"):
        await provider.generate(QUESTION)
    missing = BitNetProvider(info, context(BitNet(server=tmp_path / "nope")))
    with pytest.raises(ModelLoadError, match="Cannot start the BitNet server"):
        await missing.generate(QUESTION)
