"""Desired state is last-known-good, on moto's DynamoDB: an applied spec waits as pending until its preflight
passed, a spec that failed before then is rejected with the reason and never replaces the desired one, and
a second apply while another execution holds the lease is handed to that holder, who reconciles it next."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from dbx_privatelink.drift_store import DriftStore
from dbx_privatelink.errors import LeaseLostError
from dbx_privatelink.models.base import StepError
from dbx_privatelink.models.lease import AcquireLeaseInput
from dbx_privatelink.models.record import PrivateLinkResult
from dbx_privatelink.models.record_steps import RecordAndReleaseInput, RecordFailureInput
from dbx_privatelink.reconcile.lease import acquire_lease
from dbx_privatelink.reconcile.record import record_and_release
from dbx_privatelink.reconcile.record_failure import record_failure
from dbx_privatelink.spec import parse_spec
from dbx_privatelink.store import StoreClient
from dbx_privatelink.wiring import Deps, Settings
from tests.tables import app_table
from tests.unit.test_decommission_plan import SPEC

ARN = "arn:aws:states:us-east-1:123456789012:execution:dbx-privatelink-reconcile-workspace:"
CAUSE = "Preflight found 1 problem(s); nothing was changed:\n- network.workspace_subnet_ids: subnet-0badc0ffee0badc0f"


class FakeStepFunctions:
    """DescribeExecution of the executions a test says are running."""

    def __init__(self) -> None:
        self.running: set[str] = set()

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        return {"status": "RUNNING" if executionArn in self.running else "SUCCEEDED"}


class World:
    def __init__(self, table: Any) -> None:
        self.store = StoreClient(table)
        self.sfn = FakeStepFunctions()
        self.deps = Deps(settings=Settings(region="us-east-1", owner_tag="dbx-privatelink", table_name="t"))
        self.deps.__dict__.update(store=self.store, drift_store=DriftStore(table), sfn=self.sfn)

    def start(self, name: str, spec: dict[str, Any]) -> Any:
        """An execution's AcquireLease; the execution counts as running while the test goes on."""
        self.sfn.running.add(ARN + name)
        return acquire_lease(
            AcquireLeaseInput(spec=spec, execution_name=name, execution_arn=ARN + name), self.deps
        )

    def pass_preflight(self, name: str, spec: dict[str, Any]) -> None:
        """What Preflight does once every check passed."""
        parsed = parse_spec(spec)
        self.store.put_desired(parsed, holder=name)
        self.store.clear_pending(parsed.workspace_key, parsed.spec_hash())

    def succeed(self, name: str, lease: Any, rerun_count: int = 0) -> Any:
        return record_and_release(
            RecordAndReleaseInput(
                execution_name=name,
                lease=lease,
                privatelink=PrivateLinkResult(),
                rerun_count=rerun_count,
            ),
            self.deps,
        )

    def fail(self, name: str, spec: dict[str, Any], error: str = "PreflightFailedError") -> None:
        record_failure(
            RecordFailureInput(execution_name=name, spec=spec, error=StepError(Error=error, Cause=CAUSE)),
            self.deps,
        )

    def applied(self, name: str, spec: dict[str, Any]) -> None:
        """A whole successful run of `spec`."""
        lease = self.start(name, spec)
        self.pass_preflight(name, spec)
        self.succeed(name, lease)


@pytest.fixture
def world() -> Iterator[World]:
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        yield World(session.resource("dynamodb").Table(app_table(session)))


def _typo() -> dict[str, Any]:
    spec = copy.deepcopy(SPEC)
    spec["network"]["workspace_subnet_ids"] = [
        "subnet-0badc0ffee0badc0f",
        *spec["network"]["workspace_subnet_ids"][1:],
    ]
    return spec


def test_a_spec_that_fails_preflight_leaves_the_desired_spec_and_the_health_as_they_were(
    world: World,
) -> None:
    # Given a healthy workspace reconciled from its spec
    world.applied("run-1", SPEC)
    good = world.store.get_desired("acme")
    assert good is not None
    # When a spec with a typo'd subnet id is applied and its preflight fails
    lease = world.start("run-2", _typo())
    assert lease.acquired and lease.generation == good.generation + 1
    world.fail("run-2", _typo())
    # Then the desired spec is still the good one (drift repair reconciles that), the workspace still HEALTHY
    assert world.store.get_desired("acme") == good
    observed = world.store.get_observed("acme") or {}
    assert observed["health"] == "HEALTHY" and observed.get("last_error") is None
    assert observed["last_run"]["execution"] == "run-2" and observed["last_run"]["outcome"] == "FAILED"
    # And the rejected spec waits as pending, with the error and the reason
    pending = world.store.get_pending("acme")
    assert pending is not None and pending.state == "rejected"
    assert pending.spec_hash == parse_spec(_typo()).spec_hash() and pending.execution_name == "run-2"
    assert pending.error == "PreflightFailedError" and "subnet-0badc0ffee0badc0f" in (pending.cause or "")
    # And the lease is free for the next run
    assert world.store.get_lease("acme") is None


def test_a_spec_that_passed_preflight_becomes_desired_and_is_no_longer_pending(world: World) -> None:
    # Given a healthy workspace and a changed spec applied
    world.applied("run-1", SPEC)
    changed = {**copy.deepcopy(SPEC), "drift": {"mode": "notify"}}
    world.start("run-2", changed)
    assert world.store.get_pending("acme") is not None
    assert world.store.get_desired("acme").spec_hash == parse_spec(SPEC).spec_hash()  # type: ignore[union-attr]
    # When its preflight passed
    world.pass_preflight("run-2", changed)
    # Then it is the desired spec under the next generation, and nothing is pending
    desired = world.store.get_desired("acme")
    assert desired is not None and desired.spec_hash == parse_spec(changed).spec_hash()
    assert desired.generation == 2
    assert world.store.get_pending("acme") is None


def test_a_failure_after_the_spec_became_desired_is_the_workspaces_failure(world: World) -> None:
    # Given a spec whose preflight passed
    lease = world.start("run-1", SPEC)
    assert lease.acquired
    world.pass_preflight("run-1", SPEC)
    # When a later step fails
    world.fail("run-1", SPEC, error="WorkspaceFailedError")
    # Then the spec stays desired and the workspace is FAILED with the error (nothing to reject)
    assert world.store.get_desired("acme").spec_hash == parse_spec(SPEC).spec_hash()  # type: ignore[union-attr]
    assert world.store.get_pending("acme") is None
    observed = world.store.get_observed("acme") or {}
    assert observed["health"] == "FAILED" and observed["last_error"]["error"] == "WorkspaceFailedError"


def test_only_the_lease_holder_makes_a_spec_desired(world: World) -> None:
    # Given a workspace whose lease another execution holds
    world.applied("run-1", SPEC)
    world.start("run-2", SPEC)
    changed = {**copy.deepcopy(SPEC), "drift": {"mode": "notify"}}
    # When an execution that does not hold it passes preflight with a changed spec
    with pytest.raises(LeaseLostError, match="run-3 no longer holds the lease"):
        world.pass_preflight("run-3", changed)
    # Then the desired spec did not change
    assert world.store.get_desired("acme").spec_hash == parse_spec(SPEC).spec_hash()  # type: ignore[union-attr]


def test_an_apply_under_a_held_lease_names_the_holder_who_then_reconciles_the_new_spec(world: World) -> None:
    # Given an execution holding the workspace's lease
    world.applied("run-0", SPEC)
    first = world.start("run-1", SPEC)
    assert first.acquired
    # When a changed spec is applied meanwhile
    changed = {**copy.deepcopy(SPEC), "drift": {"mode": "notify"}}
    handed = world.start("run-2", changed)
    # Then that execution hands over, naming the holder and its ARN, and the holder's lease is dirty
    assert not handed.acquired
    assert handed.holder == "run-1" and handed.holder_arn == ARN + "run-1"
    assert handed.spec_hash == parse_spec(changed).spec_hash()
    assert "run-1 holds the lease" in handed.reason
    # And the holder, when it releases, reconciles the changed spec once more
    released = world.succeed("run-1", first)
    assert released.rerun and released.spec is not None
    assert parse_spec(released.spec).spec_hash() == parse_spec(changed).spec_hash()


def test_a_rejected_pending_spec_is_not_reconciled_again_by_a_rerun(world: World) -> None:
    # Given a rejected spec and an execution of the desired spec holding the lease
    world.applied("run-0", SPEC)
    world.start("run-1", _typo())
    world.fail("run-1", _typo())
    lease = world.start("run-2", SPEC)
    # When a drift repair (the desired spec) marks the lease dirty
    assert not world.start("run-3", SPEC).acquired
    # Then the rerun reconciles the desired spec, and the rejection stays for `status` to show
    released = world.succeed("run-2", lease)
    assert released.rerun and parse_spec(released.spec or {}).spec_hash() == parse_spec(SPEC).spec_hash()
    assert world.store.get_pending("acme").state == "rejected"  # type: ignore[union-attr]


def test_a_lease_released_before_the_mark_is_taken_instead(world: World) -> None:
    # Given a holder that releases right after a second execution found the lease taken
    world.start("run-1", SPEC)
    store = world.store
    original = store.mark_dirty

    def released_first(key: str, holder: str) -> bool:
        store.release_lease(key, holder, allow_rerun=False)
        store.mark_dirty = original  # type: ignore[method-assign]
        return original(key, holder)

    store.mark_dirty = released_first  # type: ignore[method-assign]
    # When the second execution takes its turn
    out = world.start("run-2", SPEC)
    # Then it does not leave its spec to a holder that is gone: it holds the lease itself
    assert out.acquired
    assert store.get_lease("acme").holder == "run-2"  # type: ignore[union-attr]
