"""Budgets and fallback through the engine: cloud over budget, rate-limited or down goes local.

Scripted providers and a settable calendar; the real HTTP and model versions of the same chain
are in `tests/cli/test_fallback_e2e.py`.
"""

from __future__ import annotations

import json
import sys
from collections import deque
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from geri.engine import Engine
from geri.errors import BudgetExhausted, MalformedReply, RateLimited, Unavailable
from geri.providers import ProviderContext
from geri.settings import CloudModel, LocalModel, Settings
from geri.store import open_store
from geri.types import ModelInfo, Notice, Request
from tests.fakes import FakeClock, FakeProvider, Script
from tests.mockserver import MockServer, Reply

DOLLAR = 1_000_000


def cloud(model_id: str, provider: str = "openai") -> CloudModel:
    # $1 per token either way: a request's cost is easy to read off its token counts
    return CloudModel(
        kind="cloud",
        id=model_id,
        provider=provider,
        model=f"{model_id}-v1",
        input_price=Decimal(1_000_000),
        output_price=Decimal(1_000_000),
    )


class Rig:
    def __init__(self, tmp_path: Path, **settings: object) -> None:
        defaults: dict[str, object] = {
            "models": (cloud("gpt"), LocalModel(id="smol", path=tmp_path / "smol.gguf")),
            "default_model": "gpt",
            "network": {"max_attempts": 2},
            "cache": {"enabled": False},
        }
        self.settings = Settings.model_validate({**defaults, **settings})
        self.at = datetime(2026, 11, 25, 12, tzinfo=UTC)
        self.scripts: dict[str, deque[Script]] = {}
        self.providers: dict[str, FakeProvider] = {}
        self.engine = Engine(
            self.settings,
            open_store(tmp_path / "g.db"),
            providers=self._build,
            clock=FakeClock(step=0.001),
            now=lambda: self.at,
            sleep=self._sleep,
            free_ram=lambda: 64 * 10**9,
        )

    async def _sleep(self, seconds: float) -> None:
        pass

    def _build(self, info: ModelInfo, context: ProviderContext) -> FakeProvider:
        provider = FakeProvider(info, self.scripts.setdefault(info.id, deque()))
        self.providers[info.id] = provider
        return provider

    def enqueue(self, model: str, *chunks: str, error: BaseException | None = None) -> None:
        self.scripts.setdefault(model, deque()).append(Script(list(chunks), error))

    def budget(self, dollars: int, scope: str = "*", period: str = "monthly") -> None:
        self.engine.ledger.set_limit(scope, period, dollars * DOLLAR)


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path)


async def test_within_budget_the_cloud_answers_and_the_cost_is_recorded(rig: Rig) -> None:
    rig.budget(100)
    rig.enqueue("gpt", "four", " words", " of", " answer")
    result = await rig.engine.ask(Request("two plus two", max_tokens=8))
    assert (result.model, result.text) == ("gpt", "four words of answer")
    # the fake reports its prompt's words as input tokens and its chunks as output tokens
    assert result.cost_micros == (3 + 4) * DOLLAR
    assert result.notices == ()
    [record] = rig.engine.store.recent_requests()
    assert record.cost_micros == result.cost_micros
    [state] = rig.engine.ledger.status()
    assert (state.spend.settled_micros, state.spend.reserved_micros) == (7 * DOLLAR, 0)


async def test_over_budget_the_local_model_answers_until_the_reset(rig: Rig) -> None:
    # a call is projected at $21: its prompt (5), the input margin (8) and max_tokens (8), at
    # $1 a token; it costs $5
    rig.budget(24)
    rig.enqueue("gpt", "cloud", " answer")
    assert (await rig.engine.ask(Request("two plus two", max_tokens=8))).cost_micros == 5 * DOLLAR
    rig.enqueue("smol", "local answer")
    result = await rig.engine.ask(Request("three plus three", max_tokens=8))  # 5 + 21 > 24
    assert (result.model, result.text) == ("smol", "local answer")
    assert result.notices == (
        Notice(
            "fallback",
            "Cloud budget for November reached — answering with local smol until 1 December",
        ),
    )
    assert len(rig.providers["gpt"].requests) == 1  # no second cloud call was made
    assert [r.model for r in rig.engine.store.recent_requests()] == ["smol", "gpt"]

    rig.at = datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC)  # the budget resets by itself
    rig.enqueue("gpt", "cloud", " again")
    back = await rig.engine.ask(Request("two plus two", max_tokens=8))
    assert back.model == "gpt"
    assert back.notices == (
        Notice("budget_reset", "The budget has reset — answering with OpenAI gpt again."),
    )
    rig.enqueue("gpt", "a", "quiet", "answer", "of", "five")  # $5 + $7: half the budget
    later = await rig.engine.ask(Request("and now", max_tokens=5))
    assert [n.kind for n in later.notices] == ["budget_alert"]  # the reset is told once


async def test_a_provider_budget_moves_the_request_to_another_provider_first(
    rig: Rig,
) -> None:
    rig.engine.keys.get = lambda p: "sk-test" if p == "anthropic" else None  # type: ignore[method-assign,assignment]
    ranking = await rig.engine.router.route(Request("hello there", max_tokens=4))
    best_anthropic = next(c.model for c in ranking.candidates if c.model.provider == "anthropic")
    rig.budget(1, scope="openai")
    rig.budget(100)
    rig.enqueue(best_anthropic.id, "from claude")
    result = await rig.engine.ask(Request("hello there", max_tokens=4))
    assert (result.model, result.text) == (best_anthropic.id, "from claude")
    assert result.notices[0].message == (
        "OpenAI budget for November reached — answering with Anthropic "
        f"{best_anthropic.id} until 1 December"
    )
    [everything, _] = rig.engine.ledger.status()
    assert everything.spend.settled_micros == result.cost_micros > 0  # checked again: charged

    rig.budget(0)  # now nothing cloud fits: the next hop is local
    rig.enqueue("smol", "from smol")
    assert (await rig.engine.ask(Request("hello again", max_tokens=4))).model == "smol"


async def test_rate_limited_after_its_retries_goes_local(rig: Rig) -> None:
    for _ in range(2):
        rig.enqueue("gpt", error=RateLimited("429 slow down"))
    rig.enqueue("smol", "local")
    result = await rig.engine.ask(Request("q"))
    assert result.model == "smol"
    assert result.notices[0].message == (
        "OpenAI keeps rate-limiting gpt — answering with local smol for this request"
    )
    statuses = [(r.model, r.status) for r in rig.engine.store.recent_requests()]
    assert statuses == [("smol", "ok"), ("gpt", "error")]  # the failure counts against gpt


async def test_an_unreadable_reply_is_charged_its_reservation_and_not_retried_on_it(
    rig: Rig,
) -> None:
    # the upstream answered (and most likely billed) a reply geri cannot read: a retry on the
    # same reservation would be a second bill geri never counts, so the call is charged what it
    # reserved ($21: prompt 5 + input margin 8 + max_tokens 8) and falls back
    rig.budget(100)
    rig.enqueue("gpt", error=MalformedReply("OpenAI answered in a shape geri cannot read"))
    rig.enqueue("gpt", "a second bill")  # what a retry would have got
    rig.enqueue("smol", "local")
    result = await rig.engine.ask(Request("two plus two", max_tokens=8))
    assert (result.model, result.text) == ("smol", "local")
    assert len(rig.providers["gpt"].requests) == 1
    charged, fallback = result.notices
    assert charged.kind == "usage_anomaly"
    assert "charged $21.00 (reserved $21.00)" in charged.message
    assert fallback.kind == "fallback"
    rows = [(r.model, r.status, r.cost_micros) for r in rig.engine.store.recent_requests()]
    assert rows == [("smol", "ok", 0), ("gpt", "error", 21 * DOLLAR)]
    [state] = rig.engine.ledger.status()
    assert (state.spend.settled_micros, state.spend.reserved_micros) == (21 * DOLLAR, 0)


async def test_an_unreadable_reply_that_cost_nothing_is_retried(tmp_path: Path) -> None:
    free = CloudModel(kind="cloud", id="gpt", provider="openai", model="gpt-v1")
    rig = Rig(tmp_path, models=(free, LocalModel(id="smol", path=tmp_path / "smol.gguf")))
    rig.enqueue("gpt", error=MalformedReply("OpenAI answered in a shape geri cannot read"))
    rig.enqueue("gpt", "second", " try")
    result = await rig.engine.ask(Request("two plus two", max_tokens=8))
    assert (result.model, result.text, result.cost_micros) == ("gpt", "second try", 0)
    assert len(rig.providers["gpt"].requests) == 2


async def test_unreachable_goes_local_in_a_stream_with_the_notice_first(rig: Rig) -> None:
    for _ in range(2):
        rig.enqueue("gpt", error=Unavailable("connection refused"))
    rig.enqueue("smol", "streamed", " locally")
    chunks = [c async for c in rig.engine.stream(Request("q"))]
    assert chunks[0].notice == Notice(
        "fallback", "OpenAI is unavailable for gpt — answering with local smol for this request"
    )
    assert "".join(c.text for c in chunks) == "streamed locally"
    final = chunks[-1].result
    assert final is not None
    assert final.model == "smol"


async def test_with_fallback_off_the_budget_error_names_the_fix(tmp_path: Path) -> None:
    rig = Rig(tmp_path, fallback={"enabled": False})
    rig.budget(1)
    with pytest.raises(BudgetExhausted, match="geri budget set monthly AMOUNT"):
        await rig.engine.ask(Request("q"))


async def test_a_pinned_fallback_model_is_used(tmp_path: Path) -> None:
    rig = Rig(
        tmp_path,
        models=(
            cloud("gpt"),
            LocalModel(id="smol", path=tmp_path / "a.gguf"),
            LocalModel(id="other", path=tmp_path / "b.gguf"),
        ),
        fallback={"local_model": "other"},
    )
    rig.budget(0)
    rig.enqueue("other", "pinned")
    assert (await rig.engine.ask(Request("q"))).model == "other"


async def test_budget_alerts_reach_the_caller(rig: Rig) -> None:
    rig.budget(24)
    rig.enqueue("gpt", "a", "b", "c", "d", "e", "f", "g", "h", "i")
    result = await rig.engine.ask(Request("one two three", max_tokens=10))  # costs $12
    assert result.notices == (
        Notice(
            "budget_alert",
            "Cloud budget for November is 50% used: $12.00 of $24.00 "
            "(monthly, resets on 1 December).",
        ),
    )


async def test_notices_go_to_the_command_and_the_webhook(tmp_path: Path) -> None:
    sink = tmp_path / "notices.txt"
    script = (
        "import os, sys; open(sys.argv[1], 'a').write("
        "os.environ['GERI_NOTICE_KIND'] + '|' + sys.stdin.read() + '\\n')"
    )
    with MockServer() as hook:
        hook.default = Reply(204)
        rig = Rig(
            tmp_path,
            notifications={
                "command": [sys.executable, "-c", script, str(sink)],
                "webhook": f"{hook.url}/hook",
            },
        )
        rig.budget(0)
        rig.enqueue("smol", "local")
        result = await rig.engine.ask(Request("q"))
        await rig.engine.aclose()
        [notice] = result.notices
        assert sink.read_text() == f"fallback|{notice.message}\n"
        [posted] = hook.requests
        assert posted.path == "/hook"
        assert posted.json["kind"] == "fallback"
        assert posted.json["message"] == notice.message


async def test_notifications_can_be_switched_off(tmp_path: Path) -> None:
    rig = Rig(tmp_path, notifications={"enabled": False})
    rig.budget(0)
    rig.enqueue("smol", "local")
    result = await rig.engine.ask(Request("q"))
    assert result.model == "smol"
    assert result.notices == ()


async def test_a_broken_notification_hook_never_fails_the_request(tmp_path: Path) -> None:
    rig = Rig(
        tmp_path,
        notifications={"command": ["/nonexistent/notify"], "webhook": "http://127.0.0.1:9/x"},
    )
    rig.budget(0)
    rig.enqueue("smol", "still answered")
    assert (await rig.engine.ask(Request("q"))).text == "still answered"
    await rig.engine.aclose()


def test_notices_are_in_the_json_result() -> None:
    from geri.types import Result, Usage

    result = Result("id", "t", "m", "p", Usage(), 1.0, notices=(Notice("fallback", "moved"),))
    assert json.loads(json.dumps(result.as_dict()))["notices"] == [
        {"kind": "fallback", "message": "moved"}
    ]


async def test_a_fallback_answered_from_the_cache_still_says_so_first(tmp_path: Path) -> None:
    rig = Rig(tmp_path, cache={"enabled": True})
    rig.enqueue("smol", "remembered")
    await rig.engine.ask(Request("q", model="smol"))  # the local model's answer is cached
    rig.budget(0)
    chunks = [c async for c in rig.engine.stream(Request("q"))]
    assert chunks[0].notice is not None
    assert chunks[0].notice.message.startswith("Cloud budget for November reached")
    assert "".join(c.text for c in chunks) == "remembered"
    final = chunks[-1].result
    assert final is not None
    assert final.cached


async def test_a_notification_command_inherits_no_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-canary-0123456789abcdefghij"
    for name in ("OPENAI_API_KEY", "GERI_ANTHROPIC_API_KEY", "HF_TOKEN", "GERI_DAEMON_TOKEN"):
        monkeypatch.setenv(name, secret)
    monkeypatch.setenv("GERI_NOTICE_PROBE", "kept")
    sink = tmp_path / "env.txt"
    script = "import os, sys; open(sys.argv[1], 'w').write(repr(dict(os.environ)))"
    rig = Rig(tmp_path, notifications={"command": [sys.executable, "-c", script, str(sink)]})
    rig.budget(0)
    rig.enqueue("smol", "local")
    await rig.engine.ask(Request("q"))
    await rig.engine.aclose()
    seen = sink.read_text()
    assert secret not in seen
    assert "'GERI_NOTICE_PROBE': 'kept'" in seen  # only secrets are left out
