"""`dbx-privatelink plan SPEC`: what apply would create, change or adopt, on AWS and in Databricks.

Read-only by construction and by guard: it runs the state machine's own preflight (the same checks and the
same endpoint plan) and only Describe/Get/List calls; a boto3 hook on the session refuses any other AWS
call for the duration of the command, and the Databricks client is only asked to list and get.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from dbx_privatelink.aws.ec2 import EndpointInfo
from dbx_privatelink.databricks.client import DatabricksAccountClient
from dbx_privatelink.databricks.models import Network, PrivateAccessSettings, Workspace
from dbx_privatelink.errors import DatabricksNotFoundError, DbxPrivateLinkError, PreflightFailedError
from dbx_privatelink.models.endpoints import EndpointPlan, Registration

# The Ensure* steps' own helpers: plan compares against exactly what those steps would write.
from dbx_privatelink.reconcile.databricks_objects import (
    choose_network,
    databricks_problems,
    desired_networks,
    desired_private_access_settings,
    leftover_networks,
    network_matches,
    networks_in_use,
    workspace_of,
)
from dbx_privatelink.reconcile.dns_plan import DNS_CALLS, PlannedChange, plan_dns
from dbx_privatelink.reconcile.preflight import OWNER_TAG_KEY, assess
from dbx_privatelink.spec import WorkspaceSpec
from dbx_privatelink.store import StoreClient
from dbx_privatelink.wiring import Deps
from dbx_privatelink_cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    Runtime,
    add_common_arguments,
    add_mode_arguments,
    databricks_access,
    load_spec,
)
from dbx_privatelink_cli.output import emit_json, emit_lines, table
from dbx_privatelink_cli.specs import LoadedSpec, refuse_unsupported_regions
from dbx_privatelink_cli.stack import StackInfo, stack_for

READ_PREFIXES = ("Describe", "Get", "List", "Query", "Scan", "BatchGet")
NEW = "(new)"
# Every mutating call plan can list (a test holds the reconcile steps' writes to it).
PLANNABLE_CALLS = frozenset(
    {
        "CreateVpcEndpoint",
        "CreateTags",
        "ModifyVpcEndpoint",
        "POST vpc-endpoints",
        "POST private-access-settings",
        "PUT private-access-settings",
        "POST networks",
        "DELETE networks",
        "POST workspaces",
        "PATCH workspaces",
        *DNS_CALLS,
    }
)


class MutatingCallError(RuntimeError):
    """A read-only command tried an AWS call that could change something."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="show what apply would create, change or adopt, or destroy would delete and keep (read-only)",
        description="Run the preflight checks and compare SPEC with what exists on AWS and in Databricks; or, "
        "with --destroy WORKSPACE, show what destroy would delete and keep, and why. Makes no change. Exit "
        "status 0 when apply (or destroy) could proceed, 1 when preflight or Databricks found a problem (or "
        "destroy would be refused).",
    )
    parser.add_argument(
        "spec", metavar="SPEC", nargs="?", help="workspace spec file (YAML or JSON; - reads stdin)"
    )
    parser.add_argument(
        "--destroy", metavar="WORKSPACE", default=None, help="plan the decommission of WORKSPACE instead"
    )
    add_mode_arguments(parser)
    add_common_arguments(parser)
    parser.set_defaults(handler=run)


@contextmanager
def read_only(session: Any) -> Iterator[None]:
    """Refuse every AWS call through `session` that is not a read, for the duration of the block."""

    def refuse(model: Any, **_: Any) -> None:
        if not model.name.startswith(READ_PREFIXES):
            raise MutatingCallError(
                f"plan is read-only but tried {model.service_model.service_name}:{model.name}"
            )

    unique_id = f"dbx-privatelink-read-only-{id(refuse)}"
    session.events.register("before-call", refuse, unique_id=unique_id)
    try:
        yield
    finally:
        session.events.unregister("before-call", unique_id=unique_id)


@dataclass
class Change:
    field: str
    current: Any
    desired: Any


@dataclass
class Item:
    """One planned resource: what it is, what apply would do to it, and why."""

    kind: str
    name: str
    action: str  # keep | create | adopt | replace | update | change | register | delete | wait | error
    resource_id: str = ""
    state: str = ""
    detail: str = ""
    changes: list[Change] = field(default_factory=list)
    # The mutating calls apply makes for it: AWS operation names, "METHOD collection" for Databricks.
    calls: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "action": self.action,
            "id": self.resource_id or None,
            "state": self.state or None,
            "detail": self.detail or None,
            "changes": [{"field": c.field, "current": c.current, "desired": c.desired} for c in self.changes],
            "calls": self.calls,
        }

    @classmethod
    def of(cls, planned: PlannedChange) -> Item:
        return cls(
            planned.kind,
            planned.name,
            planned.action,
            planned.resource_id,
            planned.state,
            planned.detail,
            calls=list(planned.calls),
        )


@dataclass
class PlanReport:
    workspace_key: str
    region: str
    stack: str
    preflight_problems: list[str] = field(default_factory=list)
    aws: list[Item] = field(default_factory=list)
    dns: list[Item] = field(default_factory=list)
    databricks: list[Item] = field(default_factory=list)
    databricks_note: str = ""
    databricks_error: str = ""

    @property
    def ok(self) -> bool:
        return not self.preflight_problems and not self.databricks_error

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for item in [*self.aws, *self.dns, *self.databricks]:
            counts[item.action] = counts.get(item.action, 0) + 1
        return counts

    def calls(self) -> dict[str, dict[str, int]]:
        """The mutating calls apply would make, by side and operation."""
        return {
            "aws": dict(sorted(Counter(c for i in [*self.aws, *self.dns] for c in i.calls).items())),
            "databricks": dict(sorted(Counter(c for i in self.databricks for c in i.calls).items())),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "workspace_key": self.workspace_key,
            "region": self.region,
            "stack": self.stack,
            "ok": self.ok,
            "preflight": {"passed": not self.preflight_problems, "problems": self.preflight_problems},
            "aws": [i.to_json() for i in self.aws],
            "dns": [i.to_json() for i in self.dns],
            "databricks": {
                "planned": bool(self.databricks),
                "note": self.databricks_note or None,
                "error": self.databricks_error or None,
                "items": [i.to_json() for i in self.databricks],
            },
            "counts": self.counts(),
            "calls": self.calls(),
        }


# --- AWS -------------------------------------------------------------------------------------------------


@dataclass
class _PlannedEndpoint:
    plan: EndpointPlan
    existing: EndpointInfo | None
    item: Item


def _private_dns(plan: EndpointPlan, existing: EndpointInfo | None) -> str:
    if plan.endpoint_type == "Gateway":
        return ""
    if plan.is_databricks:
        if existing is not None and existing.private_dns_enabled:
            return "private DNS on"
        return "private DNS to turn on (after acceptance)"
    if existing is None:
        return "private DNS on at create" if plan.private_dns_at_create else ""
    return "private DNS on" if existing.private_dns_enabled else "private DNS off (left as it is)"


def _endpoint_calls(plan: EndpointPlan, existing: EndpointInfo | None, action: str) -> list[str]:
    """Mirrors ensure_endpoint and enable_private_dns: create, tag an adopted one, add the groups it lacks,
    then turn private DNS on for the Databricks endpoints that do not have it."""
    calls = {"create": ["CreateVpcEndpoint"], "adopt": ["CreateTags"]}.get(action, [])
    lacks_groups = existing is not None and bool(
        set(plan.security_group_ids) - set(existing.security_group_ids)
    )
    if action == "keep" and lacks_groups and plan.endpoint_type == "Interface" and not plan.adopt_id:
        calls.append("ModifyVpcEndpoint")
    if plan.is_databricks and (existing is None or not existing.private_dns_enabled):
        calls.append("ModifyVpcEndpoint")
    return calls


def _plan_endpoint(deps: Deps, region: str, plan: EndpointPlan) -> _PlannedEndpoint:
    """Mirrors ensure_endpoint: adopt the named one, else find ours by tag, else create."""
    ec2, owner = deps.ec2(region), deps.settings.owner_tag
    existing: EndpointInfo | None
    if plan.adopt_id:
        existing = ec2.get_endpoints([plan.adopt_id]).get(plan.adopt_id)
        action = "keep" if existing is not None and existing.tags.get(OWNER_TAG_KEY) == owner else "adopt"
    else:
        ours = [
            e
            for e in ec2.find_endpoints(plan.vpc_id, plan.service_name)
            if e.tags.get(OWNER_TAG_KEY) == owner
        ]
        existing = min(ours, key=lambda e: e.vpc_endpoint_id) if ours else None
        action = "keep" if existing is not None else "create"
    calls = _endpoint_calls(plan, existing, action)
    if action == "keep" and calls:
        action = "change"
    item = Item(
        kind="vpc endpoint",
        name=plan.role,
        action=action,
        resource_id=existing.vpc_endpoint_id if existing else NEW,
        state=existing.state if existing else "",
        detail=", ".join(x for x in (plan.service_name, _private_dns(plan, existing)) if x),
        calls=calls,
    )
    return _PlannedEndpoint(plan, existing, item)


# --- Databricks ------------------------------------------------------------------------------------------


def _fields(current: dict[str, Any], desired: dict[str, Any]) -> list[Change]:
    return [Change(k, current.get(k), v) for k, v in desired.items() if current.get(k) != v]


def _pas_fields(p: PrivateAccessSettings) -> dict[str, Any]:
    return {
        "name": p.private_access_settings_name,
        "region": p.region,
        "public_access_enabled": p.public_access_enabled,
        "private_access_level": p.private_access_level,
        "allowed_vpc_endpoint_ids": sorted(p.allowed_vpc_endpoint_ids),
    }


def _network_fields(n: Network) -> dict[str, Any]:
    return {
        "vpc_id": n.vpc_id,
        "subnet_ids": sorted(n.subnet_ids),
        "security_group_ids": sorted(n.security_group_ids),
        "rest_api": sorted(n.vpc_endpoints.rest_api),
        "dataplane_relay": sorted(n.vpc_endpoints.dataplane_relay),
    }


def _plan_registrations(
    client: DatabricksAccountClient, spec: WorkspaceSpec, endpoints: list[_PlannedEndpoint]
) -> tuple[list[Item], list[Registration]]:
    items, regs = [], []
    for ep in endpoints:
        if not ep.plan.is_databricks:
            continue
        found = (
            client.find_vpc_endpoint_by_aws_id(ep.existing.vpc_endpoint_id, spec.region)
            if ep.existing
            else None
        )
        reg_id = found.vpc_endpoint_id if found else f"(new {ep.plan.role} registration)"
        regs.append(
            Registration.model_validate(
                {
                    "role": ep.plan.role,
                    "aws_vpc_endpoint_id": ep.existing.vpc_endpoint_id if ep.existing else NEW,
                    "vpc_endpoint_id": reg_id,
                    "state": (found.state or "") if found else "",
                }
            )
        )
        aws_id = ep.existing.vpc_endpoint_id if ep.existing else "the new endpoint"
        items.append(
            Item(
                kind="vpc endpoint registration",
                name=ep.plan.role,
                action="keep" if found else "register",
                resource_id=reg_id if found else NEW,
                state=(found.state or "") if found else "",
                detail=f"of {aws_id}",
                calls=[] if found else ["POST vpc-endpoints"],
            )
        )
    return items, regs


def _plan_pas(
    client: DatabricksAccountClient, spec: WorkspaceSpec, regs: list[Registration], observed: dict[str, Any]
) -> Item:
    """Mirrors ensure_private_access_settings: the recorded id, else by name and region."""
    desired = desired_private_access_settings(spec, regs)
    current: PrivateAccessSettings | None = None
    if observed.get("private_access_settings_id"):
        try:
            current = client.get_private_access_settings(observed["private_access_settings_id"])
        except DatabricksNotFoundError:
            current = None
    if current is None:
        current = next(
            (
                p
                for p in client.list_private_access_settings()
                if p.private_access_settings_name == desired["name"] and p.region == spec.region
            ),
            None,
        )
    if current is None:
        return Item(
            "private access settings",
            desired["name"],
            "create",
            NEW,
            changes=_fields({}, desired),
            calls=["POST private-access-settings"],
        )
    changes = _fields(_pas_fields(current), desired)
    return Item(
        "private access settings",
        desired["name"],
        "replace" if changes else "keep",
        current.private_access_settings_id,
        detail="PUT replaces the whole object" if changes else "",
        changes=changes,
        calls=["PUT private-access-settings"] if changes else [],
    )


def _plan_network(
    client: DatabricksAccountClient,
    spec: WorkspaceSpec,
    regs: list[Registration],
    current_id: str | None,
    workspace: Workspace | None,
) -> Item:
    """Mirrors ensure_network: keep a network matching on either workspace set, else use a matching one by
    name, else create one on the set no attached network holds."""
    candidates = desired_networks(spec, regs)
    pending = any(r.vpc_endpoint_id.startswith("(new") for r in regs)
    current: Network | None = None
    if current_id:
        try:
            current = client.get_network(current_id)
        except DatabricksNotFoundError:
            current = None
    if current is not None and any(network_matches(current, c) for c in candidates):
        return Item(
            "network", current.network_name, "keep", current.network_id, str(current.vpc_status or "")
        )
    networks = client.list_networks()
    in_use = networks_in_use(networks, workspace)
    desired = choose_network(candidates, in_use)
    content = {k: v for k, v in desired.items() if k not in ("name", "workspace_set")}
    changes = _fields(_network_fields(current) if current is not None else {}, content)
    # The name carries a digest of the registration ids: unknown until the new ones exist.
    name = f"{spec.workspace_key}-network-<digest>" if pending else desired["name"]
    leftovers = leftover_networks(spec, networks, in_use)
    # RetireNetwork deletes the one the workspace moved away from (unless it was a leftover, deleted first).
    retired = current is not None and all(n.network_id != current.network_id for n in leftovers)
    if not pending:
        match = next(
            (n for n in networks if n.network_name == desired["name"] and network_matches(n, desired)),
            None,
        )
        if match is not None:
            return Item(
                "network",
                match.network_name,
                "adopt",
                match.network_id,
                detail="an existing matching network",
                changes=changes,
                calls=["DELETE networks"] if current is not None else [],
            )
    detail = "networks are immutable: a new one is created"
    if spec.network.standby is not None:
        on_standby = desired["workspace_set"] == "network.standby"
        detail += " on the " + (
            "network.standby set" if on_standby else "primary workspace subnets and groups"
        )
    if current is not None:
        detail += f", the workspace moves to it and {current.network_id} is deleted"
    if leftovers:
        detail += (
            "; first deletes " + ", ".join(n.network_id for n in leftovers) + " (left by an earlier run)"
        )
    calls = ["DELETE networks"] * (len(leftovers) + int(retired)) + ["POST networks"]
    return Item("network", name, "create", NEW, detail=detail, changes=changes, calls=calls)


def _plan_workspace(spec: WorkspaceSpec, workspace: Any, network: Item, pas: Item) -> Item:
    target = spec.databricks.workspace
    if workspace is None:
        return Item(
            "workspace",
            target.name or "",
            "create",
            NEW,
            detail=f"in {spec.region}, then waits for RUNNING",
            calls=["POST workspaces"],
        )
    status = str(workspace.workspace_status or "")
    wanted = {"network_id": network.resource_id, "private_access_settings_id": pas.resource_id}
    changes = [Change(k, getattr(workspace, k), v) for k, v in wanted.items() if getattr(workspace, k) != v]
    if not changes:
        return Item("workspace", workspace.workspace_name, "keep", str(workspace.workspace_id), status)
    detail = "PATCH, then waits for RUNNING"
    if status not in ("RUNNING", "FAILED"):
        detail += f" (it is {status}: the change waits until it settles)"
    return Item(
        "workspace",
        workspace.workspace_name,
        "update",
        str(workspace.workspace_id),
        status,
        detail,
        changes,
        calls=["PATCH workspaces"],
    )


def _plan_databricks(
    runtime: Runtime,
    stack: StackInfo,
    spec: WorkspaceSpec,
    endpoints: list[_PlannedEndpoint],
    report: PlanReport,
) -> None:
    access = databricks_access(
        runtime, spec.databricks.account_id, host=stack.databricks_host, secret_id=stack.databricks_secret_arn
    )
    if access.client is None:
        report.databricks_note = f"not planned: {access.source}"
        return
    report.databricks_note = f"credentials from {access.source}"
    client = access.client
    try:
        observed = (
            StoreClient(runtime.resource("dynamodb").Table(stack.table_name)).get_observed(spec.workspace_key)
            or {}
        )
        problems = databricks_problems(client, spec, observed)
        if problems:
            report.preflight_problems += problems
            report.databricks_note += "; preflight must pass before the Databricks objects are planned"
            return
        reg_items, regs = _plan_registrations(client, spec, endpoints)
        pas = _plan_pas(client, spec, regs, observed)
        workspace = workspace_of(client, spec, observed)
        network = _plan_network(
            client,
            spec,
            regs,
            (workspace.network_id if workspace else None) or observed.get("network_id"),
            workspace,
        )
        report.databricks = [*reg_items, pas, network, _plan_workspace(spec, workspace, network, pas)]
    except DbxPrivateLinkError as exc:
        report.databricks_error = f"{type(exc).__name__}: {exc}"


def build_plan(runtime: Runtime, stack: StackInfo, spec: WorkspaceSpec) -> PlanReport:
    """Preflight plus the comparison of every resource; makes only read calls."""
    report = PlanReport(spec.workspace_key, runtime.region, stack.name)
    # Unpaced: the stack-wide pace takes its slots with writes to the table, and plan makes none.
    settings = stack.settings(runtime.region)._replace(rate_pacing="off")
    deps = Deps(settings=settings, session=runtime.session)
    try:
        planned = assess(spec, deps)
    except PreflightFailedError as exc:
        lines = str(exc).splitlines()
        report.preflight_problems = [line.removeprefix("- ") for line in lines[1:]] or lines
        report.databricks_note = (
            "not planned: preflight must pass first (the endpoints and their ids come from it)"
        )
        return report
    except DbxPrivateLinkError as exc:
        raise CliError(f"preflight could not read the environment: {exc}", name=type(exc).__name__) from None
    try:
        endpoints = [_plan_endpoint(deps, spec.region, p) for p in planned.endpoints]
        report.dns = [Item.of(c) for c in plan_dns(spec, deps)]
    except DbxPrivateLinkError as exc:
        raise CliError(f"cannot read the VPC endpoints or DNS: {exc}", name=type(exc).__name__) from None
    report.aws = [e.item for e in endpoints]
    if planned.problems:
        # The AWS plan is still worth showing next to what must be fixed; Databricks waits for preflight.
        report.preflight_problems = planned.problems
        report.databricks_note = (
            "not planned: preflight must pass first (the endpoints and their ids come from it)"
        )
        return report
    _plan_databricks(runtime, stack, spec, endpoints, report)
    return report


# --- text --------------------------------------------------------------------------------------------------


def _value(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return "-" if value is None else str(value)


def _item_lines(items: list[Item]) -> list[str]:
    lines = table([[i.action, i.kind, i.name, i.resource_id, i.state, i.detail] for i in items])
    out: list[str] = []
    for item, line in zip(items, lines, strict=True):
        out.append(line)
        out += [
            f"        {c.field}: {_value(c.current)} -> {_value(c.desired)}"
            for c in item.changes
            if item.action != "create"
        ]
    return out


def render_text(report: PlanReport) -> list[str]:
    lines = [f"Plan for {report.workspace_key} in {report.region} (stack {report.stack})", ""]
    if report.preflight_problems:
        lines.append(
            f"Preflight: {len(report.preflight_problems)} problem(s); apply would stop there and change nothing:"
        )
        lines += [f"  - {p}" for p in report.preflight_problems]
    else:
        lines.append("Preflight: passed")
    if report.aws:
        lines += ["", "AWS", *_item_lines(report.aws)]
    if report.dns:
        lines += ["", "DNS (Route 53 Resolver, private hosted zones)", *_item_lines(report.dns)]
    lines += ["", "Databricks" + (f" ({report.databricks_note})" if report.databricks_note else "")]
    if report.databricks_error:
        lines.append(f"  error: {report.databricks_error}")
    lines += _item_lines(report.databricks)
    counts = report.counts()
    if counts:
        lines += ["", "Summary: " + ", ".join(f"{n} {action}" for action, n in sorted(counts.items()))]
        for side, calls in report.calls().items():
            listed = ", ".join(f"{op} x{n}" for op, n in calls.items()) if calls else "none"
            lines.append(
                f"Mutating {'AWS' if side == 'aws' else 'Databricks'} calls: {sum(calls.values())} ({listed})"
            )
    return lines


def run(args: argparse.Namespace, runtime: Runtime) -> int:
    if (args.spec is None) == (args.destroy is None):
        raise CliError(
            "plan takes a SPEC, or --destroy WORKSPACE (not both)", exit_code=EXIT_USAGE, name="UsageError"
        )
    if args.destroy is not None:
        from dbx_privatelink_cli.destroy import run_plan

        return run_plan(args, runtime)
    spec = load_spec(args.spec)
    with read_only(runtime.session):
        try:
            stack = stack_for(args, runtime)
            refuse_unsupported_regions([LoadedSpec(args.spec, spec)], stack.catalog())
            report = build_plan(runtime, stack, spec)
        except MutatingCallError as exc:
            raise CliError(str(exc), name="MutatingCallError") from None
    if args.output == "json":
        emit_json(runtime.out, report.to_json())
    else:
        emit_lines(runtime.out, render_text(report))
    return EXIT_OK if report.ok else EXIT_FAILED
