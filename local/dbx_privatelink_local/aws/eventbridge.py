"""EventBridge delivery for the emulated AWS.

moto (5.2.5) stores rules and targets and matches events, but `Rule.send_to_targets` delivers only to
log groups, archives, SQS, other buses and API destinations, synchronously, ignoring the rule's state,
Input and InputPath; a Lambda or Step Functions target makes PutEvents fail with NotImplementedError.
One patch replaces it: an enabled rule whose pattern matches (moto's own matcher) hands each target to
`EventBridgeDelivery`, which delivers asynchronously and at least once:

- Lambda: invoked through moto's Lambda backend (`lambda_backends[acct][region].invoke(...)`, the seam
  the in-process Lambda runtime patches), asynchronous invocation type as EventBridge uses.
- Step Functions: StartExecution on moto's stepfunctions backend (the ASL interpreter when enabled)
  with the event as input, under a new unique execution name, as the target's role: as on AWS, the
  delivery fails (NO_PERMISSIONS) unless the target names a role that trusts events.amazonaws.com and
  whose policies allow states:StartExecution on the state machine (moto's IAM policy evaluation), so a
  schedule wired without its role fails locally the way it fails on AWS.
- SQS: SendMessage on moto's SQS backend.
- anything else: moto's own delivery.

Input, InputPath and InputTransformer are honoured. A delivery that fails (target missing, backend
error) is retried `delivery_max_attempts` times (fewer when the target's RetryPolicy says so), then sent
to the target's DeadLetterConfig queue with EventBridge's ERROR_CODE / ERROR_MESSAGE / RULE_ARN /
TARGET_ARN attributes. A Lambda function error is not a delivery failure (EventBridge invokes
asynchronously; the function's own retry settings apply), it is logged as `function_error`.

Scheduled rules (rate(...) and cron(...)) fire "Scheduled Event" events from a daemon thread, periods
scaled by the TimeScale. moto's put_events would also hand every bus event to schedule-only rules; those
are skipped, as on AWS.
"""

from __future__ import annotations

import calendar
import copy
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from dbx_privatelink_local.aws.delay import DelayQueue
from dbx_privatelink_local.aws.settings import LocalAwsSettings
from dbx_privatelink_local.timescale import TimeScale

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """One entry of the delivery log."""

    rule_name: str
    rule_arn: str
    target_id: str
    target_arn: str
    event_id: str
    outcome: str  # ok | function_error | error (an attempt failed) | dead_lettered | dropped
    attempt: int
    error: str | None = None
    at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class LambdaInvocation:
    """What EventBridge asks of Lambda for one target."""

    function_name: str
    qualifier: str | None
    account_id: str
    region: str
    payload: str


def invoke_through_moto(invocation: LambdaInvocation) -> bool:
    """Invoke through moto's Lambda backend (asynchronous invocation type); True on a function error."""
    from moto.awslambda.models import lambda_backends

    response_headers: dict[str, str] = {}
    lambda_backends[invocation.account_id][invocation.region].invoke(
        invocation.function_name,
        invocation.qualifier,
        invocation.payload,
        {"x-amz-invocation-type": "Event"},
        response_headers,
    )
    return "x-amz-function-error" in response_headers


class DeliveryError(Exception):
    """A target could not be reached; the code becomes the dead-letter message's ERROR_CODE."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


_EVENTS_PRINCIPAL = "events.amazonaws.com"


def _statements(document: Any) -> list[dict[str, Any]]:
    parsed = json.loads(document) if isinstance(document, str) else document
    statements = (parsed or {}).get("Statement", [])
    return [statements] if isinstance(statements, dict) else list(statements)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _trusts_eventbridge(role: Any) -> bool:
    for statement in _statements(role.assume_role_policy_document):
        services = _as_list((statement.get("Principal") or {}).get("Service", []))
        actions = _as_list(statement.get("Action", []))
        if (
            statement.get("Effect") == "Allow"
            and _EVENTS_PRINCIPAL in services
            and "sts:AssumeRole" in actions
        ):
            return True
    return False


def check_start_execution_role(role_arn: str | None, state_machine_arn: str, account: str) -> None:
    """EventBridge starts a Step Functions target's execution as the target's role: raise the delivery
    failure AWS reports when there is none, it does not trust EventBridge, or no policy of it allows
    states:StartExecution on the state machine (an explicit Deny wins)."""
    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.iam.models import iam_backends

    if not role_arn:
        raise DeliveryError("NO_PERMISSIONS", f"no RoleArn on the target {state_machine_arn}")
    partition = role_arn.split(":")[1]
    try:
        role = iam_backends[account][partition].get_role_by_arn(role_arn)
    except Exception as exc:  # moto's NotFoundException: the role was never created or is gone
        raise DeliveryError("NO_PERMISSIONS", f"role {role_arn} does not exist") from exc
    if not _trusts_eventbridge(role):
        raise DeliveryError("NO_PERMISSIONS", f"role {role_arn} does not trust {_EVENTS_PRINCIPAL}")
    # Inline policies are JSON text through the IAM API and objects through CloudFormation; moto's
    # evaluator takes text, or a managed policy (its default version).
    documents: list[Any] = [d if isinstance(d, str) else json.dumps(d) for d in role.policies.values()]
    documents += list(role.managed_policies.values())
    results = [
        IAMPolicy(document).is_action_permitted("states:StartExecution", state_machine_arn)
        for document in documents
    ]
    if PermissionResult.DENIED in results or PermissionResult.PERMITTED not in results:
        raise DeliveryError(
            "NO_PERMISSIONS", f"role {role_arn} may not states:StartExecution on {state_machine_arn}"
        )


# -- Input, InputPath, InputTransformer -----------------------------------------------------------------

_PATH_TOKEN = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]|\['([^']+)'\]|\[\"([^\"]+)\"\]")
_MISSING = object()


def json_path(document: Any, path: str) -> Any:
    """Resolve the JSONPath subset EventBridge uses ($, $.a.b, $.a[0], $['a']); missing -> _MISSING."""
    if not path.startswith("$"):
        raise ValueError(f"not a JSONPath: {path}")
    position, value = 1, document
    while position < len(path):
        match = _PATH_TOKEN.match(path, position)
        if match is None:
            raise ValueError(f"unsupported JSONPath: {path}")
        name, index, quoted, dquoted = match.groups()
        key: Any = int(index) if index is not None else (name or quoted or dquoted)
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            return _MISSING
        position = match.end()
    return value


_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")


def transform(
    template: str, paths: dict[str, str], event: dict[str, Any], rule_name: str, rule_arn: str
) -> str:
    """Fill an InputTemplate: placeholders inside a JSON string are inserted as text, outside as JSON."""
    values: dict[str, Any] = {name: json_path(event, path) for name, path in paths.items()}
    values.setdefault("aws.events.rule-name", rule_name)
    values.setdefault("aws.events.rule-arn", rule_arn)
    values.setdefault("aws.events.event", event)
    values.setdefault("aws.events.event.json", event)
    values.setdefault("aws.events.event.ingestion-time", event.get("time"))
    out: list[str] = []
    in_string, escaped, position = False, False, 0
    while position < len(template):
        char = template[position]
        match = _PLACEHOLDER.match(template, position) if char == "<" else None
        if match is not None and match.group(1) in values:
            value = values[match.group(1)]
            if in_string:
                text = "" if value is _MISSING else value if isinstance(value, str) else json.dumps(value)
                out.append(json.dumps(text)[1:-1])
            else:
                out.append("null" if value is _MISSING else json.dumps(value))
            position = match.end()
            continue
        if in_string and not escaped and char == "\\":
            escaped = True
        else:
            if char == '"' and not escaped:
                in_string = not in_string
            escaped = False
        out.append(char)
        position += 1
    return "".join(out)


def target_payload(target: dict[str, Any], event: dict[str, Any], rule_name: str, rule_arn: str) -> str:
    """The text EventBridge sends to one target for one event."""
    if target.get("Input") is not None:
        return str(target["Input"])
    if target.get("InputPath"):
        value = json_path(event, target["InputPath"])
        return json.dumps(None if value is _MISSING else value)
    transformer = target.get("InputTransformer")
    if transformer:
        return transform(
            transformer["InputTemplate"], transformer.get("InputPathsMap") or {}, event, rule_name, rule_arn
        )
    return json.dumps(event)


def _normalised(event: dict[str, Any]) -> dict[str, Any]:
    """The event as targets receive it: ISO time, no moto bookkeeping."""
    out = copy.deepcopy(event)
    out.pop("ingestion-time", None)
    if isinstance(out.get("time"), (int, float)):
        out["time"] = datetime.fromtimestamp(float(out["time"]), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return out


# -- delivery ---------------------------------------------------------------------------------------------


@dataclass
class _Job:
    rule: Any
    target: dict[str, Any]
    event: dict[str, Any]
    raw_event: dict[str, Any]
    attempt: int = 1


_ACTIVE: EventBridgeDelivery | None = None
_INSTALL_LOCK = threading.Lock()
_INSTALLED = False
_ORIGINAL_SEND: Callable[..., None] | None = None


def _rule_enabled(rule: Any) -> bool:
    return str(rule.state or "ENABLED").startswith("ENABLED")


class EventBridgeDelivery:
    """Delivers matched events to targets, keeps the delivery log, runs scheduled rules."""

    def __init__(self, settings: LocalAwsSettings, time_scale: TimeScale) -> None:
        self.settings = settings
        self.lambda_invoker: Callable[[LambdaInvocation], bool] = invoke_through_moto
        self._time = time_scale
        self._retries = DelayQueue("eventbridge-retries", time_scale)
        self._executor: ThreadPoolExecutor | None = None
        self._cond = threading.Condition()
        self._log: list[Delivery] = []
        self._in_flight = 0
        self.scheduler = ScheduleRunner(self, settings, time_scale)

    # -- lifecycle -------------------------------------------------------------------------------------
    def activate(self) -> None:
        """Install the moto patch (once) and make this instance the one it hands events to."""
        global _ACTIVE
        install()
        _ACTIVE = self

    def deactivate(self) -> None:
        global _ACTIVE
        if _ACTIVE is self:
            _ACTIVE = None

    def start(self) -> None:
        """Start the delivery workers and the scheduler."""
        with self._cond:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="eventbridge")
        self._retries.start()
        self.scheduler.start()

    def stop(self) -> None:
        """Stop the scheduler and the workers; undelivered events are dropped."""
        self.scheduler.stop()
        self._retries.stop()
        with self._cond:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def reset(self) -> None:
        """Forget the delivery log, queued retries and schedule state."""
        self._retries.clear()
        self.scheduler.reset()
        with self._cond:
            self._log.clear()

    # -- entry points ---------------------------------------------------------------------------------
    def dispatch(self, rule: Any, event: dict[str, Any]) -> None:
        """Deliver `event` (moto's event message) to every target of `rule`, asynchronously."""
        normalised = _normalised(event)
        for target in list(rule.targets):
            self._submit(_Job(rule, dict(target), normalised, event))

    def _submit(self, job: _Job) -> None:
        with self._cond:
            executor = self._executor
            if executor is None:
                log.warning("EventBridge delivery is stopped: event for %s dropped", job.target.get("Arn"))
                return
            self._in_flight += 1
        executor.submit(self._deliver, job)

    def _deliver(self, job: _Job) -> None:
        try:
            outcome = self._send(job)
            self._record(job, outcome)
        except Exception as exc:
            code = exc.code if isinstance(exc, DeliveryError) else type(exc).__name__
            self._record(job, "error", f"{code}: {exc}")
            if job.attempt < self._max_attempts(job.target):
                job.attempt += 1
                with self._cond:
                    self._in_flight += 1
                self._retries.submit(
                    self.settings.delivery_retry_interval, lambda: self._submit_retry(job), "retry"
                )
            else:
                self._dead_letter(job, code, str(exc))
        finally:
            with self._cond:
                self._in_flight -= 1
                self._cond.notify_all()

    def _submit_retry(self, job: _Job) -> None:
        with self._cond:
            self._in_flight -= 1
        self._submit(job)

    def _max_attempts(self, target: dict[str, Any]) -> int:
        policy = target.get("RetryPolicy") or {}
        limit = self.settings.delivery_max_attempts
        if "MaximumRetryAttempts" in policy:
            return max(1, min(limit, int(policy["MaximumRetryAttempts"]) + 1))
        return max(1, limit)

    def _send(self, job: _Job) -> str:
        rule, target = job.rule, job.target
        arn: str = target["Arn"]
        parts = arn.split(":")
        service, region, account = parts[2], parts[3], parts[4]
        payload = target_payload(target, job.event, rule.name, rule.arn)
        if service == "lambda":
            invocation = LambdaInvocation(
                function_name=parts[6],
                qualifier=parts[7] if len(parts) > 7 else None,
                account_id=account,
                region=region,
                payload=payload,
            )
            return "function_error" if self.lambda_invoker(invocation) else "ok"
        if service == "states":
            from moto.stepfunctions.responses import get_backend

            check_start_execution_role(target.get("RoleArn"), arn, account)
            try:
                json.loads(payload)
            except ValueError:
                payload = json.dumps(payload)
            get_backend(account, region).start_execution(
                state_machine_arn=arn, name=str(uuid.uuid4()), execution_input=payload
            )
            return "ok"
        if service == "sqs":
            from moto.sqs.models import sqs_backends

            group_id = (target.get("SqsParameters") or {}).get("MessageGroupId")
            sqs_backends[account][region].send_message(
                queue_name=parts[5], message_body=payload, group_id=group_id
            )
            return "ok"
        if _ORIGINAL_SEND is None:
            raise DeliveryError("UnsupportedTarget", f"no delivery for {arn}")
        clone = copy.copy(rule)
        clone.targets = [target]
        _ORIGINAL_SEND(clone, copy.deepcopy(job.raw_event))
        return "ok"

    def _dead_letter(self, job: _Job, code: str, message: str) -> None:
        dlq = (job.target.get("DeadLetterConfig") or {}).get("Arn")
        if not dlq:
            self._record(job, "dropped", f"{code}: {message}")
            return
        from moto.sqs.models import sqs_backends

        parts = dlq.split(":")
        attributes = {
            "ERROR_CODE": code,
            "ERROR_MESSAGE": message,
            "RULE_ARN": job.rule.arn,
            "TARGET_ARN": job.target["Arn"],
        }
        try:
            sqs_backends[parts[4]][parts[3]].send_message(
                queue_name=parts[5],
                message_body=json.dumps(job.event),
                message_attributes={
                    k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()
                },
            )
            self._record(job, "dead_lettered", f"{code}: {message}")
        except Exception as exc:
            self._record(job, "dropped", f"dead-letter queue {dlq} failed: {exc}")

    def _record(self, job: _Job, outcome: str, error: str | None = None) -> None:
        entry = Delivery(
            rule_name=job.rule.name,
            rule_arn=job.rule.arn,
            target_id=job.target.get("Id", ""),
            target_arn=job.target.get("Arn", ""),
            event_id=str(job.event.get("id", "")),
            outcome=outcome,
            attempt=job.attempt,
            error=error,
        )
        with self._cond:
            self._log.append(entry)
            self._cond.notify_all()

    # -- inspection -----------------------------------------------------------------------------------
    def deliveries(
        self, rule_name: str | None = None, target_id: str | None = None, outcome: str | None = None
    ) -> list[Delivery]:
        """The delivery log, oldest first, optionally filtered."""
        with self._cond:
            return [
                d
                for d in self._log
                if (rule_name is None or d.rule_name == rule_name)
                and (target_id is None or d.target_id == target_id)
                and (outcome is None or d.outcome == outcome)
            ]

    def wait_for(
        self,
        count: int,
        timeout: float,
        rule_name: str | None = None,
        target_id: str | None = None,
        outcome: str | None = None,
    ) -> list[Delivery]:
        """Wait (bounded) until `count` matching log entries exist; returns those seen."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.deliveries(rule_name, target_id, outcome)
            remaining = deadline - time.monotonic()
            if len(found) >= count or remaining <= 0:
                return found
            with self._cond:
                self._cond.wait(min(remaining, 0.05))

    def flush_retries(self) -> int:
        """Run every waiting retry now (instead of waiting for the retry interval)."""
        return self._retries.flush()

    def wait_idle(self, timeout: float) -> bool:
        """Wait (bounded) until no delivery is running or waiting for a retry."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.05))
        return True


# -- scheduled rules ------------------------------------------------------------------------------------

_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_DAY_NAMES = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_MONTH_NAMES = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}


def rate_seconds(expression: str) -> float | None:
    """The period of rate(N unit) in seconds; None for anything else."""
    match = _RATE.match(expression.strip())
    if match is None:
        return None
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


def _cron_field(text: str, low: int, high: int, names: dict[str, int] | None = None) -> set[int] | None:
    """The values a cron field allows; None for '*' and '?'."""
    if text in ("*", "?"):
        return None
    allowed: set[int] = set()
    lookup = names or {}
    for part in text.split(","):
        step, stepped = 1, "/" in part
        if stepped:
            part, step_text = part.split("/", 1)
            step = int(step_text)
        if part in ("*", ""):
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = lookup.get(a.upper()) or int(a), lookup.get(b.upper()) or int(b)
        else:
            start = lookup.get(part.upper()) or int(part)
            end = high if stepped else start
        allowed.update(range(start, end + 1, step))
    return allowed


def cron_next(expression: str, after: datetime) -> datetime | None:
    """The first minute after `after` that cron(min hour day-of-month month day-of-week year) allows.
    L, W and # are not supported (None)."""
    match = re.match(r"^cron\((.+)\)$", expression.strip())
    if match is None:
        return None
    fields = match.group(1).split()
    if len(fields) != 6 or any(c in "".join(fields) for c in "LW#"):
        return None
    try:
        minutes = _cron_field(fields[0], 0, 59)
        hours = _cron_field(fields[1], 0, 23)
        days = _cron_field(fields[2], 1, 31)
        months = _cron_field(fields[3], 1, 12, _MONTH_NAMES)
        weekdays = _cron_field(fields[4], 1, 7, _DAY_NAMES)
        years = _cron_field(fields[5], 1970, 2199)
    except ValueError:
        return None
    candidate = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    # Bounded search: four years of minutes is more than any valid expression needs.
    for _ in range(4 * 366 * 24 * 60):
        aws_weekday = (candidate.isoweekday() % 7) + 1  # AWS: SUN=1 .. SAT=7
        if (
            (years is None or candidate.year in years)
            and (months is None or candidate.month in months)
            and (days is None or candidate.day in days)
            and (weekdays is None or aws_weekday in weekdays)
            and (hours is None or candidate.hour in hours)
            and (minutes is None or candidate.minute in minutes)
        ):
            return candidate
        candidate += timedelta(minutes=1)
    return None


class ScheduleRunner:
    """Fires scheduled rules on a daemon thread. Emulated time runs 1/factor as fast as the wall clock
    from the moment the runner starts; each rule's first firing is one period after it is first seen."""

    def __init__(
        self, delivery: EventBridgeDelivery, settings: LocalAwsSettings, time_scale: TimeScale
    ) -> None:
        self._delivery = delivery
        self._settings = settings
        self._time = time_scale
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._next: dict[str, tuple[str, float]] = {}  # rule arn -> (expression, due in emulated seconds)
        self._fired: dict[str, int] = {}
        self._wall_start = time.monotonic()
        self._emulated_start = time.time()

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="eventbridge-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def reset(self) -> None:
        with self._lock:
            self._next.clear()
            self._fired.clear()

    def fired(self, rule_arn: str) -> int:
        """How many times a scheduled rule fired."""
        with self._lock:
            return self._fired.get(rule_arn, 0)

    def emulated_now(self) -> float:
        """Emulated seconds since the runner was created (wall time divided by the factor)."""
        factor = self._time.factor
        wall = time.monotonic() - self._wall_start
        return float("inf") if factor == 0 else wall / factor

    def _run(self) -> None:
        while not self._stop.wait(self._settings.schedule_poll_interval):
            try:
                self.tick()
            except Exception:
                log.exception("scheduler tick failed")

    def tick(self) -> int:
        """Fire every scheduled rule that is due; returns how many fired."""
        from moto.events.models import events_backends

        now = self.emulated_now()
        fired = 0
        for account in list(events_backends.keys()):
            per_region = events_backends[account]
            for region in list(per_region.keys()):
                for bus in list(per_region[region].event_buses.values()):
                    for rule in list(bus.rules.values()):
                        expression = rule.scheduled_expression
                        if expression and _rule_enabled(rule) and self._due(rule.arn, expression, now):
                            self._fire(rule, account, region)
                            fired += 1
        return fired

    def _due(self, arn: str, expression: str, now: float) -> bool:
        with self._lock:
            known = self._next.get(arn)
            if known is None or known[0] != expression:
                nxt = self._after(expression, now)
                if nxt is not None:
                    self._next[arn] = (expression, nxt)
                return False
            if now < known[1]:
                return False
            nxt = self._after(expression, max(now, known[1]))
            if nxt is None:
                del self._next[arn]
            else:
                self._next[arn] = (expression, nxt)
            self._fired[arn] = self._fired.get(arn, 0) + 1
            return True

    def _after(self, expression: str, now: float) -> float | None:
        period = rate_seconds(expression)
        if period is not None:
            return now + period if now != float("inf") else now
        if now == float("inf"):
            return now
        moment = datetime.fromtimestamp(self._emulated_start + now, UTC)
        nxt = cron_next(expression, moment)
        if nxt is None:
            log.warning("unsupported schedule expression %s: the rule never fires locally", expression)
            return None
        return nxt.timestamp() - self._emulated_start

    def _fire(self, rule: Any, account: str, region: str) -> None:
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": account,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": region,
            "resources": [rule.arn],
            "detail": {},
        }
        self._delivery.dispatch(rule, event)


# -- the patch ------------------------------------------------------------------------------------------


def _patch_send_to_targets(original: Callable[..., None]) -> Callable[..., None]:
    def send_to_targets(self: Any, original_event: dict[str, Any], transform_input: bool = True) -> None:
        delivery = _ACTIVE
        if delivery is None:
            return original(self, original_event, transform_input)
        if not _rule_enabled(self):
            return None
        if self.scheduled_expression and self.event_pattern.dump() is None:
            return None
        if not self.event_pattern.matches_event(original_event):
            return None
        delivery.dispatch(self, original_event)
        return None

    send_to_targets.__wrapped__ = original  # type: ignore[attr-defined]
    return send_to_targets


def install() -> None:
    """Install the Rule.send_to_targets patch (idempotent, once per process)."""
    global _INSTALLED, _ORIGINAL_SEND
    with _INSTALL_LOCK:
        if _INSTALLED:
            return
        from moto.events.models import Rule

        _ORIGINAL_SEND = Rule.send_to_targets
        Rule.send_to_targets = _patch_send_to_targets(Rule.send_to_targets)  # type: ignore[method-assign]
        _INSTALLED = True
