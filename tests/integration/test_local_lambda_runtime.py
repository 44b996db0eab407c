"""The in-process Lambda runtime: moto's Invoke runs the real handler, as the Lambda runtime would."""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from integration.local_servers import moto_with_runtime

from dbx_privatelink_local.deployer import zip_directory
from dbx_privatelink_local.lambda_runtime import InProcessLambdaRuntime

APP = Path(__file__).resolve().parents[1] / "fixtures" / "sam_app"
GREET = APP / "functions" / "greet"
FLAKY = APP / "functions" / "flaky"
LAYER = APP / "layers" / "common"
REGION = "us-east-1"


@dataclass
class LocalLambda:
    endpoint_url: str
    runtime: InProcessLambdaRuntime
    lambda_client: Any
    iam: Any

    def create(
        self,
        code_dir: Path,
        env: dict[str, str],
        *,
        handler: str = "app.handler",
        timeout: int = 10,
    ) -> tuple[str, str]:
        """Create a function in moto and register its source; returns (function name, role name)."""
        suffix = uuid.uuid4().hex[:8]
        role_name = f"role-{suffix}"
        role_arn = self.iam.create_role(
            RoleName=role_name,
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )["Role"]["Arn"]
        name = f"fn-{code_dir.name}-{suffix}"
        self.lambda_client.create_function(
            FunctionName=name,
            Runtime="python3.13",
            Role=role_arn,
            Handler=handler,
            Code={"ZipFile": zip_directory(code_dir)},
            Timeout=timeout,
            MemorySize=256,
            Environment={"Variables": env},
        )
        self.runtime.register(name, code_dir, [LAYER])
        return name, role_name

    def invoke(self, name: str, event: dict[str, Any]) -> tuple[str | None, Any]:
        response = self.lambda_client.invoke(FunctionName=name, Payload=json.dumps(event).encode())
        return response.get("FunctionError"), json.loads(response["Payload"].read())


@pytest.fixture(scope="module")
def local_lambda() -> Iterator[LocalLambda]:
    with moto_with_runtime(step_functions=False) as moto:
        yield LocalLambda(
            moto.endpoint_url,
            moto.runtime,
            moto.session.client("lambda", endpoint_url=moto.endpoint_url),
            moto.session.client("iam", endpoint_url=moto.endpoint_url),
        )


def test_invocation_runs_the_real_handler_as_the_function_with_its_role(local_lambda: LocalLambda) -> None:
    # Given a deployed function with its own environment and execution role
    name, role_name = local_lambda.create(GREET, {"GREETING_PREFIX": "Hi", "STAGE": "test"})

    # When it is invoked
    error, payload = local_lambda.invoke(name, {"name": "Ada"})

    # Then its handler ran with the function's variables, the runtime's, and its role's credentials
    assert error is None, payload
    assert payload["greeting"] == "Hi, Ada"
    assert payload["stage"] == "test"
    assert payload["function_name"] == name
    assert payload["env_function_name"] == name
    assert f":assumed-role/{role_name}/" in payload["caller"]
    assert 0 < payload["remaining_ms"] <= 10_000


def test_a_request_is_told_by_its_trace_header_as_the_execution_whose_invocation_made_it(
    local_lambda: LocalLambda,
) -> None:
    # Given a function invoked twice by a state machine execution and once by no execution
    name, _ = local_lambda.create(GREET, {"GREETING_PREFIX": "Hi", "STAGE": "test"})
    runs = [local_lambda.invoke(name, {"name": "Ada", "execution_name": f"run-{n}"})[1] for n in (1, 2)]
    _, plain = local_lambda.invoke(name, {"name": "Ada"})
    # Then each invocation's trace header (botocore sends it on every request) names its own execution
    assert [local_lambda.runtime.execution_of(r["trace_header"]) for r in runs] == ["run-1", "run-2"]
    assert runs[0]["trace_header"] != runs[1]["trace_header"]
    # and a request of no execution, or one with no trace header, is nobody's
    assert local_lambda.runtime.execution_of(plain["trace_header"]) is None
    assert local_lambda.runtime.execution_of("") is None


def test_concurrent_invocations_each_see_only_their_own_environment(local_lambda: LocalLambda) -> None:
    # Given two functions whose variables differ, and a process environment that has neither
    english, _ = local_lambda.create(GREET, {"GREETING_PREFIX": "Hello", "STAGE": "test"})
    french, _ = local_lambda.create(GREET, {"GREETING_PREFIX": "Bonjour", "STAGE": "test"})
    assert "GREETING_PREFIX" not in os.environ
    results: dict[str, Any] = {}

    def call(name: str) -> None:
        results[name] = local_lambda.invoke(name, {"name": "Ada", "hold_seconds": 0.5})

    # When both run at the same time
    threads = [threading.Thread(target=call, args=(n,)) for n in (english, french)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # Then they overlapped, and each saw its own variables before and after the other started
    (e_error, e_out), (f_error, f_out) = results[english], results[french]
    assert e_error is None and f_error is None, (e_out, f_out)
    assert e_out["started"] < f_out["finished"] and f_out["started"] < e_out["finished"]
    assert (e_out["prefix_before_hold"], e_out["prefix_after_hold"]) == ("Hello", "Hello")
    assert (f_out["prefix_before_hold"], f_out["prefix_after_hold"]) == ("Bonjour", "Bonjour")
    assert (e_out["env_function_name"], f_out["env_function_name"]) == (english, french)
    assert "GREETING_PREFIX" not in os.environ


def test_an_unhandled_exception_comes_back_as_the_runtime_error_payload(local_lambda: LocalLambda) -> None:
    # Given a function that raises its own exception class
    name, _ = local_lambda.create(FLAKY, {"FLAKY_MODE": "lenient"})

    # When it raises
    error, payload = local_lambda.invoke(name, {"key": "k1", "fail_times": 1})

    # Then Lambda's payload names the class, as Step Functions needs it
    assert error == "Unhandled"
    assert payload["errorType"] == "NotReadyError"
    assert payload["errorMessage"] == "k1 not ready on attempt 1"
    assert any("app.py" in frame for frame in payload["stackTrace"])


def test_the_module_is_imported_once_and_stays_warm(local_lambda: LocalLambda) -> None:
    # Given a function invoked twice
    name, _ = local_lambda.create(FLAKY, {"FLAKY_MODE": "lenient"})
    first = local_lambda.invoke(name, {"key": "warm"})
    second = local_lambda.invoke(name, {"key": "warm"})

    # Then the second call reused the module (its module-level counter kept counting)
    assert first == (None, first[1]) and first[1]["attempts"] == 1
    assert second[1]["attempts"] == 2
    stats = local_lambda.runtime.stats()[name]
    assert (stats.cold_starts, stats.invocations, stats.errors) == (1, 2, 0)
    assert stats.cold_start_seconds > 0 and len(stats.durations) == 2


def test_a_missing_variable_fails_at_cold_start_until_the_configuration_is_fixed(
    local_lambda: LocalLambda,
) -> None:
    # Given a function deployed without a variable its settings require
    name, _ = local_lambda.create(GREET, {"STAGE": "test"})

    # When it is invoked
    error, payload = local_lambda.invoke(name, {"name": "Ada"})

    # Then the cold start fails with the settings error, naming the variable
    assert error == "Unhandled"
    assert payload["errorType"] == "SettingsError"
    assert "GREETING_PREFIX" in payload["errorMessage"]
    assert local_lambda.runtime.stats()[name].init_failures == 1

    # And once the variable is configured, the next invocation initialises again and succeeds
    local_lambda.lambda_client.update_function_configuration(
        FunctionName=name, Environment={"Variables": {"STAGE": "test", "GREETING_PREFIX": "Hey"}}
    )
    error, payload = local_lambda.invoke(name, {"name": "Ada"})
    assert error is None, payload
    assert payload["greeting"] == "Hey, Ada"


@pytest.mark.parametrize(
    ("handler", "error_type", "message"),
    [
        ("app.missing", "Runtime.HandlerNotFound", "Handler 'missing' missing on module 'app'"),
        ("nowhere.handler", "Runtime.ImportModuleError", "Unable to import module 'nowhere'"),
        ("handler", "Runtime.MalformedHandlerName", "Bad handler 'handler'"),
    ],
)
def test_a_wrong_handler_fails_with_the_runtime_error_type(
    local_lambda: LocalLambda, handler: str, error_type: str, message: str
) -> None:
    name, _ = local_lambda.create(FLAKY, {"FLAKY_MODE": "lenient"}, handler=handler)

    error, payload = local_lambda.invoke(name, {"key": "x"})

    assert error == "Unhandled"
    assert payload["errorType"] == error_type
    assert payload["errorMessage"].startswith(message)


def test_a_handler_running_past_its_timeout_gets_the_runtime_timeout_error(local_lambda: LocalLambda) -> None:
    # Given a function with a 1 s timeout whose handler takes longer
    name, _ = local_lambda.create(FLAKY, {"FLAKY_MODE": "lenient"}, timeout=1)

    # When it is invoked with work that takes far longer than that
    error, payload = local_lambda.invoke(name, {"key": "slow", "sleep_seconds": 20})

    # Then the invocation ends at the timeout with Lambda's error
    assert error == "Unhandled"
    assert payload["errorType"] == "Sandbox.Timedout"
    assert payload["errorMessage"].endswith("Task timed out after 1.00 seconds")
    stats = local_lambda.runtime.stats()[name]
    # (it did not wait for the handler: the margin is wide, a loaded machine joins the thread late)
    assert stats.timeouts == 1 and stats.max_duration_seconds < 10


def test_a_function_without_registered_source_fails_clearly(local_lambda: LocalLambda) -> None:
    name, _ = local_lambda.create(FLAKY, {"FLAKY_MODE": "lenient"})
    other = InProcessLambdaRuntime(local_lambda.endpoint_url).install()
    try:
        error, payload = local_lambda.invoke(name, {"key": "x"})
    finally:
        local_lambda.runtime.install()

    assert error == "Unhandled"
    assert "has no local source" in payload["errorMessage"]
    assert other.stats()[name].errors == 1
