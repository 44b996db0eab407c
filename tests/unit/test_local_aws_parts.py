"""The pure parts of the emulated AWS: target payloads, schedules, CloudTrail classification and shapes."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from werkzeug.datastructures import Headers

from dbx_privatelink_local.aws.calls import AwsCall
from dbx_privatelink_local.aws.cloudtrail import is_mutating, request_parameters
from dbx_privatelink_local.aws.eventbridge import (
    cron_next,
    json_path,
    rate_seconds,
    target_payload,
    transform,
)

EVENT: dict[str, Any] = {
    "id": "e-1",
    "source": "aws.ec2",
    "time": "2026-01-01T00:00:00Z",
    "detail": {"eventName": "ModifyVpcEndpoint", "ids": ["vpce-1", "vpce-2"], "quote": 'say "hi"'},
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$", EVENT),
        ("$.detail.eventName", "ModifyVpcEndpoint"),
        ("$.detail.ids[1]", "vpce-2"),
        ("$['detail']['quote']", 'say "hi"'),
    ],
)
def test_json_path_subset(path: str, expected: Any) -> None:
    assert json_path(EVENT, path) == expected


def test_transform_inserts_text_inside_strings_and_json_outside() -> None:
    template = '{"ids": <ids>, "line": "<name> on <ids>", "q": "<quote>", "missing": <nope>, "s": "<nope>"}'
    paths = {
        "ids": "$.detail.ids",
        "name": "$.detail.eventName",
        "quote": "$.detail.quote",
        "nope": "$.detail.absent",
    }

    out = json.loads(transform(template, paths, EVENT, "r", "arn:r"))

    assert out == {
        "ids": ["vpce-1", "vpce-2"],
        "line": 'ModifyVpcEndpoint on ["vpce-1", "vpce-2"]',
        "q": 'say "hi"',
        "missing": None,
        "s": "",
    }


def test_target_payload_precedence() -> None:
    assert target_payload({"Input": '{"a": 1}', "InputPath": "$.id"}, EVENT, "r", "arn") == '{"a": 1}'
    assert target_payload({"InputPath": "$.id"}, EVENT, "r", "arn") == '"e-1"'
    assert json.loads(target_payload({}, EVENT, "r", "arn")) == EVENT


def test_rate_expressions() -> None:
    assert rate_seconds("rate(1 minute)") == 60
    assert rate_seconds("rate(5 minutes)") == 300
    assert rate_seconds("rate(2 hours)") == 7200
    assert rate_seconds("cron(0 * * * ? *)") is None


def test_cron_next_follows_aws_fields() -> None:
    after = datetime(2026, 1, 1, 10, 7, tzinfo=UTC)  # a Thursday
    assert cron_next("cron(0/15 * * * ? *)", after) == datetime(2026, 1, 1, 10, 15, tzinfo=UTC)
    assert cron_next("cron(30 9 ? * MON-FRI *)", after) == datetime(2026, 1, 2, 9, 30, tzinfo=UTC)
    assert cron_next("cron(0 0 1 * ? *)", after) == datetime(2026, 2, 1, 0, 0, tzinfo=UTC)
    assert cron_next("cron(0 0 L * ? *)", after) is None


@pytest.mark.parametrize(
    ("action", "mutating"),
    [
        ("ModifyVpcEndpoint", True),
        ("DeleteVpcEndpoints", True),
        ("RevokeSecurityGroupIngress", True),
        ("DisassociateResolverRule", True),
        ("ChangeResourceRecordSets", True),
        ("DescribeVpcEndpoints", False),
        ("ListResolverRules", False),
        ("GetResolverRule", False),
        (None, False),
    ],
)
def test_mutating_calls(action: str | None, mutating: bool) -> None:
    assert is_mutating(action) is mutating


def _ec2_call(body: str) -> AwsCall:
    return AwsCall(
        service="ec2",
        region="us-east-1",
        access_key_id="AKIA",
        method="POST",
        path="/",
        query_string="",
        headers=Headers({"Content-Type": "application/x-www-form-urlencoded"}),
        body=body.encode(),
        source_ip="127.0.0.1",
        environ={},
    )


def test_newer_ec2_apis_tag_each_list_item() -> None:
    call = _ec2_call(
        "Action=CreateVpcEndpoint&Version=2016-11-15&VpcId=vpc-1&PrivateDnsEnabled=false"
        "&SubnetId.1=subnet-a&SubnetId.2=subnet-b"
        "&TagSpecification.1.ResourceType=vpc-endpoint&TagSpecification.1.Tag.1.Key=Name"
        "&TagSpecification.1.Tag.1.Value=rest"
    )

    assert request_parameters(call) == {
        "CreateVpcEndpointRequest": {
            "VpcId": "vpc-1",
            "PrivateDnsEnabled": False,
            "SubnetId": [{"tag": 1, "content": "subnet-a"}, {"tag": 2, "content": "subnet-b"}],
            "TagSpecification": {
                "tag": 1,
                "ResourceType": "vpc-endpoint",
                "Tag": {"tag": 1, "Key": "Name", "Value": "rest"},
            },
        }
    }


def test_the_local_dns_cache_makes_one_read_for_queries_that_arrive_together() -> None:
    from dbx_privatelink.dns.resolution import DnsState
    from dbx_privatelink_local.dns.local_dns import _StateCache

    # Given a cache whose read of the emulated AWS is under way (held until released)
    started, release, reads = threading.Event(), threading.Event(), []
    state = DnsState(region="us-east-1")

    def read() -> DnsState:
        reads.append(1)
        started.set()
        assert release.wait(timeout=10)
        return state

    cache = _StateCache(read, ttl=30.0)
    answers: list[DnsState] = []
    first = threading.Thread(target=lambda: answers.append(cache.get()))
    first.start()
    assert started.wait(timeout=10)
    # When four more queries arrive while it runs
    others = [threading.Thread(target=lambda: answers.append(cache.get())) for _ in range(4)]
    for t in others:
        t.start()
    release.set()
    for t in [first, *others]:
        t.join(timeout=10)
    # Then all five have the state from the one read
    assert len(answers) == 5 and all(a is state for a in answers) and len(reads) == 1
    # and a change told to it makes the next query read again
    cache.invalidate()
    assert cache.get() is state and len(reads) == 2
