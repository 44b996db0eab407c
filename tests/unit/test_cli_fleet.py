"""`apply` with many specs, without AWS: which files a command line names, validation before anything starts,
the fleet's live view, and following many executions with bounded calls (a fake Step Functions whose
recorded histories from events/ unfold with a fake clock)."""

from __future__ import annotations

import copy
import io
import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.exceptions import ClientError
from unit.test_cli_main import EXAMPLE, CallLog, run

from dbx_privatelink_cli.apply import fleet_summary
from dbx_privatelink_cli.common import CliError
from dbx_privatelink_cli.fleet import FleetRow, FleetView, Member, follow_fleet, render_rows
from dbx_privatelink_cli.main import build_parser
from dbx_privatelink_cli.progress import FollowTimeoutError, HistoryRenderer, Line
from dbx_privatelink_cli.specs import expand, is_single_file, load_all

EVENTS = Path(__file__).resolve().parents[2] / "events"


def spec_document(key: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    document["workspace_key"] = key
    return document


def write_spec(path: Path, key: str, **changes: Any) -> Path:
    document = {**spec_document(key), **changes}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document) if path.suffix == ".json" else yaml.safe_dump(document))
    return path


# --- which files a command line names ------------------------------------------------------------------


def test_a_directory_names_its_yaml_yml_and_json_files_sorted_and_not_its_subdirectories(
    tmp_path: Path,
) -> None:
    # Given a directory of specs with a README, a subdirectory holding another spec, and mixed suffixes
    write_spec(tmp_path / "specs" / "c.json", "charlie")
    write_spec(tmp_path / "specs" / "a.yaml", "alpha")
    write_spec(tmp_path / "specs" / "b.yml", "bravo")
    write_spec(tmp_path / "specs" / "nested" / "d.yaml", "delta")
    (tmp_path / "specs" / "README.md").write_text("# specs\n")
    # When it is expanded
    files = expand([str(tmp_path / "specs")])
    # Then its three spec files, in name order, and nothing else
    assert [Path(f).name for f in files] == ["a.yaml", "b.yml", "c.json"]


def test_a_quoted_glob_is_expanded_here_and_a_file_named_like_a_glob_stays_itself(tmp_path: Path) -> None:
    write_spec(tmp_path / "eu-b.yaml", "eu-b")
    write_spec(tmp_path / "eu-a.yaml", "eu-a")
    write_spec(tmp_path / "us-a.yaml", "us-a")
    literal = write_spec(tmp_path / "odd[1].yaml", "odd")
    assert [Path(f).name for f in expand([str(tmp_path / "eu-*.yaml")])] == ["eu-a.yaml", "eu-b.yaml"]
    assert expand([str(literal)]) == [str(literal)]


def test_the_same_file_named_twice_is_one_spec(tmp_path: Path) -> None:
    a = write_spec(tmp_path / "specs" / "a.yaml", "alpha")
    write_spec(tmp_path / "specs" / "b.yaml", "bravo")
    files = expand([str(a), str(tmp_path / "specs"), str(tmp_path / "specs" / "*.yaml")])
    assert [Path(f).name for f in files] == ["a.yaml", "b.yaml"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["empty"], "a directory with no spec files"),
        (["nothing-*.yaml"], "no spec file matches this pattern"),
        (["absent.yaml", "a.yaml"], "absent.yaml: no such file or directory"),
        (["-", "a.yaml"], "- (standard input) can only be the only SPEC"),
    ],
)
def test_what_names_no_spec_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not a spec")
    write_spec(tmp_path / "a.yaml", "alpha")
    with pytest.raises(CliError) as caught:
        expand(args)
    assert caught.value.exit_code == 2
    assert message in str(caught.value)


def test_only_one_file_or_stdin_is_the_single_mode(tmp_path: Path) -> None:
    a = write_spec(tmp_path / "a.yaml", "alpha")
    b = write_spec(tmp_path / "b.yaml", "bravo")
    assert is_single_file([str(a)])
    assert is_single_file(["-"])
    assert is_single_file([str(tmp_path / "absent.yaml")])  # load_spec then says it cannot read it
    assert not is_single_file([str(a), str(b)])
    assert not is_single_file([str(tmp_path)])  # a directory is a fleet, even of one
    assert not is_single_file([str(tmp_path / "a*.yaml")])


def test_every_invalid_spec_is_named_with_its_field_and_fix(tmp_path: Path) -> None:
    # Given two valid specs and two broken ones
    write_spec(tmp_path / "a.yaml", "alpha")
    write_spec(tmp_path / "b.yaml", "bravo", regoin="us-east-1")
    write_spec(tmp_path / "c.yaml", "charlie")
    (tmp_path / "d.yaml").write_text("workspace_key: [unclosed")
    # When the directory is loaded
    with pytest.raises(CliError) as caught:
        load_all([str(tmp_path)])
    # Then one usage error names both files and what is wrong with each
    message = str(caught.value)
    assert caught.value.exit_code == 2
    assert caught.value.name == "SpecInvalidError"
    assert message.startswith("2 problems; nothing was started:")
    assert f"{tmp_path / 'b.yaml'}: " in message and "regoin: unknown field" in message
    assert f"{tmp_path / 'd.yaml'}: not valid YAML" in message
    assert "a.yaml" not in message


def test_two_specs_of_one_workspace_are_refused_naming_both_files(tmp_path: Path) -> None:
    first = write_spec(tmp_path / "one.yaml", "acme")
    second = write_spec(tmp_path / "two.json", "acme")
    with pytest.raises(CliError) as caught:
        load_all([str(first), str(second)])
    assert caught.value.exit_code == 2
    assert caught.value.name == "DuplicateWorkspaceKeyError"
    assert f"{first}, {second}: the same workspace_key 'acme' in 2 specs" in str(caught.value)


def test_valid_specs_load_in_order(tmp_path: Path) -> None:
    write_spec(tmp_path / "b.yaml", "bravo")
    write_spec(tmp_path / "a.yaml", "alpha")
    assert [s.spec.workspace_key for s in load_all([str(tmp_path)])] == ["alpha", "bravo"]


# --- the command line --------------------------------------------------------------------------------------


def test_apply_takes_several_specs_and_status_takes_none() -> None:
    args = build_parser().parse_args(["apply", "a.yaml", "specs/", "--wait"])
    assert (args.specs, args.spec, args.wait) == (["a.yaml", "specs/"], None, True)
    assert build_parser().parse_args(["status"]).workspace is None


def test_one_invalid_spec_among_valid_ones_exits_2_before_any_aws_call(tmp_path: Path) -> None:
    write_spec(tmp_path / "a.yaml", "alpha")
    write_spec(tmp_path / "b.yaml", "bravo", network={"vpc_id": "vpc-XYZ"})
    log = CallLog()
    code, out, err = run(["apply", str(tmp_path), "--wait", "--output", "json"], log)
    assert code == 2
    assert log.calls == []
    assert f"{tmp_path / 'b.yaml'}: " in err and "network.vpc_id" in err
    assert json.loads(out)["error"] == "SpecInvalidError"


def test_duplicate_keys_exit_2_before_any_aws_call(tmp_path: Path) -> None:
    write_spec(tmp_path / "a.yaml", "same")
    write_spec(tmp_path / "b.yaml", "same")
    log = CallLog()
    code, out, err = run(["apply", str(tmp_path / "*.yaml"), "--output", "json"], log)
    assert (code, log.calls) == (2, [])
    assert json.loads(out)["error"] == "DuplicateWorkspaceKeyError"
    assert "a.yaml" in err and "b.yaml" in err


# --- the live view -------------------------------------------------------------------------------------


ROWS = [
    FleetRow("acme-eu", "RUNNING", 83.0, "waiting for workspace running (attempt 2, next check in 34s)"),
    FleetRow("acme-us", "SUCCEEDED", 110.0, "execution SUCCEEDED after 1m50s"),
    FleetRow("globex", "FAILED", 70.4, "execution FAILED after 1m10s: EndpointRejectedError"),
]


def test_a_line_per_workspace_with_status_elapsed_and_step_under_a_headline() -> None:
    lines = render_rows(ROWS, width=200, height=40)
    assert lines[0] == "3 executions: 1 running, 1 succeeded, 1 failed"
    assert (
        lines[1]
        == "  acme-eu  RUNNING    1m23s  waiting for workspace running (attempt 2, next check in 34s)"
    )
    # the columns line up
    assert {
        line.index(status) for line, status in zip(lines[1:], ("RUNNING", "SUCCEEDED", "FAILED"), strict=True)
    } == {11}


def test_lines_are_cut_to_the_terminal_width() -> None:
    lines = render_rows(ROWS, width=40, height=40)
    assert all(len(line) <= 40 for line in lines)
    assert lines[1].endswith("...")


def test_a_fleet_taller_than_the_terminal_shows_the_running_ones_first() -> None:
    # Given 3 running and 7 ended workspaces, and an 8-line terminal
    rows = [FleetRow(f"ended-{i}", "SUCCEEDED", 10.0, "done") for i in range(7)]
    rows[2:2] = [FleetRow(f"busy-{i}", "RUNNING", 5.0, "start Preflight") for i in range(3)]
    lines = render_rows(rows, width=100, height=8)
    # Then the headline counts all, the running are shown, and the rest is summed up
    assert lines[0] == "10 executions: 7 succeeded, 3 running"
    assert [line.split()[0] for line in lines[1:4]] == ["busy-0", "busy-1", "busy-2"]
    assert lines[4] == "  ... and 7 more"
    assert len(lines) <= 7
    # And when even the running ones do not fit, the block still fits
    busy = [FleetRow(f"busy-{i}", "RUNNING", 5.0, "start Preflight") for i in range(10)]
    assert len(render_rows(busy, width=100, height=6)) <= 5


def test_off_a_terminal_each_workspace_prints_its_lines_once_prefixed_with_its_key() -> None:
    out = io.StringIO()
    view = FleetView(out, ["a", "globex"], live=False)
    waiting = Line("[00:05]   waiting for workspace running (attempt 1)", transient=True)
    view.show("a", [Line("[00:00] execution started"), waiting])
    view.show("a", [waiting, Line("[00:06]   checking workspace running (attempt 2)", live_only=True)])
    view.show("globex", [waiting])
    view.draw(ROWS)  # no redraw off a terminal
    assert out.getvalue().splitlines() == [
        "a       [00:00] execution started",
        "a       [00:05]   waiting for workspace running (attempt 1)",
        "globex  [00:05]   waiting for workspace running (attempt 1)",
    ]


def test_on_a_terminal_the_block_is_redrawn_in_place() -> None:
    out = io.StringIO()
    view = FleetView(out, [r.key for r in ROWS], live=True, terminal_size=lambda: (120, 40))
    view.show("acme-eu", [Line("[00:00] execution started")])  # a terminal shows the block only
    view.draw(ROWS)
    first = out.getvalue()
    view.draw(ROWS[:1])
    second = out.getvalue()[len(first) :]
    assert first.startswith("\r\x1b[J3 executions:")
    assert first.count("\n") == 4
    assert second.startswith("\x1b[4F\x1b[J1 execution: 1 running\n")


# --- following many executions -------------------------------------------------------------------------


def history(kind: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = json.loads((EVENTS / f"execution_history_{kind}.json").read_text())[
        "events"
    ]
    return events


def _when(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["timestamp"])


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class FakeFleetSfn:
    """Step Functions running recorded histories, each event visible once the fake clock has passed its
    offset from the execution's start; histories paginated newest first like the real API. Every call is
    logged with the round (the number of sleeps so far) it was made in."""

    def __init__(self, clock: FakeClock, histories: dict[str, list[dict[str, Any]]], *, lag: bool = False):
        self.clock = clock
        self.histories = histories
        self.lag = lag  # DescribeExecution never reports the end: only the history shows it
        self.calls: list[tuple[int, str, str]] = []

    def _visible(self, arn: str) -> list[dict[str, Any]]:
        events = self.histories[arn]
        start = _when(events[0])
        return [e for e in events if (_when(e) - start).total_seconds() <= self.clock.now]

    def get_execution_history(
        self,
        executionArn: str,
        maxResults: int = 100,
        reverseOrder: bool = False,
        nextToken: str | None = None,
    ) -> dict[str, Any]:
        if nextToken is None:
            self.calls.append((len(self.clock.sleeps), "history", executionArn))
        shown = self._visible(executionArn)
        shown = list(reversed(shown)) if reverseOrder else shown
        begin = int(nextToken or 0)
        page: dict[str, Any] = {"events": copy.deepcopy(shown[begin : begin + maxResults])}
        if begin + maxResults < len(shown):
            page["nextToken"] = str(begin + maxResults)
        return page

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        self.calls.append((len(self.clock.sleeps), "describe", executionArn))
        events = self.histories[executionArn]
        described: dict[str, Any] = {
            "executionArn": executionArn,
            "status": "RUNNING",
            "startDate": _when(events[0]),
        }
        if len(self._visible(executionArn)) < len(events) or self.lag:
            return described
        last = events[-1]
        described["stopDate"] = _when(last)
        if last["type"] == "ExecutionSucceeded":
            described.update(
                status="SUCCEEDED", output=last["executionSucceededEventDetails"].get("output", "{}")
            )
        else:
            described.update(status="FAILED", **last["executionFailedEventDetails"])
        return described

    def per_round(self, op: str) -> Counter[int]:
        return Counter(r for r, o, _ in self.calls if o == op)


def fleet(clock: FakeClock, kinds: list[str], **kwargs: Any) -> tuple[FakeFleetSfn, list[Member]]:
    sfn = FakeFleetSfn(clock, {f"arn:exec:{i}": history(k) for i, k in enumerate(kinds)}, **kwargs)
    members = [
        Member(f"ws-{i}", f"arn:exec:{i}", HistoryRenderer(), followed_at=clock.now)
        for i in range(len(kinds))
    ]
    return sfn, members


def test_every_execution_is_followed_to_its_end_in_one_view() -> None:
    # Given two succeeding executions and one failing
    clock = FakeClock()
    sfn, members = fleet(clock, ["success", "failure", "success"])
    out = io.StringIO()
    # When the fleet is followed off a terminal
    follow_fleet(
        sfn,
        members,
        FleetView(out, [m.key for m in members], live=False),
        sleep=clock.sleep,
        clock=clock.time,
    )
    # Then each ended as its history did, with its last line as its step and Step Functions' duration
    assert [m.status for m in members] == ["SUCCEEDED", "FAILED", "SUCCEEDED"]
    assert members[0].step == "execution SUCCEEDED after 1m50s"
    assert members[1].step == "execution FAILED after 1m10s: EndpointRejectedError"
    assert members[1].described is not None and members[1].described["error"] == "EndpointRejectedError"
    assert members[0].seconds(clock.now) == pytest.approx(110.0)
    # ... every progress line was printed once, under its workspace's key
    text = out.getvalue()
    assert "ws-1  [01:10] execution FAILED after 1m10s: EndpointRejectedError" in text
    assert text.count("execution SUCCEEDED after 1m50s") == 2
    assert all(line.startswith(("ws-0  ", "ws-1  ", "ws-2  ")) for line in text.splitlines())
    # ... and an ended execution is never asked about again
    ended_round = max(r for r, _op, arn in sfn.calls if arn == "arn:exec:1")
    assert not [c for c in sfn.calls if c[2] == "arn:exec:1" and c[0] > ended_round]


def test_the_calls_per_round_are_bounded_and_the_interval_stretches_for_a_big_fleet() -> None:
    # Given twelve executions, at most three histories per round and 10 calls a second
    clock = FakeClock()
    sfn, members = fleet(clock, ["success", "failure"] * 6)
    view = FleetView(io.StringIO(), [m.key for m in members], live=False)
    # When they are followed
    follow_fleet(sfn, members, view, max_histories_per_round=3, sleep=clock.sleep, clock=clock.time)
    # Then every one ended
    assert {m.status for m in members} == {"SUCCEEDED", "FAILED"}
    # ... each round described only the executions still running, and read few histories: the cap, plus
    # the final read of those that ended in that round
    describes, histories = sfn.per_round("describe"), sfn.per_round("history")
    ended_in: Counter[int] = Counter()
    for arn in {arn for _r, _op, arn in sfn.calls}:
        ended_in[max(r for r, op, a in sfn.calls if a == arn and op == "describe")] += 1
    running = len(members)
    for round_ in sorted(describes):
        assert describes[round_] == running
        assert histories[round_] <= 3 + ended_in[round_]
        running -= ended_in[round_]
    # ... and the rounds were spaced so that 12 describes + 3 histories stay at 10 calls a second
    assert clock.sleeps[0] == pytest.approx(1.5)
    assert min(clock.sleeps) >= 1.0


def test_a_small_fleet_polls_at_the_single_views_interval() -> None:
    clock = FakeClock()
    sfn, members = fleet(clock, ["success", "success"])
    follow_fleet(
        sfn,
        members,
        FleetView(io.StringIO(), ["ws-0", "ws-1"], live=False),
        sleep=clock.sleep,
        clock=clock.time,
    )
    assert set(clock.sleeps) == {1.0}


def test_the_history_decides_when_it_shows_the_end_before_describe_does() -> None:
    clock = FakeClock()
    sfn, members = fleet(clock, ["success", "failure"], lag=True)
    follow_fleet(
        sfn,
        members,
        FleetView(io.StringIO(), ["ws-0", "ws-1"], live=False),
        sleep=clock.sleep,
        clock=clock.time,
    )
    assert [m.status for m in members] == ["SUCCEEDED", "FAILED"]
    assert members[1].described is not None and members[1].described["error"] == "EndpointRejectedError"


def test_the_timeout_covers_the_whole_wait_and_leaves_what_was_seen() -> None:
    # Given a failing execution (70 s) and a succeeding one (110 s), and 90 s allowed
    clock = FakeClock()
    sfn, members = fleet(clock, ["failure", "success"])
    with pytest.raises(FollowTimeoutError) as caught:
        follow_fleet(
            sfn,
            members,
            FleetView(io.StringIO(), ["ws-0", "ws-1"], live=False),
            timeout_s=90,
            sleep=clock.sleep,
            clock=clock.time,
        )
    # Then the wait stopped within a round of 90 s, with the first ended and the second where it was
    assert str(caught.value) == "1 of 2 execution(s) still running after 1m30s"
    assert 90 <= clock.now < 92
    assert members[0].status == "FAILED"
    assert members[1].described is None and members[1].step != "started"


class FlakySfn(FakeFleetSfn):
    """DescribeExecution of one execution throttled `failures` times in a row, then answered."""

    def __init__(self, *args: Any, flaky_arn: str, failures: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.flaky_arn, self.failures = flaky_arn, failures

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        if executionArn == self.flaky_arn and self.failures > 0:
            self.failures -= 1
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "DescribeExecution"
            )
        return super().describe_execution(executionArn)


def test_a_read_that_fails_a_few_times_is_tried_again_next_round() -> None:
    # Given one execution whose DescribeExecution is throttled four times in a row
    clock = FakeClock()
    sfn = FlakySfn(
        clock,
        {"arn:exec:0": history("success"), "arn:exec:1": history("failure")},
        flaky_arn="arn:exec:1",
        failures=4,
    )
    members = [Member(f"ws-{i}", f"arn:exec:{i}", HistoryRenderer(), followed_at=0.0) for i in range(2)]
    # When the fleet is followed, then both are followed to their end anyway
    follow_fleet(
        sfn,
        members,
        FleetView(io.StringIO(), ["ws-0", "ws-1"], live=False),
        sleep=clock.sleep,
        clock=clock.time,
    )
    assert [m.status for m in members] == ["SUCCEEDED", "FAILED"]


def test_an_execution_that_cannot_be_read_five_times_in_a_row_ends_the_wait() -> None:
    clock = FakeClock()
    sfn = FlakySfn(clock, {"arn:exec:0": history("success")}, flaky_arn="arn:exec:0", failures=5)
    members = [Member("ws-0", "arn:exec:0", HistoryRenderer(), followed_at=0.0)]
    with pytest.raises(ClientError):
        follow_fleet(
            sfn, members, FleetView(io.StringIO(), ["ws-0"], live=False), sleep=clock.sleep, clock=clock.time
        )
    assert len(clock.sleeps) == 4


# --- the summary -------------------------------------------------------------------------------------


def test_the_summary_tabulates_every_workspace_then_explains_each_failure() -> None:
    results = [
        {
            "workspace_key": "acme-eu",
            "generation": 2,
            "status": "SUCCEEDED",
            "error": None,
            "cause": None,
            "execution_arn": "arn:1",
            "handed_to_lease_holder": False,
        },
        {
            "workspace_key": "globex",
            "generation": 1,
            "status": "FAILED",
            "error": "PreflightFailedError",
            "cause": "Preflight found 1 problem(s):\n- network.vpc_id: VPC vpc-1 does not exist",
            "execution_arn": "arn:2",
        },
        {
            "workspace_key": "initech",
            "generation": None,
            "status": "NOT_STARTED",
            "error": "AccessDeniedException",
            "cause": "StartExecution: AccessDeniedException: not allowed",
            "execution_arn": None,
        },
    ]
    lines = fleet_summary(results, {"acme-eu": "10s", "globex": "1.2s"})
    assert lines[1] == "1 of 3 SUCCEEDED"
    assert lines[2].split() == ["WORKSPACE", "GEN", "STATUS", "DURATION", "ERROR"]
    assert lines[3].split() == ["acme-eu", "2", "SUCCEEDED", "10s"]
    assert lines[4].split() == ["globex", "1", "FAILED", "1.2s", "PreflightFailedError"]
    assert lines[5].split() == ["initech", "-", "NOT_STARTED", "AccessDeniedException"]
    text = "\n".join(lines)
    assert "globex: PreflightFailedError\n  Preflight found 1 problem(s):\n  - network.vpc_id" in text
    assert "  execution: arn:2" in text
    assert "initech: AccessDeniedException\n  StartExecution: AccessDeniedException: not allowed" in text
    assert "acme-eu:" not in text
