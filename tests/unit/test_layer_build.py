"""What `make build` (part of `make test`, before pytest) made of the layer with layers/core/Makefile: the
locked tree as arm64 wheels, every module compiled to bytecode Lambda can use from its read-only /opt."""

from __future__ import annotations

import importlib.util
from importlib import metadata
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from tests.unit.test_layer_requirements import LAYER_REQUIREMENTS, _pin, _requirements

ROOT = Path(__file__).resolve().parents[2]
BUILT = ROOT / ".aws-sam" / "build" / "CoreLayer" / "python"

pytestmark = pytest.mark.skipif(
    not BUILT.is_dir(), reason="the layer is not built here: `make build` (make test runs it first)"
)


def _pins() -> dict[str, str | None]:
    return {canonicalize_name(r.name): _pin(r) for r in _requirements(LAYER_REQUIREMENTS)}


def test_the_layer_holds_exactly_the_locked_distributions_for_lambdas_arm64() -> None:
    found = {}
    for info in BUILT.glob("*.dist-info"):
        dist = metadata.Distribution.at(info)
        found[canonicalize_name(dist.metadata["Name"])] = dist.version
    assert found == _pins()
    binaries = list(BUILT.rglob("*.so"))
    assert binaries, "pydantic-core and friends ship compiled extensions"
    assert all("aarch64" in b.name for b in binaries), [b.name for b in binaries if "aarch64" not in b.name]
    assert not (BUILT / "bin").exists()


def test_every_module_of_the_layer_ships_as_unchecked_bytecode() -> None:
    sources = [p for p in BUILT.rglob("*.py") if "__pycache__" not in p.parts]
    assert len(sources) > 500
    missing = [
        str(p.relative_to(BUILT))
        for p in sources
        if not Path(importlib.util.cache_from_source(str(p))).is_file()
    ]
    assert not missing, missing[:10]
    # Flags word of the .pyc header (PEP 552): bit 0 hash-based, bit 1 check_source; 0b01 = unchecked hash.
    for module in ("dbx_privatelink/handler.py", "botocore/client.py", "pydantic/main.py"):
        header = Path(importlib.util.cache_from_source(str(BUILT / module))).read_bytes()[:8]
        assert header[:4] == importlib.util.MAGIC_NUMBER, module
        assert int.from_bytes(header[4:8], "little") == 0b01, module


def test_the_domain_package_ships_without_bytecode_of_modules_it_no_longer_has() -> None:
    package = BUILT / "dbx_privatelink"
    assert (package / "handler.py").is_file()
    stale = [
        str(p.relative_to(BUILT))
        for p in package.rglob("*.pyc")
        if not (p.parent.parent / (p.name.split(".")[0] + ".py")).is_file()
    ]
    assert not stale, stale
