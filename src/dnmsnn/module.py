"""The protocol every dnmsnn layer follows, and the options one run passes down the layers.

* multi-step: ``forward(x)`` maps ``[T, B, ...] -> [T, B, ...]``, always starting from rest;
* single-step: ``step(x, state) -> (y, state)`` maps ``[B, ...] -> [B, ...]`` with the state passed
  explicitly (``None`` = at rest), so a learning rule can run, detach or inspect one step at a time;
* totals: ``totals(x, T)`` maps accumulated flows ``[B, ...] -> [B, ...]`` (Wu et al.'s equivalent network).

Stateless layers return ``state`` unchanged (``None``). A plain ``torch.nn`` module inside a network
is treated as stateless and applied to each step as is.

The layers whose computation depends on how the network is run (the neurons, the Integrator, the
containers: class attribute ``takes_run = True``) take a :class:`RunOptions` as one more argument,
``forward(x, run)``, ``step(x, state, run)``, ``totals(x, T, run)``, and hand it to the layers inside them. It is
given once, to :meth:`dnmsnn.Network.run`, and passed down explicitly: no context variable says whether
gradients cross time steps or where totals are recorded.
"""
from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .errors import InputError

if TYPE_CHECKING:
    from .totals import TotalsRecord


@dataclass(frozen=True)
class RunOptions:
    """How one run computes, handed down the layers (see :meth:`dnmsnn.Network.run`).

    ``temporal_grad``: gradients pass through V[k-1] into step k (False: space only, Bondarev's spatial
    backpropagation, eq. 8 -- each neuron detaches its previous state; forward values are unchanged).
    ``record``: phase 1 of Wu et al.'s ASF -- every spiking neuron adds its FI and FO to this record.
    ``apply``: phase 2 -- every spiking neuron's ``totals`` reads its FO and slope S from this record.
    """

    temporal_grad: bool = True
    record: TotalsRecord | None = None
    apply: TotalsRecord | None = None

    @property
    def is_default(self) -> bool:
        return self.temporal_grad and self.record is None and self.apply is None


DEFAULT_RUN = RunOptions()


class SpikingModule(nn.Module):
    """Base class for multi-step layers that also run one step at a time."""

    takes_run: bool = False  # True: forward / step / totals take a RunOptions as their last argument
    is_neuron: bool = False  # True: a neuron layer (spiking or Integrator), whose computation ``run`` steers

    def step(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        raise NotImplementedError(f"{type(self).__name__} does not implement step()")

    def totals(self, x: torch.Tensor, T: int) -> torch.Tensor:
        """The layer applied to accumulated flows [B, ...] (Wu et al.'s equivalent network); see dnmsnn.totals."""
        raise InputError(f"{type(self).__name__} has no totals form (it is not linear over time); the asf rule "
                         "supports Linear, Conv2d, AvgPool2d, Flatten, Dropout, Residual and LIF/IF/Integrator")


def has_hooks(module: nn.Module) -> bool:
    """Whether calling ``module`` would run any module hook (its own or a global one): a fast path that
    skips the call (fused layers, closed-form readout) must then take the ordinary one."""
    from torch.nn.modules import module as _m

    return bool(module._forward_hooks or module._forward_pre_hooks or module._backward_hooks
                or module._backward_pre_hooks or _m._global_forward_hooks or _m._global_forward_pre_hooks
                or _m._global_backward_hooks or _m._global_backward_pre_hooks)


def takes_run(module: nn.Module, method: str = "forward") -> bool:
    """Whether ``module``'s ``method`` (``forward``, ``step`` or ``totals``) takes :class:`RunOptions`: a dnmsnn
    neuron, Integrator or container, unless a subclass overrides that method without a ``run`` parameter (then
    it is called as a user's layer is)."""
    return isinstance(module, SpikingModule) and module.takes_run and _has_run_parameter(type(module), method)


@functools.cache
def _has_run_parameter(cls: type, method: str) -> bool:
    try:
        return "run" in inspect.signature(getattr(cls, method)).parameters
    except (TypeError, ValueError):
        return False


def check_runs_as_told(module: nn.Module, run: RunOptions) -> None:
    """A module that cannot be handed ``run`` (a layer of the user's own with a forward of its own) may not hold
    neurons when ``run`` is not the default: they would run with the default options, silently (temporal
    gradients where the spatial rule cuts them, no totals recorded for asf). The error says what to do."""
    if run.is_default:
        return
    inner = next((m for m in module.modules() if isinstance(m, SpikingModule) and m.is_neuron), None)
    if inner is not None:
        what = ("spatial backpropagation (no temporal gradient)" if not run.temporal_grad
                else "recording or applying ASF totals")
        if inner is module:
            raise InputError(
                f"{type(module).__name__} overrides forward / step / totals without a run parameter, so dnmsnn cannot "
                f"hand it the run's options ({what}); add run: RunOptions = DEFAULT_RUN (dnmsnn.module) to the "
                "override and pass run.temporal_grad / run.record on as the built-in neurons do")
        raise InputError(
            f"{type(module).__name__} holds a {type(inner).__name__} inside a forward of its own, which dnmsnn cannot "
            f"hand the run's options to ({what}); build the network from dnmsnn containers (Sequential, Residual, "
            "Network), or give the module takes_run = True and forward(x, run) / step(x, state, run) / "
            "totals(x, T, run) that pass run on to its neurons")


def totals_module(module: nn.Module, x: torch.Tensor, T: int, run: RunOptions = DEFAULT_RUN) -> torch.Tensor:
    """The totals form of any module (plain torch modules have none, except Identity)."""
    if takes_run(module, "totals"):
        return module.totals(x, T, run)
    check_runs_as_told(module, run)
    if isinstance(module, SpikingModule):
        return module.totals(x, T)
    if isinstance(module, nn.Identity):
        return x
    raise InputError(f"{type(module).__name__} has no totals form; use dnmsnn layers in networks for the asf rule")


def step_module(module: nn.Module, x: torch.Tensor, state: Any = None,
                run: RunOptions = DEFAULT_RUN) -> tuple[torch.Tensor, Any]:
    """One step of any module: its ``step`` if it has one, else a stateless call."""
    if takes_run(module, "step"):
        return module.step(x, state, run)
    check_runs_as_told(module, run)
    if isinstance(module, SpikingModule):
        return module.step(x, state)
    return module(x), None
