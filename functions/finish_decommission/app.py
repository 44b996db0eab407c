"""Finish decommission: a door into dbx_privatelink.decommission.lifecycle.finish_decommission."""

from dbx_privatelink.decommission.lifecycle import finish_decommission
from dbx_privatelink.decommission.run_models import FinishDecommissionInput
from dbx_privatelink.handler import step

handler = step(FinishDecommissionInput, finish_decommission, needs=("store",))
