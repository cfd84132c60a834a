"""Time-distributed synapses for ``[T, B, ...]`` tensors, and the containers that make a network.

A synapse is stateless and applied to every step alike: in multi-step mode it runs once on the
whole ``[T*B, ...]`` stack (one matmul / conv per layer, not one per step), in single-step mode on
``[B, ...]``. Dropout keeps one mask for all T steps; BatchNorm takes its statistics over T x B.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from . import plan
from ._checks import check_sequence
from .errors import InputError
from .functional.conv import stacked_avg_pool2d, stacked_conv2d
from .functional.spike_matmul import linear as spike_linear
from .functional.spike_matmul import spike_conv_ones
from .module import DEFAULT_RUN, RunOptions, SpikingModule, check_runs_as_told, step_module, takes_run, totals_module
from .sharding import BATCH_SHARD


class _TimeDistributed(SpikingModule):
    """Mixin: apply the wrapped torch layer to the flattened ``[T*B, ...]`` stack."""

    feature_dims: int | None = None  # dims after [T, B] the layer needs (None: any >= 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        exact = None if self.feature_dims is None else self.feature_dims + 2
        check_sequence(x, type(self).__name__, min_dim=3, exact_dim=exact)
        if plan.recording() and type(self).forward is _TimeDistributed.forward:  # one path: BatchNorm, MaxPool
            plan.note(plan.sequence_choice(self), self)
        T, B = x.shape[:2]
        return super().forward(x.flatten(0, 1)).unflatten(0, (T, B))  # type: ignore[misc]

    def step(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        if plan.recording():
            plan.note(plan.step_choice(self), self)
        return super().forward(x), state  # type: ignore[misc]


class Linear(_TimeDistributed, nn.Linear):
    """y[k] = W x[k] (+ b): Bondarev eq. 3, Wu et al. eq. 1. ``bias=False`` gives the papers' form."""

    feature_dims = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # matmul broadcasts over [T, B]: no reshape
        """0/1 (spike) inputs go through the multiplication-free kernels (:mod:`dnmsnn.functional.spike_matmul`,
        per row the same values in multi-step and single-step mode); any other input through ``F.linear``."""
        self.check_input(x)
        return spike_linear(x, self.weight, self.bias, self)

    def step(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        return spike_linear(x, self.weight, self.bias, self), state

    def check_input(self, x: torch.Tensor) -> None:
        """[T, B, in_features], floating."""
        check_sequence(x, "Linear", min_dim=3, exact_dim=3)
        if x.shape[-1] != self.in_features:
            raise InputError(f"Linear expects {self.in_features} input features, got shape {tuple(x.shape)}")

    def totals(self, x: torch.Tensor, T: int) -> torch.Tensor:
        """FI = W FO (+ T b): eq. 6 of Wu et al.."""
        if plan.recording():
            plan.note(plan.totals_choice(self), self)
        y = nn.functional.linear(x, self.weight)
        return y if self.bias is None else y + T * self.bias


class Conv2d(_TimeDistributed, nn.Conv2d):
    """2-D convolution applied to every step of ``[T, B, C, H, W]``.

    Multi-step on the CPU it runs channels-last in chunks of images (:mod:`dnmsnn.functional.conv`; the
    output is channels-last, the values those of ``F.conv2d`` to float rounding).
    """

    feature_dims = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_sequence(x, "Conv2d", min_dim=5, exact_dim=5)
        stack = x.flatten(0, 1)
        if plan.conv_choice(self, stack) is None:
            return super().forward(x)
        if stack.shape[1] != self.in_channels:
            raise InputError(f"Conv2d expects {self.in_channels} input channels, got shape {tuple(x.shape)}")
        if plan.recording():
            spike = spike_conv_ones(stack, self.weight, self.stride, self.padding, self.dilation, self.groups)
            plan.note(plan.spike_conv_choice(spike is not None, stack, self.weight), self)
        y = stacked_conv2d(stack, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        return y.unflatten(0, x.shape[:2])

    def totals(self, x: torch.Tensor, T: int) -> torch.Tensor:
        """FI = W * FO (+ T b): convolution is linear, so it commutes with the sum over time."""
        if plan.recording():
            plan.note(plan.totals_choice(self), self)
        y = self._conv_forward(x, self.weight, None)
        return y if self.bias is None else y + T * self.bias.view(1, -1, 1, 1)


class AvgPool2d(_TimeDistributed, nn.AvgPool2d):
    """Average pooling of every step (Wu et al.'s P2)."""

    feature_dims = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Stride = kernel, no padding (P2), channels-last input on the CPU (a stacked Conv2d's output): ATen's
        channels-last kernel with a broadcast backward (:func:`~dnmsnn.functional.conv.stacked_avg_pool2d`);
        otherwise ``F.avg_pool2d`` on the input as it is laid out."""
        check_sequence(x, "AvgPool2d", min_dim=5, exact_dim=5)
        stack = x.flatten(0, 1)
        k = plan.pool_choice(self, stack)
        if k is None:
            return super().forward(x)
        return stacked_avg_pool2d(stack, k).unflatten(0, x.shape[:2])

    def square_window(self) -> int | None:
        """k when this pool is a plain k x k window with stride k (the stacked path's case), else None."""
        return square_window(self)

    def totals(self, x: torch.Tensor, T: int) -> torch.Tensor:
        if plan.recording():
            plan.note(plan.totals_choice(self), self)
        return nn.AvgPool2d.forward(self, x)


def square_window(pool: nn.AvgPool2d) -> int | None:
    """k when an average pool (``dnmsnn.AvgPool2d`` or ``torch.nn.AvgPool2d``) is a plain k x k window with
    stride k (the stacked path's and the neuron + pooling node's case), else None."""
    k, s, p = (v if isinstance(v, int) else (v[0] if len(set(v)) == 1 else None)
               for v in (pool.kernel_size, pool.stride or pool.kernel_size, pool.padding))
    plain = not pool.ceil_mode and pool.divisor_override is None and p == 0
    return k if plain and k is not None and k == s else None


class MaxPool2d(_TimeDistributed, nn.MaxPool2d):
    """Max pooling of every step."""

    feature_dims = 3


class BatchNorm1d(_TimeDistributed, nn.BatchNorm1d):
    """Batch norm of ``[T, B, C]`` features with statistics over T x B."""

    feature_dims = 1


class BatchNorm2d(_TimeDistributed, nn.BatchNorm2d):
    """Batch norm of ``[T, B, C, H, W]`` with statistics over T x B x H x W.

    In single-step mode the statistics are those of one step's batch (a rule that steps one time
    step at a time sees slightly different normalisation in training).
    """

    feature_dims = 3


class Flatten(SpikingModule):
    """``[T, B, ...] -> [T, B, features]`` (single step: ``[B, ...] -> [B, features]``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_sequence(x, "Flatten", min_dim=3)
        return x.flatten(2)

    def step(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        return x.flatten(1), state

    def totals(self, x: torch.Tensor, T: int) -> torch.Tensor:
        return x.flatten(1)


class Dropout(SpikingModule):
    """Dropout with one mask for all T steps (a neuron is dropped for the whole sequence).

    Inside :func:`~dnmsnn.sharding.batch_shard` the mask is drawn for the global batch and sliced (the draws of
    one process).
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
            raise InputError(f"Dropout p must lie in [0, 1), got {p!r}")
        self.p = float(p)
        self.last_mask: torch.Tensor | None = None  # the mask of the last call (reused by the totals mode)

    def _mask(self, like: torch.Tensor) -> torch.Tensor:
        shard = BATCH_SHARD.get()
        if shard is not None and like.dim() >= 1 and like.shape[0] == shard.stop - shard.start:
            keep = like.new_empty((shard.total, *like.shape[1:])).bernoulli_(1.0 - self.p)[shard.start:shard.stop]
        else:
            keep = torch.empty_like(like).bernoulli_(1.0 - self.p)
        self.last_mask = keep.div_(1.0 - self.p)
        return self.last_mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_sequence(x, "Dropout")
        if not self.training or self.p == 0.0:
            return x
        return x * self._mask(x[0]).unsqueeze(0)

    def step(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, Any]:
        if not self.training or self.p == 0.0:
            return x, state
        mask = self._mask(x) if state is None else state
        return x * mask, mask

    def totals(self, x: torch.Tensor, T: int) -> torch.Tensor:
        """The same mask as the recorded forward (it multiplies every step alike, so the totals too)."""
        if not self.training or self.p == 0.0:
            return x
        if self.last_mask is None or self.last_mask.shape != x.shape:
            raise InputError("Dropout.totals needs the mask of a preceding forward over the same batch")
        return x * self.last_mask

    def extra_repr(self) -> str:
        return f"p={self.p}"


def run_layers(layers: list[nn.Module], x: torch.Tensor, run: RunOptions = DEFAULT_RUN) -> torch.Tensor:
    """Apply ``layers`` in order (multi-step), each through :func:`run_module` with the run's options.

    A layer with a ``forward_fused(x, next_layer, run)`` method (the spiking neurons) may run together with the
    layer after it: it returns that layer's output, or None when it does not fuse (then both run as usual).
    LIF / IF followed by a Linear fuse during training (one autograd node, spikes kept as bytes: same
    values, less memory; see :func:`dnmsnn.functional.neuron_linear_sequence`).
    """
    i, n = 0, len(layers)
    while i < n:
        fused = getattr(layers[i], "forward_fused", None)
        y = fused(x, layers[i + 1], run) if fused is not None and i + 1 < n else None
        if y is None:
            x = run_module(layers[i], x, run)
            i += 1
        else:
            x = y
            i += 2
    return x


def run_module(module: nn.Module, x: torch.Tensor, run: RunOptions = DEFAULT_RUN) -> torch.Tensor:
    """Any module multi-step: called (hooks included) with ``run`` where it takes one (neurons, containers),
    as it is where it does not, and a plain torch layer through :func:`run_torch_layer`."""
    if takes_run(module):
        return module(x, run)
    check_runs_as_told(module, run)
    return module(x) if isinstance(module, SpikingModule) else run_torch_layer(module, x)


IMAGE_LAYERS = (nn.Conv2d, nn.AvgPool2d, nn.MaxPool2d, nn.BatchNorm2d)  # torch layers of [N, C, H, W] images only


def run_torch_layer(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A plain torch module inside a network, multi-step.

    The torch image layers (exactly ``nn.Conv2d``, ``nn.AvgPool2d``, ``nn.MaxPool2d``, ``nn.BatchNorm2d``), which
    accept ``[N, C, H, W]`` only, are applied to every step of ``[T, B, C, H, W]`` as their dnmsnn counterparts
    are: on the ``[T*B]`` stack, through the chunked channels-last convolution and pooling where the plan
    allows (batch norm statistics over T x B x H x W). Every other module runs on its input as given.
    """
    if type(layer) not in IMAGE_LAYERS or x.dim() != 5:
        if plan.recording():
            plan.note(plan.foreign_choice(layer), layer)
        return layer(x)
    stack = x.flatten(0, 1)
    if type(layer) is nn.Conv2d and stack.shape[1] == layer.in_channels and plan.conv_choice(layer, stack):
        if plan.recording():
            spike = spike_conv_ones(stack, layer.weight, layer.stride, layer.padding, layer.dilation, layer.groups)
            plan.note(plan.spike_conv_choice(spike is not None, stack, layer.weight), layer)
        y = stacked_conv2d(stack, layer.weight, layer.bias, layer.stride, layer.padding, layer.dilation, layer.groups)
    elif type(layer) is nn.AvgPool2d and (k := plan.pool_choice(layer, stack)) is not None:
        y = stacked_avg_pool2d(stack, k)
    else:
        if plan.recording() and type(layer) in (nn.MaxPool2d, nn.BatchNorm2d):
            plan.note(plan.sequence_choice(layer), layer)
        y = layer(stack)
    return y.unflatten(0, x.shape[:2])


class Sequential(SpikingModule, nn.Sequential):
    """A chain of layers runnable multi-step (layer by layer over all T) or one step at a time."""

    takes_run = True

    def forward(self, x: torch.Tensor, run: RunOptions = DEFAULT_RUN) -> torch.Tensor:
        return run_layers(list(self), x, run)

    def step(self, x: torch.Tensor, state: list | None = None,
             run: RunOptions = DEFAULT_RUN) -> tuple[torch.Tensor, list]:
        state = [None] * len(self) if state is None else state
        new_state = []
        for layer, s in zip(self, state, strict=True):
            x, s = step_module(layer, x, s, run)
            new_state.append(s)
        return x, new_state

    def totals(self, x: torch.Tensor, T: int, run: RunOptions = DEFAULT_RUN) -> torch.Tensor:
        for layer in self:
            x = totals_module(layer, x, T, run)
        return x


class Residual(SpikingModule):
    """``y = body(x) + shortcut(x)`` (identity shortcut when None); put a neuron after it to spike on the sum."""

    takes_run = True

    def __init__(self, body: nn.Module, shortcut: nn.Module | None = None) -> None:
        super().__init__()
        self.body = body
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor, run: RunOptions = DEFAULT_RUN) -> torch.Tensor:
        y = run_module(self.body, x, run)
        return y + (x if self.shortcut is None else run_module(self.shortcut, x, run))

    def step(self, x: torch.Tensor, state: tuple | None = None,
             run: RunOptions = DEFAULT_RUN) -> tuple[torch.Tensor, tuple]:
        body_state, short_state = (None, None) if state is None else state
        y, body_state = step_module(self.body, x, body_state, run)
        if self.shortcut is None:
            return y + x, (body_state, None)
        s, short_state = step_module(self.shortcut, x, short_state, run)
        return y + s, (body_state, short_state)

    def totals(self, x: torch.Tensor, T: int, run: RunOptions = DEFAULT_RUN) -> torch.Tensor:
        y = totals_module(self.body, x, T, run)
        return y + (x if self.shortcut is None else totals_module(self.shortcut, x, T, run))
