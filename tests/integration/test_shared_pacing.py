"""The ledger of shared resources and the stack-wide pace, against moto's DynamoDB: references, claims and
locks; the GCRA schedule's slots; and Route 53 Resolver calls from two "containers" (two clients with
limiters of their own) kept under the account-wide limit only when they share the pace in the table."""

from __future__ import annotations

import contextvars
import itertools
import math
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from dbx_privatelink.aws.resolver import ResolverClient, TokenBucket
from dbx_privatelink.errors import AwsThrottledError, SharedResourceBusyError
from dbx_privatelink.ledger import LedgerClient
from dbx_privatelink.pacing import (
    INTENT_HOLD_SECONDS,
    INTENT_MARGIN_SECONDS,
    SharedPacer,
    Ticket,
    pace_mutations,
)
from dbx_privatelink.rates import EC2_ENDPOINT_MUTATIONS, ROUTE53_RESOLVER, RateBudget
from dbx_privatelink.shared_key import SharedKey
from dbx_privatelink.wiring import Deps, Settings
from dbx_privatelink_local.aws import LocalAws, LocalAwsSettings, dynamodb_patches
from dbx_privatelink_local.timescale import TimeScale
from tests.tables import app_table

REGION = "us-east-1"
STS = SharedKey("vpc-endpoint", "vpc-0123456789abcdef0|com.amazonaws.us-east-1.sts")


class Clock:
    """Time that moves only when told to (sleeping moves it)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(var, "testing")
    dynamodb_patches.install()  # DynamoDB's per-item atomicity, which moto lacks under threads
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        yield session.resource("dynamodb").Table(app_table(session))


# --- the ledger ------------------------------------------------------------------------------------------


def test_references_from_concurrent_runs_all_land(table: Any) -> None:
    ledger = LedgerClient(table)
    workspaces = [f"ws-{n}" for n in range(8)]
    threads = [threading.Thread(target=ledger.refer, args=(w, [STS])) for w in workspaces]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    record = ledger.get(STS)
    assert record is not None and set(record.refs) == set(workspaces)
    assert record.others("ws-0") == tuple(sorted(workspaces[1:]))


def test_a_claim_waits_for_the_last_reference_and_then_refuses_new_ones(table: Any) -> None:
    ledger = LedgerClient(table)
    ledger.refer("ws-a", [STS])
    ledger.refer("ws-b", [STS])
    ledger.record(STS, "vpce-0a", created_by="ws-a")
    # While any workspace refers to it, a decommission cannot claim it
    ledger.release("ws-a", [STS])
    assert not ledger.claim(STS, "destroy-a")
    # The last one to leave lets the claim through; a run that wants it now waits (retryable)
    remaining = ledger.release("ws-b", [STS])
    assert remaining[STS].refs == () and remaining[STS].resource_id == "vpce-0a"
    assert ledger.claim(STS, "destroy-b")
    with pytest.raises(SharedResourceBusyError, match="being deleted by destroy-b"):
        ledger.refer("ws-c", [STS])
    # Only the claimant forgets the entry; then the resource can be made anew
    ledger.forget(STS, "destroy-a")
    assert ledger.get(STS) is not None
    ledger.forget(STS, "destroy-b")
    assert ledger.get(STS) is None
    assert set(ledger.refer("ws-c", [STS])[STS].refs) == {"ws-c"}


def test_a_create_lock_is_held_once_and_expires(table: Any) -> None:
    ledger = LedgerClient(table)
    with ledger.lock(STS, "exec-1", now=100):
        with (
            pytest.raises(SharedResourceBusyError, match="being created by exec-1"),
            ledger.lock(STS, "exec-2", now=100),
        ):
            pass
        # A holder that died is taken over once the lock expired
        with ledger.lock(STS, "exec-3", now=100 + 10_000):
            pass
    with ledger.lock(STS, "exec-2", now=200):
        pass


# --- the pace --------------------------------------------------------------------------------------------


def test_the_schedule_allows_the_burst_then_spaces_calls_at_the_rate(table: Any) -> None:
    clock = Clock()
    pacer = SharedPacer(table, EC2_ENDPOINT_MUTATIONS, REGION, clock=clock, sleep=clock.sleep)
    starts = [pacer.reserve().start - clock.now for _ in range(6)]
    interval = 1 / 0.3
    # EC2's bucket holds 4: three go at once (one token stays back for jitter), then one per interval
    assert starts[:3] == [0, 0, 0]
    assert starts[3:] == pytest.approx([interval, 2 * interval, 3 * interval])
    # Once the schedule fell behind now, the bucket is full again
    clock.now += 100
    assert pacer.reserve().start == clock.now


def test_two_containers_share_one_schedule(table: Any) -> None:
    clock = Clock()
    a = SharedPacer(table, ROUTE53_RESOLVER, REGION, clock=clock, sleep=clock.sleep)
    b = SharedPacer(table, ROUTE53_RESOLVER, REGION, clock=clock, sleep=clock.sleep)
    starts = sorted(p.reserve().start - clock.now for p in (a, b) * 5)
    # Ten calls from two containers: a burst of four (the bucket's five less one kept back), then one
    # every 1 / (5 x 0.9) s (a tenth of the rate left for AWS's bucket to refill), never two in one slot
    step = 1 / 4.5
    assert starts == pytest.approx([0, 0, 0, 0, *(step * n for n in range(1, 7))], abs=1e-5)


def test_a_queue_longer_than_the_wait_reserves_nothing(table: Any) -> None:
    clock = Clock()
    pacer = SharedPacer(table, RateBudget("slow", rate=1.0, burst=1), REGION, clock=clock, sleep=clock.sleep)
    for _ in range(10):
        pacer.reserve()
    refused = pacer.reserve(max_ahead_s=3.0)
    assert not refused.reserved and refused.start - clock.now == pytest.approx(10.0)
    with pytest.raises(AwsThrottledError, match="queue of 10s"):
        pacer.acquire(max_wait_s=3.0, what="ListResolverRules")
    # nothing was taken: the next reservation is the eleventh slot
    assert pacer.reserve().start - clock.now == pytest.approx(10.0)


def test_a_long_queue_hands_a_ticket_to_the_state_machine_which_it_uses_later(table: Any) -> None:
    clock = Clock()
    pacer = SharedPacer(table, EC2_ENDPOINT_MUTATIONS, REGION, clock=clock, sleep=clock.sleep)
    for _ in range(8):
        pacer.reserve()
    decision = pace_mutations(pacer, 2, None)
    # Two calls behind eight (three at once, then one per 3.3 s): both conform at the seventh interval
    # (23.3 s), so the state machine waits 24 s in a Wait state; nothing slept inline
    assert not decision.go and decision.ticket is not None and decision.wait_seconds == 24
    assert clock.slept == []
    # Back after the Wait: the ticket is due, used without reserving again
    clock.now += decision.wait_seconds
    assert pace_mutations(pacer, 2, decision.ticket).go
    assert pacer.reserve().start - clock.now == pytest.approx(8 * (1 / 0.3) - 24, abs=0.01)
    # A ticket long gone stale is not honoured: the call takes a new slot, at the queue's end (near enough
    # to sleep for inline)
    stale = Ticket(start=clock.now - 1000, calls=1)
    end = pacer.reserve(max_ahead_s=0.0).start  # where a new slot would stand; nothing taken
    assert end > clock.now
    assert pace_mutations(pacer, 1, stale).go
    assert clock.now == pytest.approx(end, abs=0.01)


def test_deferrable_mutations_wait_for_the_critical_ones_then_queue_once(table: Any) -> None:
    clock = Clock()
    pacer = SharedPacer(table, EC2_ENDPOINT_MUTATIONS, REGION, clock=clock, sleep=clock.sleep)
    # Given a queue of Databricks endpoint creates (the critical path) far longer than two intervals
    for _ in range(10):
        pacer.reserve()
    queue = pacer.reserve(max_ahead_s=0.0).start - clock.now
    # When an AWS service endpoint's create asks, then it takes no slot and comes back about when the
    # critical calls will have gone, with no ticket
    deferred = pace_mutations(pacer, 1, None, deferrable=True)
    assert not deferred.go and deferred.ticket is None
    assert queue * 0.85 - 1 <= deferred.wait_seconds <= queue + 1
    # and a critical mutation asking after it still gets the next slot, not one behind it
    critical = pace_mutations(pacer, 1, None)
    assert critical.ticket is not None and critical.ticket.start - clock.now == pytest.approx(queue, abs=0.01)
    # When the critical calls have gone, deferrable ones join the end with tickets, however long the queue
    # of deferrable ones grows (no coming back again and again)
    clock.now += queue + 1 / 0.3
    tickets = [pace_mutations(pacer, 1, None, deferrable=True) for _ in range(6)]
    starts = [t.ticket.start for t in tickets if t.ticket is not None]
    assert len(starts) + sum(1 for t in tickets if t.go) == 6
    assert all(b - a == pytest.approx(1 / 0.3, abs=0.01) for a, b in itertools.pairwise(starts))


def test_resolver_calls_of_two_containers_stay_under_the_account_limit_only_when_paced_together() -> None:
    # Given the local stack's Route 53 Resolver limit (5 requests per emulated second, account-wide) at a
    # time factor of 0.5 (10 per wall second), and two containers each making 20 calls at once
    scale = TimeScale(0.5)
    with LocalAws(LocalAwsSettings(aws_rate_limits=True, cloudtrail_delay=3600), time_scale=scale) as aws:
        session = boto3.session.Session(
            region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        name = app_table(session, endpoint_url=aws.endpoint_url)
        table = session.resource("dynamodb", endpoint_url=aws.endpoint_url).Table(name)

        def client(limiter: Any) -> ResolverClient:
            return ResolverClient(
                session.client("route53resolver", endpoint_url=aws.endpoint_url),
                session.client("ec2", endpoint_url=aws.endpoint_url),
                limiter=limiter,
                max_wait_s=60.0,
            )

        def burst(clients: list[ResolverClient]) -> list[Exception]:
            errors: list[Exception] = []

            def calls(c: ResolverClient) -> None:
                for _ in range(20):
                    try:
                        c.list_rules()
                    except Exception as exc:  # counted, not raised: the point is how many there are
                        errors.append(exc)

            threads = [threading.Thread(target=calls, args=(c,)) for c in clients]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=120)
            return errors

        # When each container keeps its own bucket at the account's rate, they exceed it together
        own = [client(TokenBucket(5.0 / scale.factor, 5.0)) for _ in range(2)]
        throttled = burst(own)
        own_refused = aws.rate_limits.refused().get("route53resolver:ListResolverRules", 0)
        assert own_refused >= 5
        assert all(isinstance(e, AwsThrottledError) for e in throttled)
        aws.rate_limits.reset()
        # When both take their slots from the stack's one schedule in the table, every call goes through:
        # none is refused but for a rare one sent late beside one on time in this one busy process (retried)
        shared = [
            client(SharedPacer(table, ROUTE53_RESOLVER, REGION, time_scale=scale.factor)) for _ in range(2)
        ]
        assert burst(shared) == []
        assert sum(aws.rate_limits.refused().values()) <= max(2, own_refused // 5)
        assert aws.rate_limits.allowed()["route53resolver:ListResolverRules"] == 40


class _QuietResolver:
    """Route 53 Resolver with nothing in it; counts the calls."""

    def __init__(self) -> None:
        self.calls = 0

    def list_resolver_endpoints(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        return {"ResolverEndpoints": []}


def test_slots_a_step_left_unspent_do_not_let_a_later_invocations_calls_go_unpaced(table: Any) -> None:
    # Given a warm container whose last step reserved five Resolver calls and made one, and whose invocation
    # ended (the handler ends every invocation with Deps.end_invocation)
    clock = Clock()
    r53r = _QuietResolver()
    pacer = SharedPacer(table, ROUTE53_RESOLVER, REGION, clock=clock, sleep=clock.sleep)
    warm = ResolverClient(r53r, None, limiter=pacer)
    deps = Deps(settings=Settings(region=REGION, owner_tag="test-stack"))
    deps._resolver[REGION] = warm
    warm.reserve_calls(5, max_wait_s=60)
    warm.list_endpoints()
    deps.end_invocation()
    # and, a minute later, a queue of twenty calls other executions reserved
    clock.now += 60
    other = SharedPacer(table, ROUTE53_RESOLVER, REGION, clock=clock, sleep=clock.sleep)
    other.reserve(20)
    queue_ends = 20 / 4.5 - 1 / 4.5 * 4  # the burst lets four of them go at once
    # When the container's next invocation calls without a reservation of its own
    before = clock.now
    warm.list_endpoints()
    # Then the call waited for a slot of its own behind the queue: the old slots were dropped, not spent
    assert r53r.calls == 2
    assert clock.now - before >= queue_ends - 1e-6


def test_a_step_spends_its_slots_however_late_it_comes_to_them(table: Any) -> None:
    # Given a step that reserved three Resolver calls, then a queue of twenty others behind them
    clock = Clock()
    r53r = _QuietResolver()
    pacer = SharedPacer(table, ROUTE53_RESOLVER, REGION, clock=clock, sleep=clock.sleep)
    step = ResolverClient(r53r, None, limiter=pacer)
    step.reserve_calls(3, max_wait_s=60)
    SharedPacer(table, ROUTE53_RESOLVER, REGION, clock=clock, sleep=clock.sleep).reserve(20)
    # When the step comes to its calls ten seconds late (other work, a slow moment)
    clock.now += 10
    before = clock.now
    for _ in range(3):
        step.list_endpoints()
    # Then it spends its own slots at once instead of waiting behind the queue that formed meanwhile
    assert r53r.calls == 3
    assert clock.now == before


def test_invocations_side_by_side_in_one_process_keep_their_own_slots(table: Any) -> None:
    # Given one client shared by two invocations that run side by side (the local stack's runtime: a
    # context each), the first with three reserved calls
    clock = Clock()
    r53r = _QuietResolver()
    pacer = SharedPacer(table, ROUTE53_RESOLVER, REGION, clock=clock, sleep=clock.sleep)
    shared = ResolverClient(r53r, None, limiter=pacer)
    first = contextvars.Context()
    first.run(shared.reserve_calls, 3, 60)
    SharedPacer(table, ROUTE53_RESOLVER, REGION, clock=clock, sleep=clock.sleep).reserve(20)
    # When the second invocation ends (dropping what it did not spend) and the first then makes its calls
    contextvars.Context().run(shared.drop_unspent_slots)
    before = clock.now
    for _ in range(3):
        first.run(shared.list_endpoints)
    # Then the first spent its own slots (no wait behind the queue), untouched by the other's end
    assert r53r.calls == 3
    assert clock.now == before


def _queued_ec2_pace(table: Any, queued: int) -> tuple[Clock, SharedPacer]:
    """The EC2 endpoint-mutation pace with `queued` calls already reserved (a queue: tickets, not inline)."""
    clock = Clock()
    pacer = SharedPacer(table, EC2_ENDPOINT_MUTATIONS, REGION, clock=clock, sleep=clock.sleep)
    for _ in range(queued):
        pacer.reserve()
    return clock, pacer


def test_a_mutation_several_executions_need_takes_one_slot_and_the_others_come_back_after_it(
    table: Any,
) -> None:
    # Given a queue, and two workspaces of one VPC that both need its sts endpoint created (same intent)
    clock, pacer = _queued_ec2_pace(table, 8)
    first = pace_mutations(pacer, 1, None, intent="create#dbxpl-sts")
    assert first.ticket is not None
    # When the second asks, then it reserves nothing and comes back a little after the first one's slot
    second = pace_mutations(pacer, 1, None, intent="create#dbxpl-sts")
    assert second.ticket is None and not second.go
    slot_in = first.ticket.start - clock.now
    assert second.wait_seconds == math.ceil(slot_in + INTENT_MARGIN_SECONDS)
    # and the next slot is the one after the first's: the second took none
    assert pacer.reserve(max_ahead_s=0.0).start == pytest.approx(first.ticket.start + 1 / 0.3, abs=0.01)
    # A different mutation is not held back by it
    assert pace_mutations(pacer, 1, None, intent="create#dbxpl-kinesis").ticket is not None
    # The holder comes back with its ticket and goes
    clock.now += first.wait_seconds
    assert pace_mutations(pacer, 1, first.ticket, intent="create#dbxpl-sts").go


def test_a_hold_whose_holder_never_came_back_lapses_and_a_refused_one_is_given_up_at_once(table: Any) -> None:
    clock, pacer = _queued_ec2_pace(table, 8)
    held = pace_mutations(pacer, 1, None, intent="private-dns#vpce-1,vpce-2")
    assert held.ticket is not None
    # Long after the holder's slot (its execution stopped), another execution reserves the mutation itself
    clock.now = held.ticket.start + INTENT_HOLD_SECONDS + 1
    assert pace_mutations(pacer, 1, None, intent="private-dns#vpce-1,vpce-2").go
    # A deferrable mutation refused a slot (critical calls queued) holds nothing: the next one asks itself
    for _ in range(10):
        pacer.reserve()
    assert pace_mutations(pacer, 1, None, deferrable=True, intent="create#dbxpl-ssm").ticket is None
    assert pacer.hold_intent("create#dbxpl-ssm") is None
