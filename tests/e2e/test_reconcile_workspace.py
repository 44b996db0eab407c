"""The reconcile state machine end to end on the local stack: the real template, ASL and Lambda code."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest

from dbx_privatelink_local.seed import DataPlane, workspace_security_group
from dbx_privatelink_local.stack import LocalStack

from .conftest import Reconciler, free_subnets, spec_for

pytestmark = pytest.mark.e2e


def _endpoints(stack: LocalStack, vpc_id: str) -> list[dict[str, Any]]:
    ec2 = stack.client("ec2")
    found = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["VpcEndpoints"]
    return [e for e in found if e["State"].lower() not in ("deleted", "deleting")]


def _registrations(stack: LocalStack, aws_id: str) -> list[dict[str, Any]]:
    return [r for r in stack.emulator.state()["vpc_endpoints"] if r["aws_vpc_endpoint_id"] == aws_id]


def _wait_until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_sample_workspace_ends_on_privatelink(
    stack: LocalStack, reconciler: Reconciler, data_plane: DataPlane, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the walkthrough's VPC, subnets and security groups
    spec = spec_for(stack, data_plane, "sample-ws")
    # When the spec is reconciled
    run = reconciler.run(spec)
    # Then the execution succeeded and every resource is as the walkthrough leaves it
    assert run.status == "SUCCEEDED", run.cause
    summary = run.output["summary"]
    catalog = stack.environment and stack.environment.region
    endpoints = {e["VpcEndpointId"]: e for e in _endpoints(stack, data_plane.vpc_id)}
    for role, use_case in (("workspace", "WORKSPACE_ACCESS"), ("relay", "DATAPLANE_RELAY_ACCESS")):
        aws_id = summary["endpoints"][role]["id"]
        _wait_until(
            lambda aws_id=aws_id: (
                stack.client("ec2").describe_vpc_endpoints(VpcEndpointIds=[aws_id])["VpcEndpoints"][0][
                    "State"
                ]
                == "available"
            )
        )
        assert endpoints[aws_id]["PrivateDnsEnabled"] is True
        [registration] = _registrations(stack, aws_id)
        assert registration["use_case"] == use_case and registration["state"] == "available"
        assert registration["vpc_endpoint_id"] == summary["registrations"][role]["id"]
    assert {"s3", "sts", "kinesis-streams"} <= set(summary["endpoints"])
    workspace = next(
        w
        for w in stack.emulator.state()["workspaces"]
        if w["workspace_id"] == summary["workspace"]["workspace_id"]
    )
    assert workspace["workspace_status"] == "RUNNING"
    assert workspace["network_id"] == summary["network"]["network_id"]
    assert (
        workspace["private_access_settings_id"]
        == summary["private_access_settings"]["private_access_settings_id"]
    )
    network = next(
        n for n in stack.emulator.state()["networks"] if n["network_id"] == workspace["network_id"]
    )
    assert network["vpc_status"] == "VALID"
    assert network["vpc_endpoints"]["rest_api"] == [summary["registrations"]["workspace"]["id"]]
    assert catalog == "us-east-1"

    # When the same spec is applied again, then nothing is changed on either side
    again = reconciler.run(spec)
    assert again.status == "SUCCEEDED", again.cause
    assert not again.aws_mutations, again.aws_mutations
    assert not again.databricks_mutations, again.databricks_mutations
    assert again.output["summary"]["workspace"]["action"] == "unchanged"

    # And neither the service principal's secret nor any OAuth token appears in history or logs
    visible = json.dumps([run.history, again.history], default=str) + "".join(capsys.readouterr())
    tokens = stack.emulator.tokens.issued()
    assert tokens, "the Lambdas authenticated with OAuth"
    for secret in [stack.client_secret, *tokens]:
        assert secret not in visible


def test_second_workspace_in_the_same_vpc_shares_the_endpoints(
    stack: LocalStack, reconciler: Reconciler, data_plane: DataPlane
) -> None:
    first_spec = spec_for(stack, data_plane, "shared-a")
    first = reconciler.run(first_spec)
    assert first.status == "SUCCEEDED", first.cause
    # Given a second workspace in the same VPC, on subnets and a group of its own (Databricks forbids reuse)
    ec2 = stack.client("ec2")
    azs = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]
    free = free_subnets(data_plane, 25)
    subnets = [
        ec2.create_subnet(VpcId=data_plane.vpc_id, CidrBlock=free[i], AvailabilityZone=azs[i])["Subnet"][
            "SubnetId"
        ]
        for i in range(2)
    ]
    spec = spec_for(stack, data_plane, "shared-b")
    spec["network"]["workspace_subnet_ids"] = subnets
    spec["network"]["workspace_security_group_ids"] = [
        workspace_security_group(ec2, data_plane.vpc_id, "shared-b-sg")
    ]
    # When it is reconciled
    second = reconciler.run(spec)
    # Then it reuses the first workspace's endpoints and registrations, creating none
    assert second.status == "SUCCEEDED", second.cause
    endpoints = second.output["summary"]["endpoints"]
    for role in ("workspace", "relay", "sts"):
        assert endpoints[role]["id"] == first.output["summary"]["endpoints"][role]["id"]
    assert (
        endpoints["workspace"]["action"]
        == endpoints["relay"]["action"]
        == endpoints["sts"]["action"]
        == "found"
    )
    # and the AWS service endpoints admit its clusters through the VPC's endpoint group, which preflight
    # holds to admitting 443 from every workspace set: no group per workspace piles up on them
    [sts] = ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoints["sts"]["id"]])["VpcEndpoints"]
    assert {g["GroupId"] for g in sts["Groups"]} == {data_plane.endpoint_sg_id}
    assert "CreateVpcEndpoint" not in second.aws_mutations
    assert "ModifyVpcEndpoint" not in second.aws_mutations
    assert not any("vpc-endpoints" in op for op in second.databricks_mutations)
    assert (
        second.output["summary"]["workspace"]["workspace_id"]
        != first.output["summary"]["workspace"]["workspace_id"]
    )


def test_retrofit_of_an_existing_workspace(
    stack: LocalStack, reconciler: Reconciler, data_plane: DataPlane
) -> None:
    # Given a workspace that exists without PrivateLink
    env = stack.environment
    assert env is not None
    existing = stack.emulator.backend.create_workspace(
        {
            "workspace_name": "legacy-ws",
            "aws_region": env.region,
            "credentials_id": env.credentials_id,
            "storage_configuration_id": env.storage_configuration_id,
        }
    )
    workspace_id = existing["workspace_id"]
    _wait_until(lambda: stack.emulator.backend.get_workspace(workspace_id)["workspace_status"] == "RUNNING")
    spec = spec_for(stack, data_plane, "legacy-ws")
    spec["databricks"]["workspace"] = {"existing_workspace_id": workspace_id}
    # When the retrofit spec is reconciled
    run = reconciler.run(spec)
    # Then the same workspace is moved onto the network and private access settings
    assert run.status == "SUCCEEDED", run.cause
    assert run.output["summary"]["workspace"] == {
        **run.output["summary"]["workspace"],
        "workspace_id": workspace_id,
        "action": "updated",
    }
    after = stack.emulator.backend.get_workspace(workspace_id)
    assert (
        after["workspace_status"] == "RUNNING"
        and after["network_id"] == run.output["summary"]["network"]["network_id"]
    )
    assert not any(op.startswith("POST") and op.endswith("/workspaces") for op in run.databricks_mutations)


def test_subnet_change_replaces_the_network_safely(
    stack: LocalStack, reconciler: Reconciler, data_plane: DataPlane
) -> None:
    spec = spec_for(stack, data_plane, "moving-ws")
    first = reconciler.run(spec)
    assert first.status == "SUCCEEDED", first.cause
    old_network = first.output["summary"]["network"]["network_id"]
    # Given new workspace subnets and group (Databricks lets neither serve two network objects)
    ec2 = stack.client("ec2")
    azs = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]
    free = free_subnets(data_plane, 25)
    moved = copy.deepcopy(spec)
    moved["network"]["workspace_subnet_ids"] = [
        ec2.create_subnet(VpcId=data_plane.vpc_id, CidrBlock=free[i], AvailabilityZone=azs[i])["Subnet"][
            "SubnetId"
        ]
        for i in range(2)
    ]
    moved["network"]["workspace_security_group_ids"] = [
        workspace_security_group(ec2, data_plane.vpc_id, "moving-ws-sg-2")
    ]
    # When the changed spec is reconciled
    run = reconciler.run(moved)
    # Then a new network exists, the workspace runs on it, and the old one is gone
    assert run.status == "SUCCEEDED", run.cause
    network = run.output["summary"]["network"]
    assert network["action"] == "replaced" and network["replaced_network_id"] == old_network
    workspace = stack.emulator.backend.get_workspace(first.output["summary"]["workspace"]["workspace_id"])
    assert workspace["network_id"] == network["network_id"] and workspace["workspace_status"] == "RUNNING"
    assert old_network not in {n["network_id"] for n in stack.emulator.state()["networks"]}


def test_invalid_spec_fails_before_any_change(
    stack: LocalStack, reconciler: Reconciler, data_plane: DataPlane
) -> None:
    spec = spec_for(stack, data_plane, "bad-spec")
    spec["network"]["workspace_subnet_ids"] = spec["network"]["workspace_subnet_ids"][:1]
    run = reconciler.run(spec)
    assert run.status == "FAILED" and run.error == "SpecInvalidError"
    assert "network.workspace_subnet_ids" in (run.cause or "")
    assert not run.aws_mutations and not run.databricks_mutations


def test_preflight_failure_changes_nothing(
    stack: LocalStack, reconciler: Reconciler, data_plane: DataPlane
) -> None:
    # Given both workspace subnets in one availability zone
    ec2 = stack.client("ec2")
    zone = ec2.describe_subnets(SubnetIds=[data_plane.workspace_subnet_ids[0]])["Subnets"][0][
        "AvailabilityZone"
    ]
    free = free_subnets(data_plane, 25)
    same_zone = ec2.create_subnet(VpcId=data_plane.vpc_id, CidrBlock=free[0], AvailabilityZone=zone)[
        "Subnet"
    ]["SubnetId"]
    spec = spec_for(stack, data_plane, "one-zone")
    spec["network"]["workspace_subnet_ids"] = [data_plane.workspace_subnet_ids[0], same_zone]
    # When reconciled, then the run fails in preflight with the reason, and nothing was touched
    run = reconciler.run(spec)
    assert run.status == "FAILED" and run.error == "PreflightFailedError"
    assert "distinct availability zones" in (run.cause or "")
    assert not run.aws_mutations and not run.databricks_mutations


def test_rejected_endpoint_fails_with_a_clear_cause(
    stack: LocalStack, reconciler: Reconciler, data_plane: DataPlane
) -> None:
    # Given an AWS account that Databricks has not enabled for PrivateLink
    stack.emulator.backend.privatelink_enabled_accounts = {"999999999999"}
    try:
        run = reconciler.run(spec_for(stack, data_plane, "rejected-ws"))
    finally:
        stack.emulator.backend.privatelink_enabled_accounts = None
    assert run.status == "FAILED" and run.error == "EndpointRejectedError", (run.error, run.cause)
    assert "rejected" in (run.cause or "")
    # Each endpoint was created once and registered once
    for endpoint in _endpoints(stack, data_plane.vpc_id):
        if "vpce-svc" in endpoint["ServiceName"]:
            assert len(_registrations(stack, endpoint["VpcEndpointId"])) == 1


def test_workspace_failed_surfaces_the_network_errors(
    stack: LocalStack, reconciler: Reconciler, data_plane: DataPlane
) -> None:
    # Given someone revokes the workspace group's egress 443 while the workspace is provisioning: done from
    # inside the Account API's workspace create, so it lands before Databricks validates the network
    ec2 = stack.client("ec2")
    spec = spec_for(stack, data_plane, "broken-net")
    backend = stack.emulator.backend
    create = backend.create_workspace

    def create_then_sabotage(body: Any) -> Any:
        created = create(body)
        if body.get("workspace_name") == "broken-net":
            ec2.revoke_security_group_egress(
                GroupId=data_plane.workspace_sg_id,
                IpPermissions=[
                    {
                        "IpProtocol": "tcp",
                        "FromPort": 443,
                        "ToPort": 443,
                        "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                    }
                ],
            )
        return created

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(backend, "create_workspace", create_then_sabotage)
        run = reconciler.run(spec)
    # Then the run fails with the workspace FAILED and the network's messages in the cause
    assert run.status == "FAILED" and run.error == "WorkspaceFailedError", (run.error, run.cause)
    assert "443" in (run.cause or "") and "BROKEN" in (run.cause or "")
    assert sum(1 for w in stack.emulator.state()["workspaces"] if w["workspace_name"] == "broken-net") == 1


def test_databricks_auth_failure_fails_without_side_effects_there(
    stack: LocalStack, reconciler: Reconciler, data_plane: DataPlane
) -> None:
    # Given a spec for an account the service principal does not belong to
    spec = spec_for(stack, data_plane, "other-account")
    spec["databricks"]["account_id"] = "11111111-2222-4333-8444-555555555555"
    run = reconciler.run(spec)
    assert run.status == "FAILED" and run.error == "DatabricksAuthError", (run.error, run.cause)
    assert "client_secret" not in (run.cause or "").replace("client_id and client_secret", "")
    assert stack.client_secret not in (run.cause or "")
    assert not run.databricks_mutations, run.databricks_mutations


def test_throttling_is_retried_to_success(
    stack: LocalStack, reconciler: Reconciler, data_plane: DataPlane
) -> None:
    # Given EC2 refuses endpoint creation for its rate limit and Databricks answers 429 for a while.
    # boto3 makes four attempts (max_attempts 3 counts the retries) inside each of the five endpoint
    # Lambdas, which run at once, so up to fifteen refusals vanish there; the sixteenth reaches the state
    # machine's Retry.
    stack.aws.faults.add(
        service="ec2", action="CreateVpcEndpoint", code="RequestLimitExceeded", status=503, times=18
    )
    stack.emulator.add_fault("throttle", method="POST", path="*/vpc-endpoints", count=3, retry_after_s=1)
    run = reconciler.run(spec_for(stack, data_plane, "throttled-ws"))
    assert run.status == "SUCCEEDED", run.cause
    # boto3 retries three times inside the Lambda, then the state machine backs off on the typed error
    assert run.failed_attempts("AwsThrottledError") >= 1
    for endpoint in _endpoints(stack, data_plane.vpc_id):
        if "vpce-svc" in endpoint["ServiceName"]:
            assert len(_registrations(stack, endpoint["VpcEndpointId"])) == 1
    assert len([e for e in _endpoints(stack, data_plane.vpc_id)]) == 5


def test_commit_then_fail_on_registration_leaves_one_registration(
    stack: LocalStack, reconciler: Reconciler, data_plane: DataPlane
) -> None:
    # Given the Account API registers the endpoint, then drops the connection before answering
    stack.emulator.add_fault("commit_then_drop", method="POST", path="*/vpc-endpoints", count=1)
    run = reconciler.run(spec_for(stack, data_plane, "dropped-ws"))
    # Then the retried step adopts the registration instead of registering again
    assert run.status == "SUCCEEDED", run.cause
    assert run.failed_attempts("DatabricksUnavailableError") == 1
    adopted = [
        r for r in run.output["summary"]["registrations"].values() if r["action"] in ("found", "adopted")
    ]
    assert adopted
    for endpoint in _endpoints(stack, data_plane.vpc_id):
        if "vpce-svc" in endpoint["ServiceName"]:
            assert len(_registrations(stack, endpoint["VpcEndpointId"])) == 1
