"""Configuration of the emulated AWS. Every duration is in emulated seconds: the TimeScale turns it into wall
time (0.01 makes a 300-second CloudTrail delay last 3 seconds).

Quotas AWS enforces on every account (rules per security group, security groups per interface) are on by
default with AWS's default values: code that would be refused on AWS must be refused here. Request-rate
limits are load rather than rules, so they are off unless a test, benchmark or `local up --aws-rate-limits`
asks for them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LocalAwsSettings:
    """Delays, identities and switches of the emulated AWS; the defaults follow what AWS does."""

    # Interface endpoint to an AWS service (sts, kinesis-streams, glue ...): pending -> available.
    aws_endpoint_available_after: float = 60.0
    # Gateway endpoint (s3, dynamodb): 0 means available at creation, as AWS reports it.
    gateway_endpoint_available_after: float = 0.0
    # Databricks endpoint once the service accepted it: pending -> available.
    accepted_endpoint_available_after: float = 20.0
    # Turning private DNS on: available -> pending -> available (the seed walkthrough saw "pending").
    private_dns_update_after: float = 10.0
    # Route 53 Resolver: a new endpoint is CREATING, then OPERATIONAL; a deleted one DELETING, then gone. A new
    # rule association is CREATING, then COMPLETE; a disassociated one DELETING, then gone. 0 means at once.
    resolver_endpoint_operational_after: float = 60.0
    resolver_endpoint_deleted_after: float = 30.0
    rule_association_complete_after: float = 20.0
    rule_association_deleted_after: float = 10.0
    # CloudTrail -> EventBridge: AWS delivers API-call events about five minutes late on average.
    cloudtrail_delay: float = 300.0
    # Who a call was made by when its access key is neither an IAM user's nor an assumed role's.
    default_identity_arn: str = "arn:aws:iam::123456789012:user/operator"
    # AWS's request-rate limits, per account and region in emulated time (aws/rate_limits.py): EC2's
    # endpoint-mutation bucket (4 tokens, 0.3/s, RequestLimitExceeded) and Route 53 Resolver's 5 requests/s
    # for every action (a bucket of 5, ThrottlingException). Off unless a test or benchmark wants them.
    aws_rate_limits: bool = False
    # EC2's endpoint-mutation bucket alone (aws_rate_limits includes it).
    endpoint_rate_limit: bool = False
    # Security group rules per group, inbound and outbound counted apart (AWS's default quota: 60). Each CIDR
    # range, IPv6 range and referenced group of a permission is one rule; a prefix list counts its MaxEntries.
    rules_per_security_group: int = 60
    # Security groups per network interface, so per interface endpoint (AWS's default quota: 5, up to 16).
    security_groups_per_interface: int = 5
    # Route 53 Resolver endpoints per account and region (AWS's default quota: 4); each counts until it is gone.
    resolver_endpoints_per_region: int = 4
    # EventBridge delivery: attempts per target before the event goes to the dead-letter queue, and the
    # interval between attempts (AWS retries for up to 24 hours with backoff; locally a few times).
    delivery_max_attempts: int = 3
    delivery_retry_interval: float = 30.0
    # Scheduled rules: how often the scheduler looks at the rules (wall seconds, not scaled).
    schedule_poll_interval: float = 0.05

    def __post_init__(self) -> None:
        quotas = (
            self.rules_per_security_group,
            self.security_groups_per_interface,
            self.resolver_endpoints_per_region,
        )
        if min(quotas) < 1:
            raise ValueError("quotas are at least 1: AWS has no setting that turns them off")
