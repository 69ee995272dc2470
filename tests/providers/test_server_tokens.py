"""An OpenAI-compatible server's own token count, where it offers one.

The three tokenize endpoints are served by a scripted loopback server in each server's shape
(hand-written: llama.cpp's `tools/server/README.md`, vLLM's `protocol.py`, and llama-cpp-python's
`llama_cpp/server/types.py` give the request and reply fields); the real llama_cpp.server case is
in test_llama_server_e2e.py. The counts are told apart from geri's estimate by making the server
count 1 token per character, far above any estimate.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from geri.engine import Engine
from geri.errors import QuestionTooLong
from geri.keys import KeyStore
from geri.prompt.tokens import estimate_tokens
from geri.settings import CloudModel, Settings
from geri.specs import key_env_names
from geri.store import open_store
from geri.types import Request, Result
from tests.mockserver import MockServer, Reply, Seen

ANSWER = "Paris is the capital of France."
STREAM = [  # as llama.cpp's server streams: no usage chunk
    json.dumps({"choices": [{"delta": {"content": "Paris is the capital"}}]}),
    json.dumps({"choices": [{"delta": {"content": " of France."}}]}),
    json.dumps({"choices": [{"delta": {}, "finish_reason": "stop"}]}),
    "[DONE]",
]


def llama_server(seen: Seen) -> Reply | None:
    if seen.path == "/tokenize" and "content" in seen.json:
        return Reply(json={"tokens": list(range(len(seen.json["content"])))})
    return None


def vllm(seen: Seen) -> Reply | None:
    if seen.path == "/tokenize" and "prompt" in seen.json and "content" not in seen.json:
        n = len(seen.json["prompt"])
        return Reply(json={"count": n, "max_model_len": 4096, "tokens": list(range(n))})
    if seen.path == "/tokenize":  # vLLM refuses llama.cpp's field
        return Reply(400, {"object": "error", "message": "prompt: Field required"})
    return None


def llama_cpp_python(seen: Seen) -> Reply | None:
    if seen.path == "/extras/tokenize/count":
        return Reply(json={"count": len(seen.json["input"])})
    return None


def no_tokenizer(seen: Seen) -> Reply | None:
    return None


SERVERS = {
    "llama-server": llama_server,
    "vllm": vllm,
    "llama_cpp.server": llama_cpp_python,
    "none": no_tokenizer,
}


@pytest.fixture(params=list(SERVERS))
def server(request: pytest.FixtureRequest) -> Iterator[MockServer]:
    tokenize = SERVERS[request.param]

    def reply(seen: Seen) -> Reply:
        if seen.path == "/v1/chat/completions":
            return Reply(events=STREAM)
        return tokenize(seen) or Reply(404, {"error": {"message": "File Not Found"}})

    with MockServer() as srv:
        srv.default = reply
        yield srv


class _NoKeyring:
    def get_password(self, service: str, username: str) -> None:
        return None


def engine(server: MockServer, tmp_path: Path, **model: Any) -> Engine:
    settings = Settings(
        models=(
            CloudModel(
                kind="cloud",
                id="lan",
                provider="openai_compatible",
                model="served",
                base_url=server.url + "/v1",
                **model,
            ),
        ),
    )
    keys = KeyStore(key_env_names(), {}, backend=_NoKeyring())
    return Engine(settings, open_store(tmp_path / "g.db"), keys=keys)


async def streamed(geri: Engine, request: Request) -> Result:
    async for chunk in geri.stream(request):
        if chunk.done:
            assert chunk.result is not None
            return chunk.result
    raise AssertionError("the stream ended without its result")


def tokenize_calls(server: MockServer) -> list[Seen]:
    return [s for s in server.requests if s.path != "/v1/chat/completions"]


async def test_a_stream_without_usage_is_counted_by_the_server_and_marked_estimated(
    server: MockServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    kind = request.node.callspec.params["server"]
    question = "What is the capital of France?"
    async with engine(server, tmp_path) as geri:
        result = await streamed(geri, Request(question, model="lan", max_tokens=64))
        again = await streamed(geri, Request(question + "?", model="lan", max_tokens=64))
    assert result.text == ANSWER
    assert result.usage.estimated
    assert again.usage.estimated
    assert result.context is not None
    if kind == "none":  # geri's own estimate, which errs high: never 0
        assert result.usage.output_tokens == estimate_tokens(ANSWER)
        assert result.context.prompt_tokens > estimate_tokens(question)
        # asked each way once, then never again
        assert len(tokenize_calls(server)) == 3
    else:  # the server's count: one token per character here
        assert result.usage.output_tokens == len(ANSWER)
        assert result.context.prompt_tokens >= len(question)
        assert result.usage.input_tokens == result.context.prompt_tokens


async def test_the_servers_count_lets_no_prompt_past_the_window(
    server: MockServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A prompt geri would estimate as fitting, but the server counts as too long, is refused
    before it is sent (the server counts every character as a token here)."""
    kind = request.node.callspec.params["server"]
    question = "word " * 200  # about 200 tokens by the estimate, 1,000 by the server
    async with engine(server, tmp_path, context_window=900) as geri:
        try:
            await streamed(geri, Request(question, model="lan", max_tokens=16))
        except Exception as exc:
            refused: Exception | None = exc
        else:
            refused = None
    sent = [s for s in server.requests if s.path == "/v1/chat/completions"]
    if kind == "none":
        assert refused is None
        assert len(sent) == 1
    else:
        assert isinstance(refused, QuestionTooLong), refused
        assert "1016 tokens" in str(refused)  # 1,000 characters + the template's allowance
        assert not sent


async def test_a_server_that_hangs_on_counting_is_asked_once(tmp_path: Path) -> None:
    """A tokenize endpoint that does not answer holds one prompt up for `COUNT_TIMEOUT`
    seconds at most; then geri estimates and never asks that server again."""

    def reply(seen: Seen) -> Reply:
        if seen.path == "/v1/chat/completions":
            return Reply(events=STREAM)
        return Reply(json={"tokens": [1, 2, 3]}, delay=30)  # far past the count's timeout

    with MockServer() as server:
        server.default = reply
        async with engine(server, tmp_path) as geri:
            first = await streamed(geri, Request("Capital of France?", model="lan"))
            second = await streamed(geri, Request("Capital of Spain?", model="lan"))
        assert first.text == second.text == ANSWER
        assert len(tokenize_calls(server)) == 1


async def test_a_tokenizer_that_redirects_is_not_followed(tmp_path: Path) -> None:
    """geri follows no redirect with a request that may carry a key (see the cloud providers'
    test): a tokenize endpoint that points elsewhere counts as no tokenizer at all."""
    with MockServer() as elsewhere, MockServer() as server:
        elsewhere.default = lambda seen: llama_server(seen) or Reply(404)

        def reply(seen: Seen) -> Reply:
            if seen.path == "/v1/chat/completions":
                return Reply(events=STREAM)
            return Reply(307, {}, headers={"location": elsewhere.url + seen.path})

        server.default = reply
        async with engine(server, tmp_path) as geri:
            result = await streamed(geri, Request("What is the capital?", model="lan"))
        assert elsewhere.requests == []
    assert result.usage.output_tokens == estimate_tokens(ANSWER)  # geri's own estimate
    assert len(tokenize_calls(server)) == 3  # asked each way once
