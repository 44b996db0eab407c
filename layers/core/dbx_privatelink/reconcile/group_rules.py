"""What preflight requires of the workspace and endpoint security groups, as predicates: preflight checks
them and drift's repairs (drift/prerequisites.py) restore what they ask, so the two agree exactly. Apart from
preflight, so that the repairs do not load the rest of it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dbx_privatelink.aws.ec2 import SecurityGroupInfo, SgRule


def allows_egress_beyond_group(sg: SecurityGroupInfo, protocol: str, port: int) -> bool:
    """Egress on `port` to addresses outside the group: a rule that only reaches the group itself does not
    open the way to the Databricks control plane (Databricks validates it the same way)."""
    return any(r.covers_port(protocol, port) and (r.cidrs or r.prefix_list_ids) for r in sg.egress)


def allows_all_within_group(sg: SecurityGroupInfo, direction: str, protocol: str) -> bool:
    """All of `protocol` to (egress) or from (ingress) the group itself; egress to 0.0.0.0/0 counts too."""
    rules = sg.ingress if direction == "ingress" else sg.egress

    def full_range(r: SgRule) -> bool:
        return r.protocol == "-1" or (
            r.protocol == protocol and (r.from_port or 0) <= 0 and (r.to_port or 0) >= 65535
        )

    return any(
        full_range(r) and (sg.group_id in r.group_ids or (direction == "egress" and "0.0.0.0/0" in r.cidrs))
        for r in rules
    )


def allows_endpoint_ingress(sg: SecurityGroupInfo, port: int, workspace_groups: Sequence[str]) -> bool:
    """TCP `port` into the endpoint group from one of the workspace groups or from private addresses (the
    VPC CIDR); 0.0.0.0/0 never counts."""
    return any(
        r.covers_port("tcp", port)
        and (any(g in workspace_groups for g in r.group_ids) or any(c != "0.0.0.0/0" for c in r.cidrs))
        for r in sg.ingress
    )
