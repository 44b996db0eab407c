"""The Databricks secret read through Powertools Parameters: kept at most its max age, so a rotation reaches
warm containers; Secrets Manager in moto, the Account API emulator on a loopback socket."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from dbx_privatelink.aws.secrets import SecretsClient
from dbx_privatelink.errors import AwsRequestError, DatabricksAuthError
from dbx_privatelink.wiring import Deps, Settings
from dbx_privatelink_local.databricks import DatabricksEmulator, ManualClock
from dbx_privatelink_local.databricks.memory_aws import InMemoryAwsView
from dbx_privatelink_local.databricks.server import EmulatorServer

REGION = "us-east-1"
ACCOUNT = "0d5a0ac4-7a1e-4c0e-9f7e-000000000013"
CLIENT_ID = "sp-rotated"


def _value(secret: str) -> str:
    return json.dumps({"client_id": CLIENT_ID, "client_secret": secret})


class SecretsManager:
    """moto's Secrets Manager, counting the GetSecretValue calls the session's clients make."""

    def __init__(self, session: boto3.session.Session) -> None:
        self.session = session
        self.client = session.client("secretsmanager")
        self.reads = 0
        session.events.register("before-call.secrets-manager.GetSecretValue", self._count)
        self.arn: str = self.client.create_secret(Name="dbx-privatelink/sp", SecretString=_value("old"))[
            "ARN"
        ]

    def _count(self, **_: Any) -> None:
        self.reads += 1

    def rotate(self, secret: str) -> None:
        self.client.put_secret_value(SecretId=self.arn, SecretString=_value(secret))


@pytest.fixture
def secrets_manager(monkeypatch: pytest.MonkeyPatch) -> Iterator[SecretsManager]:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(var, "testing")
    with mock_aws():
        yield SecretsManager(boto3.session.Session(region_name=REGION))


def test_within_its_max_age_the_secret_is_read_once_and_a_forced_fetch_reads_the_rotation(
    secrets_manager: SecretsManager,
) -> None:
    # Given a client that keeps a read secret for an hour
    secrets = SecretsClient(secrets_manager.session.client("secretsmanager"), max_age_s=3600)
    assert secrets.service_principal(secrets_manager.arn).client_secret.get_secret_value() == "old"

    # When the secret is rotated
    secrets_manager.rotate("new")

    # Then reads within the max age answer from the cache: one GetSecretValue in all
    for _ in range(5):
        assert secrets.service_principal(secrets_manager.arn).client_secret.get_secret_value() == "old"
    assert secrets_manager.reads == 1
    # And a forced fetch reads the rotated value, which later reads then use
    assert (
        secrets.service_principal(secrets_manager.arn, force_fetch=True).client_secret.get_secret_value()
        == "new"
    )
    assert secrets.service_principal(secrets_manager.arn).client_secret.get_secret_value() == "new"
    assert secrets_manager.reads == 2


def test_a_rotated_secret_reaches_the_databricks_client_within_the_max_age(
    secrets_manager: SecretsManager,
) -> None:
    # Given a warm container (one Deps) that used the Databricks account with the secret, max age 1 s
    emulator = DatabricksEmulator(InMemoryAwsView(), ACCOUNT, {CLIENT_ID: "old"}, clock=ManualClock())
    max_age_s = 1
    with EmulatorServer(emulator) as server:
        settings = Settings(
            region=REGION,
            owner_tag="dbx-privatelink",
            databricks_host=server.url,
            databricks_secret_id=secrets_manager.arn,
            secret_max_age_s=max_age_s,
        )
        deps = Deps(settings=settings, session=secrets_manager.session)
        assert deps.databricks(ACCOUNT).list_credentials() == []
        first_client = deps.databricks(ACCOUNT)
        # (an unchanged secret, read again or not, keeps the client and its token)
        assert deps.databricks(ACCOUNT) is first_client

        # When the service principal's secret is rotated in Databricks (the old one and its tokens revoked)
        # and in Secrets Manager
        emulator.tokens.add_client(CLIENT_ID, "new")
        emulator.tokens.revoke_all()
        secrets_manager.rotate("new")
        reads_before = secrets_manager.reads
        rotated_at = time.monotonic()

        # Then the container's next uses fail only until the cached secret is older than the max age
        attempts, deadline = 0, rotated_at + max_age_s + 30
        while True:
            attempts += 1
            try:
                assert deps.databricks(ACCOUNT).list_credentials() == []
                break
            except DatabricksAuthError:
                assert time.monotonic() < deadline, "the rotated secret was never used"
                time.sleep(0.05)
        elapsed = time.monotonic() - rotated_at

    # with a new client (a fresh token), and at most one GetSecretValue per max age, not one per use
    # (the uses come every 50 ms: without the cache there would be about 20 reads per max age)
    assert deps.databricks(ACCOUNT) is not first_client
    assert secrets_manager.reads - reads_before <= 1 + elapsed / max_age_s, f"{attempts} uses"


def test_a_missing_secret_is_named_with_the_error_secrets_manager_gave(
    secrets_manager: SecretsManager,
) -> None:
    secrets = SecretsClient(secrets_manager.session.client("secretsmanager"))
    missing = secrets_manager.arn.replace("dbx-privatelink/sp", "dbx-privatelink/gone")

    with pytest.raises(AwsRequestError, match=r"GetSecretValue .*gone.* failed: ResourceNotFoundException"):
        secrets.service_principal(missing)


def test_a_secret_that_is_not_the_service_principal_json_names_the_format(
    secrets_manager: SecretsManager,
) -> None:
    secrets_manager.client.put_secret_value(SecretId=secrets_manager.arn, SecretString="not json")
    secrets = SecretsClient(secrets_manager.session.client("secretsmanager"))

    with pytest.raises(DatabricksAuthError, match="must be JSON with client_id and client_secret"):
        secrets.service_principal(secrets_manager.arn)
