"""The per-principal token bucket (app/limits/rate_limit.py), on a clock the test moves."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.limits.rate_limit import MAX_TRACKED_PRINCIPALS, RateLimited, RateLimiter
from app.settings import ConfigError, load_settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_passes_then_the_next_request_is_told_when_to_retry() -> None:
    clock = Clock()
    limiter = RateLimiter(requests_per_minute=30, burst=3, clock=clock)
    for _ in range(3):
        limiter.acquire("apikey:ci")
    with pytest.raises(RateLimited) as refused:
        limiter.acquire("apikey:ci")
    assert refused.value.status == 429
    assert refused.value.headers == {"Retry-After": "2"}  # one token every 2 s
    assert "30 per minute" in refused.value.detail


def test_tokens_come_back_at_the_configured_rate_up_to_the_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(requests_per_minute=60, burst=2, clock=clock)
    limiter.acquire("p")
    limiter.acquire("p")
    clock.now += 1.0
    limiter.acquire("p")  # one token back after a second
    with pytest.raises(RateLimited):
        limiter.acquire("p")
    clock.now += 3600
    limiter.acquire("p")
    limiter.acquire("p")  # a long pause refills only up to the burst
    with pytest.raises(RateLimited):
        limiter.acquire("p")


def test_each_principal_has_its_own_bucket() -> None:
    limiter = RateLimiter(requests_per_minute=1, burst=1, clock=Clock())
    limiter.acquire("apikey:a")
    limiter.acquire("apikey:b")
    with pytest.raises(RateLimited) as refused:
        limiter.acquire("apikey:a")
    assert refused.value.retry_after == 60


def test_idle_principals_are_forgotten_when_many_are_tracked() -> None:
    clock = Clock()
    limiter = RateLimiter(requests_per_minute=60, burst=1, clock=clock)
    for n in range(MAX_TRACKED_PRINCIPALS):
        limiter.acquire(f"oidc:ci#{n}")
    clock.now += 1.0  # every bucket is full again: forgetting them loses nothing
    limiter.acquire("oidc:ci#new")
    assert limiter.tracked() == 1


@pytest.mark.parametrize(("rpm", "burst"), [(0, 1), (1, 0)])
def test_a_limit_below_one_is_refused(rpm: int, burst: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RateLimiter(requests_per_minute=rpm, burst=burst)


def test_settings_name_a_bad_rate_limit_key(tmp_path: Path) -> None:
    config = tmp_path / "scangate.yaml"
    config.write_text("rate_limit: {requests_per_minute: 0}\nmax_request_body_bytes: 10\n")
    with pytest.raises(ConfigError) as bad:
        load_settings(config)
    keys = {key for key, _ in bad.value.problems}
    assert keys == {"rate_limit.requests_per_minute", "max_request_body_bytes"}


def test_rate_limit_is_off_unless_configured(tmp_path: Path) -> None:
    config = tmp_path / "scangate.yaml"
    config.write_text("{}\n")
    assert load_settings(config).rate_limit is None
    config.write_text("rate_limit: {requests_per_minute: 120}\n")
    limit = load_settings(config).rate_limit
    assert limit is not None
    assert (limit.requests_per_minute, limit.burst) == (120, 20)
