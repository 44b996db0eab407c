"""AWS's request-rate limits, emulated so that a fleet's load shows up locally the way it does on AWS.

A single run stays under AWS's rate limits; many runs at once do not, and the limits that bite them are
shared: AWS counts per account and region, not per client, container or Lambda function. A token bucket
inside one Lambda container keeps that container polite and nothing more. To see a fleet's behaviour
(throttled calls, retries, runs slowed or failed by them) the local stack therefore keeps one bucket per
account, region and limit, taken from by every caller, in front of moto:

- EC2 CreateVpcEndpoint, ModifyVpcEndpoint and DeleteVpcEndpoints share a bucket of 4 tokens refilled at
  0.3 per second; an empty bucket answers `RequestLimitExceeded` (HTTP 503, EC2's error document).
- Every Route 53 Resolver action, reads included, shares a bucket refilled at 5 per second (AWS: "five
  requests per second per AWS account per Region"). AWS documents the rate only; the bucket holds 5 tokens
  (one second's worth), so a burst of 5 passes and a sixth call in the same second does not. An empty
  bucket answers `ThrottlingException` (HTTP 400, JSON: {"__type": "ThrottlingException", "message":
  "Rate exceeded"}), the error botocore's route53resolver model declares for every operation.

Refill runs on emulated time: with a time factor f, r tokens per emulated second are r/f per wall second,
so the limits keep their proportion to every other emulated delay; f = 0 (no emulated time passes, nothing
waits) never throttles. A refused call takes no token, as on AWS.

The limits are off by default (they are load a test or benchmark opts into, unlike quotas such as the
rules per security group, which the EC2 patches always enforce). Refused and allowed calls are counted
per "service:Action", so a benchmark can report how many calls the limits refused.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from dbx_privatelink_local.aws.calls import AwsCall
from dbx_privatelink_local.timescale import TimeScale

# The access key of the local stack's own machinery (the emulated VPC resolvers read Route 53 Resolver
# state through the API; on AWS a VPC's resolver calls no API): its calls pass every limit uncounted.
EMULATOR_ACCESS_KEY = "LOCALEMULATOR"


@dataclass(frozen=True)
class RateLimit:
    """One AWS request-rate limit: which calls share its bucket, the bucket, and the refusal."""

    name: str
    service: str
    actions: frozenset[str] | None  # None: every action of the service
    capacity: float
    refill_per_second: float  # tokens per emulated second
    code: str
    status: int
    message: str

    def covers(self, call: AwsCall) -> bool:
        if call.service != self.service:
            return False
        return self.actions is None or call.action in self.actions


EC2_ENDPOINT_MUTATIONS = RateLimit(
    name="ec2-endpoint-mutations",
    service="ec2",
    actions=frozenset({"CreateVpcEndpoint", "ModifyVpcEndpoint", "DeleteVpcEndpoints"}),
    capacity=4.0,
    refill_per_second=0.3,
    code="RequestLimitExceeded",
    status=503,
    message="Request limit exceeded.",
)

ROUTE53_RESOLVER = RateLimit(
    name="route53resolver",
    service="route53resolver",
    actions=None,
    capacity=5.0,
    refill_per_second=5.0,
    code="ThrottlingException",
    status=400,
    message="Rate exceeded",
)


class LimitBuckets:
    """The buckets of one RateLimit, one per account and region, refilled in emulated time."""

    def __init__(self, limit: RateLimit, time_scale: TimeScale, enabled: bool = False) -> None:
        self.limit = limit
        self.enabled = enabled
        self._time = time_scale
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # (account, region) -> (tokens, at)

    def take(self, account_id: str, region: str) -> bool:
        """Take a token; False when the bucket is empty (the call is refused and takes nothing)."""
        factor = self._time.factor
        if factor == 0:
            return True
        now = time.monotonic()
        key = (account_id, region)
        with self._lock:
            tokens, last = self._buckets.get(key, (self.limit.capacity, now))
            tokens = min(self.limit.capacity, tokens + (now - last) * self.limit.refill_per_second / factor)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                return False
            self._buckets[key] = (tokens - 1, now)
            return True

    def reset(self) -> None:
        """Fill every bucket."""
        with self._lock:
            self._buckets.clear()


class AwsRateLimits:
    """The emulated AWS's rate limits (EC2 endpoint mutations, Route 53 Resolver) and their counts.

    aws.rate_limits.enabled = True                    # both; or one: aws.rate_limits.route53resolver
    aws.rate_limits.refused()   # {"route53resolver:ListResolverRules": 7, "ec2:CreateVpcEndpoint": 3}
    """

    def __init__(self, time_scale: TimeScale) -> None:
        self.ec2_endpoints = LimitBuckets(EC2_ENDPOINT_MUTATIONS, time_scale)
        self.route53resolver = LimitBuckets(ROUTE53_RESOLVER, time_scale)
        self._lock = threading.Lock()
        self._allowed: Counter[str] = Counter()
        self._refused: Counter[str] = Counter()

    def __iter__(self) -> Iterator[LimitBuckets]:
        return iter((self.ec2_endpoints, self.route53resolver))

    @property
    def enabled(self) -> bool:
        """True when every limit is on."""
        return all(buckets.enabled for buckets in self)

    @enabled.setter
    def enabled(self, value: bool) -> None:
        for buckets in self:
            buckets.enabled = value

    def check(self, account_id: str, call: AwsCall) -> RateLimit | None:
        """The limit that refuses this call, or None when it may go on (a token taken where one is due)."""
        if call.access_key_id == EMULATOR_ACCESS_KEY:
            return None
        for buckets in self:
            if not buckets.enabled or not buckets.limit.covers(call):
                continue
            key = f"{call.service}:{call.action}"
            allowed = buckets.take(account_id, call.region)
            with self._lock:
                (self._allowed if allowed else self._refused)[key] += 1
            if not allowed:
                return buckets.limit
        return None

    def refused(self) -> dict[str, int]:
        """Calls the limits refused, per "service:Action"."""
        with self._lock:
            return dict(self._refused)

    def allowed(self) -> dict[str, int]:
        """Calls a limit covered and let through (a token taken), per "service:Action"."""
        with self._lock:
            return dict(self._allowed)

    def reset(self) -> None:
        """Fill every bucket and forget the counts; whether each limit is on stays as it is."""
        for buckets in self:
            buckets.reset()
        with self._lock:
            self._allowed.clear()
            self._refused.clear()
