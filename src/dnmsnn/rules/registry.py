"""Registry of learning rules: ``create(name, **kw)``, ``available()``, ``@register_rule(name)``."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import InputError

if TYPE_CHECKING:
    from .base import LearningRule

_RULES: dict[str, type[LearningRule]] = {}


def register_rule(name: str) -> Callable[[type[LearningRule]], type[LearningRule]]:
    """Class decorator adding a rule under ``name``."""

    def add(cls: type[LearningRule]) -> type[LearningRule]:
        if name in _RULES:
            raise ValueError(f"learning rule {name!r} is already registered")
        cls.name = name
        _RULES[name] = cls
        return cls

    return add


def available() -> list[str]:
    return sorted(_RULES)


def create(name: str, **kwargs: Any) -> LearningRule:
    """A new rule object by name, e.g. ``create("bptt", loss="ce")``."""
    if name not in _RULES:
        raise InputError(f"unknown learning rule {name!r}; available: {', '.join(available())}")
    try:
        return _RULES[name](**kwargs)
    except TypeError as exc:
        raise InputError(f"learning rule {name!r}: {exc}") from None
