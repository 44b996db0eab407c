"""THE BASELINE, not this application: the script a user writes from the seed walkthroughs.

A straight-line boto3 + databricks-sdk procedure, in the walkthrough's order (seeds: the Tokyo back-end
PrivateLink walkthrough, then "Custom DNS With AWS PrivateLink for Databricks Workspaces"):

1. create the workspace (REST API) and SCC relay VPC endpoints, poll every 5 s until they are registrable
   (pendingAcceptance); create the S3 gateway and the STS and Kinesis interface endpoints;
2. register both endpoints with the Account API (vpc-endpoints), poll every 5 s until they are available;
3. enable private DNS on both;
4. create the private access settings, the network and the workspace; poll every 5 s until RUNNING;
5. custom DNS: a security group for the Resolver endpoint (UDP and TCP 53 from the data plane), the
   outbound Resolver endpoint in the DNS VPC, a "." rule forwarding to the corporate DNS servers, a rule
   forwarding amazonaws.com to the DNS VPC's own resolver (CIDR base + 2), both associated with the data
   plane VPC;
6. wait until every endpoint is available.

It is unsafe on purpose, as such scripts are: nothing is looked up before it is created, so a second run
creates everything again (or stops where AWS or Databricks refuses a copy). bench/run.py measures that, it
is not to be fixed here. It is a benchmark, not a test, and not part of the application.
"""

from __future__ import annotations

import ipaddress
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from databricks.sdk import AccountClient
from databricks.sdk.service import provisioning

POLL_S = 5.0  # what the walkthrough's reader types
TIMEOUT_S = 1800.0


class BaselineError(RuntimeError):
    """The script stopped: a wait ran out, or a resource ended in a failed state."""


@dataclass(frozen=True)
class BaselineInputs:
    """What the walkthrough has its reader note down before starting."""

    region: str
    vpc_id: str
    workspace_subnet_ids: list[str]
    workspace_security_group_id: str  # pl-sg-1
    endpoint_subnet_id: str  # databricks-vpce
    endpoint_security_group_id: str  # pl-sg-2
    workspace_service: str  # the region's Databricks endpoint services, from the Databricks docs' table
    relay_service: str
    credentials_id: str
    storage_configuration_id: str
    workspace_name: str
    deployment_name: str
    data_plane_cidr: str
    dns_vpc_id: str
    dns_vpc_cidr: str
    resolver_subnet_ids: list[str]
    corporate_dns_ips: list[str]
    aws_services: list[str] = field(default_factory=lambda: ["s3", "sts", "kinesis-streams"])
    public_access_enabled: bool = True
    private_access_level: str = "ACCOUNT"


@dataclass
class BaselineResult:
    endpoint_ids: dict[str, str] = field(default_factory=dict)  # service -> AWS endpoint id
    registration_ids: dict[str, str] = field(default_factory=dict)  # workspace / relay -> Databricks id
    private_access_settings_id: str = ""
    network_id: str = ""
    workspace_id: int = 0
    resolver_endpoint_id: str = ""
    resolver_rule_ids: list[str] = field(default_factory=list)


def wait_until(
    what: str, done: Callable[[], bool], sleep: Callable[[float], None], poll_s: float, timeout_s: float
) -> None:
    """Ask `done` every `poll_s` seconds until it answers True; BaselineError after `timeout_s`."""
    for _ in range(int(timeout_s / poll_s) + 1):
        if done():
            return
        sleep(poll_s)
    raise BaselineError(f"{what}: not done after {timeout_s:g} s")


def run_baseline(
    ec2: Any,
    resolver: Any,
    account: AccountClient,
    inputs: BaselineInputs,
    *,
    sleep: Callable[[float], None] = time.sleep,
    poll_s: float = POLL_S,
    timeout_s: float = TIMEOUT_S,
) -> BaselineResult:
    """The walkthrough, top to bottom; `sleep` is the clock the 5-second polls use."""
    out = BaselineResult()

    def states(ids: list[str]) -> list[str]:
        found = ec2.describe_vpc_endpoints(VpcEndpointIds=ids)["VpcEndpoints"]
        return [e["State"] for e in found]

    # 1. The two Databricks endpoints (private DNS can only be turned on once they are accepted).
    for role, service in (("workspace", inputs.workspace_service), ("relay", inputs.relay_service)):
        created = ec2.create_vpc_endpoint(
            VpcEndpointType="Interface",
            VpcId=inputs.vpc_id,
            ServiceName=service,
            SubnetIds=[inputs.endpoint_subnet_id],
            SecurityGroupIds=[inputs.endpoint_security_group_id],
            PrivateDnsEnabled=False,
        )
        out.endpoint_ids[role] = created["VpcEndpoint"]["VpcEndpointId"]
    databricks_ids = [out.endpoint_ids["workspace"], out.endpoint_ids["relay"]]
    wait_until(
        "endpoints registrable",
        lambda: all(s == "pendingAcceptance" for s in states(databricks_ids)),
        sleep,
        poll_s,
        timeout_s,
    )
    # The AWS-service endpoints of the walkthrough: S3 on the main route table, the others in the
    # workspace subnets with pl-sg-1 (private DNS on, the console's default).
    main_table = ec2.describe_route_tables(
        Filters=[
            {"Name": "vpc-id", "Values": [inputs.vpc_id]},
            {"Name": "association.main", "Values": ["true"]},
        ]
    )["RouteTables"][0]["RouteTableId"]
    for service in inputs.aws_services:
        name = f"com.amazonaws.{inputs.region}.{service}"
        if service == "s3":
            created = ec2.create_vpc_endpoint(
                VpcEndpointType="Gateway", VpcId=inputs.vpc_id, ServiceName=name, RouteTableIds=[main_table]
            )
        else:
            created = ec2.create_vpc_endpoint(
                VpcEndpointType="Interface",
                VpcId=inputs.vpc_id,
                ServiceName=name,
                SubnetIds=inputs.workspace_subnet_ids,
                SecurityGroupIds=[inputs.workspace_security_group_id],
            )
        out.endpoint_ids[service] = created["VpcEndpoint"]["VpcEndpointId"]

    # 2. Register both with the Account API, then wait until AWS reports them available.
    for role in ("workspace", "relay"):
        registration = account.vpc_endpoints.create(
            vpc_endpoint_name=f"{inputs.workspace_name}-{role}",
            aws_vpc_endpoint_id=out.endpoint_ids[role],
            region=inputs.region,
        )
        out.registration_ids[role] = str(registration.vpc_endpoint_id)
    wait_until(
        "endpoints available",
        lambda: all(s == "available" for s in states(databricks_ids)),
        sleep,
        poll_s,
        timeout_s,
    )

    # 3. Private DNS names on both.
    for endpoint_id in databricks_ids:
        ec2.modify_vpc_endpoint(VpcEndpointId=endpoint_id, PrivateDnsEnabled=True)

    # 4. Private access settings, network, workspace; then wait for RUNNING.
    pas = account.private_access.create(
        private_access_settings_name=f"{inputs.workspace_name}-pas",
        region=inputs.region,
        public_access_enabled=inputs.public_access_enabled,
        private_access_level=provisioning.PrivateAccessLevel(inputs.private_access_level),
    )
    out.private_access_settings_id = str(pas.private_access_settings_id)
    network = account.networks.create(
        network_name=f"{inputs.workspace_name}-network",
        vpc_id=inputs.vpc_id,
        subnet_ids=inputs.workspace_subnet_ids,
        security_group_ids=[inputs.workspace_security_group_id],
        vpc_endpoints=provisioning.NetworkVpcEndpoints(
            rest_api=[out.registration_ids["workspace"]], dataplane_relay=[out.registration_ids["relay"]]
        ),
    )
    out.network_id = str(network.network_id)
    # The SDK's waiter polls on the wall clock with its own backoff: the walkthrough's 5-second poll instead.
    workspace: provisioning.Workspace = account.workspaces.create(
        workspace_name=inputs.workspace_name,
        deployment_name=inputs.deployment_name,
        aws_region=inputs.region,
        credentials_id=inputs.credentials_id,
        storage_configuration_id=inputs.storage_configuration_id,
        network_id=out.network_id,
        private_access_settings_id=out.private_access_settings_id,
    ).response
    out.workspace_id = int(workspace.workspace_id or 0)

    def running() -> bool:
        status = account.workspaces.get(out.workspace_id).workspace_status
        if status == provisioning.WorkspaceStatus.FAILED:
            raise BaselineError(f"workspace {out.workspace_id} FAILED")
        return status == provisioning.WorkspaceStatus.RUNNING

    wait_until("workspace RUNNING", running, sleep, poll_s, timeout_s)

    # 5. Custom DNS through Route 53 Resolver.
    group_id = ec2.create_security_group(
        GroupName=f"{inputs.workspace_name}-resolver",
        Description="Route 53 Resolver outbound endpoint",
        VpcId=inputs.dns_vpc_id,
    )["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=group_id,
        IpPermissions=[
            {
                "IpProtocol": proto,
                "FromPort": 53,
                "ToPort": 53,
                "IpRanges": [{"CidrIp": inputs.data_plane_cidr}],
            }
            for proto in ("udp", "tcp")
        ],
    )
    endpoint = resolver.create_resolver_endpoint(
        CreatorRequestId=str(uuid.uuid4()),
        Name=f"{inputs.workspace_name}-outbound",
        SecurityGroupIds=[group_id],
        Direction="OUTBOUND",
        IpAddresses=[{"SubnetId": subnet} for subnet in inputs.resolver_subnet_ids],
    )["ResolverEndpoint"]
    out.resolver_endpoint_id = endpoint["Id"]
    wait_until(
        "Resolver endpoint OPERATIONAL",
        lambda: (
            resolver.get_resolver_endpoint(ResolverEndpointId=out.resolver_endpoint_id)["ResolverEndpoint"][
                "Status"
            ]
            == "OPERATIONAL"
        ),
        sleep,
        poll_s,
        timeout_s,
    )
    vpc_resolver = str(ipaddress.ip_network(inputs.dns_vpc_cidr).network_address + 2)
    rules = (
        ("forward-all", ".", [{"Ip": ip, "Port": 53} for ip in inputs.corporate_dns_ips]),
        ("aws-names", "amazonaws.com", [{"Ip": vpc_resolver, "Port": 53}]),
    )
    for name, domain, targets in rules:
        rule = resolver.create_resolver_rule(
            CreatorRequestId=str(uuid.uuid4()),
            Name=f"{inputs.workspace_name}-{name}",
            RuleType="FORWARD",
            DomainName=domain,
            TargetIps=targets,
            ResolverEndpointId=out.resolver_endpoint_id,
        )["ResolverRule"]
        out.resolver_rule_ids.append(rule["Id"])
        resolver.associate_resolver_rule(ResolverRuleId=rule["Id"], VPCId=inputs.vpc_id)

    # 6. Done when every endpoint is available (the AWS-service ones take their time too).
    every = list(out.endpoint_ids.values())
    wait_until(
        "every endpoint available",
        lambda: all(s == "available" for s in states(every)),
        sleep,
        poll_s,
        timeout_s,
    )
    return out
