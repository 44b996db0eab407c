"""Preflight's fleet checks, with an in-memory EC2: the quotas a VPC's shared endpoints run into as
workspaces join it, and an AWS service's private DNS held by an endpoint the application does not own."""

from __future__ import annotations

from dataclasses import dataclass, field

from dbx_privatelink.aws.ec2 import EndpointInfo
from dbx_privatelink.models.endpoints import EndpointPlan
from dbx_privatelink.reconcile.preflight import OWNER_TAG_KEY, _check_shared_endpoints

VPC = "vpc-0a0a0a0a0a0a0a0a0"
STS = "com.amazonaws.us-east-1.sts"
OWNER = "dbx-privatelink"


@dataclass
class FakeEc2:
    endpoints: list[EndpointInfo] = field(default_factory=list)

    def find_endpoints(self, vpc_id: str, service_name: str | None = None) -> list[EndpointInfo]:
        return [e for e in self.endpoints if e.vpc_id == vpc_id and service_name in (None, e.service_name)]


def _endpoint(
    n: int, service: str, *, owner: str = "someone", groups: tuple[str, ...] = (), dns: bool = False
) -> EndpointInfo:
    return EndpointInfo(
        vpc_endpoint_id=f"vpce-{n:017x}",
        vpc_id=VPC,
        service_name=service,
        endpoint_type="Interface",
        state="available",
        private_dns_enabled=dns,
        security_group_ids=groups,
        tags={OWNER_TAG_KEY: owner},
    )


def _plan(role: str = "sts", service: str = STS, groups: list[str] | None = None) -> EndpointPlan:
    return EndpointPlan(
        role=role,  # type: ignore[arg-type]
        vpc_id=VPC,
        service_name=service,
        security_group_ids=groups or ["sg-0000000000000001"],
        private_dns_at_create=role not in ("workspace", "relay"),
    )


def test_interface_endpoints_per_vpc_are_counted_with_what_the_spec_adds() -> None:
    ec2 = FakeEc2([_endpoint(n, f"com.amazonaws.us-east-1.svc{n}") for n in range(49)])
    problems: list[str] = []
    _check_shared_endpoints([_plan()], ec2, OWNER, problems)  # type: ignore[arg-type]
    assert problems == []
    _check_shared_endpoints([_plan(), _plan("glue", "com.amazonaws.us-east-1.glue")], ec2, OWNER, problems)  # type: ignore[arg-type]
    [problem] = problems
    assert "has 49 interface endpoints and this spec adds 2" in problem and "50" in problem


def test_an_endpoint_of_ours_already_there_is_not_counted_as_new() -> None:
    ec2 = FakeEc2([_endpoint(n, f"com.amazonaws.us-east-1.svc{n}") for n in range(49)])
    ec2.endpoints.append(_endpoint(99, STS, owner=OWNER, groups=("sg-0000000000000001",)))
    problems: list[str] = []
    _check_shared_endpoints([_plan()], ec2, OWNER, problems)  # type: ignore[arg-type]
    assert problems == []


def test_a_sixth_group_on_a_shared_endpoint_is_refused_with_the_fix() -> None:
    groups = tuple(f"sg-000000000000000{n}" for n in range(1, 6))
    ec2 = FakeEc2([_endpoint(1, STS, owner=OWNER, groups=groups)])
    problems: list[str] = []
    _check_shared_endpoints([_plan(groups=["sg-0000000000000009"])], ec2, OWNER, problems)  # type: ignore[arg-type]
    [problem] = problems
    assert "makes 6 groups" in problem and "security groups per network interface" in problem
    assert "use one of its groups" in problem
    # One of the groups already there: nothing to add, nothing to refuse
    problems.clear()
    _check_shared_endpoints([_plan(groups=["sg-0000000000000003"])], ec2, OWNER, problems)  # type: ignore[arg-type]
    assert problems == []


def test_an_aws_service_whose_private_dns_another_endpoint_holds_is_refused() -> None:
    ec2 = FakeEc2([_endpoint(1, STS, dns=True)])
    problems: list[str] = []
    _check_shared_endpoints([_plan()], ec2, OWNER, problems)  # type: ignore[arg-type]
    [problem] = problems
    assert "vpce-00000000000000001" in problem and "remove sts from endpoints.aws_services" in problem
