"""The CloudTrail event model: what the detector reads from an event, and who made the call."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from dbx_privatelink.drift.events import CloudTrailEvent, ScheduledEvent, describe_change
from dbx_privatelink.drift.principals import actor_of, is_own_principal, role_name_of

ACCOUNT = "123456789012"


def _event(
    name: str, params: dict[str, Any], identity: dict[str, Any] | None = None, **detail: Any
) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "6f3c-event",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.ec2",
        "account": ACCOUNT,
        "time": "2026-01-02T03:04:05Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "eventID": "e-1",
            "eventName": name,
            "eventSource": "ec2.amazonaws.com",
            "eventTime": "2026-01-02T03:04:05Z",
            "recipientAccountId": ACCOUNT,
            "userIdentity": identity or {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/alice"},
            "requestParameters": params,
            "responseElements": None,
            **detail,
        },
    }


def _assumed(role: str, account: str = ACCOUNT) -> dict[str, Any]:
    return {
        "type": "AssumedRole",
        "arn": f"arn:aws:sts::{account}:assumed-role/{role}/session-1",
        "accountId": account,
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{account}:role/{role}", "userName": role}
        },
    }


def test_private_dns_off_names_the_endpoint_and_before_after() -> None:
    event = CloudTrailEvent.model_validate(
        _event(
            "ModifyVpcEndpoint",
            {
                "ModifyVpcEndpointRequest": {
                    "VpcEndpointId": "vpce-0a1b2c3d4e5f60718",
                    "PrivateDnsEnabled": False,
                }
            },
        )
    )
    assert event.resource_ids() == ["vpce-0a1b2c3d4e5f60718"]
    summary, before, after = describe_change(event)
    assert summary == "private DNS turned off on vpce-0a1b2c3d4e5f60718"
    assert before == {"private_dns_enabled": True} and after == {"private_dns_enabled": False}


def test_classic_ec2_shapes_yield_group_and_rule() -> None:
    event = CloudTrailEvent.model_validate(
        _event(
            "RevokeSecurityGroupIngress",
            {
                "groupId": "sg-0a1b2c3d4e5f60718",
                "ipPermissions": {
                    "items": [
                        {
                            "ipProtocol": "tcp",
                            "fromPort": 443,
                            "toPort": 443,
                            "ipRanges": {"items": [{"cidrIp": "10.0.0.0/22"}]},
                        }
                    ]
                },
            },
        )
    )
    assert event.resource_ids() == ["sg-0a1b2c3d4e5f60718"]
    summary, before, _ = describe_change(event)
    assert summary == "ingress rule revoked on sg-0a1b2c3d4e5f60718: TCP 443 10.0.0.0/22"
    assert before == {"ingress_rules": ["TCP 443 10.0.0.0/22"]}


def test_ids_are_found_anywhere_once_and_service_ids_are_not_resources() -> None:
    event = CloudTrailEvent.model_validate(
        _event(
            "DeleteVpcEndpoints",
            {
                "DeleteVpcEndpointsRequest": {
                    "VpcEndpointId": [
                        {"tag": 1, "content": "vpce-0a1b2c3d4e5f60718"},
                        {"tag": 2, "content": "vpce-0a1b2c3d4e5f60719"},
                    ]
                }
            },
            responseElements={
                "unsuccessful": {"items": [{"resourceId": "vpce-0a1b2c3d4e5f60718"}]},
                "svc": "vpce-svc-0123456789abcdef0",
            },
        )
    )
    assert event.resource_ids() == ["vpce-0a1b2c3d4e5f60718", "vpce-0a1b2c3d4e5f60719"]


def test_resolver_and_hosted_zone_ids() -> None:
    raw = _event(
        "DisassociateResolverRule",
        {"resolverRuleId": "rslvr-rr-0123456789abcdef0", "vPCId": "vpc-0a1b2c3d4e5f60718"},
    )
    assert CloudTrailEvent.model_validate(raw).resource_ids() == [
        "rslvr-rr-0123456789abcdef0",
        "vpc-0a1b2c3d4e5f60718",
    ]
    zone = _event(
        "DisassociateVPCFromHostedZone",
        {"hostedZoneId": "Z0123456789ABCDEFGHIJ", "vPC": {"vPCId": "vpc-0a1b2c3d4e5f60718"}},
    )
    assert CloudTrailEvent.model_validate(zone).resource_ids() == [
        "Z0123456789ABCDEFGHIJ",
        "vpc-0a1b2c3d4e5f60718",
    ]


def test_a_failed_call_is_known_as_such() -> None:
    event = CloudTrailEvent.model_validate(_event("ModifyVpcEndpoint", {}, errorCode="UnauthorizedOperation"))
    assert event.failed


@pytest.mark.parametrize(
    "change",
    [
        {"detail-type": "Scheduled Event"},
        {"account": "not-an-account"},
        {"id": ""},
    ],
)
def test_malformed_events_are_refused(change: dict[str, Any]) -> None:
    raw = _event("ModifyVpcEndpoint", {})
    raw.update(change)
    with pytest.raises(ValidationError):
        CloudTrailEvent.model_validate(raw)


def test_scheduled_event() -> None:
    event = ScheduledEvent.model_validate(
        {
            "id": "s-1",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": ACCOUNT,
            "detail": {},
        }
    )
    assert event.id == "s-1"


@pytest.mark.parametrize(
    ("identity", "own"),
    [
        (_assumed("dbx-privatelink-EnablePrivateDnsFunctionRole-2ISS83H0HGL3"), True),
        (_assumed("dbx-privatelink-ReconcileStateMachineRole-ABC"), True),
        (_assumed("dbx-privatelink-prod-DetectDriftFunctionRole-X"), False),  # another stack's prefix
        (_assumed("dbx-privatelink-EnablePrivateDnsFunctionRole-X", account="999999999999"), False),
        (_assumed("Admin"), False),
        (
            {
                "type": "IAMUser",
                "arn": f"arn:aws:iam::{ACCOUNT}:user/dbx-privatelink-admin",
                "accountId": ACCOUNT,
            },
            False,
        ),
        ({"type": "Root", "arn": f"arn:aws:iam::{ACCOUNT}:root", "accountId": ACCOUNT}, False),
    ],
)
def test_own_principals_are_the_stacks_roles_in_its_account(identity: dict[str, Any], own: bool) -> None:
    event = CloudTrailEvent.model_validate(_event("ModifyVpcEndpoint", {}, identity))
    got = is_own_principal(event.detail.userIdentity, stack_name="dbx-privatelink", account_id=ACCOUNT)
    assert got is own


def test_explicit_role_arns_and_role_name_from_the_session_arn() -> None:
    identity = CloudTrailEvent.model_validate(
        _event(
            "ModifyVpcEndpoint",
            {},
            {
                "type": "AssumedRole",
                "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/HandNamed/s",
                "accountId": ACCOUNT,
            },
        )
    ).detail.userIdentity
    assert role_name_of(identity) == "HandNamed"
    assert not is_own_principal(identity, stack_name="dbx-privatelink", account_id=ACCOUNT)
    named = CloudTrailEvent.model_validate(
        _event("ModifyVpcEndpoint", {}, _assumed("HandNamed"))
    ).detail.userIdentity
    assert is_own_principal(
        named,
        stack_name="dbx-privatelink",
        account_id=ACCOUNT,
        role_arns=[f"arn:aws:iam::{ACCOUNT}:role/HandNamed"],
    )
    assert actor_of(named) == f"arn:aws:sts::{ACCOUNT}:assumed-role/HandNamed/session-1"
