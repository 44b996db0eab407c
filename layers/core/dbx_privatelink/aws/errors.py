"""botocore errors turned into the domain's error taxonomy."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, ReadTimeoutError
from botocore.parsers import ResponseParserError

from dbx_privatelink import errors

_THROTTLING = {
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestThrottled",
    "PriorRequestNotComplete",
}
_QUOTA = {
    "VpcEndpointLimitExceeded",
    "LimitExceededException",
    "LimitExceeded",
    "ServiceQuotaExceededException",
    "RulesPerSecurityGroupLimitExceeded",
    "SecurityGroupsPerInterfaceLimitExceeded",
    "SecurityGroupLimitExceeded",
}
_ACCESS = {"UnauthorizedOperation", "AccessDenied", "AccessDeniedException", "AuthFailure"}


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def map_aws_error(exc: Exception, operation: str) -> errors.DbxPrivateLinkError:
    """The domain error for a failed AWS call; the message names the operation and AWS's own words."""
    if isinstance(exc, (ConnectionError, ReadTimeoutError)):
        return errors.AwsUnavailableError(f"{operation}: AWS could not be reached ({exc})")
    if isinstance(exc, (BotoCoreError, ResponseParserError)):
        return errors.AwsUnavailableError(f"{operation}: {exc}")
    if not isinstance(exc, ClientError):
        return errors.AwsRequestError(f"{operation}: {exc}")
    code = error_code(exc)
    message = exc.response.get("Error", {}).get("Message", "")
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400) or 400)
    text = f"{operation} failed: {code}: {message}"
    if code in _THROTTLING:
        return errors.AwsThrottledError(text)
    if code in _QUOTA:
        return errors.QuotaExceededError(f"{text} (an AWS quota is exhausted: raise it or free capacity)")
    if code in _ACCESS:
        return errors.AwsAccessDeniedError(f"{text} (the function's role lacks this permission)")
    if code == "IdempotentParameterMismatch":
        return errors.IdempotencyConflictError(text)
    if status >= 500 or code in {"InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable"}:
        return errors.AwsUnavailableError(text)
    return errors.AwsRequestError(text)
