"""Canary keys must never surface, whatever a hostile upstream does with them.

One loopback upstream speaks all four cloud dialects (OpenAI, an OpenAI-compatible server,
Anthropic, Gemini) and echoes the caller's key everywhere it can: in response headers, in error
bodies of every status (JSON and not), in mid-stream error events, in unreadable stream lines,
in bodies of the wrong shape, in usage fields, in model listings, and in the answer itself —
whole, and split into three-character stream pieces. geri runs against it as real processes:
the CLI with DEBUG logging in human format, then a daemon with DEBUG logging in JSON, reached
through the CLI and through raw gRPC calls; notices go to a webhook and a notification command.

Then every byte geri wrote or sent is scanned — stdout and stderr of every command, every file
under GERI_HOME (the SQLite database and its WAL included, logs, the notification command's
environment), gRPC status details and metadata, webhook bodies, what reached the upstream other
than the key header — for each key and for every 8-character slice of it.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from geri.specs import key_env_names
from geri.wire._pb.geri.v1 import wolf_pb2 as pb
from geri.wire._pb.geri.v1 import wolf_pb2_grpc
from tests.mockserver import MockServer, Reply, Seen
from tests.providers.test_cloud_http import CASES, Case

KEYS = {  # no key shape geri would catch by pattern: only knowing the key can mask it
    "openai": "cq1-7f3a9c2e5b1d4f60aa17e2d8",
    "openai_compatible": "cq2-0b9e8d7c6a5f4e3d2c1b7a6f",
    "anthropic": "cq3-5e4d3c2b1a0f9e8d7c6b5a49",
    "google": "cq4-a1b2c3d4e5f60718293a4b5c",
}
DIALECT = {"openai": CASES[0], "openai_compatible": CASES[0], "anthropic": CASES[1]}
DIALECT["google"] = CASES[2]
STATUSES = (400, 401, 403, 404, 408, 413, 422, 429, 500, 502, 503, 529)
SCENARIOS = (
    *(f"status-{code}" for code in STATUSES),
    "status-500-html",
    "error-event",
    "unreadable-line",
    "wrong-shape",
    "usage-key",
    "answer",
    "answer-split",
    "inflated-usage",
)


WHOLE_REPLIES = ("wrong-shape", "usage-key", "answer", "inflated-usage", "status-500-html")


def slices(key: str) -> list[str]:
    return [key[i : i + 8] for i in range(len(key) - 7)]


def provider_of(seen: Seen) -> str:
    auth = seen.headers.get("authorization", "") + seen.headers.get("x-api-key", "")
    auth += seen.headers.get("x-goog-api-key", "")
    # a request with no key (a peer's model listing) is answered as the compatible server
    return next((name for name, key in KEYS.items() if key in auth), "openai_compatible")


def replace_text(event: str, old: str, new: str) -> str:
    return event.replace(json.dumps(old), json.dumps(new))


def hostile_reply(seen: Seen) -> Reply:
    """What the upstream says to `seen`: chosen by the scenario named in the prompt."""
    provider = provider_of(seen)
    key, case = KEYS[provider], DIALECT[provider]
    echo = {"x-echo-key": key, "www-authenticate": f"Bearer {key}", "x-request-id": key}
    if seen.method == "GET":  # health checks, discovery: a listing that quotes the key
        return Reply(json={"data": [{"id": key}], "models": [{"name": key}]}, headers=echo)
    body = seen.body.decode()
    scenario = next(s for s in sorted(SCENARIOS, key=len, reverse=True) if f"[{s}]" in body)
    streamed = '"stream": true' in body or '"stream":true' in body or "alt=sse" in seen.path
    error = {"error": {"message": f"Incorrect API key provided: {key}", "key": key}}
    if scenario.startswith("status-"):
        code = int(scenario.split("-")[1])
        if scenario.endswith("html"):
            return Reply(code, body=f"<html><p>key={key}</p></html>".encode(), headers=echo)
        return Reply(code, error, headers={**echo, "retry-after": "0"})
    if scenario == "error-event" and streamed:
        event = json.loads(case.error_event)
        event["error"]["message"] = f"stream failed for {key}"
        return Reply(events=[*case.unfinished, json.dumps(event)], headers=echo)
    if scenario == "unreadable-line" and streamed:
        return Reply(events=[*case.unfinished, f'{{"oops": "{key}"'], headers=echo)
    if scenario in ("wrong-shape", "error-event", "unreadable-line"):
        return Reply(json={"choices": 5, "candidates": key, "content": [key]}, headers=echo)
    if scenario == "usage-key":
        raw = json.dumps(case.ok).replace("10", json.dumps(key), 1)
        events = [e.replace("10", json.dumps(key), 1) for e in case.events]
        return Reply(events=events) if streamed else Reply(body=raw.encode(), headers=echo)
    if scenario == "inflated-usage":
        raw = json.dumps(case.ok).replace("10", "100000", 1)
        events = [e.replace("10", "100000", 1) for e in case.events]
        return Reply(events=events) if streamed else Reply(body=raw.encode(), headers=echo)
    said = f"Sure: your key is {key}, and again:{key}."
    if not streamed:
        return Reply(json=json.loads(replace_text(json.dumps(case.ok), "Hello there", said)))
    pieces = [said[i : i + 3] for i in range(0, len(said), 3)] if "split" in scenario else [said]
    template = next(e for e in case.events if '"Hel"' in e)
    start = case.events.index(template)
    texts = [replace_text(template, "Hel", piece) for piece in pieces]
    rest = [e for e in case.events[start + 1 :] if '"lo"' not in e]
    return Reply(events=[*case.events[:start], *texts, *rest], headers=echo)


def model_entries(url: str) -> list[dict[str, Any]]:
    def entry(provider: str, case: Case) -> dict[str, Any]:
        return {
            "kind": "cloud",
            "id": f"{provider}-m",
            "provider": provider,
            "model": "model-x",
            "base_url": url + case.path,
            "input_price": 1,
            "output_price": 2,
        }

    return [entry(provider, case) for provider, case in DIALECT.items()]


class Run:
    """Everything geri printed or sent, gathered for the scan."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.outputs: list[tuple[str, str]] = []
        self.commands = 0
        self.env = {**os.environ, "GERI_HOME": str(home)}
        for provider, key in KEYS.items():
            for name in (f"GERI_{provider.upper()}_API_KEY", *key_env_names()[provider]):
                self.env[name] = key

    def geri(self, *args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "geri", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        self.commands += 1
        self.outputs.append((" ".join(args), proc.stdout + proc.stderr))
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc


def settings(url: str, log_format: str) -> dict[str, Any]:
    notify = 'env > "$GERI_HOME/notice-env.txt"; cat >> "$GERI_HOME/notices.txt"'
    return {
        "models": model_entries(url),
        "default_model": "openai-m",
        "cache": {"enabled": True},
        "fallback": {"enabled": False},
        "network": {"max_attempts": 2, "backoff_base": 0},
        "logging": {"level": "DEBUG", "console_level": "DEBUG", "format": log_format},
        "notifications": {"command": ["sh", "-c", notify], "webhook": f"{url}/hook"},
        "peers": [{"name": "peer", "url": f"{url}/v1", "kind": "openai_compatible"}],
    }


@pytest.fixture
def upstream() -> Iterator[MockServer]:
    with MockServer() as server:
        server.default = lambda seen: (
            Reply(json={"ok": True}) if seen.path == "/hook" else hostile_reply(seen)
        )
        yield server


def write_settings(home: Path, data: dict[str, Any]) -> None:
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "settings.json").write_text(json.dumps(data))


def cli_round(run: Run) -> None:
    for provider in KEYS:
        for scenario in SCENARIOS:
            run.geri("ask", f"[{scenario}] hello", "-m", f"{provider}-m")
            if scenario in WHOLE_REPLIES:  # (an error reads the same streamed or not)
                run.geri("ask", f"[{scenario}] hello", "-m", f"{provider}-m", "--no-stream")
        run.geri("ask", "[answer] hello", "-m", f"{provider}-m", "--json")
        run.geri("ask", "[answer] hello", "-m", f"{provider}-m", "--json")  # from the cache
    for command in (
        ("logs",),
        ("logs", "--json"),
        ("stats",),
        ("stats", "--json"),
        ("keys", "list"),
        ("keys", "list", "--json"),
        ("config", "show"),
        ("models", "list"),
        ("models", "discover"),
        ("cache", "stats"),
        ("budget", "status"),
    ):
        run.geri(*command)


async def grpc_round(target: str, found: list[str]) -> int:
    """Every scenario over raw gRPC, streamed and not; details and metadata are gathered."""
    calls = 0
    async with grpc.aio.insecure_channel(target) as channel:
        stub = wolf_pb2_grpc.WolfServiceStub(channel)
        for provider in KEYS:
            for scenario in SCENARIOS:
                request = pb.WolfRequest(prompt=f"[{scenario}] hi", model=f"{provider}-m")
                for streamed in (False, True):
                    calls += 1
                    call: Any = (
                        stub.StreamPrompt(request, timeout=60)
                        if streamed
                        else stub.ProcessPrompt(request, timeout=60)
                    )
                    try:
                        if streamed:
                            found.extend([str(reply) async for reply in call])
                        else:
                            found.append(str(await call))
                    except grpc.aio.AioRpcError as exc:
                        found.append(f"{exc.code()} {exc.details()}")
                        found.append(repr(exc.trailing_metadata()))
                    found.append(repr(await call.initial_metadata()))
                    found.append(repr(await call.trailing_metadata()))
    return calls


def daemon_round(run: Run, found: list[str], output: Path) -> None:
    with open(output, "wb") as sink:  # a file, not a pipe nobody reads while it runs
        proc = subprocess.Popen(
            [sys.executable, "-m", "geri", "daemon", "--port", "0"],
            env=run.env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        state = run.home / "data" / "daemon.json"
        deadline = time.monotonic() + 60
        while not state.exists():
            assert proc.poll() is None, output.read_text()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        target = json.loads(state.read_text())["address"]
        run.commands += asyncio.run(grpc_round(target, found))
        for provider in KEYS:  # the CLI in client mode, through the daemon
            for scenario in ("answer-split", "error-event", "status-401", "usage-key"):
                run.geri("ask", f"[{scenario}] via daemon", "-m", f"{provider}-m")
        run.geri("stats", "--json")
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        run.outputs.append(("daemon", output.read_text(errors="replace")))


def test_no_key_surfaces_anywhere(upstream: MockServer, geri_home: Path, tmp_path: Path) -> None:
    run = Run(geri_home)
    write_settings(geri_home, settings(upstream.url, "human"))
    cli_round(run)
    write_settings(geri_home, settings(upstream.url, "json"))
    found: list[str] = []
    daemon_round(run, found, tmp_path / "daemon-output.txt")

    places: dict[str, bytes] = {
        f"output of geri {name}": text.encode() for name, text in run.outputs
    }
    places["gRPC replies, details and metadata"] = "\n".join(found).encode()
    for path in geri_home.rglob("*"):
        if path.is_file() and path.name != "test-keyring.json":
            places[str(path.relative_to(geri_home))] = path.read_bytes()
    for n, seen in enumerate(upstream.requests):  # sent anywhere but its own key header
        headers = {k: v for k, v in seen.headers.items() if k not in KEY_HEADERS}
        places[f"request {n} to {seen.path}"] = (seen.path + repr(headers)).encode() + seen.body

    leaks = [
        (where, piece)
        for where, data in places.items()
        for key in KEYS.values()
        for piece in slices(key)
        if piece.encode() in data
    ]
    # the scan saw what it should: every file kind, and the hostile upstream really was hostile
    names = {Path(p).name for p in places}
    assert {"geri.db", "geri.log", "notice-env.txt", "notices.txt"} <= names, names
    assert any(name.endswith("-wal") for name in names) or "geri.db" in names
    webhooks = [s for s in upstream.requests if s.path == "/hook"]
    assert webhooks  # the inflated usage raised notices, delivered
    assert run.commands >= 250
    print(f"canary: {len(leaks)} occurrences over {run.commands} commands and calls")
    assert leaks == [], leaks[:10]


KEY_HEADERS = {"authorization", "x-api-key", "x-goog-api-key"}
