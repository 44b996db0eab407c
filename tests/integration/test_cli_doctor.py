"""`dbx-privatelink doctor` against the local stack: template.yaml deployed into the emulated AWS, the
Databricks Account API emulator, the seeded trail and secret. A second deployment of the template places
VerifyDns in the data-plane VPC (a group with DNS and HTTPS egress, a NAT gateway route); the first leaves it
unplaced, as a default deploy does. Each failing case breaks one prerequisite and puts it back."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from dbx_privatelink_cli.doctor import (
    AWS_MANAGED_SECRET_KEY,
    KMS_KEY_PARAMETER,
    Check,
    check_secret,
    check_verifier,
)
from dbx_privatelink_cli.main import main
from dbx_privatelink_cli.stack import StackInfo
from dbx_privatelink_local.deployer import deploy_template
from dbx_privatelink_local.seed import TRAIL_NAME
from dbx_privatelink_local.stack import LocalStack, LocalStackConfig

pytestmark = pytest.mark.e2e

PLACED = "doctor-placed"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    # A day between scans (14 s here): the scheduled scan stays out of the way of these reads.
    with LocalStack(LocalStackConfig(parameters={"ScanRateMinutes": "1440"})) as s:
        _deploy_placed(s)
        yield s


def _deploy_placed(stack: LocalStack) -> None:
    """The template again, with VerifyDns in a workspace subnet of the data-plane VPC that has a route
    through a NAT gateway and a group allowing exactly what it needs."""
    env, ec2 = stack.environment, stack.client("ec2")
    assert env is not None and stack.runtime is not None
    subnet = env.workspace_subnet_ids[0]
    group = ec2.create_security_group(GroupName="verify-dns", Description="VerifyDns", VpcId=env.vpc_id)[
        "GroupId"
    ]
    ec2.revoke_security_group_egress(
        GroupId=group, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    )
    ec2.authorize_security_group_egress(
        GroupId=group,
        IpPermissions=[
            {"IpProtocol": p, "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": "10.0.0.0/22"}]}
            for p in ("udp", "tcp")
        ]
        + [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=env.endpoint_subnet_id, AllocationId=allocation)["NatGateway"]
    table = ec2.create_route_table(VpcId=env.vpc_id)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat["NatGatewayId"])
    ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    deploy_template(
        stack.config.template,
        PLACED,
        {
            "DatabricksSecretArn": env.secret_arn,
            "DatabricksHost": stack.info.databricks_host,
            "VerifierSubnetIds": subnet,
            "VerifierSecurityGroupIds": group,
            "ScanRateMinutes": "1440",
        },
        stack.aws.endpoint_url,
        stack.runtime,
        region=stack.config.region,
    )


def doctor(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, *args: str, unset: str = ""
) -> tuple[int, dict[str, Any], str]:
    """doctor --output json as an operator runs it after `local up`'s export lines (but `unset`); and its
    text form."""
    env = {k: v for k, v in stack.client_environment().items() if k != unset}
    if unset:
        monkeypatch.delenv(unset, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)  # boto3 reads AWS_ENDPOINT_URL from the process environment
    results = []
    for output in ("json", "text"):
        out, err = io.StringIO(), io.StringIO()
        code = main(
            ["doctor", *args, "--output", output], session=stack.boto_session(), env=env, out=out, err=err
        )
        assert not err.getvalue(), err.getvalue()
        results.append((code, out.getvalue()))
    (code, document), (text_code, text) = results
    assert text_code == code
    return code, json.loads(document), text


def _stack_secret(stack: LocalStack) -> tuple[Any, str]:
    """The Secrets Manager client and the ARN of the secret both stacks are deployed with."""
    assert stack.environment is not None
    return stack.client("secretsmanager"), stack.environment.secret_arn


def _by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["check"]: c for c in document["checks"]}


def test_a_stack_with_every_prerequisite_passes(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the placed stack, the seeded trail logging and the seeded secret
    # When doctor checks it
    code, document, text = doctor(stack, monkeypatch, "--stack", PLACED)
    # Then every check passed, and each says what it found
    assert code == 0, text
    assert document["ok"] is True and document["problems"] == 0
    checks = _by_name(document)
    assert set(checks) == {"cloudtrail", "secret", "databricks", "verify-dns"}
    assert f"trail {TRAIL_NAME} (multi-region) is logging management events" in checks["cloudtrail"]["detail"]
    assert stack.client_id in checks["secret"]["detail"]
    assert stack.info.account_id in checks["databricks"]["detail"]
    assert "DNS to 10.0.0.2 and HTTPS out through the default route to nat-" in checks["verify-dns"]["detail"]
    assert all(c["fix"] is None for c in checks.values())
    assert text.splitlines()[0] == f"Doctor: stack {PLACED} in {stack.config.region}"
    assert text.splitlines()[-1] == "all 4 checks ok"


def test_an_unplaced_verifier_and_no_account_to_check_are_problems_with_their_fix(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the default deploy (VerifierSubnetIds empty), no workspace yet and no account id given
    # When doctor checks it
    code, document, text = doctor(stack, monkeypatch, unset="DATABRICKS_ACCOUNT_ID")
    # Then it fails, naming the skipped verification and the missing account, each with its fix
    checks = _by_name(document)
    assert code == 1 and document["problems"] == 2, text
    assert "fix: pass --account-id" in text
    assert checks["cloudtrail"]["ok"] and checks["secret"]["ok"]
    assert not checks["verify-dns"]["ok"]
    assert "reports the DNS verification as skipped" in checks["verify-dns"]["detail"]
    assert "VerifierSubnetIds" in checks["verify-dns"]["fix"] and "TCP 443" in checks["verify-dns"]["fix"]
    assert not checks["databricks"]["ok"]
    assert "--account-id" in checks["databricks"]["fix"]


def test_a_stopped_trail_then_no_trail_fail_the_cloudtrail_check(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloudtrail = stack.client("cloudtrail")
    bucket = cloudtrail.get_trail(Name=TRAIL_NAME)["Trail"]["S3BucketName"]
    try:
        # Given the trail stopped
        cloudtrail.stop_logging(Name=TRAIL_NAME)
        code, document, text = doctor(stack, monkeypatch, "--stack", PLACED)
        # Then only the trail check fails, with the command that starts it
        trail = _by_name(document)["cloudtrail"]
        assert code == 1 and document["problems"] == 1, text
        assert f"{TRAIL_NAME} (multi-region) is not logging" in trail["detail"]
        assert f"aws cloudtrail start-logging --name {TRAIL_NAME}" in trail["fix"]
        assert f"fix: aws cloudtrail start-logging --name {TRAIL_NAME}" in text
        # Given no trail at all
        cloudtrail.delete_trail(Name=TRAIL_NAME)
        code, document, _ = doctor(stack, monkeypatch, "--stack", PLACED)
        trail = _by_name(document)["cloudtrail"]
        assert code == 1
        assert "no trail covers us-east-1" in trail["detail"] and "scheduled scan" in trail["detail"]
        assert "--is-multi-region-trail" in trail["fix"]
    finally:
        if not cloudtrail.describe_trails()["trailList"]:
            cloudtrail.create_trail(Name=TRAIL_NAME, S3BucketName=bucket, IsMultiRegionTrail=True)
            cloudtrail.put_event_selectors(
                TrailName=TRAIL_NAME,
                EventSelectors=[{"ReadWriteType": "All", "IncludeManagementEvents": True}],
            )
        cloudtrail.start_logging(Name=TRAIL_NAME)


def test_a_secret_scheduled_for_deletion_fails_the_secret_and_databricks_checks(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets, arn = _stack_secret(stack)
    # Given the stack's secret scheduled for deletion (GetSecretValue refuses it)
    secrets.delete_secret(SecretId=arn, RecoveryWindowInDays=7)
    try:
        code, document, _ = doctor(stack, monkeypatch, "--stack", PLACED)
    finally:
        secrets.restore_secret(SecretId=arn)
    # Then the secret is named as unreadable with the fix, and Databricks is not checked
    checks = _by_name(document)
    assert code == 1 and document["problems"] == 2
    assert f"{arn} is not readable" in checks["secret"]["detail"]
    assert "client_id" in checks["secret"]["fix"]
    assert checks["databricks"]["detail"] == "not checked: the secret above is not readable"


def test_credentials_databricks_refuses_fail_the_databricks_check(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets, arn = _stack_secret(stack)
    good = secrets.get_secret_value(SecretId=arn)["SecretString"]
    # Given the secret holding a client secret Databricks does not know (the environment's stays right:
    # doctor checks what the functions use)
    secrets.put_secret_value(
        SecretId=arn, SecretString=json.dumps({"client_id": stack.client_id, "client_secret": "dose-wrong"})
    )
    try:
        code, document, _ = doctor(stack, monkeypatch, "--stack", PLACED)
    finally:
        secrets.put_secret_value(SecretId=arn, SecretString=good)
    # Then the OAuth refusal is the finding, with the fix; the secret itself was readable
    checks = _by_name(document)
    assert code == 1 and document["problems"] == 1
    assert checks["secret"]["ok"]
    assert "OAuth token request" in checks["databricks"]["detail"]
    assert "account admin" in checks["databricks"]["fix"]


def test_a_secret_under_a_key_the_stack_does_not_grant_fails_the_secret_check(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets, arn = _stack_secret(stack)
    kms = stack.client("kms")
    key = kms.create_key(Description="the Databricks secret's key")["KeyMetadata"]["Arn"]
    # Given the secret under a customer-managed key the stack was not deployed with
    secrets.update_secret(SecretId=arn, KmsKeyId=key)
    try:
        code, document, _ = doctor(stack, monkeypatch, "--stack", PLACED)
        # (and the same secret for a stack that grants that key)
        granted, _principal = check_secret(
            secrets,
            kms,
            StackInfo(
                name=PLACED,
                status="CREATE_COMPLETE",
                state_machine_arn="",
                table_name="",
                owner_tag=PLACED,
                parameters={"DatabricksSecretArn": arn, KMS_KEY_PARAMETER: key},
            ),
        )
    finally:
        secrets.update_secret(SecretId=arn, KmsKeyId=AWS_MANAGED_SECRET_KEY)
    # Then the functions' missing kms:Decrypt is the finding, with the parameter that grants it
    checks = _by_name(document)
    assert code == 1 and document["problems"] == 1
    assert f"under the customer-managed key {key}" in checks["secret"]["detail"]
    assert checks["secret"]["fix"] == f"sam deploy with DatabricksSecretKmsKeyArn={key}"
    assert checks["databricks"]["ok"]
    assert granted.ok and granted.detail.endswith(f"under {key}")


def test_verify_dns_needs_a_way_to_the_apis_and_serves_only_its_own_vpc(stack: LocalStack) -> None:
    env, ec2 = stack.environment, stack.client("ec2")
    assert env is not None
    subnet = env.workspace_subnet_ids[0]
    table = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])[
        "RouteTables"
    ][0]
    nat = next(r["NatGatewayId"] for r in table["Routes"] if r.get("NatGatewayId"))

    def verifier(workspace_vpcs: dict[str, str]) -> Check:
        return check_verifier(
            stack.client("cloudformation"), stack.client("lambda"), ec2, PLACED, "us-east-1", workspace_vpcs
        )

    # Given a workspace in another VPC than VerifyDns's
    check = verifier({"in-dns-vpc": env.dns_vpc_id, "here": env.vpc_id})
    # Then its verification is said to be skipped, by name
    assert not check.ok
    assert "verification is skipped for the workspaces in other VPCs: in-dns-vpc" in check.detail
    endpoints: list[str] = []
    ec2.delete_route(RouteTableId=table["RouteTableId"], DestinationCidrBlock="0.0.0.0/0")
    try:
        # Given no default route out of VerifyDns's subnet
        check = verifier({})
        assert not check.ok
        assert "its subnets have no route to the EC2 and Route 53 Resolver APIs" in check.detail
        # When the VPC gets interface endpoints for both APIs, with private DNS
        for service in ("ec2", "route53resolver"):
            endpoints.append(
                ec2.create_vpc_endpoint(
                    VpcId=env.vpc_id,
                    ServiceName=f"com.amazonaws.us-east-1.{service}",
                    VpcEndpointType="Interface",
                    SubnetIds=[env.endpoint_subnet_id],
                    SecurityGroupIds=[env.endpoint_sg_id],
                    PrivateDnsEnabled=True,
                )["VpcEndpoint"]["VpcEndpointId"]
            )
        # Then, once they are available, that is the way
        deadline = time.monotonic() + 30
        while (check := verifier({})).ok is False and time.monotonic() < deadline:
            time.sleep(0.2)
        assert check.ok, check.detail
        assert check.detail.endswith("HTTPS out through interface endpoints for ec2 and route53resolver")
    finally:
        if endpoints:
            ec2.delete_vpc_endpoints(VpcEndpointIds=endpoints)
        ec2.create_route(
            RouteTableId=table["RouteTableId"], DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat
        )
