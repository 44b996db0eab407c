"""A converged workspace is cheap: a re-apply of an unchanged, healthy workspace takes the short path
(Preflight -> AlreadyConverged -> KeepConvergedResult -> VerifyDns -> RecordAndRelease), and anything
broken sends it through the full reconcile, which repairs it."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

from dbx_privatelink_local.seed import DataPlane
from dbx_privatelink_local.stack import LocalStack

from .conftest import Reconciler, Run, spec_for

MAX_TRANSITIONS = 20
MAX_LAMBDA_INVOCATIONS = 8


def _entered(run: Run) -> Counter[str]:
    return Counter(
        e["stateEnteredEventDetails"]["name"] for e in run.history if e["type"].endswith("StateEntered")
    )


def _invocations(run: Run) -> int:
    return sum(1 for e in run.history if e["type"] == "LambdaFunctionScheduled")


def _applied(
    stack: LocalStack, reconciler: Reconciler, plane: DataPlane, key: str, *, custom_dns: bool
) -> tuple[dict[str, Any], Run]:
    """The sample spec on `plane`, applied once (the full path: everything is created)."""
    assert stack.environment is not None
    spec = spec_for(stack, plane, key)
    # Off: the breakage below must reach the re-apply, not a drift repair of its own.
    spec["drift"] = {"mode": "off"}
    if custom_dns:
        spec["dns"] = copy.deepcopy(stack.environment.sample_spec(custom_dns=True)["dns"])
    first = reconciler.run(spec)
    assert first.status == "SUCCEEDED", first.cause
    assert "Reconcile" in _entered(first)
    return spec, first


def _assert_short_path(run: Run) -> None:
    assert run.status == "SUCCEEDED", run.cause
    entered = _entered(run)
    assert "KeepConvergedResult" in entered and "Reconcile" not in entered, entered
    assert sum(entered.values()) <= MAX_TRANSITIONS, entered
    assert _invocations(run) <= MAX_LAMBDA_INVOCATIONS, _invocations(run)
    assert not run.aws_mutations, run.aws_mutations
    assert not run.databricks_mutations, run.databricks_mutations


def test_a_converged_reapply_takes_the_short_path_and_a_changed_rule_the_full_one(
    stack: LocalStack, reconciler: Reconciler, data_plane: DataPlane
) -> None:
    # Given the sample workspace with custom DNS, applied
    spec, first = _applied(stack, reconciler, data_plane, "converged-dns", custom_dns=True)
    # When the same spec is applied again
    again = reconciler.run(spec)
    # Then it reads, compares and records: no Reconcile branch, no mutating call on either side
    _assert_short_path(again)
    assert "VerifyDns" in _entered(again), "the names are still proved to resolve"
    assert again.output["summary"]["workspace"]["action"] == "unchanged"
    assert (
        again.output["summary"]["dns"]["forward_rule_id"] == first.output["summary"]["dns"]["forward_rule_id"]
    )

    # When someone points the "." rule at another server
    rule_id = first.output["summary"]["dns"]["forward_rule_id"]
    r53r = stack.client("route53resolver")
    r53r.update_resolver_rule(
        ResolverRuleId=rule_id, Config={"TargetIps": [{"Ip": "10.99.0.53", "Port": 53}]}
    )
    repaired = reconciler.run(spec)
    # Then the re-apply takes the full path and puts the corporate servers back
    assert repaired.status == "SUCCEEDED", repaired.cause
    assert "Reconcile" in _entered(repaired) and "KeepConvergedResult" not in _entered(repaired)
    assert repaired.aws_mutations["UpdateResolverRule"] == 1, repaired.aws_mutations
    rule = r53r.get_resolver_rule(ResolverRuleId=rule_id)["ResolverRule"]
    assert sorted(t["Ip"] for t in rule["TargetIps"]) == sorted(stack.environment.corporate_dns_ips)  # type: ignore[union-attr]
    # And the next re-apply is short again
    _assert_short_path(reconciler.run(spec))


def test_a_deleted_endpoint_and_private_dns_turned_off_take_the_full_path_and_are_repaired(
    stack: LocalStack, reconciler: Reconciler, data_plane: DataPlane
) -> None:
    # Given the sample workspace, applied
    spec, first = _applied(stack, reconciler, data_plane, "converged-pl", custom_dns=False)
    endpoints = first.output["summary"]["endpoints"]
    # When someone deletes the sts endpoint and turns private DNS off on the workspace endpoint
    ec2 = stack.client("ec2")
    ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoints["sts"]["id"]])
    ec2.modify_vpc_endpoint(VpcEndpointId=endpoints["workspace"]["id"], PrivateDnsEnabled=False)
    repaired = reconciler.run(spec)
    # Then the re-apply takes the full path: a new sts endpoint, private DNS on again
    assert repaired.status == "SUCCEEDED", repaired.cause
    assert "Reconcile" in _entered(repaired) and "KeepConvergedResult" not in _entered(repaired)
    assert repaired.aws_mutations["CreateVpcEndpoint"] == 1, repaired.aws_mutations
    assert repaired.aws_mutations["ModifyVpcEndpoint"] == 1, repaired.aws_mutations
    summary = repaired.output["summary"]["endpoints"]
    assert summary["sts"]["id"] != endpoints["sts"]["id"] and summary["sts"]["action"] == "created"
    [workspace] = ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoints["workspace"]["id"]])["VpcEndpoints"]
    assert workspace["PrivateDnsEnabled"] is True
    # And once repaired, a re-apply is short again
    _assert_short_path(reconciler.run(spec))
