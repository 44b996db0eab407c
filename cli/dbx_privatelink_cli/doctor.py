"""`dbx-privatelink doctor`: read-only checks of what the deployed stack needs in its account and region.

- CloudTrail: a trail that covers the region (multi-region, or homed there) is logging management write
  events. Without one, EventBridge gets no "AWS API Call via CloudTrail" events: drift is found only by the
  scheduled scan.
- The secret: the stack's DatabricksSecretArn is readable, holds {"client_id", "client_secret"}, and under a
  customer-managed key, the stack's DatabricksSecretKmsKeyArn names that key (the functions' kms:Decrypt).
- Databricks: with that secret, the stack's DatabricksHost issues an OAuth token and answers one Account API
  read (GET /credentials) for each Databricks account: --account-id, else DATABRICKS_ACCOUNT_ID, else the
  accounts of the workspaces the stack manages.
- VerifyDns's placement: in a VPC (VerifierSubnetIds) with egress for DNS to the VPC's resolver and HTTPS to
  the EC2 and Route 53 Resolver APIs (a NAT or transit gateway route, or their interface endpoints); not
  placed, every run reports the DNS verification as skipped.

Every call is a read (Describe*, Get*, List*, the OAuth token and one GET). One line per check, ok or problem
with its fix; exit status 0 only when every check passed.
"""

from __future__ import annotations

import argparse
import ipaddress
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from dbx_privatelink.aws.secrets import SecretsClient, ServicePrincipalSecret
from dbx_privatelink.databricks.client import DatabricksAccountClient
from dbx_privatelink.errors import DbxPrivateLinkError
from dbx_privatelink.spec import parse_spec
from dbx_privatelink.store import StoreClient
from dbx_privatelink_cli.common import EXIT_FAILED, EXIT_OK, Runtime, add_common_arguments
from dbx_privatelink_cli.output import emit_json, emit_lines
from dbx_privatelink_cli.stack import StackInfo, stack_for

VERIFIER_LOGICAL_ID = "VerifyDnsFunction"
# The template parameter that grants the functions kms:Decrypt on the secret's customer-managed key.
KMS_KEY_PARAMETER = "DatabricksSecretKmsKeyArn"
AWS_MANAGED_SECRET_KEY = "alias/aws/secretsmanager"
# The Databricks check (every account) gives up after this long: a host that does not answer is the finding,
# not a hang.
DATABRICKS_BUDGET_S = 45.0
# Routes that take a Lambda function's traffic (it has no public IP) out of the VPC.
EGRESS_ROUTE_TARGETS = ("NatGatewayId", "TransitGatewayId", "NetworkInterfaceId", "CoreNetworkArn")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="check the deployed stack's prerequisites: CloudTrail, the secret, Databricks, VerifyDns",
        description="Read-only checks in the stack's account and region: a CloudTrail trail logging "
        "management events (event-driven drift needs it), the Databricks secret readable, Databricks reachable "
        "and the service principal authorised, and where VerifyDns runs. One line per check with the fix of "
        "each problem. Exit status 0 when every check passed, 1 otherwise.",
    )
    parser.add_argument(
        "--account-id",
        default=None,
        help="the Databricks account to check the credentials against (default: $DATABRICKS_ACCOUNT_ID, "
        "else the accounts of the workspaces the stack manages)",
    )
    add_common_arguments(parser)
    parser.set_defaults(handler=run)


@dataclass(frozen=True)
class Check:
    """One prerequisite: what was found, and when it is a problem, what to do."""

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"check": self.name, "ok": self.ok, "detail": self.detail, "fix": self.fix or None}


def run(args: argparse.Namespace, runtime: Runtime) -> int:
    stack = stack_for(args, runtime)
    specs, why_no_spec = _managed_specs(runtime, stack)
    checks = [check_cloudtrail(runtime.client("cloudtrail"), runtime.region)]
    secret_check, principal = check_secret(runtime.client("secretsmanager"), runtime.client("kms"), stack)
    checks.append(secret_check)
    account_ids = _account_ids(args.account_id or runtime.env.get("DATABRICKS_ACCOUNT_ID"), specs)
    checks.append(check_databricks(stack.databricks_host, account_ids, principal, why_none=why_no_spec))
    checks.append(
        check_verifier(
            runtime.client("cloudformation"),
            runtime.client("lambda"),
            runtime.client("ec2"),
            stack.name,
            runtime.region,
            {key: spec["network"]["vpc_id"] for key, spec in specs.items()},
        )
    )
    problems = sum(not c.ok for c in checks)
    if args.output == "json":
        emit_json(
            runtime.out,
            {
                "stack": stack.name,
                "region": runtime.region,
                "ok": problems == 0,
                "problems": problems,
                "checks": [c.to_json() for c in checks],
            },
        )
    else:
        emit_lines(runtime.out, text_lines(stack.name, runtime.region, checks))
    return EXIT_OK if problems == 0 else EXIT_FAILED


def text_lines(stack: str, region: str, checks: list[Check]) -> list[str]:
    width = max(len(c.name) for c in checks)
    lines = [f"Doctor: stack {stack} in {region}"]
    for c in checks:
        lines.append(f"  {'ok' if c.ok else 'problem':<7}  {c.name:<{width}}  {c.detail}")
        if not c.ok and c.fix:
            lines.append(f"  {'':<7}  {'':<{width}}  fix: {c.fix}")
    problems = sum(not c.ok for c in checks)
    lines.append(
        f"{problems} problem(s) in {len(checks)} checks" if problems else f"all {len(checks)} checks ok"
    )
    return lines


def _managed_specs(runtime: Runtime, stack: StackInfo) -> tuple[dict[str, dict[str, Any]], str]:
    """The desired specs of the workspaces the stack manages (decommissioned ones left out), and why there are
    none: the store is empty, or could not be read."""
    try:
        desired = StoreClient(runtime.resource("dynamodb").Table(stack.table_name)).list_desired()
    except DbxPrivateLinkError as exc:
        return {}, f"the stack's table {stack.table_name} could not be read ({exc})"
    specs = {
        key: d.spec
        for key, d in sorted(desired.items())
        if d.decommission is None and isinstance(d.spec.get("network"), dict)
    }
    return specs, "the stack manages no workspace yet"


def _account_ids(given: str | None, specs: dict[str, dict[str, Any]]) -> list[str]:
    if given:
        return [given]
    found: list[str] = []
    for spec in specs.values():
        try:
            account_id = parse_spec(spec).databricks.account_id
        except DbxPrivateLinkError:
            continue
        if account_id not in found:
            found.append(account_id)
    return found


def _aws_error(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'Error')}: {error.get('Message', '')}".rstrip(": ")
    return str(exc)


# --- CloudTrail --------------------------------------------------------------------------------------------


def logs_management_writes(selectors: dict[str, Any]) -> bool:
    """Whether a trail's event selectors (GetEventSelectors' answer) take management write events."""
    for selector in selectors.get("EventSelectors") or []:
        if selector.get("IncludeManagementEvents", True) and selector.get("ReadWriteType", "All") in (
            "All",
            "WriteOnly",
        ):
            return True
    for selector in selectors.get("AdvancedEventSelectors") or []:
        fields = {f.get("Field"): f for f in selector.get("FieldSelectors") or []}
        category = fields.get("eventCategory", {})
        read_only = fields.get("readOnly", {})
        if "Management" in (category.get("Equals") or []) and (read_only.get("Equals") or []) != ["true"]:
            return True
    return False


def check_cloudtrail(cloudtrail: Any, region: str) -> Check:
    """A trail covering the region is logging management write events."""
    name = "cloudtrail"
    create = (
        "aws cloudtrail create-trail --name management-events --s3-bucket-name <bucket with the CloudTrail "
        "bucket policy> --is-multi-region-trail && aws cloudtrail start-logging --name management-events"
    )
    try:
        trails = cloudtrail.describe_trails(includeShadowTrails=True).get("trailList", [])
    except (ClientError, BotoCoreError) as exc:
        return Check(
            name, False, f"cannot list the trails: {_aws_error(exc)}", "allow cloudtrail:DescribeTrails"
        )
    covering = [t for t in trails if t.get("IsMultiRegionTrail") or t.get("HomeRegion") == region]
    if not covering:
        return Check(
            name,
            False,
            f"no trail covers {region}: EventBridge gets no 'AWS API Call via CloudTrail' events, so drift is "
            "found only by the scheduled scan",
            create,
        )
    notes: list[str] = []
    fixes: list[str] = []
    for trail in covering:
        trail_name = str(trail.get("Name"))
        label = f"{trail_name} ({'multi-region' if trail.get('IsMultiRegionTrail') else region})"
        arn = trail.get("TrailARN") or trail_name
        try:
            logging = bool(cloudtrail.get_trail_status(Name=arn).get("IsLogging"))
            selectors = cloudtrail.get_event_selectors(TrailName=arn)
        except (ClientError, BotoCoreError) as exc:
            notes.append(f"{label} not readable ({_aws_error(exc)})")
            fixes.append(
                "allow cloudtrail:GetTrailStatus and cloudtrail:GetEventSelectors (an organization trail is "
                "checked in its management account)"
            )
            continue
        if not logging:
            notes.append(f"{label} is not logging")
            fixes.append(f"aws cloudtrail start-logging --name {trail_name}")
        elif not logs_management_writes(selectors):
            notes.append(f"{label} logs no management write events")
            fixes.append(
                f"add management events, ReadWriteType All or WriteOnly, to {trail_name}'s event selectors "
                "(aws cloudtrail put-event-selectors)"
            )
        else:
            return Check(name, True, f"trail {label} is logging management events")
    return Check(
        name,
        False,
        "no trail covering this region delivers management write events: "
        + "; ".join(notes)
        + " (drift is found only by the scheduled scan)",
        fixes[0],
    )


# --- the secret ---------------------------------------------------------------------------------------------


def check_secret(
    secretsmanager: Any, kms: Any, stack: StackInfo
) -> tuple[Check, ServicePrincipalSecret | None]:
    """The stack's DatabricksSecretArn is readable and well-formed, and under a key the functions may use; the
    service principal when it is readable."""
    name = "secret"
    secret_id = stack.databricks_secret_arn
    if not secret_id:
        return Check(
            name, False, "the stack has no DatabricksSecretArn", "sam deploy with DatabricksSecretArn"
        ), None
    try:
        principal = SecretsClient(secretsmanager).service_principal(secret_id)
    except DbxPrivateLinkError as exc:
        return Check(
            name,
            False,
            f"{secret_id} is not readable: {exc}",
            'store the service principal as JSON {"client_id", "client_secret"} in that secret (README, '
            "Deploy to AWS), or deploy with the DatabricksSecretArn of the secret that holds it",
        ), None
    found = f"{secret_id} holds client_id {principal.client_id}"
    granted = stack.parameters.get(KMS_KEY_PARAMETER, "")
    try:
        key = secret_key_arn(secretsmanager, kms, secret_id)
    except (ClientError, BotoCoreError) as exc:
        return Check(
            name,
            False,
            f"{found}, but its encryption key is not known: {_aws_error(exc)}",
            f"allow secretsmanager:DescribeSecret and kms:DescribeKey, or check that {KMS_KEY_PARAMETER} names "
            "the secret's key",
        ), principal
    if key is not None and key != granted:
        granted_text = (
            f"the stack grants kms:Decrypt on {granted}" if granted else f"{KMS_KEY_PARAMETER} is empty"
        )
        return Check(
            name,
            False,
            f"{found}, but under the customer-managed key {key} and {granted_text}: the functions cannot "
            "decrypt it",
            f"sam deploy with {KMS_KEY_PARAMETER}={key}",
        ), principal
    return Check(name, True, found + (f" under {key}" if key else "")), principal


def secret_key_arn(secretsmanager: Any, kms: Any, secret_id: str) -> str | None:
    """The ARN of the customer-managed KMS key the secret is encrypted with; None for the AWS-managed key."""
    key = secretsmanager.describe_secret(SecretId=secret_id).get("KmsKeyId")
    if not key or str(key).endswith(AWS_MANAGED_SECRET_KEY):
        return None
    metadata = kms.describe_key(KeyId=key)["KeyMetadata"]
    return None if metadata.get("KeyManager") == "AWS" else str(metadata["Arn"])


# --- Databricks -----------------------------------------------------------------------------------------------


def check_databricks(
    host: str | None,
    account_ids: list[str],
    principal: ServicePrincipalSecret | None,
    *,
    why_none: str = "the stack manages no workspace yet",
    clock: Callable[[], float] = time.monotonic,
) -> Check:
    """An OAuth token and one Account API read per account, with the stack's secret and host."""
    name = "databricks"
    if principal is None:
        return Check(name, False, "not checked: the secret above is not readable", "fix the secret first")
    if not host:
        return Check(name, False, "the stack has no DatabricksHost", "sam deploy with DatabricksHost")
    if not account_ids:
        return Check(
            name,
            False,
            f"no Databricks account to check: {why_none}",
            "pass --account-id ACCOUNT_ID (or set DATABRICKS_ACCOUNT_ID)",
        )
    found: list[str] = []
    deadline = clock() + DATABRICKS_BUDGET_S

    def remaining_s() -> float:
        return deadline - clock()

    for account_id in account_ids:
        try:
            client = DatabricksAccountClient(
                host,
                account_id,
                principal.client_id,
                principal.client_secret.get_secret_value(),
                remaining_time_s=remaining_s,
                timeout_s=10,
            )
            credentials = client.list_credentials()
        except ValueError as exc:  # a plain-http host that is not loopback: nothing was sent
            return Check(name, False, f"DatabricksHost {host}: {exc}", "deploy with an https DatabricksHost")
        except DbxPrivateLinkError as exc:
            return Check(
                name,
                False,
                f"{host} account {account_id}: {exc}",
                "store the OAuth secret of a service principal with the account admin role of this account "
                "in the stack's secret; check DatabricksHost (https://accounts.cloud.databricks.com)",
            )
        found.append(f"account {account_id} ({len(credentials)} credential configuration(s))")
    return Check(
        name, True, f"{host}: OAuth token issued and GET /credentials answered for " + ", ".join(found)
    )


# --- VerifyDns --------------------------------------------------------------------------------------------------


def _covers(rule: dict[str, Any], protocol: str, port: int) -> bool:
    proto = str(rule.get("IpProtocol", ""))
    if proto == "-1":
        return True
    if proto not in (protocol, {"tcp": "6", "udp": "17"}[protocol]):
        return False
    return int(rule.get("FromPort", 0)) <= port <= int(rule.get("ToPort", 65535))


def _destinations(rule: dict[str, Any]) -> list[str]:
    return [r["CidrIp"] for r in rule.get("IpRanges") or [] if r.get("CidrIp")]


def egress_gaps(groups: Iterable[dict[str, Any]], resolver_ip: str) -> list[str]:
    """What the groups' egress rules do not allow: DNS to the VPC resolver, HTTPS out."""
    rules = [rule for group in groups for rule in group.get("IpPermissionsEgress") or []]
    gaps = []
    for protocol in ("udp", "tcp"):
        if not any(
            _covers(rule, protocol, 53)
            and any(ipaddress.ip_address(resolver_ip) in ipaddress.ip_network(c) for c in _destinations(rule))
            for rule in rules
        ):
            gaps.append(f"{protocol.upper()} 53 to the VPC resolver {resolver_ip}")
    if not any(_covers(rule, "tcp", 443) for rule in rules):
        gaps.append("TCP 443 (the EC2 and Route 53 Resolver APIs)")
    return gaps


def _api_path(ec2: Any, vpc_id: str, subnet_ids: list[str], region: str) -> str | None:
    """How the function reaches the EC2 and Route 53 Resolver APIs over HTTPS, or None when nothing does."""
    services = {f"com.amazonaws.{region}.ec2", f"com.amazonaws.{region}.route53resolver"}
    endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}]).get(
        "VpcEndpoints", []
    )
    private = {
        e["ServiceName"]
        for e in endpoints
        if e.get("ServiceName") in services and e.get("PrivateDnsEnabled") and e.get("State") == "available"
    }
    if private == services:
        return "interface endpoints for ec2 and route53resolver"
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}]).get(
        "RouteTables", []
    )
    main = next((t for t in tables if any(a.get("Main") for a in t.get("Associations") or [])), None)
    by_subnet = {a["SubnetId"]: t for t in tables for a in t.get("Associations") or [] if a.get("SubnetId")}
    for subnet_id in subnet_ids:
        table = by_subnet.get(subnet_id, main) or {}
        target = next(
            (
                str(route[key])
                for route in table.get("Routes") or []
                if route.get("DestinationCidrBlock") == "0.0.0.0/0"
                for key in EGRESS_ROUTE_TARGETS
                if route.get(key)
            ),
            None,
        )
        if target is None:
            return None
    return f"the default route to {target}"


def check_verifier(
    cfn: Any, lambda_: Any, ec2: Any, stack: str, region: str, workspace_vpcs: dict[str, str]
) -> Check:
    """Where VerifyDns runs, and whether it can do its work from there."""
    name = "verify-dns"
    place_it = (
        "sam deploy with VerifierSubnetIds (private subnets of the data-plane VPC) and VerifierSecurityGroupIds "
        "(egress UDP and TCP 53 to the VPC resolver, TCP 443 to the EC2 and Route 53 Resolver APIs); the "
        "subnets need a NAT or transit gateway route, or interface endpoints for ec2 and route53resolver"
    )
    try:
        function = cfn.describe_stack_resource(StackName=stack, LogicalResourceId=VERIFIER_LOGICAL_ID)[
            "StackResourceDetail"
        ]["PhysicalResourceId"]
        config = lambda_.get_function_configuration(FunctionName=function)
    except (ClientError, BotoCoreError) as exc:
        return Check(
            name, False, f"cannot read the {VERIFIER_LOGICAL_ID}: {_aws_error(exc)}", "redeploy the stack"
        )
    subnet_ids = list((config.get("VpcConfig") or {}).get("SubnetIds") or [])
    if not subnet_ids:
        return Check(
            name,
            False,
            "VerifyDns is not placed in a VPC (VerifierSubnetIds is empty): every run reports the DNS "
            "verification as skipped, so nothing proves the workspace and relay names resolve to the endpoints",
            place_it,
        )
    group_ids = list((config.get("VpcConfig") or {}).get("SecurityGroupIds") or [])
    try:
        subnets = ec2.describe_subnets(SubnetIds=subnet_ids)["Subnets"]
        vpc_id = str(subnets[0]["VpcId"])
        vpc = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]
        groups = ec2.describe_security_groups(GroupIds=group_ids)["SecurityGroups"] if group_ids else []
        path = _api_path(ec2, vpc_id, subnet_ids, region)
    except (ClientError, BotoCoreError) as exc:
        return Check(name, False, f"cannot read VerifyDns's network: {_aws_error(exc)}", place_it)
    resolver_ip = str(ipaddress.ip_network(vpc["CidrBlock"]).network_address + 2)
    placed = f"VerifyDns runs in {vpc_id} ({', '.join(subnet_ids)})"
    problems = [f"its security groups do not allow {gap}" for gap in egress_gaps(groups, resolver_ip)]
    if path is None:
        problems.append("its subnets have no route to the EC2 and Route 53 Resolver APIs")
    elsewhere = sorted(key for key, vpc in workspace_vpcs.items() if vpc != vpc_id)
    if elsewhere:
        problems.append(
            f"verification is skipped for the workspaces in other VPCs: {', '.join(elsewhere)} (a VPC's "
            "resolver answers only inside the VPC)"
        )
    if problems:
        return Check(name, False, f"{placed}, but " + "; ".join(problems), place_it)
    return Check(name, True, f"{placed}; DNS to {resolver_ip} and HTTPS out through {path}")
