"""A geri error survives the trip across gRPC with its type: one status table, read both ways.

The daemon runs on a real channel with a provider that fails as told; the client, and the peer
provider built on it, must raise the same class, so retries and fallback treat a remote failure
like a local one. A status from a server that is not geri maps by its code alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from geri import errors
from geri.daemon.server import DaemonServer
from geri.engine import Engine
from geri.paths import Paths
from geri.providers.base import ProviderContext
from geri.providers.peer import PeerProvider
from geri.settings import Daemon, LocalModel, Network, Settings
from geri.store import open_store
from geri.types import ChatRequest, Message, ModelInfo, Request
from geri.wire import DaemonAddress
from geri.wire.client import DaemonClient
from geri.wire.convert import STATUS, error_from_status, status_of
from tests.daemon.test_daemon import Gated, Running, reset_gate  # noqa: F401 (autouse)

FAILURES = [
    errors.RateLimited("slow down", retry_after=2.5),
    errors.QueueFull(7),
    errors.Unavailable("upstream is down"),
    errors.ProviderTimeout("no answer in 60 s"),
    errors.BadRequest("the server said: UNAVAILABLE is not a model parameter"),
    errors.AuthError("the key was refused"),
    errors.ContextTooLong("does not fit"),
    errors.IncompleteAnswer("cut off"),
    errors.ModelLoadError("llama.cpp refused the file"),
    errors.MissingKey("No key for 'openai'"),
]


@pytest.fixture
async def daemon(paths: Paths, tmp_path: Path) -> AsyncIterator[Running]:
    settings = Settings(
        models=(LocalModel(id="echo", path=tmp_path / "echo.gguf"),),
        default_model="echo",
        daemon=Daemon(port=0, drain_seconds=1),
        network=Network(max_attempts=1),
    )
    engine = Engine(settings, open_store(paths.database), providers=Gated)
    server = DaemonServer(paths, settings, engine)
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(server.run(on_ready=lambda up: ready.set_result(up.address)))
    running = Running(server, task, await asyncio.wait_for(ready, 20))
    yield running
    await running.stop()


@pytest.mark.parametrize("failure", FAILURES, ids=lambda e: type(e).__name__)
async def test_the_client_raises_what_the_daemon_raised(
    daemon: Running, failure: errors.GeriError
) -> None:
    Gated.fail = failure
    async with DaemonClient(DaemonAddress(daemon.address)) as client:
        with pytest.raises(errors.GeriError) as raised:
            await client.ask(Request("hello", model="echo"))
        with pytest.raises(errors.GeriError) as streamed:
            async for _ in client.stream(Request("hello", model="echo")):
                pass
    for error in (raised.value, streamed.value):
        assert type(error) is type(failure)
        assert str(error) == str(failure)
    if isinstance(failure, errors.Retryable):
        assert raised.value.retry_after == failure.retry_after  # type: ignore[attr-defined]


async def test_a_peers_rate_limit_is_retryable_here_and_its_bad_request_is_not(
    daemon: Running,
) -> None:
    info = ModelInfo(
        "peer/echo", "geri_peer", "echo", location="lan", metadata={"address": daemon.address}
    )
    peer = PeerProvider(info, ProviderContext(keys=None, http=None))  # type: ignore[arg-type]
    chat = ChatRequest((Message("user", "hello"),))
    Gated.fail = errors.RateLimited("slow down")
    with pytest.raises(errors.Retryable):
        await peer.generate(chat)
    Gated.fail = errors.BadRequest("UNAVAILABLE appears in this message")
    with pytest.raises(errors.BadRequest) as refused:
        await peer.generate(chat)
    assert not isinstance(refused.value, errors.Retryable)


def test_every_error_in_the_tree_has_a_status_and_comes_back_as_itself_or_its_nearest() -> None:
    def tree(kind: type[errors.GeriError]) -> list[type[errors.GeriError]]:
        return [kind, *(k for sub in kind.__subclasses__() for k in tree(sub))]

    for kind in tree(errors.GeriError):
        code = next(c for listed, c in STATUS if issubclass(kind, listed))
        name = (("geri-error", kind.__name__),)
        back = error_from_status(code, "message", name)
        assert isinstance(back, errors.GeriError)
        assert status_of(back)[0] == code  # the same code again: stable both ways
        if kind not in {errors.BudgetExhausted, errors.QuestionTooLong}:  # need more than text
            assert type(back) is kind, kind


def test_a_status_from_a_server_that_is_not_geri_maps_by_its_code() -> None:
    assert type(error_from_status(grpc.StatusCode.RESOURCE_EXHAUSTED, "busy")) is errors.RateLimited
    assert type(error_from_status(grpc.StatusCode.UNAVAILABLE, "down")) is errors.Unavailable
    assert type(error_from_status(grpc.StatusCode.UNAUTHENTICATED, "token")) is errors.AuthError
    assert type(error_from_status(grpc.StatusCode.DEADLINE_EXCEEDED, "late")) is (
        errors.ProviderTimeout
    )
    unknown = error_from_status(grpc.StatusCode.UNIMPLEMENTED, "no such method")
    assert type(unknown) is errors.DaemonError
    assert "no such method" in str(unknown)
    forged = error_from_status(
        grpc.StatusCode.INVALID_ARGUMENT, "x", (("geri-error", "Unavailable"),)
    )
    assert type(forged) is errors.InputError  # a class the table never sends with that code
