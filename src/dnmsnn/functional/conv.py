"""Convolution and average pooling of a time-stacked ``[T*B, C, H, W]`` batch, channels-last, in chunks.

A spiking conv layer applies one convolution to all T x B images. Done naively (one ``F.conv2d`` on
the NCHW stack), two things cost time on the CPU: oneDNN's channels-first kernels (slower than its
channels-last ones for the LeNet's layers) and the size of the stack (a wide first layer on T x B images
writes tens of MB, far slower than the same work in chunks that stay in cache); the measurements are in
reports/performance.md.
So here

* the convolution runs on channels-last data, ``chunk_rows`` images at a time (forward and backward:
  ``aten.convolution_backward`` per chunk, weight and bias gradients summed over the chunks in order);
  the output is channels-last, and the neurons and pooling after it keep that layout
  (:func:`~dnmsnn.functional.fused.fused_neuron_sequence` runs on ``[T, B, H, W, C]``);
* average pooling with stride = kernel (Wu et al.'s P2), ``y[n, c, i, j] = sum_{a, b < k} x[n, c, k i + a,
  k j + b] / k^2``, runs ATen's channels-last kernel into a reused buffer (the values of ``F.avg_pool2d``,
  bitwise); its backward writes ``dL/dy / k^2`` into each window in one broadcast copy (ATen's backward
  zero-fills and scatters, which measured slower: reports/performance.md).

A stride-1 convolution whose input holds only 0 and 1 (spikes, a rate-coded image) can run forward as
table lookups instead (:func:`~dnmsnn.functional.spike_matmul.spike_conv_ones`, written straight into the
channels-last output), where this machine measured that faster than oneDNN (it depends on the CPU: see
:mod:`~dnmsnn.functional.spike_matmul`); its backward is the same oneDNN one.

Convolution values equal ``F.conv2d``'s to float rounding (oneDNN may pick another algorithm per
layout and batch size; the weight gradient is summed chunk by chunk). Used by
:class:`~dnmsnn.layers.Conv2d` and :class:`~dnmsnn.layers.AvgPool2d` in multi-step mode on the CPU,
unless :func:`stacked_conv` (False), :func:`~dnmsnn.functional.reference_path` or
``DNMSNN_NO_STACKED_CONV=1`` turns it off (then one ATen call on the stack, the layout as given).
Higher-order gradients (``create_graph=True`` through these layers) need ``stacked_conv(False)``.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from .. import plan, settings
from .buffers import POOL
from .spike_matmul import spike_conv2d_into, spike_conv_ones

CHUNK_OUTPUT_BYTES = 2 << 20  # images per chunk: as many as give ~2 MB of output (at least one)


def stacked_conv(enabled: bool = True) -> contextlib.AbstractContextManager[object]:
    """Within the block, multi-step Conv2d / AvgPool2d use (``True``) or do not use the chunked channels-last path
    (the setting ``stacked_conv`` of :mod:`dnmsnn.settings`)."""
    return settings.use(stacked_conv=bool(enabled))


def stacked_conv_applies(x: torch.Tensor) -> bool:
    """Whether the chunked channels-last path runs for this ``[N, C, H, W]`` input: CPU float32/64, switched on,
    not inside :func:`~dnmsnn.functional.reference_path`, no autocast (:func:`dnmsnn.plan.stacked_reason`)."""
    return plan.stacked_reason(x) is None


def chunk_rows(per_image_output: int, element_size: int) -> int:
    """Images per chunk for an output of ``per_image_output`` values per image."""
    return max(1, CHUNK_OUTPUT_BYTES // max(1, per_image_output * element_size))


def channels_last_empty(shape: tuple[int, int, int, int], like: torch.Tensor) -> torch.Tensor:
    """An uninitialised channels-last ``[N, C, H, W]`` tensor (pooled storage: ``[N, H, W, C]`` permuted)."""
    n, c, h, w = shape
    return POOL.empty((n, h, w, c), like.dtype, like.device).permute(0, 3, 1, 2)


def to_channels_last(x: torch.Tensor) -> torch.Tensor:
    """x with channels-last strides (a view when it has them, else a copy)."""
    if x.permute(0, 2, 3, 1).is_contiguous():
        return x
    out = channels_last_empty(tuple(x.shape), x)
    return out.copy_(x)


def _out_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


class StackedConv2d(torch.autograd.Function):
    """``F.conv2d(x, weight, bias, stride, padding, dilation, groups)`` in channels-last chunks of images."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,  # type: ignore[override]
                stride: tuple, padding: tuple, dilation: tuple, groups: int) -> torch.Tensor:
        x = to_channels_last(x)
        w = weight.contiguous(memory_format=torch.channels_last)
        n, _, h, wd = x.shape
        ho, wo = (_out_size(size, w.shape[2 + i], stride[i], padding[i], dilation[i]) for i, size in enumerate((h, wd)))
        rows = chunk_rows(w.shape[0] * ho * wo, x.element_size())
        out = channels_last_empty((n, w.shape[0], ho, wo), x)
        if spike_conv_ones(x, weight, stride, padding, dilation, groups) is not None:
            spike_conv2d_into(x, weight, bias, padding, out.permute(0, 2, 3, 1))
        else:
            for r in range(0, n, rows):
                out[r:r + rows].copy_(F.conv2d(x[r:r + rows], w, bias, stride, padding, dilation, groups))
        ctx.save_for_backward(x, w)
        ctx.conf = (stride, padding, dilation, groups, rows, None if bias is None else bias.shape)
        return out

    @staticmethod
    @once_differentiable  # higher-order gradients: stacked_conv(False) (ATen's convolution has them)
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        x, w = ctx.saved_tensors
        stride, padding, dilation, groups, rows, bias_shape = ctx.conf
        want = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], bias_shape is not None and ctx.needs_input_grad[2]]
        g = to_channels_last(grad_out)
        gx = channels_last_empty(tuple(x.shape), x) if want[0] else None
        gw = gb = None
        for r in range(0, x.shape[0], rows):
            gxi, gwi, gbi = torch.ops.aten.convolution_backward(
                g[r:r + rows], x[r:r + rows], w, bias_shape, stride, padding, dilation, False, [0, 0], groups, want)
            if want[0]:
                gx[r:r + rows].copy_(gxi)
            if want[1]:
                gw = gwi if gw is None else gw.add_(gwi)
            if want[2]:
                gb = gbi if gb is None else gb.add_(gbi)
        if gw is not None:
            gw = gw.contiguous()
        return gx, gw, gb, None, None, None, None


def stacked_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: tuple,
                   padding: tuple, dilation: tuple, groups: int) -> torch.Tensor:
    """The convolution of every image of the stack x ``[N, C, H, W]``: channels-last output (see module doc)."""
    return StackedConv2d.apply(x, weight, bias, tuple(stride), tuple(padding), tuple(dilation), groups)


def _windows(t: torch.Tensor, k: int, ho: int, wo: int) -> torch.Tensor:
    """The channels-last t [N, C, H, W] cut to k*ho x k*wo, as [N, ho, k, wo, k, C] (a view)."""
    return t.permute(0, 2, 3, 1)[:, :k * ho, :k * wo].unflatten(2, (wo, k)).unflatten(1, (ho, k))


class StackedAvgPool2d(torch.autograd.Function):
    """k x k average pooling with stride k, no padding, floor mode, on channels-last data."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, k: int) -> torch.Tensor:  # type: ignore[override]
        x = to_channels_last(x)
        n, c, h, w = x.shape
        out = channels_last_empty((n, c, h // k, w // k), x)
        torch.ops.aten.avg_pool2d.out(x, [k, k], [k, k], [0, 0], False, True, None, out=out)
        ctx.k, ctx.shape = k, x.shape
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        k, (n, c, h, w) = ctx.k, ctx.shape
        ho, wo = h // k, w // k
        g = grad_out.permute(0, 2, 3, 1) / (k * k)  # [N, ho, wo, C]
        gx = channels_last_empty((n, c, h, w), grad_out)
        if h != k * ho or w != k * wo:
            gx.zero_()  # floor mode: the rows / columns no window covers get no gradient
        _windows(gx, k, ho, wo).copy_(g[:, :, None, :, None].expand(n, ho, k, wo, k, c))
        return gx, None


def stacked_avg_pool2d(x: torch.Tensor, k: int) -> torch.Tensor:
    """``F.avg_pool2d(x, k)`` (stride k, no padding) of the stack x ``[N, C, H, W]``: channels-last output."""
    return StackedAvgPool2d.apply(x, k)
