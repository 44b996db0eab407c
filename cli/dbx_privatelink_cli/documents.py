"""A spec file's text as a document: JSON for *.json, YAML otherwise, refusing a key given twice.

Both parsers let the last of two equal keys win without a word, so a spec whose `vpc_id` was pasted in twice
would silently be applied with the second one: here the repeated key is an error naming the field's path
and both lines.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode


class DuplicateKeyError(ValueError):
    """A mapping gives one key twice; `field` is its path in the document, when it could be found."""

    def __init__(self, field: str, lines: tuple[int, int] | None = None) -> None:
        where = f" (lines {lines[0]} and {lines[1]})" if lines else ""
        super().__init__(
            f"{field}: given twice{where}; the parser would silently keep the last one: keep one of them"
        )
        self.field = field
        self.lines = lines


def _repeated_keys(node: Node, path: str, seen: set[int]) -> Iterator[tuple[str, int, int]]:
    """(path, first line, repeated line) for every key a mapping under `node` gives twice."""
    if id(node) in seen:  # an alias of an anchor already walked (or of an ancestor)
        return
    seen.add(id(node))
    if isinstance(node, MappingNode):
        first_line: dict[tuple[str, str], int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                yield from _repeated_keys(value_node, path, seen)
                continue
            field = f"{path}.{key_node.value}" if path else str(key_node.value)
            line = key_node.start_mark.line + 1
            key = (key_node.tag, key_node.value)
            if key in first_line:
                yield field, first_line[key], line
            first_line.setdefault(key, line)
            yield from _repeated_keys(value_node, field, seen)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            yield from _repeated_keys(item, f"{path}[{index}]", seen)


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a mapping giving one key twice raises DuplicateKeyError."""

    def construct_document(self, node: Node) -> Any:
        for field, first, again in _repeated_keys(node, "", set()):
            raise DuplicateKeyError(field, (first, again))
        return super().construct_document(node)


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise DuplicateKeyError(key)
        document[key] = value
    return document


def _locate(text: str, key: str) -> DuplicateKeyError:
    """The error for a JSON key json found twice, with its path and lines (JSON is YAML's flow style)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:  # JSON that is no YAML (a tab before a token): the key without its lines
        node = None
    for field, first, again in _repeated_keys(node, "", set()) if node is not None else ():
        if field.rsplit(".", 1)[-1] == key:
            return DuplicateKeyError(field, (first, again))
    return DuplicateKeyError(key)


def parse_document(text: str, *, is_json: bool) -> Any:
    """The document in `text`; json.JSONDecodeError, yaml.YAMLError or DuplicateKeyError when it is not one."""
    if not is_json:
        return yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader: plain data only
    try:
        return json.loads(text, object_pairs_hook=_unique_pairs)
    except DuplicateKeyError as exc:
        raise _locate(text, exc.field) from None
