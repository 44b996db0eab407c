"""Successful mutating calls to EC2, Route 53 Resolver and Route 53 become CloudTrail events on the caller's
default event bus, late, in CloudTrail's own shapes, naming who made the call."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from dbx_privatelink_local.aws import LocalAws, LocalAwsSettings
from dbx_privatelink_local.timescale import TimeScale

REGION = "eu-west-1"
ACCOUNT = "123456789012"
# 100 emulated seconds of CloudTrail delay last one wall second.
SETTINGS = LocalAwsSettings(
    cloudtrail_delay=100,
    aws_endpoint_available_after=0,
    # A rule is deleted right after its association: the association must be gone at once.
    rule_association_deleted_after=0,
    default_identity_arn=f"arn:aws:iam::{ACCOUNT}:user/operator",
)


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with LocalAws(SETTINGS, time_scale=TimeScale(0.01)) as local:
        yield local


@pytest.fixture(autouse=True)
def clean(aws: LocalAws) -> Iterator[None]:
    aws.reset()
    aws.cloudtrail.pause()
    yield
    aws.cloudtrail.resume()


def _client(aws: LocalAws, service: str, key: str = "AKIAOPERATOR", **credentials: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=aws.endpoint_url,
        region_name=REGION,
        aws_access_key_id=key,
        aws_secret_access_key=credentials.get("secret", "secret"),
        aws_session_token=credentials.get("token"),
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


def _endpoint(ec2: Any) -> tuple[str, str]:
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    endpoint = ec2.create_vpc_endpoint(
        VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.sts", VpcEndpointType="Interface", SubnetIds=[subnet]
    )["VpcEndpoint"]["VpcEndpointId"]
    return vpc, endpoint


def test_modify_vpc_endpoint_event_has_cloudtrail_shape(aws: LocalAws) -> None:
    # Given an endpoint
    ec2 = _client(aws, "ec2")
    _, endpoint = _endpoint(ec2)

    # When private DNS is turned off and the trail is flushed
    ec2.modify_vpc_endpoint(VpcEndpointId=endpoint, PrivateDnsEnabled=False)
    aws.cloudtrail.flush()

    # Then the event on the bus looks like CloudTrail's
    [event] = aws.cloudtrail.events("ModifyVpcEndpoint")
    assert (event["source"], event["detail-type"], event["account"], event["region"]) == (
        "aws.ec2",
        "AWS API Call via CloudTrail",
        ACCOUNT,
        REGION,
    )
    detail = event["detail"]
    assert detail["requestParameters"] == {
        "ModifyVpcEndpointRequest": {"VpcEndpointId": endpoint, "PrivateDnsEnabled": False}
    }
    assert detail["eventSource"] == "ec2.amazonaws.com"
    assert detail["awsRegion"] == REGION
    assert detail["readOnly"] is False
    assert detail["eventType"] == "AwsApiCall"
    assert detail["managementEvent"] is True
    assert detail["recipientAccountId"] == ACCOUNT
    assert detail["sourceIPAddress"] == "127.0.0.1"
    assert detail["userAgent"].startswith("Boto3/")
    assert detail["requestID"] and detail["eventID"] and detail["eventTime"].endswith("Z")
    assert detail["responseElements"]["ModifyVpcEndpointResponse"]["return"] is True


def test_delete_vpc_endpoints_event_tags_each_id(aws: LocalAws) -> None:
    ec2 = _client(aws, "ec2")
    _, endpoint = _endpoint(ec2)

    ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint])
    aws.cloudtrail.flush()

    [event] = aws.cloudtrail.events("DeleteVpcEndpoints")
    assert event["detail"]["requestParameters"] == {
        "DeleteVpcEndpointsRequest": {"VpcEndpointId": {"tag": 1, "content": endpoint}}
    }


def test_revoke_security_group_ingress_event_uses_classic_items(aws: LocalAws) -> None:
    ec2 = _client(aws, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    group = ec2.create_security_group(GroupName="endpoints", Description="endpoints", VpcId=vpc)["GroupId"]
    rule = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]}
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[rule])

    ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=[rule])
    aws.cloudtrail.flush()

    [event] = aws.cloudtrail.events("RevokeSecurityGroupIngress")
    assert event["detail"]["requestParameters"] == {
        "groupId": group,
        "ipPermissions": {
            "items": [
                {
                    "ipProtocol": "tcp",
                    "fromPort": 443,
                    "toPort": 443,
                    "ipRanges": {"items": [{"cidrIp": "10.0.0.0/16"}]},
                }
            ]
        },
    }
    assert event["detail"]["responseElements"]["_return"] is True


def test_resolver_rule_events_keep_the_json_body_in_camel_case(aws: LocalAws) -> None:
    # Given a rule associated with a VPC
    ec2 = _client(aws, "ec2")
    resolver = _client(aws, "route53resolver")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    rule = resolver.create_resolver_rule(
        CreatorRequestId="keep-aws", RuleType="SYSTEM", DomainName="amazonaws.com"
    )
    rule_id = rule["ResolverRule"]["Id"]
    resolver.associate_resolver_rule(ResolverRuleId=rule_id, VPCId=vpc)

    # When someone disassociates and deletes it
    resolver.disassociate_resolver_rule(ResolverRuleId=rule_id, VPCId=vpc)
    resolver.delete_resolver_rule(ResolverRuleId=rule_id)
    aws.cloudtrail.flush()

    # Then both events name the rule the way CloudTrail does
    [disassociated] = aws.cloudtrail.events("DisassociateResolverRule")
    [deleted] = aws.cloudtrail.events("DeleteResolverRule")
    assert disassociated["source"] == "aws.route53resolver"
    assert disassociated["detail"]["eventSource"] == "route53resolver.amazonaws.com"
    assert disassociated["detail"]["requestParameters"] == {"resolverRuleId": rule_id, "vPCId": vpc}
    assert deleted["detail"]["requestParameters"] == {"resolverRuleId": rule_id}
    assert deleted["detail"]["responseElements"]["resolverRule"]["id"] == rule_id
    assert deleted["region"] == REGION


def test_route53_events_are_recorded_in_us_east_1(aws: LocalAws) -> None:
    route53 = _client(aws, "route53")
    zone = route53.create_hosted_zone(Name="example.internal", CallerReference="z1")["HostedZone"]["Id"]
    zone_id = zone.split("/")[-1]

    route53.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": "db.example.internal",
                        "Type": "A",
                        "TTL": 60,
                        "ResourceRecords": [{"Value": "10.0.0.10"}],
                    },
                }
            ]
        },
    )
    aws.cloudtrail.flush()

    [event] = aws.cloudtrail.events("ChangeResourceRecordSets")
    assert (event["source"], event["region"], event["detail"]["eventSource"]) == (
        "aws.route53",
        "us-east-1",
        "route53.amazonaws.com",
    )
    change = event["detail"]["requestParameters"]["changeBatch"]["changes"][0]
    assert event["detail"]["requestParameters"]["hostedZoneId"] == zone_id
    assert change["action"] == "UPSERT"
    assert change["resourceRecordSet"]["name"] == "db.example.internal"
    assert change["resourceRecordSet"]["tTL"] == 60


def test_user_identity_of_an_assumed_role_session(aws: LocalAws) -> None:
    # Given credentials from STS AssumeRole
    sts = _client(aws, "sts")
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/dbx-privatelink-reconciler"
    credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName="reconcile-ws1")["Credentials"]
    ec2 = _client(
        aws,
        "ec2",
        key=credentials["AccessKeyId"],
        secret=credentials["SecretAccessKey"],
        token=credentials["SessionToken"],
    )

    # When that session creates a VPC
    ec2.create_vpc(CidrBlock="10.9.0.0/16")
    aws.cloudtrail.flush()

    # Then CloudTrail names the role session
    [event] = aws.cloudtrail.events("CreateVpc")
    identity = event["detail"]["userIdentity"]
    assert identity["type"] == "AssumedRole"
    assert identity["arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/dbx-privatelink-reconciler/reconcile-ws1"
    assert identity["accessKeyId"] == credentials["AccessKeyId"]
    assert identity["principalId"].endswith(":reconcile-ws1")
    assert identity["sessionContext"]["sessionIssuer"]["arn"] == role_arn
    assert event["detail"]["requestParameters"] == {"cidrBlock": "10.9.0.0/16"}


def test_user_identity_of_an_iam_user_key_and_of_any_other_key(aws: LocalAws) -> None:
    iam = _client(aws, "iam")
    iam.create_user(UserName="alice")
    key = iam.create_access_key(UserName="alice")["AccessKey"]

    _client(aws, "ec2", key=key["AccessKeyId"], secret=key["SecretAccessKey"]).create_vpc(
        CidrBlock="10.1.0.0/16"
    )
    _client(aws, "ec2", key="AKIASOMEONEELSE").create_vpc(CidrBlock="10.2.0.0/16")
    aws.cloudtrail.flush()

    alice, other = (e["detail"]["userIdentity"] for e in aws.cloudtrail.events("CreateVpc"))
    assert (alice["type"], alice["arn"], alice["userName"]) == (
        "IAMUser",
        f"arn:aws:iam::{ACCOUNT}:user/alice",
        "alice",
    )
    assert (other["type"], other["arn"], other["accessKeyId"]) == (
        "IAMUser",
        SETTINGS.default_identity_arn,
        "AKIASOMEONEELSE",
    )


def test_no_event_for_read_only_or_failed_calls(aws: LocalAws) -> None:
    ec2 = _client(aws, "ec2")
    ec2.describe_vpcs()
    ec2.describe_vpc_endpoints()
    with pytest.raises(ClientError):
        ec2.modify_vpc_endpoint(VpcEndpointId="vpce-0123456789abcdef0", PrivateDnsEnabled=True)
    _client(aws, "sqs").create_queue(QueueName="not-a-trail-service")

    assert aws.cloudtrail.pending() == []
    assert aws.cloudtrail.flush() == 0
    assert aws.cloudtrail.events() == []


def test_events_arrive_after_the_delay(aws: LocalAws) -> None:
    # Given the trail running with its delay of 100 emulated seconds (one wall second)
    aws.cloudtrail.resume()
    ec2 = _client(aws, "ec2")

    # When a VPC is created
    started = time.monotonic()
    ec2.create_vpc(CidrBlock="10.3.0.0/16")

    # Then nothing is on the bus at first, and the event arrives after the delay
    assert aws.cloudtrail.pending() == ["CreateVpc"]
    assert aws.cloudtrail.events() == []
    [event] = aws.cloudtrail.wait_for("CreateVpc", timeout=10)
    assert time.monotonic() - started >= aws.time_scale.scaled(SETTINGS.cloudtrail_delay) * 0.9
    assert event["detail"]["requestParameters"] == {"cidrBlock": "10.3.0.0/16"}


def test_events_reach_rules_on_the_default_bus(aws: LocalAws) -> None:
    # Given a drift rule on the default bus with an SQS target
    events, sqs, ec2 = _client(aws, "events"), _client(aws, "sqs"), _client(aws, "ec2")
    queue_url = sqs.create_queue(QueueName="drift")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    pattern = {
        "source": ["aws.ec2"],
        "detail-type": ["AWS API Call via CloudTrail"],
        "detail": {"eventName": ["ModifyVpcEndpoint", "DeleteVpcEndpoints"]},
    }
    events.put_rule(Name="endpoint-drift", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="endpoint-drift", Targets=[{"Id": "q", "Arn": queue_arn}])
    _, endpoint = _endpoint(ec2)

    # When the endpoint is modified and the trail delivers
    ec2.modify_vpc_endpoint(VpcEndpointId=endpoint, PrivateDnsEnabled=False)
    aws.cloudtrail.flush()

    # Then only the matching event reaches the queue, as EventBridge delivers it
    assert aws.eventbridge.wait_for(1, timeout=10, rule_name="endpoint-drift", outcome="ok")
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    [body] = [json.loads(m["Body"]) for m in messages]
    assert body["detail"]["eventName"] == "ModifyVpcEndpoint"
    assert body["detail"]["requestParameters"]["ModifyVpcEndpointRequest"]["VpcEndpointId"] == endpoint
    assert body["time"].endswith("Z")
    assert "ingestion-time" not in body


def test_the_trace_header_of_the_call_an_event_records_is_kept_beside_it(aws: LocalAws) -> None:
    # Given two calls, one carrying an X-Amzn-Trace-Id header (as botocore sends in a Lambda invocation)
    ec2 = _client(aws, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    header = "Root=1-00000000-000000000000000000000001;Parent=0000000000000001;Sampled=0"
    traced = _client(aws, "ec2")
    traced.meta.events.register(
        "before-send.ec2.ModifyVpcAttribute",
        lambda request, **_: request.headers.__setitem__("X-Amzn-Trace-Id", header),
    )
    traced.modify_vpc_attribute(VpcId=vpc, EnableDnsSupport={"Value": True})
    aws.cloudtrail.flush()
    # Then each event gives back the header its call carried ("" for none), and no CloudTrail field holds it
    created, modified = aws.cloudtrail.events("CreateVpc")[0], aws.cloudtrail.events("ModifyVpcAttribute")[0]
    assert (aws.cloudtrail.trace_header(created), aws.cloudtrail.trace_header(modified)) == ("", header)
    assert header not in json.dumps(modified)
