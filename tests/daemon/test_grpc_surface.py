"""The daemon's gRPC surface as other clients see it, over real channels.

Each test is one point other gRPC clients (grpc-js, grpcurl, load balancers, Python reflection)
found wrong: a remote-only request with no model; context documents that skipped the RAG rules;
a health watcher that kept a stopping daemon alive; reflection served only under `v1alpha`; a
case-sensitive `Bearer`; keepalive pings answered with GOAWAY; messages naming CLI flags.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2

from geri.paths import Paths
from geri.settings import CloudModel
from geri.wire._pb.geri.v1 import wolf_pb2 as pb
from tests.daemon.test_daemon import TOKEN, Gated, Running, ask, settings_with, start


async def test_remote_only_with_no_model_is_routed_to_a_remote_model(
    daemon: Running,
) -> None:
    engine = daemon.server.state.engine
    remote = CloudModel(kind="cloud", id="far", provider="openai", model="m", base_url="http://x")
    engine.reload(engine.settings.model_copy(update={"models": (*engine.settings.models, remote)}))
    engine.keys.get = lambda provider: "sk-test" if provider == "openai" else None  # type: ignore[method-assign]
    reply = await daemon.wolf.ProcessPrompt(ask("hi", model_type=pb.MODEL_TYPE_REMOTE))
    assert reply.model_used != "echo"  # not the default local model
    local = await daemon.wolf.ProcessPrompt(ask("hi", model_type=pb.MODEL_TYPE_LOCAL))
    assert local.model_used == "echo"


@pytest.mark.parametrize(
    ("documents", "said"),
    [
        ([pb.ContextDocument(id="", content="x")], "field 'id'"),
        (
            [pb.ContextDocument(id="a", content="x"), pb.ContextDocument(id="a", content="y")],
            "duplicate id 'a'",
        ),
        ([pb.ContextDocument(id="a", content="   ")], "field 'content'"),
        ([pb.ContextDocument(id="a", content="x", score=float("nan"))], "field 'score'"),
        ([pb.ContextDocument(id="a", content="x", score=float("inf"))], "field 'score'"),
    ],
    ids=["empty-id", "duplicate-id", "blank-content", "nan-score", "inf-score"],
)
async def test_context_documents_follow_the_rag_rules(
    daemon: Running, documents: list[pb.ContextDocument], said: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await daemon.wolf.ProcessPrompt(ask("q", context=documents))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert said in (err.value.details() or "")


async def test_a_health_watcher_does_not_keep_a_stopping_daemon_alive(
    paths: Paths, tmp_path: Path
) -> None:
    running = await start(paths, settings_with(tmp_path, drain_seconds=30))
    watch = health_pb2_grpc.HealthStub(running.channel).Watch(health_pb2.HealthCheckRequest())
    first = await watch.read()
    assert first.status == health_pb2.HealthCheckResponse.SERVING
    Gated.gate.clear()
    working = asyncio.ensure_future(running.wolf.ProcessPrompt(ask("in flight")))
    await asyncio.sleep(0.3)
    started = time.monotonic()
    running.server.stopping.set()
    await asyncio.sleep(0.5)
    Gated.gate.set()  # the work in flight finishes; nothing else should hold the daemon
    assert (await working).text == "echo: in flight"  # drained, not cut
    await asyncio.wait_for(running.task, 10)
    assert time.monotonic() - started < 10  # not the 30 s drain time
    await running.channel.close()


async def reflect(channel: grpc.aio.Channel, version: str) -> list[str]:
    method = f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo"
    call = channel.stream_stream(
        method,
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="geri.v1.WolfService"),
    ]
    replies = [reply async for reply in call(iter(requests))]
    names = [s.name for s in replies[0].list_services_response.service]
    files = replies[1].file_descriptor_response.file_descriptor_proto
    proto = descriptor_pb2.FileDescriptorProto.FromString(files[0])
    assert "WolfService" in [s.name for s in proto.service]
    return names


async def test_reflection_answers_under_v1_and_v1alpha(daemon: Running) -> None:
    for version in ("v1", "v1alpha"):
        names = await reflect(daemon.channel, version)
        assert "geri.v1.WolfService" in names
        assert "grpc.reflection.v1.ServerReflection" in names


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
async def test_the_bearer_scheme_is_case_insensitive(
    paths: Paths, tmp_path: Path, scheme: str
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    running = await start(paths, settings_with(tmp_path, token_file=token_file))
    try:
        sent = (("authorization", f"{scheme} {TOKEN}"),)
        assert (await running.wolf.ProcessPrompt(ask("hi"), metadata=sent)).text == "echo: hi"
        wrong = (("authorization", f"{scheme} {TOKEN.upper()}"),)  # the token itself is exact
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await running.wolf.ProcessPrompt(ask("hi"), metadata=wrong)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await running.stop()


async def test_an_idle_client_with_frequent_keepalive_pings_is_not_sent_away(
    daemon: Running,
) -> None:
    options = [
        ("grpc.keepalive_time_ms", 1000),
        ("grpc.keepalive_timeout_ms", 5000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
    ]
    async with grpc.aio.insecure_channel(daemon.address, options=options) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        await stub.Check(health_pb2.HealthCheckRequest())
        await asyncio.sleep(7)  # idle, pinging every second or so
        assert channel.get_state() == grpc.ChannelConnectivity.READY  # no GOAWAY: same connection
        await stub.Check(health_pb2.HealthCheckRequest())


async def test_messages_over_grpc_name_fields_not_cli_flags(daemon: Running) -> None:
    for params in (pb.Parameters(temperature=5), pb.Parameters(max_tokens=0)):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await daemon.wolf.ProcessPrompt(ask("q", parameters=params))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "--" not in (err.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await daemon.wolf.ProcessPrompt(ask("   "))
    assert "stdin" not in (err.value.details() or "")
