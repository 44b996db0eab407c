"""The door every Lambda handler goes through: parse the input model, call one domain function, return JSON.

Powertools gives structured logs (the workspace key and execution id as correlation ids), one metric per
step (EMF) and X-Ray tracing. With POWERTOOLS_TRACE_DISABLED true (the template's Tracing parameter set to
PassThrough) no Tracer is made and the X-Ray SDK is not imported: about 35 ms less per cold start.
A handler module is three lines:

    handler = step(EnsureEndpointInput, ensure_endpoint, needs=())
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.shared.constants import TRACER_DISABLED_ENV
from aws_lambda_powertools.shared.functions import resolve_truthy_env_var_choice
from pydantic import BaseModel, ValidationError

from dbx_privatelink.errors import DbxPrivateLinkError, SpecInvalidError
from dbx_privatelink.wiring import Deps, Settings

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer
    from aws_lambda_powertools.utilities.typing import LambdaContext

SERVICE = "dbx-privatelink"
logger = Logger(service=SERVICE)
metrics = Metrics(namespace="DbxPrivateLink", service=SERVICE)


# What the steps call out with: boto3 (every AWS call) and requests (the Databricks Account API). The X-Ray
# SDK's default patches every library it knows that is installed (sqlite3, psycopg, httplib...), which imports
# their patch modules at each cold start, about 11 ms, for calls no step makes.
TRACED_LIBRARIES = ("botocore", "requests")


def _tracer() -> Tracer | None:
    """Powertools' Tracer, or None when tracing is turned off (its import loads the X-Ray SDK)."""
    if resolve_truthy_env_var_choice(env=os.getenv(TRACER_DISABLED_ENV, "false")):
        return None
    from aws_lambda_powertools import Tracer

    return Tracer(service=SERVICE, patch_modules=TRACED_LIBRARIES)


tracer = _tracer()


def _correlation(event: Any) -> dict[str, str]:
    if not isinstance(event, dict):
        return {}
    spec = event.get("spec") if isinstance(event.get("spec"), dict) else {}
    keys = {
        "workspace_key": event.get("workspace_key") or (spec or {}).get("workspace_key"),
        "execution": event.get("execution_name"),
    }
    return {k: str(v) for k, v in keys.items() if v}


def _count(step_name: str, outcome: str, correlation: dict[str, str]) -> None:
    """One metric per step and outcome; the workspace and execution ride in its log record as metadata (no
    dimensions, so no metric per workspace), which the dashboard counts runs per workspace from."""
    metrics.add_metric(name=f"{step_name}.{outcome}", unit=MetricUnit.Count, value=1)
    for key, value in {"step": step_name, "outcome": outcome, **correlation}.items():
        metrics.add_metadata(key=key, value=value)


def step[In: BaseModel](
    model: type[In],
    action: Callable[[In, Deps], BaseModel],
    *,
    needs: tuple[str, ...] = (),
) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """A Lambda handler that validates its input with `model` and runs `action` with the adapters."""
    name = action.__name__
    # At cold start: a missing variable fails here.
    deps = Deps(settings=Settings.from_env(needs), step_name=name)
    # The models are built on first use (defer_build), so a function pays only for the ones its step
    # touches; its input model is built here, at cold start, rather than in the first invocation.
    model.model_rebuild()

    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        correlation = _correlation(event)
        logger.append_keys(step=name, **correlation)
        deps.remaining_time_s = lambda: context.get_remaining_time_in_millis() / 1000.0
        try:
            parsed = model.model_validate(event)
        except ValidationError as exc:
            _count(name, SpecInvalidError.__name__, correlation)  # a refused input is an outcome too
            raise SpecInvalidError(f"{name}: invalid input: {exc.errors(include_url=False)}") from None
        try:
            result = action(parsed, deps)
        except DbxPrivateLinkError as exc:
            _count(name, type(exc).__name__, correlation)
            logger.warning("step failed", extra={"error": type(exc).__name__, "reason": str(exc)})
            raise
        finally:
            deps.end_invocation()
        _count(name, "ok", correlation)
        return result.model_dump(mode="json")

    traced = handler if tracer is None else tracer.capture_lambda_handler(capture_response=False)(handler)
    return logger.inject_lambda_context(clear_state=True)(metrics.log_metrics(traced))
