"""Secrets Manager: the Databricks service principal's OAuth client id and secret.

Read through Powertools Parameters: a value is kept at most `max_age_s` seconds, so a rotated secret is
used within that time by every warm container (not only by new ones), at one GetSecretValue per container
and max age.
"""

import json
from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from dbx_privatelink.aws import DEFAULT_SECRET_MAX_AGE_S
from dbx_privatelink.aws.errors import map_aws_error
from dbx_privatelink.errors import DatabricksAuthError


class ServicePrincipalSecret(BaseModel):
    """The secret's JSON: {"client_id": "...", "client_secret": "..."}."""

    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)
    client_id: str = Field(min_length=1)
    client_secret: SecretStr


class SecretsClient:
    def __init__(self, client: Any, *, max_age_s: int = DEFAULT_SECRET_MAX_AGE_S) -> None:
        self._provider = SecretsProvider(boto3_client=client)
        self._max_age_s = max_age_s

    def service_principal(self, secret_id: str, *, force_fetch: bool = False) -> ServicePrincipalSecret:
        """Read and validate the service principal secret (at most `max_age_s` old); never echo its value."""
        try:
            raw = self._provider.get(secret_id, max_age=self._max_age_s, force_fetch=force_fetch)
        except GetParameterError as exc:
            # Powertools wraps the botocore error (its context) in a message-only error: map the original.
            cause = exc.__context__
            if isinstance(cause, (ClientError, BotoCoreError)):
                raise map_aws_error(cause, f"GetSecretValue {secret_id}") from cause
            raise map_aws_error(exc, f"GetSecretValue {secret_id}") from exc
        try:
            text = raw if isinstance(raw, (str, bytes)) else ""  # a secret is a string or binary
            return ServicePrincipalSecret.model_validate(json.loads(text))
        except (ValueError, ValidationError):
            raise DatabricksAuthError(
                f"secret {secret_id} must be JSON with client_id and client_secret of the Databricks "
                "service principal (see README, 'The secret')"
            ) from None
