"""Ensure zone associations: a door into dbx_privatelink.reconcile.zones.ensure_zone_associations."""

from dbx_privatelink.handler import step
from dbx_privatelink.models.dns_steps import EnsureZoneAssociationsInput
from dbx_privatelink.reconcile.zones import ensure_zone_associations

handler = step(EnsureZoneAssociationsInput, ensure_zone_associations, needs=())
