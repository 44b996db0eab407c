"""OAuth M2M for a service principal: the client-credentials grant and bearer-token checks."""

from __future__ import annotations

import base64
import binascii
import secrets
import threading
from dataclasses import dataclass

from dbx_privatelink_local.databricks.clock import Clock
from dbx_privatelink_local.databricks.errors import ApiError, OAuthError

DEFAULT_SCOPE = "all-apis"


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    client_id: str
    account_id: str
    scope: str
    expires_at: float


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """(client_id, client_secret) from an HTTP Basic Authorization header, or None."""
    if not authorization or not authorization.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    return (client_id, secret) if sep else None


class TokenIssuer:
    """Issues opaque bearer tokens to known clients and tells which account a token speaks for."""

    def __init__(self, account_id: str, clients: dict[str, str], *, lifetime_s: int, clock: Clock) -> None:
        self.account_id = account_id
        self.lifetime_s = lifetime_s
        self._clients = dict(clients)
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, IssuedToken] = {}

    def add_client(self, client_id: str, client_secret: str) -> None:
        with self._lock:
            self._clients[client_id] = client_secret

    def issued(self) -> list[str]:
        """Every token issued and not revoked (tests check that none leaks into logs or history)."""
        with self._lock:
            return list(self._tokens)

    def revoke_all(self) -> None:
        with self._lock:
            self._tokens.clear()

    def issue(
        self,
        *,
        client_id: str | None,
        client_secret: str | None,
        grant_type: str | None,
        scope: str | None,
        account_id: str | None,
    ) -> dict[str, object]:
        """The token response of the client-credentials grant; OAuthError when the client or grant is bad."""
        if not client_id or not client_secret:
            raise OAuthError(
                "invalid_client", "Client authentication failed: no client credentials were sent"
            )
        with self._lock:
            known = self._clients.get(client_id)
        if known is None or not secrets.compare_digest(known, client_secret):
            raise OAuthError("invalid_client", "Client authentication failed")
        if account_id is not None and account_id != self.account_id:
            raise OAuthError("invalid_client", f"Client {client_id} does not belong to account {account_id}")
        if grant_type != "client_credentials":
            raise OAuthError(
                "unsupported_grant_type",
                f"Grant type {grant_type!r} is not supported by this client",
                status=400,
            )
        scope = scope or DEFAULT_SCOPE
        now = self._clock.now()
        token = IssuedToken(
            access_token=secrets.token_urlsafe(32),
            client_id=client_id,
            account_id=self.account_id,
            scope=scope,
            expires_at=now + self.lifetime_s,
        )
        with self._lock:
            for key in [k for k, t in self._tokens.items() if t.expires_at <= now]:
                del self._tokens[key]
            self._tokens[token.access_token] = token
        return {
            "access_token": token.access_token,
            "token_type": "Bearer",
            "expires_in": self.lifetime_s,
            "scope": scope,
        }

    def authenticate(self, authorization: str | None) -> IssuedToken:
        """The live token behind a `Bearer` header; UNAUTHENTICATED when missing, unknown or expired."""
        if not authorization or not authorization.lower().startswith("bearer "):
            raise ApiError(
                "UNAUTHENTICATED", "Credential was not sent or was of an unsupported type for this API."
            )
        with self._lock:
            token = self._tokens.get(authorization[7:].strip())
        if token is None:
            raise ApiError("UNAUTHENTICATED", "Invalid access token.")
        if token.expires_at <= self._clock.now():
            raise ApiError("UNAUTHENTICATED", "Access token expired.")
        return token
