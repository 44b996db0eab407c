"""The benchmark's counting and formatting (bench/report.py): pure functions, no timings."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.report import (
    BenchReport,
    ImportFigures,
    Machine,
    RunFigures,
    aws_write,
    by_service,
    comparison_rows,
    count_transitions,
    databricks_write,
    delta,
    markdown_table,
    median_ms,
    render_markdown,
    render_text,
    scheduled_lambdas,
    short_databricks_operation,
    text_table,
)

HISTORY: list[dict[str, Any]] = [
    {"type": "ExecutionStarted"},
    {"type": "PassStateEntered"},
    {"type": "PassStateExited"},
    {"type": "TaskStateEntered"},
    {
        "type": "LambdaFunctionScheduled",
        "lambdaFunctionScheduledEventDetails": {
            "resource": "arn:aws:lambda:us-east-1:123456789012:function:stack-Preflight-ABC"
        },
    },
    {"type": "MapStateEntered"},
    {"type": "WaitStateEntered"},
    {
        "type": "LambdaFunctionScheduled",
        "lambdaFunctionScheduledEventDetails": {
            "resource": "arn:aws:lambda:us-east-1:123456789012:function:stack-Preflight-ABC:$LATEST"
        },
    },
    {"type": "ExecutionSucceeded"},
]


def test_transitions_are_the_state_entered_events() -> None:
    assert count_transitions(HISTORY) == 4


def test_scheduled_lambdas_by_function_name() -> None:
    assert scheduled_lambdas(HISTORY) == {"stack-Preflight-ABC": 2}


def test_delta_keeps_what_grew() -> None:
    assert delta({"a": 1, "b": 2}, {"a": 3, "b": 2, "c": 1}) == {"a": 2, "c": 1}


def test_median_in_milliseconds() -> None:
    assert median_ms([0.3, 0.1, 0.2]) == pytest.approx(200.0)
    with pytest.raises(ValueError):
        median_ms([])


def test_short_databricks_operations() -> None:
    assert (
        short_databricks_operation("GET /api/2.0/accounts/{account_id}/vpc-endpoints") == "GET vpc-endpoints"
    )
    assert short_databricks_operation("POST /oidc/accounts/{account_id}/v1/token") == "POST oidc/v1/token"
    assert short_databricks_operation("GET /other") == "GET /other"


def test_reads_and_writes() -> None:
    assert aws_write("ec2:CreateVpcEndpoint") and aws_write("dynamodb:PutItem")
    assert not aws_write("ec2:DescribeVpcEndpoints") and not aws_write("dynamodb:Query")
    assert databricks_write("POST /api/2.0/accounts/{account_id}/networks")
    assert not databricks_write("POST /oidc/accounts/{account_id}/v1/token")
    assert not databricks_write("GET /api/2.0/accounts/{account_id}/networks")


def test_by_service_sums_operations() -> None:
    assert by_service({"ec2:A": 2, "dynamodb:B": 1, "ec2:C": 3}) == {"dynamodb": 1, "ec2": 5}


def test_comparison_rows_cover_every_key_and_total() -> None:
    rows = comparison_rows([{"b": 2, "a": 1}, {"c": 4}])
    assert rows == [["a", "1", "0"], ["b", "2", "0"], ["c", "0", "4"], ["**total**", "3", "4"]]


def test_tables() -> None:
    text = text_table(["op", "n"], [["alpha", "1"], ["**total**", "12"]])
    assert text.splitlines() == ["op      n", "-----  --", "alpha   1", "total  12"]
    assert markdown_table(["op", "n"], [["a", "1"]]).splitlines() == ["| op | n |", "|---|---:|", "| a | 1 |"]


def _report() -> BenchReport:
    run = RunFigures(
        label="first run",
        status="SUCCEEDED",
        wall_seconds=1.234,
        transitions=4,
        history_events=9,
        invocations={"preflight": 2},
        aws_calls={"ec2:DescribeVpcs": 3, "ec2:CreateVpcEndpoint": 1},
        databricks_calls={"POST /api/2.0/accounts/{account_id}/networks": 1},
        aws_calls_by_function={"preflight": 4},
        lambda_seconds=0.5,
    )
    return BenchReport(
        machine=Machine("2026-01-01 00:00 UTC", 2, "3.13.0", "Linux x86_64", 0.01, "0.5 / 1.0"),
        runs=[run],
        imports=ImportFigures(
            repeats=3, handlers_ms={"a": 300.4, "b": 410.6}, sdk_ms=900.0, baseline_ms=100.0
        ),
        notes=("a note",),
    )


def test_markdown_report() -> None:
    md = render_markdown(_report())
    assert md.startswith("# Benchmark results")
    assert "- time scale: 0.01" in md and "nproc=2" in md and "2026-01-01" in md
    assert "load average 0.5 / 1.0" in md
    assert "| state transitions (StateEntered events) | 4 |" in md
    assert "| AWS API calls by the Lambdas | 4 |" in md
    assert "|   of which writes | 1 |" in md
    assert "| wall time, local stack at time scale 0.01 (s) | 1.23 |" in md
    assert "| **range** | 300-411 |" in md
    assert "| `import databricks.sdk` (for comparison) | 900 |" in md
    assert "| POST networks | 1 |" in md
    assert "- a note" in md


def test_text_report_has_no_markdown_emphasis() -> None:
    text = render_text(_report())
    assert "time scale 0.01" in text and "**" not in text
    assert "range" in text and "300-411" in text
