"""`dbx-privatelink schema [--output FILE]`: the workspace spec's JSON Schema, generated from the model.

Editors validate specs as they are typed with it: the YAML language server reads a first-line comment
`# yaml-language-server: $schema=<path or URL>`, and VS Code's `json.schemas` / `yaml.schemas` settings map
files to it. The repository keeps a copy in schema/workspace-spec.schema.json (a test holds it to the model).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from dbx_privatelink.spec import spec_json_schema
from dbx_privatelink_cli.common import EXIT_OK, EXIT_USAGE, CliError, Runtime
from dbx_privatelink_cli.output import emit_lines


def schema_text() -> str:
    """The schema as the file holds it: two-space indented, keys in the model's order, one final newline."""
    return json.dumps(spec_json_schema(), indent=2) + "\n"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "schema",
        help="print the workspace spec's JSON Schema (for editors)",
        description="Print the JSON Schema of the workspace spec, generated from the model the CLI validates "
        "with, so editors check specs as they are typed. Needs no AWS.",
    )
    parser.add_argument(
        "--output", metavar="FILE", default=None, help="write the schema to FILE instead of standard output"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, runtime: Runtime) -> int:
    text = schema_text()
    if args.output is None:
        runtime.out.write(text)
        runtime.out.flush()
        return EXIT_OK
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CliError(
            f"--output {args.output}: cannot write the schema ({exc.strerror})",
            exit_code=EXIT_USAGE,
            name="UsageError",
        ) from None
    emit_lines(runtime.err, [f"wrote the workspace spec's JSON Schema to {args.output}"])
    return EXIT_OK
