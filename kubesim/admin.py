"""The admin-only control endpoint, `/_kubesim/...`: faults, latency, reset, users, clock,
where admission webhook Services listen.

It is HTTP rather than in-process so that tests in any process (the product under test, a
subprocess, a benchmark) can drive the same simulated cluster. Only the admin token may use it:
a test cannot accidentally let the code under test reconfigure its own cluster.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from kubesim import errors
from kubesim.cluster import Cluster
from kubesim.faults import FaultRule, Latency
from kubesim.httpio import Request, Response, json_response

PREFIX = "/_kubesim/"


class AdminEndpoint:
    def __init__(self, cluster: Cluster, request_log: deque[dict[str, Any]]) -> None:
        self.cluster = cluster
        self.request_log = request_log

    def handle(self, request: Request) -> Response:
        token = request.headers.get("authorization", "").partition(" ")[2].strip()
        if not token or self.cluster.authenticator.authenticate_token(token) is None:
            raise errors.unauthorized()
        if not self.cluster.authenticator.is_admin_token(token):
            raise errors.forbidden(None, "", "only the kubesim admin token may use /_kubesim/")
        route = (request.method, request.path[len(PREFIX) :].strip("/"))
        if route == ("GET", "state"):
            return json_response(self._state())
        if route == ("POST", "reset"):
            self.cluster.reset()
            self.request_log.clear()
            return json_response(self._state())
        if route == ("POST", "faults"):
            self.cluster.faults.add(FaultRule.from_json(self._body(request)))
            return json_response(self._state(), 201)
        if route == ("DELETE", "faults"):
            self.cluster.faults.clear()
            return json_response(self._state())
        if route == ("PUT", "latency"):
            body = self._body(request)
            fixed, jitter = float(body.get("fixed_ms", 0)), float(body.get("jitter_ms", 0))
            if fixed < 0 or jitter < 0:
                raise errors.bad_request("latency must not be negative")
            self.cluster.faults.latency = Latency(fixed_ms=fixed, jitter_ms=jitter)
            return json_response(self._state())
        if route == ("POST", "users"):
            body = self._body(request)
            user, token_value = body.get("user"), body.get("token")
            groups = body.get("groups") or []
            if not isinstance(user, str) or not user or not isinstance(token_value, str):
                raise errors.bad_request("a user token needs non-empty `token` and `user`")
            if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
                raise errors.bad_request("`groups` must be a list of strings")
            self.cluster.authenticator.add_user_token(token_value, user, groups)
            return json_response({"user": user, "groups": groups}, 201)
        if route == ("POST", "clock"):
            seconds = float(self._body(request).get("advance_seconds", 0))
            if seconds < 0:
                raise errors.bad_request("the clock only moves forward")
            self.cluster.clock.offset_seconds += seconds
            return json_response(self._state())
        if route == ("POST", "apply"):
            body = request.decode_body()
            objects = body if isinstance(body, list) else (body or {}).get("items")
            if not isinstance(objects, list) or not all(isinstance(o, dict) for o in objects):
                raise errors.bad_request("apply takes a JSON list of objects (or {items: [...]})")
            return json_response({"items": self.cluster.apply(objects)}, 201)
        if route == ("PUT", "service-addresses"):
            body = self._body(request)
            service, address = body.get("service"), body.get("address")
            if not isinstance(service, str) or service.count("/") != 1:
                raise errors.bad_request("`service` must be NAMESPACE/NAME")
            if not isinstance(address, str) or not address.rpartition(":")[2].isdigit():
                raise errors.bad_request("`address` must be HOST:PORT")
            self.cluster.webhooks.service_addresses[service] = address
            return json_response(dict(self.cluster.webhooks.service_addresses))
        if route == ("GET", "requests"):
            return json_response({"requests": list(self.request_log)})
        if route == ("DELETE", "requests"):
            self.request_log.clear()
            return json_response({"requests": []})
        raise errors.path_not_found()

    def _state(self) -> dict[str, Any]:
        return {
            **self.cluster.faults.describe(),
            "clock_offset_seconds": self.cluster.clock.offset_seconds,
            "token_max_seconds": self.cluster.config.token_max_seconds,
            "token_cache_ttl_seconds": self.cluster.token_cache.ttl_seconds,
            "kube_version": str(self.cluster.version),
        }

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        body = request.decode_body() if request.body.strip() else {}
        if not isinstance(body, dict):
            raise errors.bad_request("the body must be a JSON object")
        return body
