"""Strict conversion of YAML data into typed dataclasses.

An unknown or mistyped key, a wrong type or an impossible value is a ``ConfigError`` whose one-line message names
the dotted key. A union of dataclasses that each carry a ``source`` field (the data-set entries) is a tagged union:
the entry's ``source`` value picks the dataclass.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any

from mlffbench.errors import ConfigError


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


def positive(where: str, key: str, value) -> None:
    if not value > 0:
        raise ConfigError(f"{where}.{key}: must be > 0, got {value}")


def value_key(value):
    """A hashable form of a config value for duplicate checks (3 and 3.0 are the same number)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return json.dumps(value, sort_keys=True, default=str)


def _tag(option) -> str | None:
    """The ``source`` default of a tagged-union member dataclass, else None."""
    if not dataclasses.is_dataclass(option):
        return None
    field = next((f for f in dataclasses.fields(option) if f.name == "source"), None)
    return None if field is None or field.default is dataclasses.MISSING else field.default


def _convert_union(options: tuple, value, key: str):
    if value is None and type(None) in options:
        return None
    members = [o for o in options if o is not type(None)]
    tags = {_tag(o): o for o in members}
    if len(members) > 1 and None not in tags:  # a tagged union: 'source' picks the member
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__}")
        source = value.get("source")
        if source not in tags:
            raise ConfigError(f"{key}.source: must be one of {', '.join(tags)}, got {source!r}")
        return from_dict(tags[source], value, key)
    errors = []
    for option in members:
        try:
            return convert(option, value, key)
        except ConfigError as exc:
            errors.append(str(exc))
    if len(errors) == 1:  # X | None: the inner error names the inner key (e.g. tasks.grid.retrain)
        raise ConfigError(errors[0])
    names = " or ".join(getattr(o, "__name__", str(o)) for o in members)
    raise ConfigError(f"{key}: expected {names}, got {type(value).__name__} {value!r}")


def convert(tp, value, key: str):
    """Convert ``value`` to the annotated type ``tp`` or raise ConfigError naming ``key``."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        return _convert_union(typing.get_args(tp), value, key)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__}")
        return from_dict(tp, value, key)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__} {value!r}")
        (item,) = typing.get_args(tp)
        return [convert(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__} {value!r}")
        _, vt = typing.get_args(tp)
        return {str(k): convert(vt, v, f"{key}.{k}") for k, v in value.items()}
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {type(value).__name__} {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {type(value).__name__} {value!r}")
        return value
    if tp in (str, bool, dict):
        if not isinstance(value, tp):
            raise ConfigError(f"{key}: expected {tp.__name__}, got {type(value).__name__} {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {tp}")  # pragma: no cover - programming error


def from_dict(cls, data: dict, where: str = ""):
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys and wrong types."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    prefix = f"{where}." if where else ""
    for key in data:
        if key not in known:
            raise ConfigError(f"{prefix}{key}: unknown key (allowed: {', '.join(sorted(known))})")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            kwargs[f.name] = convert(hints[f.name], data[f.name], f"{prefix}{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{prefix}{f.name}: required key is missing")
    return cls(**kwargs)
