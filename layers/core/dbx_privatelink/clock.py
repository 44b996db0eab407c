"""The time as the table records it: UTC, ISO 8601, to the second. Its own module so that a step that only
stamps a time (the drift records, the run records) does not load the store's models with it."""

from datetime import UTC, datetime


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
