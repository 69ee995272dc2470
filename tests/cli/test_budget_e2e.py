"""Budgets, fallback and the cache from the command line: a mock cloud on 127.0.0.1 that
answers 429 and 500, and the real local test model taking over."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from tests.mockserver import MockServer, Reply

Geri = Callable[..., CompletedProcess[str]]
KEY = "sk-budget-test-0123456789"
OK = {
    "choices": [{"message": {"content": "Cloud says four."}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 20, "completion_tokens": 4},
}
LOCAL = "SmolLM2-135M-Instruct.Q4_1"


@pytest.fixture
def cloud() -> Iterator[MockServer]:
    with MockServer() as server:
        yield server


@pytest.fixture
def geri(geri_cli: Geri, geri_home: Path, smollm_path: Path, cloud: MockServer) -> Geri:
    settings = {
        "models": [
            {
                "kind": "cloud",
                "id": "gpt",
                "provider": "openai",
                "model": "gpt-test",
                "base_url": f"{cloud.url}/v1",
                "input_price": 10,
                "output_price": 30,
            },
            {"kind": "local", "id": "smol", "path": str(smollm_path)},
        ],
        "default_model": "gpt",
        "network": {"max_attempts": 2, "backoff_base": 0, "backoff_max": 0},
    }
    path = geri_home / "config" / "settings.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(settings))

    def run(*args: str) -> CompletedProcess[str]:
        return geri_cli(*args, env={"OPENAI_API_KEY": KEY})

    return run


def test_rate_limits_then_the_local_model_answers(geri: Geri, cloud: MockServer) -> None:
    cloud.add(Reply(429, {"error": {"message": "slow down"}}, headers={"retry-after": "0"}))
    cloud.add(Reply(429, {"error": {"message": "slow down"}}, headers={"retry-after": "0"}))
    asked = geri("ask", "What is 2 + 2?", "-t", "0", "--max-tokens", "16")
    assert asked.returncode == 0, asked.stderr
    assert (
        f"OpenAI keeps rate-limiting gpt — answering with local {LOCAL} for this request"
        in asked.stderr
    )
    assert asked.stdout.strip()  # the local model's answer
    assert len(cloud.requests) == 2
    assert "Traceback" not in asked.stderr


def test_server_errors_then_the_local_model_answers_in_json(geri: Geri, cloud: MockServer) -> None:
    cloud.default = Reply(500, {"error": {"message": "internal"}})
    asked = geri("ask", "What is 2 + 2?", "-t", "0", "--max-tokens", "16", "--json")
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert answer["model"] == "smol"
    [notice] = answer["notices"]
    assert notice == {
        "kind": "fallback",
        "message": f"OpenAI is unavailable for gpt — answering with local {LOCAL} for this request",
    }
    assert notice["message"] in asked.stderr


def test_spending_is_tracked_and_an_exhausted_budget_goes_local(
    geri: Geri, cloud: MockServer
) -> None:
    assert geri("budget", "set", "monthly", "1").returncode == 0
    cloud.add(Reply(json=OK))
    first = geri("ask", "What is 2 + 2?", "--max-tokens", "16", "--json", "--no-stream")
    assert first.returncode == 0, first.stderr
    cost = json.loads(first.stdout)["cost_usd"]
    assert cost == pytest.approx((20 * 10 + 4 * 30) / 1e6)  # the usage the server reported
    [status] = json.loads(geri("budget", "status", "--json").stdout)
    assert status["spent_usd"] == pytest.approx(cost)
    assert status["reserved_usd"] == 0

    assert geri("budget", "set", "monthly", "0.0003").returncode == 0  # below spent + next call
    second = geri("ask", "What is 3 + 3?", "-t", "0", "--max-tokens", "16")
    assert second.returncode == 0, second.stderr
    now = datetime.now(UTC)
    reset = datetime(now.year + (now.month == 12), now.month % 12 + 1, 1)
    assert (
        f"Cloud budget for {now:%B} reached — answering with local {LOCAL} until "
        f"1 {reset:%B}" in second.stderr
    )
    assert len(cloud.requests) == 1  # the over-budget call never left the machine

    table = geri("budget", "status")
    assert "Cloud" in table.stdout
    assert "monthly" in table.stdout
    assert geri("budget", "remove", "monthly").returncode == 0
    assert "No budget is set" in geri("budget", "status").stdout


def test_bad_budget_input_is_refused_clearly(geri: Geri) -> None:
    for args, message in [
        (("budget", "set", "yearly", "5"), "use one of daily, weekly, monthly"),
        (("budget", "set", "monthly", "five"), "Not an amount of dollars"),
        (("budget", "set", "monthly", "NaN"), "zero or more dollars"),
        (("budget", "set", "daily", "5", "--provider", "nope"), "Unknown provider 'nope'"),
        (("budget", "remove", "weekly"), "There is no weekly limit"),
    ]:
        result = geri(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr
        assert "Traceback" not in result.stderr


def test_the_cache_answers_repeats_and_can_be_cleared(geri: Geri) -> None:
    question = ("ask", "Name a colour.", "-m", "smol", "-t", "0", "--max-tokens", "8", "--json")
    first = json.loads(geri(*question).stdout)
    second = json.loads(geri(*question).stdout)
    assert (first["cached"], second["cached"]) == (False, True)
    assert second["text"] == first["text"]
    assert second["cost_usd"] == 0
    bypass = json.loads(geri(*question, "--no-cache").stdout)
    assert bypass["cached"] is False
    streamed = geri("ask", "Name a colour.", "-m", "smol", "-t", "0", "--max-tokens", "8")
    assert streamed.stdout.strip() == first["text"]
    stats = json.loads(geri("cache", "stats", "--json").stdout)
    assert (stats["entries"], stats["hits"], stats["requests"]) == (1, 2, 4)
    assert geri("cache", "clear").stdout.strip() == "Removed 1 cached answer."
    assert json.loads(geri(*question).stdout)["cached"] is False
