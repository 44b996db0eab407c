"""`apply` of several specs on moto: a StartExecution refused for one spec leaves the others started, the
--timeout covers the whole wait, Ctrl-C leaves the executions running and says so."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from integration.test_cli_apply import (
    handing_machine,
    holder_execution,
    machine,
    reconciled_ending,
    succeeding_machine,
)
from integration.test_cli_stack import REGION, deploy_stack, run_cli
from moto import mock_aws

from dbx_privatelink.spec import parse_spec
from dbx_privatelink_cli.apply import run
from dbx_privatelink_cli.common import Runtime
from dbx_privatelink_cli.main import build_parser
from dbx_privatelink_local import sfn

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "us-east-1.yaml"
KEYS = ("fleet-one", "fleet-two", "fleet-three")


def _session(monkeypatch: pytest.MonkeyPatch, *, execute: bool) -> Iterator[Any]:
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
    sfn.status_last()  # an ended execution shows its output once its status says it ended, as on AWS
    with mock_aws(config={"stepfunctions": {"execute_state_machine": execute}}):
        yield boto3.session.Session(region_name=REGION)


@pytest.fixture
def executing(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto running the state machines it is given (test_cli_apply's succeeding machine)."""
    yield from _session(monkeypatch, execute=True)


@pytest.fixture
def never_ending(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto without its interpreter, where every execution stays RUNNING; its canned history (a run that
    succeeded) is replaced by the history of one that has not got anywhere yet."""
    for session in _session(monkeypatch, execute=False):

        def no_events_yet(**_: Any) -> Any:
            return _Response(200), {"events": []}

        session.events.register("before-call.sfn.GetExecutionHistory", no_events_yet)
        yield session


def specs(tmp_path: Path) -> Path:
    for key in KEYS:
        document = yaml.safe_load(EXAMPLE.read_text())
        document["workspace_key"] = key
        (tmp_path / f"{key}.yaml").write_text(yaml.safe_dump(document))
    return tmp_path


@dataclass
class _Response:
    """What a before-call hook returns in place of the HTTP response."""

    status_code: int
    headers: dict[str, str] = field(default_factory=dict)


def refuse_start_of(session: Any, key: str) -> None:
    """StartExecution of `key`'s spec answers AccessDeniedException, as a policy scoped by name would."""

    def hook(params: dict[str, Any], **_: Any) -> Any:
        if json.loads(params["body"])["name"].startswith(f"{key}-g"):
            message = "not authorized to perform states:StartExecution"
            return _Response(400), {"Error": {"Code": "AccessDeniedException", "Message": message}}
        return None

    session.events.register("before-call.sfn.StartExecution", hook)


def executions(session: Any, state_machine_arn: str) -> list[dict[str, Any]]:
    sfn = session.client("stepfunctions", region_name=REGION)
    found: list[dict[str, Any]] = sfn.list_executions(stateMachineArn=state_machine_arn)["executions"]
    return found


def test_a_refused_start_is_reported_and_the_others_still_start(executing: Any, tmp_path: Path) -> None:
    # Given three specs, and StartExecution refused for fleet-three (the second file by name)
    arn = machine(executing, succeeding_machine())
    deploy_stack(executing, state_machine_arn=arn)
    refuse_start_of(executing, "fleet-three")
    # When they are applied without --wait
    code, out, err = run_cli(["apply", str(specs(tmp_path)), "--output", "json"], executing)
    # Then the other two started, the refused one is listed as not started with why, and the exit is 1
    assert code == 1
    listed = {item["workspace_key"]: item for item in json.loads(out)}
    assert [listed[k]["status"] for k in KEYS] == ["RUNNING", "RUNNING", "NOT_STARTED"]
    assert listed["fleet-three"]["error"] == "AccessDeniedException"
    assert "not authorized to perform states:StartExecution" in listed["fleet-three"]["cause"]
    assert listed["fleet-three"]["execution_arn"] is None
    assert len(executions(executing, arn)) == 2
    assert "error: fleet-three (" in err and "not started: StartExecution: AccessDeniedException" in err
    assert "1 of 3 execution(s) not started" in err


def test_with_wait_the_started_ones_are_followed_and_the_refused_one_is_in_the_table(
    executing: Any, tmp_path: Path
) -> None:
    arn = machine(executing, succeeding_machine())
    deploy_stack(executing, state_machine_arn=arn)
    refuse_start_of(executing, "fleet-one")
    code, out, _err = run_cli(["apply", str(specs(tmp_path)), "--wait"], executing)
    assert code == 1
    summary = out[out.index("2 of 3 SUCCEEDED") :].splitlines()
    rows = {line.split()[0]: line.split() for line in summary[2:5]}
    assert rows["fleet-one"] == ["fleet-one", "-", "NOT_STARTED", "AccessDeniedException"]
    assert rows["fleet-two"][1:3] == ["1", "SUCCEEDED"] and rows["fleet-three"][1:3] == ["1", "SUCCEEDED"]
    assert "fleet-one: AccessDeniedException\n  StartExecution: AccessDeniedException" in out


def test_the_timeout_covers_the_whole_wait_and_the_executions_go_on(
    never_ending: Any, tmp_path: Path
) -> None:
    # Given executions that never end
    arn = machine(never_ending, succeeding_machine())
    deploy_stack(never_ending, state_machine_arn=arn)
    # When they are followed for at most half a second
    code, out, err = run_cli(
        ["apply", str(specs(tmp_path)), "--wait", "--timeout", "0.5", "--output", "json"], never_ending
    )
    # Then the wait ends with exit 1, each still RUNNING in the list, and stderr says they go on
    assert code == 1
    results = json.loads(out)
    assert [r["status"] for r in results] == ["RUNNING"] * 3
    assert all(r["execution_arn"] and r["resources"] == {} for r in results)
    assert "error: 3 of 3 execution(s) still running after 0.5s; they go on:" in err
    assert all(r["execution_arn"] in err for r in results)
    assert {e["status"] for e in executions(never_ending, arn)} == {"RUNNING"}


def test_ctrl_c_stops_following_and_names_the_executions_that_go_on(
    never_ending: Any, tmp_path: Path
) -> None:
    # Given executions that never end, and an operator who presses Ctrl-C during the first pause
    arn = machine(never_ending, succeeding_machine())
    deploy_stack(never_ending, state_machine_arn=arn)

    def interrupted(_seconds: float) -> None:
        raise KeyboardInterrupt

    out, err = io.StringIO(), io.StringIO()
    runtime = Runtime(session=never_ending, region_arg=REGION, out=out, err=err, env={}, sleep=interrupted)
    # When the fleet is applied with --wait
    code = run(build_parser().parse_args(["apply", str(specs(tmp_path)), "--wait"]), runtime)
    # Then 130, and stderr lists every execution, which still runs
    assert code == 130
    running = executions(never_ending, arn)
    assert len(running) == 3 and {e["status"] for e in running} == {"RUNNING"}
    assert "stopped following; 3 execution(s) go on:" in err.getvalue()
    assert all(e["executionArn"] in err.getvalue() for e in running)


def test_with_wait_a_spec_handed_to_the_lease_holder_is_followed_there(
    executing: Any, tmp_path: Path
) -> None:
    # Given fleet-one's lease held by another execution, which will reconcile fleet-one's spec next
    document = yaml.safe_load(EXAMPLE.read_text())
    document["workspace_key"] = "fleet-one"
    spec_hash = parse_spec(document).spec_hash()
    holder = holder_execution(executing, reconciled_ending(spec_hash))
    handing = handing_machine(holder, spec_hash)["States"]
    fleet = succeeding_machine()
    fleet["StartAt"] = "Held"
    fleet["States"] |= {
        "Held": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.workspace_key", "StringEquals": "fleet-one", "Next": "HandOverToLeaseHolder"}
            ],
            "Default": "AcquireLease",
        },
        **handing,
    }
    deploy_stack(executing, state_machine_arn=machine(executing, fleet))
    # When the three specs are applied with --wait
    code, out, err = run_cli(["apply", str(specs(tmp_path)), "--wait", "--output", "json"], executing)
    # Then fleet-one's result is the holder's outcome, reached by following it; the others their own
    assert code == 0, err
    assert "fleet-one: execution acme-analytics-g1-holder holds the lease; following it" in err
    results = {r["workspace_key"]: r for r in json.loads(out)}
    assert results["fleet-one"]["lease_holder"]["execution_arn"] == holder
    assert results["fleet-one"]["status"] == "SUCCEEDED" and results["fleet-one"]["spec_applied"] is True
    assert all(results[k]["status"] == "SUCCEEDED" and "lease_holder" not in results[k] for k in KEYS[1:])
