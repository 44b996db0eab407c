"""The decommission state machine, read from its ASL: dependency order, one failure path, bounded loops,
and a path that changes nothing when there is nothing to decommission."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ASL = json.loads((ROOT / "statemachine" / "decommission_workspace.asl.json").read_text())
STATES: dict[str, Any] = ASL["States"]


def _tasks_along(states: dict[str, Any], start: str) -> list[str]:
    """The Task states met following Next (and a Choice's first choice back out of each loop) from
    `start`, each once, in order; a Parallel contributes its branches' tasks, branch by branch."""
    seen: list[str] = []
    name: str | None = start
    visited: set[str] = set()
    while name is not None and name not in visited:
        visited.add(name)
        state = states[name]
        if state["Type"] == "Task" and name not in seen:
            seen.append(name)
        if state["Type"] == "Parallel":
            seen += [t for b in state["Branches"] for t in _tasks_along(b["States"], b["StartAt"])]
        if state["Type"] == "Choice":
            # The way forward is the choice that leaves the loop: the one that is not a Wait.
            forward = [c["Next"] for c in state["Choices"] if states[c["Next"]]["Type"] != "Wait"]
            name = forward[-1] if forward else state.get("Default")
        else:
            name = state.get("Next")
    return seen


def test_delete_mode_takes_things_down_in_dependency_order() -> None:
    assert _tasks_along(STATES, "DeleteWorkspace") == [
        "DeleteWorkspace",
        "CheckWorkspaceGone",
        "DeleteDatabricksObjects",
        "ReleaseSharedResources",
        "DeleteRegistrations",
        "DeleteEndpoints",
        "DeleteRuleAssociations",
        "DeleteResolverRules",
        "DeleteResolverEndpoints",
        "DeleteResolverSecurityGroups",
        "RevokeRestoredRules",
        "SweepOrphans",
        "FinishDecommission",
    ]


def test_both_modes_plan_and_detach_goes_from_the_plan_to_the_record_deleting_nothing() -> None:
    proceed = next(c for c in STATES["Begun"]["Choices"] if c["StringEquals"] == "proceed")
    assert proceed["Next"] == "PlanDecommission"
    assert STATES["PlanDecommission"]["Next"] == "ModeChosen"
    assert STATES["ModeChosen"]["Default"] == "FinishDecommission"
    assert [c["Next"] for c in STATES["ModeChosen"]["Choices"]] == ["DeleteWorkspace"]


def test_nothing_to_decommission_ends_after_the_first_step() -> None:
    begun = STATES["Begun"]
    assert begun["Default"] == "NothingToDecommission"
    assert STATES["NothingToDecommission"]["Type"] == "Pass" and STATES["NothingToDecommission"]["End"]


def test_every_step_of_the_top_level_reaches_the_one_failure_path() -> None:
    for name, state in STATES.items():
        if state["Type"] in ("Task", "Parallel") and name != "RecordDecommissionFailure":
            catches = {(e, c["Next"]) for c in state.get("Catch", []) for e in c["ErrorEquals"]}
            assert ("States.ALL", "RecordDecommissionFailure") in catches, name
    assert STATES["RecordDecommissionFailure"]["Next"] == "DecommissionFailed"
    assert STATES["DecommissionFailed"]["Type"] == "Fail"


def _all_states() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    found = [(n, s, STATES) for n, s in STATES.items()]
    for state in STATES.values():
        for branch in state.get("Branches", []):
            found += [(n, s, branch["States"]) for n, s in branch["States"].items()]
    return found


def test_every_wait_comes_from_a_bounded_counter_and_goes_back_to_its_step() -> None:
    for name, state, siblings in _all_states():
        if state["Type"] != "Wait":
            continue
        path = state["SecondsPath"]
        assert path.endswith((".poll.wait_seconds", ".pacing.wait_seconds")), f"{name}: {path}"
        back = siblings[state["Next"]]
        assert back["Type"] == "Task", f"{name} does not go back to a step"
        # The step reads the counter it wrote: its next answer is the loop's next state (or a timeout).
        counter = path.rsplit(".", 1)[0]  # "$.branch.endpoints.poll"
        if counter != "$.poll":  # the lease's counter is carried over by KeepLeasePoll
            assert back["ResultPath"] == counter.rsplit(".", 1)[0], name
