"""The error taxonomy. Class names ARE the Step Functions error names: renaming one is a breaking change.

Two families: RetryableError (the state machine retries with backoff and jitter) and TerminalError (one
failure path records it and ends the execution FAILED). Messages are read by humans in the execution's
cause: they say what is wrong and what to do, and never carry a secret or a token.
"""

from __future__ import annotations

import json


class DbxPrivateLinkError(Exception):
    """Root of every error the application raises on purpose."""


# --- retryable ---------------------------------------------------------------------------------------


class RetryableError(DbxPrivateLinkError):
    """Transient: the same step, run again later, can succeed."""


class AwsThrottledError(RetryableError):
    """An AWS API refused the call for its rate limit (RequestLimitExceeded, Throttling)."""


class AwsUnavailableError(RetryableError):
    """An AWS API failed on its side (5xx) or could not be reached."""


class EventualConsistencyError(RetryableError):
    """A resource just created is not visible yet (EC2 Describe after Create)."""


class DatabricksThrottledError(RetryableError):
    """The Databricks Account API kept answering 429 for the time this invocation had."""


class DatabricksUnavailableError(RetryableError):
    """The Databricks Account API answered 5xx or dropped the connection for the time this invocation had."""


class WorkspaceBusyError(RetryableError):
    """The workspace is PROVISIONING: a change must wait until it settles."""


class ResolverBusyError(RetryableError):
    """A Route 53 Resolver resource is in a transitional status that refuses the change for now."""


class SharedResourceBusyError(RetryableError):
    """A resource several workspaces share is being created or deleted by another execution right now."""


class DnsNotAnsweredError(RetryableError):
    """A name got no answer from inside the VPC (timeout, SERVFAIL): asked again over a bounded window."""


class ResourceInUseError(RetryableError):
    """A delete was refused because something still uses the resource for now (Databricks INVALID_STATE or
    409, EC2 DependencyViolation, a Resolver resource in transition): tried again, never taken as done."""


# --- terminal ----------------------------------------------------------------------------------------


class TerminalError(DbxPrivateLinkError):
    """Needs a human: the spec, the account or the environment must change before a re-run can succeed."""


class SpecInvalidError(TerminalError):
    """The workspace spec is invalid: the message names each field and the fix."""


class PreflightFailedError(TerminalError):
    """The environment does not meet a requirement. Raised by Preflight before any change, or by a later step
    (a resource went between Preflight and the step) before that step's own first change: other steps of the
    same run may have changed things, so its message says what this step left alone, never "nothing"."""


class QuotaExceededError(TerminalError):
    """An AWS quota is exhausted (LimitExceededException): the message names the quota."""


class AwsAccessDeniedError(TerminalError):
    """The function's role may not make this call."""


class AwsRequestError(TerminalError):
    """AWS refused the request as invalid (a 4xx that is neither throttling nor access)."""


class IdempotencyConflictError(TerminalError):
    """A ClientToken or CreatorRequestId was reused with other parameters."""


class ResourceConflictError(TerminalError):
    """A resource that must be ours is owned by something else, or exists twice."""


class PrivateDnsConflictError(ResourceConflictError):
    """Another endpoint of the VPC already holds private DNS for the service's domain (one per VPC)."""


class EndpointRejectedError(TerminalError):
    """A VPC endpoint or its Databricks registration was rejected."""


class EndpointFailedError(TerminalError):
    """A VPC endpoint went to failed, deleted or expired."""


class DatabricksAuthError(TerminalError):
    """OAuth M2M failed or the service principal lacks access to the account."""


class DatabricksRequestError(TerminalError):
    """The Databricks Account API refused the request (4xx other than auth and throttling)."""

    # Callers branch on the API's error_code (INVALID_STATE, INVALID_PARAMETER_VALUE ...), not on the text.
    def __init__(self, message: str, *, error_code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.status = status


class DatabricksNotFoundError(DatabricksRequestError):
    """The Databricks object does not exist (404, RESOURCE_DOES_NOT_EXIST): find-first code creates it."""


class DatabricksConflictError(DatabricksRequestError):
    """The Databricks API answered 409: the object conflicts with or is used by another (an in-use delete)."""


class DatabricksAlreadyExistsError(DatabricksConflictError):
    """The Databricks object already exists (RESOURCE_ALREADY_EXISTS): find it and adopt it."""


class WorkspaceFailedError(TerminalError):
    """The workspace ended FAILED or BANNED; the message carries the network's error messages."""


class LeaseLostError(TerminalError):
    """Another execution holds the workspace's lease: this one must not write."""


class PollTimeoutError(TerminalError):
    """A polling loop reached its upper bound."""


class EndpointsNotCreatedTimeoutError(PollTimeoutError):
    """The VPC endpoints stayed pending past the polling bound."""


class EndpointsNotAvailableTimeoutError(PollTimeoutError):
    """The endpoints or their registrations did not become available within the polling bound."""


class WorkspaceNotRunningTimeoutError(PollTimeoutError):
    """The workspace did not reach RUNNING within the polling bound."""


class ResolverNotOperationalTimeoutError(PollTimeoutError):
    """A Route 53 Resolver endpoint, rule or association did not become operational in time."""


class ZoneChangeNotInSyncTimeoutError(PollTimeoutError):
    """A private hosted zone association did not reach INSYNC within the polling bound."""


class LeaseNotFreedTimeoutError(PollTimeoutError):
    """A decommission waited past its bound for the execution holding the workspace's lease to end."""


class WorkspaceNotDeletedTimeoutError(PollTimeoutError):
    """A deleted Databricks workspace was still readable past the polling bound."""


class ResourcesStillInUseTimeoutError(PollTimeoutError):
    """Deletes kept being refused as in use (INVALID_STATE, 409, DependencyViolation) past the bound."""


class DnsVerificationError(TerminalError):
    """A name did not resolve, from inside the VPC, to the address it must."""


class DecommissionRefusedError(TerminalError):
    """A decommission would delete what the application did not make (a retrofitted workspace): nothing
    was deleted; the message names the flag or the mode that allows it."""


def error_classes() -> dict[str, type[DbxPrivateLinkError]]:
    """Every error class by name: the names the state machines may match."""
    found: dict[str, type[DbxPrivateLinkError]] = {}
    pending: list[type[DbxPrivateLinkError]] = [DbxPrivateLinkError]
    while pending:
        cls = pending.pop()
        found[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return found


def human_cause(error: str, cause: str) -> str:
    """The readable part of a Step Functions cause: a Lambda error payload's message, else the cause itself."""
    try:
        payload = json.loads(cause)
    except (TypeError, ValueError):
        return cause or error
    if isinstance(payload, dict):
        message = payload.get("errorMessage") or payload.get("Cause") or payload.get("message")
        if message:
            return str(message)
    return cause or error
