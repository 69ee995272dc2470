"""The efficiency score's arithmetic, factor by factor, and the weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from geri.errors import ConfigError
from geri.selection.score import (
    Factors,
    Observed,
    distance_factor,
    factors,
    hardware_factor,
    latency_factor,
    size_factor,
)
from geri.settings import Weights, load_settings
from geri.store import HealthCheck, Outcome
from geri.types import ModelInfo

GB = 10**9


def test_size_is_log_scaled_between_100m_and_1t() -> None:
    assert size_factor(10**8) == 1.0
    assert size_factor(10**9) == pytest.approx(0.75)
    assert size_factor(8 * 10**9) == pytest.approx(1 - (9.903 - 8) / 4, abs=1e-3)
    assert size_factor(10**12) == 0.0
    assert size_factor(None) == 0.25


def test_hardware_fit_falls_from_half_the_free_ram_to_all_of_it() -> None:
    local = ModelInfo("m", "llama.cpp", "/m.gguf", size_bytes=4 * GB, context_window=4096)
    # needs 4 GB x 1.25 = 5 GB
    assert hardware_factor(local, 20 * GB) == 1.0
    assert hardware_factor(local, 10 * GB) == 1.0
    assert hardware_factor(local, int(6.25 * GB)) == pytest.approx(0.4)
    assert hardware_factor(local, 5 * GB) == 0.0
    assert hardware_factor(ModelInfo("c", "openai", "gpt", location="cloud"), 0) == 1.0


def test_reliability_smooths_few_observations() -> None:
    model = ModelInfo("m", "p", "s")
    fresh = factors(model, Observed(), 10 * GB, 0)
    assert fresh.reliability == pytest.approx(0.95 * 0.95)
    outcomes = [Outcome("ok", 100.0, 10.0)] * 18 + [Outcome("error", 5.0, None)] * 2
    checks = [HealthCheck("m", None, True)] * 9 + [HealthCheck("m", None, False)]  # type: ignore[arg-type]
    seen = Observed.from_history(outcomes, checks)
    assert (seen.calls, seen.failures, seen.checks, seen.checks_ok) == (20, 2, 10, 9)
    expected = ((18 + 4.75) / 25) * ((9 + 4.75) / 15)
    assert factors(model, seen, 10 * GB, 0).reliability == pytest.approx(expected)


def test_latency_from_medians_of_successful_calls() -> None:
    seen = Observed.from_history(
        [Outcome("ok", 1000.0, 100.0), Outcome("ok", 3000.0, 300.0), Outcome("ok", 5000.0, 500.0)],
        [],
    )
    assert (seen.p50_latency_ms, seen.p50_ttft_ms) == (3000.0, 300.0)
    assert latency_factor(seen) == pytest.approx((500 / 800 + 5000 / 8000) / 2)
    assert latency_factor(Observed()) == 0.5


def test_distance_local_lan_cloud_and_measured() -> None:
    assert distance_factor(ModelInfo("a", "p", "s")) == 1.0
    assert distance_factor(ModelInfo("b", "p", "s", location="lan")) == pytest.approx(25 / 35)
    assert distance_factor(ModelInfo("c", "p", "s", location="cloud")) == pytest.approx(0.2)
    measured = ModelInfo("d", "p", "s", location="lan", metadata={"rtt_ms": "2.5"})
    assert distance_factor(measured) == pytest.approx(1 / 1.1)


def test_cost_and_the_weighted_total() -> None:
    model = ModelInfo("c", "openai", "gpt", location="cloud", parameters=None)
    found = factors(model, Observed(), 0, 1000)
    assert found.cost == 0.5
    weights = Weights().normalised()
    assert found.total(weights) == pytest.approx(
        0.2 * 0.25 + 0.15 * 1.0 + 0.2 * 0.95**2 + 0.25 * 0.5 + 0.1 * 0.2 + 0.1 * 0.5
    )
    assert Factors(1, 1, 1, 1, 1, 1).total(weights) == pytest.approx(1.0)


def test_weights_are_normalised_and_validated(tmp_path: Path) -> None:
    custom = Weights(size=2, hardware=0, reliability=0, latency=2, distance=0, cost=0)
    shares = custom.normalised()
    assert (shares["size"], shares["latency"], sum(shares.values())) == (0.5, 0.5, 1.0)
    path = tmp_path / "s.json"
    zero = {k: 0 for k in ("size", "hardware", "reliability", "latency", "distance", "cost")}
    path.write_text(json.dumps({"routing": {"weights": zero}}))
    with pytest.raises(ConfigError, match="at least one routing weight"):
        load_settings(path)
    path.write_text(json.dumps({"routing": {"weights": {"cost": -1}}}))
    with pytest.raises(ConfigError, match=r"routing\.weights\.cost"):
        load_settings(path)
