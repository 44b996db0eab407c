"""What every step model shares: the base class, the endpoint roles and actions, the pacing and polling
state the state machine carries, and a caught error."""

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict

EndpointRole = Literal["workspace", "relay", "front_end", "s3", "sts", "kinesis-streams", "glue"]
DATABRICKS_ROLES: tuple[EndpointRole, ...] = ("workspace", "relay", "front_end")
Action = Literal["created", "adopted", "found", "replaced", "updated", "unchanged", "deleted"]


class StepModel(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)


class PacingState(StepModel):
    """A reservation on the stack's shared schedule of EC2 endpoint mutations, carried by the state machine:
    wait `wait_seconds` (a Wait state), then come back with the ticket (`ticket_start`, epoch seconds, for
    `ticket_count` calls)."""

    wait_seconds: int = 0
    ticket_start: float | None = None
    ticket_count: int = 0


# What a reconcile loop waits for: the name of its schedule in reconcile/polling.py. POLL_EXPECTED_SECONDS
# is parsed here, by these names, so that wiring checks it at cold start without loading the polling.
ScheduleName = Literal[
    "endpoints_created",
    "registration_available",
    "private_dns",
    "aws_endpoints_available",
    "workspace_created",
    "workspace_updated",
    "resolver_endpoints",
    "rule_associations",
    "zone_associations",
]


def parse_expected_seconds(text: str) -> dict[str, int]:
    """POLL_EXPECTED_SECONDS ("name=seconds,..."): the expected times that replace the defaults."""
    found: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        name = name.strip()
        if name not in get_args(ScheduleName) or not value.strip().isdigit():
            raise ValueError(
                f"POLL_EXPECTED_SECONDS: {item!r} is not name=seconds with a name among "
                f"{', '.join(get_args(ScheduleName))} and whole seconds: fix or remove it"
            )
        found[name] = int(value)
    return found


class PollState(StepModel):
    """A Wait -> Check -> Choice loop's counter: the check returns the next one (`schedule`: what it waits
    for, set by the state machine where one check serves several waits)."""

    attempt: int = 0
    wait_seconds: int = 5
    ready: bool = False
    detail: str = ""
    schedule: ScheduleName | None = None


class StepError(StepModel):
    Error: str
    Cause: str = ""
