"""What the steps read of Step Functions: whether an execution (a lease holder, a drift repair) still runs.

Only "Step Functions does not know this execution" means it is not running: it ended more than 90 days ago,
or was never started, or its starter has reserved it and not called StartExecution yet. Any other failure
to read (throttled, denied, unreachable) is raised as the domain's AWS error, retried where that helps:
taking it for an ended execution would hand a running holder's lease to another execution.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from dbx_privatelink.aws.errors import error_code, map_aws_error


def execution_status(sfn: Any, arn: str) -> str | None:
    """The execution's status (RUNNING, SUCCEEDED, ...); None when Step Functions does not know it."""
    try:
        return str(sfn.describe_execution(executionArn=arn)["status"])
    except ClientError as exc:
        if error_code(exc) == "ExecutionDoesNotExist":
            return None
        raise map_aws_error(exc, "Step Functions DescribeExecution") from exc
    except BotoCoreError as exc:
        raise map_aws_error(exc, "Step Functions DescribeExecution") from exc


def holder_running(sfn: Any, holder_arn: str) -> bool:
    """Whether the execution holding a lease still runs: a holder without an ARN is trusted until the lease
    expires; one Step Functions does not know has ended. A read that fails raises (the step is retried)."""
    if not holder_arn:
        return True
    return execution_status(sfn, holder_arn) == "RUNNING"
