"""Notifications through the stack's SNS topic: what drifted, who changed it, and what was done."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from dbx_privatelink.aws.errors import map_aws_error

if TYPE_CHECKING:
    from dbx_privatelink.drift_store import DriftRecord

_OUTCOME_TEXT = {
    "remediation_started": "a reconcile execution was started to repair it",
    "remediation_failed": "the reconcile execution started to repair it FAILED: an operator must act (below)",
    "coalesced": "the reconcile already running for this workspace will repair it",
    "notified": "nothing was changed: the workspace's drift mode is notify",
    "paused": "nothing was changed: remediation is paused for the whole stack (dbx-privatelink resume)",
    "rate_limited": "nothing was changed: too many remediations in the last hour; the workspace is now in "
    "notify mode until an operator clears it (dbx-privatelink drift WORKSPACE --reset-mode)",
}


class Notifier:
    """Publishes to one SNS topic."""

    def __init__(self, client: Any, topic_arn: str) -> None:
        self._sns = client
        self._topic = topic_arn

    def publish(self, subject: str, message: str) -> None:
        try:
            self._sns.publish(TopicArn=self._topic, Subject=subject[:100], Message=message)
        except (ClientError, BotoCoreError) as exc:
            raise map_aws_error(exc, "SNS Publish") from exc


def drift_message(record: DriftRecord, stack: str) -> tuple[str, str]:
    """The subject and body of one drift notification."""
    alert = record.outcome == "rate_limited"
    subject = (
        f"{'ALERT ' if alert else ''}dbx-privatelink drift: {record.workspace_key} ({record.event_name})"
    )
    lines = [
        f"Workspace: {record.workspace_key} (stack {stack})",
        f"What drifted: {record.summary}",
    ]
    lines += [f"  - {f}" for f in record.findings]
    if record.before is not None or record.after is not None:
        lines.append(f"Before: {record.before}  After: {record.after}")
    lines += [
        f"Who: {record.actor or 'unknown (found by the scheduled scan)'}",
        f"When: {record.event_time or record.detected_at} (event {record.event_id})",
        f"Drift mode: {record.mode}",
        f"What was done: {_OUTCOME_TEXT.get(record.outcome, record.outcome)}",
    ]
    lines += [f"  - {a}" for a in record.actions]
    if record.execution_arn:
        lines.append(f"Execution: {record.execution_arn}")
    return subject, "\n".join(lines)
