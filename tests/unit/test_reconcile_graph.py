"""The reconcile's PrivateLink branch follows the dependency graph: nothing waits on what it does not need."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dbx_privatelink.reconcile.polling import SCHEDULES

ASL = Path(__file__).resolve().parents[2] / "statemachine" / "reconcile_workspace.asl.json"


def _privatelink() -> dict[str, Any]:
    return json.loads(ASL.read_text())["States"]["Reconcile"]["Branches"][0]["States"]


def _branch_of(states: dict[str, Any], parallel: str, state: str) -> int:
    for i, branch in enumerate(states[parallel]["Branches"]):
        if state in branch["States"]:
            return i
    raise AssertionError(f"{state} is in no branch of {parallel}")


def test_the_private_access_settings_and_network_do_not_wait_for_the_endpoints_to_be_available() -> None:
    states = _privatelink()
    assert states["RegisterEndpoints"]["Next"] == "PrepareWorkspace"
    network = _branch_of(states, "PrepareWorkspace", "EnsureNetwork")
    assert _branch_of(states, "PrepareWorkspace", "EnsurePrivateAccessSettings") == network
    assert _branch_of(states, "PrepareWorkspace", "CheckEndpointsAvailable") != network


def test_the_workspace_waits_for_available_endpoints_but_not_for_private_dns() -> None:
    states = _privatelink()
    # After CheckEndpointsAvailable, private DNS is turned on (one call) before the workspace's create or
    # PATCH, so its pending spell ends before Databricks validates the network; the wait for it runs beside.
    assert states["PrepareWorkspace"]["Next"] == "EnablePrivateDns"
    assert states["PrivateDnsChanged"]["Default"] == "Connect"
    assert _branch_of(states, "Connect", "CheckPrivateDnsAvailable") != _branch_of(
        states, "Connect", "EnsureWorkspace"
    )


def test_every_loop_names_a_schedule_that_exists() -> None:
    def walk(states: dict[str, Any]) -> list[dict[str, Any]]:
        found = list(states.values())
        for s in states.values():
            for b in s.get("Branches", []):
                found += walk(b["States"])
        return found

    top = json.loads(ASL.read_text())["States"]
    polls = [s["Result"] for s in walk(top) if s["Type"] == "Pass" and "attempt" in s.get("Result", {})]
    named = [p["schedule"] for p in polls if "schedule" in p]
    assert len(named) >= 7 and set(named) <= set(SCHEDULES)
