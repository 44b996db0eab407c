"""Acquire lease: a door into dbx_privatelink.reconcile.lease.acquire_lease."""

from dbx_privatelink.handler import step
from dbx_privatelink.models.lease import AcquireLeaseInput
from dbx_privatelink.reconcile.lease import acquire_lease

handler = step(AcquireLeaseInput, acquire_lease, needs=("store",))
