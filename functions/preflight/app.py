"""Preflight: a door into dbx_privatelink.reconcile.preflight.preflight."""

from dbx_privatelink.handler import step
from dbx_privatelink.models.spec_step import SpecStep
from dbx_privatelink.reconcile.preflight import preflight

handler = step(SpecStep, preflight, needs=("shared", "store", "databricks"))
