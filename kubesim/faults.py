"""Fault injection: added latency, error responses and dropped connections, on demand.

Faults are how tests prove that clients survive a flaky cluster (retries, Retry-After, "cluster
down" handling). Every random choice comes from one seeded generator, so a test that sets the
same faults with the same seed sees the same sequence of failures.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubesim import errors
from kubesim.errors import ApiError


@dataclass
class FaultRule:
    status: int | None = 500
    methods: frozenset[str] = frozenset()  # empty: every method
    resources: frozenset[str] = frozenset()  # plural names ("pods", "pods/exec"); empty: all
    probability: float = 1.0
    count: int | None = None  # fire at most this many times, then retire
    retry_after: int | None = None
    drop_connection: bool = False

    @classmethod
    def from_json(cls, spec: Mapping[str, Any]) -> FaultRule:
        status = spec.get("status", 500)
        drop = bool(spec.get("drop_connection", False))
        if status is None and not drop:
            raise errors.bad_request("a fault needs a status or drop_connection")
        if status is not None and not (400 <= int(status) <= 599):
            raise errors.bad_request("fault status must be an HTTP error code (400-599)")
        probability = float(spec.get("probability", 1.0))
        if not 0.0 <= probability <= 1.0:
            raise errors.bad_request("fault probability must be between 0 and 1")
        count = spec.get("count")
        retry_after = spec.get("retry_after")
        return cls(
            status=int(status) if status is not None else None,
            methods=frozenset(m.upper() for m in spec.get("methods") or ()),
            resources=frozenset(spec.get("resources") or ()),
            probability=probability,
            count=int(count) if count is not None else None,
            retry_after=int(retry_after) if retry_after is not None else None,
            drop_connection=drop,
        )

    def applies_to(self, method: str, resource: str, subresource: str) -> bool:
        if self.methods and method not in self.methods:
            return False
        if not self.resources:
            return True
        full = f"{resource}/{subresource}" if subresource else resource
        return full in self.resources or (not subresource and resource in self.resources)

    def error(self) -> ApiError:
        assert self.status is not None
        if self.status == 409:
            return ApiError(
                409,
                "Conflict",
                "Operation cannot be fulfilled: injected conflict (kubesim fault)",
                {},
                {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {},
            )
        return errors.from_code(
            self.status, f"injected fault (kubesim): HTTP {self.status}", self.retry_after
        )


@dataclass
class Latency:
    fixed_ms: float = 0.0
    jitter_ms: float = 0.0


@dataclass
class FaultInjector:
    seed: int = 0
    base_latency_ms: float = 0.0
    rules: list[FaultRule] = field(default_factory=list)
    latency: Latency = field(default_factory=Latency)
    fired: int = 0

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self.latency = Latency(fixed_ms=self.base_latency_ms)

    def clear(self, seed: int | None = None) -> None:
        """No faults, startup latency, and a re-seeded generator."""
        self.rules.clear()
        self.latency = Latency(fixed_ms=self.base_latency_ms)
        self.fired = 0
        if seed is not None:
            self.seed = seed
        self._random = random.Random(self.seed)

    def add(self, rule: FaultRule) -> None:
        self.rules.append(rule)

    def delay_seconds(self) -> float:
        extra = self._random.uniform(0, self.latency.jitter_ms) if self.latency.jitter_ms else 0.0
        return (self.latency.fixed_ms + extra) / 1000.0

    def pick(self, method: str, resource: str, subresource: str) -> FaultRule | None:
        """The fault this request suffers, if any (first matching rule that fires)."""
        for rule in list(self.rules):
            if not rule.applies_to(method, resource, subresource):
                continue
            if rule.count is not None and rule.count <= 0:
                continue
            # Draw even at probability 1, so that adding a sure rule does not shift the
            # sequence seen by the others.
            if self._random.random() >= rule.probability:
                continue
            if rule.count is not None:
                rule.count -= 1
                if rule.count <= 0:
                    self.rules.remove(rule)
            self.fired += 1
            return rule
        return None

    def describe(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "fired": self.fired,
            "latency": {"fixed_ms": self.latency.fixed_ms, "jitter_ms": self.latency.jitter_ms},
            "faults": [
                {
                    "status": r.status,
                    "methods": sorted(r.methods),
                    "resources": sorted(r.resources),
                    "probability": r.probability,
                    "count": r.count,
                    "retry_after": r.retry_after,
                    "drop_connection": r.drop_connection,
                }
                for r in self.rules
            ],
        }
