"""`apply` with many specs and `status` of every workspace, on the local stack: the real template, each
workspace on a data-plane VPC of its own, the CLI reaching the stack as an operator's shell would (boto3
honours AWS_ENDPOINT_URL).

One stack for the module (moto's backends are process-wide); every test applies workspaces of its own and
leaves them ended, so the last test's `status` sees only HEALTHY workspaces until it breaks one.
"""

from __future__ import annotations

import copy
import io
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dbx_privatelink_cli.main import main
from dbx_privatelink_local.seed import create_data_plane
from dbx_privatelink_local.stack import LocalStack, LocalStackConfig

# A /22 per data plane, away from the seed's 10.0/10.10/10.20 and from the e2e tests' 10.100 and up.
_cidrs = (f"10.{60 + n // 64}.{n % 64 * 4}.0/22" for n in itertools.count())
# The keys of the per-workspace result `apply --wait --output json` prints (one spec or many).
RESULT_KEYS = {
    "workspace_key",
    "execution_arn",
    "execution_name",
    "generation",
    "status",
    "error",
    "cause",
    "handed_to_lease_holder",
    "resources",
}
ENDED_WITHIN_S = 120.0


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(LocalStackConfig(time_scale=0.01)) as s:
        yield s


@pytest.fixture
def cli(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Runs the CLI in this process against the stack; returns (exit status, stdout, stderr)."""
    env = stack.client_environment()
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    def run(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = main(list(argv), session=stack.boto_session(), env=env, out=out, err=err)
        return code, out.getvalue(), err.getvalue()

    return run


def write_specs(stack: LocalStack, directory: Path, keys: list[str]) -> list[Path]:
    """The stack's sample spec under each key, on a data plane of its own, as <key>.yaml in `directory`."""
    assert stack.environment is not None
    ec2 = stack.client("ec2")
    azs = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for key in keys:
        plane = create_data_plane(ec2, next(_cidrs), key, azs)
        spec = copy.deepcopy(stack.environment.sample_spec(key))
        spec["network"].update(
            vpc_id=plane.vpc_id,
            workspace_subnet_ids=plane.workspace_subnet_ids,
            workspace_security_group_ids=[plane.workspace_sg_id],
            endpoint_subnet_ids=[plane.endpoint_subnet_id],
            endpoint_security_group_id=plane.endpoint_sg_id,
        )
        spec["network"].pop("standby", None)
        path = directory / f"{key}.yaml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        paths.append(path)
    return paths


def sample_spec_file(stack: LocalStack, path: Path, key: str, **network: Any) -> Path:
    """The stack's sample spec under `key` (on the seeded VPC: for specs that never reach AWS)."""
    assert stack.environment is not None
    spec = copy.deepcopy(stack.environment.sample_spec(key))
    spec["network"].update(network)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec) if path.suffix == ".json" else yaml.safe_dump(spec))
    return path


def executions(stack: LocalStack) -> list[dict[str, Any]]:
    sfn = stack.client("stepfunctions")
    assert stack.deployment is not None
    arn = stack.deployment.outputs["ReconcileStateMachineArn"]
    found: list[dict[str, Any]] = []
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn):
        found += page["executions"]
    return found


def wait_ended(stack: LocalStack, arns: list[str]) -> dict[str, str]:
    """Each execution's final status, once every one has ended (polled, with an upper bound)."""
    sfn = stack.client("stepfunctions")
    deadline = time.monotonic() + ENDED_WITHIN_S
    while True:
        statuses = {arn: sfn.describe_execution(executionArn=arn)["status"] for arn in arns}
        if "RUNNING" not in statuses.values():
            return statuses
        assert time.monotonic() < deadline, f"still running after {ENDED_WITHIN_S}s: {statuses}"
        time.sleep(0.2)


def test_one_invalid_spec_among_valid_ones_starts_nothing(
    stack: LocalStack, cli: Any, tmp_path: Path
) -> None:
    # Given a directory with two valid specs and one whose VPC id is malformed
    sample_spec_file(stack, tmp_path / "specs" / "inv-ok-one.yaml", "inv-ok-one")
    sample_spec_file(stack, tmp_path / "specs" / "inv-ok-two.yaml", "inv-ok-two")
    sample_spec_file(stack, tmp_path / "specs" / "inv-bad.yaml", "inv-bad", vpc_id="vpc-XYZ")
    before = len(executions(stack))
    # When the directory is applied with --wait
    code, out, err = cli("apply", str(tmp_path / "specs"), "--wait", "--output", "json")
    # Then it exits 2 naming the file and the field, and no execution started
    assert code == 2
    assert f"{tmp_path / 'specs' / 'inv-bad.yaml'}: " in err and "network.vpc_id" in err
    assert json.loads(out)["error"] == "SpecInvalidError"
    assert len(executions(stack)) == before


def test_two_specs_of_one_workspace_start_nothing(stack: LocalStack, cli: Any, tmp_path: Path) -> None:
    first = sample_spec_file(stack, tmp_path / "a" / "dup-key.yaml", "dup-key")
    second = sample_spec_file(stack, tmp_path / "b" / "dup-key.json", "dup-key")
    before = len(executions(stack))
    code, _out, err = cli("apply", str(first), str(second))
    assert code == 2
    assert f"{first}, {second}: the same workspace_key 'dup-key' in 2 specs" in err
    assert len(executions(stack)) == before


def test_a_quoted_glob_applies_the_matching_specs_and_reports_each_as_json(
    stack: LocalStack, cli: Any, tmp_path: Path
) -> None:
    # Given two specs the pattern matches, and a file beside them it does not (invalid, so reading it fails)
    write_specs(stack, tmp_path, ["glob-eu", "glob-us"])
    (tmp_path / "notes.yaml").write_text("not: [a spec")
    # When the pattern reaches the CLI unexpanded, as a quoted one does, with --wait and JSON
    code, out, err = cli("apply", str(tmp_path / "glob-*.yaml"), "--wait", "--output", "json")
    # Then both SUCCEEDED, stdout is one list of per-workspace results, progress went to stderr
    assert code == 0, err[-3000:]
    results = json.loads(out)
    assert [r["workspace_key"] for r in results] == ["glob-eu", "glob-us"]
    assert all(set(r) == RESULT_KEYS for r in results)
    assert [r["status"] for r in results] == ["SUCCEEDED", "SUCCEEDED"]
    assert all(r["error"] is None and r["resources"]["workspace"]["status"] == "RUNNING" for r in results)
    assert {r["generation"] for r in results} == {1}
    assert "glob-eu  " in err and "execution SUCCEEDED" in err


def test_without_wait_every_execution_is_started_and_listed_as_json(
    stack: LocalStack, cli: Any, tmp_path: Path
) -> None:
    # Given two specs
    paths = write_specs(stack, tmp_path, ["nowait-one", "nowait-two"])
    before = len(executions(stack))
    # When they are applied without --wait
    code, out, err = cli("apply", *map(str, paths), "--output", "json")
    # Then two executions run, one per spec, listed in order with what scripts need to follow them
    assert code == 0, err
    started = json.loads(out)
    assert [s["workspace_key"] for s in started] == ["nowait-one", "nowait-two"]
    assert all(
        set(s) == {"workspace_key", "execution_arn", "execution_name", "generation", "status"}
        for s in started
    )
    assert all(s["status"] == "RUNNING" and s["generation"] == 1 for s in started)
    assert all(s["execution_name"].startswith(f"{s['workspace_key']}-g1-") for s in started)
    assert len(executions(stack)) == before + 2
    # ... and each one goes on to succeed without anyone following it
    statuses = wait_ended(stack, [s["execution_arn"] for s in started])
    assert set(statuses.values()) == {"SUCCEEDED"}


def test_a_directory_applied_with_wait_then_status_of_every_workspace(
    stack: LocalStack, cli: Any, tmp_path: Path
) -> None:
    # Given a directory of three specs
    keys = ["dir-alpha", "dir-bravo", "dir-charlie"]
    paths = write_specs(stack, tmp_path / "specs", keys)
    # When it is applied with --wait
    code, out, err = cli("apply", str(tmp_path / "specs"), "--wait")
    # Then every one SUCCEEDED, followed in one view (off a terminal: each line under its key) and summed up
    assert code == 0, (out[-3000:], err[-3000:])
    assert all(f"{key}  " in out and "execution SUCCEEDED" in out for key in keys)
    summary = out[out.index("3 of 3 SUCCEEDED") :].splitlines()
    assert summary[1].split() == ["WORKSPACE", "GEN", "STATUS", "DURATION", "ERROR"]
    assert [row.split()[:3] for row in summary[2:5]] == [[key, "1", "SUCCEEDED"] for key in keys]

    # When every workspace's status is asked for
    code, out, err = cli("status")
    # Then one line each, HEALTHY from the recorded state, with the last run and the drift mode; exit 0
    assert code == 0, out + err
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:] if line.strip()}
    assert set(keys) <= set(rows)
    assert all(rows[key][1:3] == ["HEALTHY", "SUCCEEDED"] and rows[key][4] == "remediate" for key in keys)
    code, out, _err = cli("status", "--output", "json")
    assert code == 0
    listed = {row["workspace_key"]: row for row in json.loads(out)}
    assert all(row["health"] == "HEALTHY" for row in listed.values())
    assert listed["dir-alpha"]["drift"] == {
        "mode": "remediate",
        "spec_mode": "remediate",
        "override": None,
        "paused": False,
    }
    assert listed["dir-alpha"]["last_run"]["outcome"] == "SUCCEEDED"
    assert listed["dir-alpha"]["generation"] == {"desired": 1, "applied": 1}

    # When one spec moves to a VPC that does not exist and the two are applied together
    broken = yaml.safe_load(paths[1].read_text())
    broken["network"]["vpc_id"] = "vpc-0123456789abcdef0"
    paths[1].write_text(yaml.safe_dump(broken))
    code, out, _err = cli("apply", str(paths[0]), str(paths[1]), "--wait")
    # Then the apply exits 1: one SUCCEEDED, one FAILED with its error and cause
    assert code == 1
    summary = out[out.index("1 of 2 SUCCEEDED") :]
    assert summary.splitlines()[2].split()[:3] == ["dir-alpha", "1", "SUCCEEDED"]
    failed_row = summary.splitlines()[3].split()
    assert failed_row[:3] == ["dir-bravo", "2", "FAILED"] and failed_row[-1] == "PreflightFailedError"
    assert "dir-bravo: PreflightFailedError" in summary and "vpc-0123456789abcdef0" in summary
    # ... and status lists it HEALTHY on its last good spec, with the rejected spec and why
    code, out, _err = cli("status", "--output", "json")
    assert code == 0
    bravo = next(row for row in json.loads(out) if row["workspace_key"] == "dir-bravo")
    assert bravo["health"] == "HEALTHY" and bravo["last_run"]["outcome"] == "FAILED"
    assert bravo["reasons"][0].startswith("spec rejected: PreflightFailedError")
    assert bravo["pending"]["state"] == "rejected" and bravo["pending"]["error"] == "PreflightFailedError"
    assert bravo["generation"] == {"desired": 1, "applied": 1}
    code, out, _err = cli("status")
    assert code == 0
    row = next(line for line in out.splitlines() if line.split()[:1] == ["dir-bravo"])
    assert row.split()[1:3] == ["HEALTHY", "FAILED"] and "spec rejected: PreflightFailedError" in row
