"""Record failure: a door into dbx_privatelink.reconcile.record_failure.record_failure."""

from dbx_privatelink.handler import step
from dbx_privatelink.models.record_steps import RecordFailureInput
from dbx_privatelink.reconcile.record_failure import record_failure

handler = step(RecordFailureInput, record_failure, needs=("store",))
