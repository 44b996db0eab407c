"""Step 11: record the observed state and the run, release the lease (the failure path is record_failure.py)."""

from __future__ import annotations

from contextlib import suppress
from typing import TYPE_CHECKING, Any

from dbx_privatelink.clock import now_iso
from dbx_privatelink.drift.records import close_repaired
from dbx_privatelink.errors import DbxPrivateLinkError
from dbx_privatelink.models.record_steps import RecordAndReleaseOutput
from dbx_privatelink.reconcile.shared import observed_ids
from dbx_privatelink.shared_key import SharedKey
from dbx_privatelink.spec_sections import spec_network
from dbx_privatelink.store import RunRecord

if TYPE_CHECKING:
    from dbx_privatelink.models.record_steps import RecordAndReleaseInput
    from dbx_privatelink.spec_sections import SpecNetwork
    from dbx_privatelink.wiring import Deps

MAX_RERUNS = 2


def _summary(inp: RecordAndReleaseInput) -> dict[str, Any]:
    pl = inp.privatelink
    summary: dict[str, Any] = {
        # No state here: the endpoints' states at creation would mislead; `status` reads them live.
        "endpoints": {
            e.role: {"id": e.vpc_endpoint_id, "action": e.action} for e in [*pl.endpoints, *inp.aws_endpoints]
        },
        "registrations": {
            r.role: {"id": r.vpc_endpoint_id, "aws_id": r.aws_vpc_endpoint_id, "action": r.action}
            for r in pl.registrations
        },
    }
    if pl.private_access_settings:
        summary["private_access_settings"] = pl.private_access_settings.model_dump()
    if pl.network:
        summary["network"] = pl.network.model_dump()
    if pl.workspace:
        # The branch reaches this step only after CheckWorkspaceRunning saw RUNNING.
        summary["workspace"] = {**pl.workspace.model_dump(), "status": "RUNNING"}
    if inp.dns:
        summary["dns"] = dict(inp.dns)
    if inp.verification:
        summary.setdefault("dns", {})["verification"] = inp.verification
    return summary


def _ids_in(value: Any, key: str = "") -> list[str]:
    """Every resource id in a nested result: string values of keys ending in _id, lists under _ids."""
    if isinstance(value, dict):
        return [i for k, v in value.items() for i in _ids_in(v, str(k))]
    if isinstance(value, list):
        if key.endswith("_ids"):
            return [v for v in value if isinstance(v, str)]
        return [i for v in value for i in _ids_in(v, key)]
    if isinstance(value, str) and key.endswith("_id"):
        return [value]
    return []


def _resource_ids(inp: RecordAndReleaseInput, spec: SpecNetwork) -> list[str]:
    pl = inp.privatelink
    net = spec.network
    ids = [e.vpc_endpoint_id for e in [*pl.endpoints, *inp.aws_endpoints]]
    ids += [r.vpc_endpoint_id for r in pl.registrations]
    # Both workspace sets: a change to the standby set is drift too (the next replacement needs it).
    ids += [net.vpc_id, *net.all_workspace_subnet_ids(), *net.all_workspace_security_group_ids()]
    ids += [*net.endpoint_subnet_ids, net.endpoint_security_group_id]
    if pl.private_access_settings:
        ids.append(pl.private_access_settings.private_access_settings_id)
    if pl.network:
        ids.append(pl.network.network_id)
    if pl.workspace:
        ids.append(str(pl.workspace.workspace_id))
    ids += _ids_in(inp.dns or {})
    return ids


def _record_shared(inp: RecordAndReleaseInput, key: str, previous: list[str], deps: Deps) -> list[str]:
    """The ledger: the id of each shared resource the run ended with (and who created it), and the
    workspace's references to shared resources its spec no longer uses released. Returns the keys in use."""
    known = {SharedKey(r.kind, r.key): r.resource_id for r in inp.shared}  # type: ignore[arg-type]
    seen = observed_ids(
        [*inp.privatelink.endpoints, *inp.aws_endpoints], inp.privatelink.registrations, inp.dns
    )
    for shared_key, (resource_id, created) in sorted(seen.items()):
        if shared_key in known and known[shared_key] != resource_id:
            deps.ledger.record(shared_key, resource_id, created_by=key if created else None)
    in_use = sorted(k.pk for k in known)
    stale = [SharedKey.from_pk(pk) for pk in previous if pk not in in_use]
    if stale:
        deps.ledger.release(key, stale)
    return in_use


def record_and_release(inp: RecordAndReleaseInput, deps: Deps) -> RecordAndReleaseOutput:
    """Record what now exists, release the lease, and ask for one more pass when the workspace went dirty."""
    spec = spec_network(inp.lease.spec)
    key = spec.workspace_key
    summary = _summary(inp)
    pl = inp.privatelink
    previous = (deps.store.get_observed(key) or {}).get("shared") or []
    shared = _record_shared(inp, key, [str(p) for p in previous], deps) if inp.shared else list(previous)
    deps.store.update_observed(
        key,
        {
            "generation": inp.lease.generation,
            # The spec this run applied: a re-apply of it may take the short path (reconcile/converged.py).
            "spec_hash": inp.lease.spec_hash,
            "health": "HEALTHY",
            "last_error": None,
            "last_run": {"execution": inp.execution_name, "outcome": "SUCCEEDED", "ended_at": now_iso()},
            "resources": summary,
            "private_access_settings_id": pl.private_access_settings.private_access_settings_id
            if pl.private_access_settings
            else None,
            "network_id": pl.network.network_id if pl.network else None,
            "workspace_id": pl.workspace.workspace_id if pl.workspace else None,
            "shared": shared,
        },
    )
    deps.store.index_resources(key, _resource_ids(inp, spec))
    deps.store.add_run(
        key,
        RunRecord(
            execution_name=inp.execution_name,
            execution_arn=inp.execution_arn,
            started_at=inp.started_at,
            outcome="SUCCEEDED",
            generation=inp.lease.generation,
            summary=summary,
        ),
    )
    rerun = deps.store.release_lease(key, inp.execution_name, allow_rerun=inp.rerun_count < MAX_RERUNS)
    if not rerun:
        # The drifts this run was started for or joined are repaired (a rerun closes them at its own end).
        # Bookkeeping only: a failed write must not fail the repair, the next healthy scan closes them.
        with suppress(DbxPrivateLinkError):
            close_repaired(key, inp.execution_name, inp.execution_arn, deps.drift_store)
    return RecordAndReleaseOutput(
        rerun=rerun,
        rerun_count=inp.rerun_count + (1 if rerun else 0),
        spec=_newest_spec(key, deps) if rerun else None,
        summary=summary,
    )


def _newest_spec(key: str, deps: Deps) -> dict[str, Any] | None:
    """What the rerun reconciles: the spec waiting for its preflight, else the desired one (a drift repair
    or the same spec applied again marked the lease)."""
    pending = deps.store.get_pending(key)
    if pending is not None and pending.state == "pending":
        return pending.spec
    desired = deps.store.get_desired(key)
    return desired.spec if desired else None
