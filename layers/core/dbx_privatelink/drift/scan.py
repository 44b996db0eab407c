"""The scheduled scan: live state against desired state, on both sides, for one workspace.

It catches what no event reports: Databricks-side changes (private access settings, registrations, the
network's validation, the workspace's attachment) and events CloudTrail lost. It reports only what is
definitely wrong; transitional states (an endpoint pending after a change, a workspace PROVISIONING) are
left to the next scan, so a scan never fights a reconcile that is still running.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from dbx_privatelink.errors import DatabricksNotFoundError, DbxPrivateLinkError, PreflightFailedError
from dbx_privatelink.models.base import DATABRICKS_ROLES
from dbx_privatelink.models.endpoints import Registration
from dbx_privatelink.reconcile.databricks_objects import desired_private_access_settings, workspace_of
from dbx_privatelink.reconcile.preflight import assess
from dbx_privatelink.spec import parse_spec

if TYPE_CHECKING:
    from dbx_privatelink.databricks.client import DatabricksAccountClient
    from dbx_privatelink.spec import WorkspaceSpec
    from dbx_privatelink.store import StoreClient
    from dbx_privatelink.wiring import Deps

TRANSITIONAL_ENDPOINT_STATES = {"pending", "pendingacceptance"}
TRANSITIONAL_WORKSPACE_STATES = {"PROVISIONING"}


class ScanResult:
    def __init__(self, workspace_key: str, findings: list[str] | None = None, skipped: str = "") -> None:
        self.workspace_key = workspace_key
        self.findings: list[str] = [] if findings is None else findings
        self.skipped = skipped  # why the workspace was not compared


def _skip_reason(store: StoreClient, key: str, observed: dict[str, Any] | None, now: float) -> str:
    if not observed or observed.get("health") != "HEALTHY":
        return "not reconciled successfully yet: nothing to compare with"
    lease = store.get_lease(key)
    if lease is not None and lease.expires_at > now:
        return f"reconcile {lease.holder} is running"
    return ""


class Observation(NamedTuple):
    """One resource of a workspace as read now: its kind and id (as the recorded state names it), its live
    state in a few words, and what is wrong with it ("" when nothing is). The scan reports the findings;
    `dbx-privatelink status` shows every observation, so both judge a workspace by the same reads."""

    kind: str
    resource_id: str
    live: str
    finding: str = ""


def findings_of(observations: list[Observation]) -> list[str]:
    return [o.finding for o in observations if o.finding]


def observe_endpoints(spec: WorkspaceSpec, resources: dict[str, Any], deps: Deps) -> list[Observation]:
    """Every recorded endpoint exists and is available; the Databricks ones have private DNS on."""
    recorded = {role: str(e.get("id", "")) for role, e in (resources.get("endpoints") or {}).items()}
    live = deps.ec2(spec.region).get_endpoints(sorted(i for i in recorded.values() if i))
    found: list[Observation] = []
    for role, endpoint_id in sorted(recorded.items()):
        info = live.get(endpoint_id)
        if info is None:
            found.append(
                Observation(
                    "vpc endpoint", endpoint_id, "not found", f"{role} endpoint {endpoint_id} does not exist"
                )
            )
            continue
        state = info.state + (", private DNS on" if info.private_dns_enabled else ", private DNS off")
        finding = ""
        if info.gone or (
            info.state.lower() not in TRANSITIONAL_ENDPOINT_STATES and info.state.lower() != "available"
        ):
            finding = f"{role} endpoint {endpoint_id} is {info.state}"
        elif info.state.lower() == "available" and role in DATABRICKS_ROLES and not info.private_dns_enabled:
            finding = f"{role} endpoint {endpoint_id} has private DNS off"
        found.append(Observation("vpc endpoint", endpoint_id, state, finding))
    return found


def check_endpoints(spec: WorkspaceSpec, resources: dict[str, Any], deps: Deps) -> list[str]:
    """Every recorded endpoint exists and is available; the Databricks ones have private DNS on."""
    return findings_of(observe_endpoints(spec, resources, deps))


def check_prerequisites(spec: WorkspaceSpec, deps: Deps) -> list[str]:
    """preflight.assess: VPC DNS attributes, subnets, security-group rules, endpoint services."""
    try:
        return list(assess(spec, deps, zones=False, dns=False).problems)
    except PreflightFailedError as exc:
        return [str(exc)]


def observe_dns(spec: WorkspaceSpec, resources: dict[str, Any], deps: Deps) -> list[Observation]:
    """scan_dns.observe_recorded_dns, for a workspace with a dns section whose last run recorded a DNS result.
    The Resolver comparison (the DNS steps' rules and models) is loaded here, for such a workspace, as an
    adapter is where the composition root builds it: the scan of a workspace without one never loads it."""
    if spec.dns is None or not isinstance(resources.get("dns"), dict):
        return []
    from dbx_privatelink.drift.scan_dns import observe_recorded_dns

    return observe_recorded_dns(spec, resources, deps)


def check_dns(spec: WorkspaceSpec, resources: dict[str, Any], deps: Deps) -> list[str]:
    """observe_dns's findings."""
    return list(dict.fromkeys(findings_of(observe_dns(spec, resources, deps))))


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


def observe_databricks(
    spec: WorkspaceSpec, observed: dict[str, Any], client: DatabricksAccountClient
) -> list[Observation]:
    """Registrations available, private access settings as desired, network VALID, workspace RUNNING and
    attached to the recorded network and private access settings."""
    resources = observed.get("resources") or {}
    found: list[Observation] = []
    regs = _registrations(resources)
    for reg in regs:
        try:
            state = str(client.get_vpc_endpoint(reg.vpc_endpoint_id).state or "")
        except DatabricksNotFoundError:
            found.append(
                Observation(
                    "registration",
                    reg.vpc_endpoint_id,
                    "not found",
                    f"{reg.role} registration {reg.vpc_endpoint_id} does not exist in Databricks",
                )
            )
            continue
        finding = ""
        if state.lower() not in ("available", *TRANSITIONAL_ENDPOINT_STATES):
            finding = f"{reg.role} registration {reg.vpc_endpoint_id} is {state}"
        found.append(Observation("registration", reg.vpc_endpoint_id, state, finding))
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
            wrong = [
                f"private access settings {pas_id}: {key} is {value}, desired {desired[key]}"
                for key, value in live.items()
                if value != desired[key]
            ]
            words = (
                f"{pas.private_access_level}, public access {'on' if pas.public_access_enabled else 'off'}"
            )
            found += [Observation("private access settings", str(pas_id), words, f) for f in wrong or [""]]
        except DatabricksNotFoundError:
            found.append(
                Observation(
                    "private access settings",
                    str(pas_id),
                    "not found",
                    f"private access settings {pas_id} do not exist in Databricks",
                )
            )
    network_id = observed.get("network_id")
    if network_id:
        try:
            network = client.get_network(str(network_id))
            finding = ""
            if network.vpc_status != "VALID" or network.error_messages:
                errors = "; ".join(m.error_message for m in network.error_messages) or "no error message"
                finding = f"network {network_id} is {network.vpc_status}: {errors}"
            found.append(Observation("network", str(network_id), str(network.vpc_status or ""), finding))
        except DatabricksNotFoundError:
            found.append(
                Observation(
                    "network",
                    str(network_id),
                    "not found",
                    f"network {network_id} does not exist in Databricks",
                )
            )
    workspace = workspace_of(client, spec, observed)
    if workspace is None:
        workspace_id = str(observed.get("workspace_id") or "")
        found.append(
            Observation("workspace", workspace_id, "not found", "the workspace does not exist in Databricks")
        )
        return found
    status = str(workspace.workspace_status or "")
    wrong = []
    if status not in ("RUNNING", *TRANSITIONAL_WORKSPACE_STATES):
        wrong.append(
            f"workspace {workspace.workspace_id} is {status}: {workspace.workspace_status_message or ''}".strip()
        )
    if network_id and workspace.network_id != network_id:
        wrong.append(
            f"workspace {workspace.workspace_id} uses network {workspace.network_id}, not {network_id}"
        )
    if pas_id and workspace.private_access_settings_id != pas_id:
        wrong.append(
            f"workspace {workspace.workspace_id} uses private access settings "
            f"{workspace.private_access_settings_id}, not {pas_id}"
        )
    found += [
        Observation("workspace", str(workspace.workspace_id), status, finding) for finding in wrong or [""]
    ]
    return found


def check_databricks(
    spec: WorkspaceSpec, observed: dict[str, Any], client: DatabricksAccountClient
) -> list[str]:
    """observe_databricks's findings."""
    return findings_of(observe_databricks(spec, observed, client))


def observe_workspace(
    spec: WorkspaceSpec,
    observed: dict[str, Any],
    deps: Deps,
    databricks: Callable[[], DatabricksAccountClient] | None,
) -> list[Observation]:
    """Every check of one workspace, on both sides (read-only). A check that cannot read leaves an
    observation of kind "unchecked" ("could not check: ..."): one side unreachable must not hide the
    other side's drift. Without `databricks`, the Databricks side is not read."""
    resources = observed.get("resources") or {}
    checks: list[Callable[[], list[Observation]]] = [
        lambda: observe_endpoints(spec, resources, deps),
        lambda: [Observation("prerequisites", "", "", p) for p in check_prerequisites(spec, deps)],
        lambda: observe_dns(spec, resources, deps),
    ]
    if databricks is not None:
        connect = databricks
        checks.append(lambda: observe_databricks(spec, observed, connect()))
    found: list[Observation] = []
    for check in checks:
        try:
            found += check()
        except DbxPrivateLinkError as exc:
            found.append(
                Observation(
                    "unchecked", "", "", f"could not check: {type(exc).__name__}: {str(exc).splitlines()[0]}"
                )
            )
    return found


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
    observations = observe_workspace(
        spec, observed, deps, lambda: deps.databricks(spec.databricks.account_id)
    )
    result.findings = list(dict.fromkeys(findings_of(observations)))
    # A failed read is not drift on its own: remediate only what was seen to be wrong.
    if result.findings and all(f.startswith("could not check") for f in result.findings):
        result.skipped = "; ".join(result.findings)
        result.findings = []
    return result
