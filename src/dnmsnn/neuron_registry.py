"""Every neuron kind a model or a config can name, in one place.

A kind is registered once, by the module that defines it (``neurons.py``: ``lif``, ``if``;
``parametric_lif.py``: ``plif``; ``adaptive_lif.py``: ``alif``). Everything that has to know about neuron
kinds reads this table instead of a list of its own: the model builders (``model.args.neuron`` and
``model.args.neuron_args``), NIR export (whether NIR can express the kind, and if not why), and
:func:`dnmsnn.explain` (how the kind runs: the fused node, or the step-by-step loop and why).

A neuron class names its kind in the class attribute ``kind``; :func:`kind_of` reads it.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from .errors import InputError

FUSED = "fused"


@dataclass(frozen=True)
class NeuronKind:
    """One registered neuron kind.

    ``build(**kwargs)`` makes a layer from the builders' flat keyword arguments (``beta``, ``tau``,
    ``threshold``, ``v_reset``, ``reset``, ``surrogate``, ``surrogate_param``, ``detach_reset``, ``strict``,
    ``learn_threshold``) plus the kind's own ``extra_args``. ``runs_on`` is :data:`FUSED` when multi-step calls
    take the fused neuron node (C++ kernel or PyTorch), else the reason it runs the step-by-step loop.
    ``nir`` is None when NIR export writes it, else the reason NIR cannot express it.
    """

    name: str
    build: Callable[..., nn.Module]
    summary: str
    paper: str = ""
    extra_args: tuple[str, ...] = ()
    runs_on: str = FUSED
    nir: str | None = None


_KINDS: dict[str, NeuronKind] = {}


def register_neuron(kind: NeuronKind) -> NeuronKind:
    """Add ``kind`` to the table (a name can be registered once)."""
    if kind.name in _KINDS:
        raise ValueError(f"neuron kind {kind.name!r} is already registered")
    _KINDS[kind.name] = kind
    return kind


def available() -> list[str]:
    """The registered kinds' names, sorted."""
    _load_builtin()
    return sorted(_KINDS)


def neuron_kind(name: str) -> NeuronKind:
    """The kind registered as ``name`` (unknown: an :class:`~dnmsnn.InputError` listing the known ones)."""
    _load_builtin()
    if name not in _KINDS:
        raise InputError(f"neuron must be one of {', '.join(sorted(_KINDS))}, got {name!r}")
    return _KINDS[name]


def kind_of(module: nn.Module) -> NeuronKind | None:
    """The registered kind of a neuron layer (None for any other module)."""
    name = getattr(type(module), "kind", None)
    return neuron_kind(name) if isinstance(name, str) else None


_loaded = False


def _load_builtin() -> None:
    """Import the modules that register the built-in kinds (each registers itself on import), once."""
    global _loaded
    if not _loaded:
        from . import adaptive_lif, neurons, parametric_lif  # noqa: F401

        _loaded = True
