"""Step 1: keep the spec as pending and take the workspace's lease (fencing token = execution name)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dbx_privatelink.aws.executions import holder_running
from dbx_privatelink.errors import WorkspaceBusyError
from dbx_privatelink.models.lease import AcquireLeaseOutput
from dbx_privatelink.spec import parse_spec

if TYPE_CHECKING:
    from dbx_privatelink.models.lease import AcquireLeaseInput
    from dbx_privatelink.wiring import Deps

# Rounds of "take the lease, else mark its holder's lease dirty" before the step gives up (retried).
MARK_ATTEMPTS = 5


def acquire_lease(inp: AcquireLeaseInput, deps: Deps) -> AcquireLeaseOutput:
    """Validate the spec and keep it as pending (it becomes desired once its preflight passed), then take
    the lease, or mark the workspace dirty so that its holder reconciles this spec before it releases."""
    spec = parse_spec(inp.spec)
    key = spec.workspace_key
    generation = deps.store.put_pending(spec, inp.execution_name)
    out: dict[str, Any] = {
        "generation": generation,
        "fencing_token": inp.execution_name,
        "spec": spec.model_dump(mode="json"),
        "spec_hash": spec.spec_hash(),
    }
    for _ in range(MARK_ATTEMPTS):
        now = int(deps.clock())
        attempt = deps.store.acquire_lease(key, inp.execution_name, inp.execution_arn, now)
        if (
            not attempt.acquired
            and attempt.holder
            and not holder_running(deps.sfn, attempt.holder.holder_arn)
        ):
            attempt = deps.store.acquire_lease(
                key, inp.execution_name, inp.execution_arn, now, take_over_from=attempt.holder.holder
            )
        if attempt.acquired:
            return AcquireLeaseOutput(acquired=True, **out)
        holder = attempt.holder
        # A holder that released between our attempt and the mark would never see it: try the lease again.
        if holder is not None and deps.store.mark_dirty(key, holder.holder):
            return AcquireLeaseOutput(
                acquired=False,
                reason=f"execution {holder.holder} holds the lease; it will reconcile generation {generation} "
                "once more before it releases",
                holder=holder.holder,
                holder_arn=holder.holder_arn,
                **out,
            )
    raise WorkspaceBusyError(f"the lease of {key} kept changing hands; try again")
