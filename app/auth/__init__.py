"""Authentication (principals, API keys, OIDC ID tokens) and authorization (policies, admins)."""

from app.auth.api_keys import ApiKeyVerifier, generate_api_key, hash_api_key
from app.auth.authenticator import Authenticator, build_authenticator
from app.auth.dependencies import (
    AdminDep,
    PolicyEngineDep,
    PrincipalDep,
    current_admin,
    current_principal,
)
from app.auth.oidc import OidcVerifier
from app.auth.policies import PolicyDenied, PolicyEngine
from app.auth.principals import CredentialVerifier, Principal

__all__ = [
    "AdminDep",
    "ApiKeyVerifier",
    "Authenticator",
    "CredentialVerifier",
    "OidcVerifier",
    "PolicyDenied",
    "PolicyEngine",
    "PolicyEngineDep",
    "Principal",
    "PrincipalDep",
    "build_authenticator",
    "current_admin",
    "current_principal",
    "generate_api_key",
    "hash_api_key",
]
