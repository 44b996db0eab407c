"""The Route 53 Resolver adapter, and the EC2 calls the DNS steps need (resolver security groups, the
private IPs of VPC endpoints, endpoint services' private DNS names).

Route 53 Resolver allows 5 requests per second per account and region: every Resolver call first takes a
token from a limiter. In the Lambda functions that is the stack-wide pace in the table (pacing.py), so
concurrent executions together stay under the limit; elsewhere (the CLI) a process-wide bucket. What other
callers spend is caught as Throttling and retried by the state machine.
"""

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from dbx_privatelink import errors
from dbx_privatelink.aws.errors import error_code, map_aws_error
from dbx_privatelink.aws.resolver_types import (
    INBOUND_TARGET_CODE,
    GroupRule,
    ResolverEndpointInfo,
    ResolverIp,
    ResolverRuleInfo,
    RuleAssociationInfo,
    SecurityGroupRef,
    TargetIp,
    normalize_domain,
)
from dbx_privatelink.pacing import Limiter, SlotLimiter

RESOLVER_REQUESTS_PER_SECOND = 5.0
# The quota each Create/Associate call can run into: LimitExceededException names none of them clearly.
_QUOTAS = {
    "CreateResolverEndpoint": "Route 53 Resolver endpoints per AWS Region (default 4), or IP addresses per "
    "endpoint (6)",
    "CreateResolverRule": "Route 53 Resolver rules per AWS Region (default 1,000), or target IP addresses per "
    "rule (6)",
    "UpdateResolverRule": "target IP addresses per Route 53 Resolver rule (6)",
    "AssociateResolverRule": "Route 53 Resolver rule associations per AWS Region (default 2,000)",
    "AssociateResolverEndpointIpAddress": "IP addresses per Route 53 Resolver endpoint (6)",
}
_MAX_PAGES = 50


class TokenBucket:
    """A thread-safe token bucket: `rate` tokens per second, at most `burst` saved up.

    `acquire` waits for a token, but never longer than `max_wait_s`: past that it raises AwsThrottledError,
    so a starved caller fails over to the state machine's backoff instead of sleeping out its timeout.
    """

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate, self.burst = rate, burst
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._tokens = burst
        self._stamp = clock()

    def _reserve(self) -> float:
        """Take a token now (the balance may go negative) and return how long the caller must wait."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= 1
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def _give_back(self) -> None:
        with self._lock:
            self._tokens = min(self.burst, self._tokens + 1)

    def acquire(self, max_wait_s: float = 10.0, what: str = "Route 53 Resolver", count: int = 1) -> float:
        """Block until `count` tokens are ours; returns the seconds waited."""
        for _ in range(count - 1):
            self._reserve()
        wait = self._reserve()
        if wait > max_wait_s:
            self._give_back()
            raise errors.AwsThrottledError(
                f"{what}: the client-side rate limit ({self.rate:g} requests/s) would make this call wait "
                f"{wait:.1f}s, more than {max_wait_s:g}s; the state machine retries the step later"
            )
        if wait > 0:
            self._sleep(wait)
        return wait


# One bucket per process: every ResolverClient of a Lambda container shares the account's budget.
RESOLVER_LIMITER = TokenBucket(RESOLVER_REQUESTS_PER_SECOND, RESOLVER_REQUESTS_PER_SECOND)


def _endpoint(raw: dict[str, Any]) -> ResolverEndpointInfo:
    return ResolverEndpointInfo(
        resolver_endpoint_id=raw["Id"],
        arn=raw.get("Arn", ""),
        name=raw.get("Name", "") or "",
        direction=raw.get("Direction", ""),
        vpc_id=raw.get("HostVPCId", ""),
        status=raw.get("Status", ""),
        status_message=raw.get("StatusMessage", "") or "",
        security_group_ids=tuple(raw.get("SecurityGroupIds", [])),
        creator_request_id=raw.get("CreatorRequestId", "") or "",
        ip_address_count=int(raw.get("IpAddressCount", 0) or 0),
        protocols=tuple(raw.get("Protocols") or ("Do53",)),
    )


def _rule(raw: dict[str, Any]) -> ResolverRuleInfo:
    return ResolverRuleInfo(
        resolver_rule_id=raw["Id"],
        arn=raw.get("Arn", ""),
        name=raw.get("Name", "") or "",
        domain=normalize_domain(raw.get("DomainName", "")),
        rule_type=raw.get("RuleType", ""),
        target_ips=tuple(
            TargetIp(ip=t["Ip"], port=int(t.get("Port", 53) or 53))
            for t in raw.get("TargetIps", [])
            if "Ip" in t
        ),
        resolver_endpoint_id=raw.get("ResolverEndpointId") or None,
        status=raw.get("Status", ""),
        status_message=raw.get("StatusMessage", "") or "",
        creator_request_id=raw.get("CreatorRequestId", "") or "",
        owner_id=str(raw.get("OwnerId", "") or ""),
    )


def _association(raw: dict[str, Any]) -> RuleAssociationInfo:
    return RuleAssociationInfo(
        association_id=raw["Id"],
        resolver_rule_id=raw["ResolverRuleId"],
        vpc_id=raw.get("VPCId", ""),
        status=raw.get("Status", ""),
        status_message=raw.get("StatusMessage", "") or "",
        name=raw.get("Name", "") or "",
    )


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _map_resolver_error(exc: Exception, operation: str) -> errors.DbxPrivateLinkError:
    if isinstance(exc, ClientError):
        code = error_code(exc)
        message = str(exc.response.get("Error", {}).get("Message", ""))
        if code == "LimitExceededException":
            quota = _QUOTAS.get(operation, "a Route 53 Resolver quota")
            return errors.QuotaExceededError(
                f"{operation} failed: {code}: {message} (quota: {quota}; raise it in Service Quotas or free "
                "capacity)"
            )
        if INBOUND_TARGET_CODE in message:
            return errors.AwsRequestError(
                f"{operation} refused ({INBOUND_TARGET_CODE}): a rule whose targets are the IPs of an inbound "
                "endpoint cannot be associated with the VPC that holds that endpoint; associate it with the "
                f"peered VPCs only ({message})"
            )
        if code == "ResourceInUseException" or "is in transition" in message.lower():
            return errors.ResolverBusyError(f"{operation} failed: {code}: {message}")
    return map_aws_error(exc, operation)


class ResolverClient:
    """Route 53 Resolver calls (rate limited, errors mapped) and the EC2 reads and writes of the DNS steps."""

    def __init__(
        self,
        resolver: Any,
        ec2: Any,
        *,
        limiter: Limiter = RESOLVER_LIMITER,
        max_wait_s: float = 10.0,
    ) -> None:
        self._r53r = resolver
        self._ec2 = ec2
        self._limiter = limiter
        self._max_wait_s = max_wait_s
        # The slots of the running invocation's step: one context per invocation where invocations run side
        # by side in one process (the local stack's runtime), so one step never spends or drops another's.
        self._slots: ContextVar[tuple[float, ...]] = ContextVar(f"resolver-slots-{id(self)}", default=())

    def reserve_calls(self, count: int, max_wait_s: float) -> None:
        """Reserve the slots of a step's expected `count` Resolver calls on the stack's shared pace at once
        (one place in its queue, not one per call); each call then waits for its own slot, one interval
        after the one before, and calls past them take slots of their own. A limiter of this process alone
        (the CLI's bucket) has no shared queue to stand in: its calls take their tokens one by one."""
        if count <= 0 or not isinstance(self._limiter, SlotLimiter):
            return
        slots = self._limiter.reserve_slots(count, max_wait_s, "Route 53 Resolver calls of this step")
        self._slots.set(tuple(sorted((*self._slots.get(), *slots))))

    def drop_unspent_slots(self) -> None:
        """Forget the slots the step reserved and did not spend: the client outlives an invocation (a warm
        container), and a later invocation's calls must take slots of their own. (Within the invocation a
        slot is spent however late the step comes to it: going to the back of the queue would cost the
        whole queue's wait for a moment's delay.)"""
        self._slots.set(())

    @contextmanager
    def _call(self, operation: str) -> Iterator[None]:
        slots = self._slots.get()
        slot = slots[0] if slots else None
        self._slots.set(slots[1:])
        if slot is None:
            self._limiter.acquire(self._max_wait_s, operation)
        elif isinstance(self._limiter, SlotLimiter):  # only such a limiter hands out slots
            self._limiter.wait_until(slot)
        try:
            yield
        except (ClientError, BotoCoreError, ResponseParserError) as exc:
            raise _map_resolver_error(exc, operation) from exc

    def _pages(self, operation: str, method: str, key: str, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token: str | None = None
        for _ in range(_MAX_PAGES):
            args = dict(params, **({"NextToken": token} if token else {}))
            with self._call(operation):
                page = getattr(self._r53r, method)(**args)
            items += page.get(key, [])
            token = page.get("NextToken")
            if not token:
                return items
        raise errors.AwsRequestError(f"{operation}: more than {_MAX_PAGES} pages; narrow the request")

    # --- endpoints -----------------------------------------------------------------------------------

    def list_endpoints(
        self,
        *,
        vpc_id: str | None = None,
        direction: str | None = None,
        creator_request_id: str | None = None,
    ) -> list[ResolverEndpointInfo]:
        filters = []
        if vpc_id:
            filters.append({"Name": "HostVPCId", "Values": [vpc_id]})
        if direction:
            filters.append({"Name": "Direction", "Values": [direction]})
        if creator_request_id:
            filters.append({"Name": "CreatorRequestId", "Values": [creator_request_id]})
        raw = self._pages(
            "ListResolverEndpoints", "list_resolver_endpoints", "ResolverEndpoints", Filters=filters
        )
        return [_endpoint(r) for r in raw]

    def get_endpoint(self, endpoint_id: str) -> ResolverEndpointInfo | None:
        try:
            with self._call("GetResolverEndpoint"):
                raw = self._r53r.get_resolver_endpoint(ResolverEndpointId=endpoint_id)["ResolverEndpoint"]
        except errors.AwsRequestError as exc:
            if "ResourceNotFoundException" in str(exc):
                return None
            raise
        return _endpoint(raw)

    def endpoint_ips(self, endpoint_id: str) -> list[ResolverIp]:
        raw = self._pages(
            "ListResolverEndpointIpAddresses",
            "list_resolver_endpoint_ip_addresses",
            "IpAddresses",
            ResolverEndpointId=endpoint_id,
        )
        return [
            ResolverIp(ip=r["Ip"], subnet_id=r["SubnetId"], status=r.get("Status", ""))
            for r in raw
            if r.get("Ip")
        ]

    def create_endpoint(
        self,
        *,
        name: str,
        direction: str,
        creator_request_id: str,
        security_group_ids: list[str],
        subnet_ids: list[str],
        tags: dict[str, str],
    ) -> tuple[ResolverEndpointInfo, bool]:
        """Create an endpoint with one automatically chosen IP per subnet; returns (endpoint, adopted).

        A reused CreatorRequestId answers ResourceExistsException: the endpoint that request made is adopted.
        """
        try:
            with self._call("CreateResolverEndpoint"):
                raw = self._r53r.create_resolver_endpoint(
                    CreatorRequestId=creator_request_id,
                    Name=name,
                    Direction=direction,
                    SecurityGroupIds=security_group_ids,
                    IpAddresses=[{"SubnetId": s} for s in subnet_ids],
                    Tags=_tag_list(tags),
                )["ResolverEndpoint"]
        except errors.AwsRequestError as exc:
            if "ResourceExistsException" not in str(exc):
                raise
            existing = self.list_endpoints(creator_request_id=creator_request_id)
            if not existing:
                raise errors.ResourceConflictError(
                    f"CreateResolverEndpoint: CreatorRequestId {creator_request_id} was used before, but no "
                    f"endpoint carries it any more ({exc})"
                ) from exc
            return existing[0], True
        return _endpoint(raw), False

    def associate_ip(self, endpoint_id: str, subnet_id: str) -> ResolverEndpointInfo:
        """Give the endpoint one more IP address, chosen by AWS, in the subnet (AssociateResolverEndpointIpAddress)."""
        with self._call("AssociateResolverEndpointIpAddress"):
            raw = self._r53r.associate_resolver_endpoint_ip_address(
                ResolverEndpointId=endpoint_id, IpAddress={"SubnetId": subnet_id}
            )["ResolverEndpoint"]
        return _endpoint(raw)

    def set_protocols(self, endpoint_id: str, protocols: list[str]) -> ResolverEndpointInfo:
        """Replace the endpoint's protocols (UpdateResolverEndpoint); the name, type and IPs stay."""
        with self._call("UpdateResolverEndpoint"):
            raw = self._r53r.update_resolver_endpoint(ResolverEndpointId=endpoint_id, Protocols=protocols)[
                "ResolverEndpoint"
            ]
        return _endpoint(raw)

    # --- rules ---------------------------------------------------------------------------------------

    def list_rules(self, *, domain: str | None = None) -> list[ResolverRuleInfo]:
        filters = []
        if domain:
            # AWS stores the domain with its trailing dot; ask for both spellings.
            name = normalize_domain(domain)
            filters.append({"Name": "DomainName", "Values": sorted({name, name.rstrip(".") + "."})})
        raw = self._pages("ListResolverRules", "list_resolver_rules", "ResolverRules", Filters=filters)
        return [_rule(r) for r in raw]

    def get_rule(self, rule_id: str) -> ResolverRuleInfo | None:
        try:
            with self._call("GetResolverRule"):
                raw = self._r53r.get_resolver_rule(ResolverRuleId=rule_id)["ResolverRule"]
        except errors.AwsRequestError as exc:
            if "ResourceNotFoundException" in str(exc):
                return None
            raise
        return _rule(raw)

    def tags(self, arn: str) -> dict[str, str]:
        raw = self._pages("ListTagsForResource", "list_tags_for_resource", "Tags", ResourceArn=arn)
        return {t["Key"]: t["Value"] for t in raw}

    def tag(self, arn: str, tags: dict[str, str]) -> None:
        with self._call("TagResource"):
            self._r53r.tag_resource(ResourceArn=arn, Tags=_tag_list(tags))

    def create_rule(
        self,
        *,
        name: str,
        creator_request_id: str,
        rule_type: str,
        domain: str,
        target_ips: list[TargetIp],
        resolver_endpoint_id: str | None,
        tags: dict[str, str],
    ) -> tuple[ResolverRuleInfo, bool]:
        """Create a rule; returns (rule, adopted) where adopted means a reused CreatorRequestId found it."""
        params: dict[str, Any] = {
            "CreatorRequestId": creator_request_id,
            "Name": name,
            "RuleType": rule_type,
            "DomainName": domain,
            "Tags": _tag_list(tags),
        }
        if rule_type == "FORWARD":
            params["TargetIps"] = [{"Ip": t.ip, "Port": t.port} for t in target_ips]
            params["ResolverEndpointId"] = resolver_endpoint_id
        try:
            with self._call("CreateResolverRule"):
                raw = self._r53r.create_resolver_rule(**params)["ResolverRule"]
        except errors.AwsRequestError as exc:
            if "ResourceExistsException" not in str(exc):
                raise
            found = [r for r in self.list_rules() if r.creator_request_id == creator_request_id]
            if not found:
                raise errors.ResourceConflictError(
                    f"CreateResolverRule: CreatorRequestId {creator_request_id} was used before, but no rule "
                    f"carries it any more ({exc})"
                ) from exc
            return found[0], True
        return _rule(raw), False

    def update_rule(
        self, rule_id: str, *, name: str, target_ips: list[TargetIp], resolver_endpoint_id: str
    ) -> ResolverRuleInfo:
        with self._call("UpdateResolverRule"):
            raw = self._r53r.update_resolver_rule(
                ResolverRuleId=rule_id,
                Config={
                    "Name": name,
                    "TargetIps": [{"Ip": t.ip, "Port": t.port} for t in target_ips],
                    "ResolverEndpointId": resolver_endpoint_id,
                },
            )["ResolverRule"]
        return _rule(raw)

    # --- associations --------------------------------------------------------------------------------

    def list_associations(
        self, *, vpc_id: str | None = None, rule_id: str | None = None
    ) -> list[RuleAssociationInfo]:
        filters = []
        if vpc_id:
            filters.append({"Name": "VPCId", "Values": [vpc_id]})
        if rule_id:
            filters.append({"Name": "ResolverRuleId", "Values": [rule_id]})
        raw = self._pages(
            "ListResolverRuleAssociations",
            "list_resolver_rule_associations",
            "ResolverRuleAssociations",
            Filters=filters,
        )
        return [_association(r) for r in raw]

    def get_association(self, association_id: str) -> RuleAssociationInfo | None:
        try:
            with self._call("GetResolverRuleAssociation"):
                raw = self._r53r.get_resolver_rule_association(ResolverRuleAssociationId=association_id)[
                    "ResolverRuleAssociation"
                ]
        except errors.AwsRequestError as exc:
            if "ResourceNotFoundException" in str(exc):
                return None
            raise
        return _association(raw)

    def associate(self, rule_id: str, vpc_id: str, name: str) -> tuple[RuleAssociationInfo, bool]:
        """Associate a rule with a VPC; returns (association, existed) when AWS says it already is."""
        try:
            with self._call("AssociateResolverRule"):
                raw = self._r53r.associate_resolver_rule(ResolverRuleId=rule_id, VPCId=vpc_id, Name=name)[
                    "ResolverRuleAssociation"
                ]
        except (errors.AwsRequestError, errors.ResourceConflictError) as exc:
            if INBOUND_TARGET_CODE in str(exc):
                raise
            existing = [a for a in self.list_associations(vpc_id=vpc_id) if a.resolver_rule_id == rule_id]
            if not existing:
                raise
            return existing[0], True
        return _association(raw), False

    # --- EC2: resolver security groups, endpoint addresses --------------------------------------------

    @contextmanager
    def _ec2_call(self, operation: str) -> Iterator[None]:
        try:
            yield
        except (ClientError, BotoCoreError, ResponseParserError) as exc:
            raise map_aws_error(exc, operation) from exc

    def find_security_group(self, vpc_id: str, name: str) -> SecurityGroupRef | None:
        with self._ec2_call("DescribeSecurityGroups"):
            raw = self._ec2.describe_security_groups(
                Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": [name]}]
            )["SecurityGroups"]
        # moto may ignore a filter: keep only exact matches.
        raw = [g for g in raw if g.get("VpcId") == vpc_id and g.get("GroupName") == name]
        return self._group(raw[0]) if raw else None

    def get_security_group(self, group_id: str) -> SecurityGroupRef | None:
        with self._ec2_call("DescribeSecurityGroups"):
            raw = self._ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": [group_id]}])[
                "SecurityGroups"
            ]
        raw = [g for g in raw if g.get("GroupId") == group_id]
        return self._group(raw[0]) if raw else None

    @staticmethod
    def _group(raw: dict[str, Any]) -> SecurityGroupRef:
        def rules(key: str, direction: Literal["ingress", "egress"]) -> tuple[GroupRule, ...]:
            return tuple(
                GroupRule(
                    direction=direction,
                    protocol=str(p.get("IpProtocol", "-1")),
                    from_port=p.get("FromPort"),
                    to_port=p.get("ToPort"),
                    cidr=r["CidrIp"],
                )
                for p in raw.get(key, [])
                for r in p.get("IpRanges", [])
            )

        others = sum(
            len(p.get("UserIdGroupPairs", []))
            + len(p.get("PrefixListIds", []))
            + len(p.get("Ipv6Ranges", []))
            for key in ("IpPermissions", "IpPermissionsEgress")
            for p in raw.get(key, [])
        )
        return SecurityGroupRef(
            group_id=raw["GroupId"],
            vpc_id=raw.get("VpcId", ""),
            name=raw.get("GroupName", ""),
            tags={t["Key"]: t["Value"] for t in raw.get("Tags", [])},
            ingress=rules("IpPermissions", "ingress"),
            egress=rules("IpPermissionsEgress", "egress"),
            other_rules=others,
        )

    def create_security_group(
        self, vpc_id: str, name: str, description: str, tags: dict[str, str]
    ) -> tuple[SecurityGroupRef, bool]:
        """Create the group, or (InvalidGroup.Duplicate: another execution made it first) find it; returns
        (group, created). A group made a moment ago may not be visible yet: EventualConsistencyError."""
        try:
            with self._ec2_call("CreateSecurityGroup"):
                group_id: str = self._ec2.create_security_group(
                    VpcId=vpc_id,
                    GroupName=name,
                    Description=description,
                    TagSpecifications=[{"ResourceType": "security-group", "Tags": _tag_list(tags)}],
                )["GroupId"]
        except errors.AwsRequestError as exc:
            if "InvalidGroup.Duplicate" not in str(exc):
                raise
            found = self.find_security_group(vpc_id, name)
            if found is None:
                raise errors.EventualConsistencyError(
                    f"security group {name} in {vpc_id} exists (another execution made it) but is not visible "
                    "yet; retrying"
                ) from exc
            return found, False
        # EC2 gives every new group one rule: all traffic out to anywhere.
        default_egress = GroupRule(
            direction="egress", protocol="-1", from_port=None, to_port=None, cidr="0.0.0.0/0"
        )
        return SecurityGroupRef(
            group_id=group_id, vpc_id=vpc_id, name=name, tags=dict(tags), egress=(default_egress,)
        ), True

    @staticmethod
    def _permissions(rules: list[GroupRule]) -> list[dict[str, Any]]:
        permissions = []
        for r in rules:
            permission: dict[str, Any] = {
                "IpProtocol": r.protocol,
                "IpRanges": [{"CidrIp": r.cidr, "Description": "DNS (Route 53 Resolver endpoint)"}]
                if r.is_dns
                else [{"CidrIp": r.cidr}],
            }
            if r.from_port is not None and r.protocol != "-1":
                permission.update(FromPort=r.from_port, ToPort=r.to_port)
            permissions.append(permission)
        return permissions

    def authorize(self, group_id: str, rules: list[GroupRule]) -> None:
        """Add the rules; one another execution added meanwhile is not an error."""
        self._change_rules("authorize", group_id, rules, "InvalidPermission.Duplicate")

    def revoke(self, group_id: str, rules: list[GroupRule]) -> None:
        """Remove the rules; one another execution removed meanwhile is not an error."""
        self._change_rules("revoke", group_id, rules, "InvalidPermission.NotFound")

    def _change_rules(self, verb: str, group_id: str, rules: list[GroupRule], done_already: str) -> None:
        """EC2 refuses the whole call when one rule was added (or removed) already: `done_already`. Then the
        rules go one at a time, and a single rule refused that way is already as wanted."""
        for direction in ("ingress", "egress"):
            wanted = [r for r in rules if r.direction == direction]
            if not wanted:
                continue
            method = getattr(self._ec2, f"{verb}_security_group_{direction}")
            try:
                with self._ec2_call(f"{verb.capitalize()}SecurityGroup{direction.capitalize()}"):
                    method(GroupId=group_id, IpPermissions=self._permissions(wanted))
            except errors.AwsRequestError as exc:
                if done_already not in str(exc):
                    raise
                if len(wanted) > 1:
                    for rule in wanted:
                        self._change_rules(verb, group_id, [rule], done_already)

    def vpc_endpoint_ips(self, vpc_endpoint_ids: list[str]) -> dict[str, list[str]]:
        """The private IPs of each VPC endpoint's network interfaces (what its private DNS name answers)."""
        if not vpc_endpoint_ids:
            return {}
        with self._ec2_call("DescribeVpcEndpoints"):
            endpoints = self._ec2.describe_vpc_endpoints(VpcEndpointIds=vpc_endpoint_ids)["VpcEndpoints"]
        enis = {e["VpcEndpointId"]: list(e.get("NetworkInterfaceIds", [])) for e in endpoints}
        all_enis = sorted({i for ids in enis.values() for i in ids})
        addresses: dict[str, str] = {}
        if all_enis:
            with self._ec2_call("DescribeNetworkInterfaces"):
                raw = self._ec2.describe_network_interfaces(NetworkInterfaceIds=all_enis)["NetworkInterfaces"]
            addresses = {n["NetworkInterfaceId"]: n.get("PrivateIpAddress", "") for n in raw}
        return {
            endpoint_id: sorted(addresses[i] for i in ids if addresses.get(i))
            for endpoint_id, ids in enis.items()
        }

    def service_private_dns_names(self, service_names: list[str]) -> dict[str, str]:
        """The private DNS name each endpoint service publishes (empty when it has none or is unknown)."""
        if not service_names:
            return {}
        try:
            with self._ec2_call("DescribeVpcEndpointServices"):
                raw = self._ec2.describe_vpc_endpoint_services(ServiceNames=service_names)["ServiceDetails"]
        except errors.AwsRequestError:
            return {}
        return {
            d["ServiceName"]: d.get("PrivateDnsName", "") or ""
            for d in raw
            if d["ServiceName"] in service_names
        }

    # --- decommission ----------------------------------------------------------------------------------

    def disassociate(self, rule_id: str, vpc_id: str) -> RuleAssociationInfo | None:
        """Disassociate the rule from the VPC (the association goes DELETING, then away); None when there is
        no such association any more."""
        try:
            with self._call("DisassociateResolverRule"):
                raw = self._r53r.disassociate_resolver_rule(ResolverRuleId=rule_id, VPCId=vpc_id)[
                    "ResolverRuleAssociation"
                ]
        except errors.AwsRequestError as exc:
            if "ResourceNotFoundException" in str(exc):
                return None
            raise
        return _association(raw)

    def delete_rule(self, rule_id: str) -> bool:
        """Delete the rule; False when it does not exist. Still associated: ResolverBusyError (AWS answers
        ResourceInUseException until every association is gone) or ResourceInUseError."""
        try:
            with self._call("DeleteResolverRule"):
                self._r53r.delete_resolver_rule(ResolverRuleId=rule_id)
        except errors.AwsRequestError as exc:
            if "ResourceNotFoundException" in str(exc):
                return False
            if "InvalidRequestException" in str(exc) and "associat" in str(exc).lower():
                raise errors.ResourceInUseError(str(exc)) from exc
            raise
        return True

    def delete_endpoint(self, endpoint_id: str) -> ResolverEndpointInfo | None:
        """Delete the endpoint (it goes DELETING, then away); None when it does not exist. Rules that still
        forward through it: ResourceInUseError (AWS refuses until they are deleted)."""
        try:
            with self._call("DeleteResolverEndpoint"):
                raw = self._r53r.delete_resolver_endpoint(ResolverEndpointId=endpoint_id)["ResolverEndpoint"]
        except errors.AwsRequestError as exc:
            if "ResourceNotFoundException" in str(exc):
                return None
            if "InvalidRequestException" in str(exc) and "rule" in str(exc).lower():
                raise errors.ResourceInUseError(str(exc)) from exc
            raise
        return _endpoint(raw)

    def delete_security_group(self, group_id: str) -> bool:
        """Delete one of the application's resolver groups; False when it does not exist. An interface still
        uses it (the endpoint's ENIs go some time after the endpoint): ResourceInUseError."""
        try:
            with self._ec2_call("DeleteSecurityGroup"):
                self._ec2.delete_security_group(GroupId=group_id)
        except errors.AwsRequestError as exc:
            if "InvalidGroup.NotFound" in str(exc):
                return False
            if "DependencyViolation" in str(exc):
                raise errors.ResourceInUseError(f"DeleteSecurityGroup {group_id}: {exc}") from exc
            raise
        return True
