"""`dbx-privatelink demo`: the sample workspace applied twice on a local stack of its own.

The demo runs in a process of its own: moto's backends are process-wide, and this session's `stack` fixture
may already hold them."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import boto3
import pytest

pytestmark = pytest.mark.e2e

CLI = Path(sys.executable).with_name("dbx-privatelink")
DEMO_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 30.0
CLEAN_ENV_PREFIXES = ("AWS_", "DATABRICKS_", "DBX_PRIVATELINK_")


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(CLEAN_ENV_PREFIXES)}


def _section(text: str, title: str) -> str:
    """The lines of one summary section: from its title to the next blank line after its table."""
    start = text.index(title)
    return text[start:].split("\n\n", 1)[0]


def test_demo_reconciles_the_sample_workspace_and_proves_a_second_apply_changes_nothing() -> None:
    # When the demo runs as `make demo` runs it
    done = subprocess.run(
        [str(CLI), "demo", "--time-scale", "0.01"],
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_S,
        env=_env(),
        stdin=subprocess.DEVNULL,
    )
    out = done.stdout
    # Then it ends well (on failure the whole narration is shown: an assertion's repr would cut its middle)
    if done.returncode != 0:
        pytest.fail(
            f"demo exited {done.returncode}\n--- stdout ---\n{out}\n--- stderr ---\n{done.stderr[-6000:]}"
        )
    assert "Traceback" not in done.stderr
    # ... the first apply went through `apply --wait` and created everything
    assert out.count("execution SUCCEEDED") == 2
    first = re.search(r"first apply: SUCCEEDED in .*\n\s+mutating AWS calls:\s+(\d+) \((.*)\)", out)
    assert first and int(first.group(1)) > 0 and "CreateVpcEndpoint" in first.group(2), out
    # ... the live summary shows both Databricks endpoints available with private DNS, and the workspace
    endpoints = _section(out, "VPC endpoints in")
    for role in ("workspace", "relay"):
        [row] = [line for line in endpoints.splitlines() if line.split()[:1] == [role]]
        assert " available " in row and " on (" in row, row
    databricks = _section(out, "Databricks account")
    assert re.search(
        r"^\s+workspace\s+\d+\s+privatelink-test, deployment privatelink-test\s+RUNNING$", databricks, re.M
    )
    assert re.search(r"^\s+network\s+\S+\s+.*vpc_status VALID$", databricks, re.M)
    assert len(re.findall(r"^\s+registration\s.*\savailable$", databricks, re.M)) == 2
    # ... and the second apply changed nothing on either side
    idempotency = _section(out, "Idempotency")
    assert "mutating AWS calls:        0" in idempotency
    assert "mutating Databricks calls: 0" in idempotency
    assert "no change" in idempotency


def test_demo_keep_running_prints_the_local_up_line_and_stops_on_sigterm(tmp_path: Path) -> None:
    # Given the demo with --keep-running (stderr to a file: read on failure, it names what went wrong)
    stderr = (tmp_path / "demo.stderr").open("w")
    process = subprocess.Popen(
        [str(CLI), "demo", "--time-scale", "0.01", "--keep-running"],
        stdout=subprocess.PIPE,
        stderr=stderr,
        stdin=subprocess.DEVNULL,
        text=True,
        env=_env(),
    )
    lines: list[str] = []
    json_line = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            # Lambda functions log JSON too (on AWS to CloudWatch Logs, here to this process's stdout)
            if line.startswith('{"aws_endpoint_url"'):
                json_line.set()
        json_line.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        # When the demo is done, then its last stdout line is the JSON line of `local up`
        assert json_line.wait(DEMO_TIMEOUT_S), "no JSON line in time"
        found = [line for line in lines if line.startswith('{"aws_endpoint_url"')]
        if len(found) != 1:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=STOP_TIMEOUT_S)
            stderr.close()
            pytest.fail(
                f"{len(found)} local-up lines; demo exit status {process.returncode}\n"
                f"--- stdout (last 80 lines) ---\n{''.join(lines[-80:])}"
                f"\n--- stderr ---\n{(tmp_path / 'demo.stderr').read_text()[-6000:]}"
            )
        info = json.loads(found[0])
        assert info["region"] == "us-east-1" and info["stack_name"] == "dbx-privatelink"
        # ... and the stack is still up: the workspace's endpoints are there
        ec2 = boto3.session.Session(
            region_name=info["region"], aws_access_key_id="testing", aws_secret_access_key="testing"
        ).client("ec2", endpoint_url=info["aws_endpoint_url"])
        states = {e["State"] for e in ec2.describe_vpc_endpoints()["VpcEndpoints"]}
        assert states == {"available"}
        # When it is sent SIGTERM, then it stops with exit status 0
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=STOP_TIMEOUT_S) == 0, "".join(lines[-60:])
        reader.join(timeout=5)
        assert lines[-1].startswith('{"aws_endpoint_url"'), "nothing on stdout after the local-up line"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)
        stderr.close()
