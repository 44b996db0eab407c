"""Injected faults and the endpoint rate limit answer in each service's real error shape, a bounded number of
times, before moto sees the call."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError
from integration.local_servers import operator_client

from dbx_privatelink_local.aws import LocalAws, LocalAwsSettings
from dbx_privatelink_local.timescale import TimeScale

REGION = "us-east-1"
SCALE = TimeScale(0.01)


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with LocalAws(LocalAwsSettings(cloudtrail_delay=3600), time_scale=SCALE) as local:
        yield local


@pytest.fixture(autouse=True)
def clean(aws: LocalAws) -> None:
    aws.reset()


def _client(aws: LocalAws, service: str) -> Any:
    return operator_client(aws, service, REGION)


def test_ec2_fault_fails_the_next_calls_then_lets_them_through(aws: LocalAws) -> None:
    # Given a fault bounded to two calls
    ec2 = _client(aws, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    aws.faults.add(
        service="ec2", action="CreateVpcEndpoint", code="RequestLimitExceeded", status=503, times=2
    )

    # When CreateVpcEndpoint is called three times
    outcomes = []
    for _ in range(3):
        try:
            ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.s3")
            outcomes.append("ok")
        except ClientError as exc:
            outcomes.append(
                f"{exc.response['Error']['Code']}/{exc.response['ResponseMetadata']['HTTPStatusCode']}"
            )

    # Then two fail the way EC2 fails and the third reaches moto
    assert outcomes == ["RequestLimitExceeded/503", "RequestLimitExceeded/503", "ok"]
    assert len(ec2.describe_vpc_endpoints()["VpcEndpoints"]) == 1
    assert aws.faults.pending() == []


def test_ec2_fault_body_is_the_query_api_error_document(aws: LocalAws) -> None:
    aws.faults.add(service="ec2", action="DescribeVpcs", code="Unavailable", status=503)
    ec2 = _client(aws, "ec2")
    seen: dict[str, Any] = {}
    ec2.meta.events.register(
        "after-call.ec2.DescribeVpcs", lambda http_response, **_: seen.update(r=http_response)
    )

    with pytest.raises(ClientError):
        ec2.describe_vpcs()

    body = seen["r"].text
    assert body.index("<Response>") < body.index("<Errors>") < body.index("<Error>")
    assert "<Code>Unavailable</Code>" in body
    assert "<RequestID>" in body


def test_fault_hits_only_its_action(aws: LocalAws) -> None:
    aws.faults.add(service="ec2", action="CreateVpcEndpoint", code="RequestLimitExceeded", status=503)
    ec2 = _client(aws, "ec2")

    ec2.describe_vpcs()  # another action of the same service goes through

    assert len(aws.faults.pending()) == 1


def test_json_service_fault_carries_the_error_type(aws: LocalAws) -> None:
    aws.faults.add(
        service="route53resolver", action="CreateResolverRule", code="ThrottlingException", status=400
    )
    resolver = _client(aws, "route53resolver")

    with pytest.raises(ClientError) as raised:
        resolver.create_resolver_rule(CreatorRequestId="r1", RuleType="SYSTEM", DomainName="amazonaws.com")

    assert raised.value.response["Error"]["Code"] == "ThrottlingException"
    assert resolver.list_resolver_rules()["ResolverRules"] is not None


def test_rest_xml_service_fault_is_an_error_response(aws: LocalAws) -> None:
    aws.faults.add(service="route53", action="ListHostedZones", code="Throttling", status=400)
    route53 = _client(aws, "route53")

    with pytest.raises(ClientError) as raised:
        route53.list_hosted_zones()

    assert raised.value.response["Error"]["Code"] == "Throttling"


def test_unsigned_requests_and_moto_api_are_never_faulted(aws: LocalAws) -> None:
    aws.faults.add(service="ec2", action="*", code="InternalError", status=500, times=5)

    answer = requests.get(f"{aws.endpoint_url}/moto-api/data.json", timeout=10)

    assert answer.status_code == 200
    assert aws.faults.pending()[0].remaining == 5


def test_fault_counts_must_be_bounded(aws: LocalAws) -> None:
    with pytest.raises(ValueError):
        aws.faults.add(service="ec2", action="*", code="InternalError", status=500, times=0)


def test_endpoint_rate_limit_empties_after_four_mutations(aws: LocalAws) -> None:
    # Given the rate limit on, in real time (the bucket refills 0.3 tokens per emulated second)
    ec2 = _client(aws, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    previous = SCALE.factor
    SCALE.factor = 1.0
    aws.rate_limits.ec2_endpoints.enabled = True
    try:
        # When five endpoints are created back to back
        codes = []
        for _ in range(5):
            try:
                ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.s3")
                codes.append("ok")
            except ClientError as exc:
                codes.append(exc.response["Error"]["Code"])
        # Then the fifth is throttled, while other EC2 calls still pass
        ec2.describe_vpc_endpoints()
    finally:
        aws.rate_limits.ec2_endpoints.enabled = False
        SCALE.factor = previous

    assert codes == ["ok", "ok", "ok", "ok", "RequestLimitExceeded"]
