"""`dbx-privatelink local up` as a user runs it: a process of its own, reached from this one and from a second
CLI process only through what it printed (the JSON line on stdout, the export lines on stderr)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import boto3
import pytest
import yaml
from botocore.config import Config
from botocore.exceptions import ClientError
from databricks.sdk import AccountClient

pytestmark = pytest.mark.e2e

CLI = Path(sys.executable).with_name("dbx-privatelink")
READY_TIMEOUT_S = 90.0
APPLY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 90.0  # a loaded machine (two test workers) stops the stack's threads slowly
INFO_KEYS = {
    "aws_endpoint_url",
    "region",
    "stack_name",
    "databricks_host",
    "account_id",
    "client_id",
    "client_secret",
    "sample_spec",
}
LOCAL_ENV_PREFIXES = ("AWS_", "DATABRICKS_", "DBX_PRIVATELINK_")


def _clean_env() -> dict[str, str]:
    """This process's environment without anything that could point a client elsewhere."""
    return {k: v for k, v in os.environ.items() if not k.startswith(LOCAL_ENV_PREFIXES)}


@dataclass
class LocalUp:
    """A running `local up` process; stdout read line by line in the background, stderr to a file."""

    process: subprocess.Popen[str]
    stderr_path: Path
    lines: list[str] = field(default_factory=list)
    first_line: threading.Event = field(default_factory=threading.Event)
    reader: threading.Thread | None = None

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line)
            self.first_line.set()
        self.first_line.set()  # EOF: whoever waits for a line learns there is none

    def start_reading(self) -> None:
        assert self.process.stdout is not None
        self.reader = threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True)
        self.reader.start()

    def info(self) -> dict[str, Any]:
        if not self.first_line.wait(READY_TIMEOUT_S) or not self.lines:
            pytest.fail(f"no JSON line within {READY_TIMEOUT_S}s; stderr:\n{self.stderr()}")
        document: dict[str, Any] = json.loads(self.lines[0])
        return document

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=STOP_TIMEOUT_S)
        if self.reader is not None:
            self.reader.join(timeout=5)
        return code


def start_local_up(tmp: Path, *args: str) -> LocalUp:
    assert CLI.exists(), f"{CLI} is not installed: pip install -e '.[dev]'"
    stderr_path = tmp / "local-up.stderr"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [str(CLI), "local", "up", "--time-scale", "0.01", "--workdir", str(tmp / "work"), *args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            text=True,
            env=_clean_env(),
        )
    up = LocalUp(process, stderr_path)
    up.start_reading()
    return up


@pytest.fixture
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="local-up-test-") as tmp:
        yield Path(tmp)


def _kill(up: LocalUp) -> None:
    if up.process.poll() is None:
        up.process.kill()
        up.process.wait(timeout=STOP_TIMEOUT_S)


def exported(stderr: str) -> dict[str, str]:
    """The `export KEY=VALUE` hints `local up` printed on stderr."""
    return dict(re.findall(r"^\s*export (\w+)=(\S+)$", stderr, flags=re.MULTILINE))


def apply_from_another_process(spec: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), "apply", spec, "--wait", "--output", "json"],
        env={**_clean_env(), **env},
        capture_output=True,
        text=True,
        timeout=APPLY_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )


def aws(info: dict[str, Any], service: str) -> Any:
    return boto3.session.Session(
        region_name=info["region"], aws_access_key_id="testing", aws_secret_access_key="testing"
    ).client(service, endpoint_url=info["aws_endpoint_url"])


def test_local_up_serves_aws_databricks_and_a_second_cli_process(workdir: Path) -> None:
    # Given `local up` started as a user starts it
    up = start_local_up(workdir)
    try:
        # When it is ready, then stdout carries one JSON document with everything a client needs
        info = up.info()
        assert set(info) == INFO_KEYS
        assert info["region"] == "us-east-1" and info["stack_name"] == "dbx-privatelink"
        assert info["aws_endpoint_url"].startswith("http://127.0.0.1:")
        assert info["databricks_host"].startswith("http://127.0.0.1:")
        assert Path(info["sample_spec"]).is_file()
        assert Path(info["sample_spec"]).is_relative_to(workdir / "work")
        # ... and stderr tells people how to point their tools at it
        env = exported(up.stderr())
        assert env["AWS_ENDPOINT_URL"] == info["aws_endpoint_url"]
        assert env["DATABRICKS_HOST"] == info["databricks_host"]
        assert env["DATABRICKS_CLIENT_SECRET"] == info["client_secret"]

        # Then boto3 sees the deployed stack and the seeded customer VPC
        [stack] = aws(info, "cloudformation").describe_stacks(StackName=info["stack_name"])["Stacks"]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
        assert stack["StackStatus"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE")
        assert {"ReconcileStateMachineArn", "TableName", "OwnerTag"} <= outputs.keys()
        vpcs = aws(info, "ec2").describe_vpcs(Filters=[{"Name": "cidr", "Values": ["10.0.0.0/22"]}])["Vpcs"]
        assert len(vpcs) == 1
        spec = yaml.safe_load(Path(info["sample_spec"]).read_text())
        assert spec["network"]["vpc_id"] == vpcs[0]["VpcId"]

        # And the official Databricks SDK sees the seeded credentials and storage configuration
        account = AccountClient(
            host=info["databricks_host"],
            account_id=info["account_id"],
            client_id=info["client_id"],
            client_secret=info["client_secret"],
        )
        credentials = {c.credentials_id for c in account.credentials.list()}
        storage = {s.storage_configuration_id for s in account.storage.list()}
        assert spec["databricks"]["credentials_id"] in credentials
        assert spec["databricks"]["storage_configuration_id"] in storage

        # When a second process applies the sample spec with the exported environment
        applied = apply_from_another_process(info["sample_spec"], env)
        # Then the execution SUCCEEDED and the workspace is RUNNING on PrivateLink
        assert applied.returncode == 0, applied.stderr[-3000:]
        result = json.loads(applied.stdout)
        assert result["status"] == "SUCCEEDED", result
        workspace = account.workspaces.get(result["resources"]["workspace"]["workspace_id"])
        assert workspace.workspace_status is not None and workspace.workspace_status.value == "RUNNING"
        assert workspace.network_id == result["resources"]["network"]["network_id"]
        endpoints = aws(info, "ec2").describe_vpc_endpoints(
            VpcEndpointIds=[result["resources"]["endpoints"][r]["id"] for r in ("workspace", "relay")]
        )["VpcEndpoints"]
        assert all(e["PrivateDnsEnabled"] for e in endpoints)

        # When it is sent SIGTERM, then it stops cleanly, having printed nothing more on stdout
        assert up.stop() == 0, up.stderr()[-3000:]
        assert len(up.lines) == 1, up.lines
        assert "Traceback" not in up.stderr()
    finally:
        _kill(up)


def test_local_up_in_another_region_reconciles_there(workdir: Path) -> None:
    # Given `local up --region ap-northeast-1` (the Tokyo walkthrough's region)
    up = start_local_up(workdir, "--region", "ap-northeast-1", "--stack-name", "pl-tokyo")
    try:
        info = up.info()
        assert info["region"] == "ap-northeast-1" and info["stack_name"] == "pl-tokyo"
        spec = yaml.safe_load(Path(info["sample_spec"]).read_text())
        assert spec["region"] == "ap-northeast-1"
        subnets = aws(info, "ec2").describe_subnets(SubnetIds=spec["network"]["workspace_subnet_ids"])
        assert {s["AvailabilityZone"][:-1] for s in subnets["Subnets"]} == {"ap-northeast-1"}
        # When the sample spec is applied from another process
        applied = apply_from_another_process(info["sample_spec"], exported(up.stderr()))
        # Then it succeeds against Tokyo's Databricks endpoint services
        assert applied.returncode == 0, applied.stderr[-3000:]
        result = json.loads(applied.stdout)
        assert result["status"] == "SUCCEEDED", result
        [workspace_endpoint] = aws(info, "ec2").describe_vpc_endpoints(
            VpcEndpointIds=[result["resources"]["endpoints"]["workspace"]["id"]]
        )["VpcEndpoints"]
        assert workspace_endpoint["ServiceName"].startswith("com.amazonaws.vpce.ap-northeast-1.")
        assert up.stop() == 0, up.stderr()[-3000:]
    finally:
        _kill(up)


def test_local_up_with_aws_rate_limits_throttles_resolver_calls(workdir: Path) -> None:
    # Given `local up --aws-rate-limits` at time scale 5: Resolver's 5 calls per emulated second are one per
    # wall second, so a burst from this process outruns the bucket however loaded the machine is
    up = start_local_up(workdir, "--aws-rate-limits", "--time-scale", "5")
    try:
        info = up.info()
        assert "AWS rate limits         on:" in up.stderr()
        resolver = boto3.session.Session(
            region_name=info["region"], aws_access_key_id="testing", aws_secret_access_key="testing"
        ).client(
            "route53resolver",
            endpoint_url=info["aws_endpoint_url"],
            config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
        )

        # When this process lists Resolver rules back to back
        codes = []
        for _ in range(30):
            try:
                resolver.list_resolver_rules()
                codes.append("ok")
            except ClientError as exc:
                codes.append(exc.response["Error"]["Code"])
                break

        # Then the emulated Resolver throttles it after a burst, as AWS does
        assert codes[0] == "ok" and codes[-1] == "ThrottlingException", codes
        # And on stop, stderr tells what the limits refused
        assert up.stop() == 0, up.stderr()[-3000:]
        assert re.search(
            r"calls refused by the AWS rate limits: \d+ \(.*route53resolver:ListResolverRules", up.stderr()
        )
        assert len(up.lines) == 1, up.lines
    finally:
        _kill(up)


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--time-scale", "0"], "--time-scale"),
        (["--time-scale", "1001"], "--time-scale"),
        (["--time-scale", "-0.5"], "--time-scale"),
        (["--region", "mars-east-1"], "--region"),
    ],
)
def test_local_up_refuses_bad_flags_before_starting(flags: list[str], named: str) -> None:
    done = subprocess.run(
        [str(CLI), "local", "up", *flags],
        capture_output=True,
        text=True,
        timeout=60,
        env=_clean_env(),
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2
    assert named in done.stderr and done.stdout == ""
