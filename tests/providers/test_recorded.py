"""Each provider against responses recorded in its official SDK's own test data.

The files under `tests/fixtures/recorded/` are copied byte for byte from openai-python,
anthropic-sdk-python and Google's shared Gemini SDK test data (the source of each is in
`SOURCES.md`). A loopback server replays them, and geri's whole HTTP path reads them: the SSE
reader, the translation, usage, finish reasons, refusals and safety blocks, and the request log.
Expected texts and figures are read from the recordings themselves, not restated by hand.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from geri.errors import AuthError
from geri.types import Request, Result
from tests.mockserver import MockServer, Reply
from tests.providers.test_cloud_http import CASES, Case, make_rig

RECORDED = Path(__file__).parent.parent / "fixtures" / "recorded"
OPENAI, ANTHROPIC, GOOGLE = CASES


def events(name: str) -> list[dict]:  # type: ignore[type-arg]
    """The JSON payloads of a recorded SSE file."""
    lines = (RECORDED / name).read_text().splitlines()
    payloads = [line[5:].strip() for line in lines if line.startswith("data:")]
    return [json.loads(p) for p in payloads if p != "[DONE]"]


def replay(server: MockServer, name: str, status: int = 200) -> None:
    kind = "text/event-stream" if name.endswith(".sse") else "application/json"
    server.add(Reply(status, body=(RECORDED / name).read_bytes(), headers={"content-type": kind}))


async def answer(case: Case, server: MockServer, tmp_path: Path, streamed: bool) -> Result:
    rig = make_rig(case, server, tmp_path, max_attempts=3, backoff_base=0)
    # the recorded calls sent prompts (and tools) of up to ~380 tokens and allowed long answers:
    # this one is as large, so the usage they report is within what geri sent and allowed
    request = Request("Say hello. " + "word " * 400, model="m", max_tokens=4096)
    try:
        if not streamed:
            return await rig.engine.ask(request)
        result = None
        async for chunk in rig.engine.stream(request):
            result = chunk.result or result
        assert result is not None
        return result
    finally:
        rows = rig.engine.store.recent_requests()
        await rig.engine.aclose()
        answer.rows = rows  # type: ignore[attr-defined]


@pytest.fixture
async def server() -> AsyncIterator[MockServer]:
    with MockServer() as srv:
        yield srv


def openai_text(name: str, field: str = "content") -> str:
    return "".join(
        (c.get("delta") or {}).get(field) or "" for e in events(name) for c in e["choices"]
    )


@pytest.mark.parametrize(
    ("name", "finish"),
    [
        ("stream-basic.sse", "stop"),
        ("stream-length.sse", "length"),
        ("stream-tool-calls.sse", "tool_calls"),
    ],
)
async def test_openai_recorded_streams(
    server: MockServer, tmp_path: Path, name: str, finish: str
) -> None:
    replay(server, f"openai/{name}")
    result = await answer(OPENAI, server, tmp_path, streamed=True)
    usage = events(f"openai/{name}")[-1]["usage"]
    assert result.text == openai_text(f"openai/{name}")
    assert result.finish_reason == finish
    assert (result.usage.input_tokens, result.usage.output_tokens) == (
        usage["prompt_tokens"],
        usage["completion_tokens"],
    )
    assert result.usage.reasoning_tokens == usage["completion_tokens_details"]["reasoning_tokens"]
    assert len(server.requests) == 1


async def test_an_openai_refusal_is_an_answer_not_an_empty_success(
    server: MockServer, tmp_path: Path
) -> None:
    replay(server, "openai/stream-refusal.sse")
    result = await answer(OPENAI, server, tmp_path, streamed=True)
    said = openai_text("openai/stream-refusal.sse", "refusal")
    assert said.startswith("I'm sorry")
    assert (result.text, result.finish_reason) == (said, "refusal")
    [row] = answer.rows  # type: ignore[attr-defined]
    assert (row.status, row.response) == ("refused", said)
    assert len(server.requests) == 1  # never retried


async def test_a_raw_line_separator_inside_a_recorded_stream_keeps_the_answer_whole(
    server: MockServer, tmp_path: Path
) -> None:
    # derived from the recording: U+2028, U+2029 and U+0085 put raw into two content strings
    body = (RECORDED / "openai/stream-basic.sse").read_text()
    body = body.replace('"San"', '"San\u2028"').replace('" Francisco"', '" Fran\u2029cis\x85co"')
    server.add(Reply(body=body.encode(), headers={"content-type": "text/event-stream"}))
    result = await answer(OPENAI, server, tmp_path, streamed=True)
    assert "San\u2028 Fran\u2029cis\x85co" in result.text
    assert result.finish_reason == "stop"


@pytest.mark.parametrize(
    ("name", "text", "finish", "status"),
    [
        ("basic_response.sse", "Hello there!", "stop", "ok"),
        ("refusal_response.sse", "", "refusal", "refused"),
        ("tool_use_response.sse", None, "tool_calls", "ok"),
    ],
)
async def test_anthropic_recorded_streams(
    server: MockServer,
    tmp_path: Path,
    name: str,
    text: str | None,
    finish: str,
    status: str,
) -> None:
    replay(server, f"anthropic/{name}")
    result = await answer(ANTHROPIC, server, tmp_path, streamed=True)
    recorded = events(f"anthropic/{name}")
    start = next(e for e in recorded if e["type"] == "message_start")["message"]["usage"]
    end = next(e for e in recorded if e["type"] == "message_delta")["usage"]
    if text is not None:
        assert result.text == text
    assert result.finish_reason == finish
    assert result.usage.input_tokens == start["input_tokens"]
    assert result.usage.output_tokens == max(end["output_tokens"], start["output_tokens"])
    [row] = answer.rows  # type: ignore[attr-defined]
    assert row.status == status
    assert len(server.requests) == 1


def gemini_text(name: str) -> str:
    return "".join(
        p.get("text", "")
        for e in events(name)
        for c in e.get("candidates") or []
        for p in (c.get("content") or {}).get("parts") or []
        if not p.get("thought")
    )


@pytest.mark.parametrize(
    "name",
    [
        "streaming-success-basic-reply-short.sse",
        "streaming-success-basic-reply-long.sse",
        "streaming-success-empty-parts.sse",
    ],
)
async def test_gemini_recorded_streams(server: MockServer, tmp_path: Path, name: str) -> None:
    replay(server, f"google/{name}")
    result = await answer(GOOGLE, server, tmp_path, streamed=True)
    assert result.text == gemini_text(f"google/{name}")
    assert result.finish_reason == "stop"


async def test_gemini_thinking_tokens_are_billed_as_output_and_shown_apart(
    server: MockServer, tmp_path: Path
) -> None:
    name = "google/streaming-success-thinking-reply-thought-summary.sse"
    replay(server, name)
    result = await answer(GOOGLE, server, tmp_path, streamed=True)
    usage = events(name)[-1]["usageMetadata"]
    assert result.usage.output_tokens == usage["candidatesTokenCount"] + usage["thoughtsTokenCount"]
    assert result.usage.reasoning_tokens == usage["thoughtsTokenCount"]
    assert result.as_dict()["usage"]["reasoning_tokens"] == usage["thoughtsTokenCount"]  # type: ignore[index]
    assert result.cost_micros == usage["promptTokenCount"] * 1 + result.usage.output_tokens * 2


@pytest.mark.parametrize(
    "name",
    ["streaming-failure-prompt-blocked-safety.sse", "streaming-failure-recitation-no-content.sse"],
)
async def test_gemini_safety_outcomes_are_answers_that_say_so_never_retried(
    server: MockServer, tmp_path: Path, name: str
) -> None:
    replay(server, f"google/{name}")
    result = await answer(GOOGLE, server, tmp_path, streamed=True)
    assert result.finish_reason == "content_filter"
    [row] = answer.rows  # type: ignore[attr-defined]
    assert row.status == "refused"
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("name", "finish"),
    [
        ("unary-success-basic-reply-short.json", "stop"),
        ("unary-success-thinking-reply-thought-summary.json", "stop"),
        ("unary-failure-finish-reason-safety.json", "content_filter"),
        ("unary-failure-only-prompt-feedback.json", "content_filter"),
    ],
)
async def test_gemini_recorded_replies(
    server: MockServer, tmp_path: Path, name: str, finish: str
) -> None:
    replay(server, f"google/{name}")
    result = await answer(GOOGLE, server, tmp_path, streamed=False)
    recorded = json.loads((RECORDED / "google" / name).read_text())
    assert result.finish_reason == finish
    usage = recorded.get("usageMetadata") or {}
    billed = usage.get("candidatesTokenCount", 0) + usage.get("thoughtsTokenCount", 0)
    if billed:
        assert result.usage.output_tokens == billed
    if "only-prompt-feedback" in name:
        assert result.text == recorded["promptFeedback"]["blockReasonMessage"]


async def test_a_gemini_key_error_is_a_key_error(server: MockServer, tmp_path: Path) -> None:
    replay(server, "google/unary-failure-api-key.json", status=400)
    with pytest.raises(AuthError, match="geri keys set google"):
        await answer(GOOGLE, server, tmp_path, streamed=False)
    assert len(server.requests) == 1


def test_the_cli_says_a_refusal_and_exits_3(
    geri_cli: Callable[..., CompletedProcess[str]], geri_home: Path
) -> None:
    with MockServer() as server:
        replay(server, "anthropic/refusal_response.sse")
        (geri_home / "config").mkdir(parents=True)
        model = {
            "kind": "cloud",
            "id": "claude",
            "provider": "anthropic",
            "model": "claude-x",
            "base_url": server.url,
        }
        (geri_home / "config" / "settings.json").write_text(json.dumps({"models": [model]}))
        done = geri_cli("ask", "-m", "claude", "hello", env={"ANTHROPIC_API_KEY": "sk-ant-t"})
    assert done.returncode == 3, done.stderr
    assert "declined to answer" in done.stderr
    assert "Traceback" not in done.stderr


def test_every_fixture_has_its_source_recorded() -> None:
    sources = (RECORDED / "SOURCES.md").read_text()
    files = sorted(p.relative_to(RECORDED).as_posix() for p in RECORDED.rglob("*.*"))
    assert [f for f in files if f != "SOURCES.md" and f"`{f}`" not in sources] == []
