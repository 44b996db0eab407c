"""The benchmark's counting and formatting (bench/report.py): pure functions, no timings."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.report import (
    BenchReport,
    EmulatorDelays,
    ImportFigures,
    Machine,
    Procedure,
    ProcedureRun,
    RunFigures,
    SideBySide,
    aws_write,
    by_service,
    census_delta,
    comparison_rows,
    count_transitions,
    created_total,
    databricks_write,
    delta,
    markdown_table,
    median_ms,
    ratio,
    render_markdown,
    render_text,
    scheduled_lambdas,
    short_databricks_operation,
    splice_import_section,
    text_table,
    walkthrough_lower_bound,
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
            repeats=3,
            handlers_ms={"a": 300.4, "b": 410.6},
            sdk_ms=900.0,
            baseline_ms=100.0,
            floor_ms=250.0,
            handlers_cpu_ms={"a": 200.0, "b": 300.0},
            floor_cpu_ms=200.0,
            source_handlers_ms={"a": 901.2, "b": 1000.0},
            source_floor_ms=700.0,
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


# --- side by side with the baseline script ---------------------------------------------------------------

# The local stack's defaults (EmulatorConfig, LocalAwsSettings).
DEFAULT_DELAYS = EmulatorDelays(
    endpoint_accept_s=20,
    accepted_available_s=20,
    private_dns_s=10,
    workspace_running_s=60,
    aws_endpoint_available_s=60,
)


def test_lower_bound_is_registration_then_workspace_on_the_defaults() -> None:
    # Given the emulator's default delays
    # When the walkthrough's lower bound is derived
    bound = walkthrough_lower_bound(DEFAULT_DELAYS)
    # Then accepted (20) + available (20) + RUNNING (60) sets it; the AWS endpoints' 60 s run beside
    assert bound.seconds == 100
    assert [seconds for _, seconds in bound.chains] == [100, 60, 0]


def test_lower_bound_follows_the_configured_delays() -> None:
    # Given AWS-service endpoints slower than the whole Databricks chain, then they set the bound
    assert walkthrough_lower_bound(replace(DEFAULT_DELAYS, aws_endpoint_available_s=130)).seconds == 130
    # Given private DNS slower than provisioning: the network is validated when provisioning ends, so the
    # endpoints must be available again by then and private DNS takes the workspace's place in the chain
    assert walkthrough_lower_bound(replace(DEFAULT_DELAYS, private_dns_s=80)).seconds == 120
    # Given a slower acceptance, then the Databricks chain grows by as much
    assert walkthrough_lower_bound(replace(DEFAULT_DELAYS, endpoint_accept_s=45)).seconds == 125
    # And a slow gateway endpoint counts like the interface ones
    assert walkthrough_lower_bound(replace(DEFAULT_DELAYS, gateway_endpoint_available_s=170)).seconds == 170


def test_census_delta_and_duplicates() -> None:
    created = census_delta(
        {"VPC endpoints": 5, "networks": 1}, {"VPC endpoints": 8, "networks": 1, "rules": 2}
    )
    assert created == {"VPC endpoints": 3, "networks": 0, "rules": 2}
    # A deletion is not a duplicate
    assert created_total({**created, "workspaces": -1}) == 5


def test_ratio() -> None:
    assert ratio(150, 100) == "1.50x"
    assert ratio(1, 0) == "n/a"


def _side_by_side() -> SideBySide:
    def run(
        status: str, seconds: float, aws: dict[str, int], dbx: dict[str, int], made: dict[str, int]
    ) -> ProcedureRun:
        return ProcedureRun(status, seconds, aws, dbx, made)

    ours = Procedure(
        "ours",
        run(
            "SUCCEEDED",
            110.0,
            {"ec2:CreateVpcEndpoint": 5, "ec2:DescribeVpcEndpoints": 15},
            {
                "POST /api/2.0/accounts/{account_id}/networks": 1,
                "GET /api/2.0/accounts/{account_id}/networks": 3,
            },
            {"VPC endpoints": 5, "networks": 1},
        ),
        run("SUCCEEDED", 12.0, {"ec2:DescribeVpcEndpoints": 4}, {}, {"VPC endpoints": 0, "networks": 0}),
    )
    baseline = Procedure(
        "the baseline",
        run(
            "SUCCEEDED",
            125.0,
            {"ec2:CreateVpcEndpoint": 5, "ec2:DescribeVpcEndpoints": 5},
            {"POST /api/2.0/accounts/{account_id}/networks": 1},
            {"VPC endpoints": 5, "networks": 1},
        ),
        run(
            "FAILED: InvalidParameter on CreateVpcEndpoint",
            20.0,
            {"ec2:CreateVpcEndpoint": 4},
            {},
            {"VPC endpoints": 3, "networks": 0},
        ),
    )
    return SideBySide(0.5, walkthrough_lower_bound(DEFAULT_DELAYS), ours, baseline)


def test_side_by_side_table_in_markdown() -> None:
    # Given a report with the comparison
    report = replace(_report(), side_by_side=_side_by_side())
    # When it is rendered as markdown
    md = render_markdown(report)
    # Then the comparison comes first, with the ratios to the bound and between the two
    assert md.index("## Side by side") < md.index("## Summary")
    assert "| first run: end to end (emulated s) | 110.0 | 125.0 | 0.88x |" in md
    assert "| lower bound of the walkthrough's order (emulated s) | 100 | 100 |  |" in md
    assert "| first run / lower bound | 1.10x | 1.25x |  |" in md
    assert "| first run: AWS API calls (writes) | 20 (5) | 10 (5) | 2.00x |" in md
    assert "| first run: Databricks Account API calls (writes) | 4 (1) | 1 (1) | 4.00x |" in md
    assert "| second run: status | SUCCEEDED | FAILED: InvalidParameter on CreateVpcEndpoint |  |" in md
    # And no ratio against a run that stopped half-way
    assert "| second run: end to end (emulated s) | 12.0 | 20.0 |  |" in md
    assert "| second run: AWS API calls (writes) | 4 (0) | 4 (4) |  |" in md
    assert "| second run: resources created (duplicates) | 0 | 3 |  |" in md
    # And the bound's chains and the resources per run
    assert "| **lower bound** | 100 |" in md
    assert "| VPC endpoints | 5 | 0 | 5 | 3 |" in md
    assert "| **total** | 6 | 0 | 6 | 3 |" in md
    assert "time scale 0.5 (a 60 s wait lasts 30 s" in md


def test_side_by_side_in_text_and_absent_without_baseline() -> None:
    report = replace(_report(), side_by_side=_side_by_side())
    text = render_text(report)
    assert "Side by side" in text and "**" not in text
    assert "Side by side" not in render_text(_report())


def test_import_table_gives_each_handler_as_a_ratio_of_the_floor() -> None:
    md = render_markdown(_report())
    # a: 300.4 / 250 wall, 200 / 200 CPU; the range row names the best and worst ratios (300.4 and 410.6 / 250)
    # beside it, the same import from the tree as source: 901.2 ms, 901.2 / 300.4 = 3.00x the built one
    assert "| a | 300 | 1.20x | 200 | 1.00x | 901 | 3.00x |" in md
    assert "| **range** | 300-411 | 1.20-1.64x |  |  | 901-1000 |  |" in md
    assert (
        "| **floor** (boto3, requests, pydantic, powertools; Logger, Metrics, Tracer) | 250 | 1.00x | 200 | 1.00x "
        "| 700 | 2.80x |" in md
    )


def test_a_paired_ratio_is_reported_rather_than_the_ratio_of_the_medians() -> None:
    # Given b measured each round just after a floor of its own: its paired ratios' median is 1.5
    report = _report()
    assert report.imports is not None
    imports = replace(report.imports, handlers_ratio={"b": 1.5})
    md = render_markdown(replace(report, imports=imports))
    # Then b's x floor is the paired figure (not 410.6 / 250 = 1.64x); a, unpaired, keeps the medians' ratio
    assert "| b | 411 | 1.50x |" in md
    assert "| a | 300 | 1.20x |" in md
    assert "| **range** | 300-411 | 1.20-1.50x |" in md


def test_the_validating_floor_is_a_row_of_its_own_as_a_ratio_of_the_floor() -> None:
    report = _report()
    assert report.imports is not None
    imports = replace(report.imports, validating_floor_ms=290.2, validating_floor_ratio=1.16)
    md = render_markdown(replace(report, imports=imports))
    assert (
        "| floor + one pydantic model built and used (what validating an input costs) | 290 | 1.16x |" in md
    )
    assert "validating" not in render_markdown(report)


def test_what_a_first_invocation_adds_is_listed_apart_from_the_handlers() -> None:
    report = _report()
    assert report.imports is not None
    imports = replace(report.imports, first_use_after="acquire_lease", first_use_ms={"the EC2 adapter": 12.4})
    md = render_markdown(replace(report, imports=imports))
    # A row of its own, as a time added (not a handler: the range stays the handlers')
    assert "| first use, not in the figures above: the EC2 adapter | +12 |" in md
    assert "| **range** | 300-411 |" in md
    assert "just after importing acquire_lease" in md
    assert "first use, not" not in render_markdown(report)


def test_import_section_replaces_only_its_own_section() -> None:
    results = "# Benchmark results\n\n## Summary\n\nrun\n\n## Handler import time (cold, ms)\n\nold\n\n## Fleet\n\nfleet\n"
    new = splice_import_section(results, "## Handler import time (cold, ms)\n\nnew\n")
    assert (
        new
        == "# Benchmark results\n\n## Summary\n\nrun\n\n## Handler import time (cold, ms)\n\nnew\n\n## Fleet\n\nfleet\n"
    )
    # a RESULTS.md without the section gets it at the end
    assert (
        splice_import_section("# B\n", "## Handler import time\n\nx\n")
        == "# B\n\n## Handler import time\n\nx\n"
    )


def test_the_fleets_idle_time_is_the_time_aws_bucket_stood_full() -> None:
    from bench.fleet import where_the_time_goes

    step = 1 / 0.3
    # The burst empties the bucket, calls follow at AWS's rate, a pause of one interval is made up by two
    # calls made together (no capacity lost), then a pause of 2 intervals and 20 s: the bucket refills its 4
    # tokens in 13.3 s and stands full for the remaining 13.3 s
    calls = [0.0, 0.0, 0.0, 0.0, step, 2 * step, 4 * step, 4 * step, 6 * step + 20]
    report = where_the_time_goes([], calls, 0.0, 1.0)
    assert "EC2 schedule idle (AWS's bucket full): 13 s, 1 gaps (first mutation at 0 s)" in report, report
    # Wall seconds are turned into emulated ones first
    assert "full): 13 s, 1 gaps" in where_the_time_goes([], [c * 0.5 for c in calls], 0.0, 0.5)
