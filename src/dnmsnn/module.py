"""The two-way protocol every dnmsnn layer follows.

* multi-step: ``forward(x)`` maps ``[T, B, ...] -> [T, B, ...]``, always starting from rest;
* single-step: ``step(x, state) -> (y, state)`` maps ``[B, ...] -> [B, ...]`` with the state passed
  explicitly (``None`` = at rest), so a learning rule can run, detach or inspect one step at a time.

Stateless layers return ``state`` unchanged (``None``). A plain ``torch.nn`` module inside a network
is treated as stateless and applied to each step as is.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .errors import InputError


class SpikingModule(nn.Module):
    """Base class for multi-step layers that also run one step at a time."""

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


def totals_module(module: nn.Module, x: torch.Tensor, T: int) -> torch.Tensor:
    """The totals form of any module (plain torch modules have none, except Identity)."""
    if isinstance(module, SpikingModule):
        return module.totals(x, T)
    if isinstance(module, nn.Identity):
        return x
    raise InputError(f"{type(module).__name__} has no totals form; use dnmsnn layers in networks for the asf rule")


def step_module(module: nn.Module, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
    """One step of any module: its ``step`` if it has one, else a stateless call."""
    if isinstance(module, SpikingModule):
        return module.step(x, state)
    return module(x), None
