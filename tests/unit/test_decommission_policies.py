"""Least privilege of the decommission's functions, read from template.yaml: each deletes only its own kind of
resource, only the stack's (by the ownership tag where AWS supports it), and creates nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.test_template_policies import FUNCTIONS, STATE_MACHINES, TEMPLATE, _actions, _statements

OWNER = "aws:ResourceTag/dbx-privatelink:owner"
DECOMMISSION = sorted(
    n["Fn::GetAtt"][0]
    for k, n in STATE_MACHINES["DecommissionStateMachine"]["Properties"]["DefinitionSubstitutions"].items()
    if k.endswith("FunctionArn")
)
# The only AWS deletes (and rule revocations) the decommission makes, each by one function.
DELETES = {
    "ec2:DeleteVpcEndpoints": "DeleteEndpointsFunction",
    "route53resolver:DisassociateResolverRule": "DeleteRuleAssociationsFunction",
    "route53resolver:DeleteResolverRule": "DeleteResolverRulesFunction",
    "route53resolver:DeleteResolverEndpoint": "DeleteResolverEndpointsFunction",
    "ec2:DeleteSecurityGroup": "DeleteResolverSecurityGroupsFunction",
}


def _granting(function: str, action: str) -> list[dict[str, Any]]:
    return [st for st in _statements(FUNCTIONS[function]) if action in _actions(st)]


def test_the_state_machine_has_sixteen_steps_each_with_a_function_of_its_own() -> None:
    assert len(DECOMMISSION) == 16 and all(f in FUNCTIONS for f in DECOMMISSION)


@pytest.mark.parametrize(("action", "function"), sorted(DELETES.items()))
def test_each_delete_is_granted_to_one_function_and_only_on_the_stacks_resources(
    action: str, function: str
) -> None:
    holders = [name for name in FUNCTIONS if _granting(name, action)]
    assert holders == [function], f"{action} is granted to {holders}"
    for st in _granting(function, action):
        assert OWNER in st.get("Condition", {}).get("StringEquals", {}), (
            f"{function}: {action} is not tag-scoped"
        )
        assert repr(st["Resource"]) != "'*'"


def test_rules_on_the_customers_groups_are_revoked_by_one_function_and_added_by_none_of_them() -> None:
    revokers = [
        name
        for name in DECOMMISSION
        if any(
            a.startswith("ec2:RevokeSecurityGroup")
            for st in _statements(FUNCTIONS[name])
            for a in _actions(st)
        )
    ]
    assert revokers == ["RevokeRestoredRulesFunction"]


def test_no_decommission_function_creates_or_modifies_anything_on_aws() -> None:
    for name in DECOMMISSION:
        for st in _statements(FUNCTIONS[name]):
            for action in _actions(st):
                service, verb = action.split(":", 1)
                if service == "dynamodb":
                    continue  # the application's own table: the store, the ledger, the shared pace
                assert not verb.startswith(("Create", "Modify", "Authorize", "Associate", "Update", "Tag")), (
                    f"{name} may {action}"
                )


def test_a_reconcile_sees_a_running_decommission_and_never_takes_its_lease() -> None:
    [statement] = _granting("AcquireLeaseFunction", "states:DescribeExecution")
    assert any("decommission-workspace" in repr(r) for r in statement["Resource"])
    assert TEMPLATE["Outputs"]["DecommissionStateMachineArn"]["Value"] == {"Ref": "DecommissionStateMachine"}
