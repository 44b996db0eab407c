"""moto's Step Functions interpreter, made to behave like Step Functions on the local stack's clock.

`enable_step_functions()` switches moto from its mock backend (executions that never run) to the ASL
interpreter it took from LocalStack, and closes the gaps the application depends on:
- Wait states and Retry intervals last `time_scale` times their ASL value, so production timings (a 30 s
  poll wait, 5 s retry intervals) run in milliseconds; each scaled sleep is recorded for tests and
  benchmarks (`StepFunctionsControl.sleeps()`);
- aws-sdk integration errors are named as on AWS (Ec2.…, Route53Resolver.…, Route53.…), not
  `ec2.ec2Exception`;
- a plain Lambda-ARN Task whose Invoke call fails (function not found, throttled) fails with
  `Lambda.<ErrorCode>` as on AWS, where moto says `Exception`;
- an execution started without a name gets a UUID, as on AWS (moto names it None: its ARN ends in
  ":None", $$.Execution.Name is null, and two unnamed starts with one input are taken for the same one);
- an ended execution's output, error and cause are in place before its status says it ended (moto sets
  the status first: a DescribeExecution in between would see SUCCEEDED without the output that tells a
  run handed to the lease holder; moto also writes the history's end event before either, which the CLI
  covers by taking the output from that event);
- the interpreter's large ERROR dump per failed state is silenced: the execution history has the error;
- a definition is parsed once: moto parses it with ANTLR at CreateStateMachine and again at every
  execution's start (a tenth of an end-to-end test's CPU); the parse tree is kept per definition and only
  the evaluation components, which hold an execution's state, are made anew from it for each execution.
All patches are process-wide (the ThreadedMotoServer runs in this process) and idempotent.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

from botocore.exceptions import ClientError
from moto.core.config import default_user_config
from moto.stepfunctions.parser.api import HistoryEventType, LambdaFunctionFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_aws_sdk
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_lambda import (
    StateTaskServiceLambda,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import StateTaskLambda
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.eval.program_state import ProgramEnded, ProgramError
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

from dbx_privatelink_local.timescale import TIME_SCALE, TimeScale

# AWS's error-name prefixes for the aws-sdk integrations this application calls.
AWS_SDK_ERROR_NAMES = {"ec2": "Ec2", "route53resolver": "Route53Resolver", "route53": "Route53"}

_PARSER_LOGGER = "moto.stepfunctions.parser"


@dataclass(frozen=True)
class ScaledSleep:
    """One interpreter sleep: what the ASL asked for and what the wall clock spent."""

    kind: Literal["wait", "retry"]
    requested_seconds: float
    scaled_seconds: float


class StepFunctionsControl:
    """The process-wide time scale of the interpreter and a record of the sleeps it took."""

    def __init__(self, time_scale: TimeScale) -> None:
        self.time_scale = time_scale
        self._lock = threading.Lock()
        self._sleeps: deque[ScaledSleep] = deque(maxlen=10_000)

    def record(self, kind: Literal["wait", "retry"], requested: float, scaled: float) -> None:
        with self._lock:
            self._sleeps.append(ScaledSleep(kind, requested, scaled))

    def sleeps(self, kind: Literal["wait", "retry"] | None = None) -> list[ScaledSleep]:
        with self._lock:
            return [s for s in self._sleeps if kind is None or s.kind == kind]

    def clear(self) -> None:
        with self._lock:
            self._sleeps.clear()


_CONTROL = StepFunctionsControl(TIME_SCALE)


def _scaled_wait_interval(self: WaitFunction, env: Environment, wait_seconds: int) -> None:
    """Replaces WaitFunction._wait_interval, which sleeps the ASL's seconds on the wall clock."""
    scaled = _CONTROL.time_scale.scaled(float(wait_seconds))
    _CONTROL.record("wait", float(wait_seconds), scaled)
    deadline = time.monotonic() + scaled
    # program_state_event is pulsed when the execution is stopped; keep waiting through other pulses.
    while env.is_running():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        env.program_state_event.wait(remaining)


class _ScaledTime:
    """Stands in for the `time` module inside retrier_decl, whose time.sleep is the Retry interval."""

    def __init__(self, real: ModuleType) -> None:
        self._real = real

    def sleep(self, seconds: float) -> None:
        scaled = _CONTROL.time_scale.scaled(seconds)
        _CONTROL.record("retry", seconds, scaled)
        if scaled > 0:
            self._real.sleep(scaled)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


_ORIGINAL_LAMBDA_FROM_ERROR = StateTaskLambda._from_error


def _lambda_task_from_error(self: StateTaskLambda, env: Environment, ex: Exception) -> FailureEvent:
    """Replaces StateTaskLambda._from_error for Invoke API errors, which moto names "Exception"; Step
    Functions names them Lambda.<ErrorCode> (Lambda.ResourceNotFoundException) for the plain-ARN form
    exactly as for arn:aws:states:::lambda:invoke."""
    if not isinstance(ex, ClientError):
        return _ORIGINAL_LAMBDA_FROM_ERROR(self, env, ex)
    error, cause = StateTaskServiceLambda._error_cause_from_client_error(ex)
    return FailureEvent(
        env=env,
        error_name=CustomErrorName(error),
        event_type=HistoryEventType.LambdaFunctionFailed,
        event_details=EventDetails(  # type: ignore[typeddict-item]  # moto's TypedDict is total
            lambdaFunctionFailedEventDetails=LambdaFunctionFailedEventDetails(error=error, cause=cause)
        ),
    )


_ORIGINAL_START_EXECUTION = StepFunctionsParserBackend.start_execution


def _start_execution_named(
    self: StepFunctionsParserBackend,
    state_machine_arn: str,
    name: str | None = None,
    execution_input: str | None = None,
    trace_header: str | None = None,
) -> Any:
    """Replaces StepFunctionsParserBackend.start_execution, which leaves an unnamed execution named None;
    Step Functions names it with a UUID."""
    return _ORIGINAL_START_EXECUTION(
        self,
        state_machine_arn,
        name or str(uuid.uuid4()),
        execution_input,  # type: ignore[arg-type]
        trace_header,  # type: ignore[arg-type]
    )


_ORIGINAL_REFLECT_STATUS = BaseExecutionWorkerCommunication._reflect_execution_status


def _reflect_execution_status_last(self: BaseExecutionWorkerCommunication) -> None:
    """Replaces BaseExecutionWorkerCommunication._reflect_execution_status: what the execution ended with
    first, then (the original) its status, so no reader sees an ended execution without its output."""
    execution = self.execution
    env = execution.exec_worker.env if execution.exec_worker else None
    ended = env.program_state() if env else None
    if isinstance(ended, ProgramEnded) and env:
        execution.output = env.states.get_input()
    elif isinstance(ended, ProgramError) and ended.error:
        execution.error = ended.error.get("error")
        execution.cause = ended.error.get("cause")
    _ORIGINAL_REFLECT_STATUS(self)  # type: ignore[no-untyped-call]


def status_last() -> None:
    """Install the ended-execution ordering above (idempotent, process-wide): for tests that run moto's
    interpreter without the rest of `enable_step_functions`."""
    BaseExecutionWorkerCommunication._reflect_execution_status = _reflect_execution_status_last  # type: ignore[method-assign]


_ORIGINAL_PARSE = AmazonStateLanguageParser.parse
_PARSE_TREES: dict[str, Any] = {}  # definition -> its ANTLR parse tree (read-only once built)
_PARSE_TREES_LOCK = threading.Lock()
_PARSE_TREES_KEPT = 64  # definitions; the local stack deploys a handful


def _parse_once(definition: str) -> tuple[Any, Any]:
    """Replaces AmazonStateLanguageParser.parse: the tree of a definition parsed before, with evaluation
    components made from it anew (they hold the state of the execution that evaluates them)."""
    with _PARSE_TREES_LOCK:
        tree = _PARSE_TREES.get(definition)
    if tree is None:
        program, tree = _ORIGINAL_PARSE(definition)  # a syntax error raises here: nothing is kept
        with _PARSE_TREES_LOCK:
            if len(_PARSE_TREES) >= _PARSE_TREES_KEPT:
                _PARSE_TREES.pop(next(iter(_PARSE_TREES)))
            _PARSE_TREES[definition] = tree
        return program, tree
    return Preprocessor().visit(tree), tree


def enable_step_functions(time_scale: TimeScale = TIME_SCALE) -> StepFunctionsControl:
    """Run state machines with moto's ASL interpreter on `time_scale` (idempotent, process-wide).

    Call before the first CreateStateMachine: moto keeps interpreter state machines in a backend of
    their own, so machines created while the interpreter was off are not seen by it.
    """
    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True
    _CONTROL.time_scale = time_scale
    WaitFunction._wait_interval = _scaled_wait_interval  # type: ignore[method-assign]
    if not isinstance(vars(retrier_decl)["time"], _ScaledTime):
        setattr(retrier_decl, "time", _ScaledTime(time))  # noqa: B010 - the module's private import
    state_task_service_aws_sdk._SERVICE_ERROR_NAMES.update(AWS_SDK_ERROR_NAMES)
    StateTaskLambda._from_error = _lambda_task_from_error  # type: ignore[method-assign]
    StepFunctionsParserBackend.start_execution = _start_execution_named  # type: ignore[method-assign]
    AmazonStateLanguageParser.parse = staticmethod(_parse_once)  # type: ignore[method-assign]
    status_last()
    logging.getLogger(_PARSER_LOGGER).setLevel(logging.CRITICAL)
    return _CONTROL


def disable_step_functions() -> None:
    """Back to moto's mock backend (executions that never run) and the process-wide time scale; the
    patches stay installed and are inert for it. For tests that share a process with others."""
    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = False
    _CONTROL.time_scale = TIME_SCALE


def step_functions_control() -> StepFunctionsControl:
    """The process-wide control (time scale and sleep record)."""
    return _CONTROL


def execution_error(history: dict[str, Any]) -> tuple[str | None, str | None]:
    """The (error, cause) an execution failed with, from a GetExecutionHistory response."""
    for event in reversed(history.get("events", [])):
        details = event.get("executionFailedEventDetails")
        if details is not None:
            return details.get("error"), details.get("cause")
    return None, None


def parse_cause(cause: str | None) -> Any:
    """A Lambda error's cause is the runtime's JSON payload; anything else comes back as the string."""
    if cause is None:
        return None
    try:
        return json.loads(cause)
    except json.JSONDecodeError:
        return cause
