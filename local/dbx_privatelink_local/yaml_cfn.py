"""CloudFormation YAML: the short-form intrinsic tags (!Ref, !GetAtt, !Sub ...) read into their long form.

PyYAML rejects unknown tags, and the SAM translator and moto's CloudFormation only understand the JSON
(long) form, so every short-form tag becomes the one-key mapping CloudFormation itself produces:
`!GetAtt Fn.Arn` -> {"Fn::GetAtt": ["Fn", "Arn"]}, `!Ref X` -> {"Ref": "X"}, `!Condition C` ->
{"Condition": "C"}. JSON templates load through the same path (JSON is YAML).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

# Tag -> long-form key. Ref and Condition are not "Fn::" functions in the long form.
_FUNCTIONS = {
    "Ref": "Ref",
    "Condition": "Condition",
    "GetAtt": "Fn::GetAtt",
    "Sub": "Fn::Sub",
    "Join": "Fn::Join",
    "If": "Fn::If",
    "Equals": "Fn::Equals",
    "Not": "Fn::Not",
    "And": "Fn::And",
    "Or": "Fn::Or",
    "Select": "Fn::Select",
    "Split": "Fn::Split",
    "FindInMap": "Fn::FindInMap",
    "ImportValue": "Fn::ImportValue",
    "Base64": "Fn::Base64",
    "Cidr": "Fn::Cidr",
    "GetAZs": "Fn::GetAZs",
    "Transform": "Fn::Transform",
    "Length": "Fn::Length",
    "ToJsonString": "Fn::ToJsonString",
}


class CfnYamlError(ValueError):
    """The template is not valid CloudFormation YAML (bad tag usage, unreadable document)."""


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader plus the CloudFormation tags; a subclass so the global SafeLoader stays untouched."""


# CloudFormation reads `Version: 2012-10-17` as a string; YAML 1.1 would make it a date that neither the
# SAM translator nor json.dumps accepts.
_CfnLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct(key: str) -> Any:
    def construct(loader: _CfnLoader, node: yaml.Node) -> dict[str, Any]:
        value: Any
        if isinstance(node, yaml.ScalarNode):
            scalar = loader.construct_scalar(node)
            if key == "Fn::GetAtt":
                # The short form is "Logical.Attribute"; attributes may themselves contain dots
                # (Endpoint.Address), so only the first dot separates.
                logical, sep, attribute = str(scalar).partition(".")
                if not sep or not logical or not attribute:
                    raise CfnYamlError(f"!GetAtt needs 'Resource.Attribute', got {scalar!r}")
                value = [logical, attribute]
            elif key == "Fn::GetAZs" and scalar == "":
                value = ""
            else:
                value = scalar
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        elif isinstance(node, yaml.MappingNode):
            value = loader.construct_mapping(node, deep=True)
        else:  # pragma: no cover - yaml has no other node kinds
            raise CfnYamlError(f"unsupported node for !{key}")
        return {key: value}

    return construct


for _tag, _key in _FUNCTIONS.items():
    _CfnLoader.add_constructor(f"!{_tag}", _construct(_key))


def loads(text: str) -> dict[str, Any]:
    """Parse a CloudFormation/SAM template (YAML with short-form tags, or JSON) into its long form."""
    try:
        document = yaml.load(text, Loader=_CfnLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as exc:
        raise CfnYamlError(f"template is not valid YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise CfnYamlError("a template must be a mapping at the top level")
    return document


def load(path: Path) -> dict[str, Any]:
    """Read and parse a template file."""
    return loads(path.read_text(encoding="utf-8"))


def function_constants(path: Path) -> dict[str, str]:
    """The variables a SAM template's Globals give every function a fixed value (the others are
    intrinsics: parameters, references)."""
    variables = load(path)["Globals"]["Function"]["Environment"]["Variables"]
    return {name: value for name, value in variables.items() if isinstance(value, str)}
