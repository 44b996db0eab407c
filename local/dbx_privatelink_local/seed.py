"""The customer environment of the seed documents, created in the emulated AWS and Databricks.

Data-plane VPC "privatelink-test" 10.0.0.0/22 (DNS hostnames and support on) with databricks-ws-1/2 in
two AZs and databricks-vpce for the endpoints, the workspace group pl-sg-1 and the endpoint group pl-sg-2
with the rules of the walkthrough, plus a standby set (two /26 subnets in the free 10.0.0.0/24 and a
workspace group) for the network.standby spec field; a DNS VPC with two resolver subnets and two corporate DNS servers; a
peered VPC; the Databricks credentials and storage configuration; the service principal's secret.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from dbx_privatelink.catalog import default_catalog, port_ranges
from dbx_privatelink_local.databricks.emulator import DatabricksEmulator

DATA_PLANE_CIDR = "10.0.0.0/22"
DNS_VPC_CIDR = "10.10.0.0/24"
PEERED_CIDR = "10.20.0.0/24"
CORPORATE_DNS_IPS = ("10.10.0.53", "10.10.0.54")
# A record of the corporate zone the local stack's corporate DNS servers serve (dns/corporate.py).
CORPORATE_CHECK = ("git.corp.example.internal", "10.10.0.80")


@dataclass
class SeededEnvironment:
    region: str
    account_id: str
    vpc_id: str
    workspace_subnet_ids: list[str]
    endpoint_subnet_id: str
    workspace_sg_id: str
    endpoint_sg_id: str
    dns_vpc_id: str
    dns_subnet_ids: list[str]
    corporate_dns_ips: list[str]
    peered_vpc_id: str
    peered_subnet_ids: list[str]
    peering_connection_id: str
    credentials_id: str
    storage_configuration_id: str
    secret_arn: str
    extra: dict[str, Any] = field(default_factory=dict)
    standby_subnet_ids: list[str] = field(default_factory=list)
    standby_sg_id: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def sample_spec(
        self, workspace_key: str = "privatelink-test", *, custom_dns: bool = False
    ) -> dict[str, Any]:
        """A workspace spec that references the seeded resources (the walkthrough's workspace); with
        `custom_dns`, also Route 53 Resolver to the seeded corporate DNS servers (seed 000) and a proof."""
        spec: dict[str, Any] = {
            "workspace_key": workspace_key,
            "region": self.region,
            "databricks": {
                "account_id": self.account_id,
                "credentials_id": self.credentials_id,
                "storage_configuration_id": self.storage_configuration_id,
                "workspace": {"name": workspace_key, "deployment_name": workspace_key},
            },
            "private_access": {"public_access_enabled": True, "level": "ACCOUNT"},
            "network": {
                "vpc_id": self.vpc_id,
                "workspace_subnet_ids": self.workspace_subnet_ids,
                "workspace_security_group_ids": [self.workspace_sg_id],
                "endpoint_subnet_ids": [self.endpoint_subnet_id],
                "endpoint_security_group_id": self.endpoint_sg_id,
            },
            "endpoints": {"aws_services": ["s3", "sts", "kinesis-streams"]},
            "drift": {"mode": "remediate"},
        }
        if self.standby_subnet_ids:
            # A recreated VPC endpoint then needs no spec change: the new network goes on the other set.
            spec["network"]["standby"] = {
                "workspace_subnet_ids": self.standby_subnet_ids,
                "workspace_security_group_ids": [self.standby_sg_id],
            }
        if custom_dns:
            spec["dns"] = {
                "custom_dns": {
                    "dns_vpc_id": self.dns_vpc_id,
                    "resolver_subnet_ids": self.dns_subnet_ids,
                    "allowed_cidrs": [DATA_PLANE_CIDR],
                    "corporate_dns_ips": self.corporate_dns_ips,
                },
                # A name only the corporate servers know: it resolves only if the "." rule forwards.
                "verify": [{"name": CORPORATE_CHECK[0], "expect_ips": [CORPORATE_CHECK[1]]}],
            }
        return spec


def _tag(name: str) -> list[dict[str, Any]]:
    return [{"Key": "Name", "Value": name}]


def _vpc(ec2: Any, cidr: str, name: str) -> str:
    vpc_id: str = ec2.create_vpc(
        CidrBlock=cidr, TagSpecifications=[{"ResourceType": "vpc", "Tags": _tag(name)}]
    )["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsSupport={"Value": True})
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    return vpc_id


def _subnet(ec2: Any, vpc_id: str, cidr: str, az: str, name: str) -> str:
    subnet_id: str = ec2.create_subnet(
        VpcId=vpc_id,
        CidrBlock=cidr,
        AvailabilityZone=az,
        TagSpecifications=[{"ResourceType": "subnet", "Tags": _tag(name)}],
    )["Subnet"]["SubnetId"]
    return subnet_id


def _group(ec2: Any, vpc_id: str, name: str, description: str) -> str:
    group_id: str = ec2.create_security_group(
        VpcId=vpc_id,
        GroupName=name,
        Description=description,
        TagSpecifications=[{"ResourceType": "security-group", "Tags": _tag(name)}],
    )["GroupId"]
    # Start from no egress, as the walkthrough lists every outbound rule explicitly.
    ec2.revoke_security_group_egress(
        GroupId=group_id, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    )
    return group_id


def _tcp(lo: int, hi: int, *, cidr: str | None = None, group: str | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"IpProtocol": "tcp", "FromPort": lo, "ToPort": hi}
    if cidr:
        rule["IpRanges"] = [{"CidrIp": cidr}]
    if group:
        rule["UserIdGroupPairs"] = [{"GroupId": group}]
    return rule


def _self_all(group_id: str) -> list[dict[str, Any]]:
    return [
        {"IpProtocol": proto, "FromPort": 0, "ToPort": 65535, "UserIdGroupPairs": [{"GroupId": group_id}]}
        for proto in ("tcp", "udp")
    ]


@dataclass(frozen=True)
class DataPlane:
    vpc_id: str
    cidr: str
    workspace_subnet_ids: list[str]
    endpoint_subnet_id: str
    workspace_sg_id: str
    endpoint_sg_id: str
    standby_subnet_ids: list[str] = field(default_factory=list)
    standby_sg_id: str = ""


def workspace_security_group(ec2: Any, vpc_id: str, name: str) -> str:
    """A workspace security group as Databricks requires: all TCP/UDP within, the required egress ports."""
    catalog = default_catalog()
    group = _group(ec2, vpc_id, name, "SG for workspace subnet")
    egress = [_tcp(lo, hi, cidr="0.0.0.0/0") for lo, hi in port_ranges(catalog.workspace_sg_egress_tcp_ports)]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=_self_all(group))
    ec2.authorize_security_group_egress(GroupId=group, IpPermissions=[*_self_all(group), *egress])
    return group


def create_data_plane(ec2: Any, cidr: str, name: str, azs: list[str], *, standby: bool = False) -> DataPlane:
    """A customer-managed VPC as the walkthrough builds it: two workspace subnets in two AZs (/24 each),
    an endpoint subnet, pl-sg-1 for the workspace and pl-sg-2 for the endpoints. With `standby`, also a
    second workspace set (network.standby): two /26 subnets in two AZs in the first, otherwise free,
    quarter and a workspace group pl-sg-3."""
    net = ipaddress.ip_network(cidr)
    quarters = [str(s) for s in net.subnets(new_prefix=net.prefixlen + 2)]
    vpc_id = _vpc(ec2, cidr, name)
    ws1 = _subnet(ec2, vpc_id, quarters[1], azs[0], f"{name}-ws-1")
    ws2 = _subnet(ec2, vpc_id, quarters[2], azs[1], f"{name}-ws-2")
    vpce = _subnet(ec2, vpc_id, quarters[3], azs[0], f"{name}-vpce")
    sg1 = workspace_security_group(ec2, vpc_id, f"{name}-pl-sg-1")
    sg2 = _group(ec2, vpc_id, f"{name}-pl-sg-2", "SG for vpce subnet")
    endpoint_ports = [
        _tcp(lo, hi, cidr=cidr) for lo, hi in port_ranges(default_catalog().endpoint_sg_ingress_tcp_ports)
    ]
    ec2.authorize_security_group_ingress(GroupId=sg2, IpPermissions=endpoint_ports)
    ec2.authorize_security_group_egress(GroupId=sg2, IpPermissions=endpoint_ports)
    if not standby:
        return DataPlane(vpc_id, cidr, [ws1, ws2], vpce, sg1, sg2)
    spare = list(ipaddress.ip_network(quarters[0]).subnets(new_prefix=26))
    standby_subnets = [
        _subnet(ec2, vpc_id, str(spare[i]), azs[i], f"{name}-ws-standby-{i + 1}") for i in range(2)
    ]
    sg3 = workspace_security_group(ec2, vpc_id, f"{name}-pl-sg-3")
    return DataPlane(vpc_id, cidr, [ws1, ws2], vpce, sg1, sg2, standby_subnets, sg3)


def seed_environment(
    session: Any,
    endpoint_url: str,
    region: str,
    emulator: DatabricksEmulator,
    *,
    client_id: str,
    client_secret: str,
    secret_name: str = "dbx-privatelink/service-principal",
) -> SeededEnvironment:
    """Create the seed documents' customer environment; returns every id a spec needs."""
    ec2 = session.client("ec2", region_name=region, endpoint_url=endpoint_url)
    azs = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]

    plane = create_data_plane(ec2, DATA_PLANE_CIDR, "privatelink-test", azs, standby=True)
    vpc_id, (ws1, ws2), vpce = plane.vpc_id, plane.workspace_subnet_ids, plane.endpoint_subnet_id
    sg1, sg2 = plane.workspace_sg_id, plane.endpoint_sg_id

    dns_vpc = _vpc(ec2, DNS_VPC_CIDR, "dns-servers")
    dns_net = ipaddress.ip_network(DNS_VPC_CIDR)
    halves = list(dns_net.subnets(new_prefix=dns_net.prefixlen + 1))
    dns_subnets = [_subnet(ec2, dns_vpc, str(halves[i]), azs[i], f"resolver-{i + 1}") for i in range(2)]

    peered = _vpc(ec2, PEERED_CIDR, "shared-services")
    peered_subnets = [
        _subnet(ec2, peered, f"10.20.0.{i * 128}/25", azs[i], f"shared-{i + 1}") for i in range(2)
    ]
    peering = ec2.create_vpc_peering_connection(VpcId=peered, PeerVpcId=vpc_id)["VpcPeeringConnection"]
    ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=peering["VpcPeeringConnectionId"])

    sm = session.client("secretsmanager", region_name=region, endpoint_url=endpoint_url)
    secret_arn: str = sm.create_secret(
        Name=secret_name, SecretString=json.dumps({"client_id": client_id, "client_secret": client_secret})
    )["ARN"]

    account = session.client("sts", region_name=region, endpoint_url=endpoint_url).get_caller_identity()[
        "Account"
    ]
    role_arn = f"arn:aws:iam::{account}:role/databricks-cross-account"
    creds = emulator.seed_credentials("privatelink-test-credentials", role_arn)
    storage = emulator.seed_storage_configuration("privatelink-test-storage", "privatelink-test-root-bucket")

    return SeededEnvironment(
        region=region,
        account_id=emulator.account_id,
        vpc_id=vpc_id,
        workspace_subnet_ids=[ws1, ws2],
        endpoint_subnet_id=vpce,
        workspace_sg_id=sg1,
        endpoint_sg_id=sg2,
        dns_vpc_id=dns_vpc,
        dns_subnet_ids=dns_subnets,
        corporate_dns_ips=list(CORPORATE_DNS_IPS),
        peered_vpc_id=peered,
        peered_subnet_ids=peered_subnets,
        peering_connection_id=peering["VpcPeeringConnectionId"],
        credentials_id=creds["credentials_id"],
        storage_configuration_id=storage["storage_configuration_id"],
        secret_arn=secret_arn,
        standby_subnet_ids=plane.standby_subnet_ids,
        standby_sg_id=plane.standby_sg_id,
    )


TRAIL_NAME = "management-events"


def seed_trail(session: Any, endpoint_url: str | None, region: str) -> str:
    """The account's CloudTrail trail, as an account that gets drift events has one: multi-region, logging
    management events (read and write) to its bucket. Returns its ARN."""
    account = session.client("sts", region_name=region, endpoint_url=endpoint_url).get_caller_identity()[
        "Account"
    ]
    bucket = f"cloudtrail-{account}-{region}"
    s3 = session.client("s3", region_name=region, endpoint_url=endpoint_url)
    if region == "us-east-1":
        s3.create_bucket(Bucket=bucket)
    else:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    cloudtrail = session.client("cloudtrail", region_name=region, endpoint_url=endpoint_url)
    arn: str = cloudtrail.create_trail(Name=TRAIL_NAME, S3BucketName=bucket, IsMultiRegionTrail=True)[
        "TrailARN"
    ]
    # AWS gives a new trail this selector; moto gives none.
    cloudtrail.put_event_selectors(
        TrailName=TRAIL_NAME, EventSelectors=[{"ReadWriteType": "All", "IncludeManagementEvents": True}]
    )
    cloudtrail.start_logging(Name=TRAIL_NAME)
    return arn
