"""Rate limits AWS keeps per account and region, paced across every execution of the stack.

EC2 refills its endpoint-mutation bucket (CreateVpcEndpoint, ModifyVpcEndpoint, DeleteVpcEndpoints) at 0.3
per second with 4 saved up; Route 53 Resolver allows 5 requests per second. A token bucket inside one Lambda
container keeps only that container under such a limit, and blind retry spends calls on refusals. So a
call first reserves a slot on one schedule shared by the whole stack, kept in the table with the generic
cell rate algorithm (GCRA): the entry holds the theoretical arrival time (TAT) of the next conforming call;
reserving n calls moves it on by n intervals in one conditional UpdateItem, and the calls may start once
they conform (TAT - (burst - 1) intervals).

  PACE, <budget>#<region>     tat: epoch seconds; tat_high: where the last critical (not deferrable) call
                              stands

Executions of workspaces that share a VPC need the same mutations (its endpoints' creates, their private
DNS). Each would reserve its own slot for them, and every slot but the first would go unused: the others find
the work done. So such a mutation names an intent (its key, the same for every execution that would make it)
and the first to reserve holds it until a little after its slot; the others reserve nothing and come back
after that slot to find the mutation made.

  PACE, <budget>#<region>#intent#<key>     slot: wall epoch seconds (0: reserving now); until: when the
                                           hold lapses and another execution may reserve; expires_at: TTL

A Resolver call waits for its slot inline when it is near (else AwsThrottledError, retried by the state
machine). An EC2 endpoint mutation behind a long queue keeps its reservation as a ticket and returns it:
the state machine waits in a Wait state (free) and comes back to use it, so a burst of workspaces forms
one first-come-first-served queue at the rate AWS allows instead of a crowd of refused retries.

Rates are in service seconds. On the local stack time is scaled (`time_scale`: 0.01 makes an emulated second
last 10 ms): intervals are scaled to wall seconds, waits handed to the state machine are in service seconds
(its Wait states are scaled alike).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, NamedTuple, Protocol, runtime_checkable

from boto3.dynamodb.conditions import Attr
from botocore.exceptions import BotoCoreError, ClientError

from dbx_privatelink.aws.errors import error_code, map_aws_error
from dbx_privatelink.errors import AwsThrottledError
from dbx_privatelink.rates import RateBudget

# How far ahead a ticket may be reserved: past that the queue is not a queue but an outage.
MAX_QUEUE_SECONDS = 3600.0
# A deferrable mutation takes a slot only while the critical calls queued end at most this far ahead (two
# EC2 endpoint-mutation intervals), and looks again at most this long after it stood back.
DEFERRABLE_QUEUE_SECONDS = 7.0
DEFERRABLE_RECHECK_SECONDS = 600.0
# A ticket used late still spends its own slot (AWS's bucket refilled meanwhile; at worst one call meets the
# next ones and is retried): going to the back of the queue again would cost a whole queue's wait. Only a
# ticket so old that its execution was clearly held up elsewhere is reserved again.
TICKET_GRACE_SECONDS = 600.0
# An intent's holder makes its mutation at its slot (a Wait state and an invocation later): the others come
# back this long after the slot, and the hold lapses this long after it (a holder that never came back).
INTENT_MARGIN_SECONDS = 5.0
INTENT_HOLD_SECONDS = 60.0
# While the holder is still reserving (slot not written yet), the others look again this soon.
INTENT_PENDING_SECONDS = 5.0


class Reservation(NamedTuple):
    """`calls` calls that all conform from `start` (wall epoch seconds), the i-th from `slots[i]`;
    `reserved` False: nothing was taken (the queue was longer than the caller would wait) and `start` is
    when they could have started."""

    start: float
    calls: int
    reserved: bool = True
    slots: tuple[float, ...] = ()


class Limiter(Protocol):
    """What an adapter needs of a rate limit: take a token for one call, waiting at most `max_wait_s`."""

    def acquire(self, max_wait_s: float = 10.0, what: str = "", count: int = 1) -> float: ...


@runtime_checkable
class SlotLimiter(Limiter, Protocol):
    """A limit with a queue shared beyond this process: a step can reserve its calls' slots at once."""

    def reserve_slots(self, count: int, max_wait_s: float, what: str = "") -> list[float]: ...

    def wait_until(self, slot: float) -> None: ...


def _decimal(value: float) -> Decimal:
    return Decimal(f"{value:.6f}")


class SharedPacer:
    """The stack-wide schedule of one rate budget in one region (see the module docstring)."""

    def __init__(
        self,
        table: Any,
        budget: RateBudget,
        region: str,
        *,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self._t = table
        self.budget = budget
        self.region = region
        self.time_scale = time_scale
        self.clock, self.sleep = clock, sleep
        self._key = {"pk": "PACE", "sk": f"{budget.name}#{region}"}

    @property
    def interval(self) -> float:
        """Wall seconds between two conforming calls."""
        return self.time_scale / (self.budget.rate * self.budget.utilization)

    @property
    def tolerance(self) -> float:
        """How far the schedule may run ahead of now: the burst less one token, in wall seconds. The token
        kept back absorbs jitter: a call sent late followed by one on time must not find AWS's bucket empty."""
        return max(0, self.budget.burst - 2) * self.interval

    def _update(self, key: dict[str, str] | None = None, **kwargs: Any) -> dict[str, Any] | None:
        """One conditional UpdateItem of the schedule's entry (or `key`'s): the item as it now is, or None
        when the condition failed."""
        try:
            attributes: dict[str, Any] = self._t.update_item(
                Key=key or self._key, ReturnValues="ALL_NEW", **kwargs
            )["Attributes"]
            return attributes
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return None
            raise map_aws_error(exc, "DynamoDB UpdateItem (pacing)") from exc
        except BotoCoreError as exc:
            raise map_aws_error(exc, "DynamoDB UpdateItem (pacing)") from exc

    def reserve(
        self, count: int = 1, max_ahead_s: float | None = None, *, deferrable: bool = False
    ) -> Reservation:
        """Reserve `count` calls on the shared schedule, unless they would start more than `max_ahead_s` wall
        seconds from now (then nothing is reserved and the reservation says when they could start).

        The entry also keeps where the last call that is not deferrable stands (`tat_high`). A `deferrable`
        reservation is taken only while that is at most DEFERRABLE_QUEUE_SECONDS ahead: it joins the queue's
        end behind every critical call already waiting and never stands in front of one; refused, it says
        when the critical calls will have gone (`start`)."""
        if count < 1:
            raise ValueError("reserve at least one call")
        ahead = MAX_QUEUE_SECONDS * self.time_scale if max_ahead_s is None else max_ahead_s
        cost = count * self.interval
        lead = (count - 1) * self.interval - self.tolerance  # start = TAT before + lead
        for _ in range(3):
            now = self.clock()
            within = Attr("tat").lte(_decimal(now + ahead - lead))
            if deferrable:
                horizon = _decimal(now + DEFERRABLE_QUEUE_SECONDS * self.time_scale)
                within = within & (Attr("tat_high").not_exists() | Attr("tat_high").lte(horizon))
            # A queue is waiting (TAT ahead of now): join its end, if that is near enough.
            queued = self._update(
                UpdateExpression="SET tat = tat + :cost" + ("" if deferrable else ", tat_high = tat + :cost"),
                ConditionExpression=Attr("tat").gte(_decimal(now)) & within,
                ExpressionAttributeValues={":cost": _decimal(cost)},
            )
            if queued is not None:
                return self._reservation(float(queued["tat"]) - cost, now, count)
            # No queue (TAT behind now, or no entry yet): the schedule starts again from now.
            fresh = self._update(
                UpdateExpression="SET tat = :tat" + ("" if deferrable else ", tat_high = :tat"),
                ConditionExpression=Attr("tat").not_exists() | Attr("tat").lt(_decimal(now)),
                ExpressionAttributeValues={":tat": _decimal(now + cost)},
            )
            if fresh is not None:
                return self._reservation(now, now, count)
        # The queue is longer than the caller would wait (or the entry moved under us three times).
        item = self._t.get_item(Key=self._key).get("Item") or {}
        tat = float(item.get("tat_high" if deferrable else "tat", 0) or 0)
        return Reservation(start=max(self.clock(), tat + lead), calls=count, reserved=False)

    def _reservation(self, before: float, now: float, count: int) -> Reservation:
        """The slots of `count` calls reserved behind a schedule that stood at `before`: each call one
        interval after the one before, none before now (the burst lets the first few go at once)."""
        slots = tuple(max(now, before - self.tolerance + i * self.interval) for i in range(count))
        return Reservation(start=slots[-1], calls=count, slots=slots)

    def _intent_key(self, intent: str) -> dict[str, str]:
        return {"pk": "PACE", "sk": f"{self.budget.name}#{self.region}#intent#{intent}"}

    def hold_intent(self, intent: str, previous_slot: float | None = None) -> float | None:
        """Hold `intent` while reserving its mutation's slot: None when held (it was free, lapsed, or ours:
        held for `previous_slot`, the slot of a ticket we carry), else the slot of the execution that holds
        it (wall epoch seconds; 0 while it is still reserving)."""
        now = self.clock()
        free = Attr("pk").not_exists() | Attr("until").lt(_decimal(now))
        if previous_slot is not None:
            free = free | Attr("slot").eq(_decimal(previous_slot))
        if self._set_intent(intent, 0.0, now + INTENT_PENDING_SECONDS * self.time_scale, free):
            return None
        item = self._t.get_item(Key=self._intent_key(intent), ConsistentRead=True).get("Item") or {}
        return float(item.get("slot", 0) or 0)

    def record_intent(self, intent: str, slot: float | None) -> None:
        """The held intent's mutation has its slot (the others come back after it); None: nothing was
        reserved, so the hold is given up and the next execution to ask reserves."""
        if slot is None:
            self._set_intent(intent, 0.0, 0.0)
        else:
            self._set_intent(intent, slot, slot + INTENT_HOLD_SECONDS * self.time_scale)

    def _set_intent(self, intent: str, slot: float, until: float, condition: Any = None) -> bool:
        """Write the intent's slot and hold: False when `condition` failed."""
        kwargs: dict[str, Any] = {} if condition is None else {"ConditionExpression": condition}
        written = self._update(
            self._intent_key(intent),
            UpdateExpression="SET #slot = :slot, #until = :until, expires_at = :expires",
            ExpressionAttributeNames={"#slot": "slot", "#until": "until"},
            ExpressionAttributeValues={
                ":slot": _decimal(slot),
                ":until": _decimal(until),
                ":expires": int(max(until, self.clock()) + 3600),
            },
            **kwargs,
        )
        return written is not None

    def reserve_slots(self, count: int, max_wait_s: float, what: str = "") -> list[float]:
        """Reserve `count` calls that all conform within `max_wait_s` service seconds and return their
        slots (wall epoch seconds) to spend one by one; past that AwsThrottledError with nothing taken."""
        reservation = self.reserve(count, max_ahead_s=max_wait_s * self.time_scale)
        if not reservation.reserved:
            raise AwsThrottledError(
                f"{what or self.budget.name}: the stack's shared pace ({self.budget.rate:g} requests/s per "
                f"account and region) has a queue of "
                f"{self.service_seconds(reservation.start - self.clock()):.0f}s, more than this step waits "
                f"({max_wait_s:g}s); the state machine retries the step later"
            )
        return list(reservation.slots)

    def wait_until(self, slot: float) -> None:
        """Sleep until a reserved slot (wall epoch seconds)."""
        wait = slot - self.clock()
        if wait > 0:
            self.sleep(wait)

    def service_seconds(self, wall_seconds: float) -> float:
        return wall_seconds / self.time_scale

    def acquire(self, max_wait_s: float = 10.0, what: str = "", count: int = 1) -> float:
        """Take the slots of `count` calls made at once and sleep until they all conform (at most
        `max_wait_s` service seconds); past that AwsThrottledError with nothing taken, so the state machine
        backs off. Returns the wall seconds waited."""
        reservation = self.reserve(count, max_ahead_s=max_wait_s * self.time_scale)
        wait = reservation.start - self.clock()
        if not reservation.reserved:
            raise AwsThrottledError(
                f"{what or self.budget.name}: the stack's shared pace ({self.budget.rate:g} requests/s per "
                f"account and region) has a queue of {self.service_seconds(wait):.0f}s, more than this call "
                f"waits ({max_wait_s:g}s); the state machine retries the step later"
            )
        if wait > 0:
            self.sleep(wait)
        return max(wait, 0.0)


class Ticket(NamedTuple):
    """A reservation handed to the state machine: `calls` calls that conform from `start` (wall epoch s)."""

    start: float
    calls: int


class PaceDecision(NamedTuple):
    """Go now (`wait_seconds` 0), or come back after `wait_seconds` (service seconds) with `ticket`."""

    wait_seconds: int = 0
    ticket: Ticket | None = None

    @property
    def go(self) -> bool:
        return self.wait_seconds == 0


def pace_mutations(
    pacer: SharedPacer | None,
    count: int,
    ticket: Ticket | None,
    *,
    inline_wait_s: float = 7.0,
    deferrable: bool = False,
    intent: str = "",
) -> PaceDecision:
    """Decide whether `count` endpoint mutations may be made now: with a ticket that is due, or a fresh
    reservation whose slot is at most `inline_wait_s` service seconds away (slept inline: two intervals at
    EC2's rate cost less asleep in the Lambda than a ticket's Wait state, its whole seconds and a new
    invocation); otherwise the reservation goes back to the state machine as a ticket. Without a pacer
    everything goes at once.

    `deferrable` mutations (nothing on a workspace's critical path waits for them: the AWS service
    endpoints) wait for the critical ones: while critical calls are queued more than
    DEFERRABLE_QUEUE_SECONDS ahead they reserve nothing and come back about when those will have gone; then
    they join the queue's end with a ticket like any other call. So the mutations the Databricks side waits
    for (its endpoints, their private DNS) are not queued behind deferrable ones that asked before them
    (one that asks after deferrable ones joined the queue still joins its end).

    `intent` names the mutations when other executions may need the very same ones (a shared VPC's
    endpoint, its private DNS): while another execution holds that intent, nothing is reserved and the
    decision is to come back a little after its slot, by when the mutation is made."""
    if pacer is None or count <= 0:
        return PaceDecision()
    now = pacer.clock()
    grace = TICKET_GRACE_SECONDS * pacer.time_scale
    inline = inline_wait_s * pacer.time_scale
    if ticket is not None and ticket.calls >= count and ticket.start - inline <= now <= ticket.start + grace:
        pacer.wait_until(ticket.start)
        return PaceDecision()
    if intent:
        held = pacer.hold_intent(intent, ticket.start if ticket is not None else None)
        if held is not None:
            back = (max(held, now) - now) if held else 0.0
            margin = INTENT_MARGIN_SECONDS if held else INTENT_PENDING_SECONDS
            return PaceDecision(wait_seconds=max(1, math.ceil(pacer.service_seconds(back) + margin)))
    reservation = pacer.reserve(count, deferrable=deferrable)
    if intent:
        pacer.record_intent(intent, reservation.start if reservation.reserved else None)
    wait = reservation.start - now
    if not reservation.reserved:
        # Back a little before the critical calls ahead will have gone (so the schedule has no gap), at
        # most DEFERRABLE_RECHECK_SECONDS later: the queue may drain sooner than it looks.
        back = min(DEFERRABLE_RECHECK_SECONDS, pacer.service_seconds(wait) * random.uniform(0.85, 1.0))
        return PaceDecision(wait_seconds=max(1, math.ceil(back)))
    if wait <= inline:
        pacer.wait_until(reservation.start)
        return PaceDecision()
    return PaceDecision(
        wait_seconds=max(1, math.ceil(pacer.service_seconds(wait))),
        ticket=Ticket(start=reservation.start, calls=count),
    )
