"""The rates AWS keeps per account and region that the stack paces its calls under (pacing.py paces them),
and the default quotas the steps check before they create.

Data only, so that reading a setting's default does not load the pacer.
"""

from __future__ import annotations

from typing import NamedTuple


class RateBudget(NamedTuple):
    """One rate AWS keeps per account and region: `rate` calls per second, `burst` saved up; the schedule
    spends `utilization` of the rate (what is left lets AWS's bucket refill between bursts of calls that
    arrive together, which a limit that is nobody's bottleneck can afford)."""

    name: str
    rate: float
    burst: int
    utilization: float = 1.0


# The fleet's bottleneck: every token counts.
EC2_ENDPOINT_MUTATIONS = RateBudget("ec2-endpoint-mutations", rate=0.3, burst=4)
# Not on any critical path (the DNS branch runs beside the endpoints' queue): 10% left unused.
ROUTE53_RESOLVER = RateBudget("route53resolver", rate=5.0, burst=5, utilization=0.9)

# Route 53 Resolver endpoints per account and region, by default (a raised quota: the stack's
# ResolverEndpointsQuota parameter).
RESOLVER_ENDPOINTS_PER_REGION = 4
