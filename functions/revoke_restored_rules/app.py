"""Revoke restored rules: a door into dbx_privatelink.decommission.rules.revoke_restored_rules."""

from dbx_privatelink.decommission.models import DeletionInput
from dbx_privatelink.decommission.rules import revoke_restored_rules
from dbx_privatelink.handler import step

handler = step(DeletionInput, revoke_restored_rules, needs=("store",))
