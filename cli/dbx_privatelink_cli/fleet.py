"""Following many executions in one view: a line per workspace with its current step and elapsed time.

The single view's parts do the reading and the wording: each execution has its own HistoryReader and
HistoryRenderer, and a workspace's "current step" is the last line its renderer produced.

What it costs, kept bounded for tens of workspaces: each round describes every execution still running (so
an end is seen within one round), and reads the history of at most MAX_HISTORIES_PER_ROUND of them. The
executions that just ended are read first (their last events), then those whose history is due, most
overdue first. A history that had news is due again after the single view's minimum interval; a quiet one
backs off as the single view does (x1.5 up to its maximum). The round interval is the single view's
minimum, stretched so that a round's calls stay under MAX_CALLS_PER_SECOND: 30 workspaces cost about 10
calls a second, far below Step Functions' DescribeExecution and GetExecutionHistory rates.

FleetView shows it: on a terminal the block of lines is redrawn in place each round; anywhere else (CI logs,
pipes) each workspace's progress lines are printed once, prefixed with its key, as the single view would.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from dbx_privatelink_cli.output import table
from dbx_privatelink_cli.progress import (
    NOT_ENDED,
    FollowTimeoutError,
    HistoryReader,
    HistoryRenderer,
    Line,
    duration,
    final_description,
)

MAX_HISTORIES_PER_ROUND = 5
MAX_CALLS_PER_SECOND = 10.0
# A call about one execution that fails (after the SDK's own retries) is tried again next round, so one
# throttled or flaky read does not end the wait for the whole fleet; this many in a row for one execution do.
MAX_CONSECUTIVE_FAILURES = 5
_STAMP = re.compile(r"^\[[0-9:]+\] *")


def step_text(line: Line) -> str:
    """A progress line without its elapsed-time stamp and indentation: what the workspace is doing."""
    return _STAMP.sub("", line.text).strip()


@dataclass
class Member:
    """One execution of the fleet, as followed: its reader and renderer, what it does now, how it ended."""

    key: str
    execution_arn: str
    renderer: HistoryRenderer
    followed_at: float  # clock() when following began: the live elapsed time needs no AWS clock
    reader: HistoryReader | None = None
    step: str = "started"
    described: dict[str, Any] | None = None  # DescribeExecution, once it has ended
    ended_at: float | None = None
    history_interval: float = 0.0
    next_history_at: float = 0.0
    failures: dict[str, int] = field(default_factory=dict)  # per operation: calls that failed in a row

    @property
    def status(self) -> str:
        return str(self.described.get("status", "UNKNOWN")) if self.described else "RUNNING"

    def seconds(self, now: float) -> float:
        """How long it ran: Step Functions' own start and stop once ended, else time since followed."""
        if self.described:
            start, stop = self.described.get("startDate"), self.described.get("stopDate")
            if isinstance(start, datetime) and isinstance(stop, datetime):
                return (stop - start).total_seconds()
        return (self.ended_at if self.ended_at is not None else now) - self.followed_at


@dataclass(frozen=True)
class FleetRow:
    key: str
    status: str
    seconds: float
    step: str


def rows_of(members: Sequence[Member], now: float) -> list[FleetRow]:
    return [FleetRow(m.key, m.status, m.seconds(now), m.step) for m in members]


def headline(rows: Sequence[FleetRow]) -> str:
    """ "3 executions: 1 running, 1 succeeded, 1 failed" (statuses in the order they first appear)."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    parts = [f"{n} {status.lower().replace('_', ' ')}" for status, n in counts.items()]
    return f"{len(rows)} execution{'s' if len(rows) != 1 else ''}: " + ", ".join(parts)


def render_rows(rows: Sequence[FleetRow], *, width: int, height: int) -> list[str]:
    """The live block: a headline, then a line per workspace (key, status, elapsed, step), each cut to
    `width`. When the block would not fit in `height` lines, ended workspaces give their lines up first
    (the headline counts them), then the last running ones, summed up in a final line."""
    room = max(2, height - 1)  # the headline, and the cursor's line below the block
    shown = list(rows)
    if len(shown) + 1 > room:
        running = [r for r in rows if r.status == "RUNNING"]
        shown = running if running else shown
        if len(shown) + 1 > room:
            shown = shown[: max(1, room - 2)]
    hidden = len(rows) - len(shown)
    cells = [[r.key, r.status, duration(r.seconds), r.step] for r in shown]
    lines = [headline(rows), *table(cells)]
    if hidden:
        lines.append(f"  ... and {hidden} more")
    return [line if len(line) <= width else line[: max(1, width - 3)] + "..." for line in lines]


def _terminal_size() -> tuple[int, int]:
    size = shutil.get_terminal_size((100, 24))
    return size.columns, size.lines


class FleetView:
    """Writes the fleet's progress; redraws a block in place on a terminal, prints plain lines elsewhere."""

    def __init__(
        self,
        stream: Any,
        keys: Sequence[str],
        *,
        live: bool | None = None,
        terminal_size: Callable[[], tuple[int, int]] | None = None,
    ) -> None:
        self._stream = stream
        isatty = getattr(stream, "isatty", None)
        self.live = bool(isatty and isatty()) if live is None else live
        self._terminal_size = terminal_size or _terminal_size
        self._width = max((len(k) for k in keys), default=0)
        self._drawn = 0
        self._last_transient: dict[str, str] = {}

    def show(self, key: str, lines: list[Line]) -> None:
        """Lines of one workspace's progress: printed at once off a terminal (a live view redraws instead)."""
        if self.live:
            return
        for line in lines:
            if line.live_only:
                continue
            if line.transient:
                if self._last_transient.get(key) == line.text:
                    continue
                self._last_transient[key] = line.text
            self._stream.write(f"{key.ljust(self._width)}  {line.text}\n")
        self._stream.flush()

    def draw(self, rows: Sequence[FleetRow]) -> None:
        """The block of lines, in place of the one drawn before (a terminal only)."""
        if not self.live:
            return
        columns, lines = self._terminal_size()
        block = render_rows(rows, width=max(20, columns - 1), height=lines)
        # Back to the start of the previous block, clear to the end of the screen, write the new one.
        up = f"\x1b[{self._drawn}F" if self._drawn else "\r"
        self._stream.write(up + "\x1b[J" + "".join(line + "\n" for line in block))
        self._drawn = len(block)
        self._stream.flush()

    def close(self) -> None:
        self._stream.flush()


def follow_fleet(
    sfn: Any,
    members: list[Member],
    view: FleetView,
    *,
    min_interval_s: float = 1.0,
    max_interval_s: float = 5.0,
    max_histories_per_round: int = MAX_HISTORIES_PER_ROUND,
    max_calls_per_second: float = MAX_CALLS_PER_SECOND,
    timeout_s: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Follow every member until all have ended; FollowTimeoutError after `timeout_s` for all of them,
    the AWS error when one execution could not be read MAX_CONSECUTIVE_FAILURES times in a row.

    Members are updated in place (step, described), so an interrupted or timed-out wait still knows
    where each one was.
    """
    deadline = clock() + timeout_s if timeout_s else None
    for member in members:
        member.reader = member.reader or HistoryReader(sfn, member.execution_arn)
        member.history_interval = min_interval_s

    def attempt[T](member: Member, operation: str, call: Callable[[], T]) -> T | None:
        """The call's result; None when it failed and may be tried next round. Counted per operation, so
        a history that reads fine cannot hide a DescribeExecution that never does."""
        try:
            result = call()
        except (ClientError, BotoCoreError):
            member.failures[operation] = member.failures.get(operation, 0) + 1
            if member.failures[operation] >= MAX_CONSECUTIVE_FAILURES:
                raise
            return None
        member.failures[operation] = 0
        return result

    def read_history(member: Member, now: float) -> None:
        assert member.reader is not None
        events = attempt(member, "GetExecutionHistory", member.reader.new_events)
        if events is None:
            return
        for event in events:
            lines = member.renderer.feed(event)
            view.show(member.key, lines)
            if lines:
                member.step = step_text(lines[-1])
        member.history_interval = (
            min_interval_s if events else min(max_interval_s, member.history_interval * 1.5)
        )
        member.next_history_at = now + member.history_interval

    try:
        while True:
            running = [m for m in members if m.described is None]
            if not running:
                break
            now = clock()
            ended: list[tuple[Member, dict[str, Any]]] = []
            for member in running:
                describe = partial(sfn.describe_execution, executionArn=member.execution_arn)
                described = attempt(member, "DescribeExecution", describe)
                if described is not None and described.get("status") not in NOT_ENDED:
                    ended.append((member, dict(described)))
            ended_members = {id(m) for m, _ in ended}
            due = sorted(
                (m for m in running if id(m) not in ended_members and m.next_history_at <= now),
                key=lambda m: m.next_history_at,
            )
            # The ended are always read (each once in all); the running share what the cap leaves.
            for member, described in ended:
                read_history(member, now)  # its last events; should this read fail, the end is known anyway
                member.described, member.ended_at = described, clock()
                if not member.renderer.finished:
                    member.step = f"execution {member.status}"
            for member in due[: max(0, max_histories_per_round - len(ended))]:
                read_history(member, now)
                if member.renderer.finished:
                    # The history showed the end before DescribeExecution did: the history decides.
                    describe = partial(final_description, sfn, member.execution_arn, member.renderer)
                    final = attempt(member, "DescribeExecution", describe)
                    if final is not None:
                        member.described, member.ended_at = final, clock()
            view.draw(rows_of(members, clock()))
            still = [m for m in members if m.described is None]
            if not still:
                break
            if deadline is not None and clock() >= deadline:
                raise FollowTimeoutError(
                    f"{len(still)} of {len(members)} execution(s) still running after {duration(timeout_s or 0)}"
                )
            calls = len(still) + min(max_histories_per_round, len(still))
            interval = max(min_interval_s, calls / max_calls_per_second)
            sleep(interval)
    finally:
        view.close()
