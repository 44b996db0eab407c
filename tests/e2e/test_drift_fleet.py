"""The drift scan of a fleet on the local stack: each tick is an execution of the scan state machine that
plans the workspaces least recently scanned first and scans each in its own invocation. A tick that
reaches only some of them leaves the rest first in line for the next; one workspace whose scan fails is
reported in the tick's output and stops none of the others."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dbx_privatelink.drift.models import ScanDriftOutput
from dbx_privatelink.drift.outcomes import FAILED, NOT_REACHED
from dbx_privatelink_local.stack import LocalStack

from . import test_drift as _shared
from .conftest import Reconciler, _new_data_plane, spec_for
from .test_drift import Drift

pytestmark = pytest.mark.e2e

# The fixtures of test_drift.py, by name in this module (the scan schedule stays off here as well).
drift = _shared.drift
scheduled_scan_off = _shared.scheduled_scan_off


def _reconciled(stack: LocalStack, reconciler: Reconciler, request: pytest.FixtureRequest, key: str) -> str:
    spec = spec_for(stack, _new_data_plane(stack, request, standby=False), key)
    run = reconciler.run(spec)
    assert run.status == "SUCCEEDED", run.cause
    return key


@pytest.fixture
def scan_target_input(stack: LocalStack, drift: Drift) -> Iterator[Callable[[dict[str, Any]], None]]:
    """Set what the scan rule's target sends besides the event's id (as an operator would reconfigure the
    schedule); the rule's own target comes back afterwards."""
    events = stack.client("events")
    name = drift.rule("ScanStateMachine").name
    [original] = events.list_targets_by_rule(Rule=name)["Targets"]

    def override(fields: dict[str, Any]) -> None:
        template = json.dumps({**fields, "id": "<id>"}).replace('"<id>"', "<id>")
        transformer = {"InputPathsMap": {"id": "$.id"}, "InputTemplate": template}
        events.put_targets(Rule=name, Targets=[{**original, "InputTransformer": transformer}])

    yield override
    events.put_targets(Rule=name, Targets=[original])
    assert events.list_targets_by_rule(Rule=name)["Targets"] == [original]


def _reached(output: ScanDriftOutput) -> list[str]:
    return [w.workspace_key for w in output.reached]


def test_ticks_that_reach_one_workspace_each_reach_every_workspace_in_turn(
    stack: LocalStack,
    drift: Drift,
    reconciler: Reconciler,
    request: pytest.FixtureRequest,
    scan_target_input: Callable[[dict[str, Any]], None],
) -> None:
    # Given a fleet the scan has just been through, then three new workspaces it has never reached
    first = drift.scan_now()
    assert first.failed == [] and first.not_reached == []
    mine = [_reconciled(stack, reconciler, request, f"f-turn-{n}") for n in range(3)]
    assert [drift.store.get_scanned(key) for key in mine] == [None, None, None]
    # And a schedule whose ticks have no time budget and scan one workspace at once: one per tick
    scan_target_input({"budget_seconds": 0, "max_concurrency": 1})

    # When three ticks run
    ticks = [drift.scan_now() for _ in range(3)]

    # Then each tick planned the whole fleet, reached the one least recently scanned and no other
    fleet_size = first.planned + first.busy_count + 3
    for tick, key in zip(ticks, mine, strict=True):
        assert (tick.budget_seconds, tick.max_concurrency) == (0, 1)
        assert tick.planned + tick.busy_count == fleet_size
        assert _reached(tick) == [key] and tick.workspaces[0].outcome == "in sync"
        assert len(tick.not_reached) == tick.planned - 1 and tick.failed == []
    # And a workspace not reached kept its place: the second was not marked by the first tick
    assert ticks[0].workspaces[1].workspace_key == mine[1]
    assert ticks[0].workspaces[1].outcome == NOT_REACHED
    # And every one of them has been reached now, in turn
    stamps = [drift.store.get_scanned(key) for key in mine]
    assert None not in stamps and stamps == sorted(stamps)
    # And the next tick goes back to the workspace reached longest ago (by the first scan, or the first tick)
    stamps_now = {c.workspace_key: c.last_scanned_at or "" for c in drift.store.list_scan_candidates()}
    oldest = min(stamps_now, key=lambda k: (stamps_now[k], k))
    assert oldest not in mine[1:]
    assert _reached(drift.scan_now()) == [oldest]


def test_a_workspace_whose_scan_fails_is_reported_and_stops_none_of_the_others(
    stack: LocalStack, drift: Drift, reconciler: Reconciler, request: pytest.FixtureRequest
) -> None:
    # Given a healthy workspace, and one whose stored spec no longer validates (written by an older
    # version, or by hand): its scan raises SpecInvalidError, which no retry can cure
    healthy = _reconciled(stack, reconciler, request, "f-healthy")
    broken = "f-broken"
    table = drift.store._t
    table.put_item(
        Item={
            "pk": f"WS#{broken}",
            "sk": "DESIRED",
            "spec": json.dumps({"workspace_key": broken}),
            "spec_hash": "x",
            "generation": 1,
        }
    )
    table.put_item(Item={"pk": f"WS#{broken}", "sk": "OBSERVED", "state": json.dumps({"health": "HEALTHY"})})
    try:
        # When the scan ticks with the template's settings
        tick = drift.scan_now()
        # Then the broken workspace is reported failed, with the error's name, after its own item's try
        [failed] = tick.failed
        assert (failed.workspace_key, failed.outcome, failed.error) == (broken, FAILED, "SpecInvalidError")
        # And every other planned workspace was scanned, the healthy one in sync
        assert tick.not_reached == [] and len(tick.reached) == tick.planned - 1
        assert [w.outcome for w in tick.workspaces if w.workspace_key == healthy] == ["in sync"]
        # And the failed one was marked: it goes to the back of the line rather than the front
        assert drift.store.get_scanned(broken) is not None
    finally:
        for sort_key in ("DESIRED", "OBSERVED", "SCANNED"):
            table.delete_item(Key={"pk": f"WS#{broken}", "sk": sort_key})
