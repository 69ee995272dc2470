"""The daemon's OpenAI-compatible HTTP API, driven by the official `openai` client.

A real daemon process serves the real SmolLM2 test model (and a mock cloud model for the
error paths) on loopback; the client is the one users have: `openai.OpenAI(base_url=...)`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.daemon.httpd import http_daemon, request_log
from tests.mockserver import MockServer, Reply

TOKEN = "http-test-token-123"


@pytest.fixture(scope="module")
def served(smollm_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("http-daemon")
    with MockServer() as cloud:
        cloud.default = Reply(
            429, {"error": {"message": "slow down"}}, headers={"retry-after": "7"}
        )
        settings = {
            "models": [
                {"kind": "local", "id": "smol", "path": str(smollm_path)},
                {
                    "kind": "cloud",
                    "id": "busy-cloud",
                    "provider": "openai",
                    "model": "gpt-x",
                    "base_url": f"{cloud.url}/v1",
                },
            ],
            "default_model": "smol",
            "fallback": {"enabled": False},
            "network": {"max_attempts": 1},
        }
        with http_daemon(home, settings, {"OPENAI_API_KEY": "sk-test-0000000000000000"}) as base:
            HOMES[base] = home
            yield base


HOMES: dict[str, Path] = {}


def logs(base: str) -> list[dict[str, Any]]:
    return request_log(HOMES[base])


def client(base: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base, api_key="unused-on-loopback", max_retries=0)


def test_a_chat_completion(served: str) -> None:
    reply = client(served).chat.completions.create(
        model="smol",
        messages=[
            {"role": "system", "content": "Answer in one word."},
            {"role": "user", "content": "What colour is the sky on a clear day?"},
        ],
        max_tokens=8,
        temperature=0,
        seed=1,
    )
    choice = reply.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert reply.usage is not None
    assert reply.usage.prompt_tokens > 5
    assert 0 < reply.usage.completion_tokens <= 8
    assert reply.model == "smol"


def test_a_streamed_completion_with_usage_matches_the_whole_one(served: str) -> None:
    ask: Any = {
        "model": "smol",
        "messages": [{"role": "user", "content": "Count from one to five."}],
        "max_tokens": 16,
        "temperature": 0,
        "seed": 3,
    }
    whole = client(served).chat.completions.create(**ask)
    chunks = list(
        client(served).chat.completions.create(
            **ask, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == [whole.choices[0].finish_reason]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens  # type: ignore[union-attr]


def test_a_conversation_history_reaches_the_model_in_order(served: str) -> None:
    turns = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Hello Ada!"},
        {"role": "user", "content": "What is my name?"},
    ]
    raw = client(served).chat.completions.with_raw_response.create(
        model="smol",
        messages=turns,  # type: ignore[arg-type]
        max_tokens=4,
        temperature=0,
    )
    trace = raw.headers["x-geri-trace-id"]
    logged = [r for r in logs(served) if r["trace_id"] == trace]
    assert [(m["role"], m["content"]) for m in logged[0]["prompt"]] == [
        (t["role"], t["content"]) for t in turns
    ]


def test_models_list(served: str) -> None:
    ids = {m.id for m in client(served).models.list()}
    assert {"smol", "busy-cloud"} <= ids


def test_errors_have_openais_shape_and_status(served: str) -> None:
    api = client(served)
    with pytest.raises(openai.NotFoundError) as missing:
        api.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
    assert "Unknown model" in str(missing.value)
    with pytest.raises(openai.BadRequestError):
        api.chat.completions.create(model="smol", messages=[])
    with pytest.raises(openai.BadRequestError, match="temperature"):
        api.chat.completions.create(
            model="smol", messages=[{"role": "user", "content": "hi"}], temperature=9
        )
    with pytest.raises(openai.RateLimitError) as limited:
        api.chat.completions.create(
            model="busy-cloud", messages=[{"role": "user", "content": "hi"}]
        )
    assert limited.value.response.headers["retry-after"] == "7"
    big = httpx.post(f"{served}/chat/completions", content=b"x" * (65 * 2**20))
    assert big.status_code == 413


def test_a_body_nested_too_deeply_is_bad_json_not_a_server_error(served: str) -> None:
    deep = b'{"messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    reply = httpx.post(
        f"{served}/chat/completions", content=deep, headers={"content-type": "application/json"}
    )
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "invalid_json"


def test_a_lone_surrogate_in_a_message_is_answered_not_a_server_error(served: str) -> None:
    """`"\\ud800"` is valid JSON but no character; it reads as U+FFFD."""
    body = b'{"model": "smol", "max_tokens": 4, "messages": [{"role": "user", "content": '
    body += b'"Say \\ud800 hi"}]}'
    reply = httpx.post(
        f"{served}/chat/completions", content=body, headers={"content-type": "application/json"}
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["message"]["content"]


def test_health_and_metrics(served: str) -> None:
    root = served.removesuffix("/v1")
    assert httpx.get(f"{root}/healthz").text == "ok\n"
    assert "geri_requests_total" in httpx.get(f"{root}/metrics").text


def test_geri_headers_say_cost_cache_and_trace(served: str) -> None:
    raw = client(served).chat.completions.with_raw_response.create(
        model="smol",
        messages=[{"role": "user", "content": "Say yes."}],
        max_tokens=4,
        extra_headers={"x-geri-trace-id": "trace-abc-123"},
    )
    assert raw.headers["x-geri-trace-id"] == "trace-abc-123"
    assert raw.headers["x-geri-cache"] in ("hit", "miss")
    assert float(raw.headers["x-geri-cost-usd"]) == 0.0  # a local model
    assert raw.parse().x_geri["trace_id"] == "trace-abc-123"  # type: ignore[attr-defined]


def test_a_client_that_disconnects_cancels_its_generation(served: str) -> None:
    body = {
        "model": "smol",
        "messages": [{"role": "user", "content": "Write a very long story about a lighthouse."}],
        "max_tokens": 400,
        "stream": True,
        "seed": 99,
        "temperature": 1.0,
    }
    headers = {"x-geri-trace-id": "disconnect-test-1"}
    with httpx.stream("POST", f"{served}/chat/completions", json=body, headers=headers) as reply:
        for line in reply.iter_lines():  # the first piece of text, then hang up
            if '"delta": {"content": "' in line and '"content": ""' not in line:
                break
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = [r for r in logs(served) if r["trace_id"] == "disconnect-test-1"]
        if rows:
            break
        time.sleep(0.2)
    assert [r["status"] for r in rows] == ["cancelled"]
    assert rows[0]["output_tokens"] < 400


def test_a_client_that_gives_up_on_a_whole_answer_cancels_it(served: str) -> None:
    """A non-streamed call writes nothing until it is done, so only the daemon watching the
    connection notices a client that timed out; the official SDKs then retry, and each
    abandoned answer would otherwise run to the end, holding the model."""
    body = {
        "model": "smol",
        "messages": [{"role": "user", "content": "Write a very long story about a lighthouse."}],
        "max_tokens": 1500,
        "temperature": 0,
    }
    headers = {"x-geri-trace-id": "gave-up-on-whole-1"}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{served}/chat/completions", json=body, headers=headers, timeout=1.5)
    deadline = time.monotonic() + 30
    rows: list[dict[str, Any]] = []
    while not rows and time.monotonic() < deadline:
        rows = [r for r in logs(served) if r["trace_id"] == "gave-up-on-whole-1"]
        time.sleep(0.2)
    assert [r["status"] for r in rows] == ["cancelled"]
    assert rows[0]["output_tokens"] < 1500


def test_structured_output_with_response_format(served: str) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 30}, "sunny": {"type": "boolean"}},
        "required": ["city", "sunny"],
        "additionalProperties": False,
    }
    reply = client(served).chat.completions.create(
        model="smol",
        messages=[{"role": "user", "content": "Name a city and whether it is sunny there."}],
        max_tokens=60,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "weather", "schema": schema},
        },
    )
    answer = json.loads(reply.choices[0].message.content or "")
    assert set(answer) == {"city", "sunny"}
    assert isinstance(answer["sunny"], bool)
    with pytest.raises(openai.BadRequestError, match="not a valid JSON Schema"):
        client(served).chat.completions.create(
            model="smol",
            messages=[{"role": "user", "content": "x"}],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "bad", "schema": {"type": 5}},
            },
        )


def test_langchains_chat_openai_works_against_the_daemon(served: str) -> None:
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(
        base_url=served, api_key="unused-on-loopback", model="smol", max_tokens=8, max_retries=0
    )
    reply = chat.invoke("Say hello.")
    assert isinstance(reply.content, str)
    assert reply.content
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["output_tokens"] > 0
    streamed = "".join(str(part.content) for part in chat.stream("Say hello."))
    assert streamed
