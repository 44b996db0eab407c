"""Check zone associations: a door into dbx_privatelink.reconcile.zones.check_zone_associations."""

from dbx_privatelink.handler import step
from dbx_privatelink.models.dns_checks import CheckZoneAssociationsInput
from dbx_privatelink.reconcile.zones import check_zone_associations

handler = step(CheckZoneAssociationsInput, check_zone_associations, needs=())
