"""The store's decommission marker and the ledger's unclaim, on moto's DynamoDB: drift leaves a marked
workspace alone, an apply takes it back (never while a decommission runs), and the scan does not plan it."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from dbx_privatelink.drift_store import DriftStore
from dbx_privatelink.ledger import LedgerClient
from dbx_privatelink.shared_key import SharedKey
from dbx_privatelink.spec import parse_spec
from dbx_privatelink.store import LEASE_TTL_SECONDS, DecommissionMarker
from tests.tables import app_table
from tests.unit.test_decommission_plan import SPEC


@pytest.fixture
def table() -> Iterator[Any]:
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        yield session.resource("dynamodb").Table(app_table(session))


def _marker(state: str, **changes: Any) -> DecommissionMarker:
    return DecommissionMarker(state=state, mode="delete", execution_name="decommission-1", **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize("state", ["decommissioned", "failed"])
def test_an_apply_of_the_spec_takes_a_decommissioned_workspace_back(table: Any, state: str) -> None:
    # Given a workspace whose decommission ended (done, or failed half-way)
    store = DriftStore(table)
    spec = parse_spec(SPEC)
    first = store.put_desired(spec)
    assert store.set_decommission("acme", _marker(state))
    assert store.get_desired("acme").decommission.state == state  # type: ignore[union-attr]
    assert store.list_scan_candidates() == []
    # When its unchanged spec is stored again (an apply's AcquireLease)
    again = store.put_desired(spec)
    # Then it is managed again: the marker is gone, the generation is the same
    assert again.decommission is None and again.generation == first.generation
    assert store.get_desired("acme").decommission is None  # type: ignore[union-attr]
    assert [c.workspace_key for c in store.list_scan_candidates()] == ["acme"]


def test_a_running_decommission_keeps_its_marker_through_an_apply(table: Any) -> None:
    # Given a decommission running now
    store = DriftStore(table)
    spec = parse_spec(SPEC)
    store.put_desired(spec)
    running = _marker("decommissioning", expires_at=int(time.time()) + 3600)
    store.set_decommission("acme", running)
    # When an apply stores the same spec, or a changed one, meanwhile
    assert store.put_desired(spec).decommission == running
    changed = copy.deepcopy(SPEC)
    changed["drift"] = {"mode": "notify"}
    stored = store.put_desired(parse_spec(changed))
    # Then the marker stays (the lease decides who runs), the new spec is stored under the next generation
    assert stored.decommission == running and stored.generation == 2
    assert store.get_desired("acme").decommission == running  # type: ignore[union-attr]
    # And a marker left by a decommission that died (past the lease's lifetime) does not hold it forever
    store.set_decommission("acme", _marker("decommissioning", expires_at=int(time.time()) - 1))
    assert store.put_desired(parse_spec(changed)).decommission is None


def test_a_workspace_without_a_spec_cannot_be_marked(table: Any) -> None:
    assert not DriftStore(table).set_decommission("ghost", _marker("decommissioning"))
    assert not DriftStore(table).mark_decommissioning("ghost", "delete", "decommission-1", "arn:1", 0)


def test_a_started_decommission_is_marked_for_as_long_as_its_lease_lasts(table: Any) -> None:
    # Given a managed workspace
    store = DriftStore(table)
    store.put_desired(parse_spec(SPEC))
    now = int(time.time())
    # When BeginDecommission marks it
    assert store.mark_decommissioning("acme", "detach", "decommission-1", "arn:1", now)
    # Then the marker names the run, and an apply cannot take the workspace back until the lease would end
    marker = store.get_desired("acme").decommission  # type: ignore[union-attr]
    assert marker is not None
    assert (marker.state, marker.mode, marker.execution_name, marker.execution_arn) == (
        "decommissioning",
        "detach",
        "decommission-1",
        "arn:1",
    )
    assert marker.expires_at == now + LEASE_TTL_SECONDS and marker.started_at
    assert not marker.clearable(now + LEASE_TTL_SECONDS - 1) and marker.clearable(now + LEASE_TTL_SECONDS + 1)


def test_unindexing_a_workspace_leaves_the_others_on_a_shared_resource(table: Any) -> None:
    store = DriftStore(table)
    store.index_resources("acme", ["vpce-1", "sg-1"])
    store.index_resources("beta", ["vpce-1"])
    assert store.unindex_workspace("acme") == 2
    assert store.workspaces_using("vpce-1") == ["beta"] and store.workspaces_using("sg-1") == []


def test_a_claim_given_back_lets_workspaces_refer_again(table: Any) -> None:
    ledger = LedgerClient(table)
    key = SharedKey("vpc-endpoint", "vpc-1|com.amazonaws.us-east-1.sts")
    ledger.refer("acme", [key])
    ledger.release("acme", [key])
    assert ledger.claim(key, "decommission:acme")
    assert not ledger.unclaim(key, "decommission:beta")  # only the holder gives it back
    assert ledger.unclaim(key, "decommission:acme")
    assert ledger.refer("beta", [key])[key].refs == ("beta",)
