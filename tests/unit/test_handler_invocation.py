"""The handler door ends every invocation (what a step reserved and did not spend is not the next one's) and
counts its outcome."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from dbx_privatelink.errors import AwsThrottledError, SpecInvalidError
from dbx_privatelink.wiring import Deps


class _Input(BaseModel):
    fail: bool = False


class _Output(BaseModel):
    ok: bool = True


class _Context:
    function_name = "step"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:step"
    aws_request_id = "request"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def _handler(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A handler whose step succeeds, or fails when asked to."""
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("OWNER_TAG", "test-stack")
    monkeypatch.setenv("TABLE_NAME", "table")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Test")
    from dbx_privatelink.handler import step

    def act(inp: _Input, deps: Any) -> _Output:
        if inp.fail:
            raise AwsThrottledError("the queue is long")
        return _Output()

    act.__name__ = "act"
    return step(_Input, act)


def test_every_invocation_ends_with_the_deps_end_of_invocation_success_or_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a handler whose step succeeds or fails as asked, and a record of ended invocations
    ended: list[int] = []
    monkeypatch.setattr(Deps, "end_invocation", lambda self: ended.append(1))
    handler = _handler(monkeypatch)

    # When it succeeds once and fails once
    assert handler({}, _Context()) == {"ok": True}  # type: ignore[arg-type]
    with pytest.raises(AwsThrottledError):
        handler({"fail": True}, _Context())  # type: ignore[arg-type]

    # Then both invocations were ended
    assert ended == [1, 1]


# The metrics are recorded here instead of added: Powertools then finds none to publish, and says so.
@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_every_invocation_counts_its_outcome_a_refused_input_among_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a handler and a record of the metrics it counts (one per step and outcome)
    handler = _handler(monkeypatch)
    counted: list[tuple[str, str]] = []
    monkeypatch.setattr(
        "dbx_privatelink.handler._count", lambda step, outcome, keys: counted.append((step, outcome))
    )
    # When it succeeds, its step fails, and its input is refused
    handler({}, _Context())
    with pytest.raises(AwsThrottledError):
        handler({"fail": True}, _Context())
    with pytest.raises(SpecInvalidError):
        handler({"fail": "not a yes or no"}, _Context())
    # Then each outcome was counted, the refused input's by the error the state machine sees
    assert counted == [("act", "ok"), ("act", "AwsThrottledError"), ("act", "SpecInvalidError")]
