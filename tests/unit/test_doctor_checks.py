"""doctor's judgements of what AWS answered: which trail selectors deliver drift events, which egress rules let
VerifyDns ask the VPC resolver and reach the AWS APIs."""

from __future__ import annotations

from typing import Any

import pytest

from dbx_privatelink_cli.doctor import egress_gaps, logs_management_writes


def _advanced(*fields: tuple[str, list[str]]) -> dict[str, Any]:
    return {"AdvancedEventSelectors": [{"FieldSelectors": [{"Field": f, "Equals": v} for f, v in fields]}]}


@pytest.mark.parametrize(
    ("selectors", "delivers"),
    [
        ({"EventSelectors": [{"ReadWriteType": "All", "IncludeManagementEvents": True}]}, True),
        ({"EventSelectors": [{"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True}]}, True),
        # Drift events are writes: a read-only trail, or one of data events only, delivers none.
        ({"EventSelectors": [{"ReadWriteType": "ReadOnly", "IncludeManagementEvents": True}]}, False),
        ({"EventSelectors": [{"ReadWriteType": "All", "IncludeManagementEvents": False}]}, False),
        (_advanced(("eventCategory", ["Management"])), True),
        (_advanced(("eventCategory", ["Management"]), ("readOnly", ["false"])), True),
        (_advanced(("eventCategory", ["Management"]), ("readOnly", ["true"])), False),
        (_advanced(("eventCategory", ["Data"])), False),
        ({"EventSelectors": []}, False),
    ],
)
def test_only_management_write_events_count(selectors: dict[str, Any], delivers: bool) -> None:
    assert logs_management_writes(selectors) is delivers


def _rule(protocol: str, port: int | None, cidr: str) -> dict[str, Any]:
    rule: dict[str, Any] = {"IpProtocol": protocol, "IpRanges": [{"CidrIp": cidr}]}
    if port is not None:
        rule.update(FromPort=port, ToPort=port)
    return rule


def test_a_group_allowing_all_egress_has_no_gap() -> None:
    assert egress_gaps([{"IpPermissionsEgress": [_rule("-1", None, "0.0.0.0/0")]}], "10.0.0.2") == []


def test_dns_must_reach_the_resolver_and_https_must_be_allowed() -> None:
    # Given DNS allowed to the corporate servers only, and no HTTPS
    groups = [{"IpPermissionsEgress": [_rule("udp", 53, "10.10.0.0/24"), _rule("tcp", 53, "10.0.0.0/22")]}]
    # Then the gaps name UDP 53 to the VPC resolver and TCP 443
    assert egress_gaps(groups, "10.0.0.2") == [
        "UDP 53 to the VPC resolver 10.0.0.2",
        "TCP 443 (the EC2 and Route 53 Resolver APIs)",
    ]


def test_rules_of_every_group_count_and_protocol_numbers_are_understood() -> None:
    groups = [
        {"IpPermissionsEgress": [_rule("17", 53, "10.0.0.2/32")]},
        {
            "IpPermissionsEgress": [
                _rule("6", 53, "10.0.0.0/16"),
                {"IpProtocol": "tcp", "FromPort": 0, "ToPort": 1024},
            ]
        },
    ]
    assert egress_gaps(groups, "10.0.0.2") == []
