"""`destroy` and `plan --destroy` against moto: the plan comes first, confirmation is the workspace key on a
terminal (or --yes), nothing starts for a workspace not managed or already decommissioned, and bad usage
exits 2 with nothing started."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from integration import test_cli_stack
from integration.test_cli_stack import REGION, STACK, stack_template

from dbx_privatelink.spec import parse_spec
from dbx_privatelink.store import DecommissionMarker, StoreClient
from dbx_privatelink_cli.main import main
from tests.unit.test_decommission_plan import SPEC

aws = test_cli_stack.aws  # moto in-process, fake credentials, no endpoint from the shell
PASS = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}


@dataclass
class World:
    session: Any
    machine: str
    store: StoreClient

    def executions(self) -> list[dict[str, Any]]:
        sfn = self.session.client("stepfunctions", region_name=REGION)
        return list(sfn.list_executions(stateMachineArn=self.machine)["executions"])


class Terminal(io.StringIO):
    """Standard input that is a terminal, with the operator's answer in it."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def world(aws: Any) -> Iterator[World]:
    sfn = aws.client("stepfunctions", region_name=REGION)
    role = "arn:aws:iam::123456789012:role/sfn"
    machine = sfn.create_state_machine(
        name=f"{STACK}-decommission-workspace", definition=json.dumps(PASS), roleArn=role
    )["stateMachineArn"]
    template = json.loads(stack_template())
    template["Parameters"]["DecommissionArn"] = {"Type": "String"}
    template["Outputs"]["DecommissionStateMachineArn"] = {"Value": {"Ref": "DecommissionArn"}}
    cfn = aws.client("cloudformation", region_name=REGION)
    cfn.create_stack(
        StackName=STACK,
        TemplateBody=json.dumps(template),
        Parameters=[
            {
                "ParameterKey": "StateMachineArn",
                "ParameterValue": machine.replace("decommission", "reconcile"),
            },
            {"ParameterKey": "DecommissionArn", "ParameterValue": machine},
        ],
    )
    outputs = {
        o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName=STACK)["Stacks"][0]["Outputs"]
    }
    store = StoreClient(aws.resource("dynamodb", region_name=REGION).Table(outputs["TableName"]))
    yield World(aws, machine, store)


def _run(world: World, *argv: str, stdin: Any = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), session=world.session, env={"AWS_REGION": REGION}, out=out, err=err, stdin=stdin)
    return code, out.getvalue(), err.getvalue()


def test_a_workspace_the_stack_does_not_manage_is_said_so_and_nothing_starts(world: World) -> None:
    code, out, err = _run(world, "destroy", "ghost", "--mode", "delete", "--yes")
    assert code == 0, err
    assert "ghost is not managed by this stack" in out and world.executions() == []


def test_an_already_decommissioned_workspace_is_said_so_and_nothing_starts(world: World) -> None:
    world.store.put_desired(parse_spec(SPEC))
    world.store.set_decommission("acme", DecommissionMarker(state="decommissioned", mode="delete"))
    code, result = _json(world, "destroy", "acme", "--yes", "--wait")
    assert code == 0 and result["status"] == "ALREADY_DECOMMISSIONED" and world.executions() == []


def _json(world: World, *argv: str) -> tuple[int, Any]:
    code, out, err = _run(world, *argv, "--output", "json")
    return code, json.loads(out) if out else {"stderr": err}


def test_without_a_terminal_destroy_asks_for_yes_and_starts_nothing(world: World) -> None:
    world.store.put_desired(parse_spec(SPEC))
    code, out, err = _run(world, "destroy", "acme", stdin=io.StringIO("acme\n"))
    assert code == 2 and "pass --yes" in err
    assert "Destroy plan for acme (mode detach" in out, "the plan is shown before the question"
    assert world.executions() == []


def test_the_operator_confirms_with_the_workspace_key(world: World) -> None:
    world.store.put_desired(parse_spec(SPEC))
    # When the operator types something else, nothing starts
    code, _, err = _run(world, "destroy", "acme", "--mode", "delete", stdin=Terminal("yes\n"))
    assert code == 1 and "not confirmed" in err and world.executions() == []
    # When the operator types the key, one execution starts with the request
    code, out, err = _run(world, "destroy", "acme", "--mode", "delete", stdin=Terminal("acme\n"))
    assert code == 0, err
    [execution] = world.executions()
    assert out.strip().endswith(execution["executionArn"])
    sfn = world.session.client("stepfunctions", region_name=REGION)
    started = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert started == {"workspace_key": "acme", "mode": "delete"}
    assert execution["name"].startswith("decommission-acme-delete-")


def test_delete_mode_of_a_retrofitted_workspace_needs_the_flag(world: World) -> None:
    retrofit = json.loads(json.dumps(SPEC))
    retrofit["databricks"]["workspace"] = {"existing_workspace_id": 1234}
    world.store.put_desired(parse_spec(retrofit))
    code, _, err = _run(world, "destroy", "acme", "--mode", "delete", "--yes")
    assert code == 2 and "--delete-existing-workspace" in err and world.executions() == []
    code, out, _ = _run(world, "plan", "--destroy", "acme", "--mode", "delete")
    assert code == 1 and "Refused:" in out
    code, _, _ = _run(world, "plan", "--destroy", "acme")
    assert code == 0
    code, _, err = _run(world, "destroy", "acme", "--delete-existing-workspace", "--yes")
    assert code == 2 and "goes with --mode delete" in err


def test_plan_takes_a_spec_or_destroy(world: World) -> None:
    assert _run(world, "plan")[0] == 2
    assert _run(world, "plan", "spec.yaml", "--destroy", "acme")[0] == 2
