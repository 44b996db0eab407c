"""Orphans: Databricks objects this application made that nothing uses any more, found and removed.

- a network named for one of the stack's workspaces (`<workspace_key>-network-<digest>`, as the reconcile
  names them) that no workspace uses: left by a replacement whose old network was not retired, a run that
  stopped between creating a network and attaching it, or a decommission interrupted before it;
- a registration the application made (`dbx-privatelink-<role>-<vpce id>`) whose AWS endpoint no longer
  exists: left after an endpoint was deleted by hand and recreated (its network was replaced).

A network of a workspace whose lease another execution holds is left alone: its reconcile may have just
created it and not attached it yet. A registration a network still uses is reported, not deleted
(Databricks refuses; the network goes first). The decommission sweeps them in delete mode; the drift scan
finds and removes them every tick (only reports them while remediation is paused) and lists them in its
output.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from dbx_privatelink.decommission.databricks_objects import refused_as_in_use
from dbx_privatelink.drift.orphan_models import Orphan, OrphanReport
from dbx_privatelink.errors import (
    DatabricksNotFoundError,
    DatabricksRequestError,
    DbxPrivateLinkError,
    RetryableError,
    SpecInvalidError,
)
from dbx_privatelink.reconcile.shared import REGISTRATION_PREFIX
from dbx_privatelink.spec import parse_spec

if TYPE_CHECKING:
    from dbx_privatelink.aws.ec2 import Ec2Client
    from dbx_privatelink.databricks.client import DatabricksAccountClient
    from dbx_privatelink.decommission.models import DeletionInput
    from dbx_privatelink.drift.orphan_models import ScanOrphansInput
    from dbx_privatelink.wiring import Deps

NETWORK_NAME = re.compile(r"^(?P<key>[a-z][a-z0-9-]{2,39})-network-[0-9a-f]{8}$")
ENDPOINT_GONE = ("deleted", "deleting")
# Orphans removed and listed per sweep: the list travels in the execution's state (256 KB) and each one is an
# Account API call within one invocation's time; the rest are found again by the next sweep.
MAX_ORPHANS_PER_SWEEP = 25


def find_orphans(
    client: DatabricksAccountClient,
    ec2: Ec2Client,
    region: str,
    managed: set[str],
    busy: Callable[[str], bool],
) -> list[Orphan]:
    """The orphaned networks (first: registrations they use can only go after them) and registrations of
    one Databricks account in one region (read-only)."""
    networks = client.list_networks()
    attached = {w.network_id for w in client.list_workspaces() if w.network_id}
    orphans: list[Orphan] = []
    for n in sorted(networks, key=lambda n: n.network_name):
        match = NETWORK_NAME.match(n.network_name)
        if (
            match is None
            or match["key"] not in managed
            or n.workspace_id is not None
            or n.network_id in attached
        ):
            continue
        if busy(match["key"]):
            continue
        orphans.append(
            Orphan(
                kind="network",
                id=n.network_id,
                name=n.network_name,
                reason=f"made for {match['key']}; no workspace uses it",
            )
        )
    leaving = {o.id for o in orphans}
    used = {
        e
        for n in networks
        if n.network_id not in leaving
        for e in [*n.vpc_endpoints.rest_api, *n.vpc_endpoints.dataplane_relay]
    }
    used |= {e for p in client.list_private_access_settings() for e in p.allowed_vpc_endpoint_ids}
    registrations = [
        r
        for r in client.list_vpc_endpoints()
        if r.region == region and r.vpc_endpoint_name.startswith(REGISTRATION_PREFIX)
    ]
    live = ec2.get_endpoints(sorted({r.aws_vpc_endpoint_id for r in registrations}))
    for r in sorted(registrations, key=lambda r: r.vpc_endpoint_name):
        endpoint = live.get(r.aws_vpc_endpoint_id)
        if endpoint is not None and endpoint.state.lower() not in ENDPOINT_GONE:
            continue
        state = "does not exist" if endpoint is None else f"is {endpoint.state}"
        orphans.append(
            Orphan(
                kind="registration",
                id=r.vpc_endpoint_id,
                name=r.vpc_endpoint_name,
                reason=f"its endpoint {r.aws_vpc_endpoint_id} {state}"
                + (
                    "; a network or private access settings object still uses it"
                    if r.vpc_endpoint_id in used
                    else ""
                ),
                action="in use" if r.vpc_endpoint_id in used else "found",
            )
        )
    return orphans


def remove_orphans(client: DatabricksAccountClient, orphans: list[Orphan]) -> list[Orphan]:
    """Delete each orphan (networks first); one Databricks refuses as in use is reported as such."""
    done: list[Orphan] = []
    for orphan in orphans:
        if orphan.action == "in use":
            done.append(orphan)
            continue
        delete = client.delete_network if orphan.kind == "network" else client.delete_vpc_endpoint
        try:
            delete(orphan.id)
        except DatabricksNotFoundError:
            pass
        except DatabricksRequestError as exc:
            if not refused_as_in_use(exc):
                raise
            done.append(orphan.model_copy(update={"action": "in use", "reason": f"{orphan.reason}; {exc}"}))
            continue
        done.append(orphan.model_copy(update={"action": "deleted"}))
    return done


def _busy(deps: Deps, own_holder: str) -> Callable[[str], bool]:
    now = deps.clock()

    def busy(key: str) -> bool:
        lease = deps.store.get_lease(key)
        return lease is not None and lease.expires_at > now and lease.holder != own_holder

    return busy


def sweep_orphans(inp: DeletionInput, deps: Deps) -> OrphanReport:
    """The decommission's sweep (delete mode): the account's orphans, its own included, removed."""
    ctx = inp.context
    client = deps.databricks(ctx.account_id)
    managed = set(deps.store.list_desired())
    orphans = find_orphans(client, deps.ec2(ctx.region), ctx.region, managed, _busy(deps, inp.execution_name))
    return OrphanReport(
        orphans=remove_orphans(client, orphans[:MAX_ORPHANS_PER_SWEEP]),
        deferred=max(0, len(orphans) - MAX_ORPHANS_PER_SWEEP),
    )


def scan_orphans(inp: ScanOrphansInput, deps: Deps) -> OrphanReport:
    """The drift scan's sweep, once per tick for every Databricks account of the stack's specs: removed,
    or only reported while remediation is paused. An account that cannot be swept (its service principal
    refused, say) is reported and the others are still swept; a retryable error retries the whole step."""
    if inp.skipped:
        return OrphanReport(skipped=inp.skipped)
    desired = deps.drift_store.list_desired()
    accounts: set[str] = set()
    for d in desired.values():
        try:
            accounts.add(parse_spec(d.spec).databricks.account_id)
        except SpecInvalidError:  # a spec that no longer validates names no account to look in
            continue
    paused = deps.drift_store.get_pause().paused
    region = deps.settings.region
    report = OrphanReport(skipped="remediation is paused: orphans reported, not removed" if paused else "")
    for account in sorted(accounts):
        try:
            client = deps.databricks(account)
            found = find_orphans(client, deps.ec2(region), region, set(desired), _busy(deps, ""))
            room = max(0, MAX_ORPHANS_PER_SWEEP - len(report.orphans))
            report.deferred += max(0, len(found) - room)
            report.orphans += found[:room] if paused else remove_orphans(client, found[:room])
        except RetryableError:
            raise
        except DbxPrivateLinkError as exc:
            report.failed.append(f"account {account}: {type(exc).__name__}: {exc}")
    return report
