"""The emulated EC2 closes moto's VPC endpoint gaps: lifecycle, acceptance, private DNS, ClientToken,
Databricks endpoint services, and the AwsView the Databricks emulator reads."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from integration.local_servers import operator_client

from dbx_privatelink.catalog import default_catalog
from dbx_privatelink_local.aws import LocalAws, LocalAwsSettings
from dbx_privatelink_local.aws.ec2_patches import EndpointKind, relay_private_dns_name
from dbx_privatelink_local.timescale import TimeScale

REGION = "us-east-1"
SERVICES = default_catalog().region(REGION)
assert SERVICES is not None

# 1 emulated second = 10 ms: "accepted after 20 s" takes 0.2 s.
SETTINGS = LocalAwsSettings(
    aws_endpoint_available_after=20,
    accepted_endpoint_available_after=20,
    private_dns_update_after=20,
    cloudtrail_delay=3600,
)


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with LocalAws(SETTINGS, time_scale=TimeScale(0.01)) as local:
        yield local


@pytest.fixture(autouse=True)
def clean(aws: LocalAws) -> None:
    aws.reset()


@pytest.fixture
def ec2(aws: LocalAws) -> Any:
    return operator_client(aws, "ec2", REGION)


@pytest.fixture
def network(ec2: Any) -> dict[str, Any]:
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]
    return {"vpc": vpc, "subnet": subnet["SubnetId"]}


def _create(ec2: Any, network: dict[str, Any], service: str, **extra: Any) -> dict[str, Any]:
    return dict(
        ec2.create_vpc_endpoint(
            VpcId=network["vpc"],
            ServiceName=service,
            VpcEndpointType="Interface",
            SubnetIds=[network["subnet"]],
            **extra,
        )["VpcEndpoint"]
    )


def _state(ec2: Any, endpoint_id: str) -> dict[str, Any]:
    return dict(ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint_id])["VpcEndpoints"][0])


def _eventually(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def test_databricks_endpoint_waits_in_pending_acceptance_until_accepted(
    aws: LocalAws, ec2: Any, network: dict[str, Any]
) -> None:
    # Given an endpoint to the region's workspace service
    endpoint = _create(ec2, network, SERVICES.workspace_service)
    assert endpoint["State"] == "pendingAcceptance"

    # When more than the acceptance delay passes without acceptance
    time.sleep(aws.time_scale.scaled(SETTINGS.accepted_endpoint_available_after) * 2)

    # Then it is still waiting, with private DNS off
    described = _state(ec2, endpoint["VpcEndpointId"])
    assert described["State"] == "pendingAcceptance"
    assert described["PrivateDnsEnabled"] is False

    # When the service accepts it
    aws.view.accept_vpc_endpoint(REGION, endpoint["VpcEndpointId"])

    # Then it is pending, then available
    assert _state(ec2, endpoint["VpcEndpointId"])["State"] == "pending"
    assert _eventually(lambda: _state(ec2, endpoint["VpcEndpointId"])["State"] == "available")


def test_rejected_relay_endpoint_ends_rejected(aws: LocalAws, ec2: Any, network: dict[str, Any]) -> None:
    endpoint = _create(ec2, network, SERVICES.relay_service)
    assert endpoint["State"] == "pendingAcceptance"

    aws.view.reject_vpc_endpoint(REGION, endpoint["VpcEndpointId"])
    aws.view.accept_vpc_endpoint(REGION, endpoint["VpcEndpointId"])  # too late: rejection is final

    assert _state(ec2, endpoint["VpcEndpointId"])["State"] == "rejected"


def test_aws_service_interface_endpoint_goes_pending_then_available(
    aws: LocalAws, ec2: Any, network: dict[str, Any]
) -> None:
    endpoint = _create(ec2, network, f"com.amazonaws.{REGION}.sts")

    assert endpoint["State"] == "pending"
    assert _eventually(lambda: _state(ec2, endpoint["VpcEndpointId"])["State"] == "available")
    assert (
        aws.endpoints.kind_of(aws.account_id, REGION, endpoint["VpcEndpointId"]) is EndpointKind.AWS_INTERFACE
    )


def test_gateway_endpoint_is_available_at_once(ec2: Any, network: dict[str, Any]) -> None:
    table = ec2.create_route_table(VpcId=network["vpc"])["RouteTable"]["RouteTableId"]

    endpoint = ec2.create_vpc_endpoint(
        VpcId=network["vpc"], ServiceName=f"com.amazonaws.{REGION}.s3", RouteTableIds=[table]
    )["VpcEndpoint"]

    assert endpoint["State"] == "available"


def test_private_dns_cannot_be_enabled_before_acceptance(
    aws: LocalAws, ec2: Any, network: dict[str, Any]
) -> None:
    endpoint = _create(ec2, network, SERVICES.workspace_service)

    with pytest.raises(ClientError) as raised:
        ec2.modify_vpc_endpoint(VpcEndpointId=endpoint["VpcEndpointId"], PrivateDnsEnabled=True)

    assert raised.value.response["Error"]["Code"] == "InvalidParameter"
    assert _state(ec2, endpoint["VpcEndpointId"])["PrivateDnsEnabled"] is False


def test_private_dns_cannot_be_requested_at_creation_for_acceptance_services(
    ec2: Any, network: dict[str, Any]
) -> None:
    with pytest.raises(ClientError) as raised:
        _create(ec2, network, SERVICES.workspace_service, PrivateDnsEnabled=True)

    assert raised.value.response["Error"]["Code"] == "InvalidParameter"
    assert ec2.describe_vpc_endpoints()["VpcEndpoints"] == []


def test_enabling_private_dns_is_applied_through_pending(
    aws: LocalAws, ec2: Any, network: dict[str, Any]
) -> None:
    # Given an accepted, available workspace endpoint
    endpoint_id = _create(ec2, network, SERVICES.workspace_service)["VpcEndpointId"]
    aws.view.accept_vpc_endpoint(REGION, endpoint_id)
    assert _eventually(lambda: _state(ec2, endpoint_id)["State"] == "available")

    # When private DNS is turned on
    ec2.modify_vpc_endpoint(VpcEndpointId=endpoint_id, PrivateDnsEnabled=True)

    # Then DescribeVpcEndpoints shows it, passing through pending
    described = _state(ec2, endpoint_id)
    assert described["PrivateDnsEnabled"] is True
    assert described["State"] == "pending"
    assert _eventually(lambda: _state(ec2, endpoint_id)["State"] == "available")

    # And the DNS record names the workspace service's private name and the ENI address
    record = aws.endpoints.private_dns(aws.account_id, REGION, endpoint_id)
    assert record is not None
    assert record.private_dns_enabled is True
    assert record.private_dns_names == (SERVICES.private_dns_name,)
    eni = ec2.describe_network_interfaces(NetworkInterfaceIds=described["NetworkInterfaceIds"])
    assert record.ip_addresses == (eni["NetworkInterfaces"][0]["PrivateIpAddress"],)

    # When it is turned off again, that is applied too
    ec2.modify_vpc_endpoint(VpcEndpointId=endpoint_id, PrivateDnsEnabled=False)
    assert _state(ec2, endpoint_id)["PrivateDnsEnabled"] is False


def test_relay_endpoint_records_the_relay_private_dns_name(
    aws: LocalAws, ec2: Any, network: dict[str, Any]
) -> None:
    endpoint_id = _create(ec2, network, SERVICES.relay_service)["VpcEndpointId"]

    records = aws.endpoints.private_dns_records(aws.account_id, REGION)

    assert [(r.vpc_endpoint_id, r.kind, r.private_dns_names) for r in records] == [
        (endpoint_id, EndpointKind.DATABRICKS_RELAY, (relay_private_dns_name(REGION),))
    ]


def test_client_token_with_same_parameters_returns_the_first_endpoint(
    ec2: Any, network: dict[str, Any]
) -> None:
    first = _create(ec2, network, f"com.amazonaws.{REGION}.kinesis-streams", ClientToken="ws-1-kinesis")

    again = _create(ec2, network, f"com.amazonaws.{REGION}.kinesis-streams", ClientToken="ws-1-kinesis")

    assert again["VpcEndpointId"] == first["VpcEndpointId"]
    assert len(ec2.describe_vpc_endpoints()["VpcEndpoints"]) == 1


def test_client_token_with_other_parameters_is_a_mismatch(ec2: Any, network: dict[str, Any]) -> None:
    _create(ec2, network, f"com.amazonaws.{REGION}.kinesis-streams", ClientToken="ws-1-kinesis")

    with pytest.raises(ClientError) as raised:
        _create(ec2, network, f"com.amazonaws.{REGION}.glue", ClientToken="ws-1-kinesis")

    assert raised.value.response["Error"]["Code"] == "IdempotentParameterMismatch"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert len(ec2.describe_vpc_endpoints()["VpcEndpoints"]) == 1


def test_without_client_token_every_call_creates_an_endpoint(ec2: Any, network: dict[str, Any]) -> None:
    # Private DNS off: AWS refuses a second endpoint with private DNS for one service in one VPC.
    _create(ec2, network, f"com.amazonaws.{REGION}.glue", PrivateDnsEnabled=False)
    _create(ec2, network, f"com.amazonaws.{REGION}.glue", PrivateDnsEnabled=False)

    assert len(ec2.describe_vpc_endpoints()["VpcEndpoints"]) == 2


def test_describe_endpoint_services_knows_the_databricks_services(ec2: Any) -> None:
    answer = ec2.describe_vpc_endpoint_services(
        ServiceNames=[SERVICES.workspace_service, SERVICES.relay_service]
    )

    details = {d["ServiceName"]: d for d in answer["ServiceDetails"]}
    assert set(details) == {SERVICES.workspace_service, SERVICES.relay_service}
    workspace = details[SERVICES.workspace_service]
    assert workspace["ServiceId"] == SERVICES.workspace_service.rsplit(".", 1)[-1]
    assert workspace["ServiceType"] == [{"ServiceType": "Interface"}]
    assert workspace["AcceptanceRequired"] is True
    assert workspace["ManagesVpcEndpoints"] is False
    assert "VpcEndpointPolicySupported" in workspace
    assert "us-east-1a" in workspace["AvailabilityZones"]
    assert workspace["PrivateDnsName"] == SERVICES.private_dns_name


def test_describe_endpoint_services_keeps_aws_services_and_other_regions_apart(ec2: Any) -> None:
    names = ec2.describe_vpc_endpoint_services()["ServiceNames"]
    assert f"com.amazonaws.{REGION}.sts" in names
    assert SERVICES.relay_service in names

    other = default_catalog().region("eu-west-1")
    assert other is not None
    with pytest.raises(ClientError) as raised:
        ec2.describe_vpc_endpoint_services(ServiceNames=[other.workspace_service])
    assert raised.value.response["Error"]["Code"] == "InvalidServiceName"


def test_aws_view_reads_vpc_subnets_and_security_groups(
    aws: LocalAws, ec2: Any, network: dict[str, Any]
) -> None:
    # Given DNS attributes and a security group with a CIDR and a group rule
    ec2.modify_vpc_attribute(VpcId=network["vpc"], EnableDnsHostnames={"Value": True})
    group = ec2.create_security_group(GroupName="ws", Description="ws", VpcId=network["vpc"])["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.20.0.0/16"}]},
            {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": group}]},
        ],
    )

    # When the Databricks emulator looks
    vpc = aws.view.get_vpc(REGION, network["vpc"])
    subnets = aws.view.get_subnets(REGION, [network["subnet"], "subnet-missing"])
    groups = aws.view.get_security_groups(REGION, [group])

    # Then it sees what EC2 holds
    assert vpc is not None and vpc.enable_dns_support and vpc.enable_dns_hostnames
    assert vpc.cidr_block == "10.20.0.0/16"
    assert [(s.subnet_id, s.availability_zone, s.cidr_block) for s in subnets] == [
        (network["subnet"], "us-east-1a", "10.20.1.0/24")
    ]
    rules = {(r.ip_protocol, r.from_port, r.to_port, r.cidr_blocks, r.group_ids) for r in groups[0].ingress}
    assert ("tcp", 443, 443, ("10.20.0.0/16",), ()) in rules
    assert ("-1", None, None, (), (group,)) in rules
    assert aws.view.get_vpc(REGION, "vpc-missing") is None


def test_aws_view_reads_an_endpoint(aws: LocalAws, ec2: Any, network: dict[str, Any]) -> None:
    endpoint_id = _create(ec2, network, SERVICES.workspace_service)["VpcEndpointId"]

    seen = aws.view.get_vpc_endpoint(REGION, endpoint_id)

    assert seen is not None
    assert (seen.state, seen.vpc_id, seen.service_name, seen.owner_account_id, seen.endpoint_type) == (
        "pendingAcceptance",
        network["vpc"],
        SERVICES.workspace_service,
        aws.account_id,
        "Interface",
    )
    assert aws.view.get_vpc_endpoint(REGION, "vpce-missing") is None
