"""Model registry in the style of timm: ``@register_model``, ``create(name, **overrides)``, ``available()``.

Each entry keeps metadata next to its builder (the paper it reproduces, the input it expects),
as torchvision keeps weight metadata next to its builders.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError
from ..network import Network

Builder = Callable[..., Network]


@dataclass(frozen=True)
class ModelInfo:
    """What a registered model is: its builder, a one-line summary, its paper and default input."""

    name: str
    builder: Builder
    summary: str
    paper: str = ""
    input_shape: tuple[int, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)


_MODELS: dict[str, ModelInfo] = {}


def register_model(summary: str = "", paper: str = "", name: str | None = None) -> Callable[[Builder], Builder]:
    """Decorator registering a builder ``f(**kw) -> Network`` under its function name (or ``name``)."""

    def add(fn: Builder) -> Builder:
        key = name or fn.__name__
        if key in _MODELS:
            raise ValueError(f"model {key!r} is already registered")
        sig = inspect.signature(fn)
        defaults = {k: p.default for k, p in sig.parameters.items() if p.default is not inspect.Parameter.empty}
        doc = summary or (inspect.getdoc(fn) or "").split("\n")[0]
        _MODELS[key] = ModelInfo(key, fn, doc, paper, tuple(defaults.get("input_shape", ())), defaults)
        return fn

    return add


def available() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(_MODELS)


def info(name: str) -> ModelInfo:
    if name not in _MODELS:
        raise InputError(f"unknown model {name!r}; available: {', '.join(available())}")
    return _MODELS[name]


def create(name: str, weights: str | None = None, **overrides: Any) -> Network:
    """Build a registered model, overriding any of its builder's keyword arguments.

    ``weights="TAG"`` loads the shipped trained weights ``name/TAG`` (:mod:`dnmsnn.weights`; checked by
    SHA-256) into a model built with the arguments they were trained with, in eval mode; ``member=k``
    picks member k of a cohort's entry."""
    entry = info(name)
    if weights is not None:
        from .. import weights as shipped

        member = overrides.pop("member", 0)
        return shipped.load(name, weights, member=member, overrides=overrides)
    unknown = set(overrides) - set(entry.defaults)
    if unknown:
        raise InputError(f"model {name!r} has no argument(s) {sorted(unknown)}; valid: {', '.join(entry.defaults)}")
    return entry.builder(**overrides)
