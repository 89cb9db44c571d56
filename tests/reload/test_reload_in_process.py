"""A reload of the running app (both databases, kubesim over TLS): new API keys and policies
take effect together, a bad file changes nothing, settings that need a restart keep their
running value, and each reload is an audit record."""

from __future__ import annotations

from typing import Any

import pytest

from app.auth import generate_api_key, hash_api_key
from app.main import reaper_pass
from tests.oidc_issuer import LocalIssuer
from tests.reload.reloadable import Reloadable, running
from tests.support.logs import LogCapture
from tests.support.scangate import Deployment

pytestmark = pytest.mark.anyio


async def whoami(app: Reloadable, key: str) -> tuple[int, Any]:
    response = await app.http.get("/v1/whoami", headers={"Authorization": f"Bearer {key}"})
    return response.status_code, response.json()


def keys_without(deployment: Deployment, removed: str) -> list[dict[str, str]]:
    return [k for k in deployment.document["api_keys"] if k["name"] != removed]


async def test_reload_swaps_api_keys_and_policies(
    reloadable: Reloadable, deployment: Deployment, logs: LogCapture
) -> None:
    assert (await reloadable.create(who="alice")).status_code == 201
    dave_key, dave_hash = generate_api_key()
    policies = deployment.document["policies"]
    policies[0]["namespaces"] = ["orders"]  # payments-ci: payments -> orders
    policies[0]["subjects"] = ["apikey:alice", "apikey:dave"]
    deployment.reconfigure(
        api_keys=[*keys_without(deployment, "bob"), {"name": "dave", "sha256": dave_hash}],
        policies=policies,
    )

    report = await reloadable.reloader.reload("test")

    assert report.outcome == "applied"
    assert report.generation == 2
    assert report.changes.sections["api_keys"].added == ("dave",)
    assert report.changes.sections["api_keys"].removed == ("bob",)
    assert report.changes.sections["policies"].changed == ("payments-ci",)
    assert report.changes.restart_required == ()
    status, body = await whoami(reloadable, dave_key)
    assert (status, body["principal"]) == (200, "apikey:dave")
    assert [p["namespaces"] for p in body["policies"]] == [["orders"]]
    assert (await whoami(reloadable, deployment.api_keys["bob"]))[0] == 401
    refused = await reloadable.create(who="alice")  # payments is no longer allowed
    assert refused.status_code == 403
    assert refused.json()["denied"] == "namespace"
    [audit] = [r for r in logs.by_logger("scangate.audit") if r["audit"]["actor"] == "system"]
    assert audit["audit"]["type"] == "config_reloaded"
    detail = audit["audit"]["detail"]
    assert detail["changed"]["api_keys"]["added"] == 1
    assert detail["changed"]["api_keys"]["removed"] == 1
    assert (detail["generation"], detail["from_generation"]) == (2, 1)
    assert dave_hash not in logs.raw
    health = (await reloadable.http.get("/healthz")).json()["config"]
    assert health["generation"] == 2
    assert health["last_reload"]["outcome"] == "applied"
    assert health["last_reload"]["changed"] == ["api_keys", "policies"]


async def test_a_file_with_a_yaml_error_is_refused_and_the_old_configuration_stays(
    reloadable: Reloadable, deployment: Deployment, logs: LogCapture
) -> None:
    deployment.config_path.write_text("api_keys: [\n  {name: broken\n")

    report = await reloadable.reloader.reload("test")

    assert report.outcome == "refused"
    assert report.generation == 1
    assert "not valid YAML at line" in report.problems[0][1]
    assert (await whoami(reloadable, deployment.api_keys["bob"]))[0] == 200
    assert (await reloadable.create(who="alice")).status_code == 201
    [error] = [r for r in logs.records() if r["logger"] == "app.reload.reloader"]
    assert error["level"] == "ERROR"
    assert "refused" in error["message"]
    assert str(deployment.config_path) in error["message"]
    health = (await reloadable.http.get("/healthz")).json()["config"]
    assert (health["generation"], health["last_reload"]["outcome"]) == (1, "refused")
    metrics = (await reloadable.http.get("/metrics")).text
    assert 'scangate_config_reloads_total{outcome="refused"} 1.0' in metrics
    assert "scangate_config_last_reload_success 0.0" in metrics


async def test_an_invalid_policy_is_refused_naming_the_field_and_nothing_changes(
    reloadable: Reloadable, deployment: Deployment, logs: LogCapture
) -> None:
    carol_new_key, carol_new_hash = generate_api_key()
    policies = deployment.document["policies"]
    policies[1]["max_ttl_seconds"] = 5  # below the minimum TTL
    deployment.reconfigure(
        # A valid key change in the same file must not be applied alone.
        api_keys=[*keys_without(deployment, "carol"), {"name": "carol", "sha256": carol_new_hash}],
        policies=policies,
    )

    report = await reloadable.reloader.reload("test")

    assert report.outcome == "refused"
    assert [key for key, _ in report.problems] == ["policies[1].max_ttl_seconds"]
    assert (await whoami(reloadable, deployment.api_keys["carol"]))[0] == 200
    assert (await whoami(reloadable, carol_new_key))[0] == 401
    [audit] = logs.by_logger("scangate.audit")
    assert audit["audit"]["type"] == "config_reload_refused"
    assert audit["audit"]["actor"] == "system"
    assert audit["audit"]["detail"]["problems"][0]["key"] == "policies[1].max_ttl_seconds"
    assert "policies[1].max_ttl_seconds" in logs.text
    assert carol_new_hash not in logs.raw


async def test_a_policy_naming_a_cluster_that_only_a_restart_would_add_is_refused(
    reloadable: Reloadable, deployment: Deployment
) -> None:
    clusters = [*deployment.document["clusters"], {**deployment.document["clusters"][0]}]
    clusters[1]["name"] = "second"
    clusters[1]["grants_namespace"] = "scangate-grants-2"
    policies = deployment.document["policies"]
    for policy in policies:
        policy["clusters"] = ["default"]
    policies[0]["clusters"] = ["second"]
    deployment.reconfigure(clusters=clusters, policies=policies)

    report = await reloadable.reloader.reload("test")

    assert report.outcome == "refused"
    assert ("policies[0].clusters[0]", "unknown cluster 'second'") in report.problems


async def test_settings_that_need_a_restart_keep_their_running_value(
    reloadable: Reloadable, deployment: Deployment, logs: LogCapture
) -> None:
    erin_key, erin_hash = generate_api_key()
    deployment.reconfigure(
        database_url="sqlite:////nonexistent/elsewhere.db",
        reaper={"enabled": False},
        api_keys=[*deployment.document["api_keys"], {"name": "erin", "sha256": erin_hash}],
    )
    running_url = reloadable.services.settings.database_url

    report = await reloadable.reloader.reload("test")

    assert report.outcome == "applied"
    assert set(report.changes.restart_required) == {"database_url", "reaper"}
    assert reloadable.services.settings.database_url == running_url
    assert reloadable.services.settings.reaper.enabled is True
    assert (await whoami(reloadable, erin_key))[0] == 200
    assert (await reloadable.create(who="alice")).status_code == 201  # same database
    warning = next(r for r in logs.records() if "after a restart" in r["message"])
    assert "database_url, reaper" in warning["message"]
    assert "nonexistent" not in logs.text  # the URL's value is never logged


async def test_an_unchanged_file_is_not_a_new_generation_nor_an_audit_event(
    reloadable: Reloadable, logs: LogCapture
) -> None:
    report = await reloadable.reloader.reload("test")

    assert (report.outcome, report.generation) == ("unchanged", 1)
    assert logs.by_logger("scangate.audit") == []


async def test_subscribers_get_the_new_settings_and_a_failing_one_does_not_undo_the_swap(
    reloadable: Reloadable, deployment: Deployment
) -> None:
    seen: list[list[str]] = []

    def failing(_settings: object) -> None:
        raise RuntimeError("subscriber bug")

    reloadable.reloader.live.subscribe(failing)
    reloadable.reloader.live.subscribe(lambda s: seen.append([k.name for k in s.api_keys]))
    frank_key = generate_api_key()[0]
    deployment.reconfigure(
        api_keys=[
            *deployment.document["api_keys"],
            {"name": "frank", "sha256": hash_api_key(frank_key)},
        ]
    )

    report = await reloadable.reloader.reload("test")

    assert report.outcome == "applied"
    assert seen == [["alice", "bob", "carol", "root", "frank"]]
    assert (await whoami(reloadable, frank_key))[0] == 200


async def test_a_reload_keeps_the_oidc_issuers_cached_signing_keys(
    deployment: Deployment, issuer: LocalIssuer
) -> None:
    policy = {
        "name": "oidc-ci",
        "subjects": [f"oidc:{issuer.url}#repo:acme/payments:*"],
        "namespaces": ["payments"],
        "scanners": ["exec"],
    }
    deployment.reconfigure(
        oidc=[{"issuer": issuer.url, "audience": "scangate"}],
        policies=[*deployment.document["policies"], policy],
    )
    headers = {"Authorization": f"Bearer {issuer.token()}"}
    async with running(deployment) as app:
        assert (await app.http.get("/v1/whoami", headers=headers)).status_code == 200
        deployment.reconfigure(
            api_keys=[k for k in deployment.document["api_keys"] if k["name"] != "bob"],
            policies=[*deployment.document["policies"][:2], {**policy, "scanners": ["debug"]}],
        )
        assert (await app.reloader.reload("test")).outcome == "applied"
        issuer.available = False  # an issuer outage during the reload changes nothing

        after = await app.http.get("/v1/whoami", headers=headers)

    assert after.status_code == 200, after.text
    assert [p["scanners"] for p in after.json()["policies"]] == [["debug"]]
    assert issuer.jwks_requests == 1


async def test_a_refused_database_url_is_never_quoted(
    reloadable: Reloadable, deployment: Deployment, logs: LogCapture
) -> None:
    deployment.reconfigure(database_url="mysql://scangate:hunter2-secret@db.example/scangate")

    report = await reloadable.reloader.reload("test")

    assert report.outcome == "refused"
    assert [key for key, _ in report.problems] == ["database_url"]
    assert "hunter2-secret" not in logs.raw
    assert "hunter2-secret" not in (await reloadable.http.get("/healthz")).text


async def test_a_file_changing_only_restart_only_settings_changes_nothing_in_force(
    reloadable: Reloadable, deployment: Deployment, logs: LogCapture
) -> None:
    deployment.reconfigure(log_format="text", sidecar_container="scanner")

    report = await reloadable.reloader.reload("test")

    assert (report.outcome, report.generation) == ("unchanged", 1)
    assert report.changes.restart_required == ("log_format",)
    assert logs.by_logger("scangate.audit") == []
    health = (await reloadable.http.get("/healthz")).json()["config"]["last_reload"]
    assert (health["outcome"], health["restart_required"]) == ("unchanged", ["log_format"])


async def test_grants_the_reloaded_policies_no_longer_allow_are_revoked_by_the_next_pass(
    reloadable: Reloadable, deployment: Deployment
) -> None:
    """The reaper's policy re-check runs once per configuration generation, not once per
    start: a reload that takes a namespace away ends the grants in it without a restart."""
    created = await reloadable.create(who="alice")
    assert created.status_code == 201
    grant_id = created.json()["id"]
    the_pass = reaper_pass(reloadable.services)
    assert (await the_pass.run(sweep=False)).disallowed == 0
    policies = deployment.document["policies"]
    policies[0]["namespaces"] = ["orders"]  # payments-ci: payments -> orders
    deployment.reconfigure(policies=policies)
    assert (await the_pass.run(sweep=False)).disallowed == 0  # nothing changed in force yet

    assert (await reloadable.reloader.reload("test")).outcome == "applied"

    assert (await the_pass.run(sweep=False)).disallowed == 1
    grant = await reloadable.http.get(f"/v1/grants/{grant_id}", headers=reloadable.auth("alice"))
    assert grant.json()["status"] == "revoked"
    assert (await the_pass.run(sweep=False)).disallowed == 0  # checked once per generation
