"""The CLI's front door: argument parsing, exit statuses, and local spec validation before any AWS call."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from dbx_privatelink_cli import main as cli_main
from dbx_privatelink_cli.main import SUBCOMMANDS, build_parser, main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "us-east-1.yaml"


class CallLog:
    """A session that records every AWS call attempted through it (and makes none: no credentials needed)."""

    def __init__(self) -> None:
        self.session = boto3.session.Session(
            region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        )
        self.calls: list[str] = []
        self.session.events.register("before-call", self._refuse)

    def _refuse(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)
        raise AssertionError(f"unexpected AWS call {model.name}")


def run(argv: list[str], log: CallLog | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    session = (log or CallLog()).session
    code = main(argv, session=session, env={"AWS_REGION": "us-east-1"}, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_every_subcommand_registers_itself() -> None:
    parser = build_parser()
    names = {a for action in parser._subparsers._group_actions for a in action.choices}  # type: ignore[union-attr]
    assert {"apply", "plan", "status"} <= names
    assert all(callable(getattr(m, "register", None)) for m in SUBCOMMANDS)


def test_apply_arguments_parse() -> None:
    args = build_parser().parse_args(["apply", "spec.yaml", "--stack", "s", "--wait", "--output", "json"])
    assert (args.spec, args.stack, args.wait, args.output) == ("spec.yaml", "s", True, "json")
    assert args.handler.__module__ == "dbx_privatelink_cli.apply"
    args = build_parser().parse_args(["apply", "spec.yaml"])
    assert (args.stack, args.wait, args.output, args.region) == (None, False, "text", None)


def test_status_and_plan_arguments_parse() -> None:
    args = build_parser().parse_args(["status", "acme", "--region", "eu-west-1"])
    assert (args.workspace, args.region) == ("acme", "eu-west-1")
    args = build_parser().parse_args(["plan", "-", "--output", "json"])
    assert (args.spec, args.output) == ("-", "json")


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["bogus"],
        ["apply"],
        ["apply", "s.yaml", "--output", "xml"],
        ["status", "one", "two"],  # `status` alone lists every workspace; two keys are not a thing
        ["apply", "s.yaml", "--nope"],
    ],
)
def test_bad_usage_exits_2(argv: list[str]) -> None:
    code, _out, err = run(argv)
    assert code == 2
    assert "dbx-privatelink" in err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["apply", "--help"]) == 0
    assert "--wait" in capsys.readouterr().out


def _write(tmp_path: Path, name: str, document: Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(document) if name.endswith(".json") else yaml.safe_dump(document))
    return str(path)


@pytest.mark.parametrize("command", ["apply", "plan"])
def test_an_invalid_spec_exits_2_naming_the_field_and_calls_no_aws(tmp_path: Path, command: str) -> None:
    # Given a spec with one workspace subnet and a malformed VPC id
    document = yaml.safe_load(EXAMPLE.read_text())
    document["network"]["workspace_subnet_ids"] = document["network"]["workspace_subnet_ids"][:1]
    document["network"]["vpc_id"] = "vpc-XYZ"
    log = CallLog()
    # When it is applied (or planned)
    code, _out, err = run(
        [command, _write(tmp_path, "bad.yaml", document), "--wait"]
        if command == "apply"
        else [command, _write(tmp_path, "bad.yaml", document)],
        log,
    )
    # Then nothing started, and the message names both fields and the fix
    assert code == 2
    assert log.calls == []
    assert "network.workspace_subnet_ids" in err
    assert "network.vpc_id" in err
    assert "fix: use a VPC id such as" in err


def test_json_spec_files_are_read_as_json_and_errors_are_json_too(tmp_path: Path) -> None:
    document = yaml.safe_load(EXAMPLE.read_text())
    document["regoin"] = "us-east-1"
    code, out, err = run(["apply", _write(tmp_path, "bad.json", document), "--output", "json"])
    assert code == 2
    assert json.loads(out) == {
        "ok": False,
        "error": "SpecInvalidError",
        "message": err.removeprefix("error: ").strip(),
    }
    assert "regoin: unknown field" in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [("workspace_key: [unclosed", "not valid YAML"), ("- a\n- b\n", "a workspace spec is a mapping")],
)
def test_unreadable_specs_exit_2(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(content)
    code, _out, err = run(["apply", str(path)])
    assert code == 2
    assert expected in err


def test_a_missing_spec_file_exits_2(tmp_path: Path) -> None:
    code, _out, err = run(["plan", str(tmp_path / "absent.yaml")])
    assert code == 2
    assert "cannot read the spec file" in err


class _SessionWithoutRegion:
    """What boto3 gives a user with no region configured anywhere."""

    region_name = None


def test_no_region_is_a_usage_error() -> None:
    out, err = io.StringIO(), io.StringIO()
    code = cli_main.main(["status", "acme"], session=_SessionWithoutRegion(), env={}, out=out, err=err)
    assert code == 2
    assert "--region" in err.getvalue()


def test_the_cli_refuses_a_cleartext_databricks_host_before_any_call() -> None:
    from dbx_privatelink_cli.common import Runtime, databricks_access

    class NoAws:
        def client(self, service: str, **_: object) -> object:
            raise AssertionError(f"no AWS call expected, got a {service} client")

    env = {
        "DATABRICKS_HOST": "http://accounts.cloud.databricks.com",
        "DATABRICKS_CLIENT_ID": "sp",
        "DATABRICKS_CLIENT_SECRET": "secret",
    }
    access = databricks_access(
        Runtime(session=NoAws(), env=env), "0f5e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b", host=None, secret_id=None
    )
    assert access.client is None and "DATABRICKS_HOST" in access.source and "https" in access.source
