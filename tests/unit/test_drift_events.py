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


# The roles the template names in the detector's OWN_ROLE_ARNS (CloudFormation's names for them).
OWN_ROLES = [
    f"arn:aws:iam::{ACCOUNT}:role/dbx-privatelink-EnablePrivateDnsFunctionRole-2ISS83H0HGL3",
    f"arn:aws:iam::{ACCOUNT}:role/dbx-privatelink-DetectDriftFunctionRole-9QW1",
]


@pytest.mark.parametrize(
    ("identity", "own"),
    [
        (_assumed("dbx-privatelink-EnablePrivateDnsFunctionRole-2ISS83H0HGL3"), True),
        (_assumed("dbx-privatelink-DetectDriftFunctionRole-9QW1"), True),
        # A human role named like the stack's roles is not the application: its change is repaired.
        (_assumed("dbx-privatelink-Breakglass-admin"), False),
        # A role of the stack that the template does not name (it makes no watched call), another stack's.
        (_assumed("dbx-privatelink-ReconcileStateMachineRole-ABC"), False),
        (_assumed("dbx-privatelink-prod-DetectDriftFunctionRole-9QW1"), False),
        (
            _assumed("dbx-privatelink-EnablePrivateDnsFunctionRole-2ISS83H0HGL3", account="999999999999"),
            False,
        ),
        (_assumed("Admin"), False),
        (
            {
                "type": "IAMUser",
                "arn": f"arn:aws:iam::{ACCOUNT}:user/dbx-privatelink-EnablePrivateDnsFunctionRole-2ISS83H0HGL3",
                "accountId": ACCOUNT,
            },
            False,
        ),
        ({"type": "Root", "arn": f"arn:aws:iam::{ACCOUNT}:root", "accountId": ACCOUNT}, False),
    ],
)
def test_own_principals_are_exactly_the_stacks_named_roles_in_its_account(
    identity: dict[str, Any], own: bool
) -> None:
    event = CloudTrailEvent.model_validate(_event("ModifyVpcEndpoint", {}, identity))
    assert is_own_principal(event.detail.userIdentity, account_id=ACCOUNT, role_arns=OWN_ROLES) is own


def test_no_named_roles_means_no_call_is_the_applications() -> None:
    identity = CloudTrailEvent.model_validate(
        _event("ModifyVpcEndpoint", {}, _assumed("dbx-privatelink-EnablePrivateDnsFunctionRole-2ISS83H0HGL3"))
    ).detail.userIdentity
    assert not is_own_principal(identity, account_id=ACCOUNT, role_arns=[""])


def test_the_role_is_read_from_the_session_arn_when_the_event_has_no_session_issuer() -> None:
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
    assert not is_own_principal(identity, account_id=ACCOUNT, role_arns=OWN_ROLES)
    assert is_own_principal(
        identity, account_id=ACCOUNT, role_arns=[f"arn:aws:iam::{ACCOUNT}:role/HandNamed"]
    )
    named = CloudTrailEvent.model_validate(
        _event("ModifyVpcEndpoint", {}, _assumed("HandNamed"))
    ).detail.userIdentity
    assert actor_of(named) == f"arn:aws:sts::{ACCOUNT}:assumed-role/HandNamed/session-1"
