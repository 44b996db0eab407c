"""Errors that carry the Account API's real error codes; routes turn them into the real bodies."""

from __future__ import annotations

from typing import Any

# error_code -> HTTP status, as the Account API answers (see the reference's Errors section).
STATUS_OF: dict[str, int] = {
    "INVALID_PARAMETER_VALUE": 400,
    "MALFORMED_REQUEST": 400,
    "INVALID_STATE": 400,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "RESOURCE_ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "UNAUTHENTICATED": 401,
    "REQUEST_LIMIT_EXCEEDED": 429,
    "TEMPORARILY_UNAVAILABLE": 503,
    "INTERNAL_ERROR": 500,
    "METHOD_NOT_ALLOWED": 405,
}


class ApiError(Exception):
    """An Account API error: `error_code` decides the HTTP status, `message` is what clients show."""

    def __init__(
        self,
        error_code: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
        *,
        bare_status: int | None = None,
    ) -> None:
        super().__init__(f"{error_code}: {message}")
        self.error_code = error_code
        self.message = message
        self.details = details or []
        # Answered as this status with an empty body (no error_code for the client to read), as Databricks
        # sometimes answers an in-use delete: 409 and nothing else.
        self.bare_status = bare_status

    @property
    def status(self) -> int:
        return self.bare_status or STATUS_OF.get(self.error_code, 500)

    def body(self) -> dict[str, Any]:
        return {"error_code": self.error_code, "message": self.message, "details": self.details}


def invalid(message: str) -> ApiError:
    return ApiError("INVALID_PARAMETER_VALUE", message)


def malformed(message: str) -> ApiError:
    return ApiError("MALFORMED_REQUEST", message)


def invalid_state(message: str) -> ApiError:
    return ApiError("INVALID_STATE", message)


def in_use(message: str, *, as_bare_409: bool = False) -> ApiError:
    """A delete refused because something still uses the object: INVALID_STATE with the message, or (as
    seen in the wild) HTTP 409 with an empty body."""
    return ApiError("INVALID_STATE", message, bare_status=409 if as_bare_409 else None)


def not_found(message: str) -> ApiError:
    return ApiError("RESOURCE_DOES_NOT_EXIST", message)


def already_exists(message: str) -> ApiError:
    return ApiError("RESOURCE_ALREADY_EXISTS", message)


class OAuthError(Exception):
    """A token endpoint error: OAuth 2.0 bodies are `{error, error_description}`, not the API's shape."""

    def __init__(self, error: str, description: str, status: int = 401) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}
