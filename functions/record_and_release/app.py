"""Record and release: a door into dbx_privatelink.reconcile.record.record_and_release."""

from dbx_privatelink.handler import step
from dbx_privatelink.models.record_steps import RecordAndReleaseInput
from dbx_privatelink.reconcile.record import record_and_release

handler = step(RecordAndReleaseInput, record_and_release, needs=("store",))
