"""Plan decommission: a door into dbx_privatelink.decommission.plan.plan_step."""

from dbx_privatelink.decommission.models import PlanDecommissionInput
from dbx_privatelink.decommission.plan import plan_step
from dbx_privatelink.handler import step

handler = step(PlanDecommissionInput, plan_step, needs=("store", "databricks"))
