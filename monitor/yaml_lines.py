"""YAML text -> plain data, with the line each key and list element starts on, so that a problem found later
(by validation or a cross-check) is reported at its line. Pure: takes the text, reads no file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from monitor.errors import ConfigError

KeyPath = tuple[str | int, ...]  # a key's place in the YAML document: keys and list indexes from the top
_COMPOSER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's, where PyYAML was built with it: 5x faster


def load_yaml(
    text: str, file: Path, duplicate_keys: list[tuple[KeyPath, int]]
) -> tuple[dict[str, Any], dict[KeyPath, int]]:
    """Plain data plus the line (1-based) where each mapping key or sequence element starts."""
    try:
        try:
            node = yaml.compose(text, Loader=_COMPOSER)
        except yaml.YAMLError:  # read again by PyYAML's own parser, whose messages say more than libyaml's
            node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([f"{file}{line}: not valid YAML: {problem}"]) from None
    if node is None:
        return {}, {}
    lines: dict[KeyPath, int] = {(): node.start_mark.line + 1}
    data = _construct(node, (), lines, duplicate_keys, yaml.SafeLoader(""))
    if not isinstance(data, dict):
        raise ConfigError([f"{file}:{node.start_mark.line + 1}: the top level must be a mapping"])
    return data, lines


def _construct(
    node: yaml.Node,
    path: KeyPath,
    lines: dict[KeyPath, int],
    duplicates: list[tuple[KeyPath, int]],
    scalars: yaml.SafeLoader,
) -> Any:
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(scalars.construct_object(key_node))
            line = key_node.start_mark.line + 1
            if key in result:
                duplicates.append((path + (key,), line))
            lines[path + (key,)] = line
            result[key] = _construct(value_node, path + (key,), lines, duplicates, scalars)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, child in enumerate(node.value):
            lines[path + (index,)] = child.start_mark.line + 1
            items.append(_construct(child, path + (index,), lines, duplicates, scalars))
        return items
    return scalars.construct_object(node)


def dotted(path: tuple[Any, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def describe_error(error: Any, lines: dict[KeyPath, int]) -> tuple[int, str]:
    loc = tuple(part for part in error["loc"] if not (isinstance(part, str) and part.startswith("function-")))
    # Pydantic adds the union member or validator name to some locations; keep only real keys and indexes.
    loc = tuple(part for part in loc if isinstance(part, int) or not part[:1].isupper())
    probe = loc
    while probe and probe not in lines:
        probe = probe[:-1]
    line = lines.get(probe, 1)
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    elif error["type"] == "missing":
        message = "required but missing"
    return line, f"{dotted(loc)}: {message}"
