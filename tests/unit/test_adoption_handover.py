"""Adoption: the stack tags as its own only what it creates or what a human handed over to it with the tag
dbx-privatelink:adopt=<stack> (template.yaml lets its roles tag an existing resource only then)."""

from __future__ import annotations

import pytest

from dbx_privatelink.aws.ec2 import EndpointInfo
from dbx_privatelink.errors import AwsAccessDeniedError
from dbx_privatelink.models.endpoints import EndpointPlan
from dbx_privatelink.reconcile.dns import _claim
from dbx_privatelink.reconcile.preflight import ADOPT_TAG_KEY, OWNER_TAG_KEY, _check_endpoint_ownership

VPC = "vpc-0a0a0a0a0a0a0a0a0"
SERVICE = "com.amazonaws.vpce.us-east-1.vpce-svc-09143d1e626de2f04"
OWNER = "dbx-privatelink"
ENDPOINT = "vpce-0a1b2c3d4e5f60718"


class FakeEc2:
    def __init__(self, tags: dict[str, str]) -> None:
        self.endpoint = EndpointInfo(
            vpc_endpoint_id=ENDPOINT,
            vpc_id=VPC,
            service_name=SERVICE,
            endpoint_type="Interface",
            state="available",
            private_dns_enabled=True,
            security_group_ids=("sg-0000000000000001",),
            tags=tags,
        )

    def get_endpoints(self, ids: list[str]) -> dict[str, EndpointInfo]:
        return {i: self.endpoint for i in ids if i == ENDPOINT}


def _plan() -> EndpointPlan:
    return EndpointPlan(
        role="workspace",
        vpc_id=VPC,
        service_name=SERVICE,
        security_group_ids=["sg-0000000000000001"],
        private_dns_at_create=False,
        adopt_id=ENDPOINT,
    )


@pytest.mark.parametrize(
    "tags", [{ADOPT_TAG_KEY: OWNER}, {OWNER_TAG_KEY: OWNER}, {ADOPT_TAG_KEY: OWNER, "Name": "by hand"}]
)
def test_an_endpoint_handed_over_or_already_ours_may_be_adopted(tags: dict[str, str]) -> None:
    problems: list[str] = []
    _check_endpoint_ownership(_plan(), [], OWNER, FakeEc2(tags), problems)  # type: ignore[arg-type]
    assert problems == []


@pytest.mark.parametrize(
    "tags", [{}, {ADOPT_TAG_KEY: "another-stack"}, {OWNER_TAG_KEY: "another-stack"}, {"Name": OWNER}]
)
def test_an_endpoint_not_handed_over_is_refused_with_the_tag_to_set(tags: dict[str, str]) -> None:
    problems: list[str] = []
    _check_endpoint_ownership(_plan(), [], OWNER, FakeEc2(tags), problems)  # type: ignore[arg-type]
    [problem] = problems
    assert problem.startswith(f"endpoints.adopt.workspace: {ENDPOINT} is not handed over to this stack")
    assert f"--tags Key={ADOPT_TAG_KEY},Value={OWNER}" in problem


class _RefusingResolver:
    """Route 53 Resolver as the template lets the roles tag: never a resource not handed over."""

    def tag(self, arn: str, tags: dict[str, str]) -> None:
        raise AwsAccessDeniedError("TagResource failed: AccessDeniedException: not authorized")


def test_a_resolver_resource_not_handed_over_is_refused_with_the_tag_that_hands_it_over() -> None:
    arn = "arn:aws:route53resolver:us-east-1:123456789012:resolver-rule/rslvr-rr-0a1b2c3d4e5f6071"
    with pytest.raises(AwsAccessDeniedError) as refused:
        _claim(_RefusingResolver(), arn, {OWNER_TAG_KEY: OWNER, "dbx-privatelink:role": "forward"})  # type: ignore[arg-type]
    assert f"{arn} would be adopted but is not handed over to this stack" in str(refused.value)
    assert f"--tags Key={ADOPT_TAG_KEY},Value={OWNER}" in str(refused.value)
