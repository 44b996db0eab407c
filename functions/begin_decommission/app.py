"""Begin decommission: a door into dbx_privatelink.decommission.lifecycle.begin_decommission."""

from dbx_privatelink.decommission.begin import begin_decommission
from dbx_privatelink.decommission.run_models import BeginDecommissionInput
from dbx_privatelink.handler import step

handler = step(BeginDecommissionInput, begin_decommission, needs=("store",))
