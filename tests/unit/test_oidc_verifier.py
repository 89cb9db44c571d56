"""OIDC ID tokens against a real local issuer (discovery + JWKS over loopback HTTP): what is
accepted, what is refused and why, and how signing keys are cached, rotated and rate-limited."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest

from app.auth import build_authenticator
from app.auth.oidc import OidcVerifier
from app.auth.oidc_keys import FetchPolicy, IssuerKeys, OidcIssuerUnavailable
from app.errors import Unauthorized
from app.settings import Settings
from app.settings_sections import OidcConfig
from tests.oidc_issuer import LocalIssuer, new_key, running_issuer

pytestmark = pytest.mark.anyio

# Tests may refetch as often as they like; the rate limit has its own tests below.
EAGER = FetchPolicy(timeout_seconds=2, min_refresh_interval_seconds=0)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def rsa_key() -> Any:
    return new_key("RSA", kid="rsa-1")


@pytest.fixture
def issuer(rsa_key: Any) -> Iterator[LocalIssuer]:
    with running_issuer(rsa_key) as running:
        yield running


def verifier_for(issuer: LocalIssuer, policy: FetchPolicy = EAGER, **config: Any) -> OidcVerifier:
    config.setdefault("audience", "scangate")
    return OidcVerifier([OidcConfig(issuer=issuer.url, **config)], fetch_policy=policy)


async def rejection(verifier: OidcVerifier, token: str) -> str:
    with pytest.raises(Unauthorized) as caught:
        await verifier.verify(token)
    problem = caught.value.problem()
    assert token not in str(problem)
    assert caught.value.headers["WWW-Authenticate"].endswith('error="invalid_token"')
    return str(problem["detail"])


# -- accepted -----------------------------------------------------------------------------------


async def test_valid_token_becomes_an_oidc_principal_with_its_claims(issuer: LocalIssuer) -> None:
    principal = await verifier_for(issuer).verify(issuer.token())

    assert principal is not None
    assert principal.id == f"oidc:{issuer.url}#repo:acme/payments:ref:refs/heads/main"
    assert principal.kind == "oidc"
    assert principal.claims["repository"] == "acme/payments"
    assert principal.claims["environment"] == "production"
    assert principal.is_admin is False
    assert issuer.requests == ["/.well-known/openid-configuration", "/jwks"]


async def test_ec_signed_tokens_are_accepted(issuer: LocalIssuer) -> None:
    ec_key = new_key("EC")
    issuer.publish(ec_key)

    principal = await verifier_for(issuer).verify(issuer.token(ec_key))

    assert principal is not None
    assert principal.claims["sub"] == "repo:acme/payments:ref:refs/heads/main"


async def test_keys_are_cached_between_tokens(issuer: LocalIssuer) -> None:
    verifier = verifier_for(issuer, FetchPolicy())
    for _ in range(5):
        assert await verifier.verify(issuer.token()) is not None

    assert issuer.jwks_requests == 1


async def test_clock_skew_within_the_leeway_is_tolerated(issuer: LocalIssuer) -> None:
    now = int(time.time())
    token = issuer.token(exp=now - 10, iat=now - 300, nbf=now + 10)

    assert await verifier_for(issuer).verify(token) is not None


async def test_issuer_with_a_trailing_slash_in_iss_is_the_same_issuer(issuer: LocalIssuer) -> None:
    principal = await verifier_for(issuer).verify(issuer.token(iss=issuer.url + "/"))

    assert principal is not None
    assert principal.id.startswith(f"oidc:{issuer.url}#")


async def test_any_configured_audience_of_an_issuer_is_accepted(issuer: LocalIssuer) -> None:
    verifier = OidcVerifier(
        [
            OidcConfig(issuer=issuer.url, audience="scangate"),
            OidcConfig(issuer=issuer.url, audience="https://scangate.example.com"),
        ],
        fetch_policy=EAGER,
    )

    assert await verifier.verify(issuer.token(aud="https://scangate.example.com")) is not None
    assert await verifier.verify(issuer.token(aud=["other", "scangate"])) is not None


async def test_token_without_kid_uses_the_issuers_only_key(issuer: LocalIssuer) -> None:
    key = issuer.published[0]
    token = jwt.encode(issuer.claims(), key.private_key, algorithm="RS256")

    assert await verifier_for(issuer).verify(token) is not None


async def test_configured_jwks_url_skips_discovery(issuer: LocalIssuer) -> None:
    verifier = verifier_for(issuer, jwks_url=f"{issuer.url}/jwks")

    assert await verifier.verify(issuer.token()) is not None
    assert issuer.requests == ["/jwks"]


async def test_the_authenticator_accepts_oidc_tokens_beside_api_keys(issuer: LocalIssuer) -> None:
    subject = "repo:acme/payments:ref:refs/heads/main"
    settings = Settings(
        oidc=[{"issuer": issuer.url, "audience": "scangate"}],
        admins=[f"oidc:{issuer.url}#{subject}"],
    )

    principal = await build_authenticator(settings).authenticate(issuer.token())

    assert principal.id == f"oidc:{issuer.url}#{subject}"
    assert principal.is_admin is True  # admins are decided by the authenticator, not by claims


# -- refused ------------------------------------------------------------------------------------


async def test_wrong_audience_is_rejected(issuer: LocalIssuer) -> None:
    detail = await rejection(verifier_for(issuer), issuer.token(aud="https://github.com/acme"))

    assert "audience" in detail


async def test_expired_token_is_rejected(issuer: LocalIssuer) -> None:
    now = int(time.time())
    detail = await rejection(verifier_for(issuer), issuer.token(iat=now - 900, exp=now - 120))

    assert "expired" in detail


@pytest.mark.parametrize("claim", ["nbf", "iat"])
async def test_token_not_valid_yet_is_rejected(issuer: LocalIssuer, claim: str) -> None:
    future = int(time.time()) + 600
    detail = await rejection(verifier_for(issuer), issuer.token(**{claim: future}))

    assert "not valid yet" in detail


async def test_token_signed_by_another_key_with_a_published_kid_is_rejected(
    issuer: LocalIssuer,
) -> None:
    forger = new_key("RSA", kid=issuer.published[0].kid)

    detail = await rejection(verifier_for(issuer), issuer.token(forger))

    assert "signature" in detail


async def test_tampered_claims_break_the_signature(issuer: LocalIssuer) -> None:
    header, _, signature = issuer.token().split(".")
    other_payload = issuer.token(sub="repo:acme/admin:ref:refs/heads/main").split(".")[1]

    detail = await rejection(verifier_for(issuer), f"{header}.{other_payload}.{signature}")

    assert "signature" in detail


async def test_unknown_issuer_is_rejected_without_contacting_it(issuer: LocalIssuer) -> None:
    with running_issuer() as stranger:
        detail = await rejection(verifier_for(issuer), stranger.token())

        assert "issuer not trusted" in detail
        assert stranger.requests == []


async def test_alg_none_is_rejected_before_any_key_is_fetched(issuer: LocalIssuer) -> None:
    detail = await rejection(verifier_for(issuer), issuer.unsigned_token())

    assert "algorithm" in detail
    assert issuer.requests == []


async def test_hs256_signed_with_the_public_key_is_rejected(issuer: LocalIssuer) -> None:
    forged = issuer.hs256_token_with_public_key(issuer.published[0])

    detail = await rejection(verifier_for(issuer), forged)

    assert "algorithm" in detail


async def test_algorithm_that_does_not_fit_the_key_is_rejected(issuer: LocalIssuer) -> None:
    ec_key = new_key("EC", kid=issuer.published[0].kid)
    # Signed ES256 under the kid of the published RSA key (whose JWK says RS256).
    detail = await rejection(verifier_for(issuer), issuer.token(ec_key))

    assert "algorithm does not match" in detail


@pytest.mark.parametrize("claim", ["sub", "exp", "iat", "aud"])
async def test_token_missing_a_required_claim_is_rejected(issuer: LocalIssuer, claim: str) -> None:
    await rejection(verifier_for(issuer), issuer.token(**{claim: None}))


async def test_token_of_a_kid_the_issuer_does_not_publish_is_rejected(issuer: LocalIssuer) -> None:
    detail = await rejection(verifier_for(issuer), issuer.token(new_key("RSA", kid="nope")))

    assert "key the issuer does not publish" in detail


async def test_rejections_never_log_the_token(
    issuer: LocalIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = issuer.token(aud="elsewhere")

    await rejection(verifier_for(issuer), token)

    assert token not in caplog.text
    assert token.split(".")[2] not in caplog.text
    assert "audience" in caplog.text


@pytest.mark.parametrize("credential", ["sg_abcdefghijklmnopqrstuvwxyz", "hunter2", "a.b"])
async def test_credentials_that_are_not_jwts_are_left_to_other_verifiers(
    issuer: LocalIssuer, credential: str
) -> None:
    assert await verifier_for(issuer).verify(credential) is None
    assert issuer.requests == []


# -- keys: rotation, outages, rate limiting -----------------------------------------------------


async def test_rotated_keys_are_refetched_when_a_new_kid_appears(issuer: LocalIssuer) -> None:
    verifier = verifier_for(issuer)
    old_key = issuer.published[0]
    assert await verifier.verify(issuer.token()) is not None
    new = new_key("RSA", kid="rsa-2")
    issuer.publish(new)  # the issuer rotated: the old key is withdrawn

    principal = await verifier.verify(issuer.token(new))

    assert principal is not None
    assert issuer.jwks_requests == 2
    # The withdrawn key no longer verifies anything once the new JWKS is in.
    await rejection(verifier, issuer.token(old_key))


async def test_unknown_kids_do_not_refetch_more_than_once_per_interval(
    issuer: LocalIssuer,
) -> None:
    now = [1000.0]
    keys = IssuerKeys(
        issuer.url, policy=FetchPolicy(min_refresh_interval_seconds=30), clock=lambda: now[0]
    )
    assert await keys.key_for("rsa-1") is not None

    for i in range(10):
        assert await keys.key_for(f"made-up-{i}") is None
    assert issuer.jwks_requests == 1

    now[0] += 31
    assert await keys.key_for("made-up-again") is None
    assert issuer.jwks_requests == 2


async def test_stale_keys_are_refreshed_after_max_age(issuer: LocalIssuer) -> None:
    now = [1000.0]
    keys = IssuerKeys(issuer.url, policy=FetchPolicy(max_age_seconds=600), clock=lambda: now[0])
    await keys.key_for("rsa-1")
    now[0] += 601

    await keys.key_for("rsa-1")

    assert issuer.jwks_requests == 2


async def test_cached_keys_keep_working_while_the_issuer_is_down(issuer: LocalIssuer) -> None:
    now = [1000.0]
    keys = IssuerKeys(issuer.url, policy=FetchPolicy(max_age_seconds=600), clock=lambda: now[0])
    await keys.key_for("rsa-1")
    issuer.available = False
    now[0] += 601

    assert await keys.key_for("rsa-1") is not None


async def test_unreachable_issuer_is_a_503_with_retry_after(issuer: LocalIssuer) -> None:
    issuer.available = False

    with pytest.raises(OidcIssuerUnavailable) as caught:
        await verifier_for(issuer).verify(issuer.token())

    assert caught.value.status == 503
    assert "Retry-After" in caught.value.headers


async def test_discovery_naming_another_issuer_is_not_trusted(issuer: LocalIssuer) -> None:
    issuer.discovery_issuer = "https://evil.example.com"

    with pytest.raises(OidcIssuerUnavailable):
        await verifier_for(issuer).verify(issuer.token())
    assert "/jwks" not in issuer.requests


async def test_fetches_time_out_instead_of_hanging() -> None:
    # A listening socket that never answers: connect succeeds, the response never comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        verifier = OidcVerifier(
            [OidcConfig(issuer=url, audience="scangate")],
            fetch_policy=FetchPolicy(timeout_seconds=0.3),
        )
        with running_issuer() as other:
            token = other.token(iss=url)
        started = time.monotonic()

        with pytest.raises(OidcIssuerUnavailable):
            await verifier.verify(token)

        assert time.monotonic() - started < 3


async def test_concurrent_first_requests_share_one_fetch(issuer: LocalIssuer) -> None:
    verifier = verifier_for(issuer, FetchPolicy())
    token = issuer.token()

    principals = await asyncio.gather(*(verifier.verify(token) for _ in range(10)))

    assert all(p is not None for p in principals)
    assert issuer.jwks_requests == 1
