"""Following one execution live: the history read incrementally, rendered as plain lines as it happens.

Three parts, each usable alone:
- HistoryReader asks GetExecutionHistory for the events it has not seen yet (newest first, stopping at the
  first one already seen), so a long execution costs one short call per poll, not the whole history.
- HistoryRenderer turns events into lines: one per state entered and exited, Map iterations labelled
  "[2/7]", a Wait -> Check -> Choice polling loop collapsed into "waiting for X (attempt n, next check in s)",
  failed attempts with their error name, retries, and the Catch into the failure path. It is pure: the
  recorded histories in events/ drive it in the tests.
- Display writes the lines: on a terminal the transient ones ("entered", "waiting") are redrawn in place
  with \\r; anywhere else (CI logs, pipes) every line is printed once, in order.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dbx_privatelink.errors import human_cause
from dbx_privatelink_cli.output import first_line

TERMINAL_EVENTS = frozenset(
    {"ExecutionSucceeded", "ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"}
)
_FAILURE_DETAILS = (
    "lambdaFunctionFailedEventDetails",
    "lambdaFunctionTimedOutEventDetails",
    "lambdaFunctionStartFailedEventDetails",
    "lambdaFunctionScheduleFailedEventDetails",
    "taskFailedEventDetails",
    "taskTimedOutEventDetails",
    "taskStartFailedEventDetails",
    "taskSubmitFailedEventDetails",
)
_ATTEMPT_EVENTS = frozenset({"LambdaFunctionScheduled", "TaskScheduled", "ActivityScheduled"})
_SUCCESS_EVENTS = {
    "LambdaFunctionSucceeded": "lambdaFunctionSucceededEventDetails",
    "TaskSucceeded": "taskSucceededEventDetails",
}
_CONTAINERS = frozenset({"Map", "Parallel"})
# DescribeExecution statuses of an execution that has not ended (None: a status the API did not give).
NOT_ENDED = frozenset({None, "RUNNING", "PENDING_REDRIVE"})


@dataclass(frozen=True)
class Line:
    """One line of progress; a transient one may be replaced by the next line on a terminal."""

    text: str
    transient: bool = False
    live_only: bool = False  # worth showing only while it can be redrawn (a terminal)


def _timestamp(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def _loads(text: Any) -> Any:
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _words(name: str, *prefixes: str) -> str:
    """ "WaitForEndpointsCreated" -> "endpoints created"."""
    for prefix in prefixes:
        if name.startswith(prefix) and len(name) > len(prefix):
            name = name[len(prefix) :]
            break
    return " ".join(w.lower() for w in re.findall(r"[A-Z][a-z0-9]*|[a-z0-9]+", name)) or name


def duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f}s"
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _is_poll(output: Any) -> bool:
    return isinstance(output, dict) and {"attempt", "ready", "wait_seconds"} <= output.keys()


# --- what a step did, in a few words (from the Lambda's own result, whatever the ResultPath) ---------------


def _summary(state: str, result: Any) -> str:
    if not isinstance(result, dict):
        return ""
    try:
        return _SUMMARIES[state](result) if state in _SUMMARIES else ""
    except (KeyError, TypeError, ValueError, AttributeError):
        return ""  # an unexpected shape loses only the summary, never the progress view


def _lease(r: dict[str, Any]) -> str:
    if r.get("acquired"):
        return f"lease taken, generation {r['generation']}"
    return "another execution holds the lease: " + (r.get("reason") or "it will reconcile this spec")


def _preflight(r: dict[str, Any]) -> str:
    if r.get("converged"):
        return "all checks passed; nothing to change since the last run (the reconcile branches are skipped)"
    roles = [e["role"] for e in r.get("endpoints", [])]
    return f"all checks passed; {len(roles)} endpoints planned ({', '.join(roles)})"


def _endpoint(r: dict[str, Any]) -> str:
    return f"{r['role']}: {r['action']} {r['vpc_endpoint_id']} ({r['state']})"


def _registrations(r: dict[str, Any]) -> str:
    return ", ".join(f"{g['role']} {g['action']} {g['vpc_endpoint_id']}" for g in r.get("registrations", []))


def _private_dns(r: dict[str, Any]) -> str:
    return f"turned on for {len(r.get('enabled', []))}, already on for {len(r.get('already', []))}"


def _pas(r: dict[str, Any]) -> str:
    return f"{r['action']} {r['private_access_settings_id']}"


def _network(r: dict[str, Any]) -> str:
    text = f"{r['action']} {r['network_id']}"
    return text + (f" (replaces {r['replaced_network_id']})" if r.get("replaced_network_id") else "")


def _workspace(r: dict[str, Any]) -> str:
    return f"{r['action']} workspace {r['workspace_id']}" + (f" ({r['status']})" if r.get("status") else "")


def _retire(r: dict[str, Any]) -> str:
    return f"deleted {r['deleted_network_id']}" if r.get("deleted_network_id") else "nothing to retire"


def _record(r: dict[str, Any]) -> str:
    return "spec changed meanwhile: reconciling once more" if r.get("rerun") else "observed state recorded"


def _verify_dns(r: dict[str, Any]) -> str:
    if r.get("status") != "verified":
        return f"skipped: {r.get('reason', '')}"
    proofs = [
        f"{n['name']} -> {', '.join(n.get('answers') or []) or n.get('status', '?')}"
        + (f" (via {n['answered_by']})" if n.get("answered_by") else "")
        for n in r.get("names", [])
    ]
    return f"resolved through {r.get('resolver', 'the VPC resolver')}: " + "; ".join(proofs)


def _failure(r: dict[str, Any]) -> str:
    return f"recorded {r['error']}"


# --- the decommission state machine's steps ---


def _begin(r: dict[str, Any]) -> str:
    if r.get("outcome") == "proceed":
        return "marked for decommission, lease taken"
    return str(r.get("reason") or r.get("outcome") or "")


def _plan(r: dict[str, Any]) -> str:
    counts: dict[str, int] = {}
    for item in r.get("items", []):
        counts[item["action"]] = counts.get(item["action"], 0) + 1
    return ", ".join(f"{n} {action}" for action, n in sorted(counts.items())) or "nothing planned"


def _release(r: dict[str, Any]) -> str:
    kept = [f"{k['kind']} for {', '.join(k.get('used_by') or []) or 'others'}" for k in r.get("kept", [])]
    return f"claimed {len(r.get('claimed', []))}" + (f"; kept {'; '.join(kept)}" if kept else "")


def _deletion(r: dict[str, Any]) -> str:
    pacing = r.get("pacing") or {}
    if pacing.get("wait_seconds"):
        return f"waiting {pacing['wait_seconds']}s for a slot on the shared pace of EC2 endpoint mutations"
    poll = r.get("poll") or {}
    detail = first_line(str(poll.get("detail") or ""), 200)
    text = detail if poll.get("ready") else f"not yet (next try in {poll.get('wait_seconds')}s): {detail}"
    kept = r.get("kept") or []
    return text + (f"; kept {len(kept)}" if kept else "")


def _orphans(r: dict[str, Any]) -> str:
    found = r.get("orphans", [])
    text = (
        f"{len(found)} orphan(s): " + ", ".join(f"{o['kind']} {o['name']} {o['action']}" for o in found)
        if found
        else "none"
    )
    failed = r.get("failed") or []
    # An account the sweep could not read is not an account without orphans: say so, with its error.
    return text + (f"; {len(failed)} account(s) not swept: " + "; ".join(failed) if failed else "")


def _finish(r: dict[str, Any]) -> str:
    return f"{len(r.get('deleted', []))} deleted, {len(r.get('kept', []))} kept, {len(r.get('gone', []))} already gone"


_SUMMARIES: dict[str, Callable[[dict[str, Any]], str]] = {
    "BeginDecommission": _begin,
    "PlanDecommission": _plan,
    "DeleteWorkspace": _deletion,
    "CheckWorkspaceGone": _deletion,
    "DeleteDatabricksObjects": _deletion,
    "ReleaseSharedResources": _release,
    "DeleteRegistrations": _deletion,
    "DeleteEndpoints": _deletion,
    "DeleteRuleAssociations": _deletion,
    "DeleteResolverRules": _deletion,
    "DeleteResolverEndpoints": _deletion,
    "DeleteResolverSecurityGroups": _deletion,
    "RevokeRestoredRules": _deletion,
    "SweepOrphans": _orphans,
    "FinishDecommission": _finish,
    "RecordDecommissionFailure": _failure,
    "AcquireLease": _lease,
    "Preflight": _preflight,
    "EnsureEndpoint": _endpoint,
    "RegisterEndpoints": _registrations,
    "EnablePrivateDns": _private_dns,
    "EnsurePrivateAccessSettings": _pas,
    "EnsureNetwork": _network,
    "EnsureWorkspace": _workspace,
    "RetireNetwork": _retire,
    "VerifyDns": _verify_dns,
    "RecordAndRelease": _record,
    "RecordFailure": _failure,
}


@dataclass
class _Poll:
    checks: int
    since: datetime | None


class HistoryRenderer:
    """Turns history events, fed in order, into progress lines. `verbose` also shows Pass and Choice states."""

    def __init__(self, *, verbose: bool = False) -> None:
        self.verbose = verbose
        self.finished = False
        self.status: str | None = None
        self.error: str | None = None
        self.cause: str | None = None
        self.output: str | None = None
        self._start: datetime | None = None
        self._iteration: dict[int, str] = {}  # event id -> Map iteration label ("" outside iterations)
        self._state: dict[int, str] = {}  # event id -> the state it belongs to
        self._containers: list[str] = []
        self._map_length: dict[str, int] = {}
        self._entered: dict[tuple[str, str], datetime | None] = {}
        self._attempts: dict[tuple[str, str], int] = {}
        self._failure: dict[tuple[str, str], tuple[str, str]] = {}
        self._result: dict[tuple[str, str], Any] = {}
        self._polls: dict[str, _Poll] = {}
        self._container_iteration: dict[str, str] = {}
        self._container_failed: dict[str, str] = {}
        self._last_error = ""
        self._last_state = ""

    # --- helpers ---

    def _prefix(self, when: datetime | None, depth_extra: int = 0) -> str:
        elapsed = (when - self._start).total_seconds() if when and self._start else 0.0
        minutes, seconds = divmod(int(max(0.0, elapsed)), 60)
        stamp = (
            f"{minutes:02d}:{seconds:02d}"
            if minutes < 60
            else f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}"
        )
        return f"[{stamp}] " + "  " * (len(self._containers) + depth_extra)

    def _label(self, iteration: str, state: str) -> str:
        return f"{state} {iteration}" if iteration else state

    def _since(self, key: tuple[str, str], when: datetime | None) -> str:
        began = self._entered.get(key)
        return duration((when - began).total_seconds()) if when and began else ""

    # --- the one entry point ---

    def feed(self, event: dict[str, Any]) -> list[Line]:
        """The lines one event adds (often none)."""
        etype = str(event.get("type", ""))
        eid = int(event.get("id", 0))
        previous = int(event.get("previousEventId", 0) or 0)
        when = _timestamp(event.get("timestamp"))
        iteration = self._iteration.get(previous, "")
        state = self._state.get(previous, self._last_state)

        if etype == "MapIterationStarted":
            details = event.get("mapIterationStartedEventDetails", {})
            index = int(details.get("index", 0))
            total = self._map_length.get(str(details.get("name", "")), 0)
            iteration = f"[{index + 1}/{total}]" if total else f"[{index + 1}]"
        entered = event.get("stateEnteredEventDetails")
        if entered:
            state = str(entered.get("name", ""))
            self._last_state = state
        exited = event.get("stateExitedEventDetails")
        if exited:
            state = str(exited.get("name", state))
        if (
            etype.startswith(("MapState", "ParallelState"))
            and not entered
            and not exited
            and self._containers
        ):
            # A Map's or Parallel's own lifecycle events may chain from its last inner event: they belong
            # to the container, outside its iterations.
            state = self._containers[-1]
        if state in self._container_iteration and (etype.startswith(("MapState", "ParallelState"))):
            iteration = self._container_iteration[state]
        self._iteration[eid] = iteration
        self._state[eid] = state
        key = (iteration, state)

        if etype == "ExecutionStarted":
            self._start = when
            return [Line(self._prefix(when) + "execution started")]
        if etype.endswith("StateEntered"):
            return self._on_entered(etype.removesuffix("StateEntered"), key, when)
        if etype.endswith("StateExited"):
            return self._on_exited(etype.removesuffix("StateExited"), key, event, when)
        if etype in _ATTEMPT_EVENTS:
            return self._on_attempt(key, when)
        if etype in _SUCCESS_EVENTS:
            self._result[key] = _loads(event.get(_SUCCESS_EVENTS[etype], {}).get("output"))
            self._failure.pop(key, None)
            return self._on_result(key, when)
        for details_key in _FAILURE_DETAILS:
            if details_key in event:
                return self._on_failure(key, event[details_key], when)
        if etype == "MapStateStarted":
            length = int(event.get("mapStateStartedEventDetails", {}).get("length", 0))
            self._map_length[state] = length
            return [Line(self._prefix(when, -1) + f"start {state} ({length} item(s))")]
        if etype in ("MapStateFailed", "ParallelStateFailed", "MapStateAborted", "ParallelStateAborted"):
            self._container_failed[state] = self._last_error or etype.removeprefix("MapState").removeprefix(
                "ParallelState"
            )
            return []
        if etype == "MapIterationFailed":
            details = event.get("mapIterationFailedEventDetails", {})
            return (
                [Line(self._prefix(when) + f"FAILED iteration {iteration} of {state}")]
                if details is not None
                else []
            )
        if etype in TERMINAL_EVENTS:
            return self._on_end(etype, event, when)
        return []

    # --- per kind of event ---

    def _on_entered(self, kind: str, key: tuple[str, str], when: datetime | None) -> list[Line]:
        iteration, state = key
        self._entered[key] = when
        self._failure.pop(key, None)
        self._attempts.pop(key, None)
        prefix = self._prefix(when)
        if kind in _CONTAINERS:
            self._containers.append(state)
            self._container_iteration[state] = iteration
            # A Map says how many items it has in MapStateStarted, right after: that line announces it.
            return [] if kind == "Map" else [Line(prefix + f"start {state}")]
        if kind == "Wait":
            return []  # the check before it already said what the loop waits for
        if kind in ("Pass", "Choice"):
            return [Line(prefix + f"{kind.lower()}  {state}")] if self.verbose else []
        if kind == "Fail":
            return [Line(prefix + f"FAIL  {state}")]
        if kind == "Succeed":
            return []
        poll = self._polls.get(state)
        if poll is not None and state.startswith("Check"):
            return [
                Line(
                    prefix + f"checking {_words(state, 'Check')} (attempt {poll.checks + 1})",
                    transient=True,
                    live_only=True,
                )
            ]
        return [Line(prefix + f"start {self._label(iteration, state)}", transient=True)]

    def _on_attempt(self, key: tuple[str, str], when: datetime | None) -> list[Line]:
        attempt = self._attempts.get(key, 0) + 1
        self._attempts[key] = attempt
        if attempt == 1:
            return []
        error, _cause = self._failure.pop(key, ("", ""))
        iteration, state = key
        because = f" after {error}" if error else ""
        return [
            Line(self._prefix(when) + f"retry {self._label(iteration, state)} (attempt {attempt}{because})")
        ]

    def _on_failure(self, key: tuple[str, str], details: dict[str, Any], when: datetime | None) -> list[Line]:
        error = str(details.get("error") or "States.TaskFailed")
        cause = human_cause(error, str(details.get("cause") or ""))
        self._failure[key] = (error, cause)
        self._last_error = error
        iteration, state = key
        return [
            Line(self._prefix(when) + f"error {self._label(iteration, state)}: {error}: {first_line(cause)}")
        ]

    def _on_result(self, key: tuple[str, str], when: datetime | None) -> list[Line]:
        _iteration, state = key
        result = self._result.get(key)
        if not (isinstance(result, dict) and _is_poll(result) and state.startswith("Check")):
            return []
        what = _words(state, "Check")
        poll = self._polls.setdefault(state, _Poll(checks=0, since=self._entered.get(key)))
        poll.checks += 1
        detail = first_line(str(result.get("detail") or ""), 200)
        if result.get("ready"):
            took = duration((when - poll.since).total_seconds()) if when and poll.since else ""
            del self._polls[state]
            checks = f"{poll.checks} check{'s' if poll.checks != 1 else ''}" + (f", {took}" if took else "")
            return [Line(self._prefix(when) + f"done  {what} ({checks})" + (f": {detail}" if detail else ""))]
        text = f"waiting for {what} (attempt {poll.checks}, next check in {int(result['wait_seconds'])}s)"
        return [Line(self._prefix(when) + text + (f": {detail}" if detail else ""), transient=True)]

    def _on_exited(
        self, kind: str, key: tuple[str, str], event: dict[str, Any], when: datetime | None
    ) -> list[Line]:
        iteration, state = key
        took = self._since(key, when)
        if kind in _CONTAINERS:
            if state in self._containers:
                self._containers.remove(state)
            failed = self._container_failed.pop(state, None)
            if failed is not None:
                return [Line(self._prefix(when) + f"FAIL  {state} ({took}): {failed}, caught")]
            count = self._map_length.get(state)
            extra = f"{count} item(s), " if kind == "Map" and count is not None else ""
            return [Line(self._prefix(when) + f"done  {state} ({extra}{took})")]
        if kind in ("Pass", "Choice", "Wait", "Fail"):
            return []
        if kind == "Succeed":
            return [Line(self._prefix(when) + f"end   {state}")]
        failure = self._failure.pop(key, None)
        if failure is not None:
            # Exited after an error: the state's Catch sent the run to its failure path.
            return [
                Line(
                    self._prefix(when)
                    + f"FAIL  {self._label(iteration, state)} ({took}): {failure[0]}, caught"
                )
            ]
        result = self._result.pop(key, None)
        if _is_poll(result) and state.startswith("Check"):
            return []  # the loop's lines came with the result
        summary = _summary(state, result)
        attempts = self._attempts.get(key, 1)
        retried = f", {attempts} attempts" if attempts > 1 else ""
        return [
            Line(
                self._prefix(when)
                + f"done  {self._label(iteration, state)} ({took}{retried})"
                + (f": {summary}" if summary else "")
            )
        ]

    def _on_end(self, etype: str, event: dict[str, Any], when: datetime | None) -> list[Line]:
        self.finished = True
        self.status = {
            "ExecutionSucceeded": "SUCCEEDED",
            "ExecutionFailed": "FAILED",
            "ExecutionTimedOut": "TIMED_OUT",
            "ExecutionAborted": "ABORTED",
        }[etype]
        details = next(
            (v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)), {}
        )
        if self.status == "SUCCEEDED" and not (details.get("outputDetails") or {}).get("truncated"):
            # What DescribeExecution will say: whether the run was handed to the lease holder, its summary.
            self.output = details.get("output")
        if self.status != "SUCCEEDED":
            self.error = details.get("error") or self.status
            self.cause = human_cause(self.error or "", str(details.get("cause") or ""))
        took = duration((when - self._start).total_seconds()) if when and self._start else ""
        suffix = f" after {took}" if took else ""
        self._containers.clear()
        text = f"execution {self.status}{suffix}" + (f": {self.error}" if self.error else "")
        return [Line(self._prefix(when) + text)]


class Display:
    """Writes progress lines; on a terminal, transient lines are redrawn in place."""

    def __init__(self, stream: Any, *, live: bool | None = None) -> None:
        self._stream = stream
        isatty = getattr(stream, "isatty", None)
        self.live = bool(isatty and isatty()) if live is None else live
        self._drawn = False
        self._last_transient = ""

    def show(self, lines: list[Line]) -> None:
        for line in lines:
            if line.live_only and not self.live:
                continue
            if line.transient:
                if self.live:
                    width = max(20, shutil.get_terminal_size((100, 20)).columns - 1)
                    self._stream.write("\r\x1b[2K" + line.text[:width])
                    self._drawn = True
                elif line.text != self._last_transient:
                    self._stream.write(line.text + "\n")
                self._last_transient = line.text
            else:
                if self._drawn:
                    self._stream.write("\r\x1b[2K")
                    self._drawn = False
                self._stream.write(line.text + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._drawn:
            self._stream.write("\r\x1b[2K")
            self._drawn = False
            self._stream.flush()


class HistoryReader:
    """The events of one execution not returned before, oldest first."""

    def __init__(self, sfn: Any, execution_arn: str, *, page_size: int = 100) -> None:
        self._sfn = sfn
        self._arn = execution_arn
        self._page_size = page_size
        self.last_id = 0

    def new_events(self) -> list[dict[str, Any]]:
        fresh: dict[int, dict[str, Any]] = {}
        kwargs: dict[str, Any] = {
            "executionArn": self._arn,
            "reverseOrder": True,
            "maxResults": self._page_size,
        }
        while True:
            page = self._sfn.get_execution_history(**kwargs)
            events = page.get("events", [])
            ids = [int(e["id"]) for e in events]
            fresh.update({int(e["id"]): e for e in events if int(e["id"]) > self.last_id})
            newest_first = all(a > b for a, b in itertools.pairwise(ids))
            # Newest first: once a page reaches a seen event, every older page is seen too. (A server that
            # ignores reverseOrder answers oldest first; then every page is read.)
            if (newest_first and ids and min(ids) <= self.last_id) or not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        ordered = [fresh[i] for i in sorted(fresh)]
        if ordered:
            self.last_id = int(ordered[-1]["id"])
        return ordered


class FollowTimeoutError(Exception):
    """The execution did not end within the time the operator allowed for following it."""


def follow_execution(
    sfn: Any,
    execution_arn: str,
    display: Display,
    renderer: HistoryRenderer,
    *,
    min_interval_s: float = 1.0,
    max_interval_s: float = 5.0,
    timeout_s: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Render the execution's events until it ends; returns DescribeExecution of the ended execution."""
    reader = HistoryReader(sfn, execution_arn)
    deadline = clock() + timeout_s if timeout_s else None
    interval = min_interval_s
    try:
        while True:
            events = reader.new_events()
            for event in events:
                display.show(renderer.feed(event))
            if renderer.finished:
                break
            if not events:
                # No news: ask for the status too, in case the history stops short of the end event.
                described = sfn.describe_execution(executionArn=execution_arn)
                if described.get("status") not in NOT_ENDED:
                    for event in reader.new_events():
                        display.show(renderer.feed(event))
                    break
            if deadline is not None and clock() >= deadline:
                raise FollowTimeoutError(f"still running after {duration(timeout_s or 0)}")
            sleep(interval)
            interval = min_interval_s if events else min(max_interval_s, interval * 1.5)
    finally:
        display.close()
    return final_description(sfn, execution_arn, renderer)


def final_description(sfn: Any, execution_arn: str, renderer: HistoryRenderer) -> dict[str, Any]:
    """DescribeExecution of an execution whose history has ended."""
    described = dict(sfn.describe_execution(executionArn=execution_arn))
    if described.get("status") == "RUNNING" and renderer.finished:
        # The end event can be readable before DescribeExecution reports the end: the history decides.
        described.update(status=renderer.status, error=renderer.error, cause=renderer.cause)
        if renderer.output is not None:
            described["output"] = renderer.output
    return described
