"""Each cloud provider against a real HTTP server on 127.0.0.1, through the real engine.

Success, streaming, a refused key, a 429 then success, 5xx until the retries run out, an error
event mid-stream, a connection cut mid-stream, a stream that ends early, and timeouts.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from geri.engine import Engine
from geri.errors import (
    AuthError,
    BadRequest,
    IncompleteAnswer,
    MalformedReply,
    MissingKey,
    ProviderTimeout,
    Unavailable,
)
from geri.keys import KeyStore
from geri.settings import CloudModel, Network, Settings
from geri.specs import key_env_names
from geri.store import open_store
from geri.types import Request
from tests.mockserver import MockServer, Reply

KEY = "sk-test-0123456789abcdefXYZ"


@dataclass(frozen=True)
class Case:
    provider: str
    path: str  # base_url suffix
    key_header: str
    key_value: str
    ok: dict[str, Any]  # non-streamed answer: "Hello there" with usage 10 / 2
    events: list[str]  # streamed answer: "Hel" + "lo" with usage 10 / 2
    error_event: str  # a mid-stream error the provider can send after the 200
    unfinished: list[str]  # events without the end marker


CASES = [
    Case(
        "openai",
        "/v1",
        "authorization",
        f"Bearer {KEY}",
        {
            "choices": [{"message": {"content": "Hello there"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 2},
        },
        [
            '{"choices":[{"delta":{"content":"Hel"}}]}',
            '{"choices":[{"delta":{"content":"lo"}}]}',
            '{"choices":[{"delta":{},"finish_reason":"stop"}]}',
            '{"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":2}}',
            "[DONE]",
        ],
        '{"error":{"message":"The server had an error","type":"server_error"}}',
        ['{"choices":[{"delta":{"content":"Hel"}}]}', '{"choices":[{"delta":{"content":"lo"}}]}'],
    ),
    Case(
        "anthropic",
        "",
        "x-api-key",
        KEY,
        {
            "content": [{"type": "text", "text": "Hello there"}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 10, "output_tokens": 2},
        },
        [
            '{"type":"message_start","message":{"usage":{"input_tokens":10,"output_tokens":1}}}',
            '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}',
            '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"lo"}}',
            '{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}',
            '{"type":"message_stop"}',
        ],
        '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
        [
            '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}',
            '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"lo"}}',
        ],
    ),
    Case(
        "google",
        "",
        "x-goog-api-key",
        KEY,
        {
            "candidates": [
                {"content": {"parts": [{"text": "Hello there"}]}, "finishReason": "STOP"}
            ],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 2},
        },
        [
            '{"candidates":[{"content":{"parts":[{"text":"Hel"}]}}]}',
            '{"candidates":[{"content":{"parts":[{"text":"lo"}]},"finishReason":"STOP"}],'
            '"usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":2}}',
        ],
        '{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}',
        ['{"candidates":[{"content":{"parts":[{"text":"Hel"}]}}]}'],
    ),
]


def text_first(case: Case) -> list[str]:
    """The streamed events, starting with the first that carries text."""
    return [e for e in case.events if "message_start" not in e]


@pytest.fixture(params=CASES, ids=[c.provider for c in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def server() -> Iterator[MockServer]:
    with MockServer() as srv:
        yield srv


class Rig:
    def __init__(self, engine: Engine, slept: list[float]) -> None:
        self.engine, self.slept = engine, slept

    async def ask(self) -> str:
        return (await self.engine.ask(Request("Say hello", model="m", max_tokens=16))).text

    async def stream(self, shown: list[str]) -> str:
        async for chunk in self.engine.stream(Request("Say hello", model="m", max_tokens=16)):
            shown.append(chunk.text)
        return "".join(shown)


def make_rig(
    case: Case, server: MockServer, tmp_path: Path, key: str | None = KEY, **network: float
) -> Rig:
    settings = Settings(
        models=(
            CloudModel(
                kind="cloud",
                id="m",
                provider=case.provider,
                model="model-x",
                base_url=server.url + case.path,
                input_price=1,
                output_price=2,
            ),
        ),
        network=Network(**network),  # type: ignore[arg-type]
    )
    env = {key_env_names()[case.provider][0]: key} if key else {}
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    engine = Engine(
        settings,
        open_store(tmp_path / "g.db"),
        keys=KeyStore(key_env_names(), env, backend=_NoKeyring()),
        sleep=sleep,
        jitter=lambda: 0.0,
    )
    return Rig(engine, slept)


class _NoKeyring:
    def get_password(self, service: str, username: str) -> None:
        return None


@pytest.fixture
async def rig(case: Case, server: MockServer, tmp_path: Path) -> AsyncIterator[Rig]:
    r = make_rig(case, server, tmp_path)
    yield r
    await r.engine.aclose()


async def test_success_sends_the_key_in_its_header(
    case: Case, server: MockServer, rig: Rig
) -> None:
    server.add(Reply(json=case.ok))
    result = await rig.engine.ask(Request("Say hello", model="m", max_tokens=16))
    assert result.text == "Hello there"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (10, 2)
    assert result.cost_micros == 14  # 10 x $1/M + 2 x $2/M
    [seen] = server.requests
    assert seen.headers[case.key_header] == case.key_value
    assert KEY not in seen.path  # never in the URL
    assert seen.json["generationConfig" if case.provider == "google" else "max_tokens"]


async def test_streaming(case: Case, server: MockServer, rig: Rig) -> None:
    server.add(Reply(events=case.events))
    chunks = [c async for c in rig.engine.stream(Request("Say hello", model="m"))]
    assert [c.text for c in chunks if c.text] == ["Hel", "lo"]
    result = chunks[-1].result
    assert result is not None
    assert result.text == "Hello"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (10, 2)
    assert result.finish_reason == "stop"
    if case.provider == "google":
        assert server.requests[0].path.endswith(":streamGenerateContent?alt=sse")


async def test_a_refused_key_fails_at_once_with_the_fix(
    case: Case, server: MockServer, rig: Rig
) -> None:
    server.add(Reply(401, {"error": {"message": "invalid x-api-key"}}))
    with pytest.raises(AuthError, match=f"geri keys set {case.provider}"):
        await rig.ask()
    assert len(server.requests) == 1


async def test_rate_limited_then_success(case: Case, server: MockServer, rig: Rig) -> None:
    server.add(Reply(429, {"error": {"message": "slow down"}}, headers={"retry-after": "2"}))
    server.add(Reply(json=case.ok))
    assert await rig.ask() == "Hello there"
    assert rig.slept == [2.0]
    assert len(server.requests) == 2


async def test_server_errors_until_the_retries_run_out(
    case: Case, server: MockServer, rig: Rig
) -> None:
    server.default = Reply(500, {"error": {"message": "internal error"}})
    with pytest.raises(Unavailable, match="500"):
        await rig.ask()
    assert len(server.requests) == 4
    assert len(rig.slept) == 3


async def test_overloaded_529_is_retried(case: Case, server: MockServer, rig: Rig) -> None:
    server.add(Reply(529, {"error": {"message": "overloaded"}}), Reply(json=case.ok))
    assert await rig.ask() == "Hello there"


async def test_an_error_event_mid_stream_marks_the_answer_incomplete(
    case: Case, server: MockServer, rig: Rig
) -> None:
    server.add(Reply(events=[text_first(case)[0], case.error_event]))
    shown: list[str] = []
    with pytest.raises(IncompleteAnswer, match="incomplete") as err:
        await rig.stream(shown)
    assert shown == ["Hel"]
    assert err.value.partial == "Hel"
    assert len(server.requests) == 1  # never retried: that would repeat what was shown


async def test_a_connection_cut_mid_stream_marks_the_answer_incomplete(
    case: Case, server: MockServer, rig: Rig
) -> None:
    server.add(Reply(events=case.events, cut_after=len(case.events) - 1))
    shown: list[str] = []
    with pytest.raises(IncompleteAnswer):
        await rig.stream(shown)
    assert "".join(shown) in {"Hel", "Hello"}
    assert len(server.requests) == 1


async def test_a_stream_that_ends_without_its_end_marker_is_not_an_answer(
    case: Case, server: MockServer, rig: Rig
) -> None:
    server.add(Reply(events=case.unfinished))
    with pytest.raises(IncompleteAnswer, match="before the answer was complete"):
        await rig.stream([])


async def test_a_stream_failing_before_any_text_is_retried(
    case: Case, server: MockServer, rig: Rig
) -> None:
    server.add(Reply(503, {"error": {"message": "unavailable"}}), Reply(events=case.events))
    assert await rig.stream([]) == "Hello"
    assert len(server.requests) == 2


async def test_a_silent_server_times_out(case: Case, server: MockServer, tmp_path: Path) -> None:
    rig = make_rig(case, server, tmp_path, read_timeout=0.3, max_attempts=2)
    server.default = Reply(json=case.ok, delay=1.0)
    with pytest.raises(ProviderTimeout, match=r"did not answer for 0\.3 s"):
        await rig.ask()
    assert len(server.requests) == 2
    await rig.engine.aclose()


async def test_a_stream_that_goes_quiet_times_out(
    case: Case, server: MockServer, tmp_path: Path
) -> None:
    rig = make_rig(case, server, tmp_path, stream_idle_timeout=0.3)
    server.add(Reply(events=text_first(case), event_delay=1.0))
    shown: list[str] = []
    with pytest.raises(IncompleteAnswer, match="went quiet mid-stream"):
        await rig.stream(shown)
    assert shown
    await rig.engine.aclose()


async def test_an_unreachable_provider_is_a_clear_error(case: Case, tmp_path: Path) -> None:
    with MockServer() as gone:
        pass  # started and stopped: nothing listens on its port any more
    rig = make_rig(case, gone, tmp_path, max_attempts=2)
    with pytest.raises(Unavailable, match="Cannot reach"):
        await rig.ask()
    await rig.engine.aclose()


async def test_no_key_no_request(case: Case, server: MockServer, tmp_path: Path) -> None:
    rig = make_rig(case, server, tmp_path, key=None)
    with pytest.raises(MissingKey, match=f"geri keys set {case.provider}"):
        await rig.ask()
    assert server.requests == []
    [record] = rig.engine.store.recent_requests()
    assert record.status == "error"
    await rig.engine.aclose()


async def test_rotate_verify_uses_the_models_listing(
    case: Case, server: MockServer, rig: Rig
) -> None:
    server.add(Reply(json={"data": []}), Reply(401, {"error": {"message": "bad key"}}))
    await rig.engine.verify_key(case.provider, "new-key-1234567890")
    with pytest.raises(AuthError):
        await rig.engine.verify_key(case.provider, "wrong-key-1234567890")
    assert all(r.method == "GET" and "models" in r.path for r in server.requests)


def test_cases_cover_every_keyed_cloud_provider() -> None:
    assert {c.provider for c in CASES} == set(key_env_names()) - {"openai_compatible"}
    json.dumps([c.ok for c in CASES])


WRONG_SHAPES = [
    [1, 2],
    5,
    None,
    "text",
    {},
    {"choices": 5},
    {"choices": []},
    {"choices": [5]},
    {"choices": [{"message": 5}]},
    {"choices": [{"message": {"content": 5}}]},
    {"choices": [{"message": {"content": ["x"]}}]},
    {"choices": [{"message": {"content": "hi"}}], "usage": 5},
    {"choices": [{"message": {"content": "hi"}}], "usage": {"prompt_tokens": "abc"}},
    {"choices": [{"message": {"content": "hi"}}], "usage": {"prompt_tokens": -5}},
    {"choices": [{"message": {"content": "hi"}}], "usage": {"completion_tokens": 10**30}},
    {"choices": [{"message": {"content": "hi"}}], "usage": {"completion_tokens": 1e308}},
    {"choices": [{"message": {"content": f"hi {KEY}"}, "finish_reason": 5}]},
    {"choices": [{"message": None}], "echo": KEY},
]


@pytest.mark.parametrize("body", WRONG_SHAPES, ids=[str(n) for n in range(len(WRONG_SHAPES))])
async def test_valid_json_of_the_wrong_shape_is_a_clear_error_and_logged(
    server: MockServer, tmp_path: Path, body: object
) -> None:
    from geri.errors import GeriError

    rig = make_rig(CASES[0], server, tmp_path, max_attempts=1)
    raw = json.dumps(body).replace("1e+308", "1e400").encode()  # 1e400: beyond a float
    server.add(Reply(body=raw, headers={"content-type": "application/json"}))
    failure: GeriError | None = None
    try:
        answer = await rig.engine.ask(Request("Say hello", model="m", max_tokens=16))
    except GeriError as exc:
        failure = exc
    if failure is not None:
        assert "answered in a shape geri cannot read" in str(failure)
        assert KEY[:10] not in str(failure)  # redacted before the quote was cut
    else:  # a shape geri can read after all: the answer is a string
        assert isinstance(answer.text, str)
    [logged] = rig.engine.store.recent_requests()  # the upstream was called: one row
    assert logged.model == "m"
    await rig.engine.aclose()


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])
async def test_json_nested_too_deeply_is_an_unreadable_reply_not_a_crash(
    case: Case, server: MockServer, tmp_path: Path, streamed: bool
) -> None:
    """A few hundred kilobytes of brackets, whole or as a stream's event, take Python's JSON
    decoder past its recursion limit (a RecursionError, which no handler of bad JSON catches):
    geri treats it as any reply it cannot read: an error of its own, and a row in the log."""
    from geri.errors import GeriError

    rig = make_rig(case, server, tmp_path, max_attempts=1)
    deep = "[" * 100_000 + "]" * 100_000
    if streamed:
        server.add(Reply(events=[deep]))
    else:
        server.add(Reply(body=deep.encode(), headers={"content-type": "application/json"}))
    with pytest.raises(GeriError) as failure:
        if streamed:
            await rig.stream([])
        else:
            await rig.ask()
    assert not isinstance(failure.value, IncompleteAnswer)  # nothing was shown
    [logged] = rig.engine.store.recent_requests()
    assert logged.status == "error"
    await rig.engine.aclose()


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])
async def test_a_lone_surrogate_from_an_upstream_is_a_replacement_character(
    case: Case, server: MockServer, tmp_path: Path, streamed: bool
) -> None:
    """An upstream's `"\\ud800"` (valid JSON, no character) reaches the caller and the request
    log as U+FFFD, instead of failing wherever the text is first encoded."""
    rig = make_rig(case, server, tmp_path, max_attempts=1)
    hello = "Hello there" if not streamed else "Hel"
    if streamed:
        events = [e.replace('"Hel"', '"H\\ud800l"') for e in case.events]
        server.add(Reply(events=events))
        text = await rig.stream([])
    else:
        body = json.dumps(case.ok).replace(hello, "H\\ud800llo there").encode()
        server.add(Reply(body=body, headers={"content-type": "application/json"}))
        text = await rig.ask()
    assert text.startswith("H\ufffdl")
    [logged] = rig.engine.store.recent_requests()
    assert logged.status == "ok"
    assert logged.response == text
    await rig.engine.aclose()


async def test_a_stream_that_ignores_max_tokens_is_cut_off_by_geri(
    server: MockServer, tmp_path: Path
) -> None:
    rig = make_rig(CASES[0], server, tmp_path, max_attempts=1)
    endless = ['{"choices":[{"delta":{"content":"word "}}]}'] * 5000  # never a finish_reason
    server.add(Reply(events=endless))
    shown: list[str] = []
    result = None
    async for chunk in rig.engine.stream(Request("Say hello", model="m", max_tokens=16)):
        shown.append(chunk.text)
        result = chunk.result or result
    assert result is not None
    assert result.finish_reason == "length"
    assert len("".join(shown).split()) <= 2 * 16 + 16  # not 5000 words
    await rig.engine.aclose()


async def test_a_server_that_keeps_sending_slowly_meets_the_total_deadline(
    server: MockServer, tmp_path: Path
) -> None:
    from geri.errors import IncompleteAnswer

    rig = make_rig(CASES[0], server, tmp_path, max_attempts=1, total_timeout=1.0)
    slow = ['{"choices":[{"delta":{"content":"a"}}]}'] * 40
    server.add(Reply(events=slow, event_delay=0.1))  # each event in time, the whole too slow
    started = time.monotonic()
    # text was already shown, so the timeout ends it as a broken-off answer, not retried
    with pytest.raises(IncompleteAnswer, match=r"network\.total_timeout"):
        async for _ in rig.engine.stream(Request("Say hello", model="m", max_tokens=4000)):
            pass
    assert time.monotonic() - started < 3
    await rig.engine.aclose()


async def test_a_whole_answer_meets_the_total_deadline_too(
    server: MockServer, tmp_path: Path
) -> None:
    from geri.errors import ProviderTimeout

    rig = make_rig(CASES[0], server, tmp_path, max_attempts=1, total_timeout=0.5)
    server.add(Reply(json=CASES[0].ok, delay=2.0))  # within the read timeout, past the total
    with pytest.raises(ProviderTimeout, match=r"network\.total_timeout"):
        await rig.ask()
    await rig.engine.aclose()


async def test_an_empty_stream_from_a_compatible_server_is_a_context_error(
    server: MockServer, tmp_path: Path
) -> None:
    # hand-written: llama.cpp's server answers a streamed prompt longer than its context with a
    # 200 and an empty body (no recording of it exists in any SDK's test data)
    from geri.errors import ContextTooLong

    compatible = Case("openai_compatible", "/v1", "authorization", f"Bearer {KEY}", {}, [], "", [])
    rig = make_rig(compatible, server, tmp_path, key=None, max_attempts=3)
    empty = Reply(body=b"", headers={"content-type": "text/event-stream"})
    server.default = lambda seen: empty if seen.path.endswith("/chat/completions") else Reply(404)
    with pytest.raises(ContextTooLong, match="empty stream"):
        async for _ in rig.engine.stream(Request("Say hello", model="m", max_tokens=16)):
            pass
    sent = [s for s in server.requests if s.path.endswith("/chat/completions")]
    assert len(sent) == 1  # not retried
    await rig.engine.aclose()


async def test_the_session_honours_a_proxy_from_the_environment_only_when_one_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from geri.providers.http import make_session

    for name in (
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)
    plain = make_session(Network())
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    proxied = make_session(Network())
    try:
        assert not plain.trust_env
        assert proxied.trust_env
    finally:
        await plain.close()
        await proxied.close()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("streamed", [False, True])
async def test_a_redirect_is_not_followed_and_the_key_goes_nowhere_else(
    case: Case, server: MockServer, rig: Rig, status: int, streamed: bool
) -> None:
    # an upstream (or whatever answers at base_url) sends geri elsewhere: following it would
    # carry the prompt, and the key in any header but Authorization, to a host nobody chose
    with MockServer() as elsewhere:
        elsewhere.default = Reply(json=case.ok)
        location = f"{elsewhere.url}/collect?from=geri"
        server.add(Reply(status, {"moved": True}, headers={"location": location}))
        with pytest.raises(BadRequest) as failure:
            await (rig.stream([]) if streamed else rig.ask())
        assert elsewhere.requests == []
    message = str(failure.value)
    assert f"answered {status}, a redirect to {location}" in message
    assert "base_url" in message
    assert len(server.requests) == 1  # not retried: a redirect will not go away by itself
    [row] = rig.engine.store.recent_requests()
    assert row.status == "error"


async def test_a_key_check_is_not_redirected_either(
    case: Case, server: MockServer, rig: Rig
) -> None:
    with MockServer() as elsewhere:
        elsewhere.default = Reply(json={"data": []})
        server.add(Reply(307, {}, headers={"location": f"{elsewhere.url}/models"}))
        with pytest.raises(BadRequest, match="a redirect to"):
            await rig.engine.verify_key(case.provider, KEY)
        assert elsewhere.requests == []


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_compressed_bomb_is_cut_off_as_it_expands(
    server: MockServer, tmp_path: Path, streamed: bool
) -> None:
    # 256 MiB of zeros in 0.25 MB of gzip: aiohttp inflates it as it arrives, and the limits on
    # a reply and on a line apply to what it inflates to, not to the bytes on the wire
    squeeze = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = b"".join(squeeze.compress(bytes(2**24)) for _ in range(16)) + squeeze.flush()
    assert len(bomb) < 2**20
    kind = "text/event-stream" if streamed else "application/json"
    server.add(Reply(body=bomb, headers={"content-encoding": "gzip", "content-type": kind}))
    rig = make_rig(CASES[0], server, tmp_path, max_attempts=1)
    try:
        with pytest.raises(MalformedReply, match=r"more than 64 MB|one line passed"):
            await (rig.stream([]) if streamed else rig.ask())
    finally:
        await rig.engine.aclose()
