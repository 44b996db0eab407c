"""Which spec files a command line names, and the specs in them, all validated before anything starts.

`apply` takes files, directories (their *.yaml, *.yml and *.json, sorted, not recursive) and glob patterns.
The shell usually expands a pattern; a quoted one (or one a shell left alone because nothing matched) is
expanded here, so `apply 'specs/*.yaml'` and `apply specs/*.yaml` name the same files. A path that exists
is taken literally even when it contains glob characters: a file called `a[1].yaml` stays itself.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbx_privatelink.catalog import Catalog
from dbx_privatelink.spec import WorkspaceSpec
from dbx_privatelink_cli.common import EXIT_USAGE, CliError, load_spec

SPEC_SUFFIXES = (".yaml", ".yml", ".json")
STDIN = "-"


@dataclass(frozen=True)
class LoadedSpec:
    """One validated spec and the file it came from (named in every message about it)."""

    path: str
    spec: WorkspaceSpec


def _usage(message: str, name: str = "UsageError") -> CliError:
    return CliError(message, exit_code=EXIT_USAGE, name=name)


def is_single_file(args: list[str]) -> bool:
    """True when the command line names one spec the way `apply SPEC` always has: one file, or stdin.

    A directory or a pattern is a fleet even when it holds a single spec, so the output's shape (one
    object or a list) follows the command line, never the number of files a directory happens to hold.
    A single path that does not exist and is no pattern stays single too: load_spec says it cannot be read.
    """
    if len(args) != 1:
        return False
    arg = args[0]
    if arg == STDIN:
        return True
    path = Path(arg)
    if path.is_dir():
        return False
    return path.exists() or not glob.has_magic(arg)


def _directory_specs(directory: Path) -> list[str]:
    return sorted(str(p) for p in directory.iterdir() if p.is_file() and p.suffix.lower() in SPEC_SUFFIXES)


def expand(args: list[str]) -> list[str]:
    """The spec files the arguments name, in order, each once (the same file named twice is one spec).

    Raises a usage error (exit 2) for stdin among other specs, an empty directory, a pattern that matches
    no spec, and a path that does not exist.
    """
    if STDIN in args and len(args) > 1:
        raise _usage("- (standard input) can only be the only SPEC")
    files: list[str] = []
    for arg in args:
        path = Path(arg)
        if path.is_dir():
            found = _directory_specs(path)
            if not found:
                raise _usage(f"{arg}: a directory with no spec files (*.yaml, *.yml, *.json)")
            files += found
        elif path.exists():
            files.append(arg)
        elif glob.has_magic(arg):
            matches = sorted(glob.glob(arg))
            found = []
            for match in matches:
                found += _directory_specs(Path(match)) if Path(match).is_dir() else [match]
            if not found:
                raise _usage(f"{arg}: no spec file matches this pattern")
            files += found
        else:
            raise _usage(f"{arg}: no such file or directory")
    unique: dict[Path, str] = {}
    for file in files:
        unique.setdefault(Path(file).resolve(), file)
    return list(unique.values())


def load_all(args: list[str], stdin: Any = None) -> list[LoadedSpec]:
    """Every spec the arguments name, validated locally; one error listing every problem, or the specs.

    All files are read before anything is reported, so an operator fixes every broken spec of a fleet in
    one go instead of one per run. Two files with the same workspace_key would race for one workspace's
    lease with different specs: refused too.
    """
    loaded: list[LoadedSpec] = []
    problems: list[tuple[str, str]] = []  # (message, error name)
    for path in expand(args):
        try:
            loaded.append(LoadedSpec(path, load_spec(path, stdin)))
        except CliError as exc:
            problems.append((str(exc), exc.name))
    by_key: dict[str, list[str]] = {}
    for item in loaded:
        by_key.setdefault(item.spec.workspace_key, []).append(item.path)
    for key, paths in by_key.items():
        if len(paths) > 1:
            problems.append(
                (
                    f"{', '.join(paths)}: the same workspace_key {key!r} in {len(paths)} specs: "
                    "each workspace needs exactly one spec (change the key or drop a file)",
                    "DuplicateWorkspaceKeyError",
                )
            )
    if problems:
        names = {name for _message, name in problems}
        head = "" if len(problems) == 1 else f"{len(problems)} problems; nothing was started:\n"
        raise _usage(
            head + "\n".join(message for message, _name in problems),
            name=names.pop() if len(names) == 1 else "SpecInvalidError",
        )
    return loaded


def refuse_unsupported_regions(specs: list[LoadedSpec], catalog: Catalog) -> None:
    """A usage error (exit 2) naming every spec whose region the stack's catalog has no Databricks endpoint
    services for, and the regions it has: checked before any execution starts, since preflight would only
    fail on it."""
    problems = [
        f"{item.path}: {problem}" for item in specs if (problem := catalog.region_problem(item.spec.region))
    ]
    if problems:
        raise _usage("\n".join(problems), name="SpecInvalidError")
