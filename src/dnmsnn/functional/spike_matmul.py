"""Linear and convolution layers on 0/1 spike inputs without multiplications (``spike_matmul.cpp``).

A spike is 0 or 1, so ``y = s W^T + b`` is a sum of selected weight rows and the weight gradient
``dW = g^T s`` a sum of selected gradient rows:

    y[r, :]    = b + sum_{j : s[r, j] = 1} W[:, j]
    dW[:, j]   = sum_{r : s[r, j] = 1} g[r, :]

Sparse operands (hidden layers: 5-20 % ones) add only the selected rows; dense 0/1 operands (a
rate-coded input layer, ~50 % ones) use the "four Russians" tables (one table lookup per 4 columns).
The sums run in a fixed order (independent of the thread count), so results are deterministic; they
equal the dense product to float rounding, not bitwise (a different summation order).

A stride-1 convolution of a 0/1 input (:func:`spike_conv_ones`, used by the stacked multi-step
``Conv2d``) looks each input row up through its window of Kw taps: with ``p`` the window's 0/1 pattern,
``tab[ci, ky, p] = sum_{kx in p} W[:, ci, ky, kx]`` is built once per call and

    y[n, :, oy, ox] = b + sum_{ci, ky} tab[ci, ky, p(n, ci, oy + ky - ph, ox)]

(``Ci * Kh`` vector additions per output pixel instead of ``Ci * Kh * Kw`` multiply-adds); its weight
gradient stays oneDNN's.

Used automatically on CPU float32 by :class:`~dnmsnn.layers.Linear` and the multi-step
:class:`~dnmsnn.layers.Conv2d` when their input holds only 0 and 1 (checked by one vectorised pass that
stops at the first other value), and by the fused LIF -> Linear node, unless
:func:`~dnmsnn.functional.reference_path` is active, :func:`spike_matmul` turns it off, or
``DNMSNN_NO_SPIKE_MATMUL=1`` is set. Without the C++ kernels (no compiler) the dense product is used.
Higher-order gradients (``create_graph=True`` through such a layer) need ``spike_matmul(False)``.
"""
from __future__ import annotations

import contextlib
import contextvars
import os

import torch
from torch.autograd.function import once_differentiable

from .._context import setting
from . import cpp

_ENABLED = contextvars.ContextVar("dnmsnn_spike_matmul", default=not os.environ.get("DNMSNN_NO_SPIKE_MATMUL"))
MIN_OUT_FEATURES = 16  # narrower outputs (a 10-class readout): the dense weight gradient is faster
MAX_CONV_KW = 10        # spike convolution: kernel width (2^Kw window patterns per table row)
MAX_CONV_ROWS = 1024    # spike convolution: in_channels x kernel height (table rows summed per output pixel)
MAX_CONV_TABLE_BYTES = 8 << 20  # spike convolution: its pattern table (beyond: oneDNN, the table would not stay cached)


def spike_matmul(enabled: bool = True) -> contextlib.AbstractContextManager[None]:
    """Within the block, 0/1 inputs of Linear layers use (``True``) or do not use the spike kernels."""
    return setting(_ENABLED, bool(enabled))


def spike_matmul_enabled() -> bool:
    """Whether Linear layers may use the spike kernels here (also needs the C++ extension)."""
    return _ENABLED.get()


def _kernels(*tensors: torch.Tensor):
    """The extension module when the spike kernels apply to these tensors (CPU float32 / uint8), else None."""
    if not _ENABLED.get():
        return None
    for t in tensors:
        if t.device.type != "cpu" or t.dtype not in (torch.float32, torch.uint8):
            return None
    return cpp.load()


def count_ones(s2: torch.Tensor, weight: torch.Tensor) -> int | None:
    """Number of ones in the 0/1 rows s2 [R, K], or None when the spike kernels do not apply (other values,
    another device or dtype, turned off, no C++ extension)."""
    mod = _kernels(s2, weight)
    if mod is None or weight.dtype != torch.float32 or not s2.is_contiguous():
        return None
    ones = int(mod.spike_count(s2))
    return None if ones < 0 else ones


def spike_conv_ones(x: torch.Tensor, weight: torch.Tensor, stride: tuple, padding: tuple, dilation: tuple,
                    groups: int) -> int | None:
    """Number of ones in the convolution input x ``[N, C, H, W]`` when the spike convolution applies (0/1 values,
    CPU float32, stride 1, dilation 1, one group, numeric padding, kernel width <= 10, ``C * Kh <= 1024``, a table
    ``C * Kh * 2^Kw * Co`` of at most 8 MB, NCHW or channels-last strides, switched on, C++ kernels built), else
    None."""
    if (groups != 1 or tuple(stride) != (1, 1) or tuple(dilation) != (1, 1) or isinstance(padding, str)
            or weight.dim() != 4 or x.dtype != torch.float32 or weight.dtype != torch.float32):
        return None
    co, ci, kh, kw = weight.shape
    table_bytes = ci * kh * (1 << kw) * (-(-co // 16) * 16) * 4  # 2^Kw patterns per row, channels padded to 16
    if kw > MAX_CONV_KW or ci * kh > MAX_CONV_ROWS or table_bytes > MAX_CONV_TABLE_BYTES:
        return None
    mod = _kernels(x, weight)
    if mod is None:
        return None
    flat = x if x.is_contiguous() else x.permute(0, 2, 3, 1)  # the count needs one contiguous pass, in any order
    if not flat.is_contiguous():
        return None
    ones = int(mod.spike_count(flat))
    return None if ones < 0 else ones


def spike_conv2d_into(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: tuple,
                      out: torch.Tensor) -> torch.Tensor:
    """``out`` ``[N, Ho, Wo, Co]`` (contiguous) = the stride-1 ``F.conv2d(x, weight, bias, padding=padding)`` of the 0/1
    input x, channels last (checked by :func:`spike_conv_ones`)."""
    return cpp.load().spike_conv2d(x, weight.detach(), None if bias is None else bias.detach(), int(padding[0]),
                                   int(padding[1]), out)


def spike_linear_rows(s2: torch.Tensor, ones: int, weight: torch.Tensor, bias: torch.Tensor | None,
                      out: torch.Tensor) -> torch.Tensor:
    """``out = s2 W^T + b`` for 0/1 rows s2 [R, K] with ``ones`` ones (from :func:`count_ones`)."""
    return cpp.load().spike_linear(s2, ones, weight.detach(), None if bias is None else bias.detach(), out)


def spike_weight_grad(g2: torch.Tensor, s2: torch.Tensor, ones: int | None) -> torch.Tensor | None:
    """``g2^T s2`` [M, K] for gradient rows g2 [R, M] and 0/1 rows s2, or None where the dense product is
    the better choice (few output features, no kernels, ``ones`` unknown)."""
    if ones is None or g2.shape[1] < MIN_OUT_FEATURES or _kernels(g2, s2) is None or g2.dtype != torch.float32:
        return None
    return cpp.load().spike_weight_grad(g2.contiguous(), s2, ones)


class SpikeInputLinear(torch.autograd.Function):
    """``F.linear(x, W, b)`` for an input x [..., K] holding only 0 and 1 (checked by the caller)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, ones: int):  # type: ignore[override]
        x2 = x.reshape(-1, x.shape[-1])
        out = torch.empty((x2.shape[0], weight.shape[0]), dtype=weight.dtype)
        spike_linear_rows(x2, ones, weight, bias, out)
        ctx.save_for_backward(x2, weight)
        ctx.ones, ctx.has_bias, ctx.x_shape = ones, bias is not None, x.shape
        return out.view(*x.shape[:-1], weight.shape[0])

    @staticmethod
    @once_differentiable  # the kernels have no derivative of their own: higher orders need spike_matmul(False)
    def backward(ctx, grad_y: torch.Tensor):  # type: ignore[override]
        x2, weight = ctx.saved_tensors
        want_x, want_w, want_b = ctx.needs_input_grad[:3]
        g2 = grad_y.reshape(-1, grad_y.shape[-1])
        gx = gw = gb = None
        if want_x:
            gx = g2.mm(weight).view(ctx.x_shape)
        if want_w:
            gw = spike_weight_grad(g2, x2, ctx.ones)
            if gw is None:
                gw = g2.t().mm(x2)
        if want_b and ctx.has_bias:
            gb = g2.sum(0)
        return gx, gw, gb, None


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``F.linear(x, weight, bias)``, through the spike kernels when x holds only 0 and 1 (see module doc)."""
    if x.dim() >= 2 and x.is_contiguous() and x.numel() and not torch.is_autocast_enabled("cpu"):
        ones = count_ones(x.reshape(-1, x.shape[-1]), weight)
        if ones is not None:
            return SpikeInputLinear.apply(x, weight, bias, ones)
    return torch.nn.functional.linear(x, weight, bias)
