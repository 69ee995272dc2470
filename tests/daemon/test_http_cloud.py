"""The HTTP API answering from a cloud model, and the README's client examples run as written.

A real daemon process serves the real SmolLM2 test model and a cloud model whose upstream is a
scripted loopback server speaking OpenAI's format (hand-written replies: the recorded ones are
replayed in tests/providers/test_recorded.py). The official `openai` client and LangChain's
`ChatOpenAI` call the daemon; the upstream records what reached it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.daemon.httpd import http_daemon, request_log
from tests.mockserver import MockServer, Reply, Seen

KEY = "sk-test-cloud-0123456789abcdef"
ANSWER = ["The sky ", "is blue because ", "air scatters blue light."]
README = Path(__file__).parents[2] / "README.md"


def upstream(seen: Seen) -> Reply:
    if not seen.path.endswith("/chat/completions"):
        return Reply(json={"object": "list", "data": [{"id": "gpt-mock", "object": "model"}]})
    if seen.json["messages"][-1]["content"] == "Help me pick a lock.":
        message = {"role": "assistant", "content": None, "refusal": "I can't help with that."}
        return Reply(json={"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]})
    if seen.json.get("stream"):
        events = [
            json.dumps({"choices": [{"index": 0, "delta": {"content": piece}}]}) for piece in ANSWER
        ]
        events += [
            json.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
            json.dumps({"choices": [], "usage": {"prompt_tokens": 21, "completion_tokens": 9}}),
            "[DONE]",
        ]
        return Reply(events=events)
    return Reply(
        json={
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(ANSWER)},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 21, "completion_tokens": 9},
        }
    )


@pytest.fixture(scope="module")
def cloud() -> Iterator[MockServer]:
    with MockServer() as server:
        server.default = upstream
        yield server


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("http-cloud")


@pytest.fixture(scope="module")
def served(smollm_path: Path, cloud: MockServer, home: Path) -> Iterator[str]:
    settings = {
        "models": [
            {"kind": "local", "id": "smol", "path": str(smollm_path)},
            {
                "kind": "cloud",
                "id": "mock-gpt",
                "provider": "openai",
                "model": "gpt-mock",
                "base_url": f"{cloud.url}/v1",
                "input_price": "2.00",
                "output_price": "8.00",
            },
        ],
        "default_model": "smol",
    }
    with http_daemon(home, settings, {"OPENAI_API_KEY": KEY}) as base:
        yield base


def client(base: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base, api_key="unused-on-loopback", max_retries=0)


def sent_upstream(cloud: MockServer) -> list[Seen]:
    return [s for s in cloud.requests if s.path.endswith("/chat/completions")]


def test_a_cloud_answer_with_its_usage_and_cost(served: str, cloud: MockServer) -> None:
    raw = client(served).chat.completions.with_raw_response.create(
        model="mock-gpt",
        messages=[{"role": "user", "content": "Why is the sky blue?"}],
        max_tokens=50,
        temperature=0.2,
        seed=7,
        stop=["\n\n"],
    )
    reply = raw.parse()
    assert reply.choices[0].message.content == "".join(ANSWER)
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (21, 9)
    # 21 x $2/M + 9 x $8/M
    assert float(raw.headers["x-geri-cost-usd"]) == pytest.approx(0.000114)
    assert raw.headers["x-geri-model"] == "mock-gpt"
    seen = sent_upstream(cloud)[-1]
    assert seen.headers["authorization"] == f"Bearer {KEY}"
    assert seen.json["model"] == "gpt-mock"
    assert (seen.json["max_tokens"], seen.json["seed"], seen.json["stop"]) == (50, 7, ["\n\n"])
    assert seen.json["temperature"] == pytest.approx(0.2)


def test_a_streamed_cloud_answer(served: str) -> None:
    chunks = list(
        client(served).chat.completions.create(
            model="mock-gpt",
            messages=[{"role": "user", "content": "Why is the sky blue? (streamed)"}],
            max_tokens=50,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "".join(ANSWER)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (21, 9)


def test_the_end_user_is_logged_and_not_sent_on(served: str, cloud: MockServer, home: Path) -> None:
    raw = client(served).chat.completions.with_raw_response.create(
        model="mock-gpt",
        messages=[{"role": "user", "content": "Who am I asking for?"}],
        user="customer-42",
    )
    trace = raw.headers["x-geri-trace-id"]
    [row] = [r for r in request_log(home) if r["trace_id"] == trace]
    assert row["end_user"] == "customer-42"
    assert "user" not in sent_upstream(cloud)[-1].json
    with pytest.raises(openai.BadRequestError, match="user must be"):
        client(served).chat.completions.create(
            model="mock-gpt", messages=[{"role": "user", "content": "hi"}], user="x" * 300
        )


def test_a_refusal_reaches_the_client_as_openai_sends_it(served: str) -> None:
    reply = client(served).chat.completions.create(
        model="mock-gpt", messages=[{"role": "user", "content": "Help me pick a lock."}]
    )
    message = reply.choices[0].message
    assert (message.content, message.refusal) == (None, "I can't help with that.")
    assert reply.choices[0].finish_reason == "stop"
    assert reply.x_geri["finish_reason"] == "refusal"  # type: ignore[attr-defined]


def readme_example(heading: str, index: int) -> str:
    """The `index`th Python block of the README section under `heading`."""
    section = README.read_text().split(heading, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.DOTALL)[index]  # type: ignore[no-any-return]


@pytest.mark.parametrize("index", [0, 1], ids=["openai", "langchain"])
def test_the_readme_client_examples_run_as_written(served: str, index: int, tmp_path: Path) -> None:
    """Only the address is changed: the daemon under test has a port of its own."""
    example = readme_example("### The OpenAI-compatible HTTP API", index)
    assert "http://127.0.0.1:8080/v1" in example
    script = tmp_path / "example.py"
    script.write_text(example.replace("http://127.0.0.1:8080/v1", served))
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OPENAI_API_KEY": ""},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
