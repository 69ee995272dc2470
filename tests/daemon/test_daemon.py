"""The daemon over a real gRPC channel: every RPC, the queue, deadlines, auth, shutdown, reload."""

from __future__ import annotations

import asyncio
import contextlib
import json
import stat
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from geri.daemon.server import DaemonServer
from geri.engine import Engine
from geri.errors import ConfigError, Unavailable
from geri.paths import Paths
from geri.providers import ProviderContext
from geri.providers.gguf import read_gguf
from geri.settings import Daemon, LocalModel, Network, Settings
from geri.store import open_store
from geri.types import ChatRequest, Chunk, Completion, Message, ModelInfo, Request, Usage
from geri.wire import DaemonAddress
from geri.wire._pb.geri.v1 import wolf_pb2 as pb
from geri.wire._pb.geri.v1 import wolf_pb2_grpc
from geri.wire.client import DaemonClient

TOKEN = "s3cret-token-for-tests"


class Gated:
    """A provider that answers 'echo: <prompt>' in two chunks, when its gate opens.

    Tests hold the gate to keep a request running, and read `order` to see who ran when.
    """

    gate: asyncio.Event
    order: list[str]
    cancelled: list[str]
    delay: float = 0.0
    fail: BaseException | None = None

    def __init__(self, info: ModelInfo, context: ProviderContext) -> None:
        self._info = info

    def info(self) -> ModelInfo:
        return self._info

    async def _wait(self, request: ChatRequest) -> str:
        prompt = request.messages[-1].content
        Gated.order.append(f"start {prompt}")
        await Gated.gate.wait()
        await asyncio.sleep(Gated.delay)
        if Gated.fail is not None:
            raise Gated.fail
        return prompt

    async def generate(self, request: ChatRequest) -> Completion:
        prompt = await self._wait(request)
        return Completion(f"echo: {prompt}", Usage(3, 2))

    async def stream(self, request: ChatRequest) -> AsyncGenerator[Chunk, None]:
        try:
            prompt = await self._wait(request)
            yield Chunk("echo: ")
            await asyncio.sleep(Gated.delay)
            yield Chunk(prompt)
            yield Chunk(usage=Usage(3, 2), finish_reason="stop")
        except asyncio.CancelledError:
            Gated.cancelled.append(request.messages[-1].content)
            raise

    async def count_tokens(self, text: str) -> int:
        return len(text.split())

    async def count_messages(self, messages: Sequence[Message]) -> int:
        return sum(len(m.content.split()) + 2 for m in messages)

    async def probe(self) -> None:
        """As a local provider probes: its file is read."""
        read_gguf(Path(self._info.source))

    async def aclose(self) -> None:
        pass


@pytest.fixture(autouse=True)
def reset_gate() -> None:
    Gated.gate = asyncio.Event()
    Gated.gate.set()
    Gated.order, Gated.cancelled, Gated.delay, Gated.fail = [], [], 0.0, None


def settings_with(tmp_path: Path, **daemon: object) -> Settings:
    options = {"port": 0, "reload_interval": 0.1, "drain_seconds": 5, **daemon}
    return Settings(
        models=(LocalModel(id="echo", path=tmp_path / "echo.gguf"),),
        default_model="echo",
        daemon=Daemon(**options),  # type: ignore[arg-type]
    )


class Running:
    def __init__(self, server: DaemonServer, task: asyncio.Task[None], address: str) -> None:
        self.server, self.task, self.address = server, task, address
        self.channel = grpc.aio.insecure_channel(address)
        self.wolf = wolf_pb2_grpc.WolfServiceStub(self.channel)

    async def stop(self) -> None:
        self.server.stopping.set()
        await self.task
        await self.channel.close()


async def start(paths: Paths, settings: Settings) -> Running:
    engine = Engine(settings, open_store(paths.database), providers=Gated)
    server = DaemonServer(paths, settings, engine)
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(server.run(on_ready=lambda up: ready.set_result(up.address)))
    address = await asyncio.wait_for(ready, 20)
    return Running(server, task, address)


@pytest.fixture
async def daemon(paths: Paths, tmp_path: Path) -> AsyncIterator[Running]:
    running = await start(paths, settings_with(tmp_path, max_running=1, max_queue=2))
    yield running
    await running.stop()


def ask(prompt: str, priority: int = 0, **fields: object) -> pb.WolfRequest:
    return pb.WolfRequest(prompt=prompt, priority=priority, **fields)  # type: ignore[arg-type]


async def test_process_prompt(daemon: Running) -> None:
    reply = await daemon.wolf.ProcessPrompt(
        ask("hello", system_prompt="be brief", parameters=pb.Parameters(max_tokens=20))
    )
    assert reply.text == "echo: hello"
    assert (reply.tokens_in, reply.tokens_out, reply.model_used) == (3, 2, "echo")
    assert reply.latency_ms > 0
    assert reply.request_id
    assert reply.budget.window == 4096


async def test_stream_prompt(daemon: Running) -> None:
    chunks = [c async for c in daemon.wolf.StreamPrompt(ask("hi there"))]
    assert [c.text for c in chunks if not c.done] == ["echo: ", "hi there"]
    final = chunks[-1]
    assert final.done
    assert final.response.text == "echo: hi there"
    assert final.response.ttft_ms > 0


async def test_list_models(daemon: Running) -> None:
    reply = await daemon.wolf.ListModels(pb.ListModelsRequest())
    by_id = {m.id: m for m in reply.models}
    assert by_id["echo"].is_default
    assert by_id["echo"].location == "local"
    assert by_id["gpt-4o"].input_price_micros == 2_500_000


async def test_rag_documents_travel_with_the_request(daemon: Running) -> None:
    docs = [pb.ContextDocument(id="d1", content="The code is 4417.", score=0.9, source="notes")]
    reply = await daemon.wolf.ProcessPrompt(ask("code?", context=docs))
    assert [(u.id, u.status) for u in reply.context] == [("d1", "included")]
    assert "[1] notes" in reply.text  # the echo shows the rendered prompt


async def test_errors_become_status_codes(daemon: Running) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await daemon.wolf.ProcessPrompt(ask("x", model="nope"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert "Unknown model 'nope'" in (err.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await daemon.wolf.ProcessPrompt(ask("   "))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    Gated.fail = Unavailable("upstream down")
    engine = daemon.server.state.engine
    engine.reload(engine.settings.model_copy(update={"network": Network(max_attempts=1)}))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await daemon.wolf.ProcessPrompt(ask("x"))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_priorities_under_load(daemon: Running) -> None:
    Gated.gate.clear()
    first = asyncio.ensure_future(daemon.wolf.ProcessPrompt(ask("first")))
    await _until(lambda: Gated.order == ["start first"])
    low = asyncio.ensure_future(daemon.wolf.ProcessPrompt(ask("low", priority=1)))
    await _until(lambda: daemon.server.state.scheduler.waiting == 1)
    high = asyncio.ensure_future(daemon.wolf.ProcessPrompt(ask("high", priority=9)))
    await _until(lambda: daemon.server.state.scheduler.waiting == 2)
    Gated.gate.set()
    await asyncio.gather(first, low, high)
    assert Gated.order == ["start first", "start high", "start low"]


async def test_a_cached_answer_does_not_wait_in_the_queue(daemon: Running) -> None:
    await daemon.wolf.ProcessPrompt(ask("remembered"))
    Gated.gate.clear()
    busy = asyncio.ensure_future(daemon.wolf.ProcessPrompt(ask("slow")))
    await _until(lambda: Gated.order[-1] == "start slow")  # the only slot is taken
    reply = await asyncio.wait_for(daemon.wolf.ProcessPrompt(ask("remembered")), 5)
    assert (reply.text, reply.cached) == ("echo: remembered", True)
    chunks = [c async for c in daemon.wolf.StreamPrompt(ask("remembered"))]
    assert chunks[-1].response.cached
    Gated.gate.set()
    await busy


async def test_fifo_within_a_priority(daemon: Running) -> None:
    Gated.gate.clear()
    calls = [asyncio.ensure_future(daemon.wolf.ProcessPrompt(ask("busy")))]
    await _until(lambda: Gated.order == ["start busy"])
    for name in ("a", "b"):
        calls.append(asyncio.ensure_future(daemon.wolf.ProcessPrompt(ask(name, priority=5))))
        await _until(lambda n=name: daemon.server.state.scheduler.waiting == len(calls) - 1)
    Gated.gate.set()
    await asyncio.gather(*calls)
    assert Gated.order == ["start busy", "start a", "start b"]


async def test_a_full_queue_is_refused_with_its_length(daemon: Running) -> None:
    Gated.gate.clear()
    calls = [asyncio.ensure_future(daemon.wolf.ProcessPrompt(ask(f"r{n}"))) for n in range(3)]
    await _until(lambda: daemon.server.state.scheduler.waiting == 2)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await daemon.wolf.ProcessPrompt(ask("one too many"))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "2 requests waiting" in (err.value.details() or "")
    assert ("queue-length", "2") in tuple(err.value.trailing_metadata() or ())
    Gated.gate.set()
    await asyncio.gather(*calls)


async def test_a_deadline_cancels_the_generation(daemon: Running) -> None:
    Gated.gate.clear()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in daemon.wolf.StreamPrompt(ask("slow"), timeout=0.3):
            pass
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await _until(lambda: Gated.cancelled == ["slow"])
    store = daemon.server.state.engine.store
    await _until(lambda: [r.status for r in store.recent_requests(1)] == ["cancelled"])


async def test_a_client_going_away_cancels_the_generation(daemon: Running) -> None:
    Gated.gate.clear()
    call = daemon.wolf.StreamPrompt(ask("abandoned"))
    await _until(lambda: Gated.order == ["start abandoned"])
    call.cancel()
    await _until(lambda: Gated.cancelled == ["abandoned"])
    Gated.gate.set()
    reply = await daemon.wolf.ProcessPrompt(ask("next"), timeout=10)  # the slot was given back
    assert reply.text == "echo: next"


async def test_health_and_reflection(daemon: Running) -> None:
    health = health_pb2_grpc.HealthStub(daemon.channel)
    reply = await health.Check(health_pb2.HealthCheckRequest(service="geri.v1.WolfService"))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(daemon.channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    responses = [r async for r in stub.ServerReflectionInfo(iter([request]))]
    names = {s.name for s in responses[0].list_services_response.service}
    assert {"geri.v1.WolfService", "grpc.health.v1.Health"} <= names


async def test_graceful_shutdown_drains_in_flight_calls(daemon: Running) -> None:
    Gated.gate.clear()
    Gated.delay = 0.2
    in_flight = asyncio.ensure_future(daemon.wolf.ProcessPrompt(ask("finishing")))
    await _until(lambda: Gated.order == ["start finishing"])
    daemon.server.stopping.set()
    # health turns NOT_SERVING (the server refuses new calls, so ask the servicer itself)
    check = daemon.server.health.Check
    not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
    await _until_async(lambda: _reply(check(health_pb2.HealthCheckRequest(), None)), not_serving)
    Gated.gate.set()
    assert (await in_flight).text == "echo: finishing"
    await daemon.task
    with pytest.raises(grpc.aio.AioRpcError):
        await daemon.wolf.ProcessPrompt(ask("too late"), timeout=2)
    assert not (daemon.server.paths.data_dir / "daemon.json").exists()


async def test_calls_in_flight_on_both_apis_share_one_drain_time(
    paths: Paths, tmp_path: Path
) -> None:
    """A stop gives every call in flight, gRPC and HTTP alike, `drain_seconds` in all (not
    one drain after the other), refuses new ones on both APIs meanwhile, and logs the calls
    it had to cut."""
    drain = 2.0
    running = await start(paths, settings_with(tmp_path, drain_seconds=drain, http_port=0))
    listening = running.server.listening
    assert listening is not None
    url = f"{listening.http}/v1/chat/completions"
    body = {"model": "echo", "messages": [{"role": "user", "content": "over http"}]}
    Gated.gate.clear()  # neither call will finish by itself
    async with httpx.AsyncClient(timeout=30) as client:
        over_grpc = asyncio.ensure_future(running.wolf.ProcessPrompt(ask("over grpc")))
        over_http = asyncio.ensure_future(client.post(url, json=body))
        await _until(lambda: len(Gated.order) == 2)
        started = asyncio.get_running_loop().time()
        running.server.stopping.set()
        await _until(lambda: running.server.inflight.closing)
        refused = await client.post(url, json=body)
        assert refused.status_code == 503, refused.text
        async with DaemonClient(DaemonAddress(running.address)) as over_grpc_too:
            with pytest.raises(Unavailable, match=r"^The daemon is shutting down"):
                await over_grpc_too.ask(Request("too late"))
        await running.task
        took = asyncio.get_running_loop().time() - started
        with pytest.raises(grpc.aio.AioRpcError):
            await over_grpc
        with contextlib.suppress(httpx.HTTPError):
            assert (await over_http).status_code >= 500
    await running.channel.close()
    assert drain <= took < drain + 1.0  # the drain time once, not once per API
    store = open_store(paths.database)
    statuses = [r.status for r in store.recent_requests()]
    store.close()
    assert statuses == ["cancelled", "cancelled"]  # both cut, neither lost


async def test_settings_are_reloaded_without_a_restart(daemon: Running, paths: Paths) -> None:
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    paths.settings_file.write_text(
        json.dumps(
            {
                "models": [
                    {"kind": "local", "id": "echo", "path": "/e.gguf"},
                    {"kind": "local", "id": "added-later", "path": "/x.gguf"},
                ],
                "default_model": "added-later",
            }
        )
    )

    async def ids() -> set[str]:
        return {m.id for m in (await daemon.wolf.ListModels(pb.ListModelsRequest())).models}

    await _until_async(lambda: _has(ids, "added-later"), True)
    reply = await daemon.wolf.ProcessPrompt(ask("who"))
    assert reply.model_used == "added-later"
    paths.settings_file.write_text("{ broken")  # an invalid file is ignored, not applied
    await asyncio.sleep(0.3)
    assert "added-later" in await ids()


async def test_a_token_is_required_on_every_call(paths: Paths, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    running = await start(paths, settings_with(tmp_path, token_file=token_file))
    try:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await running.wolf.ProcessPrompt(ask("hi"))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        wrong = (("authorization", "Bearer nope"),)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for _ in running.wolf.StreamPrompt(ask("hi"), metadata=wrong):
                pass
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        health = health_pb2_grpc.HealthStub(running.channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await health.Check(health_pb2.HealthCheckRequest())
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        good = (("authorization", f"Bearer {TOKEN}"),)
        assert (await running.wolf.ProcessPrompt(ask("hi"), metadata=good)).text == "echo: hi"
    finally:
        await running.stop()


def test_beyond_loopback_without_a_token_is_refused(paths: Paths, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs a token"):
        DaemonServer(paths, settings_with(tmp_path, host="0.0.0.0"))


async def test_a_unix_socket_is_private(paths: Paths, tmp_path: Path) -> None:
    sock = tmp_path / "geri.sock"
    running = await start(paths, settings_with(tmp_path, socket=sock))
    try:
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600
        assert running.address == f"unix:{sock}"
        assert (await running.wolf.ProcessPrompt(ask("via socket"))).text == "echo: via socket"
    finally:
        await running.stop()


async def _until(condition, limit: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + limit
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def _until_async(make, expected, limit: float = 10.0, allow_errors: bool = False):  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + limit
    while True:
        try:
            if await make() == expected:
                return
        except grpc.aio.AioRpcError:
            if not allow_errors:
                raise
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def _reply(pending) -> int:  # type: ignore[no-untyped-def]
    return (await pending).status  # type: ignore[no-any-return]


async def _has(ids, name: str) -> bool:  # type: ignore[no-untyped-def]
    return name in await ids()


async def test_another_daemon_is_a_peer_whose_models_answer(
    daemon: Running, tmp_path: Path
) -> None:
    from geri.settings import Peer
    from geri.types import Request

    settings = Settings(peers=(Peer(name="box", url=daemon.address, kind="geri"),))
    here = Engine(settings, open_store(tmp_path / "here.db"))
    [found] = await here.router.discover()
    assert found.error is None
    by_id = {m.id: m for m in found.models}
    assert set(by_id) == {"box/echo"}  # its local models; its cloud ones we reach directly
    assert by_id["box/echo"].location == "lan"
    assert float(by_id["box/echo"].metadata["rtt_ms"]) > 0
    result = await here.ask(Request("from afar", model="box/echo"))
    assert (result.text, result.provider) == ("echo: from afar", "geri_peer")
    chunks = [c.text async for c in here.stream(Request("streamed", model="box/echo"))]
    assert "".join(chunks) == "echo: streamed"
    [check] = [c for c in await here.router.check_health() if c.model_id == "box/echo"]
    assert check.ok
    await here.aclose()


async def test_the_daemon_probes_its_models_periodically(paths: Paths, tmp_path: Path) -> None:
    settings = settings_with(tmp_path).model_copy(
        update={"routing": Settings().routing.model_copy(update={"health_interval": 0.1})}
    )
    running = await start(paths, settings)
    try:
        store = running.server.state.engine.store
        await _until(lambda: len(store.health_history("echo")) >= 2)
        assert not store.health_history("echo")[0].ok  # its file does not exist
    finally:
        await running.stop()
