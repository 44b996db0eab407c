"""Step 1: load the desired state and take the workspace's lease (fencing token = execution name)."""

from __future__ import annotations

from typing import Any

from dbx_privatelink.models import AcquireLeaseInput, AcquireLeaseOutput
from dbx_privatelink.spec import parse_spec
from dbx_privatelink.wiring import Deps


def _holder_running(deps: Deps, holder_arn: str) -> bool:
    if not holder_arn:
        return True  # unknown holder: trust the lease's expiry instead
    try:
        status = deps.sfn.describe_execution(executionArn=holder_arn)["status"]
    except Exception:  # an execution that cannot be described is not one to wait for
        return False
    return bool(status == "RUNNING")


def acquire_lease(inp: AcquireLeaseInput, deps: Deps) -> AcquireLeaseOutput:
    """Validate and store the spec, then take the lease or mark the workspace dirty for its holder."""
    spec = parse_spec(inp.spec)
    desired = deps.store.put_desired(spec)
    now = int(deps.clock())
    attempt = deps.store.acquire_lease(spec.workspace_key, inp.execution_name, inp.execution_arn, now)
    if not attempt.acquired and attempt.holder and not _holder_running(deps, attempt.holder.holder_arn):
        attempt = deps.store.acquire_lease(
            spec.workspace_key,
            inp.execution_name,
            inp.execution_arn,
            now,
            take_over_from=attempt.holder.holder,
        )
    out: dict[str, Any] = {
        "generation": desired.generation,
        "fencing_token": inp.execution_name,
        "spec": spec.model_dump(mode="json"),
    }
    if attempt.acquired:
        return AcquireLeaseOutput(acquired=True, **out)
    holder = attempt.holder.holder if attempt.holder else "unknown"
    deps.store.mark_dirty(spec.workspace_key, holder)
    return AcquireLeaseOutput(
        acquired=False,
        reason=f"execution {holder} holds the lease; it will reconcile generation {desired.generation} "
        "once more before it releases",
        **out,
    )
