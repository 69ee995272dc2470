"""Routing through the engine: 'auto', a resting model, health checks and LAN discovery."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from geri.engine import Engine
from geri.errors import NoEligibleModel, Unavailable
from geri.providers import ProviderContext
from geri.settings import Cache, LocalModel, Peer, Routing, Settings
from geri.store import open_store
from geri.types import Constraints, ModelInfo, Request
from tests.fakes import FakeClock, FakeProvider, Script
from tests.mockserver import MockServer, Reply, Seen


class Rig:
    def __init__(self, tmp_path: Path, settings: Settings) -> None:
        self.scripts: dict[str, deque[Script]] = {}
        self.clock = FakeClock(step=0.001)
        # identical requests are repeated here to build up history: the cache would answer them
        settings = settings.model_copy(update={"cache": Cache(enabled=False)})
        self.engine = Engine(
            settings,
            open_store(tmp_path / "g.db"),
            providers=self._build,
            clock=self.clock,
            sleep=self._sleep,
            free_ram=lambda: 64 * 10**9,
        )

    async def _sleep(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def _build(self, info: ModelInfo, context: ProviderContext) -> FakeProvider:
        return FakeProvider(info, self.scripts.setdefault(info.id, deque()))

    def enqueue(self, model: str, *chunks: str, error: BaseException | None = None) -> None:
        self.scripts.setdefault(model, deque()).append(Script(list(chunks), error))


def local(model_id: str, tmp_path: Path) -> LocalModel:
    return LocalModel(id=model_id, path=tmp_path / f"{model_id}.gguf")


async def test_auto_routes_to_the_best_and_a_failing_model_rests(tmp_path: Path) -> None:
    settings = Settings(
        models=(local("fast", tmp_path), local("slow", tmp_path)),
        routing=Routing(spread=0.0, failure_threshold=2, cooldown=60),
        network={"max_attempts": 1},  # type: ignore[arg-type]
    )
    rig = Rig(tmp_path, settings)
    # history: "fast" answers quickly, "slow" slowly, so "fast" wins on latency
    for _ in range(3):
        rig.enqueue("fast", "ok")
        await rig.engine.ask(Request("q", model="fast"))
    rig.clock.step = 2.0
    rig.enqueue("slow", "ok")
    await rig.engine.ask(Request("q", model="slow"))
    rig.clock.step = 0.001
    ranking = await rig.engine.router.route(Request("q"))
    assert [c.model.id for c in ranking.candidates] == ["fast", "slow"]

    rig.enqueue("fast", "routed")
    assert (await rig.engine.ask(Request("q", model="auto"))).model == "fast"
    for _ in range(2):  # two failures in a row: "fast" rests
        rig.enqueue("fast", error=Unavailable("down"))
        with pytest.raises(Unavailable):
            await rig.engine.ask(Request("q", model="auto"))
    rig.enqueue("slow", "covering")
    result = await rig.engine.ask(Request("q", model="auto"))
    assert (result.model, result.text) == ("slow", "covering")
    ranking = await rig.engine.router.route(Request("q"))
    assert "resting after 2 failures" in ranking.excluded["fast"]
    rig.clock.advance(60)  # cool-down over: "fast" is tried again, and recovers
    rig.enqueue("fast", "back")
    assert (await rig.engine.ask(Request("q", model="auto"))).model == "fast"


async def test_no_default_means_auto_and_constraints_apply(tmp_path: Path) -> None:
    rig = Rig(tmp_path, Settings(models=(local("only", tmp_path),)))
    rig.enqueue("only", "hi")
    assert (await rig.engine.ask(Request("q"))).model == "only"
    with pytest.raises(NoEligibleModel, match="only: context window 4096 < 100000"):
        await rig.engine.ask(
            Request("q", model="auto", constraints=Constraints(min_context=100_000))
        )


async def test_health_checks_are_logged_and_feed_reliability(
    tmp_path: Path, smollm_path: Path
) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(smollm_path.read_bytes()[:4096])
    settings = Settings(
        models=(
            LocalModel(id="good", path=smollm_path),
            LocalModel(id="broken", path=broken),
        )
    )
    engine = Engine(settings, open_store(tmp_path / "g.db"))
    checks = {c.model_id: c for c in await engine.router.check_health()}
    assert checks["good"].ok
    assert not checks["broken"].ok
    assert "truncated" in (checks["broken"].error or "")
    assert "gpt-4o" not in checks  # no key: not configured, so not probed
    ranking = await engine.router.route(Request("q"))
    by_id = {c.model.id: c for c in ranking.candidates}
    assert by_id["good"].factors.reliability > by_id["broken"].factors.reliability
    await engine.aclose()


async def test_peers_are_discovered_with_their_round_trip(tmp_path: Path) -> None:
    with MockServer() as peer:
        peer.add(Reply(json={"object": "list", "data": [{"id": "/models/llama 3.gguf"}]}))
        peer.add(Reply(404, {}))  # no /props: not a llama.cpp server
        settings = Settings(peers=(Peer(name="box", url=peer.url + "/v1"),))
        engine = Engine(settings, open_store(tmp_path / "g.db"))
        [found] = await engine.router.discover()
        assert found.error is None
        [model] = found.models
        assert model.id == "box/llama-3.gguf"
        assert (model.location, model.source) == ("lan", "/models/llama 3.gguf")
        assert model.metadata["base_url"] == peer.url + "/v1"
        assert float(model.metadata["rtt_ms"]) > 0
        assert engine.registry.get("box/llama-3.gguf").location == "lan"
        peer.add(Reply(500, {"error": "down"}))
        [gone] = await engine.router.discover()
        assert gone.error is not None
        [check] = engine.store.health_history("box/llama-3.gguf")
        assert not check.ok
        await engine.aclose()


async def test_a_peer_answering_json_nested_too_deeply_is_a_listing_error(
    tmp_path: Path,
) -> None:
    with MockServer() as peer:
        peer.default = Reply(body=b'{"data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
        engine = Engine(
            Settings(peers=(Peer(name="p", url=peer.url + "/v1"),)), open_store(tmp_path / "g.db")
        )
        [found] = await engine.router.discover()
        await engine.aclose()
    assert found.models == ()
    assert "nested too deeply" in (found.error or "")


def keyed_peer(seen: Seen) -> Reply:
    """A peer behind a keyed proxy that states its windows: vLLM's way, or llama.cpp's."""
    if seen.headers.get("authorization") != "Bearer sk-peer-key-123456":
        return Reply(401, {"error": {"message": "missing or wrong key"}})
    if seen.path == "/props":
        return Reply(json={"default_generation_settings": {"n_ctx": 2048}})
    return Reply(
        json={
            "data": [
                {"id": "vllm-model", "max_model_len": 32768},
                {"id": "llama-model"},
                {"id": "sk-peer-key-123456"},  # a listing that echoes the key: not a model
            ]
        }
    )


async def test_discovery_sends_the_key_and_takes_each_window_from_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GERI_OPENAI_COMPATIBLE_API_KEY", "sk-peer-key-123456")
    with MockServer() as peer:
        peer.default = keyed_peer
        settings = Settings(peers=(Peer(name="box", url=peer.url + "/v1"),))
        engine = Engine(settings, open_store(tmp_path / "g.db"))
        [found] = await engine.router.discover()
        await engine.aclose()
    assert found.error is None
    windows = {m.id: m.context_window for m in found.models}
    assert windows == {"box/vllm-model": 32768, "box/llama-model": 2048}


async def test_a_peer_that_states_no_window_gets_a_small_one(tmp_path: Path) -> None:
    with MockServer() as peer:
        peer.default = Reply(json={"data": [{"id": "m"}]})
        engine = Engine(
            Settings(peers=(Peer(name="p", url=peer.url + "/v1"),)), open_store(tmp_path / "g.db")
        )
        [found] = await engine.router.discover()
        await engine.aclose()
    assert [m.context_window for m in found.models] == [2048]


def test_route_explain_on_the_command_line(
    geri_cli: Callable[..., CompletedProcess[str]], smollm_path: Path
) -> None:
    assert geri_cli("models", "add", str(smollm_path), "--id", "smol").returncode == 0
    proc = geri_cli("route", "hello", "--json")
    data = json.loads(proc.stdout)
    assert data["winner"] == "smol"
    assert set(data["weights"]) == {
        "size",
        "hardware",
        "reliability",
        "latency",
        "distance",
        "cost",
    }
    [smol] = data["candidates"]
    assert set(smol["factors"]) == set(data["weights"])
    assert data["excluded"]["gpt-4o"] == (
        "no API key — run 'geri keys set openai' or set OPENAI_API_KEY"
    )
    text = geri_cli("route", "hello", "--explain")
    assert "winner" in text.stdout
    assert "weights" in text.stdout
    assert text.stdout.strip().endswith("smol")
    none = geri_cli("route", "hello", "--min-context", "100000")
    assert none.returncode == 1
    assert "smol: context window 4096 < 100000" in none.stderr
