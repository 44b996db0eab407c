"""VPC endpoint behaviour moto (5.2.5) lacks, closed with four small patches and one lifecycle registry.

Where moto differs from AWS, and what each patch restores:

- `create_vpc_endpoint` (VPCBackend): moto creates every endpoint `available`. Patched: an Interface
  endpoint to a Databricks endpoint service (the region's workspace or relay service in the catalog)
  starts in `pendingAcceptance` and stays there until `EndpointLifecycle.accept` (-> pending -> available
  after `accepted_endpoint_available_after`) or `reject` (-> rejected); its private DNS starts off. Other
  Interface endpoints go pending -> available after `aws_endpoint_available_after`; Gateway endpoints are
  available at once, or after `gateway_endpoint_available_after` when that is set.
- `create_vpc_endpoint` (EC2 response): moto ignores ClientToken. Patched: same token + same parameters
  returns the first endpoint; same token + other parameters -> IdempotentParameterMismatch. Asking for
  PrivateDnsEnabled=true on an endpoint that needs acceptance -> InvalidParameter, as AWS answers.
- `modify_vpc_endpoint` (EC2 response): moto ignores PrivateDnsEnabled. Patched: the flag is applied;
  turning it on moves the endpoint to pending, then available after `private_dns_update_after`. Turning
  it on before the endpoint was accepted -> InvalidParameter.
- What AWS refuses and moto allows, the refusals a fleet meets when workspaces share a VPC:
  - One private DNS name per VPC: a VPC holds one private hosted zone per name, so AWS refuses private DNS on
    an interface endpoint while another endpoint of the same VPC, in any state but deleted, deleting,
    failed, rejected or expired, has it on for a service with the same private DNS name -> InvalidParameter
    "private-dns-enabled cannot be set because there is already a conflicting DNS domain for <name> in the
    VPC <vpc>", on CreateVpcEndpoint (PrivateDnsEnabled true or omitted: AWS's default for AWS services, and
    moto's) and on ModifyVpcEndpoint PrivateDnsEnabled=true. Names come from `private_dns_names_for` (the
    catalog for Databricks' services). A ClientToken replay returns the first endpoint before any of this
    is checked: the endpoint a replay finds is the one whose name it would conflict with.
  - Security groups per interface (`security_groups_per_interface`, AWS's default 5): more groups on an
    interface endpoint, by CreateVpcEndpoint SecurityGroupIds or what ModifyVpcEndpoint's Add/Remove
    SecurityGroupIds leave -> SecurityGroupsPerInterfaceLimitExceeded "The maximum number of security
    groups per interface has been reached." (AWS's message, which names no number). moto does not put the
    VPC's default group on an endpoint created without groups, as AWS does; that group is not counted.
  Rules per security group are in security_group_patches.py.
- DnsEntries: moto lists one endpoint-specific name only. AWS adds each private DNS name (with the id of
  the managed private zone) while private DNS is on; `EndpointLifecycle.sync_dns_entries` does the same
  whenever an endpoint is created or its private DNS flag changes, so DNS state readers (the dns_state
  adapter) find the names where they find them on AWS.
- `_collect_default_endpoint_services` (VPCBackend): moto knows only AWS services. Patched: the region's
  Databricks endpoint services are listed too (AcceptanceRequired true, owner Databricks), so
  DescribeVpcEndpointServices answers for them, also when filtered by ServiceNames.

The patches are installed once per process and do nothing unless a lifecycle is active (a LocalAws
started), so plain moto tests in the same process keep moto's behaviour.

- Addresses: moto gives an interface endpoint's network interfaces random 10.x.y.z addresses, mostly outside
  their subnet. Patched: each takes the next free address of its subnet (past the ones AWS reserves), as on
  AWS. A Gateway endpoint reports PrivateDnsEnabled false (moto: true): gateway endpoints have no private DNS.

Route 53 Resolver endpoints' and associations' CREATING/DELETING steps are in resolver_patches.py.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from moto.ec2.exceptions import EC2ClientError
from moto.ec2.utils import generate_dns_from_ip

from dbx_privatelink.catalog import Catalog
from dbx_privatelink_local.aws.settings import LocalAwsSettings
from dbx_privatelink_local.timescale import TimeScale, Transitions

log = logging.getLogger(__name__)

# The AWS account that owns the Databricks endpoint services (shown as the service Owner).
DATABRICKS_SERVICE_OWNER = "414351767826"


def relay_private_dns_name(region: str) -> str:
    """The SCC relay service's private DNS name. The catalog only holds the workspace service's name; the
    relay's follows Databricks' public relay host tunnel.<region>.cloud.databricks.com with the
    privatelink label, as seen in published Databricks PrivateLink configurations (unverified for every
    region)."""
    return f"tunnel.privatelink.{region}.cloud.databricks.com"


class EndpointKind(StrEnum):
    DATABRICKS_WORKSPACE = "databricks-workspace"
    DATABRICKS_RELAY = "databricks-relay"
    AWS_INTERFACE = "aws-interface"
    GATEWAY = "gateway"

    @property
    def needs_acceptance(self) -> bool:
        return self in (EndpointKind.DATABRICKS_WORKSPACE, EndpointKind.DATABRICKS_RELAY)


@dataclass(frozen=True)
class EndpointDns:
    """What a DNS emulator needs to answer for one endpoint's private DNS names."""

    vpc_endpoint_id: str
    account_id: str
    region: str
    vpc_id: str
    service_name: str
    kind: EndpointKind
    state: str
    private_dns_names: tuple[str, ...]
    private_dns_enabled: bool
    ip_addresses: tuple[str, ...]  # the private IPs of the endpoint's network interfaces


@dataclass
class _Record:
    account_id: str
    region: str
    vpc_endpoint_id: str
    kind: EndpointKind
    private_dns_names: tuple[str, ...]
    generation: int = 0


class UnknownEndpointError(LookupError):
    """No endpoint with this id exists in the emulated account and region."""


class IdempotentParameterMismatchError(EC2ClientError):
    def __init__(self, token: str) -> None:
        super().__init__(
            "IdempotentParameterMismatch",
            f"The client token '{token}' has already been used with different request parameters.",
        )


class InvalidParameterError(EC2ClientError):
    def __init__(self, message: str) -> None:
        super().__init__("InvalidParameter", message)


class SecurityGroupsPerInterfaceLimitExceededError(EC2ClientError):
    def __init__(self) -> None:
        super().__init__(
            "SecurityGroupsPerInterfaceLimitExceeded",
            "The maximum number of security groups per interface has been reached.",
        )


# Endpoint states in which an endpoint no longer holds its private DNS names in the VPC.
_RELEASED_STATES = frozenset({"deleted", "deleting", "failed", "rejected", "expired"})


_ACTIVE: EndpointLifecycle | None = None
_INSTALL_LOCK = threading.Lock()
_INSTALLED = False


def active_lifecycle() -> EndpointLifecycle | None:
    """The lifecycle of the running local stack, if any."""
    return _ACTIVE


class EndpointLifecycle:
    """Drives the state of VPC endpoints in moto's EC2 backends and remembers what AWS would know about
    them (kind, private DNS names, ClientTokens)."""

    def __init__(self, settings: LocalAwsSettings, time_scale: TimeScale, catalog: Catalog) -> None:
        self.settings = settings
        self.catalog = catalog
        self._time = time_scale
        self._lock = threading.RLock()
        self._records: dict[tuple[str, str, str], _Record] = {}
        self._tokens: dict[tuple[str, str, str], tuple[str, str]] = {}
        self._transitions = Transitions(time_scale, self._lock)
        # Told when an endpoint changes state on its own (a timer, not a call): what its resolver answers may
        # change with it (the local DNS forgets what it cached).
        self.state_listeners = self._transitions.listeners

    # -- activation -------------------------------------------------------------------------------------
    def activate(self) -> None:
        """Make this lifecycle the one the moto patches consult."""
        global _ACTIVE
        install()
        _ACTIVE = self

    def deactivate(self) -> None:
        """Stop consulting this lifecycle and cancel its pending transitions."""
        global _ACTIVE
        if _ACTIVE is self:
            _ACTIVE = None
        self.reset()

    def reset(self) -> None:
        """Forget every endpoint and token (after moto's backends were reset)."""
        with self._lock:
            self._transitions.cancel()
            self._records.clear()
            self._tokens.clear()

    # -- classification ---------------------------------------------------------------------------------
    def classify(self, region: str, service_name: str, endpoint_type: str | None) -> EndpointKind:
        """Which lifecycle an endpoint to `service_name` follows."""
        if (endpoint_type or "Gateway").lower() == "gateway":
            return EndpointKind.GATEWAY
        services = self.catalog.region(region)
        use_case = services.use_case_of(service_name) if services else None
        if use_case == "WORKSPACE_ACCESS":
            return EndpointKind.DATABRICKS_WORKSPACE
        if use_case == "DATAPLANE_RELAY_ACCESS":
            return EndpointKind.DATABRICKS_RELAY
        return EndpointKind.AWS_INTERFACE

    def private_dns_names_for(self, region: str, service_name: str, kind: EndpointKind) -> tuple[str, ...]:
        """The private DNS names an endpoint of this kind serves once private DNS is on."""
        services = self.catalog.region(region)
        if kind is EndpointKind.DATABRICKS_WORKSPACE and services:
            return (services.private_dns_name,)
        if kind is EndpointKind.DATABRICKS_RELAY:
            return (relay_private_dns_name(region),)
        if kind is EndpointKind.AWS_INTERFACE:
            # com.amazonaws.<region>.<service> -> <service>.<region>.amazonaws.com
            prefix = f"com.amazonaws.{region}."
            if service_name.startswith(prefix):
                return (f"{service_name[len(prefix) :]}.{region}.amazonaws.com",)
        return ()

    # -- transitions ------------------------------------------------------------------------------------
    def on_created(self, backend: Any, endpoint: Any) -> None:
        """Put a just-created endpoint in its first state and schedule what follows."""
        account, region = backend.account_id, backend.region_name
        kind = self.classify(region, endpoint.service_name, endpoint.vpc_endpoint_type)
        record = _Record(
            account,
            region,
            endpoint.id,
            kind,
            self.private_dns_names_for(region, endpoint.service_name, kind),
        )
        with self._lock:
            self._records[(account, region, endpoint.id)] = record
            _addresses_from_subnets(backend, endpoint)
            if kind.needs_acceptance:
                endpoint.state = "pendingAcceptance"
                endpoint.private_dns_enabled = False
            elif kind is EndpointKind.GATEWAY:
                endpoint.private_dns_enabled = False
                self._move_later(record, endpoint, self.settings.gateway_endpoint_available_after)
            else:
                self._move_later(record, endpoint, self.settings.aws_endpoint_available_after)
            self.sync_dns_entries(record, endpoint)

    def accept(self, account_id: str, region: str, vpc_endpoint_id: str) -> None:
        """The endpoint service accepts the connection: pendingAcceptance -> pending -> available.
        Endpoints in any other state are left as they are (accepting twice is harmless)."""
        with self._lock:
            record, endpoint = self._lookup(account_id, region, vpc_endpoint_id)
            if endpoint.state != "pendingAcceptance":
                return
            self._move_later(record, endpoint, self.settings.accepted_endpoint_available_after)

    def reject(self, account_id: str, region: str, vpc_endpoint_id: str) -> None:
        """The endpoint service rejects the connection: pendingAcceptance -> rejected."""
        with self._lock:
            record, endpoint = self._lookup(account_id, region, vpc_endpoint_id)
            if endpoint.state != "pendingAcceptance":
                return
            record.generation += 1
            endpoint.state = "rejected"

    def check_private_dns_change(
        self, account_id: str, region: str, vpc_endpoint_id: str, enabled: bool
    ) -> None:
        """Raise InvalidParameter where AWS refuses to turn private DNS on."""
        if not enabled:
            return
        with self._lock:
            record = self._records.get((account_id, region, vpc_endpoint_id))
            endpoint = self._endpoint(account_id, region, vpc_endpoint_id)
            if endpoint is None:
                return
            if record is not None and record.kind is EndpointKind.GATEWAY:
                raise InvalidParameterError("Private DNS is not supported for gateway endpoints.")
            if (
                record is not None
                and record.kind.needs_acceptance
                and endpoint.state in ("pendingAcceptance", "rejected")
            ):
                raise InvalidParameterError(
                    "Private DNS can only be enabled after the VPC endpoint connection is accepted by the "
                    "service owner."
                )
            kind = (
                record.kind
                if record
                else self.classify(region, endpoint.service_name, endpoint.vpc_endpoint_type)
            )
            names = self.private_dns_names_for(region, endpoint.service_name, kind)
            self.check_private_dns_conflict(account_id, region, endpoint.vpc_id, names, endpoint.id)

    def check_private_dns_conflict(
        self, account_id: str, region: str, vpc_id: str, names: tuple[str, ...], except_id: str | None = None
    ) -> None:
        """InvalidParameter when another endpoint of the VPC serves one of `names` with private DNS on."""
        if not names:
            return
        from moto.ec2.models import ec2_backends

        with self._lock:
            for other in list(ec2_backends[account_id][region].vpc_end_points.values()):
                if (
                    other.id == except_id
                    or other.vpc_id != vpc_id
                    or not other.private_dns_enabled
                    or str(other.state).lower() in _RELEASED_STATES
                ):
                    continue
                kind = self.classify(region, other.service_name, other.vpc_endpoint_type)
                taken = self.private_dns_names_for(region, other.service_name, kind)
                for name in names:
                    if name in taken:
                        raise InvalidParameterError(
                            "private-dns-enabled cannot be set because there is already a conflicting DNS "
                            f"domain for {name} in the VPC {vpc_id}"
                        )

    def check_security_groups(self, group_ids: list[str]) -> None:
        """SecurityGroupsPerInterfaceLimitExceeded when an interface would carry more groups than the quota."""
        if len(set(group_ids)) > self.settings.security_groups_per_interface:
            raise SecurityGroupsPerInterfaceLimitExceededError()

    def check_create(
        self,
        account_id: str,
        region: str,
        vpc_id: str,
        service_name: str,
        kind: EndpointKind,
        private_dns: bool,
        group_ids: list[str],
    ) -> None:
        """What AWS refuses in a CreateVpcEndpoint that is not a ClientToken replay."""
        if kind is EndpointKind.GATEWAY:
            return
        self.check_security_groups(group_ids)
        if private_dns:
            names = self.private_dns_names_for(region, service_name, kind)
            self.check_private_dns_conflict(account_id, region, vpc_id, names)

    def modify(
        self,
        account_id: str,
        region: str,
        vpc_endpoint_id: str,
        private_dns: bool | None,
        add_groups: list[str],
        remove_groups: list[str],
        apply: Callable[[], Any],
    ) -> Any:
        """ModifyVpcEndpoint: refuse what AWS refuses, let moto `apply` the rest, then apply private DNS.
        Under the lifecycle's lock, so two calls cannot both take the last group slot or one private name."""
        with self._lock:
            # An unknown id is left to moto, which answers InvalidVpcEndpointId.NotFound.
            endpoint = self._endpoint(account_id, region, vpc_endpoint_id)
            if endpoint is not None and add_groups:
                current = list(endpoint.security_group_ids or [])
                after = [g for g in [*current, *add_groups] if g not in remove_groups]
                self.check_security_groups(after)
            if private_dns is not None:
                self.check_private_dns_change(account_id, region, vpc_endpoint_id, private_dns)
            result = apply()
            if private_dns is not None:
                self.apply_private_dns(account_id, region, vpc_endpoint_id, private_dns)
            return result

    def apply_private_dns(self, account_id: str, region: str, vpc_endpoint_id: str, enabled: bool) -> None:
        """Apply ModifyVpcEndpoint PrivateDnsEnabled: turning it on passes through pending."""
        with self._lock:
            record = self._records.get((account_id, region, vpc_endpoint_id))
            endpoint = self._endpoint(account_id, region, vpc_endpoint_id)
            if endpoint is None:
                return
            was = bool(endpoint.private_dns_enabled)
            endpoint.private_dns_enabled = enabled
            if record is not None:
                self.sync_dns_entries(record, endpoint)
            if enabled and not was and record is not None and endpoint.state == "available":
                self._move_later(record, endpoint, self.settings.private_dns_update_after)

    def sync_dns_entries(self, record: _Record, endpoint: Any) -> None:
        """DnsEntries as AWS shows them: moto's endpoint-specific entry, plus each private DNS name while
        private DNS is on."""
        if record.kind is EndpointKind.GATEWAY:
            return
        private = set(record.private_dns_names)
        entries = [e for e in endpoint.dns_entries or [] if e.get("dns_name") not in private]
        if endpoint.private_dns_enabled:
            entries += [
                {"dns_name": name, "hosted_zone_id": _managed_zone_id(endpoint.id, name)}
                for name in record.private_dns_names
            ]
        endpoint.dns_entries = entries

    def _move_later(self, record: _Record, endpoint: Any, delay: float) -> None:
        """pending now, available after `delay` emulated seconds (at once when that is no wall time)."""
        record.generation += 1
        generation = record.generation
        if self._time.scaled(delay) <= 0:
            endpoint.state = "available"
            return
        endpoint.state = "pending"

        def finish() -> bool:
            moved = record.generation == generation and endpoint.state == "pending"
            if moved:
                endpoint.state = "available"
            return moved

        self._transitions.later(delay, finish)

    # -- ClientToken --------------------------------------------------------------------------------------
    def idempotent_create(
        self, account_id: str, region: str, token: str | None, fingerprint: str, create: Callable[[], Any]
    ) -> Any:
        """Run `create` once per token: the same token with the same fingerprint returns the first
        endpoint, with another fingerprint raises IdempotentParameterMismatch."""
        with self._lock:
            if token:
                seen = self._tokens.get((account_id, region, token))
                if seen is not None:
                    first_fingerprint, vpc_endpoint_id = seen
                    if first_fingerprint != fingerprint:
                        raise IdempotentParameterMismatchError(token)
                    endpoint = self._endpoint(account_id, region, vpc_endpoint_id)
                    if endpoint is not None:
                        return endpoint
            endpoint = create()
            if token:
                self._tokens[(account_id, region, token)] = (fingerprint, endpoint.id)
            return endpoint

    # -- queries ------------------------------------------------------------------------------------------
    def kind_of(self, account_id: str, region: str, vpc_endpoint_id: str) -> EndpointKind | None:
        with self._lock:
            record = self._records.get((account_id, region, vpc_endpoint_id))
            return record.kind if record else None

    def private_dns(self, account_id: str, region: str, vpc_endpoint_id: str) -> EndpointDns | None:
        """The private DNS record of one endpoint, or None when the local stack did not see it created."""
        with self._lock:
            record = self._records.get((account_id, region, vpc_endpoint_id))
            if record is None:
                return None
            return self._dns_view(record)

    def private_dns_records(
        self, account_id: str | None = None, region: str | None = None
    ) -> list[EndpointDns]:
        """Private DNS records of every known endpoint (optionally of one account and region)."""
        with self._lock:
            records = [
                r
                for r in self._records.values()
                if (account_id is None or r.account_id == account_id)
                and (region is None or r.region == region)
            ]
            views = [self._dns_view(r) for r in records]
        return [v for v in views if v is not None]

    def _dns_view(self, record: _Record) -> EndpointDns | None:
        from moto.ec2.models import ec2_backends

        backend = ec2_backends[record.account_id][record.region]
        endpoint = backend.vpc_end_points.get(record.vpc_endpoint_id)
        if endpoint is None:
            return None
        ips = tuple(
            str(eni.private_ip_address)
            for eni_id in endpoint.network_interface_ids or []
            if (eni := backend.enis.get(eni_id)) is not None and eni.private_ip_address
        )
        return EndpointDns(
            vpc_endpoint_id=endpoint.id,
            account_id=record.account_id,
            region=record.region,
            vpc_id=endpoint.vpc_id,
            service_name=endpoint.service_name,
            kind=record.kind,
            state=endpoint.state,
            private_dns_names=record.private_dns_names,
            private_dns_enabled=bool(endpoint.private_dns_enabled),
            ip_addresses=ips,
        )

    def databricks_services(self, region: str, zones: list[str]) -> list[dict[str, Any]]:
        """The region's Databricks endpoint services in DescribeVpcEndpointServices' shape."""
        services = self.catalog.region(region)
        if services is None:
            return []
        described = []
        for service_name, private_name in (
            (services.workspace_service, services.private_dns_name),
            (services.relay_service, relay_private_dns_name(region)),
        ):
            service_id = service_name.rsplit(".", 1)[-1]
            described.append(
                {
                    "AcceptanceRequired": True,
                    "AvailabilityZones": zones,
                    "BaseEndpointDnsNames": [f"{service_id}.{region}.vpce.amazonaws.com"],
                    "ManagesVpcEndpoints": False,
                    "Owner": DATABRICKS_SERVICE_OWNER,
                    "PrivateDnsName": private_name,
                    "PrivateDnsNames": [{"PrivateDnsName": private_name}],
                    "PrivateDnsNameVerificationState": "verified",
                    "ServiceId": service_id,
                    "ServiceName": service_name,
                    "ServiceType": [{"ServiceType": "Interface"}],
                    "SupportedIpAddressTypes": ["ipv4"],
                    "Tags": [],
                    # Databricks' services take no endpoint policy (unverified: keep it in one place).
                    "VpcEndpointPolicySupported": False,
                }
            )
        return described

    def _endpoint(self, account_id: str, region: str, vpc_endpoint_id: str) -> Any:
        from moto.ec2.models import ec2_backends

        return ec2_backends[account_id][region].vpc_end_points.get(vpc_endpoint_id)

    def _lookup(self, account_id: str, region: str, vpc_endpoint_id: str) -> tuple[_Record, Any]:
        endpoint = self._endpoint(account_id, region, vpc_endpoint_id)
        record = self._records.get((account_id, region, vpc_endpoint_id))
        if endpoint is None or record is None:
            raise UnknownEndpointError(f"{vpc_endpoint_id} is not an endpoint of {account_id} in {region}")
        return record, endpoint


def _addresses_from_subnets(backend: Any, endpoint: Any) -> None:
    """Give each network interface of the endpoint the next free address of its own subnet (moto draws a
    random 10.x.y.z, mostly outside it)."""
    for eni_id in endpoint.network_interface_ids or []:
        eni = backend.enis.get(eni_id)
        if eni is None:
            continue
        address = eni.subnet.get_available_subnet_ip(eni)
        eni.private_ip_address = address
        eni.private_ip_addresses = [{"Primary": True, "PrivateIpAddress": address}]
        if getattr(eni, "private_dns_name", None):
            eni.private_dns_name = generate_dns_from_ip(address)
            eni.private_ip_addresses[0]["PrivateDnsName"] = eni.private_dns_name


def _managed_zone_id(vpc_endpoint_id: str, name: str) -> str:
    """A stable id for the private zone AWS manages for an endpoint's private DNS name (not listable)."""
    return "Z" + hashlib.sha256(f"{vpc_endpoint_id}/{name}".encode()).hexdigest()[:20].upper()


# -- the patches ----------------------------------------------------------------------------------------


def _request_fingerprint(response: Any) -> str:
    """The CreateVpcEndpoint parameters that make two requests "the same" for ClientToken purposes."""
    keys = (
        "VpcId",
        "ServiceName",
        "VpcEndpointType",
        "PolicyDocument",
        "SubnetIds",
        "RouteTableIds",
        "SecurityGroupIds",
        "PrivateDnsEnabled",
        "TagSpecifications",
        "IpAddressType",
        "DnsOptions",
    )
    values = {}
    for key in keys:
        value = response._get_param(key)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = sorted(value)
        values[key] = value
    return json.dumps(values, sort_keys=True, default=str)


def _as_bool(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    return str(value).lower() == "true"


def _patch_backend_create(original: Callable[..., Any]) -> Callable[..., Any]:
    def create_vpc_endpoint(self: Any, *args: Any, **kwargs: Any) -> Any:
        endpoint = original(self, *args, **kwargs)
        lifecycle = _ACTIVE
        if lifecycle is not None:
            lifecycle.on_created(self, endpoint)
        return endpoint

    create_vpc_endpoint.__wrapped__ = original  # type: ignore[attr-defined]
    return create_vpc_endpoint


def _patch_response_create(original: Callable[..., Any]) -> Callable[..., Any]:
    from moto.core.responses import ActionResult

    def create_vpc_endpoint(self: Any) -> Any:
        lifecycle = _ACTIVE
        if lifecycle is None:
            return original(self)
        account, region = self.current_account, self.region
        kind = lifecycle.classify(
            region, self._get_param("ServiceName") or "", self._get_param("VpcEndpointType")
        )
        private_dns = _as_bool(self._get_param("PrivateDnsEnabled"))
        if kind.needs_acceptance and private_dns:
            raise InvalidParameterError(
                "Private DNS can only be enabled after the VPC endpoint connection is accepted by the service "
                "owner."
            )
        holder: dict[str, Any] = {}

        def create() -> Any:
            # Only a call that creates is checked: a replay returns the first endpoint, conflicting with none.
            lifecycle.check_create(
                account,
                region,
                self._get_param("VpcId") or "",
                self._get_param("ServiceName") or "",
                kind,
                # omitted means on, for AWS services (moto's default too); acceptance services start off
                private_dns is not False and not kind.needs_acceptance,
                self._get_param("SecurityGroupIds") or [],
            )
            result = original(self)
            holder["result"] = result
            return result.result["VpcEndpoint"]

        endpoint = lifecycle.idempotent_create(
            account, region, self._get_param("ClientToken"), _request_fingerprint(self), create
        )
        return holder.get("result") or ActionResult({"VpcEndpoint": endpoint})

    create_vpc_endpoint.__wrapped__ = original  # type: ignore[attr-defined]
    return create_vpc_endpoint


def _patch_response_modify(original: Callable[..., Any]) -> Callable[..., Any]:
    def modify_vpc_endpoint(self: Any) -> Any:
        lifecycle = _ACTIVE
        if lifecycle is None:
            return original(self)
        return lifecycle.modify(
            self.current_account,
            self.region,
            self._get_param("VpcEndpointId"),
            _as_bool(self._get_param("PrivateDnsEnabled")),
            self._get_param("AddSecurityGroupIds") or [],
            self._get_param("RemoveSecurityGroupIds") or [],
            lambda: original(self),
        )

    modify_vpc_endpoint.__wrapped__ = original  # type: ignore[attr-defined]
    return modify_vpc_endpoint


def _patch_default_services(original: Callable[..., Any]) -> Callable[..., Any]:
    def collect_default_endpoint_services(account_id: str, region: str) -> list[dict[str, Any]]:
        services: list[dict[str, Any]] = list(original(account_id, region))
        lifecycle = _ACTIVE
        if lifecycle is None:
            return services
        zones = sorted({z for s in services for z in s.get("AvailabilityZones", [])})
        # A new list: moto caches the default services per region and must not see ours.
        return services + lifecycle.databricks_services(region, zones)

    collect_default_endpoint_services.__wrapped__ = original  # type: ignore[attr-defined]
    return collect_default_endpoint_services


def install() -> None:
    """Install the EC2 patches (idempotent, once per process)."""
    global _INSTALLED
    with _INSTALL_LOCK:
        if _INSTALLED:
            return
        from moto.ec2.models.vpcs import VPCBackend
        from moto.ec2.responses.vpcs import VPCs

        VPCBackend.create_vpc_endpoint = _patch_backend_create(VPCBackend.create_vpc_endpoint)  # type: ignore[method-assign]
        VPCs.create_vpc_endpoint = _patch_response_create(VPCs.create_vpc_endpoint)  # type: ignore[method-assign]
        VPCs.modify_vpc_endpoint = _patch_response_modify(VPCs.modify_vpc_endpoint)  # type: ignore[method-assign]
        VPCBackend._collect_default_endpoint_services = staticmethod(  # type: ignore[method-assign]
            _patch_default_services(VPCBackend._collect_default_endpoint_services)
        )
        _INSTALLED = True
