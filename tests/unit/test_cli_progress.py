"""The live progress view, driven by the recorded execution histories in events/ and a fake Step Functions
that reveals a history a few events at a time, newest first and paginated like the real API."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from dbx_privatelink_cli.progress import (
    Display,
    FollowTimeoutError,
    HistoryReader,
    HistoryRenderer,
    follow_execution,
)

EVENTS = Path(__file__).resolve().parents[2] / "events"


def history(kind: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = json.loads((EVENTS / f"execution_history_{kind}.json").read_text())[
        "events"
    ]
    return events


def render(events: list[dict[str, Any]], *, live: bool = False) -> tuple[HistoryRenderer, str]:
    renderer, out = HistoryRenderer(), io.StringIO()
    display = Display(out, live=live)
    for event in events:
        display.show(renderer.feed(event))
    display.close()
    return renderer, out.getvalue()


class FakeStepFunctions:
    """GetExecutionHistory over a growing history: `reveal` more events per call, pages of `page_size`,
    newest first when asked (or always oldest first, like moto, when `honours_reverse` is False)."""

    def __init__(
        self, events: list[dict[str, Any]], *, reveal: int = 7, honours_reverse: bool = True
    ) -> None:
        self.events = events
        self.visible = 0
        self.reveal = reveal
        self.honours_reverse = honours_reverse
        self.history_calls = 0
        self.describe_calls = 0

    def get_execution_history(
        self,
        executionArn: str,
        maxResults: int = 100,
        reverseOrder: bool = False,
        nextToken: str | None = None,
    ) -> dict[str, Any]:
        self.history_calls += 1
        if nextToken is None:
            self.visible = min(len(self.events), self.visible + self.reveal)
        shown = self.events[: self.visible]
        if reverseOrder and self.honours_reverse:
            shown = list(reversed(shown))
        start = int(nextToken or 0)
        page = shown[start : start + maxResults]
        result: dict[str, Any] = {"events": page}
        if start + maxResults < len(shown):
            result["nextToken"] = str(start + maxResults)
        return result

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        self.describe_calls += 1
        done = self.visible == len(self.events)
        last = self.events[-1]
        status = {"ExecutionSucceeded": "SUCCEEDED", "ExecutionFailed": "FAILED"}.get(last["type"], "RUNNING")
        described: dict[str, Any] = {"executionArn": executionArn, "status": status if done else "RUNNING"}
        if done and "executionFailedEventDetails" in last:
            described.update(last["executionFailedEventDetails"])
        return described


def test_success_shows_each_step_the_map_items_the_retry_and_the_collapsed_polls() -> None:
    renderer, text = render(history("success"))
    lines = text.splitlines()
    assert renderer.status == "SUCCEEDED"
    assert renderer.error is None
    # states entered and exited, with what they did
    assert any("start AcquireLease" in line for line in lines)
    assert any("done  AcquireLease" in line and "generation 3" in line for line in lines)
    # a failed attempt, then its retry, with the error name
    assert any("error Preflight: AwsThrottledError" in line for line in lines)
    assert any("retry Preflight (attempt 2 after AwsThrottledError)" in line for line in lines)
    assert any("done  Preflight" in line and "2 attempts" in line for line in lines)
    # Map iterations are labelled and the label ends with the Map
    assert any("start EnsureEndpoints (5 item(s))" in line for line in lines)
    assert sum("done  EnsureEndpoint [" in line for line in lines) == 5
    assert any(
        "EnsureEndpoint [2/5]" in line and "relay: found vpce-0d8e7f6a5b4c3d202" in line for line in lines
    )
    assert not any("[5/5]" in line for line in lines if "EnsureEndpoint " not in line)
    # a Wait -> Check -> Choice loop: one line per attempt, never the Choice or the Wait state by name
    assert any(
        "waiting for workspace running (attempt 1, next check in 23s): workspace 1234567890123456 is PROVISIONING"
        in line
        for line in lines
    )
    assert any("done  workspace running (3 checks" in line for line in lines)
    assert not any("WorkspaceRunningReady" in line or "WaitForWorkspaceRunning" in line for line in lines)
    assert lines[-1].endswith("execution SUCCEEDED after 1m50s")


def test_failure_names_the_error_and_gives_the_human_cause() -> None:
    renderer, text = render(history("failure"))
    assert renderer.status == "FAILED"
    assert renderer.error == "EndpointRejectedError"
    assert renderer.cause is not None
    assert renderer.cause.startswith("Databricks registration 3e5a7c9b")
    assert "{" not in renderer.cause  # the Lambda's JSON payload is unwrapped
    assert "error CheckEndpointsAvailable: EndpointRejectedError: Databricks registration" in text
    assert "FAIL  Reconcile (1m08s): EndpointRejectedError, caught" in text
    assert "retry RegisterEndpoints (attempt 2 after DatabricksUnavailableError)" in text
    assert text.splitlines()[-1].endswith("execution FAILED after 1m10s: EndpointRejectedError")


def test_pass_and_choice_states_show_only_when_verbose() -> None:
    quiet = HistoryRenderer()
    verbose = HistoryRenderer(verbose=True)
    quiet_text = [line.text for e in history("success") for line in quiet.feed(e)]
    verbose_text = [line.text for e in history("success") for line in verbose.feed(e)]
    assert not any("LeaseAcquired" in t for t in quiet_text)
    assert any("choice  LeaseAcquired" in t for t in verbose_text)


def test_on_a_terminal_transient_lines_are_redrawn_in_place() -> None:
    _, plain = render(history("success"), live=False)
    _, live = render(history("success"), live=True)
    assert "\r" not in plain
    assert "\x1b[2K" in live
    # the "start X" and "waiting" lines are replaced, not kept: fewer lines end up on screen
    assert live.count("\n") < plain.count("\n")
    assert "checking workspace running (attempt 2)" in live
    assert "checking workspace running" not in plain


def test_following_reads_each_event_once_and_ends_with_the_execution() -> None:
    # Given an execution whose history grows by 7 events per poll
    events = history("success")
    sfn = FakeStepFunctions(events, reveal=7)
    renderer, out = HistoryRenderer(), io.StringIO()
    fed: list[int] = []
    feed = renderer.feed

    def spy(event: dict[str, Any]) -> Any:
        fed.append(int(event["id"]))
        return feed(event)

    renderer.feed = spy  # type: ignore[method-assign]
    sleeps: list[float] = []
    # When it is followed
    described = follow_execution(sfn, "arn:exec", Display(out, live=False), renderer, sleep=sleeps.append)
    # Then every event was rendered once, in order, and following stopped at the end
    assert fed == [int(e["id"]) for e in events]
    assert described["status"] == "SUCCEEDED"
    assert renderer.finished
    polls = -(-len(events) // 7)
    assert len(sleeps) == polls - 1
    # newest first: each poll reads one page, as only its newest events are unseen
    assert sfn.history_calls <= polls + 1


def test_newest_first_pages_stop_at_the_first_seen_event() -> None:
    events = history("success")
    sfn = FakeStepFunctions(events, reveal=7)
    reader = HistoryReader(sfn, "arn:exec", page_size=5)
    seen: list[int] = []
    while len(seen) < len(events):
        before = sfn.history_calls
        seen += [int(e["id"]) for e in reader.new_events()]
        assert (
            sfn.history_calls - before <= 2
        )  # 7 new events: at most two pages of 5, never the whole history
    assert seen == [int(e["id"]) for e in events]


def test_a_server_that_ignores_reverse_order_is_still_read_completely() -> None:
    events = history("failure")
    sfn = FakeStepFunctions(events, reveal=30, honours_reverse=False)
    reader = HistoryReader(sfn, "arn:exec", page_size=10)
    seen: list[int] = []
    for _ in range(10):
        seen += [int(e["id"]) for e in reader.new_events()]
    assert seen == [int(e["id"]) for e in events]


def test_a_history_without_its_end_event_ends_on_the_described_status() -> None:
    # moto's mock backend (no interpreter) never writes the end event: the status decides.
    events = [e for e in history("failure") if e["type"] != "ExecutionFailed"]
    sfn = FakeStepFunctions(events, reveal=len(events))
    sfn.events[-1] = {**events[-1]}

    def describe(executionArn: str) -> dict[str, Any]:
        return {"executionArn": executionArn, "status": "FAILED", "error": "X", "cause": "y"}

    sfn.describe_execution = describe  # type: ignore[method-assign]
    described = follow_execution(
        sfn, "arn:exec", Display(io.StringIO()), HistoryRenderer(), sleep=lambda s: None
    )
    assert described["status"] == "FAILED"


def test_following_gives_up_after_the_timeout() -> None:
    events = history("success")[:20]  # never ends
    sfn = FakeStepFunctions(events, reveal=5)
    clock = iter(float(t) for t in range(1000))
    with pytest.raises(FollowTimeoutError):
        follow_execution(
            sfn,
            "arn:exec",
            Display(io.StringIO()),
            HistoryRenderer(),
            timeout_s=30,
            sleep=lambda s: None,
            clock=lambda: next(clock),
        )


def test_the_end_event_decides_when_describe_still_says_running() -> None:
    # Given a service whose DescribeExecution lags behind the history's end event
    events = history("failure")
    sfn = FakeStepFunctions(events, reveal=len(events))

    def lagging(executionArn: str) -> dict[str, Any]:
        return {"executionArn": executionArn, "status": "RUNNING"}

    sfn.describe_execution = lagging  # type: ignore[method-assign]
    described = follow_execution(
        sfn, "arn:exec", Display(io.StringIO()), HistoryRenderer(), sleep=lambda s: None
    )
    assert described["status"] == "FAILED"
    assert described["error"] == "EndpointRejectedError"
    assert str(described["cause"]).startswith("Databricks registration")


def test_the_end_event_brings_the_output_when_describe_still_says_running() -> None:
    # Given a history that has ended (its success event carries the output) while DescribeExecution still
    # says RUNNING, without output (moto's interpreter writes the end event first)
    events = history("success")
    sfn = FakeStepFunctions(events, reveal=len(events))
    sfn.describe_execution = lambda executionArn: {"executionArn": executionArn, "status": "RUNNING"}  # type: ignore[method-assign]
    described = follow_execution(
        sfn, "arn:exec", Display(io.StringIO()), HistoryRenderer(), sleep=lambda s: None
    )
    # Then the description has the event's status and output (what tells a run handed to the lease holder)
    assert described["status"] == "SUCCEEDED"
    assert described["output"] == events[-1]["executionSucceededEventDetails"]["output"]
