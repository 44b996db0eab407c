"""The decommission's decisions, as pure functions of facts: what is deleted, what is kept and why, in which
order, and when there is nothing to decommission at all."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from dbx_privatelink.catalog import default_catalog
from dbx_privatelink.databricks.models import Network, PrivateAccessSettings, Workspace
from dbx_privatelink.decommission.lifecycle import summarize
from dbx_privatelink.decommission.locate import Located
from dbx_privatelink.decommission.models import (
    DecommissionPlan,
    DeletionProgress,
    PlanItem,
    ReleaseSharedOutput,
    SharedResource,
)
from dbx_privatelink.decommission.plan import (
    KIND_ORDER,
    SharedFacts,
    decide_networks,
    decide_private_access_settings,
    decide_restored_rules,
    decide_shared,
    decide_workspace,
    ordered,
)
from dbx_privatelink.decommission.rules import describe_permission, restored_permissions
from dbx_privatelink.decommission.run_models import DecommissionRun
from dbx_privatelink.decommission.standing import standing
from dbx_privatelink.decommission.users import groups_named_by, other_specs, spec_users
from dbx_privatelink.models.base import PollState
from dbx_privatelink.reconcile.shared import RESTORED_RULE_DESCRIPTION
from dbx_privatelink.shared_key import SharedKey
from dbx_privatelink.spec import parse_spec
from dbx_privatelink.store import DecommissionMarker, Desired

TOKEN = "decommission:acme"
SPEC: dict[str, Any] = {
    "workspace_key": "acme",
    "region": "us-east-1",
    "databricks": {
        "account_id": "0f5e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
        "credentials_id": "cred-1",
        "storage_configuration_id": "storage-1",
        "workspace": {"name": "acme"},
    },
    "network": {
        "vpc_id": "vpc-0a1b2c3d4e5f60718",
        "workspace_subnet_ids": ["subnet-0a1b2c3d4e5f60711", "subnet-0a1b2c3d4e5f60712"],
        "workspace_security_group_ids": ["sg-0a1b2c3d4e5f60711"],
        "endpoint_subnet_ids": ["subnet-0a1b2c3d4e5f60713"],
        "endpoint_security_group_id": "sg-0a1b2c3d4e5f60712",
    },
}
ENDPOINT_KEY = SharedKey("vpc-endpoint", "vpc-0a1b2c3d4e5f60718|com.amazonaws.us-east-1.sts")


def _desired(spec: dict[str, Any] = SPEC, marker: DecommissionMarker | None = None) -> Desired:
    return Desired(spec=spec, spec_hash="h", generation=1, decommission=marker)


def _retrofit() -> dict[str, Any]:
    spec = copy.deepcopy(SPEC)
    spec["databricks"]["workspace"] = {"existing_workspace_id": 1234}
    return spec


# --- is there anything to decommission ------------------------------------------------------------


def test_a_workspace_the_stack_does_not_manage_has_nothing_to_decommission() -> None:
    status, reason, spec = standing("acme", None, "delete")
    assert status == "not_managed" and "not managed" in reason and spec is None


@pytest.mark.parametrize(
    ("done_mode", "asked", "status"),
    [
        ("delete", "delete", "already_decommissioned"),
        ("delete", "detach", "already_decommissioned"),
        ("detach", "detach", "already_decommissioned"),
        # A detached workspace still runs and still holds its resources: delete mode may take them.
        ("detach", "delete", "ready"),
    ],
)
def test_a_finished_decommission_is_not_done_twice(done_mode: str, asked: str, status: str) -> None:
    marker = DecommissionMarker(state="decommissioned", mode=done_mode, ended_at="2026-12-05T22:00:00+00:00")
    found = standing("acme", _desired(marker=marker), asked)
    # The spec is parsed, once, for the caller that goes on with it
    assert found.status == status and (found.spec is None) == (status == "already_decommissioned")


@pytest.mark.parametrize("state", ["decommissioning", "failed"])
def test_an_unfinished_decommission_is_taken_up_again(state: str) -> None:
    marker = DecommissionMarker(state=state, mode="delete")
    found = standing("acme", _desired(marker=marker), "delete")
    assert (found.status, found.reason) == ("ready", "")
    assert found.spec is not None and found.spec.workspace_key == "acme"


def test_delete_mode_refuses_a_retrofitted_workspace_unless_asked_by_name() -> None:
    status, reason, _ = standing("acme", _desired(_retrofit()), "delete")
    assert status == "refused" and "--delete-existing-workspace" in reason and "--mode detach" in reason
    assert standing("acme", _desired(_retrofit()), "delete", delete_existing_workspace=True)[0] == "ready"
    assert standing("acme", _desired(_retrofit()), "detach")[0] == "ready"


# --- shared resources: the last one out takes them -------------------------------------------------


def _facts(**changes: Any) -> SharedFacts:
    base: dict[str, Any] = {
        "key": ENDPOINT_KEY,
        "located": Located(("vpce-0123456789abcdef0",)),
        "refs": ("acme",),
    }
    base.update(changes)
    return SharedFacts(**base)


def test_a_shared_resource_only_this_workspace_uses_is_deleted() -> None:
    item = decide_shared("acme", "delete", _facts(), TOKEN)
    assert (item.action, item.eligible, item.kind) == ("delete", True, "vpc endpoint")
    assert item.shared_key == ENDPOINT_KEY.pk and item.ids == ["vpce-0123456789abcdef0"]


@pytest.mark.parametrize(
    ("refs", "spec_users", "used_by"),
    [
        (("acme", "beta"), (), ["beta"]),  # the ledger's references
        (("acme",), ("gamma",), ["gamma"]),  # a managed spec whose reference was never recorded
        (("acme", "beta"), ("beta", "gamma"), ["beta", "gamma"]),
    ],
)
def test_a_shared_resource_another_workspace_uses_is_kept_and_says_for_whom(
    refs: tuple[str, ...], spec_users: tuple[str, ...], used_by: list[str]
) -> None:
    item = decide_shared("acme", "delete", _facts(refs=refs, spec_users=spec_users), TOKEN)
    assert item.action == "keep" and item.used_by == used_by
    assert item.reason == f"still used by {', '.join(used_by)}"
    # still eligible: when the others have left by the time the references are released, it goes
    assert item.eligible


def test_what_the_application_did_not_make_is_kept_whoever_uses_it() -> None:
    located = Located(
        ("vpce-0123456789abcdef0",), made_by_app=False, not_ours="adopted through endpoints.adopt"
    )
    item = decide_shared("acme", "delete", _facts(located=located), TOKEN)
    assert (item.action, item.eligible, item.reason) == ("keep", False, "adopted through endpoints.adopt")


def test_a_resource_another_decommission_claimed_is_left_to_it() -> None:
    item = decide_shared("acme", "delete", _facts(refs=(), deleting="decommission:beta"), TOKEN)
    assert (item.action, item.eligible) == ("keep", False) and "decommission:beta" in item.reason
    # this workspace's own claim (an interrupted run) is no obstacle
    assert decide_shared("acme", "delete", _facts(refs=(), deleting=TOKEN), TOKEN).action == "delete"


def test_a_shared_resource_already_gone_only_has_its_entry_forgotten() -> None:
    item = decide_shared("acme", "delete", _facts(located=Located()), TOKEN)
    assert (item.action, item.eligible) == ("gone", True)


def test_nothing_shared_is_deleted_while_another_workspace_s_spec_cannot_be_read() -> None:
    # Given another managed workspace whose stored spec no longer validates (what it uses is unknown)
    broken = copy.deepcopy(SPEC)
    broken["workspace_key"] = "beta"
    broken["network"]["vpc_id"] = "not-a-vpc"
    retired = DecommissionMarker(state="decommissioned", mode="detach")
    others = {"acme": _desired(), "beta": _desired(broken), "gone": _desired(broken, retired)}
    readable = other_specs(others, "acme")
    # Then it is named with its first problem (not this workspace, not a decommissioned one)...
    assert list(readable.unreadable) == ["beta"] and "network.vpc_id" in readable.unreadable["beta"]
    reason = readable.unknown_users()
    assert "beta" in reason and "re-apply it with a valid spec, or decommission it first" in reason
    # ... a shared resource only this workspace uses is kept, and not handed to the release to claim
    item = decide_shared("acme", "delete", _facts(unknown_users=reason), TOKEN)
    assert (item.action, item.eligible, item.reason) == ("keep", False, reason)
    # ... and so are the rules drift repairs added to a group only this workspace names
    rules = decide_restored_rules("delete", "sg-1", ["egress tcp 443 to 0.0.0.0/0"], [], reason)
    assert rules is not None and (rules.action, rules.reason) == ("keep", reason)
    # ... while the spec readers skip it rather than fail (none of the others could be read)
    assert readable.specs == {}
    assert spec_users(readable, default_catalog()) == {} and groups_named_by(readable) == {}
    # ... and with every spec readable there is no such reason
    all_read = other_specs({"acme": _desired()}, "beta")
    assert list(all_read.specs) == ["acme"] and all_read.unknown_users() == ""


def test_detach_keeps_everything() -> None:
    item = decide_shared("acme", "detach", _facts(refs=("acme", "beta")), TOKEN)
    assert item.action == "keep" and not item.eligible and "detach" in item.reason and "beta" in item.reason


# --- the workspace's own Databricks objects ---------------------------------------------------------


def _workspace(**changes: Any) -> Workspace:
    return Workspace.model_validate({"workspace_id": 42, "workspace_name": "acme", **changes})


def test_the_workspace_is_deleted_only_when_the_application_made_it_or_is_told_to() -> None:
    spec = parse_spec(SPEC)
    assert decide_workspace(spec, _workspace(), "delete", False).action == "delete"
    assert decide_workspace(spec, None, "delete", False).action == "gone"
    assert decide_workspace(spec, _workspace(), "detach", False).action == "keep"
    retrofit = parse_spec(_retrofit())
    kept = decide_workspace(retrofit, _workspace(), "delete", False)
    assert kept.action == "keep" and "--delete-existing-workspace" in kept.reason
    assert decide_workspace(retrofit, _workspace(), "delete", True).action == "delete"


def _network(network_id: str, name: str, workspace_id: int | None = None) -> Network:
    return Network.model_validate(
        {"network_id": network_id, "network_name": name, "workspace_id": workspace_id}
    )


def test_every_network_named_for_the_workspace_goes_unless_another_workspace_uses_it() -> None:
    networks = [
        _network("n1", "acme-network-0a1b2c3d", 42),  # the workspace's own (being deleted)
        _network("n2", "acme-network-4e5f6a7b"),  # the standby set's, or a leftover
        _network("n3", "acme-network-8c9d0e1f", 99),  # moved under another workspace by hand
        _network("n4", "beta-network-0a1b2c3d"),  # another workspace's
        _network("n5", "acme-network-0a1b2c3d-network-4e5f6a7b"),  # workspace "acme-network-0a1b2c3d"'s
    ]
    items = decide_networks("acme", "delete", networks, "n1", 42)
    assert [(i.ids, i.action) for i in items] == [(["n1"], "delete"), (["n2"], "delete"), (["n3"], "keep")]
    assert items[2].used_by == ["99"]
    gone = decide_networks("acme", "delete", [], "n9", 42)
    assert [(i.ids, i.action) for i in gone] == [(["n9"], "gone")]


def test_private_access_settings_go_unless_another_workspace_uses_them() -> None:
    settings = [
        PrivateAccessSettings.model_validate(
            {
                "private_access_settings_id": "p1",
                "private_access_settings_name": "acme-private-access",
                "region": "us-east-1",
            }
        )
    ]
    assert [
        i.action for i in decide_private_access_settings("acme", "delete", settings, "p1", {"p1": [42]}, 42)
    ] == ["delete"]
    kept = decide_private_access_settings("acme", "delete", settings, "p1", {"p1": [42, 7]}, 42)
    assert kept[0].action == "keep" and kept[0].used_by == ["7"]


# --- rules drift repairs added to the customer's groups ---------------------------------------------


def test_only_the_rules_a_drift_repair_added_are_revoked() -> None:
    permissions = [
        {
            "IpProtocol": "tcp",
            "FromPort": 443,
            "ToPort": 443,
            "IpRanges": [
                {"CidrIp": "0.0.0.0/0", "Description": RESTORED_RULE_DESCRIPTION},
                {"CidrIp": "10.0.0.0/16", "Description": "the customer's"},
            ],
        },
        {
            "IpProtocol": "udp",
            "FromPort": 0,
            "ToPort": 65535,
            "UserIdGroupPairs": [{"GroupId": "sg-1", "Description": RESTORED_RULE_DESCRIPTION}],
        },
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
    ]
    found = restored_permissions(permissions)
    assert found == [
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "udp", "FromPort": 0, "ToPort": 65535, "UserIdGroupPairs": [{"GroupId": "sg-1"}]},
    ]
    assert describe_permission("egress", found[0]) == "egress tcp 443 to 0.0.0.0/0"
    item = decide_restored_rules("delete", "sg-1", ["egress tcp 443 to 0.0.0.0/0"], [])
    assert item is not None and item.action == "delete"
    shared = decide_restored_rules("delete", "sg-1", ["x"], ["beta"])
    assert shared is not None and shared.action == "keep" and "beta" in shared.reason
    assert decide_restored_rules("delete", "sg-1", [], []) is None


# --- order and the final account ----------------------------------------------------------------------


def test_the_plan_is_in_dependency_order() -> None:
    # Databricks refuses a network a workspace uses and a registration a network uses; Route 53 Resolver
    # refuses a rule still associated and an endpoint rules forward through; EC2 a group an interface uses.
    assert KIND_ORDER.index("workspace") < KIND_ORDER.index("network") < KIND_ORDER.index("registration")
    assert KIND_ORDER.index("private access settings") < KIND_ORDER.index("registration")
    assert KIND_ORDER.index("registration") < KIND_ORDER.index("vpc endpoint")
    assert (
        KIND_ORDER.index("resolver rule association")
        < KIND_ORDER.index("resolver rule")
        < KIND_ORDER.index("resolver endpoint")
        < KIND_ORDER.index("resolver security group")
    )
    shuffled = [PlanItem(kind=k, action="delete") for k in reversed(KIND_ORDER)]
    assert [i.kind for i in ordered(shuffled)] == list(KIND_ORDER)


def test_the_summary_follows_what_the_release_and_the_steps_decided() -> None:
    # Given a plan: the workspace to delete, an endpoint kept for beta, a rule to delete, credentials kept
    rule_key = SharedKey("resolver-rule", "vpc-0d0d0d0d0d0d0d0d0|.|FORWARD")
    plan = DecommissionPlan(
        workspace_key="acme",
        mode="delete",
        items=[
            PlanItem(kind="workspace", ids=["42"], action="delete"),
            PlanItem(
                kind="vpc endpoint",
                action="keep",
                shared_key=ENDPOINT_KEY.pk,
                eligible=True,
                used_by=["beta"],
            ),
            PlanItem(kind="resolver rule", action="delete", shared_key=rule_key.pk, eligible=True),
            PlanItem(kind="credentials", action="keep"),
        ],
    )
    # When beta left before the references were released (the endpoint is claimed after all), and the rule
    # turned out associated by hand elsewhere (kept by its step)
    kept_rule = PlanItem(
        kind="resolver rule", action="keep", reason="associated by hand", shared_key=rule_key.pk
    )
    run = DecommissionRun(
        plan=plan,
        release=ReleaseSharedOutput(
            claimed=[
                SharedResource(kind="vpc-endpoint", key=ENDPOINT_KEY.key),
                SharedResource(kind="resolver-rule", key=rule_key.key),
            ]
        ),
        shared_progress={
            "dns": {"resolver_rules": DeletionProgress(poll=PollState(ready=True), kept=[kept_rule])}
        },
    )
    summary = summarize("acme", "delete", run)
    # Then the endpoint counts as deleted, the rule as kept with the step's reason
    assert [i.kind for i in summary.deleted] == ["workspace", "vpc endpoint"]
    assert [(i.kind, i.reason) for i in summary.kept] == [
        ("resolver rule", "associated by hand"),
        ("credentials", ""),
    ]
