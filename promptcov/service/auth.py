"""Bearer-token access: every endpoint but ``/healthz`` needs ``Authorization: Bearer <token>``.

The token is the environment variable ``PROMPTCOV_TOKEN``; the service refuses to start
without one. Tokens are compared with :func:`hmac.compare_digest`, so the time a comparison
takes does not tell an attacker how many leading characters were right.
"""

from __future__ import annotations

import hmac
import os

from promptcov.errors import InputError

__all__ = ["TOKEN_ENV", "MIN_TOKEN_LENGTH", "token_from_env", "check_bearer"]

TOKEN_ENV = "PROMPTCOV_TOKEN"
MIN_TOKEN_LENGTH = 16


def token_from_env(environ=None) -> str:
    """The service token from ``$PROMPTCOV_TOKEN``; ``InputError`` when it is unset or too short."""
    token = (environ if environ is not None else os.environ).get(TOKEN_ENV, "").strip()
    if not token:
        raise InputError(f"{TOKEN_ENV} is not set; the service refuses to start without a token "
                         f"(e.g. export {TOKEN_ENV}=$(python -c 'import secrets; print(secrets.token_urlsafe(32))'))")
    if len(token) < MIN_TOKEN_LENGTH:
        raise InputError(f"{TOKEN_ENV} is {len(token)} characters; use at least {MIN_TOKEN_LENGTH}")
    return token


def check_bearer(authorization: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header value carries ``token`` as a bearer token."""
    if not authorization:
        return False
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode("utf-8"), token.encode("utf-8"))
