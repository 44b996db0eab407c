"""Secrets Manager: the Databricks service principal's OAuth client id and secret."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from dbx_privatelink.aws.errors import map_aws_error
from dbx_privatelink.errors import DatabricksAuthError


class ServicePrincipalSecret(BaseModel):
    """The secret's JSON: {"client_id": "...", "client_secret": "..."}."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    client_id: str = Field(min_length=1)
    client_secret: SecretStr


class SecretsClient:
    def __init__(self, client: Any) -> None:
        self._sm = client

    def service_principal(self, secret_id: str) -> ServicePrincipalSecret:
        """Read and validate the service principal secret; never echo its value."""
        try:
            raw = self._sm.get_secret_value(SecretId=secret_id)["SecretString"]
        except (ClientError, BotoCoreError) as exc:
            raise map_aws_error(exc, f"GetSecretValue {secret_id}") from exc
        try:
            return ServicePrincipalSecret.model_validate(json.loads(raw))
        except (ValueError, ValidationError):
            raise DatabricksAuthError(
                f"secret {secret_id} must be JSON with client_id and client_secret of the Databricks "
                "service principal (see README, 'The secret')"
            ) from None
