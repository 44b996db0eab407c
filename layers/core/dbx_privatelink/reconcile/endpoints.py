"""Steps 3-7: the VPC endpoints and their Databricks registrations.

Endpoints belong to the VPC, not to one workspace: they are found by the ownership tag, VPC and service,
so a second workspace in the same VPC reuses them. Creation carries a deterministic ClientToken, so a
retried step never creates a second endpoint.
"""

from __future__ import annotations

import hashlib

from dbx_privatelink.aws.ec2 import EndpointInfo
from dbx_privatelink.databricks.client import DatabricksAccountClient
from dbx_privatelink.errors import (
    DatabricksAlreadyExistsError,
    EndpointFailedError,
    EndpointRejectedError,
    EndpointsNotAvailableTimeoutError,
    EndpointsNotCreatedTimeoutError,
    EventualConsistencyError,
)
from dbx_privatelink.models import (
    CheckEndpointsInput,
    EnablePrivateDnsInput,
    EnablePrivateDnsOutput,
    EndpointPlan,
    EndpointState,
    EnsureEndpointInput,
    PollState,
    RegisterEndpointsInput,
    RegisterEndpointsOutput,
    Registration,
)
from dbx_privatelink.reconcile.polling import ENDPOINTS_AVAILABLE, ENDPOINTS_CREATED, poll_until_settled
from dbx_privatelink.reconcile.preflight import OWNER_TAG_KEY
from dbx_privatelink.wiring import Deps

ROLE_TAG_KEY = "dbx-privatelink:role"


def client_token(owner: str, plan: EndpointPlan, incarnation: int) -> str:
    """Same endpoint wanted -> same token; `incarnation` moves on once an earlier endpoint was deleted."""
    material = "|".join(
        [
            owner,
            plan.vpc_id,
            plan.service_name,
            ",".join(sorted(plan.subnet_ids)),
            ",".join(sorted(plan.security_group_ids)),
            ",".join(sorted(plan.route_table_ids)),
            str(incarnation),
        ]
    )
    return "dbxpl-" + hashlib.sha256(material.encode()).hexdigest()[:40]


def _state(plan: EndpointPlan, info: EndpointInfo, action: str) -> EndpointState:
    return EndpointState.model_validate(
        {
            "role": plan.role,
            "vpc_endpoint_id": info.vpc_endpoint_id,
            "service_name": info.service_name,
            "vpc_id": info.vpc_id,
            "state": info.state,
            "private_dns_enabled": info.private_dns_enabled,
            "action": action,
        }
    )


def ensure_endpoint(inp: EnsureEndpointInput, deps: Deps) -> EndpointState:
    """Adopt, find or create one VPC endpoint."""
    plan, owner = inp.plan, deps.settings.owner_tag
    ec2 = deps.ec2(inp.region)
    tags = {OWNER_TAG_KEY: owner, ROLE_TAG_KEY: plan.role, "Name": f"dbx-privatelink-{plan.role}"}
    if plan.adopt_id:
        info = ec2.get_endpoints([plan.adopt_id]).get(plan.adopt_id)
        if info is None or info.gone:
            raise EndpointFailedError(
                f"endpoint {plan.adopt_id} named in endpoints.adopt.{plan.role} is gone"
            )
        if info.tags.get(OWNER_TAG_KEY) != owner:
            ec2.tag(info.vpc_endpoint_id, {OWNER_TAG_KEY: owner, ROLE_TAG_KEY: plan.role})
            return _state(plan, info, "adopted")
        return _state(plan, info, "found")
    # One read serves both the find-first and the ClientToken's incarnation (our deleted endpoints).
    seen = [
        e
        for e in ec2.find_endpoints(plan.vpc_id, plan.service_name, include_gone=True)
        if e.tags.get(OWNER_TAG_KEY) == owner
    ]
    ours = [e for e in seen if not e.gone]
    if ours:
        found = min(ours, key=lambda e: e.vpc_endpoint_id)
        # Drift repair (ModifyVpcEndpoint RemoveSecurityGroupIds), and a standby set added to the spec.
        missing = sorted(set(plan.security_group_ids) - set(found.security_group_ids))
        if missing and plan.endpoint_type == "Interface":
            ec2.add_security_groups(found.vpc_endpoint_id, missing)
            return _state(plan, found, "updated")
        return _state(plan, found, "found")
    incarnation = sum(1 for e in seen if e.gone)
    info = ec2.create_endpoint(
        vpc_id=plan.vpc_id,
        service_name=plan.service_name,
        endpoint_type=plan.endpoint_type,
        subnet_ids=plan.subnet_ids,
        security_group_ids=plan.security_group_ids,
        route_table_ids=plan.route_table_ids,
        private_dns_enabled=plan.private_dns_at_create,
        client_token=client_token(owner, plan, incarnation),
        tags=tags,
    )
    if info.gone:
        # The token matched an endpoint that has since been deleted: the next attempt uses a new token.
        raise EventualConsistencyError(
            f"the ClientToken for {plan.role} returned {info.vpc_endpoint_id}, which is {info.state}; retrying"
        )
    return _state(plan, info, "created")


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
    found = _current(inp, deps)
    waiting = [
        f"{e.role} {e.vpc_endpoint_id} is {found[e.vpc_endpoint_id].state if e.vpc_endpoint_id in found else 'not visible yet'}"
        for e in inp.endpoints
        if e.vpc_endpoint_id not in found or found[e.vpc_endpoint_id].state.lower() == "pending"
    ]
    return poll_until_settled(
        inp.poll,
        waiting,
        settled="every endpoint has left pending",
        policy=ENDPOINTS_CREATED,
        timeout=EndpointsNotCreatedTimeoutError,
    )


def check_endpoints_available(inp: CheckEndpointsInput, deps: Deps) -> PollState:
    """Ready once AWS says available for every endpoint and Databricks says available for every registration."""
    found = _current(inp, deps)
    waiting = [
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
                waiting.append(
                    f"Databricks: {reg.role} registration {reg.vpc_endpoint_id} is {current.state}"
                )
    return poll_until_settled(
        inp.poll,
        waiting,
        settled="every endpoint and registration is available",
        policy=ENDPOINTS_AVAILABLE,
        timeout=EndpointsNotAvailableTimeoutError,
    )


def _register(client: DatabricksAccountClient, e: EndpointState, region: str, key: str) -> Registration:
    existing = client.find_vpc_endpoint_by_aws_id(e.vpc_endpoint_id, region)
    action = "found"
    if existing is None:
        try:
            existing = client.register_vpc_endpoint(
                f"dbx-privatelink-{e.role}-{e.vpc_endpoint_id}", e.vpc_endpoint_id, region
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
    regs = [_register(client, e, spec.region, spec.workspace_key) for e in inp.endpoints if e.is_databricks]
    return RegisterEndpointsOutput(registrations=regs)


def enable_private_dns(inp: EnablePrivateDnsInput, deps: Deps) -> EnablePrivateDnsOutput:
    """Turn on private DNS names on the Databricks endpoints that do not have them yet."""
    ec2 = deps.ec2(inp.region)
    wanted = [e for e in inp.endpoints if e.is_databricks]
    current = ec2.get_endpoints([e.vpc_endpoint_id for e in wanted])
    enabled, already = [], []
    for e in wanted:
        info = current.get(e.vpc_endpoint_id)
        if info is None:
            raise EventualConsistencyError(f"endpoint {e.vpc_endpoint_id} is not visible yet")
        _fail_if_gone(info, e.role)
        if info.private_dns_enabled:
            already.append(e.vpc_endpoint_id)
        else:
            ec2.set_private_dns(e.vpc_endpoint_id, True)
            enabled.append(e.vpc_endpoint_id)
    return EnablePrivateDnsOutput(enabled=enabled, already=already, changed=bool(enabled))
