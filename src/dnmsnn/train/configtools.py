"""A small typed-dataclass configuration layer: YAML file + ``key.path=value`` overrides -> dataclass.

This module knows nothing about the concrete config classes. Any (nested) dataclass whose field
annotations use the supported types can be built with :func:`from_dict`:

``int``, ``float`` (an ``int`` is accepted and converted; ``bool`` is never a number), ``str``, ``bool``,
``Optional[X]`` / ``X | None``, other unions, ``list[X]``, ``tuple[X, ...]`` / ``tuple[X, Y]``,
``dict[K, V]`` (``dict[str, Any]`` is free-form), ``Literal[...]``, nested dataclasses and ``Any``.

After a dataclass is built, its ``validate(self)`` method (if any) is called, for nested sections too.
Every problem is reported as :class:`~dnmsnn.errors.ConfigError` whose message names the key path,
what is wrong and how to fix it.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import re
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

from dnmsnn.errors import ConfigError

__all__ = [
    "from_dict",
    "to_dict",
    "load_yaml",
    "parse_override",
    "apply_overrides",
    "load_config",
    "dump_yaml",
]

T = TypeVar("T")

_OVERRIDE_EXAMPLE = "write it as KEY.PATH=VALUE, e.g. 'optim.lr=1e-3' or 'model.args.hidden=[128, 64]'"


# --------------------------------------------------------------------------------------------------
# YAML loading (safe) with numbers such as 1e-3 read as floats
# --------------------------------------------------------------------------------------------------


class _ConfigLoader(yaml.SafeLoader):
    """SafeLoader reading ``1e-3``/``3E5`` as floats (YAML 1.1 wants ``1.0e-3``); rejects duplicate keys."""


# Plain (unquoted) scalars with an exponent that PyYAML's YAML 1.1 float pattern misses: ``1e-3``, ``3E5``,
# ``2.5e3``. Quoted scalars are never resolved implicitly, so ``"1e-3"`` stays a string.
_EXP_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$")
_ConfigLoader.add_implicit_resolver("tag:yaml.org,2002:float", _EXP_FLOAT, list("-+0123456789."))


def _construct_mapping_no_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict:
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # '<<: *anchor' may legitimately repeat keys
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.get(key)
        except TypeError:  # unhashable key: let the default constructor report it
            continue
        if first is not None:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"found duplicate key {key!r} (first defined on line {first.line + 1}); keep only one",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark
    return loader.construct_mapping(node, deep=True)


_ConfigLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping_no_duplicates)


def _yaml_error_text(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "unknown position"
    text = f"{where}: {problem}"
    if context:
        text += f" ({context})"
    return text


def load_yaml(path: str | Path) -> dict:
    """Read a YAML config file into a plain dict (``{}`` for an empty file)."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(
            f"config file '{p}' does not exist; check the path (or omit it to use the defaults)"
        )
    if not p.is_file():
        raise ConfigError(f"config path '{p}' is not a file; give the path of a .yaml file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file '{p}' is not UTF-8 text ({exc}); save it as UTF-8 YAML") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read config file '{p}': {exc}; check that it is readable") from exc
    try:
        data = yaml.load(text, Loader=_ConfigLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"config file '{p}' is not valid YAML at {_yaml_error_text(exc)}; fix the syntax there"
        ) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file '{p}' must contain a mapping of sections at the top level "
            f"(e.g. 'optim:\\n  lr: 0.1'), but it holds a {type(data).__name__}"
        )
    return data


# --------------------------------------------------------------------------------------------------
# Overrides
# --------------------------------------------------------------------------------------------------


def _parse_value(text: str, key: str) -> Any:
    try:
        value = yaml.load(text, Loader=_ConfigLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"override '{key}={text}': the value is not valid YAML ({_yaml_error_text(exc)}); "
            f"if it is a string, quote it: --set '{key}={json.dumps(text)}'"
        ) from exc
    return value


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``"optim.lr=1e-3"`` into ``(["optim", "lr"], 0.001)``; the value is parsed as YAML."""
    if not isinstance(text, str):
        raise ConfigError(f"override {text!r} must be a string; {_OVERRIDE_EXAMPLE}")
    if "=" not in text:
        raise ConfigError(f"override '{text}' has no '='; {_OVERRIDE_EXAMPLE}")
    key, _, value_text = text.partition("=")
    key = key.strip()
    if not key:
        raise ConfigError(f"override '{text}' has an empty key before '='; {_OVERRIDE_EXAMPLE}")
    parts = [part.strip() for part in key.split(".")]
    if any(not part for part in parts):
        raise ConfigError(f"override '{text}' has an empty part in its key path '{key}'; {_OVERRIDE_EXAMPLE}")
    value = _parse_value(value_text.strip(), key)
    return parts, value


def apply_overrides(data: Mapping, overrides: Iterable[str]) -> dict:
    """Return a deep copy of ``data`` with each ``key.path=value`` override set (creating sections)."""
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"the config must be a mapping before overrides are applied, got {type(data).__name__}"
        )
    if isinstance(overrides, str):
        overrides = [overrides]
    result = copy.deepcopy(dict(data))
    for text in overrides:
        parts, value = parse_override(text)
        node: dict = result
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                where = ".".join(parts[: depth + 1])
                raise ConfigError(
                    f"override '{text}': '{where}' is a value ({child!r}), not a section, so it has no key "
                    f"'{parts[depth + 1]}'; set '{where}=...' directly or fix the key path"
                )
            node = child
        node[parts[-1]] = value
    return result


# --------------------------------------------------------------------------------------------------
# dict -> dataclass
# --------------------------------------------------------------------------------------------------


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{text} ({type(value).__name__})"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType)


def _type_name(tp: Any) -> str:
    if tp is Any or tp is object:
        return "any value"
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return f"a mapping (section {tp.__name__})"
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if _is_union(tp):
        return " or ".join(_type_name(arg) for arg in args)
    if origin is Literal:
        return "one of " + ", ".join(repr(arg) for arg in args)
    if origin is list:
        return f"a list of {_type_name(args[0])}" if args else "a list"
    if origin is tuple:
        if not args:
            return "a list"
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_type_name(args[0])}"
        return f"a list of {len(args)} items ({', '.join(_type_name(a) for a in args)})"
    if origin is dict:
        return f"a mapping of {_type_name(args[0])} to {_type_name(args[1])}" if args else "a mapping"
    if isinstance(tp, type):
        return {"int": "an integer (int)", "float": "a number (float)", "str": "a string (str)",
                "bool": "true or false (bool)", "list": "a list", "tuple": "a list", "dict": "a mapping"}.get(
            tp.__name__, tp.__name__
        )
    return str(tp)


def _type_error(path: str, tp: Any, value: Any, hint: str = "") -> ConfigError:
    where = f"'{path}'" if path else "the top level"
    msg = f"{where} must be {_type_name(tp)}, got {_short(value)}"
    if hint:
        msg += f"; {hint}"
    else:
        msg += f"; set {where} to {_type_name(tp)}"
    return ConfigError(msg)


def _convert(tp: Any, value: Any, path: str) -> Any:
    """Check ``value`` against annotation ``tp`` and return it (converted where allowed)."""
    if tp is Any or tp is object:
        return value
    if tp is type(None):
        if value is None:
            return None
        raise _type_error(path, tp, value)

    origin = typing.get_origin(tp)
    args = typing.get_args(tp)

    if _is_union(tp):
        if value is None and type(None) in args:
            return None
        members = [arg for arg in args if arg is not type(None)]
        # an exact match of a plain class wins (so ``float | int`` keeps an int an int)
        for arg in members:
            if isinstance(arg, type) and type(value) is arg:
                return value
        errors: list[ConfigError] = []
        for arg in members:
            try:
                return _convert(arg, value, path)
            except ConfigError as exc:
                errors.append(exc)
        if len(members) == 1:  # Optional[X]: X's own message is the most helpful
            raise errors[0] from None
        raise _type_error(path, tp, value)

    if origin is Literal:
        for option in args:
            if type(option) is type(value) and option == value:
                return value
        options = ", ".join(repr(arg) for arg in args)
        hint = f"choose one of {options}"
        if isinstance(value, str):
            close = difflib.get_close_matches(value, [a for a in args if isinstance(a, str)], n=1)
            if close:
                hint += f" (did you mean {close[0]!r}?)"
        raise ConfigError(f"'{path}' must be one of {options}, got {_short(value)}; {hint}")

    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise _type_error(path, tp, value, f"write '{path}' as a section of 'key: value' lines")
        return from_dict(tp, value, path)

    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _type_error(path, tp, value, "write it as a YAML list, e.g. [1, 2, 3]")
        items = list(value)
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(items) != len(args):
                raise _type_error(path, tp, value, f"give exactly {len(args)} items")
            pairs = enumerate(zip(args, items, strict=True))
            return tuple(_convert(arg, item, f"{path}[{i}]") for i, (arg, item) in pairs)
        item_tp = args[0] if args else Any
        converted = [_convert(item_tp, item, f"{path}[{i}]") for i, item in enumerate(items)]
        return tuple(converted) if (origin is tuple or tp is tuple) else converted

    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise _type_error(path, tp, value, "write it as a mapping of 'key: value' pairs")
        key_tp, val_tp = args if args else (Any, Any)
        out = {}
        for key, item in value.items():
            sub = _join(path, str(key))
            out[_convert(key_tp, key, f"{sub} (key)")] = _convert(val_tp, item, sub)
        return out

    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _type_error(path, tp, value, "write true or false")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        hint = "write a whole number without a decimal point, e.g. 10"
        if isinstance(value, bool):
            hint = "write a number, not true/false"
        elif isinstance(value, str):
            hint = "write the number without quotes"
        raise _type_error(path, tp, value, hint)
    if tp is float:
        if isinstance(value, float):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                return float(value)
            except OverflowError:
                raise _type_error(path, tp, value, "the integer is too large for a float") from None
        hint = "write a number, e.g. 0.001 or 1e-3"
        if isinstance(value, bool):
            hint = "write a number, not true/false"
        elif isinstance(value, str):
            hint = "write the number without quotes, e.g. 1e-3"
        raise _type_error(path, tp, value, hint)
    if tp is str:
        if isinstance(value, str):
            return value
        raise _type_error(path, tp, value, "put the value in quotes to make it a string")

    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise _type_error(path, tp, value)
    raise ConfigError(
        f"'{path}' has an annotation {tp!r} that the config loader does not support; "
        "use int, float, str, bool, Optional, list, tuple, dict, Literal, Any or a dataclass"
    )


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception as exc:  # NameError for unresolvable forward references, among others
        raise ConfigError(
            f"cannot resolve the field annotations of config class {cls.__name__}: {exc}; "
            "define the class (and the classes it names) at module level"
        ) from exc


def from_dict(cls: type[T], data: Mapping, path: str = "") -> T:
    """Build dataclass ``cls`` (recursively) from a plain mapping, type-checking every value.

    Missing keys take the dataclass defaults; ``validate(self)`` is called after construction.
    """
    if not (dataclasses.is_dataclass(cls) and isinstance(cls, type)):
        raise ConfigError(f"from_dict needs a dataclass type, got {cls!r}")
    where = f"section '{path}'" if path else "the top level of the config"
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a mapping of 'key: value' pairs, got {_short(data)}")

    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(key, str):
            raise ConfigError(
                f"{where} has a key {key!r} ({type(key).__name__}); keys must be names (strings), "
                f"one of: {', '.join(fields)}"
            )
        if key not in fields:
            valid = ", ".join(fields) or "(none)"
            msg = f"unknown key '{_join(path, key)}'; valid keys of {where} are: {valid}"
            close = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.5)
            if close:
                msg += f". Did you mean '{close[0]}'?"
            raise ConfigError(msg)
        kwargs[key] = _convert(hints.get(key, Any), value, _join(path, key))

    no_default = dataclasses.MISSING
    missing = [
        name
        for name, f in fields.items()
        if name not in kwargs and f.default is no_default and f.default_factory is no_default
    ]
    if missing:
        keys = ", ".join(f"'{_join(path, m)}'" for m in missing)
        raise ConfigError(
            f"missing required key(s) {keys} in {where}; add them to the config file or set them with "
            "an override (KEY.PATH=VALUE)"
        )

    try:
        obj = cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid values in {where}: {exc}") from exc

    validate = getattr(obj, "validate", None)
    if callable(validate):
        try:
            validate()
        except ConfigError as exc:
            text = str(exc)
            if path and not text.startswith(path):
                raise ConfigError(f"{path}: {text}") from exc
            raise
        except ValueError as exc:
            raise ConfigError(f"invalid values in {where}: {exc}") from exc
    return obj


# --------------------------------------------------------------------------------------------------
# dataclass -> dict / YAML, and the one-call loader
# --------------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def to_dict(obj: Any) -> dict:
    """Convert a config dataclass into a plain nested dict (tuples become lists); inverse of from_dict."""
    if not (dataclasses.is_dataclass(obj) and not isinstance(obj, type)):
        raise ConfigError(f"to_dict needs a dataclass instance, got {_short(obj)}")
    return _plain(obj)


def load_config(cls: type[T], path: str | Path | None, overrides: Iterable[str] = ()) -> T:
    """Load ``cls`` from a YAML file (``None``: defaults) plus ``key.path=value`` overrides."""
    data = load_yaml(path) if path is not None else {}
    data = apply_overrides(data, list(overrides))
    return from_dict(cls, data)


def dump_yaml(obj: Any, path: str | Path) -> None:
    """Write a config dataclass to a YAML file that :func:`load_config` reads back."""
    data = to_dict(obj)
    p = Path(path)
    try:
        text = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"cannot write the config as YAML: {exc}; config values must be plain data"
        ) from exc
    try:
        if p.parent and not p.parent.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot write config file '{p}': {exc}; check the directory and permissions"
        ) from exc
