"""The scheduled scan: live state against desired state, on both sides, for one workspace.

It catches what no event reports: Databricks-side changes (private access settings, registrations, the
network's validation, the workspace's attachment) and events CloudTrail lost. It reports only what is
definitely wrong; transitional states (an endpoint pending after a change, a workspace PROVISIONING) are
left to the next scan, so a scan never fights a reconcile that is still running.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dbx_privatelink.databricks.client import DatabricksAccountClient
from dbx_privatelink.errors import DatabricksNotFoundError, DbxPrivateLinkError, PreflightFailedError
from dbx_privatelink.models import DATABRICKS_ROLES, Registration
from dbx_privatelink.reconcile.databricks_objects import desired_private_access_settings, workspace_of
from dbx_privatelink.reconcile.preflight import assess
from dbx_privatelink.reconcile.zones import missing_associations
from dbx_privatelink.spec import WorkspaceSpec, parse_spec
from dbx_privatelink.store import StoreClient
from dbx_privatelink.wiring import Deps

TRANSITIONAL_ENDPOINT_STATES = {"pending", "pendingacceptance"}
TRANSITIONAL_WORKSPACE_STATES = {"PROVISIONING"}


@dataclass
class ScanResult:
    workspace_key: str
    findings: list[str] = field(default_factory=list)
    skipped: str = ""  # why the workspace was not compared


def _skip_reason(store: StoreClient, key: str, observed: dict[str, Any] | None, now: float) -> str:
    if not observed or observed.get("health") != "HEALTHY":
        return "not reconciled successfully yet: nothing to compare with"
    lease = store.get_lease(key)
    if lease is not None and lease.expires_at > now:
        return f"reconcile {lease.holder} is running"
    return ""


def check_endpoints(spec: WorkspaceSpec, resources: dict[str, Any], deps: Deps) -> list[str]:
    """Every recorded endpoint exists and is available; the Databricks ones have private DNS on."""
    recorded = {role: str(e.get("id", "")) for role, e in (resources.get("endpoints") or {}).items()}
    live = deps.ec2(spec.region).get_endpoints(sorted(i for i in recorded.values() if i))
    findings: list[str] = []
    for role, endpoint_id in sorted(recorded.items()):
        info = live.get(endpoint_id)
        if info is None or info.gone:
            state = "does not exist" if info is None else f"is {info.state}"
            findings.append(f"{role} endpoint {endpoint_id} {state}")
            continue
        if info.state.lower() in TRANSITIONAL_ENDPOINT_STATES:
            continue
        if info.state.lower() != "available":
            findings.append(f"{role} endpoint {endpoint_id} is {info.state}")
        elif role in DATABRICKS_ROLES and not info.private_dns_enabled:
            findings.append(f"{role} endpoint {endpoint_id} has private DNS off")
    return findings


def check_prerequisites(spec: WorkspaceSpec, deps: Deps) -> list[str]:
    """preflight.assess: VPC DNS attributes, subnets, security-group rules, endpoint services."""
    try:
        return list(assess(spec, deps, zones=False, dns=False).problems)
    except PreflightFailedError as exc:
        return [str(exc)]


def check_dns(spec: WorkspaceSpec, resources: dict[str, Any], deps: Deps) -> list[str]:
    """The resolver endpoints are OPERATIONAL, the rules exist, each rule is associated with its VPCs, and
    each private hosted zone of dns.private_zones with its VPCs."""
    dns = resources.get("dns")
    if spec.dns is None or not isinstance(dns, dict):
        return []
    resolver = deps.resolver(spec.region)
    findings: list[str] = missing_associations(spec, deps)
    endpoint_ids = [
        str(part["resolver_endpoint_id"])
        for part in [dns.get("outbound_endpoint"), dns.get("inbound"), *(dns.get("peered") or [])]
        if isinstance(part, dict) and part.get("resolver_endpoint_id")
    ]
    for endpoint_id in endpoint_ids:
        endpoint = resolver.get_endpoint(endpoint_id)
        if endpoint is None:
            findings.append(f"resolver endpoint {endpoint_id} does not exist")
        elif endpoint.status not in ("OPERATIONAL", "UPDATING", "CREATING"):
            findings.append(
                f"resolver endpoint {endpoint_id} is {endpoint.status}: {endpoint.status_message}"
            )
        elif not endpoint.speaks_do53:
            findings.append(
                f"resolver endpoint {endpoint_id} has protocols {', '.join(endpoint.protocols)}: without Do53 "
                "it neither forwards to nor answers DNS on port 53"
            )
    rule_ids = [dns.get("forward_rule_id"), *(dns.get("aws_rule_ids") or [])]
    rule_ids += [r for p in dns.get("peered") or [] if isinstance(p, dict) for r in p.get("rule_ids") or []]
    for rule_id in [str(r) for r in rule_ids if r]:
        rule = resolver.get_rule(rule_id)
        if rule is None:
            findings.append(f"resolver rule {rule_id} does not exist")
        elif rule.status not in ("COMPLETE", "UPDATING", "CREATING"):
            findings.append(f"resolver rule {rule_id} is {rule.status}: {rule.status_message}")
    wanted: dict[str, set[str]] = {}
    for association in dns.get("associations") or []:
        if (
            isinstance(association, dict)
            and association.get("vpc_id")
            and association.get("resolver_rule_id")
        ):
            wanted.setdefault(str(association["vpc_id"]), set()).add(str(association["resolver_rule_id"]))
    for vpc_id, rules in sorted(wanted.items()):
        live = {
            a.resolver_rule_id for a in resolver.list_associations(vpc_id=vpc_id) if a.status != "DELETING"
        }
        for rule_id in sorted(rules - live):
            findings.append(f"resolver rule {rule_id} is no longer associated with {vpc_id}")
    return findings


def _registrations(resources: dict[str, Any]) -> list[Registration]:
    return [
        Registration(
            role=role,
            aws_vpc_endpoint_id=str(r.get("aws_id", "")),
            vpc_endpoint_id=str(r.get("id", "")),
            state="available",
        )
        for role, r in sorted((resources.get("registrations") or {}).items())
        if r.get("id")
    ]


def check_databricks(
    spec: WorkspaceSpec, observed: dict[str, Any], client: DatabricksAccountClient
) -> list[str]:
    """Registrations available, private access settings as desired, network VALID, workspace RUNNING and
    attached to the recorded network and private access settings."""
    resources = observed.get("resources") or {}
    findings: list[str] = []
    regs = _registrations(resources)
    for reg in regs:
        try:
            state = str(client.get_vpc_endpoint(reg.vpc_endpoint_id).state or "")
        except DatabricksNotFoundError:
            findings.append(f"{reg.role} registration {reg.vpc_endpoint_id} does not exist in Databricks")
            continue
        if state.lower() not in ("available", *TRANSITIONAL_ENDPOINT_STATES):
            findings.append(f"{reg.role} registration {reg.vpc_endpoint_id} is {state}")
    pas_id = observed.get("private_access_settings_id")
    if pas_id:
        try:
            pas = client.get_private_access_settings(str(pas_id))
            desired = desired_private_access_settings(spec, regs)
            live = {
                "public_access_enabled": pas.public_access_enabled,
                "private_access_level": pas.private_access_level,
                "allowed_vpc_endpoint_ids": sorted(pas.allowed_vpc_endpoint_ids),
            }
            for key, value in live.items():
                if value != desired[key]:
                    findings.append(
                        f"private access settings {pas_id}: {key} is {value}, desired {desired[key]}"
                    )
        except DatabricksNotFoundError:
            findings.append(f"private access settings {pas_id} do not exist in Databricks")
    network_id = observed.get("network_id")
    if network_id:
        try:
            network = client.get_network(str(network_id))
            if network.vpc_status != "VALID" or network.error_messages:
                errors = "; ".join(m.error_message for m in network.error_messages) or "no error message"
                findings.append(f"network {network_id} is {network.vpc_status}: {errors}")
        except DatabricksNotFoundError:
            findings.append(f"network {network_id} does not exist in Databricks")
    workspace = workspace_of(client, spec, observed)
    if workspace is None:
        findings.append("the workspace does not exist in Databricks")
        return findings
    status = str(workspace.workspace_status or "")
    if status not in ("RUNNING", *TRANSITIONAL_WORKSPACE_STATES):
        findings.append(
            f"workspace {workspace.workspace_id} is {status}: {workspace.workspace_status_message or ''}".strip()
        )
    if network_id and workspace.network_id != network_id:
        findings.append(
            f"workspace {workspace.workspace_id} uses network {workspace.network_id}, not {network_id}"
        )
    if pas_id and workspace.private_access_settings_id != pas_id:
        findings.append(
            f"workspace {workspace.workspace_id} uses private access settings "
            f"{workspace.private_access_settings_id}, not {pas_id}"
        )
    return findings


def scan_workspace(key: str, deps: Deps) -> ScanResult:
    """Compare one workspace's live state with its desired and recorded state (read-only)."""
    store = deps.store
    result = ScanResult(key)
    desired, observed = store.get_desired(key), store.get_observed(key)
    if desired is None:
        result.skipped = "no desired spec"
        return result
    if desired.decommission is not None:
        # The plan leaves decommissioned workspaces out; one decommissioned after the plan is left alone too.
        result.skipped = f"decommission {desired.decommission.state} ({desired.decommission.mode})"
        return result
    result.skipped = _skip_reason(store, key, observed, deps.clock())
    if result.skipped or observed is None:
        return result
    spec = parse_spec(desired.spec)
    resources = observed.get("resources") or {}
    checks: tuple[Callable[[], list[str]], ...] = (
        lambda: check_endpoints(spec, resources, deps),
        lambda: check_prerequisites(spec, deps),
        lambda: check_dns(spec, resources, deps),
        lambda: check_databricks(spec, observed, deps.databricks(spec.databricks.account_id)),
    )
    for check in checks:
        try:
            result.findings += check()
        except DbxPrivateLinkError as exc:  # one side unreachable must not hide the other side's drift
            result.findings.append(f"could not check: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    # A failed read is not drift on its own: remediate only what was seen to be wrong.
    if result.findings and all(f.startswith("could not check") for f in result.findings):
        result.skipped = "; ".join(result.findings)
        result.findings = []
    return result
