"""API keys: `sg_` keys verified by sha256 against configured hashes; admins from `admins`."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from app.auth import ApiKeyVerifier, Principal, build_authenticator, generate_api_key
from app.errors import Unauthorized
from app.settings import Settings
from app.settings_sections import ApiKeyConfig

KEY = "sg_" + "k" * 43
ROOT_KEY = "sg_" + "r" * 43


def config(name: str, key: str) -> ApiKeyConfig:
    # Hash computed independently of app code: the contract is "sha256 hex of the key".
    return ApiKeyConfig(name=name, sha256=hashlib.sha256(key.encode()).hexdigest())


def authenticate(credential: str) -> Principal:
    settings = Settings(
        api_keys=[config("ci-payments", KEY), config("root", ROOT_KEY)],
        admins=["apikey:root"],
    )
    return asyncio.run(build_authenticator(settings).authenticate(credential))


def test_generated_key_has_prefix_and_matching_hash() -> None:
    key, digest = generate_api_key()

    assert key.startswith("sg_")
    assert len(key) >= 40
    assert digest == hashlib.sha256(key.encode()).hexdigest()
    assert generate_api_key()[0] != key


def test_generated_key_verifies_against_its_hash() -> None:
    key, digest = generate_api_key()
    verifier = ApiKeyVerifier([ApiKeyConfig(name="fresh", sha256=digest)])

    assert verifier.match(key) == "fresh"


def test_configured_key_authenticates_as_apikey_principal() -> None:
    principal = authenticate(KEY)

    assert principal == Principal(id="apikey:ci-payments", kind="apikey", is_admin=False)


def test_admin_flag_comes_from_admins() -> None:
    principal = authenticate(ROOT_KEY)

    assert principal.id == "apikey:root"
    assert principal.is_admin is True


@pytest.mark.parametrize(
    "credential",
    [
        "sg_" + "x" * 43,  # well-formed, unknown
        KEY + "x",  # a prefix of a real key is not the key
        KEY[:-1],
        "sg_short",
        "sg_" + "k" * 40 + "!!!",  # bad characters
        "eyJhbGciOiJSUzI1NiJ9.e30.sig",  # a JWT: no OIDC verifier configured yet
        "plain-password",
    ],
)
def test_unknown_credentials_are_rejected_without_echo(credential: str) -> None:
    with pytest.raises(Unauthorized) as caught:
        authenticate(credential)

    assert caught.value.headers["WWW-Authenticate"] == (
        'Bearer realm="scangate", error="invalid_token"'
    )
    assert credential not in str(caught.value.problem())


def test_oversized_credential_is_rejected_before_hashing() -> None:
    with pytest.raises(Unauthorized):
        authenticate("sg_" + "k" * 10_000)


def test_verifier_ignores_credentials_of_other_kinds() -> None:
    verifier = ApiKeyVerifier([config("ci-payments", KEY)])

    assert asyncio.run(verifier.verify("eyJhbGciOiJSUzI1NiJ9.e30.sig")) is None


def test_every_configured_hash_is_checked() -> None:
    # Two names for one key cannot be configured (duplicate hash), so the first match is
    # unique; what matters is that matching does not depend on position in the list.
    keys = [config(f"k{i}", f"sg_{i:0>43}") for i in range(50)]
    verifier = ApiKeyVerifier(keys)

    assert verifier.match("sg_" + "0" * 41 + "49") == "k49"
    assert verifier.match("sg_" + "0" * 43) == "k0"
