"""plan lists every change a reconcile step can make: each mutating adapter call in reconcile/ maps to a call
plan can list, so a step that learns a new write fails here until plan learns it too."""

from __future__ import annotations

import ast
from pathlib import Path

import dbx_privatelink.reconcile as reconcile
from dbx_privatelink_cli.plan import PLANNABLE_CALLS

# The adapters the steps write through, by the name the steps give them.
RECEIVERS = {"ec2", "resolver", "client", "zones"}
READ_PREFIXES = ("get", "list_", "find_")
READS = {
    "tags",
    "known_services",
    "main_route_table",
    "endpoint_ips",
    "vpc_endpoint_ips",
    "service_private_dns_names",
    "reserve_calls",
    "change_status",
}
# Each write of a step, and the calls plan lists for it.
PLANNED = {
    ("ec2", "create_endpoint"): {"CreateVpcEndpoint"},
    ("ec2", "tag"): {"CreateTags"},
    ("ec2", "add_security_groups"): {"ModifyVpcEndpoint"},
    ("ec2", "set_private_dns"): {"ModifyVpcEndpoint"},
    ("client", "register_vpc_endpoint"): {"POST vpc-endpoints"},
    ("client", "create_private_access_settings"): {"POST private-access-settings"},
    ("client", "replace_private_access_settings"): {"PUT private-access-settings"},
    ("client", "create_network"): {"POST networks"},
    ("client", "delete_network"): {"DELETE networks"},
    ("client", "create_workspace"): {"POST workspaces"},
    ("client", "update_workspace"): {"PATCH workspaces"},
    ("resolver", "create_security_group"): {"CreateSecurityGroup"},
    ("resolver", "authorize"): {"AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress"},
    ("resolver", "revoke"): {"RevokeSecurityGroupIngress", "RevokeSecurityGroupEgress"},
    ("resolver", "tag"): {"TagResource"},
    ("resolver", "associate_ip"): {"AssociateResolverEndpointIpAddress"},
    ("resolver", "set_protocols"): {"UpdateResolverEndpoint"},
    ("resolver", "create_endpoint"): {"CreateResolverEndpoint"},
    ("resolver", "create_rule"): {"CreateResolverRule"},
    ("resolver", "update_rule"): {"UpdateResolverRule"},
    ("resolver", "associate"): {"AssociateResolverRule"},
    ("zones", "associate"): {"AssociateVPCWithHostedZone"},
}


def _adapter_calls(path: Path) -> set[tuple[str, str]]:
    """(receiver, method) of every call on an adapter in the module: `ec2.tag(...)`, `deps.zones.associate(...)`."""
    found: set[tuple[str, str]] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        owner = node.func.value
        name = (
            owner.id
            if isinstance(owner, ast.Name)
            else owner.attr
            if isinstance(owner, ast.Attribute)
            else ""
        )
        if name in RECEIVERS:
            found.add((name, node.func.attr))
    return found


def _writes() -> dict[tuple[str, str], list[str]]:
    writes: dict[tuple[str, str], list[str]] = {}
    for path in sorted(Path(reconcile.__file__).parent.glob("*.py")):
        for receiver, method in _adapter_calls(path):
            if not method.startswith(READ_PREFIXES) and method not in READS:
                writes.setdefault((receiver, method), []).append(path.name)
    return writes


def test_every_write_of_a_reconcile_step_is_one_plan_lists() -> None:
    # Given every adapter call of the reconcile steps that is not a read
    writes = _writes()
    # Then each is known, and the calls plan lists for it are calls plan can list
    unknown = {f"{r}.{m} in {', '.join(where)}" for (r, m), where in writes.items() if (r, m) not in PLANNED}
    assert not unknown, (
        f"reconcile steps call {sorted(unknown)}, which plan does not list: teach plan (cli plan.py or "
        "reconcile/dns_plan.py) the decision and the calls, then add them to PLANNED here"
    )
    assert {op for (r, m) in writes for op in PLANNED[(r, m)]} <= PLANNABLE_CALLS


def test_the_scan_sees_the_writes_it_guards() -> None:
    # Given the reconcile package as it is, then the scan finds its writes on every adapter (a scan that
    # found nothing would pass the test above for any step)
    writes = _writes()
    assert {r for r, _ in writes} == RECEIVERS
    assert ("resolver", "create_rule") in writes and ("zones", "associate") in writes
