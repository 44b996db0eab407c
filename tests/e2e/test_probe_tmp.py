import pytest
from .conftest import Reconciler, spec_for
from .test_custom_dns import _custom_dns, _inbound_subnets
pytestmark = pytest.mark.e2e

def test_probe(stack, reconciler: Reconciler, data_plane) -> None:
    env = stack.environment
    spec = spec_for(stack, data_plane, "probe-ws")
    spec["dns"] = _custom_dns(stack, data_plane)
    run = reconciler.run(spec)
    print("STATUS", run.status, run.cause)
    print("AWS", dict(run.aws_mutations))
    print("DBX", dict(run.databricks_mutations))
    spec["dns"]["inbound"] = {
            "vpc_id": data_plane.vpc_id,
            "subnet_ids": _inbound_subnets(stack, data_plane),
            "allowed_cidrs": ["10.20.0.0/24"],
            "domains": ["example.internal"],
            "peered_vpcs": [{"vpc_id": env.peered_vpc_id, "subnet_ids": env.peered_subnet_ids}],
        }
    again = reconciler.run(spec)
    print("AGAIN", again.status, again.cause, dict(again.aws_mutations), dict(again.databricks_mutations))
    third = reconciler.run(spec)
    print("THIRD", third.status, dict(third.aws_mutations), dict(third.databricks_mutations))
