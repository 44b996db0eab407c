"""Deleting the Route 53 Resolver resources the workspace was the last to use, in the order AWS accepts:
rule associations (disassociated and awaited), then rules (refused while associated), then endpoints
(refused while rules forward through them; awaited until gone), then the security groups the application
made for them (refused while an interface uses them). A group the spec names is the customer's and stays.

Each step works from the ids the plan found and asks again about each, so a re-run after an interruption,
or a resource someone deleted by hand meanwhile, only finds less to do. Something outside the workspaces
that still uses a claimed resource (a rule associated by hand with another VPC) keeps it: the claim goes
back and the reason is reported. Calls are paced stack-wide (the Resolver's 5 requests per second).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dbx_privatelink.decommission.claims import claimed_of, keep_claimed
from dbx_privatelink.decommission.models import DeletionProgress
from dbx_privatelink.decommission.polling import RELEASED
from dbx_privatelink.errors import ResolverBusyError, ResourceInUseError, ResourcesStillInUseTimeoutError
from dbx_privatelink.models.base import PollState
from dbx_privatelink.reconcile.polling import poll_until_settled
from dbx_privatelink.reconcile.shared import OWNER_TAG_KEY, prepay_resolver_calls
from dbx_privatelink.shared_key import SharedKey

if TYPE_CHECKING:
    from dbx_privatelink.aws.resolver import ResolverClient
    from dbx_privatelink.decommission.models import DeletionInput, PlanItem
    from dbx_privatelink.wiring import Deps


def _progress(inp: DeletionInput, waiting: list[str], settled: str, kept: list[PlanItem]) -> DeletionProgress:
    return DeletionProgress(
        poll=poll_until_settled(
            inp.poll, waiting, settled=settled, policy=RELEASED, timeout=ResourcesStillInUseTimeoutError
        ),
        kept=kept,
    )


def _nothing(what: str) -> DeletionProgress:
    return DeletionProgress(poll=PollState(ready=True, wait_seconds=0, detail=f"no {what} to delete"))


def _resolver(inp: DeletionInput, deps: Deps, calls: int) -> ResolverClient:
    resolver = deps.resolver(inp.context.region)
    prepay_resolver_calls(deps, resolver, calls)
    return resolver


def delete_rule_associations(inp: DeletionInput, deps: Deps) -> DeletionProgress:
    """Disassociate the claimed rule associations; ready once none of them is left, even DELETING."""
    claimed = claimed_of(inp.claimed, "rule-association")
    if not claimed:
        return _nothing("rule association")
    resolver = _resolver(inp, deps, 2 * sum(len(c.ids) for c in claimed))
    waiting: list[str] = []
    for resource in claimed:
        vpc_id = resource.key.rsplit("|", 1)[1]
        before = len(waiting)
        for association_id in resource.ids:
            association = resolver.get_association(association_id)
            if association is None:
                continue
            where = f"association {association_id} of {association.resolver_rule_id} with {vpc_id}"
            if (
                association.status.upper() != "DELETING"
                and resolver.disassociate(association.resolver_rule_id, association.vpc_id or vpc_id) is None
            ):
                continue
            waiting.append(f"{where} is being disassociated")
        if len(waiting) == before:
            deps.ledger.forget(SharedKey("rule-association", resource.key), inp.context.token)
    return _progress(inp, waiting, "the rule associations are gone", [])


def delete_resolver_rules(inp: DeletionInput, deps: Deps) -> DeletionProgress:
    """Delete the claimed rules once nothing is associated with them; a rule someone associated with
    another VPC by hand is kept."""
    claimed = claimed_of(inp.claimed, "resolver-rule")
    if not claimed:
        return _nothing("resolver rule")
    resolver = _resolver(inp, deps, 3 * sum(len(c.ids) for c in claimed))
    waiting: list[str] = []
    kept: list[PlanItem] = []
    for resource in claimed:
        before, keep = len(waiting), ""
        for rule_id in resource.ids:
            rule = resolver.get_rule(rule_id)
            if rule is None:
                continue
            if rule.status.upper() == "DELETING":
                waiting.append(f"rule {rule_id} is DELETING")
                continue
            associations = resolver.list_associations(rule_id=rule_id)
            others = sorted(a.vpc_id for a in associations if a.status.upper() != "DELETING")
            if others:
                keep = f"rule {rule_id} is associated with {', '.join(others)} outside this workspace"
                continue
            if associations:
                waiting.append(f"rule {rule_id} has associations being removed")
                continue
            try:
                resolver.delete_rule(rule_id)
            except (ResolverBusyError, ResourceInUseError) as exc:
                waiting.append(f"rule {rule_id}: {str(exc).splitlines()[0]}")
        if keep:
            kept.append(keep_claimed(deps, inp.context.token, resource, "resolver rule", keep))
        elif len(waiting) == before:
            deps.ledger.forget(SharedKey("resolver-rule", resource.key), inp.context.token)
    return _progress(inp, waiting, "the resolver rules are deleted", kept)


def delete_resolver_endpoints(inp: DeletionInput, deps: Deps) -> DeletionProgress:
    """Delete the claimed Resolver endpoints once no rule forwards through them, and wait until they are
    gone (their interfaces hold the groups the next step deletes)."""
    claimed = claimed_of(inp.claimed, "resolver-endpoint")
    if not claimed:
        return _nothing("resolver endpoint")
    resolver = _resolver(inp, deps, 1 + 2 * sum(len(c.ids) for c in claimed))
    rules = [r for r in resolver.list_rules() if r.status.upper() != "DELETING"]
    waiting: list[str] = []
    kept: list[PlanItem] = []
    for resource in claimed:
        before, keep = len(waiting), ""
        for endpoint_id in resource.ids:
            endpoint = resolver.get_endpoint(endpoint_id)
            if endpoint is None:
                continue
            if endpoint.status.upper() == "DELETING":
                waiting.append(f"resolver endpoint {endpoint_id} is DELETING")
                continue
            through = sorted(r.resolver_rule_id for r in rules if r.resolver_endpoint_id == endpoint_id)
            if through:
                keep = f"rules {', '.join(through)} still forward through {endpoint_id}"
                continue
            try:
                deleted = resolver.delete_endpoint(endpoint_id)
            except (ResolverBusyError, ResourceInUseError) as exc:
                waiting.append(f"resolver endpoint {endpoint_id}: {str(exc).splitlines()[0]}")
                continue
            if deleted is not None and resolver.get_endpoint(endpoint_id) is not None:
                waiting.append(f"resolver endpoint {endpoint_id} is being deleted")
        if keep:
            kept.append(keep_claimed(deps, inp.context.token, resource, "resolver endpoint", keep))
        elif len(waiting) == before:
            deps.ledger.forget(SharedKey("resolver-endpoint", resource.key), inp.context.token)
    return _progress(inp, waiting, "the resolver endpoints are gone", kept)


def delete_resolver_security_groups(inp: DeletionInput, deps: Deps) -> DeletionProgress:
    """Delete the groups the application made for the claimed Resolver endpoints; refused while an
    interface still uses one (EC2 DependencyViolation), which is waited for."""
    claimed = claimed_of(inp.claimed, "resolver-security-group")
    if not claimed:
        return _nothing("resolver security group")
    resolver = deps.resolver(inp.context.region)  # EC2 calls only: nothing to pace
    owner = deps.settings.owner_tag
    waiting: list[str] = []
    kept: list[PlanItem] = []
    for resource in claimed:
        before, keep = len(waiting), ""
        for group_id in resource.ids:
            group = resolver.get_security_group(group_id)
            if group is None:
                continue
            if group.tags.get(OWNER_TAG_KEY) != owner:
                keep = f"{group_id} is not tagged {OWNER_TAG_KEY}={owner}"
                continue
            try:
                resolver.delete_security_group(group_id)
            except ResourceInUseError as exc:
                waiting.append(str(exc).splitlines()[0])
        if keep:
            kept.append(keep_claimed(deps, inp.context.token, resource, "resolver security group", keep))
        elif len(waiting) == before:
            deps.ledger.forget(SharedKey("resolver-security-group", resource.key), inp.context.token)
    return _progress(inp, waiting, "the resolver security groups are deleted", kept)
