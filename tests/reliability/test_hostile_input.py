"""Scenario 5b: hand-written hostile input against a running `scangate serve`, on SQLite and on
PostgreSQL. Whatever arrives (oversized or deeply nested bodies, control characters and
unicode tricks in names, selector and SQL injection, path tricks in ids, absurd numbers), the
answer is a 4xx problem (or a correct success), never a 5xx, never someone else's grant, and
nothing the caller sent is reflected back as `instance`."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest

from devsupport.postgres_server import fresh_database
from kubesim.pytest_plugin import KubesimHandle
from tests.reliability.harness import assert_invariant, audit, grant_rows
from tests.reliability.served import Served, serve
from tests.support.cluster_view import cluster_objects
from tests.support.figures import RecordFigures

LIMIT = 64 * 1024
VALID = {"namespace": "payments", "scanner": "exec", "pods": ["web-0"]}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    _kubesim_http: KubesimHandle,
) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp(f"hostile-{request.param}")
    if request.param == "sqlite":
        yield from serve(directory, _kubesim_http)
        return
    with fresh_database(request.getfixturevalue("postgres_server_url")) as database_url:
        yield from serve(directory, _kubesim_http, database_url)


class Probe:
    """Sends hostile requests and checks the promises every answer keeps."""

    def __init__(self, served: Served) -> None:
        self.served = served
        self.tried = 0
        self.http = httpx.Client(base_url=served.url, timeout=30)

    def send(
        self, method: str, path: str, *, who: str | None = "alice", **kwargs: Any
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if who is not None:
            headers.update(self.served.auth(who))
        response = self.http.request(method, path, headers=headers, **kwargs)
        self.expect_sane(response, f"{method} {path[:80]}")
        return response

    def raw(self, method: str, path: str, body: bytes = b"", who: str = "alice") -> tuple[int, str]:
        """A request line exactly as given: httpx would normalise dot segments away."""
        parts = urlsplit(self.served.url)
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        try:
            headers = {**self.served.auth(who), "Content-Type": "application/json"}
            connection.request(method, path, body=body, headers=headers)
            answer = connection.getresponse()
            text = answer.read().decode("utf-8", "replace")
        finally:
            connection.close()
        self.tried += 1
        assert answer.status < 500, f"{method} {path[:80]}: {answer.status} {text[:300]}"
        return answer.status, text

    def expect_sane(self, response: httpx.Response, what: str) -> None:
        self.tried += 1
        assert response.status_code < 500, f"{what}: {response.status_code} {response.text[:300]}"
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/problem+json"), what
            problem = response.json()
            assert problem["status"] == response.status_code, what

    def create(self, body: Any, *, raw: bytes | None = None) -> httpx.Response:
        if raw is not None:
            return self.send(
                "POST", "/v1/grants", content=raw, headers={"Content-Type": "application/json"}
            )
        return self.send("POST", "/v1/grants", json=body)


@pytest.fixture
def probe(served: Served, figures: RecordFigures) -> Iterator[Probe]:
    probe = Probe(served)
    yield probe
    probe.http.close()
    figures(inputs_tried=probe.tried)


def problem_type(response: httpx.Response) -> str:
    slug: str = response.json()["type"].rsplit("/", 1)[-1]
    return slug


def test_oversized_bodies_are_refused_with_413_before_parsing(probe: Probe) -> None:
    big = {**VALID, "reason": "x" * (LIMIT + 1)}
    answer = probe.create(big)
    assert answer.status_code == 413
    assert problem_type(answer) == "content-too-large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the size is only known by reading
        yield b'{"namespace": "payments", "reason": "'
        for _ in range(40):
            yield b"y" * 4096
        yield b'"}'

    answer = probe.send("POST", "/v1/grants", content=chunks(),
                        headers={"Content-Type": "application/json"})  # fmt: skip
    assert answer.status_code == 413
    for path in ("/v1/grants/01jbq3z5ksxn2m8d7c4v6w9e0r/revoke",
                 "/v1/grants/01jbq3z5ksxn2m8d7c4v6w9e0r/renew"):  # fmt: skip
        assert probe.send("POST", path, content=b"{" + b" " * LIMIT + b"}").status_code == 413
    # Just under the limit is read and judged on its content (reason is at most 1024 long).
    under = {**VALID, "reason": "x" * (LIMIT - 200)}
    assert probe.create(under).status_code == 422
    # Unauthenticated callers cannot make the service read a large body either.
    assert probe.send("POST", "/v1/grants", who=None, json=big).status_code == 413


def test_deeply_nested_and_malformed_json_is_a_4xx(probe: Probe) -> None:
    for depth in (100, 5_000, 30_000):
        bodies = [
            b"[" * depth + b"]" * depth,
            b'{"namespace":"payments","scanner":"exec","pods":'
            + b"[" * depth + b'"web-0"' + b"]" * depth + b"}",
            b'{"a":' * depth + b"1" + b"}" * depth,
        ]  # fmt: skip
        for body in bodies:
            expected = {413} if len(body) > LIMIT else {400, 422}
            assert probe.create(None, raw=body).status_code in expected, (depth, len(body))
    for raw in (b"", b"{", b"null", b"[]", b'"x"', b"\xff\xfe\x00", b'{"namespace":1e999}',
                b'{"ttl_seconds":' + b"9" * 5000 + b"}", b"\x00" * 100):  # fmt: skip
        assert probe.create(None, raw=raw).status_code in (400, 422)


NAMES = [
    "pay\x00ments", "payments\n", "payments\r\nX-Injected: 1", "\uff50\uff41\uff59",
    "payments\u200b", "pay\u202ements", "💥", "Payments", "payments/..", "../payments",
    "payments;", "pay ments", "-payments", "p" * 64, "", "\t", "kube-system", "scangate-grants",
    "default\x7f",
]  # fmt: skip


def test_unicode_and_control_characters_in_names_are_refused(probe: Probe) -> None:
    for name in NAMES:
        for body in ({**VALID, "namespace": name}, {**VALID, "pods": [name]},
                     {**VALID, "cluster": name}):  # fmt: skip
            answer = probe.create(body)
            assert answer.status_code in (403, 422), (name, answer.text)
            if not name.isascii() or not name.isprintable():
                assert name not in answer.json()["detail"]  # never echoed
    # Free text may be any printable unicode, but no control characters or lone surrogates.
    for reason in ("naïve — 日本語 ✓", "line\nbreak\ttab", "\u202eRTL"):
        answer = probe.create({**VALID, "reason": reason})
        assert answer.status_code == 201, answer.text
        assert answer.json()["reason"] == reason
        probe.send("POST", f"/v1/grants/{answer.json()['id']}/revoke", json={"reason": reason})
    for reason in ("nul\x00byte", "esc\x1b[31mred", "bell\x07", "c1\x9b"):
        assert probe.create({**VALID, "reason": reason}).status_code == 422
    surrogate = b'{"namespace":"payments","scanner":"exec","pods":["web-0"],"reason":"\\ud800"}'
    assert probe.create(None, raw=surrogate).status_code == 422


SELECTORS = [
    "app=web&fieldSelector=metadata.name=db-0", "app=web,labelSelector=x", "app=web;rm -rf /",
    "app=web\napp=db", "app=web%2Capp%3Ddb", "app==web)", "app in (web", "=web", "!", "!!app",
    "app=wéb", "app=" + "w" * 70, "a" * 5000, "app=web' OR '1'='1", "app=web\x00", "*",
    "app in (web),app notin (web)", "app=web,tier!=frontend", " ", "app=$(id)",
]  # fmt: skip


def test_selector_injection_never_widens_a_grant(probe: Probe) -> None:
    for selector in SELECTORS:
        answer = probe.create({"namespace": "payments", "scanner": "exec", "selector": selector})
        assert answer.status_code == 422, (selector, answer.text)
    # A legitimate selector resolves to exactly the Running pods it matches, in its namespace.
    answer = probe.create({"namespace": "payments", "scanner": "exec", "selector": "app=web"})
    assert answer.status_code == 201
    grant = answer.json()
    assert grant["pods"] == ["web-0", "web-1"]  # web-2 is Pending; orders/api-0 is elsewhere
    names = {name for kind, _, name in cluster_objects(probe.served.sim, grant["id"])}
    assert names == {f"scangate-{grant['id']}"}
    probe.send("POST", f"/v1/grants/{grant['id']}/revoke", json={})


def test_path_tricks_in_ids_find_nothing(probe: Probe) -> None:
    mine = probe.create(VALID).json()["id"]
    theirs = probe.send("POST", "/v1/grants", who="bob", json=VALID).json()["id"]
    tricks = [
        "..", "%2e%2e", "..%2F..%2Fv1%2Fevents", f"{mine}%2F..%2F{theirs}", f"{theirs}%00",
        f"{theirs.upper()}", f"{theirs}%20", f"%20{theirs}", "'%20OR%20'1'='1", "*", "%25",
        "a" * 5000,
        "01jbq3z5ksxn2m8d7c4v6w9e0r%0d%0aX-Injected:%201", "null", "0", "-1", "%ff%fe",
    ]  # fmt: skip
    for trick in tricks:
        for suffix in ("", "/events", "/kubeconfig"):
            status, text = probe.raw("GET", f"/v1/grants/{trick}{suffix}")
            assert status in (404, 405, 422), (trick, status, text[:200])
            assert '"requester"' not in text  # no grant in the answer
        status, text = probe.raw("POST", f"/v1/grants/{trick}/revoke", b"{}")
        assert status in (404, 405, 422), (trick, status)
    # Dot segments that a server or proxy might resolve to another grant.
    for path in (f"/v1/grants/{mine}/../{theirs}", f"/v1/grants/{mine}/..%2F{theirs}",
                 f"/v1/grants/./{theirs}", f"//v1/grants/{theirs}"):  # fmt: skip
        status, text = probe.raw("GET", path)
        assert status in (404, 405, 422), (path, status)
        assert '"requester"' not in text
    assert grant_rows(probe.served.database_url)[theirs][0] == "active"  # untouched


def test_absurd_numbers_and_list_parameters_are_422(probe: Probe) -> None:
    for ttl in (-1, 0, 29, 3601, 2**63, 10**30, -(2**63), 1.5, "900x", True, [], {}):
        assert probe.create({**VALID, "ttl_seconds": ttl}).status_code == 422, ttl
    for raw_ttl in (b"NaN", b"Infinity", b"-Infinity", b"1e400", b"1e-400"):
        raw = b'{"namespace":"payments","scanner":"exec","pods":["web-0"],"ttl_seconds":'
        assert probe.create(None, raw=raw + raw_ttl + b"}").status_code in (400, 422)
    grant_id = probe.create(VALID).json()["id"]
    for ttl in (-5, 0, 2**64, 10**100):
        answer = probe.send("POST", f"/v1/grants/{grant_id}/renew", json={"ttl_seconds": ttl})
        assert answer.status_code == 422
    for query in ("limit=1000000000000000000000", "limit=-1", "limit=0", "limit=501",
                  "limit=1e3", "limit=NaN", "cursor=' OR 1=1 --", "cursor=" + "z" * 27,
                  "status=active' OR '1'='1", "status=ACTIVE", "namespace=x%00y",
                  "namespace=' OR '1'='1", "cluster=%ff", "limit=1&limit=2&limit=x"):  # fmt: skip
        assert probe.send("GET", f"/v1/grants?{query}").status_code == 422, query
    for query in ("since=not-a-date", "since=9999-12-31T23:59:59-14:00",
                  "since=0001-01-01T00:00:00+14:00", "since=2025-01-01", "limit=1001",
                  "cursor=-1", "cursor=9999999999999999999", "cursor=1 OR 1=1"):  # fmt: skip
        answer = probe.send("GET", f"/v1/events?{quote(query, safe='=&')}", who="root")
        assert answer.status_code in (200, 422), query


def test_sql_metacharacters_are_data_never_code(probe: Probe) -> None:
    theirs = probe.send("POST", "/v1/grants", who="bob", json=VALID).json()["id"]
    before = len(grant_rows(probe.served.database_url))
    reason = "'); DROP TABLE grants; -- \" OR 1=1 /* %s %(x)s \\ ` $$"
    answer = probe.create({**VALID, "reason": reason})
    assert answer.status_code == 201
    assert answer.json()["reason"] == reason
    for body in ({**VALID, "namespace": "payments' OR '1'='1"},
                 {**VALID, "pods": ["web-0'; DELETE FROM grants; --"]},
                 {**VALID, "cluster": "default'--"}):  # fmt: skip
        assert probe.create(body).status_code == 422
    listed = probe.send("GET", "/v1/grants", params={"limit": 500}).json()["items"]
    assert theirs not in {g["id"] for g in listed}  # still only alice's own grants
    assert len(grant_rows(probe.served.database_url)) == before + 1  # the table is intact
    events = probe.send("GET", f"/v1/grants/{answer.json()['id']}/events").json()["items"]
    assert events[0]["detail"]["reason"] == reason


def test_after_the_hostile_input_the_cluster_matches_the_database(
    probe: Probe, served: Served
) -> None:
    assert probe.send("GET", "/readyz", who=None).status_code == 200
    assert_invariant(audit(served.sim, served.database_url), settled=False)
    log = Path(served.log).read_text(errors="replace")
    assert "Traceback" not in log, "an unexpected error was logged"
