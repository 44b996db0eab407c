"""A fleet on the local stack, with AWS's rate limits on: workspaces started at the same moment that share a
data-plane VPC or a DNS VPC converge on one of each shared resource (every workspace admitted, nothing
created twice, no call refused), a re-apply of all of them changes nothing, and preflight names a shared
quota a workspace would exceed before any change."""

from __future__ import annotations

import copy
import ipaddress
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from dbx_privatelink.aws.ec2 import Ec2Client
from dbx_privatelink.aws.resolver_types import normalize_domain
from dbx_privatelink.ledger import LedgerClient
from dbx_privatelink.reconcile.group_rules import allows_endpoint_ingress
from dbx_privatelink.reconcile.shared import endpoint_key
from dbx_privatelink.shared_key import SharedKey
from dbx_privatelink_local.aws.rate_limits import AwsRateLimits
from dbx_privatelink_local.seed import DataPlane, workspace_security_group
from dbx_privatelink_local.stack import LocalStack

from .conftest import Reconciler, _new_data_plane, free_subnets, listed, spec_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def rate_limits(stack: LocalStack) -> Iterator[AwsRateLimits]:
    """EC2's endpoint-mutation bucket and Route 53 Resolver's 5 requests/s, account-wide, for one test."""
    limits = stack.aws.rate_limits
    limits.reset()
    limits.enabled = True
    try:
        yield limits
    finally:
        limits.enabled = False
        limits.reset()


@pytest.fixture
def dns_vpc(stack: LocalStack, request: pytest.FixtureRequest) -> tuple[str, list[str]]:
    """A DNS VPC with two resolver subnets in two AZs and no Route 53 Resolver resources yet."""
    ec2 = stack.client("ec2")
    azs = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]
    plane = _new_data_plane(stack, request, standby=False)
    halves = list(ipaddress.ip_network(free_subnets(plane, 24)[0]).subnets(new_prefix=25))
    subnets = [
        ec2.create_subnet(VpcId=plane.vpc_id, CidrBlock=str(halves[i]), AvailabilityZone=azs[i])["Subnet"][
            "SubnetId"
        ]
        for i in range(2)
    ]
    return plane.vpc_id, subnets


def _ledger(stack: LocalStack) -> LedgerClient:
    assert stack.deployment is not None
    table = stack.boto_session().resource("dynamodb", endpoint_url=stack.aws.endpoint_url)
    return LedgerClient(table.Table(stack.deployment.outputs["TableName"]))


def _neighbour(stack: LocalStack, plane: DataPlane, key: str, slot: int) -> dict[str, Any]:
    """Another workspace in `plane`: two /26 subnets of the plane's free quarter and a group of its own
    (Databricks lets a subnet or group serve one network object only)."""
    ec2 = stack.client("ec2")
    azs = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]
    free = free_subnets(plane, 26)
    subnets = [
        ec2.create_subnet(VpcId=plane.vpc_id, CidrBlock=free[2 * slot + i], AvailabilityZone=azs[i])[
            "Subnet"
        ]["SubnetId"]
        for i in range(2)
    ]
    spec = spec_for(stack, plane, key)
    spec["network"]["workspace_subnet_ids"] = subnets
    spec["network"]["workspace_security_group_ids"] = [
        workspace_security_group(ec2, plane.vpc_id, f"{key}-sg")
    ]
    return spec


def _behind(spec: dict[str, Any], stack: LocalStack, dns_vpc: tuple[str, list[str]]) -> dict[str, Any]:
    """The spec with custom DNS through `dns_vpc` (the sample's corporate servers and proof)."""
    assert stack.environment is not None
    spec = copy.deepcopy(spec)
    spec["dns"] = copy.deepcopy(stack.environment.sample_spec(custom_dns=True)["dns"])
    spec["dns"]["custom_dns"].update(dns_vpc_id=dns_vpc[0], resolver_subnet_ids=dns_vpc[1])
    spec["dns"]["custom_dns"].pop("allowed_cidrs", None)
    return spec


def _endpoints(stack: LocalStack, vpc_id: str) -> list[dict[str, Any]]:
    raw = stack.client("ec2").describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])
    return [e for e in raw["VpcEndpoints"] if e["State"].lower() not in ("deleted", "deleting")]


def test_workspaces_in_one_vpc_applied_at_once_share_one_endpoint_per_service(
    stack: LocalStack, reconciler: Reconciler, data_plane: DataPlane, rate_limits: AwsRateLimits
) -> None:
    # Given three workspaces in one VPC, each on subnets and a group of its own
    specs = [spec_for(stack, data_plane, "fleet-vpc-a")]
    specs += [_neighbour(stack, data_plane, f"fleet-vpc-{c}", slot) for slot, c in enumerate("bc")]
    # When all three are applied at the same moment
    runs = reconciler.run_all(specs)
    # Then all succeed, on exactly one endpoint per service with private DNS, each registered once
    assert [r.status for r in runs] == ["SUCCEEDED"] * 3, [r.cause for r in runs]
    endpoints = _endpoints(stack, data_plane.vpc_id)
    services = Counter(e["ServiceName"] for e in endpoints)
    assert len(services) == 5 and set(services.values()) == {1}, services
    registered = Counter(r.aws_vpc_endpoint_id for r in stack.emulator.backend.endpoints.values())
    assert all(registered[e["VpcEndpointId"]] == 1 for e in endpoints if "vpce-svc" in e["ServiceName"])
    # and every workspace's clusters are admitted by the shared interface endpoints: they carry the VPC's
    # endpoint group, which admits 443 from the VPC's networks (no group per workspace piles up on them)
    for e in endpoints:
        if e["VpcEndpointType"] == "Interface":
            assert {g["GroupId"] for g in e["Groups"]} == {data_plane.endpoint_sg_id}
    [endpoint_group] = Ec2Client(stack.client("ec2")).get_security_groups([data_plane.endpoint_sg_id])
    for spec in specs:
        assert allows_endpoint_ingress(endpoint_group, 443, spec["network"]["workspace_security_group_ids"])
    # and each run saw the same endpoints; the ledger knows every workspace that uses them
    ids = {tuple(sorted(e["id"] for e in r.output["summary"]["endpoints"].values())) for r in runs}
    assert len(ids) == 1
    sts = next(e for e in endpoints if e["ServiceName"].endswith(".sts"))
    record = _ledger(stack).get(
        SharedKey("vpc-endpoint", endpoint_key(data_plane.vpc_id, sts["ServiceName"]))
    )
    assert record is not None and record.resource_id == sts["VpcEndpointId"]
    assert set(record.refs) == {s["workspace_key"] for s in specs}
    # and the shared pace kept the endpoint mutations within EC2's bucket: nothing was refused but for a rare
    # call sent late beside one on time in this one busy process, retried (unpaced, three workspaces' 15
    # creates at once meet a bucket of 4); a run that lost the race to create an endpoint re-read and
    # adopted it: at most one more call per endpoint
    assert sum(rate_limits.refused().values()) <= 2, rate_limits.refused()
    assert 5 <= rate_limits.allowed()["ec2:CreateVpcEndpoint"] <= 5 * len(specs)

    # When all three are applied again at once, then nothing changes on either side
    again = reconciler.run_all(specs)
    assert [r.status for r in again] == ["SUCCEEDED"] * 3, [r.cause for r in again]
    assert not again[0].aws_mutations and not again[0].databricks_mutations


def test_workspaces_behind_a_fresh_dns_vpc_converge_on_one_resolver_setup(
    stack: LocalStack,
    reconciler: Reconciler,
    request: pytest.FixtureRequest,
    dns_vpc: tuple[str, list[str]],
    rate_limits: AwsRateLimits,
) -> None:
    # Given three workspaces (two of them in one VPC) behind one DNS VPC that has no Resolver resources yet
    first = _new_data_plane(stack, request, standby=False)
    second = _new_data_plane(stack, request, standby=False)
    specs = [
        _behind(spec_for(stack, first, "fleet-dns-a"), stack, dns_vpc),
        _behind(_neighbour(stack, first, "fleet-dns-b", 0), stack, dns_vpc),
        _behind(spec_for(stack, second, "fleet-dns-c"), stack, dns_vpc),
    ]
    # When all three are applied at the same moment
    runs = reconciler.run_all(specs)
    # Then all succeed, and their names resolve through the shared "." rule (VerifyDns ran for each)
    assert [r.status for r in runs] == ["SUCCEEDED"] * 3, [r.cause for r in runs]
    assert all(r.output["summary"]["dns"]["verification"]["status"] == "verified" for r in runs)
    # and the DNS VPC holds one outbound endpoint and one group, the region one rule per domain
    r53r = stack.client("route53resolver")
    outbound = [
        e
        for e in listed(r53r, "list_resolver_endpoints", "ResolverEndpoints")
        if e["HostVPCId"] == dns_vpc[0]
    ]
    assert len(outbound) == 1

    def scope(rule: dict[str, Any]) -> str | None:
        tags = r53r.list_tags_for_resource(ResourceArn=rule["Arn"])["Tags"]
        return next((t["Value"] for t in tags if t["Key"] == "dbx-privatelink:scope"), None)

    rules = [r for r in listed(r53r, "list_resolver_rules", "ResolverRules") if scope(r) == dns_vpc[0]]
    assert Counter(normalize_domain(r["DomainName"]) for r in rules) == {".": 1, "amazonaws.com": 1}
    ec2 = stack.client("ec2")
    groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [dns_vpc[0]]}])[
        "SecurityGroups"
    ]
    ours = [g for g in groups if g["GroupName"].startswith("dbx-privatelink-resolver-outbound-")]
    assert len(ours) == 1 and ours[0]["GroupId"] in outbound[0]["SecurityGroupIds"]
    # whose rules follow the corporate servers, not the workspaces: DNS out to each, nothing in
    assert not ours[0]["IpPermissions"]
    assert sorted(
        (p["IpProtocol"], r["CidrIp"]) for p in ours[0]["IpPermissionsEgress"] for r in p["IpRanges"]
    ) == sorted((proto, f"{ip}/32") for ip in ("10.10.0.53", "10.10.0.54") for proto in ("tcp", "udp"))
    # and each data-plane VPC is associated with each rule once
    associations = Counter(
        (a["ResolverRuleId"], a["VPCId"])
        for a in listed(r53r, "list_resolver_rule_associations", "ResolverRuleAssociations")
        if a["VPCId"] in (first.vpc_id, second.vpc_id)
    )
    assert len(associations) == 4 and set(associations.values()) == {1}
    assert sum(rate_limits.refused().values()) <= 2, rate_limits.refused()
    # When all three are applied again, then nothing changes
    again = reconciler.run_all(specs)
    assert [r.status for r in again] == ["SUCCEEDED"] * 3, [r.cause for r in again]
    assert not again[0].aws_mutations and not again[0].databricks_mutations


def test_preflight_names_the_groups_per_interface_quota_of_a_shared_endpoint(
    stack: LocalStack, reconciler: Reconciler, data_plane: DataPlane
) -> None:
    # Given a workspace whose VPC endpoints already carry five groups (five workspaces' endpoint groups)
    first = reconciler.run(spec_for(stack, data_plane, "fleet-quota-a"))
    assert first.status == "SUCCEEDED", first.cause
    ec2 = stack.client("ec2")
    extra = [
        ec2.create_security_group(VpcId=data_plane.vpc_id, GroupName=f"fleet-quota-ep-{n}", Description="ep")[
            "GroupId"
        ]
        for n in range(5)
    ]
    workspace_endpoint = first.output["summary"]["endpoints"]["workspace"]["id"]
    ec2.modify_vpc_endpoint(VpcEndpointId=workspace_endpoint, AddSecurityGroupIds=extra[:4])
    # When a workspace in the same VPC names a sixth group as its endpoint group
    spec = _neighbour(stack, data_plane, "fleet-quota-b", 0)
    spec["network"]["endpoint_security_group_id"] = extra[4]
    ec2.authorize_security_group_ingress(
        GroupId=extra[4],
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": p, "ToPort": p, "IpRanges": [{"CidrIp": data_plane.cidr}]}
            for p in (443, 2443, 6666)
        ],
    )
    run = reconciler.run(spec)
    # Then preflight refuses it, naming the quota, the number and the fix, and nothing was changed
    assert run.status == "FAILED" and run.error == "PreflightFailedError", run.cause
    assert "security groups per network interface" in (run.cause or "") and "6 groups" in (run.cause or "")
    assert "use one of its groups" in (run.cause or "")
    assert not run.aws_mutations and not run.databricks_mutations
