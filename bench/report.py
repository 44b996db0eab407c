"""The benchmark's figures and their two renderings (text for stdout, markdown for bench/RESULTS.md).

Pure functions only: bench/run.py measures, this module counts and formats (tested by
tests/unit/test_bench_report.py).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# The Account API prefix every Databricks operation shares; dropped in the tables.
_ACCOUNT_PREFIX = "/api/2.0/accounts/{account_id}"
_OIDC_PREFIX = "/oidc/accounts/{account_id}"


@dataclass(frozen=True)
class Machine:
    """Where and how the figures were taken."""

    date: str
    nproc: int
    python: str
    platform: str
    time_scale: float
    load: str = (
        ""  # 1-minute load average before / after, e.g. "0.4 / 1.9": import times need a quiet machine
    )


@dataclass(frozen=True)
class RunFigures:
    """One execution of the state machine on the local stack."""

    label: str
    status: str
    wall_seconds: float  # start_execution -> terminal status seen by the client (local-stack time)
    transitions: int  # history events whose type ends in "StateEntered"
    history_events: int
    invocations: Mapping[str, int]  # function (step folder) -> Lambda invocations
    aws_calls: Mapping[str, int]  # "service:Operation" -> calls made by the application's Lambdas
    databricks_calls: Mapping[str, int]  # "METHOD /path/{template}" -> requests answered by the emulator
    aws_calls_by_function: Mapping[str, int] = field(default_factory=dict)
    lambda_seconds: float = 0.0  # sum of the invocations' durations (local-stack time)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImportFigures:
    """Cold-import times in fresh interpreters, median of `repeats`, in milliseconds (wall clock; CPU time
    of the interpreter beside it, which a busy machine inflates less)."""

    repeats: int
    handlers_ms: Mapping[str, float]  # function (step folder) -> median ms
    sdk_ms: float | None  # `import databricks.sdk`; None when the SDK is not installed
    baseline_ms: float | None = None  # `import boto3` alone, for scale
    # The floor: `import boto3, requests, pydantic, aws_lambda_powertools` and Logger, Metrics and Tracer
    # created, in the functions' environment. What no handler can go below.
    floor_ms: float | None = None
    handlers_cpu_ms: Mapping[str, float] = field(default_factory=dict)
    floor_cpu_ms: float | None = None
    # The same rounds against the layer's tree without bytecode (as `sam build`'s python builder shipped it).
    source_handlers_ms: Mapping[str, float] = field(default_factory=dict)
    source_floor_ms: float | None = None
    # Paired: the median, over the rounds, of the handler's time over the floor measured just before it.
    handlers_ratio: Mapping[str, float] = field(default_factory=dict)
    # The floor with pydantic's BaseModel imported and one model of one field built and used: what a handler
    # that validates its input pays before any code of its own (paired with the floor, like the handlers).
    validating_floor_ms: float | None = None
    validating_floor_ratio: float | None = None
    # What a first invocation may add beyond the import, measured just after importing `first_use_after`:
    # models built on first use, adapters imported where they are built (label -> median ms).
    first_use_after: str = ""
    first_use_ms: Mapping[str, float] = field(default_factory=dict)

    def ratio(self, name: str) -> float | None:
        """The handler's import time over the floor's: paired when measured so, else the medians' ratio."""
        if name in self.handlers_ratio:
            return self.handlers_ratio[name]
        return self.handlers_ms[name] / self.floor_ms if self.floor_ms else None


# --- side by side: the state machine and the baseline script ----------------------------------------


@dataclass(frozen=True)
class EmulatorDelays:
    """The local stack's configured delays the walkthrough's order waits for, in emulated seconds."""

    endpoint_accept_s: float  # a registered Databricks endpoint is accepted (EmulatorConfig)
    accepted_available_s: float  # accepted -> available (LocalAwsSettings.accepted_endpoint_available_after)
    private_dns_s: float  # private DNS turned on: available -> pending -> available
    workspace_running_s: float  # workspace created -> RUNNING (EmulatorConfig.workspace_provision_delay_s)
    aws_endpoint_available_s: (
        float  # interface endpoint to an AWS service (sts, kinesis-streams): -> available
    )
    gateway_endpoint_available_s: float = 0.0  # gateway endpoint (s3)
    # the outbound Resolver endpoint OPERATIONAL, then its rules' associations COMPLETE
    resolver_s: float = 0.0


@dataclass(frozen=True)
class LowerBound:
    """The shortest end-to-end time an order of work allows: the longest of its independent chains."""

    seconds: float
    chains: tuple[tuple[str, float], ...]  # (what waits, emulated seconds)


def walkthrough_lower_bound(d: EmulatorDelays) -> LowerBound:
    """The lower bound of the seed walkthrough's order on the emulator (derivation: bench/README.md).

    Endpoints are registrable at creation (pendingAcceptance); the private access settings, network and
    workspace are created once the registrations are available; Databricks validates the network when
    provisioning ends and needs the endpoints available then, so private DNS (turned on at the same moment)
    must be done by RUNNING. Everything else runs beside that chain."""
    databricks = d.endpoint_accept_s + d.accepted_available_s + max(d.workspace_running_s, d.private_dns_s)
    chains = (
        (
            "Databricks endpoints accepted, available, then the workspace RUNNING (private DNS beside)",
            databricks,
        ),
        (
            "AWS-service endpoints available",
            max(d.aws_endpoint_available_s, d.gateway_endpoint_available_s),
        ),
        ("Route 53 Resolver endpoint, rules and associations", d.resolver_s),
    )
    return LowerBound(max(seconds for _, seconds in chains), chains)


@dataclass(frozen=True)
class ProcedureRun:
    """One run of a procedure (the state machine, or the baseline script) on the local stack."""

    status: str  # SUCCEEDED, or FAILED with the error
    emulated_seconds: float  # start to end, wall time divided by the time scale
    aws_calls: Mapping[str, int]  # "service:Operation" -> calls
    databricks_calls: Mapping[str, int]  # "METHOD /path/{template}" -> requests answered by the emulator
    created: Mapping[str, int]  # resource kind -> how many more exist after the run than before


@dataclass(frozen=True)
class Procedure:
    name: str
    first: ProcedureRun  # on a fresh local stack
    second: ProcedureRun  # the same inputs again, on the same stack


@dataclass(frozen=True)
class SideBySide:
    time_scale: float
    bound: LowerBound
    ours: Procedure
    baseline: Procedure


def census_delta(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    """after - before for every kind counted (deleted resources count negative)."""
    return {kind: after.get(kind, 0) - before.get(kind, 0) for kind in sorted({*before, *after})}


def created_total(created: Mapping[str, int]) -> int:
    """Resources a run added; for a second run with the same inputs, every one is a duplicate."""
    return sum(n for n in created.values() if n > 0)


def ratio(numerator: float, denominator: float) -> str:
    """'1.23x', or 'n/a' when there is nothing to divide by."""
    return f"{numerator / denominator:.2f}x" if denominator > 0 else "n/a"


@dataclass(frozen=True)
class BenchReport:
    machine: Machine
    runs: Sequence[RunFigures]
    imports: ImportFigures | None
    notes: Sequence[str] = field(default_factory=tuple)
    side_by_side: SideBySide | None = None


# --- counting ----------------------------------------------------------------------------------------


def count_transitions(history: Iterable[Mapping[str, Any]]) -> int:
    """State transitions as Step Functions bills them: one per state entered (TaskStateEntered,
    ChoiceStateEntered, WaitStateEntered, PassStateEntered, MapStateEntered, ParallelStateEntered ...)."""
    return sum(1 for event in history if str(event.get("type", "")).endswith("StateEntered"))


def scheduled_lambdas(history: Iterable[Mapping[str, Any]]) -> Counter[str]:
    """LambdaFunctionScheduled events per function name (the last segment of the resource ARN)."""
    counts: Counter[str] = Counter()
    for event in history:
        if event.get("type") != "LambdaFunctionScheduled":
            continue
        details = event.get("lambdaFunctionScheduledEventDetails") or {}
        resource = str(details.get("resource", ""))
        # arn:aws:lambda:region:account:function:name[:qualifier]
        parts = resource.split(":")
        name = parts[6] if len(parts) > 6 and parts[5] == "function" else resource
        counts[name] += 1
    return counts


def delta(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    """after - before per key, keeping only the keys that grew."""
    return {key: n - before.get(key, 0) for key, n in after.items() if n - before.get(key, 0) > 0}


def median_ms(samples_s: Sequence[float]) -> float:
    """The median of durations in seconds, in milliseconds."""
    if not samples_s:
        raise ValueError("no samples")
    return statistics.median(samples_s) * 1000.0


def short_databricks_operation(operation: str) -> str:
    """'GET /api/2.0/accounts/{account_id}/vpc-endpoints' -> 'GET vpc-endpoints'."""
    method, _, path = operation.partition(" ")
    for prefix in (_ACCOUNT_PREFIX, _OIDC_PREFIX):
        if path.startswith(prefix):
            path = path[len(prefix) :].lstrip("/") or "/"
            if prefix == _OIDC_PREFIX:
                path = f"oidc/{path}"
            break
    return f"{method} {path}"


def by_service(calls: Mapping[str, int]) -> dict[str, int]:
    """'ec2:DescribeVpcEndpoints' counts summed per service ('ec2')."""
    totals: Counter[str] = Counter()
    for key, n in calls.items():
        totals[key.partition(":")[0]] += n
    return dict(sorted(totals.items()))


_READ_PREFIXES = ("Describe", "Get", "List", "Query", "Scan", "BatchGet", "Search")


def aws_write(operation: str) -> bool:
    """Whether an AWS operation ('ec2:CreateVpcEndpoint') changes something (not Describe/Get/List...)."""
    return not operation.partition(":")[2].startswith(_READ_PREFIXES)


def databricks_write(operation: str) -> bool:
    """Whether a Databricks operation ('POST /api/2.0/...') changes something; token requests do not."""
    method = operation.partition(" ")[0]
    return method in {"POST", "PUT", "PATCH", "DELETE"} and "/oidc/" not in operation


# --- tables ------------------------------------------------------------------------------------------


def comparison_rows(columns: Sequence[Mapping[str, int]]) -> list[list[str]]:
    """One row per key present in any column (sorted), its count in each column, then a total row."""
    keys = sorted({key for column in columns for key in column})
    rows = [[key, *(str(column.get(key, 0)) for column in columns)] for key in keys]
    rows.append(["**total**", *(str(sum(column.values())) for column in columns)])
    return rows


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A fixed-width table: first column left-aligned, the others right-aligned."""
    cells = [list(headers), *([c.replace("**", "") for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        parts = [row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True))]
        return "  ".join(parts).rstrip()

    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths), *(line(r) for r in cells[1:])])


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table, numbers right-aligned."""
    align = ["---", *("---:" for _ in headers[1:])]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# --- the report --------------------------------------------------------------------------------------


Section = tuple[str, str, list[str], list[list[str]]]


def _calls(calls: Mapping[str, int], write: Callable[[str], bool]) -> tuple[int, str]:
    """(total, 'total (writes)') of a run's calls."""
    total = sum(calls.values())
    return total, f"{total} ({sum(n for k, n in calls.items() if write(k))})"


def _versus(ours: ProcedureRun, baseline: ProcedureRun, a: float, b: float) -> str:
    """ours / baseline, only when both succeeded: a run that stopped half-way did less work."""
    return ratio(a, b) if ours.status == baseline.status == "SUCCEEDED" else ""


def _side_by_side_sections(s: SideBySide) -> list[Section]:
    """The comparison with the baseline script, the lower bound's chains and the resources each run made."""
    ours, base, bound = s.ours, s.baseline, s.bound.seconds
    rows: list[list[str]] = []
    for which in ("first", "second"):
        o, b = getattr(ours, which), getattr(base, which)
        o_aws, o_aws_text = _calls(o.aws_calls, aws_write)
        b_aws, b_aws_text = _calls(b.aws_calls, aws_write)
        o_dbx, o_dbx_text = _calls(o.databricks_calls, databricks_write)
        b_dbx, b_dbx_text = _calls(b.databricks_calls, databricks_write)
        o_new, b_new = created_total(o.created), created_total(b.created)
        rows += [
            [f"{which} run: status", o.status, b.status, ""],
            [
                f"{which} run: end to end (emulated s)",
                f"{o.emulated_seconds:.1f}",
                f"{b.emulated_seconds:.1f}",
                _versus(o, b, o.emulated_seconds, b.emulated_seconds),
            ],
        ]
        if which == "first":
            rows += [
                ["lower bound of the walkthrough's order (emulated s)", f"{bound:g}", f"{bound:g}", ""],
                [
                    "first run / lower bound",
                    ratio(o.emulated_seconds, bound),
                    ratio(b.emulated_seconds, bound),
                    "",
                ],
            ]
        rows += [
            [f"{which} run: AWS API calls (writes)", o_aws_text, b_aws_text, _versus(o, b, o_aws, b_aws)],
            [
                f"{which} run: Databricks Account API calls (writes)",
                o_dbx_text,
                b_dbx_text,
                _versus(o, b, o_dbx, b_dbx),
            ],
            [
                f"{which} run: resources created" + (" (duplicates)" if which == "second" else ""),
                str(o_new),
                str(b_new),
                "",
            ],
        ]
    scale = s.time_scale
    kinds = sorted({*ours.first.created, *ours.second.created, *base.first.created, *base.second.created})
    runs = (ours.first, ours.second, base.first, base.second)
    created = [[kind, *(str(r.created.get(kind, 0)) for r in runs)] for kind in kinds]
    created.append(["**total**", *(str(created_total(r.created)) for r in runs)])
    return [
        (
            "Side by side: dbx-privatelink and the baseline script",
            f"The sample workspace with custom DNS, on a fresh local stack each at time scale {scale:g} (a 60 s "
            f"wait lasts {60 * scale:g} s of wall time, so the emulated delays dominate). {ours.name}; "
            f"{base.name}. Emulated seconds are wall seconds divided by the time scale. Each procedure then "
            "runs a second time with the same inputs on its stack: whatever that run creates is a duplicate.",
            ["figure", "dbx-privatelink", "baseline script", "ours / baseline"],
            rows,
        ),
        (
            "Lower bound of the walkthrough's order",
            "Derived from the emulator's configured delays (bench/README.md): the longest of the chains that "
            "run beside each other.",
            ["chain", "emulated s"],
            [
                *([what, f"{seconds:g}"] for what, seconds in s.bound.chains),
                ["**lower bound**", f"{bound:g}"],
            ],
        ),
        (
            "Resources created per run",
            "Resources counted on the local stack before and after each run (AWS and Databricks).",
            ["resource", "ours, first", "ours, second", "baseline, first", "baseline, second"],
            created,
        ),
    ]


def _sections(report: BenchReport) -> list[Section]:
    """(title, explanation, headers, rows) of every table, shared by both renderings."""
    runs = report.runs
    run_headers = [r.label for r in runs]
    scale = report.machine.time_scale
    sections: list[Section] = []
    if report.side_by_side is not None:
        sections += _side_by_side_sections(report.side_by_side)
    summary = [
        ["status", *(r.status for r in runs)],
        ["state transitions (StateEntered events)", *(str(r.transitions) for r in runs)],
        ["history events, all types", *(str(r.history_events) for r in runs)],
        ["Lambda invocations", *(str(sum(r.invocations.values())) for r in runs)],
        ["AWS API calls by the Lambdas", *(str(sum(r.aws_calls.values())) for r in runs)],
        ["  of which writes", *(str(sum(n for k, n in r.aws_calls.items() if aws_write(k))) for r in runs)],
        ["Databricks Account API calls", *(str(sum(r.databricks_calls.values())) for r in runs)],
        [
            "  of which writes",
            *(str(sum(n for k, n in r.databricks_calls.items() if databricks_write(k))) for r in runs),
        ],
        [f"wall time, local stack at time scale {scale:g} (s)", *(f"{r.wall_seconds:.2f}" for r in runs)],
        ["sum of Lambda durations, local stack (s)", *(f"{r.lambda_seconds:.2f}" for r in runs)],
    ]
    sections.append(
        (
            "Summary",
            "One execution of the state machine for the sample workspace per column. Times are local-stack "
            f"times at time scale {scale:g} (a 60 s Wait lasts {60 * scale:g} s), not AWS times.",
            ["figure", *run_headers],
            summary,
        )
    )
    sections.append(
        (
            "Lambda invocations per function",
            "Invocations served by the in-process Lambda runtime (retries included); the total matches "
            "the LambdaFunctionScheduled events of the history.",
            ["function", *run_headers],
            comparison_rows([r.invocations for r in runs]),
        )
    )
    sections.append(
        (
            "AWS API calls by service",
            "Every request the application's Lambdas sent to the emulated AWS, reads included (retries "
            "count once per attempt).",
            ["service", *run_headers],
            comparison_rows([by_service(r.aws_calls) for r in runs]),
        )
    )
    sections.append(
        (
            "AWS API calls by function",
            "The same calls per Lambda function that made them.",
            ["function", *run_headers],
            comparison_rows([r.aws_calls_by_function for r in runs]),
        )
    )
    sections.append(
        (
            "AWS API calls by operation",
            "The same calls per operation.",
            ["operation", *run_headers],
            comparison_rows([r.aws_calls for r in runs]),
        )
    )
    sections.append(
        (
            "Databricks Account API calls by operation",
            "Requests the Databricks emulator answered during the run, OAuth token requests included "
            "(paths relative to /api/2.0/accounts/{account_id}).",
            ["operation", *run_headers],
            comparison_rows(
                [{short_databricks_operation(k): n for k, n in r.databricks_calls.items()} for r in runs]
            ),
        )
    )
    if report.imports is not None:
        sections.append(import_section(report.imports))
    return sections


def import_section(imports: ImportFigures) -> tuple[str, str, list[str], list[list[str]]]:
    """The handler import table: each function against the floor, as a ratio; beside it, the same import
    from the layer's tree as source."""
    source, source_floor = imports.source_handlers_ms, imports.source_floor_ms

    def times(
        wall: float, ratio: float | None, cpu: float | None, floor: float | None, floor_cpu: float | None
    ) -> list[str]:
        return [
            f"{wall:.0f}",
            f"{ratio:.2f}x" if ratio is not None else "",
            f"{cpu:.0f}" if cpu is not None else "",
            f"{cpu / floor_cpu:.2f}x" if cpu is not None and floor_cpu else "",
        ]

    def as_source(ms: float | None, built: float) -> list[str]:
        return [f"{ms:.0f}", f"{ms / built:.2f}x"] if ms is not None and built else ["", ""]

    floor, floor_cpu = imports.floor_ms, imports.floor_cpu_ms
    rows = [
        [
            name,
            *times(ms, imports.ratio(name), imports.handlers_cpu_ms.get(name), floor, floor_cpu),
            *as_source(source.get(name), ms),
        ]
        for name, ms in sorted(imports.handlers_ms.items())
    ]
    if imports.handlers_ms:
        values = list(imports.handlers_ms.values())
        ratios = [r for r in map(imports.ratio, imports.handlers_ms) if r is not None]
        worst = f"{min(ratios):.2f}-{max(ratios):.2f}x" if ratios else ""
        source_range = f"{min(source.values()):.0f}-{max(source.values()):.0f}" if source else ""
        rows.append(["**range**", f"{min(values):.0f}-{max(values):.0f}", worst, "", "", source_range, ""])
    if floor is not None:
        rows.append(
            [
                "**floor** (boto3, requests, pydantic, powertools; Logger, Metrics, Tracer)",
                *times(floor, 1.0, floor_cpu, floor, floor_cpu),
                *as_source(source_floor, floor),
            ]
        )
    if imports.validating_floor_ms is not None:
        ratio = imports.validating_floor_ratio
        rows.append(
            [
                "floor + one pydantic model built and used (what validating an input costs)",
                f"{imports.validating_floor_ms:.0f}",
                f"{ratio:.2f}x" if ratio is not None else "",
                "",
                "",
                "",
                "",
            ]
        )
    for label, ms in imports.first_use_ms.items():
        rows.append([f"first use, not in the figures above: {label}", f"+{ms:.0f}", "", "", "", "", ""])
    if imports.baseline_ms is not None:
        rows.append(["`import boto3` alone (for scale)", f"{imports.baseline_ms:.0f}", "", "", "", "", ""])
    if imports.sdk_ms is not None:
        rows.append(["`import databricks.sdk` (for comparison)", f"{imports.sdk_ms:.0f}", "", "", "", "", ""])
    return (
        "Handler import time (cold, ms)",
        "functions/<step>/app.py imported in a fresh interpreter with the layer as `sam build` makes it "
        "(layers/core/Makefile, for this machine's platform: the locked tree compiled to bytecode) first on "
        "sys.path and the function's environment (dummy values, LAMBDA_TASK_ROOT set: Powertools sees Lambda, "
        f"tracing on); median of {imports.repeats} interpreters each, the floor measured in the same rounds "
        "from the same tree, once just before each handler. x floor = the median, over the rounds, of the "
        "handler's time over the floor measured just before it (paired: a slow spell of the machine touches "
        "both). CPU: the interpreter's CPU time "
        "over the same span (less inflated by a busy machine). As source: the same import from the same tree "
        "without its bytecode (how the python builder shipped the layer: every cold start compiled it), and "
        "that over the built figure. First use: what a first invocation adds beyond the import when its step "
        "touches it (models are built on first use, adapters imported where they are built), each timed in a "
        f"fresh interpreter just after importing {imports.first_use_after or 'a handler'}, median of "
        f"{imports.repeats}; a function's cold start is its import plus what its step touches. The boto3 and "
        "Databricks SDK lines are the bare import from the development environment.",
        ["module", "median ms", "x floor", "CPU ms", "x floor (CPU)", "as source ms", "as source / built"],
        rows,
    )


def splice_import_section(results: str, section: str) -> str:
    """RESULTS.md with its handler import section replaced by `section` (appended when it has none)."""
    title = "## Handler import time"
    if title not in results:
        return results.rstrip() + "\n\n" + section.strip() + "\n"
    head, rest = results.split(title, 1)
    tail = rest.split("\n## ", 1)
    return head + section.strip() + "\n" + ("\n## " + tail[1] if len(tail) > 1 else "")


def render_text(report: BenchReport) -> str:
    m = report.machine
    lines = [
        "dbx-privatelink benchmark (local stack)",
        f"date {m.date}  machine: nproc={m.nproc}, Python {m.python}, {m.platform}  time scale {m.time_scale:g}"
        + (f"  load average {m.load}" if m.load else ""),
        "",
    ]
    for title, explanation, headers, rows in _sections(report):
        lines += [title, "=" * len(title), explanation, "", text_table(headers, rows), ""]
    notes = [*report.notes, *(f"{r.label}: {n}" for r in report.runs for n in r.notes)]
    if notes:
        lines += ["Notes", "=====", *(f"- {n}" for n in notes), ""]
    return "\n".join(lines)


def render_markdown(report: BenchReport) -> str:
    m = report.machine
    lines = [
        "# Benchmark results",
        "",
        "Generated by `make bench` (bench/run.py); what each figure means: [README.md](README.md).",
        "",
        f"- date: {m.date}",
        f"- machine: nproc={m.nproc}, Python {m.python}, {m.platform}"
        + (f"; 1-minute load average {m.load} (before / after)" if m.load else ""),
        f"- time scale: {m.time_scale:g} (local stack; wall times are not AWS times)",
        "",
    ]
    for title, explanation, headers, rows in _sections(report):
        lines += [f"## {title}", "", explanation, "", markdown_table(headers, rows), ""]
    notes = [*report.notes, *(f"{r.label}: {n}" for r in report.runs for n in r.notes)]
    if notes:
        lines += ["## Notes", "", *(f"- {n}" for n in notes), ""]
    return "\n".join(lines)
