"""Steps 3-7: the VPC endpoints and their Databricks registrations.

Endpoints belong to the VPC, not to one workspace: they are found by the ownership tag, VPC and service,
so a second workspace in the same VPC reuses them. Creation carries a ClientToken derived from the VPC and
service, so a retried step, or another workspace's run creating the same endpoint at the same moment,
never creates a second one; registrations (no idempotency token in the Account API) are made under the
ledger's lock. Endpoint mutations wait for their slot on the stack's shared pace (pacing.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dbx_privatelink.errors import (
    DatabricksAlreadyExistsError,
    EndpointFailedError,
    EndpointRejectedError,
    EndpointsNotAvailableTimeoutError,
    EndpointsNotCreatedTimeoutError,
    EventualConsistencyError,
    IdempotencyConflictError,
    PrivateDnsConflictError,
)
from dbx_privatelink.models.base import PacingState
from dbx_privatelink.models.endpoint_steps import (
    EnablePrivateDnsOutput,
    EnsureEndpointOutput,
    RegisterEndpointsOutput,
)
from dbx_privatelink.models.endpoints import EndpointState, Registration
from dbx_privatelink.pacing import Ticket, pace_mutations
from dbx_privatelink.reconcile.polling import check_until_settled, schedule_for
from dbx_privatelink.reconcile.shared import OWNER_TAG_KEY, REGISTRATION_PREFIX, ROLE_TAG_KEY, endpoint_key
from dbx_privatelink.shared_key import SharedKey

if TYPE_CHECKING:
    from dbx_privatelink.aws.ec2 import Ec2Client, EndpointInfo
    from dbx_privatelink.databricks.client import DatabricksAccountClient
    from dbx_privatelink.models.base import Action, PollState
    from dbx_privatelink.models.endpoint_steps import (
        CheckEndpointsInput,
        EnablePrivateDnsInput,
        EnsureEndpointInput,
    )
    from dbx_privatelink.models.endpoints import EndpointPlan
    from dbx_privatelink.models.spec_names import RegisterEndpointsInput
    from dbx_privatelink.pacing import PaceDecision
    from dbx_privatelink.wiring import Deps


def client_token(owner: str, plan: EndpointPlan, incarnation: int) -> str:
    """One token per shared endpoint (VPC and service), whichever workspace's run creates it: two runs
    creating it at once get the same endpoint back, or (their subnets or groups differ)
    IdempotentParameterMismatch, and adopt the winner's. `incarnation` moves on once ours was deleted."""
    material = "|".join([owner, plan.vpc_id, plan.service_name, str(incarnation)])
    return "dbxpl-" + hashlib.sha256(material.encode()).hexdigest()[:40]


def _ticket(pacing: PacingState) -> Ticket | None:
    if pacing.ticket_start is None or pacing.ticket_count < 1:
        return None
    return Ticket(start=pacing.ticket_start, calls=pacing.ticket_count)


def _wait(decision: PaceDecision) -> PacingState:
    ticket = decision.ticket
    return PacingState(
        wait_seconds=decision.wait_seconds,
        ticket_start=ticket.start if ticket else None,
        ticket_count=ticket.calls if ticket else 0,
    )


def _ours(ec2: Ec2Client, plan: EndpointPlan, owner: str) -> tuple[list[EndpointInfo], int]:
    """Our endpoints of the plan's VPC and service that are not gone, oldest id first, and how many of ours
    are gone (the ClientToken's incarnation). One read serves both."""
    seen = [
        e
        for e in ec2.find_endpoints(plan.vpc_id, plan.service_name, include_gone=True)
        if e.tags.get(OWNER_TAG_KEY) == owner
    ]
    return sorted((e for e in seen if not e.gone), key=lambda e: e.vpc_endpoint_id), sum(
        1 for e in seen if e.gone
    )


def ensure_endpoint(inp: EnsureEndpointInput, deps: Deps) -> EnsureEndpointOutput:
    """Adopt, find or create one VPC endpoint; a mutation waits for its slot on the stack's shared pace of
    EC2 endpoint mutations (returned as a ticket when the queue is long: the state machine waits)."""
    plan, owner = inp.plan, deps.settings.owner_tag
    ec2 = deps.ec2(inp.region)
    pacer = deps.endpoint_pacer(inp.region)
    if plan.adopt_id:
        info = ec2.get_endpoints([plan.adopt_id]).get(plan.adopt_id)
        if info is None or info.gone:
            raise EndpointFailedError(
                f"endpoint {plan.adopt_id} named in endpoints.adopt.{plan.role} is gone"
            )
        if info.tags.get(OWNER_TAG_KEY) != owner:
            ec2.tag(info.vpc_endpoint_id, {OWNER_TAG_KEY: owner, ROLE_TAG_KEY: plan.role})
            return EnsureEndpointOutput(endpoint=EndpointState.of(plan, info, "adopted"))
        return EnsureEndpointOutput(endpoint=EndpointState.of(plan, info, "found"))
    ours, incarnation = _ours(ec2, plan, owner)
    action: Action = "found"
    if not ours:
        token = client_token(owner, plan, incarnation)
        # Workspaces sharing the VPC need this very create (same token): one of them takes a slot for it.
        decision = pace_mutations(
            pacer, 1, _ticket(inp.pacing), deferrable=not plan.is_databricks, intent=f"create#{token}"
        )
        if not decision.go:
            return EnsureEndpointOutput(pacing=_wait(decision))
        try:
            info = ec2.create_endpoint(
                vpc_id=plan.vpc_id,
                service_name=plan.service_name,
                endpoint_type=plan.endpoint_type,
                subnet_ids=plan.subnet_ids,
                security_group_ids=plan.security_group_ids,
                route_table_ids=plan.route_table_ids,
                private_dns_enabled=plan.private_dns_at_create,
                client_token=token,
                tags={OWNER_TAG_KEY: owner, ROLE_TAG_KEY: plan.role, "Name": f"dbx-privatelink-{plan.role}"},
            )
        except (IdempotencyConflictError, PrivateDnsConflictError) as exc:
            # Another execution made this VPC's endpoint a moment ago (with other subnets or groups, or its
            # private DNS name is taken): adopt it. Not visible yet: retried; someone else's: say so.
            ours, _ = _ours(ec2, plan, owner)
            if not ours:
                if isinstance(exc, PrivateDnsConflictError):
                    raise PrivateDnsConflictError(
                        f"{exc}: an endpoint to {plan.service_name} in {plan.vpc_id} that this application does "
                        f"not own holds its private DNS name; remove {plan.role} from endpoints.aws_services "
                        "(that endpoint serves it) or delete that endpoint"
                    ) from exc
                raise EventualConsistencyError(
                    f"the {plan.role} endpoint of {plan.vpc_id} was created by another execution and is not "
                    "visible yet; adopting it on the retry"
                ) from exc
        else:
            if info.gone:
                # The token matched an endpoint that has since been deleted: the next attempt uses a new token.
                raise EventualConsistencyError(
                    f"the ClientToken for {plan.role} returned {info.vpc_endpoint_id}, which is {info.state}; "
                    "retrying"
                )
            return EnsureEndpointOutput(endpoint=EndpointState.of(plan, info, "created"))
    found = ours[0]
    # Drift repair (ModifyVpcEndpoint RemoveSecurityGroupIds); another workspace's endpoint group added.
    missing = sorted(set(plan.security_group_ids) - set(found.security_group_ids))
    if missing and plan.endpoint_type == "Interface":
        decision = pace_mutations(pacer, 1, _ticket(inp.pacing), deferrable=not plan.is_databricks)
        if not decision.go:
            return EnsureEndpointOutput(pacing=_wait(decision))
        ec2.add_security_groups(found.vpc_endpoint_id, missing)
        action = "updated"
    return EnsureEndpointOutput(endpoint=EndpointState.of(plan, found, action))


def _fail_if_gone(info: EndpointInfo, role: str) -> None:
    state = info.state.lower()
    if state == "rejected":
        raise EndpointRejectedError(
            f"VPC endpoint {info.vpc_endpoint_id} ({role}) was rejected by {info.service_name}: check that "
            "Databricks enabled PrivateLink for this AWS account and that the registration's region matches"
        )
    if info.gone:
        raise EndpointFailedError(
            f"VPC endpoint {info.vpc_endpoint_id} ({role}) is {info.state}; re-run to create a new one"
        )


def _current(inp: CheckEndpointsInput, deps: Deps) -> dict[str, EndpointInfo]:
    ids = [e.vpc_endpoint_id for e in inp.endpoints]
    found = deps.ec2(inp.region).get_endpoints(ids)
    for e in inp.endpoints:
        if e.vpc_endpoint_id in found:
            _fail_if_gone(found[e.vpc_endpoint_id], e.role)
    return found


def check_endpoints_created(inp: CheckEndpointsInput, deps: Deps) -> PollState:
    """Ready once every endpoint has left `pending` (Databricks ones wait in pendingAcceptance)."""
    policy = schedule_for(inp.poll, "endpoints_created", deps.settings.poll_expected_seconds)

    def waiting() -> list[str]:
        found = _current(inp, deps)
        return [
            f"{e.role} {e.vpc_endpoint_id} is {found[e.vpc_endpoint_id].state if e.vpc_endpoint_id in found else 'not visible yet'}"
            for e in inp.endpoints
            if e.vpc_endpoint_id not in found or found[e.vpc_endpoint_id].state.lower() == "pending"
        ]

    return check_until_settled(
        inp.poll,
        waiting,
        settled="every endpoint has left pending",
        policy=policy,
        timeout=EndpointsNotCreatedTimeoutError,
        deps=deps,
    )


def check_endpoints_available(inp: CheckEndpointsInput, deps: Deps) -> PollState:
    """Ready once AWS says available for every endpoint and Databricks says available for every registration."""
    policy = schedule_for(inp.poll, "registration_available", deps.settings.poll_expected_seconds)

    def waiting() -> list[str]:
        found = _current(inp, deps)
        pending = [
            f"AWS: {e.role} {e.vpc_endpoint_id} is {found[e.vpc_endpoint_id].state if e.vpc_endpoint_id in found else 'not visible yet'}"
            for e in inp.endpoints
            if e.vpc_endpoint_id not in found or found[e.vpc_endpoint_id].state.lower() != "available"
        ]
        if inp.registrations:
            client = deps.databricks(inp.account_id)
            for reg in inp.registrations:
                current = client.get_vpc_endpoint(reg.vpc_endpoint_id)
                state = (current.state or "").lower()
                if state == "rejected":
                    raise EndpointRejectedError(
                        f"Databricks registration {reg.vpc_endpoint_id} of {reg.aws_vpc_endpoint_id} ({reg.role}) "
                        "was rejected: check that PrivateLink is enabled for the account and the endpoint's region"
                    )
                if state != "available":
                    pending.append(
                        f"Databricks: {reg.role} registration {reg.vpc_endpoint_id} is {current.state}"
                    )
        return pending

    return check_until_settled(
        inp.poll,
        waiting,
        settled="every endpoint and registration is available",
        policy=policy,
        timeout=EndpointsNotAvailableTimeoutError,
        deps=deps,
    )


def _register(
    client: DatabricksAccountClient, e: EndpointState, region: str, lock: Callable[[SharedKey], Any]
) -> Registration:
    existing = client.find_vpc_endpoint_by_aws_id(e.vpc_endpoint_id, region)
    action = "found"
    if existing is None:
        # The Account API takes no idempotency token and the endpoint is shared by every workspace of the
        # VPC: two runs registering it at once would register it twice. One registers, under the lock.
        with lock(SharedKey("registration", endpoint_key(e.vpc_id, e.service_name))):
            existing = client.find_vpc_endpoint_by_aws_id(e.vpc_endpoint_id, region)
            if existing is None:
                try:
                    existing = client.register_vpc_endpoint(
                        f"{REGISTRATION_PREFIX}{e.role}-{e.vpc_endpoint_id}", e.vpc_endpoint_id, region
                    )
                    action = "created"
                except DatabricksAlreadyExistsError:
                    # A create that committed before the connection dropped: adopt what it made.
                    existing = client.find_vpc_endpoint_by_aws_id(e.vpc_endpoint_id, region)
                    if existing is None:
                        raise
                    action = "adopted"
    return Registration.model_validate(
        {
            "role": e.role,
            "aws_vpc_endpoint_id": e.vpc_endpoint_id,
            "vpc_endpoint_id": existing.vpc_endpoint_id,
            "state": existing.state or "",
            "use_case": existing.use_case,
            "action": action,
        }
    )


def register_endpoints(inp: RegisterEndpointsInput, deps: Deps) -> RegisterEndpointsOutput:
    """Register each Databricks endpoint with the Account API, adopting an existing registration."""
    spec = inp.spec
    client = deps.databricks(spec.databricks.account_id)
    holder = inp.execution_name or f"{spec.workspace_key}-unnamed"

    def lock(key: SharedKey) -> Any:
        return deps.ledger.lock(key, holder, int(deps.clock()))

    regs = [_register(client, e, spec.region, lock) for e in inp.endpoints if e.is_databricks]
    return RegisterEndpointsOutput(registrations=regs)


def enable_private_dns(inp: EnablePrivateDnsInput, deps: Deps) -> EnablePrivateDnsOutput:
    """Turn on private DNS names on the Databricks endpoints that do not have them yet, each change on the
    stack's shared pace of EC2 endpoint mutations (a ticket back to the state machine when the queue is long)."""
    ec2 = deps.ec2(inp.region)
    wanted = [e for e in inp.endpoints if e.is_databricks]
    current = ec2.get_endpoints([e.vpc_endpoint_id for e in wanted])
    todo: list[str] = []
    already: list[str] = []
    for e in wanted:
        info = current.get(e.vpc_endpoint_id)
        if info is None:
            raise EventualConsistencyError(f"endpoint {e.vpc_endpoint_id} is not visible yet")
        _fail_if_gone(info, e.role)
        (already if info.private_dns_enabled else todo).append(e.vpc_endpoint_id)
    # Workspaces sharing the VPC share these endpoints: one of them takes the slots to turn private DNS on.
    decision = pace_mutations(
        deps.endpoint_pacer(inp.region),
        len(todo),
        _ticket(inp.pacing),
        intent="private-dns#" + ",".join(sorted(todo)),
    )
    if not decision.go:
        return EnablePrivateDnsOutput(already=already, pacing=_wait(decision))
    for endpoint_id in todo:
        ec2.set_private_dns(endpoint_id, True)
    return EnablePrivateDnsOutput(enabled=todo, already=already, changed=bool(todo))
