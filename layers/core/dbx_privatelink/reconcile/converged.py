"""The short path of a re-apply: is the workspace already what its spec asks for?

Preflight decides it after its checks passed, from its own reads plus the few the recorded resources need:
the spec is the one the last run applied, that run succeeded, and every Ensure/Check step of the reconcile
would find nothing to do, decided by those steps' own predicates (the endpoint found by tag with its groups
and private DNS, the registrations available, the private access settings and the network as desired, the
workspace RUNNING on them, and plan_dns's "keep" for every DNS resource). Anything else, a transitional
state included, takes the full reconcile: the short path never skips a change or a wait.
"""

from __future__ import annotations

from typing import Any, NamedTuple, cast

from dbx_privatelink.aws.ec2 import EndpointInfo
from dbx_privatelink.databricks.client import DatabricksAccountClient
from dbx_privatelink.databricks.models import Network, Workspace
from dbx_privatelink.errors import DatabricksNotFoundError
from dbx_privatelink.models.databricks import NetworkResult, PrivateAccessSettingsResult, WorkspaceResult
from dbx_privatelink.models.endpoints import EndpointPlan, EndpointState, Registration
from dbx_privatelink.models.record import ConvergedResult, PrivateLinkResult
from dbx_privatelink.reconcile.databricks_objects import (
    _pas_matches,
    desired_networks,
    desired_private_access_settings,
    network_matches,
    workspace_of,
)
from dbx_privatelink.reconcile.dns_plan import PlannedChange, plan_dns, plan_zones
from dbx_privatelink.reconcile.preflight import OWNER_TAG_KEY, Assessment
from dbx_privatelink.spec import WorkspaceSpec
from dbx_privatelink.wiring import Deps

# What the DNS branch's Check steps wait for (and the scan holds them to): anything else takes the full path.
SETTLED_DNS_STATES = {
    "resolver endpoint": "OPERATIONAL",
    "resolver rule": "COMPLETE",
    "rule association": "COMPLETE",
}


class ReadOnce:
    """The Databricks client of one preflight, whose workspace and network reads are made once: its checks
    and the convergence check ask for the same objects moments apart (a network comes from the listing)."""

    def __init__(self, client: DatabricksAccountClient) -> None:
        self._client = client
        self._workspaces: dict[int, Workspace] = {}
        self._networks: list[Network] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_workspace(self, workspace_id: int) -> Workspace:
        if workspace_id not in self._workspaces:
            self._workspaces[workspace_id] = self._client.get_workspace(workspace_id)
        return self._workspaces[workspace_id]

    def list_networks(self) -> list[Network]:
        if self._networks is None:
            self._networks = self._client.list_networks()
        return self._networks

    def get_network(self, network_id: str) -> Network:
        listed = next((n for n in self._networks or [] if n.network_id == network_id), None)
        return listed if listed is not None else self._client.get_network(network_id)


def read_once(client: DatabricksAccountClient) -> DatabricksAccountClient:
    return cast(DatabricksAccountClient, ReadOnce(client))


class NotConverged(Exception):
    """Why the full reconcile runs (one reason: the first thing found)."""


class Convergence(NamedTuple):
    """The recorded result to keep when nothing is to be done, else why not."""

    result: ConvergedResult | None
    reason: str


def _last_run(spec: WorkspaceSpec, observed: dict[str, Any]) -> None:
    if observed.get("spec_hash") != spec.spec_hash():
        raise NotConverged("the spec differs from the one the last successful run applied")
    if observed.get("health") != "HEALTHY" or (observed.get("last_run") or {}).get("outcome") != "SUCCEEDED":
        raise NotConverged("the last run did not succeed")


def _endpoint(
    plan: EndpointPlan, listing: list[EndpointInfo], recorded: dict[str, Any], owner: str
) -> EndpointState:
    """ensure_endpoint's decision (the adopted one, else ours of the VPC and service, oldest id first) and
    the checks' (available; private DNS on for the Databricks ones) with nothing to change."""
    if plan.adopt_id:
        ours = [e for e in listing if e.vpc_endpoint_id == plan.adopt_id]
    else:
        ours = sorted(
            (
                e
                for e in listing
                if e.service_name == plan.service_name and e.tags.get(OWNER_TAG_KEY) == owner
            ),
            key=lambda e: e.vpc_endpoint_id,
        )
    if not ours or ours[0].gone:
        raise NotConverged(f"the {plan.role} endpoint does not exist")
    found = ours[0]
    if found.vpc_endpoint_id != str((recorded.get(plan.role) or {}).get("id", "")):
        raise NotConverged(f"the {plan.role} endpoint is {found.vpc_endpoint_id}, not the recorded one")
    if found.tags.get(OWNER_TAG_KEY) != owner:
        raise NotConverged(f"the {plan.role} endpoint {found.vpc_endpoint_id} is not tagged as ours")
    if plan.endpoint_type == "Interface" and set(plan.security_group_ids) - set(found.security_group_ids):
        raise NotConverged(f"the {plan.role} endpoint {found.vpc_endpoint_id} lacks a security group")
    if found.state.lower() != "available":
        raise NotConverged(f"the {plan.role} endpoint {found.vpc_endpoint_id} is {found.state}")
    if plan.is_databricks and not found.private_dns_enabled:
        raise NotConverged(f"the {plan.role} endpoint {found.vpc_endpoint_id} has private DNS off")
    return EndpointState.of(plan, found, "unchanged")


def _registrations(
    client: DatabricksAccountClient, endpoints: list[EndpointState], recorded: dict[str, Any]
) -> list[Registration]:
    regs: list[Registration] = []
    for e in endpoints:
        reg_id = str((recorded.get(e.role) or {}).get("id", ""))
        try:
            live = client.get_vpc_endpoint(reg_id) if reg_id else None
        except DatabricksNotFoundError:
            live = None
        if live is None or live.aws_vpc_endpoint_id != e.vpc_endpoint_id:
            raise NotConverged(f"the {e.role} endpoint {e.vpc_endpoint_id} has no recorded registration")
        if str(live.state or "").lower() != "available":
            raise NotConverged(f"the {e.role} registration {reg_id} is {live.state}")
        regs.append(
            Registration(
                role=e.role,
                aws_vpc_endpoint_id=e.vpc_endpoint_id,
                vpc_endpoint_id=reg_id,
                state=str(live.state),
                use_case=live.use_case,
                action="unchanged",
            )
        )
    return regs


def _databricks(
    spec: WorkspaceSpec, observed: dict[str, Any], client: DatabricksAccountClient, regs: list[Registration]
) -> tuple[PrivateAccessSettingsResult, NetworkResult, WorkspaceResult]:
    """The private access settings, network and workspace as the Ensure steps would leave them unchanged."""
    pas_id, network_id = observed.get("private_access_settings_id"), observed.get("network_id")
    workspace = workspace_of(client, spec, observed)
    if workspace is None or not pas_id or not network_id:
        raise NotConverged("the workspace or its recorded network and private access settings are missing")
    if str(workspace.workspace_status or "") != "RUNNING":
        raise NotConverged(f"workspace {workspace.workspace_id} is {workspace.workspace_status}")
    if workspace.network_id != network_id or workspace.private_access_settings_id != pas_id:
        raise NotConverged(f"workspace {workspace.workspace_id} is not on the recorded network and settings")
    try:
        pas = client.get_private_access_settings(str(pas_id))
        network = client.get_network(str(network_id))
    except DatabricksNotFoundError as exc:
        raise NotConverged(f"a recorded Databricks object is gone: {exc}") from None
    if not _pas_matches(pas, desired_private_access_settings(spec, regs)):
        raise NotConverged(f"private access settings {pas_id} differ from the spec")
    if not any(network_matches(network, c) for c in desired_networks(spec, regs)):
        raise NotConverged(f"network {network_id} differs from the spec")
    if network.vpc_status != "VALID" or network.error_messages:
        raise NotConverged(f"network {network_id} is {network.vpc_status}")
    return (
        PrivateAccessSettingsResult(private_access_settings_id=str(pas_id), action="unchanged"),
        NetworkResult(network_id=str(network_id), action="unchanged"),
        WorkspaceResult(
            workspace_id=workspace.workspace_id,
            action="unchanged",
            deployment_name=workspace.deployment_name,
            status="RUNNING",
        ),
    )


def _unchanged(value: Any) -> Any:
    """A recorded DNS result as a run that changed nothing reports it: every action unchanged, nothing
    created (the ledger records creators only)."""
    if isinstance(value, dict):
        return {
            k: ("unchanged" if k == "action" else [] if k == "created" else _unchanged(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_unchanged(v) for v in value]
    return value


def _ids(value: Any) -> set[str]:
    if isinstance(value, dict):
        return {i for v in value.values() for i in _ids(v)}
    if isinstance(value, list):
        return {i for v in value for i in _ids(v)}
    return {value} if isinstance(value, str) else set()


def _dns(
    spec: WorkspaceSpec,
    planned: list[PlannedChange] | None,
    recorded: dict[str, Any] | None,
    deps: Deps,
) -> dict[str, Any] | None:
    """plan_dns (the DNS steps' own decisions; preflight's items when it made them) keeps every resource,
    each the one the last run recorded."""
    if spec.dns is None:
        return None
    if not isinstance(recorded, dict):
        raise NotConverged("the DNS branch has no recorded result")
    known = _ids(recorded)
    items = planned if planned is not None else plan_dns(spec, deps, zones=False)
    for item in [*items, *plan_zones(spec, deps)]:
        if item.action != "keep" or item.calls:
            raise NotConverged(f"{item.kind} {item.name}: {item.action} {item.detail}".strip())
        if item.kind in SETTLED_DNS_STATES and item.state != SETTLED_DNS_STATES[item.kind]:
            raise NotConverged(f"{item.kind} {item.name} is {item.state}")
        if item.resource_id not in known:
            raise NotConverged(f"{item.kind} {item.name} is {item.resource_id}, not the recorded one")
    kept: dict[str, Any] = _unchanged({k: v for k, v in recorded.items() if k != "verification"})
    return kept


def converged(
    spec: WorkspaceSpec,
    found: Assessment,
    observed: dict[str, Any],
    client: DatabricksAccountClient,
    deps: Deps,
) -> Convergence:
    """The recorded result when the last run applied this spec, succeeded, and nothing is to be done now;
    `found` is preflight's assessment (its reads of the endpoints and the DNS decisions), `client` its
    Databricks client (read_once)."""
    resources = observed.get("resources") or {}
    try:
        _last_run(spec, observed)
        recorded_endpoints = resources.get("endpoints") or {}
        owner = deps.settings.owner_tag
        states = [
            _endpoint(p, found.listing.get(p.vpc_id, []), recorded_endpoints, owner) for p in found.endpoints
        ]
        dns = _dns(spec, found.dns_plan, resources.get("dns"), deps)
        databricks_endpoints = [e for e in states if e.is_databricks]
        regs = _registrations(client, databricks_endpoints, resources.get("registrations") or {})
        pas, network, workspace = _databricks(spec, observed, client, regs)
    except NotConverged as exc:
        return Convergence(None, str(exc))
    return Convergence(
        ConvergedResult(
            privatelink=PrivateLinkResult(
                endpoints=databricks_endpoints,
                registrations=regs,
                private_access_settings=pas,
                network=network,
                workspace=workspace,
            ),
            dns=dns,
            aws_endpoints=[e for e in states if not e.is_databricks],
        ),
        "the last run applied this spec and nothing is to be done",
    )
