"""The Lambda layer is built from the versions the tests ran on: layers/core/requirements.txt pins exactly
requirements/dev.lock's versions of the whole runtime tree of what the domain package and the handlers
import, nothing missing (pip would resolve it afresh at `sam build`) and nothing left over."""

from __future__ import annotations

import ast
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LAYER_REQUIREMENTS = ROOT / "layers" / "core" / "requirements.txt"
DEV_LOCK = ROOT / "requirements" / "dev.lock"
# The code the layer serves: the domain package and the handlers that run on it.
CODE_DIRS = (ROOT / "layers" / "core" / "dbx_privatelink", ROOT / "functions")
FIRST_PARTY = {"dbx_privatelink"}
# Markers are evaluated as the Lambda runtime would: python3.13 on arm64 Linux.
LAMBDA_ENVIRONMENT = {
    "python_version": "3.13",
    "python_full_version": "3.13.0",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "aarch64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}


def _requirements(path: Path) -> list[Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [Requirement(line) for line in lines if line]


def _pin(requirement: Requirement) -> str | None:
    specs = list(requirement.specifier)
    return specs[0].version if len(specs) == 1 and specs[0].operator == "==" else None


def _imported_distributions() -> set[str]:
    """Distributions of every third-party module the layer's code imports."""
    modules: set[str] = set()
    for directory in CODE_DIRS:
        for path in directory.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    modules |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules.add(node.module.split(".")[0])
    third_party = modules - set(sys.stdlib_module_names) - FIRST_PARTY
    owners = metadata.packages_distributions()
    missing = sorted(m for m in third_party if m not in owners)
    assert not missing, f"imported but installed by no distribution: {missing}"
    return {canonicalize_name(d) for m in third_party for d in owners[m]}


def _closure(roots: dict[str, set[str]]) -> set[str]:
    """Every distribution the roots need at run time (with the extras asked for), from installed metadata."""
    visited: set[tuple[str, frozenset[str]]] = set()
    todo = [(name, frozenset(extras)) for name, extras in roots.items()]
    while todo:
        name, extras = todo.pop()
        if (name, extras) in visited:
            continue
        visited.add((name, extras))
        for line in metadata.requires(name) or []:
            requirement = Requirement(line)
            wanted = requirement.marker is None or any(
                requirement.marker.evaluate({**LAMBDA_ENVIRONMENT, "extra": extra}) for extra in {"", *extras}
            )
            if wanted:
                todo.append((canonicalize_name(requirement.name), frozenset(requirement.extras)))
    return {name for name, _ in visited}


def test_every_layer_requirement_is_pinned_to_the_locked_version() -> None:
    # Given the lock the tests were installed from
    locked = {canonicalize_name(r.name): _pin(r) for r in _requirements(DEV_LOCK)}
    # Then each layer requirement is an exact pin of the locked version
    problems = []
    for requirement in _requirements(LAYER_REQUIREMENTS):
        name, pin = canonicalize_name(requirement.name), _pin(requirement)
        if pin is None:
            problems.append(f"{requirement}: pin one version with ==")
        elif name not in locked:
            problems.append(f"{requirement}: not in requirements/dev.lock (add it there and install it)")
        elif locked[name] != pin:
            problems.append(f"{requirement}: requirements/dev.lock has {name}=={locked[name]}")
    assert not problems, "layers/core/requirements.txt:\n" + "\n".join(problems)


def test_the_layer_lists_exactly_the_runtime_tree_of_what_the_code_imports() -> None:
    # Given what the domain package and the handlers import, with the extras the layer asks for
    listed = {canonicalize_name(r.name): set(r.extras) for r in _requirements(LAYER_REQUIREMENTS)}
    roots = {name: listed.get(name, set()) for name in _imported_distributions()}
    # When their dependencies are followed as pip would on the Lambda runtime
    needed = _closure(roots)
    # Then the layer pins every one of them, and nothing else
    assert not needed - set(listed), (
        f"missing from layers/core/requirements.txt: {sorted(needed - set(listed))}"
    )
    assert not set(listed) - needed, f"not needed at run time: {sorted(set(listed) - needed)}"


def test_the_installed_versions_are_the_locked_ones() -> None:
    # The closure above reads installed metadata: it speaks for the lock only when the two agree.
    for requirement in _requirements(LAYER_REQUIREMENTS):
        assert metadata.version(requirement.name) == _pin(requirement), requirement.name
