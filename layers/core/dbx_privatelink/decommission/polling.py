"""The bounds of the decommission's Wait -> Step -> Choice loops (counters from reconcile/polling.py)."""

from __future__ import annotations

from dbx_privatelink.reconcile.polling import PollPolicy

# A reconcile holding the lease runs for up to about an hour (its own polling bounds); then the lease's
# holder is taken over only when it is no longer running.
LEASE_FREED = PollPolicy(first_wait_s=15, max_wait_s=60, max_attempts=90)  # ~85 min
# Databricks deletes a workspace asynchronously; GET answers 404 once it is gone.
WORKSPACE_GONE = PollPolicy(first_wait_s=15, max_wait_s=60, max_attempts=45)  # ~40 min
# A delete refused as in use (INVALID_STATE, 409, DependencyViolation, a Resolver resource in transition)
# or still on its way out (an endpoint deleting, an association DELETING): asked again, never taken as done.
RELEASED = PollPolicy(first_wait_s=5, max_wait_s=60, max_attempts=40)  # ~35 min
