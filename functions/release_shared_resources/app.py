"""Release shared resources: a door into dbx_privatelink.decommission.shared.release_shared_resources."""

from dbx_privatelink.decommission.models import ReleaseSharedInput
from dbx_privatelink.decommission.shared import release_shared_resources
from dbx_privatelink.handler import step

handler = step(ReleaseSharedInput, release_shared_resources, needs=("store", "shared"))
