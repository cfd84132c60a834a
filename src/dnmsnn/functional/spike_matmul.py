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

Whether these kernels beat the dense products depends on the CPU more than on the layer: on an AMD EPYC
the spike convolution beat oneDNN on LeNet's first layer, on an Intel Xeon with AVX-512 every product we
tried was slower than oneDNN / MKL (the numbers: reports/performance.md, section 0).
So by default ("auto") each kind -- ``linear`` (forward and weight gradient of a Linear on spikes) and
``conv`` -- is used only where this machine measured it faster: :func:`machine_choice` times both on fixed
representative shapes once per machine and kernel build and stores the verdict next to the compiled
kernels (``spike_kernels.json``), so every later process on the machine makes the same choice (the two
differ by float rounding, so runs stay bitwise reproducible). ``dnmsnn kernels`` prints the verdict.

Used on CPU float32 by :class:`~dnmsnn.layers.Linear` and the multi-step :class:`~dnmsnn.layers.Conv2d` when
their input holds only 0 and 1 (checked by one vectorised pass that stops at the first other value), and by
the fused LIF -> Linear node, unless :func:`~dnmsnn.functional.reference_path` is active or the machine's
verdict is "dense". :func:`spike_matmul` (``True``: wherever they apply, ``False``: never, ``None``: the
machine's verdict; the setting ``spike_kernels`` of :mod:`dnmsnn.settings`) and ``DNMSNN_SPIKE_MATMUL=on|off|auto``
(``DNMSNN_NO_SPIKE_MATMUL=1``: off) override it.
Without the C++ kernels (no compiler) the dense product is used. Higher-order gradients
(``create_graph=True`` through such a layer) need ``spike_matmul(False)``.
"""
from __future__ import annotations

import contextlib
import json
import os
import statistics
import threading
import time
from typing import Any

import torch
from torch.autograd.function import once_differentiable

from .. import plan, settings
from . import cpp

KINDS = ("linear", "conv")
VERDICT_FILE = "spike_kernels.json"


_verdict: dict[str, Any] = {}
_verdict_lock = threading.Lock()
MIN_OUT_FEATURES = 16  # narrower outputs (a 10-class readout): the dense weight gradient is faster
MAX_CONV_KW = 10        # spike convolution: kernel width (2^Kw window patterns per table row)
MAX_CONV_ROWS = 1024    # spike convolution: in_channels x kernel height (table rows summed per output pixel)
MAX_CONV_TABLE_BYTES = 8 << 20  # spike convolution: its pattern table (beyond: oneDNN, the table would not stay cached)


def spike_matmul(enabled: bool | None = True) -> contextlib.AbstractContextManager[object]:
    """Within the block, 0/1 inputs of Linear / Conv2d layers use the spike kernels wherever they apply
    (``True``), never (``False``), or where this machine measured them faster (``None``, the default): the
    setting ``spike_kernels`` of :mod:`dnmsnn.settings` (the ``torch`` and ``reference`` backends never use
    them)."""
    return settings.use(spike_kernels=None if enabled is None else bool(enabled))


def spike_matmul_enabled() -> bool:
    """Whether the spike kernels may be used here at all (not switched off, a backend that runs C++ code;
    "auto" counts as on)."""
    s = settings.current()
    return s.cpp and s.spike_kernels is not False


def _kernels(kind: str, *tensors: torch.Tensor):
    """The extension module when the spike kernels of ``kind`` run on these tensors
    (:func:`dnmsnn.plan.spike_kernel_reason` finds no reason against them), else None."""
    return cpp.load() if plan.spike_kernel_reason(kind, *tensors) is None else None


def median_time(fn, repeats: int = 3, warmup: int = 1) -> float:
    """The median wall time of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones (also used by benchmarks/)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _measure(mod) -> dict[str, dict[str, Any]]:
    """Spike kernel against the dense product on fixed shapes, one thread, seeded 0/1 inputs (15 % and 50 %
    ones: a hidden layer and a rate-coded input). linear: 1280 rows, 784 -> 300, forward + weight gradient;
    conv: 640 images, 1 -> 20 channels 5x5 on 28x28 (LeNet's first layer) and 8 -> 16 channels 3x3 padded on
    28x28 (a spiking ResNet's), forward. ``spike`` is True where the kernels' total time is the smaller."""
    gen = torch.Generator().manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        spike_s = dense_s = 0.0
        weight = torch.randn(300, 784, generator=gen)
        grad = torch.randn(1280, 300, generator=gen)
        out = torch.empty(1280, 300)
        for density in (0.15, 0.5):
            s = (torch.rand(1280, 784, generator=gen) < density).float()
            ones = int(mod.spike_count(s))
            spike_s += median_time(lambda s=s, ones=ones: (mod.spike_linear(s, ones, weight, None, out),
                                                            mod.spike_weight_grad(grad, s, ones)))
            dense_s += median_time(lambda s=s: (torch.mm(s, weight.t(), out=out), grad.t().mm(s)))
        linear = {"spike_ms": 1e3 * spike_s, "dense_ms": 1e3 * dense_s}
        spike_s = dense_s = 0.0
        for ci, co, k, pad, density in ((1, 20, 5, 0, 0.5), (8, 16, 3, 1, 0.15)):
            x = (torch.rand(640, ci, 28, 28, generator=gen) < density).float().contiguous(
                memory_format=torch.channels_last)
            w = torch.randn(co, ci, k, k, generator=gen)
            w_last = w.contiguous(memory_format=torch.channels_last)
            o = torch.empty(640, 28 + 2 * pad - k + 1, 28 + 2 * pad - k + 1, co)
            spike_s += median_time(lambda x=x, w=w, pad=pad, o=o: mod.spike_conv2d(x, w, None, pad, pad, o))
            dense_s += median_time(lambda x=x, w_last=w_last, pad=pad: torch.nn.functional.conv2d(
                x, w_last, None, 1, pad))
        conv = {"spike_ms": 1e3 * spike_s, "dense_ms": 1e3 * dense_s}
    finally:
        torch.set_num_threads(threads)
    return {name: {**t, "spike": t["spike_ms"] < t["dense_ms"]} for name, t in (("linear", linear), ("conv", conv))}


def machine_choice() -> dict[str, dict[str, Any]]:
    """This machine's verdict per kind (``{"linear": {"spike": bool, "spike_ms": .., "dense_ms": ..}, "conv":
    ...}``; empty without the C++ kernels): read from ``spike_kernels.json`` next to the compiled kernels, or
    measured once (:func:`_measure`, about a second) and stored there. The first process to store it wins
    (an exclusive hard link); a process that lost the race uses the stored verdict too."""
    if "choice" in _verdict:
        return _verdict["choice"]
    with _verdict_lock:
        if "choice" in _verdict:
            return _verdict["choice"]
        mod = cpp.load()
        choice: dict[str, dict[str, Any]] = {}
        if mod is not None:
            path = cpp.cache_dir() / cpp.module_name() / VERDICT_FILE
            choice = _read_verdict(path)
            if not choice:
                choice = _measure(mod)
                choice = _store_verdict(path, choice)
        _verdict["choice"] = choice
        return choice


def _read_verdict(path) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    ok = isinstance(data, dict) and all(isinstance(data.get(k), dict) and isinstance(data[k].get("spike"), bool)
                                        for k in KINDS)
    return data if ok else {}


def _store_verdict(path, choice: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Store ``choice`` unless another process stored one first; return the verdict stored (or ours, if the
    folder is not writable: then this process alone uses it)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(choice, indent=1) + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    except OSError:
        return choice
    return _read_verdict(path) or choice


def explain_choice() -> str:
    """One line per kind: which product runs on 0/1 inputs here, and the measurement behind it."""
    s = settings.current()
    if not s.cpp:
        return f"spike kernels: off (backend {s.backend!r})"
    if s.spike_kernels is not None:
        return f"spike kernels: {'on wherever they apply' if s.spike_kernels else 'off'} (set explicitly)"
    choice = machine_choice()
    if not choice:
        return f"spike kernels: not available ({cpp.status()}); dense products"
    return "; ".join(f"{k}: {'spike kernels' if v['spike'] else 'dense (oneDNN/MKL)'} ({v['spike_ms']:.1f} ms "
                     f"against {v['dense_ms']:.1f} ms dense, measured once on this machine)"
                     for k, v in choice.items())


def count_ones(s2: torch.Tensor, weight: torch.Tensor) -> int | None:
    """Number of ones in the 0/1 rows s2 [R, K], or None when the spike kernels do not apply (other values,
    another device or dtype, turned off, no C++ extension)."""
    mod = _kernels("linear", s2, weight)
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
    mod = _kernels("conv", x, weight)
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
    if (ones is None or g2.shape[1] < MIN_OUT_FEATURES or _kernels("linear", g2, s2) is None
            or g2.dtype != torch.float32):
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


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
           module: torch.nn.Module | None = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)``, through the spike kernels when x holds only 0 and 1 (see module doc);
    ``module``: the layer to name in :func:`dnmsnn.plan.explain`."""
    ones = None
    if x.dim() >= 2 and x.is_contiguous() and x.numel() and not torch.is_autocast_enabled("cpu"):
        ones = count_ones(x.reshape(-1, x.shape[-1]), weight)
    if plan.recording():
        plan.note(plan.linear_choice(x, weight, ones), *(() if module is None else (module,)))
    if ones is not None:
        return SpikeInputLinear.apply(x, weight, bias, ones)
    return torch.nn.functional.linear(x, weight, bias)
