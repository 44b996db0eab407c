"""What the Route 53 Resolver adapter (resolver.py) reads, as the DNS steps, the plan and the scan use it: the
endpoints, rules, associations and security groups, and the codes and statuses they are judged by. Apart from
the adapter, so that a function loads the adapter (its client, its pacing) only where it builds one.

Immutable records (NamedTuples), not pydantic models: the adapter makes them from the API's answers and the
steps read them; none is validated or serialized, and a NamedTuple costs a fraction of a model's creation at
every cold start of the functions that import them (tests/unit/test_cold_imports.py)."""

from collections.abc import Mapping
from typing import Literal, NamedTuple

INBOUND_TARGET_CODE = "RSLVR-00804"
# A Resolver endpoint in this status is going away: it is neither found nor waited for.
GONE_ENDPOINT_STATUSES = frozenset({"DELETING"})


class ResolverEndpointInfo(NamedTuple):
    resolver_endpoint_id: str
    arn: str
    direction: str
    vpc_id: str
    status: str
    name: str = ""
    status_message: str = ""
    security_group_ids: tuple[str, ...] = ()
    creator_request_id: str = ""
    ip_address_count: int = 0
    protocols: tuple[str, ...] = ("Do53",)  # none given means Do53

    @property
    def speaks_do53(self) -> bool:
        """DNS on port 53: what forwarding rules to outside servers and on-premises forwarders use."""
        return "Do53" in self.protocols


class ResolverIp(NamedTuple):
    ip: str
    subnet_id: str
    status: str = ""


class TargetIp(NamedTuple):
    ip: str
    port: int = 53


class ResolverRuleInfo(NamedTuple):
    resolver_rule_id: str
    arn: str
    domain: str
    rule_type: str
    name: str = ""
    target_ips: tuple[TargetIp, ...] = ()
    resolver_endpoint_id: str | None = None
    status: str = ""
    status_message: str = ""
    creator_request_id: str = ""
    owner_id: str = ""

    @property
    def autodefined(self) -> bool:
        """A rule Route 53 Resolver defines itself (the Internet Resolver, reverse zones): never ours."""
        return self.resolver_rule_id.startswith("rslvr-autodefined") or not self.owner_id.isdigit()


class RuleAssociationInfo(NamedTuple):
    association_id: str
    resolver_rule_id: str
    vpc_id: str
    status: str
    status_message: str = ""
    name: str = ""


class GroupRule(NamedTuple):
    """One CIDR of one security-group permission (rules that name groups or prefix lists carry no cidr)."""

    protocol: str
    from_port: int | None
    to_port: int | None
    cidr: str
    direction: Literal["ingress", "egress"] = "ingress"

    @property
    def is_dns(self) -> bool:
        return self.protocol in ("tcp", "udp") and self.from_port == self.to_port == 53


class SecurityGroupRef(NamedTuple):
    group_id: str
    vpc_id: str
    name: str
    tags: Mapping[str, str] = {}
    ingress: tuple[GroupRule, ...] = ()
    egress: tuple[GroupRule, ...] = ()
    # Permissions that name other groups or prefix lists (counted against the rules quota, never changed).
    other_rules: int = 0

    def rule_count(self, direction: str) -> int:
        """Rules in `direction` as the quota counts them (one per CIDR; others approximated as one each)."""
        return len(self.ingress if direction == "ingress" else self.egress) + self.other_rules


def normalize_domain(domain: str) -> str:
    """Route 53 Resolver answers "example.com." where the request said "example.com"; "." stays "."."""
    return domain.rstrip(".").lower() or "."
