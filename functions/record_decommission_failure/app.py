"""Record decommission failure: a door into dbx_privatelink.decommission.lifecycle.record_decommission_failure."""

from dbx_privatelink.decommission.lifecycle import record_decommission_failure
from dbx_privatelink.decommission.run_models import RecordDecommissionFailureInput
from dbx_privatelink.handler import step

handler = step(RecordDecommissionFailureInput, record_decommission_failure, needs=("store", "shared"))
