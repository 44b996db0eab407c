"""The application's DynamoDB table as the store and the ledger call it: a failed call as the domain's AWS
error (aws/errors.py), and a conditional write whose condition did not hold as an answer, not an error."""

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from dbx_privatelink.aws.errors import error_code, map_aws_error

# What DynamoDB answers when a write's condition (or one of a transaction's) did not hold: the caller decides.
CONDITION_FAILED = ("ConditionalCheckFailedException", "TransactionCanceledException")


class TableClient:
    """Calls on the table: StoreClient (and drift's part of it) and LedgerClient are these."""

    def __init__(self, table: Any) -> None:
        self._t = table

    def _call(self, operation: str, fn: Any, **kwargs: Any) -> Any:
        """`fn(**kwargs)`; a failed condition raises the ClientError, any other failure the domain's error."""
        try:
            return fn(**kwargs)
        except ClientError as exc:
            if error_code(exc) in CONDITION_FAILED:
                raise
            raise map_aws_error(exc, f"DynamoDB {operation}") from exc
        except BotoCoreError as exc:
            raise map_aws_error(exc, f"DynamoDB {operation}") from exc

    def _updated(self, operation: str, fn: Any, **kwargs: Any) -> dict[str, Any] | None:
        """A conditional write: DynamoDB's answer, or None when its condition did not hold (someone else
        wrote first, or the item is not in the state the write expects). Throttling, access denied or an
        unreachable table raise, so that a write is retried or surfaces instead of being taken as refused."""
        try:
            answer: dict[str, Any] = self._call(operation, fn, **kwargs)
        except ClientError:
            return None
        return answer

    def _conditional(self, operation: str, fn: Any, **kwargs: Any) -> bool:
        """A conditional write (`_updated`) whose answer is not needed: False when its condition did not hold."""
        return self._updated(operation, fn, **kwargs) is not None
