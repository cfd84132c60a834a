"""A fused multi-step LIF / IF layer: one autograd node for the whole ``[T, B, ...]`` recurrence.

Forward runs the same arithmetic as :func:`~dnmsnn.functional.neuron.neuron_step` (identical values)
without building a graph, and saves only the pre-reset potentials H (float); the spikes are
recomputed from H in the backward (``S = H >= threshold``, or ``>`` when strict). Backward is the
chain rule of the recurrence written out, from k = T-1 down to 0:

    sg[k]    = f'(H[k] - threshold)                                 (surrogate, recomputed)
    dV/dH[k] = (1 - S[k]) + (v_reset - H[k]) sg[k]                  (reset "zero")
             = 1 - threshold sg[k]                                  (reset "subtract")
               (the sg term is dropped when detach_reset)
    gH[k]    = gS[k] sg[k] + gV[k] dV/dH[k]
    gx[k]    = gH[k] * dH/dx          (1, or 1/tau for the tau form)
    gV[k-1]  = gH[k] * dH/dV          (beta, 1 - 1/tau, or 1 for IF; 0 without temporal gradient)

A learnable threshold theta gets (summed over the batch and broadcast dims to its own shape)

    dL/dtheta = sum_k [ -gS[k] sg[k] + gV[k] dV[k]/dtheta ],
    dV/dtheta = -(v_reset - H[k]) sg[k]          (reset "zero"; 0 when detach_reset)
              = -S[k] + theta sg[k]              (reset "subtract"; -S[k] when detach_reset)

Two backends compute this:

* ``"cpp"``: ``lif_kernel.cpp``, one pass over ``[T, N]`` each way (parallel over neurons), compiled
  on first use (:mod:`dnmsnn.functional.cpp`); CPU float32/float64 and the built-in surrogates;
* ``"python"``: a loop over T of PyTorch element-wise ops (any device, dtype and surrogate).

``"auto"`` (default) takes the C++ kernel whenever it applies and is available. Both give the
reference path's forward bitwise and its gradients to float rounding (tests/test_fused.py). Without
gradients (inference, ``torch.no_grad``) no node is built and H is only kept when recorded.
"""
from __future__ import annotations

import contextlib

import torch
from torch.autograd.function import once_differentiable

from .. import plan, settings
from .._checks import check_choice
from ..errors import InputError
from . import cpp
from .buffers import POOL
from .neuron import NeuronParameters, charge
from .spike_matmul import count_ones, spike_linear_rows, spike_weight_grad
from .surrogate import ATan, Exp, FastSigmoid, Rect, Sigmoid, Triangle

BACKENDS = ("auto", "cpp", "python")
_SETTINGS_BACKEND = {"auto": "auto", "cpp": "cpu-kernels", "python": "torch"}  # fused_backend's names
# codes of lif_kernel.cpp (enum Surr); a user-defined Surrogate subclass runs the PyTorch loop
_SURROGATE_CODES = {Exp: 0, Sigmoid: 1, ATan: 2, Triangle: 3, Rect: 4, FastSigmoid: 5}
_FORM_BETA, _FORM_BETA_RESET, _FORM_TAU, _FORM_IF = 0, 1, 2, 3


def fused_backend(name: str) -> contextlib.AbstractContextManager[object]:
    """Within the block, the fused neuron node uses backend ``name``: "auto", "cpp" or "python" -- the
    settings' ``auto``, ``cpu-kernels`` and ``torch`` backends (:mod:`dnmsnn.settings`; ``python`` = ``torch``
    also keeps every other piece of C++ code out).

    "cpp" raises InputError where the C++ kernel does not apply or is unavailable (instead of falling back).
    """
    return settings.use(backend=_SETTINGS_BACKEND[check_choice(name, "fused backend", BACKENDS)])


def fast_path_info() -> dict[str, str]:
    """The backend in force (:mod:`dnmsnn.settings`), which implementation the fused neuron node runs under it
    here ("cpp", "python", or "none" for the step-by-step reference loop), why the C++ kernel is not used if it
    is not, and which product runs on 0/1 inputs (the spike kernels' verdict for this machine)."""
    from .spike_matmul import explain_choice

    s = settings.current()
    why = cpp.status()
    node = "none" if s.backend == "reference" else "cpp" if why == "ok" and s.cpp else "python"
    return {"backend": s.backend, "fused_backend": node, "cpp_kernel": why, "spike_kernels": explain_choice()}


def charge_slopes(p: NeuronParameters) -> tuple[float, float]:
    """(dH/dV, dH/dx) of the charge equation."""
    if p.beta is not None:
        return p.beta, 1.0
    if p.tau is not None:
        return 1.0 - 1.0 / p.tau, 1.0 / p.tau
    return 1.0, 1.0


def _kernel(x: torch.Tensor, p: NeuronParameters):
    """The C++ module when :func:`dnmsnn.plan.cpp_neuron_reason` finds no reason against it, else None (or, with
    the ``cpu-kernels`` backend, an InputError giving the reason)."""
    why = plan.cpp_neuron_reason(x, p)
    if why is None:
        return cpp.load()
    if settings.current().backend == "cpu-kernels":
        raise InputError(f"{why} (backend 'cpu-kernels' does not fall back); use the backend 'auto' or 'torch'")
    return None


def _form(p: NeuronParameters) -> tuple[int, float, float]:
    if p.beta is not None:
        return (_FORM_BETA if p.v_reset == 0.0 else _FORM_BETA_RESET), p.beta, 1.0
    if p.tau is not None:
        return _FORM_TAU, 1.0, p.tau
    return _FORM_IF, 1.0, 1.0


def _kernel_threshold(thr: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The threshold as the kernel takes it: 1 value, or one per neuron of a step (broadcast to x[0])."""
    t = thr.detach().to(x.dtype)
    return t.reshape(1) if t.numel() == 1 else t.expand(x.shape[1:]).contiguous().view(-1)


def _forward(x: torch.Tensor, thr: torch.Tensor, p: NeuronParameters, want_h: bool, spikes_u8: bool = False):
    """(spikes, H or None) of the recurrence, no graph; spikes as x's dtype or as uint8 0/1. ``thr`` is detached."""
    spikes = POOL.empty(x.shape, torch.uint8 if spikes_u8 else x.dtype, x.device)
    h_seq = POOL.empty(x.shape, x.dtype, x.device) if want_h else None
    mod = _kernel(x, p)
    if mod is not None:
        form, beta, tau = _form(p)
        T = x.shape[0]
        mod.lif_forward(x.contiguous().view(T, -1), _kernel_threshold(thr, x), form, beta, tau, p.v_reset,
                        p.reset == "zero", p.strict, spikes.view(T, -1), None if h_seq is None else h_seq.view(T, -1))
        return spikes, h_seq
    s = torch.empty(x.shape[1:], dtype=torch.bool, device=x.device)
    v = torch.full_like(x[0], p.v_reset)
    for k in range(x.shape[0]):
        h = charge(v, x[k], p)
        if h_seq is not None:
            h_seq[k] = h
        torch.gt(h, thr, out=s) if p.strict else torch.ge(h, thr, out=s)
        spikes[k] = s
        v = h.masked_fill_(s, p.v_reset) if p.reset == "zero" else h.sub_(s.to(h.dtype).mul_(thr))
    return spikes, h_seq


class NeuronSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, thr: torch.Tensor, p: NeuronParameters, temporal: bool):  # type: ignore[override]
        p = p._replace(threshold=thr.detach())
        s_seq, h_seq = _forward(x, p.threshold, p, want_h=True)
        ctx.save_for_backward(h_seq)
        ctx.p, ctx.temporal, ctx.thr_shape = p, temporal, thr.shape
        ctx.mark_non_differentiable(h_seq)
        ctx.set_materialize_grads(False)  # no [T, B, ...] zero tensor for H's (never used) gradient
        return s_seq, h_seq

    @staticmethod
    def backward(ctx, grad_s: torch.Tensor | None, _grad_h: None):  # type: ignore[override]
        (h_seq,) = ctx.saved_tensors
        if grad_s is None:
            grad_s = torch.zeros_like(h_seq)
        want_thr = ctx.needs_input_grad[1]
        grad_x, g_thr = _backward(grad_s, h_seq, ctx.p, ctx.temporal, want_thr)
        if want_thr:
            g_thr = _reduce_to(g_thr, ctx.thr_shape)
        return grad_x, g_thr, None, None


def _backward(grad_s: torch.Tensor, h_seq: torch.Tensor, p: NeuronParameters, temporal: bool, want_thr: bool,
              in_place: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(dL/dx, dL/dthreshold per neuron of a step or None) from dL/dspikes; ``in_place``: write dL/dx over
    grad_s (only for a grad_s the caller owns)."""
    mod = _kernel(h_seq, p)
    if mod is not None:
        return _backward_cpp(mod, grad_s, h_seq, p, temporal, want_thr, in_place)
    return _backward_python(grad_s, h_seq, p, temporal, want_thr, grad_s if in_place else None)


def _backward_cpp(mod, grad_s: torch.Tensor, h_seq: torch.Tensor, p: NeuronParameters, temporal: bool,
                  want_thr: bool, in_place: bool = False, pool_k: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The kernel's backward; with ``pool_k`` = k, grad_s is dL/d(k x k average pooling of the spikes) and h_seq
    [T, B, Hgt, Wid, C] (the kernel spreads ``grad / k^2`` over each window itself)."""
    a, c = charge_slopes(p)
    form, beta, tau = _form(p)
    T = h_seq.shape[0]
    surrogate = p.surrogate
    g = grad_s.contiguous()
    pool = list(h_seq.shape[2:]) + [pool_k] if pool_k else []
    gx = g if in_place and g is grad_s and not pool_k else POOL.empty(h_seq.shape, h_seq.dtype, h_seq.device)
    g_thr = mod.lif_backward(
        g.view(T, -1), h_seq.view(T, -1), _kernel_threshold(p.threshold, h_seq), form, beta, tau,
        p.v_reset, p.reset == "zero", p.strict, p.detach_reset, _SURROGATE_CODES[type(surrogate)],
        float(getattr(surrogate, surrogate.param)), temporal, a, c, want_thr, gx.view(T, -1), pool)
    return gx, (g_thr.view(h_seq.shape[1:]) if want_thr else None)


def _backward_python(grad_s: torch.Tensor, h_seq: torch.Tensor, p: NeuronParameters, temporal: bool,
                     want_thr: bool, out: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    a, c = charge_slopes(p)
    thr = p.threshold
    grad_x = POOL.empty(h_seq.shape, h_seq.dtype, h_seq.device) if out is None else out  # step k read, then written
    g_thr = torch.zeros_like(h_seq[0]) if want_thr else None
    g_v = None  # dL/dV[k], arriving from step k+1
    for k in range(h_seq.shape[0] - 1, -1, -1):
        h = h_seq[k]
        sg = p.surrogate.derivative(h - thr)
        g_h = grad_s[k] * sg
        if want_thr:
            g_thr = g_thr - g_h
        if g_v is not None:
            s = (h > thr) if p.strict else (h >= thr)
            if p.reset == "zero":
                dv_dh = (~s).to(h.dtype)
                if not p.detach_reset:
                    dv_dh = dv_dh + (p.v_reset - h) * sg
                    if want_thr:
                        g_thr = g_thr - g_v * (p.v_reset - h) * sg
                g_h = g_h + g_v * dv_dh
            else:
                g_h = g_h + (g_v * (1.0 - thr * sg) if not p.detach_reset else g_v)
                if want_thr:
                    s_f = s.to(h.dtype)
                    g_thr = g_thr + g_v * (thr * sg - s_f if not p.detach_reset else -s_f)
        grad_x[k] = g_h if c == 1.0 else g_h * c
        g_v = g_h * a if temporal else None
    return grad_x, g_thr


class NeuronLinearSequence(torch.autograd.Function):
    """A spiking layer and the Linear layer it feeds, as one node: x [T, B, N] -> W S + b [T, B, M].

    Same values as the two nodes in a row (NeuronSequence, then F.linear), less memory: the spikes are
    kept as uint8 0/1 (1 byte, exact) instead of float, turned into float only ~2 MB at a time for the
    matmuls, and the backward writes dL/dx over dL/dS, a buffer only this node ever sees.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, thr: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,  # type: ignore[override]
                p: NeuronParameters, temporal: bool):
        p = p._replace(threshold=thr.detach())
        s_u8, h_seq = _forward(x, p.threshold, p, want_h=True, spikes_u8=True)
        ctx.save_for_backward(h_seq, s_u8, weight)
        ctx.p, ctx.temporal, ctx.thr_shape, ctx.has_bias = p, temporal, thr.shape, bias is not None
        y, ctx.ones = _linear_rows(s_u8, weight, bias, x.dtype)
        return y

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor):  # type: ignore[override]
        h_seq, s_u8, weight = ctx.saved_tensors
        want_x, want_thr, want_w, want_b = ctx.needs_input_grad[:4]
        g2 = grad_y.reshape(-1, grad_y.shape[-1])
        gw = _weight_grad(g2, s_u8.view(-1, s_u8.shape[-1]), ctx.ones) if want_w else None
        gb = g2.sum(0) if ctx.has_bias and want_b else None
        gx = g_thr = None
        if want_x or want_thr:
            shape = (*grad_y.shape[:-1], weight.shape[1])
            out = None if torch.is_grad_enabled() else POOL.empty(shape, grad_y.dtype, grad_y.device)
            grad_s = torch.matmul(grad_y, weight, out=out)  # a new tensor, only ours: overwritten with dL/dx
            gx, g_thr = _backward(grad_s, h_seq, ctx.p, ctx.temporal, want_thr, in_place=True)
            if want_thr:
                g_thr = _reduce_to(g_thr, ctx.thr_shape)
        return gx, g_thr, gw, gb, None, None


class NeuronPoolSequence(torch.autograd.Function):
    """A spiking layer on channels-last steps and the k x k average pooling (stride k) after it, as one node:
    x [T, B, Hgt, Wid, C] -> pooled spikes [T, B, Hgt/k, Wid/k, C].

    Same values as the two nodes in a row (the spikes of :func:`_forward`, then ``F.avg_pool2d``: sums of
    0/1 in window order, exact), without the [T, B, Hgt, Wid, C] spike tensor: the C++ kernel pools each
    band of k image rows while its spikes are in cache. The backward is the neuron's kernel backward fed
    ``dL/dpooled / k^2`` for every neuron of a window (the pooling's derivative, copied into each block of
    neurons one pixel's channels at a time: no [T, B, Hgt, Wid, C] dL/dspikes tensor either).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, thr: torch.Tensor, p: NeuronParameters, temporal: bool,  # type: ignore[override]
                k: int, who: str) -> torch.Tensor:
        p = p._replace(threshold=thr.detach())
        pooled, h_seq = _forward_pooled(x, p, k, want_h=True, who=who)
        ctx.save_for_backward(h_seq)
        ctx.p, ctx.temporal, ctx.k, ctx.thr_shape = p, temporal, k, thr.shape
        return pooled

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_pooled: torch.Tensor):  # type: ignore[override]
        (h_seq,) = ctx.saved_tensors
        want_thr = ctx.needs_input_grad[1]
        gx, g_thr = _backward_cpp(_kernel(h_seq, ctx.p), grad_pooled, h_seq, ctx.p, ctx.temporal, want_thr,
                                  pool_k=ctx.k)
        if want_thr:
            g_thr = _reduce_to(g_thr, ctx.thr_shape)
        return gx, g_thr, None, None, None, None


def _forward_pooled(x: torch.Tensor, p: NeuronParameters, k: int, want_h: bool,
                    who: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(pooled spikes [T, B, Hgt/k, Wid/k, C], H [T, B, Hgt, Wid, C] or None) of x [T, B, Hgt, Wid, C], no graph.

    The kernel checks x for NaN / Inf as it reads it (no separate pass over x, which measured a noticeable
    share of an inference); ``who`` names the layer in the error."""
    T, B, hgt, wid, c = x.shape
    pooled = POOL.empty((T, B, hgt // k, wid // k, c), x.dtype, x.device)
    h_seq = POOL.empty(x.shape, x.dtype, x.device) if want_h else None
    form, beta, tau = _form(p)
    nonfinite = _kernel(x, p).lif_pool_forward(
        x.contiguous().view(T, -1), _kernel_threshold(p.threshold, x), form, beta, tau, p.v_reset, p.reset == "zero",
        p.strict, B, hgt, wid, c, k, pooled.view(T, -1), None if h_seq is None else h_seq.view(T, -1))
    if nonfinite:
        raise InputError(f"{who} received NaN or Inf values; clean or clip the input first")
    return pooled, h_seq


# spikes turned into float per matmul: 2 MB of float32 (a [T*B, N] layer in 1-3 chunks at batch 64, T <= 80)
_CHUNK_VALUES = 1 << 19


def _chunks(s2: torch.Tensor, dtype: torch.dtype):
    """(row slice, float copy of s2's rows) for chunks of ~_CHUNK_VALUES values of the uint8 rows s2 [R, N];
    one float buffer is reused (uint8 -> float copies are vectorised, bool -> float ones are not)."""
    rows, width = s2.shape
    step = min(rows, max(256, _CHUNK_VALUES // max(1, width)))
    buf = POOL.empty((step, width), dtype, s2.device)
    for r in range(0, rows, step):
        n = min(step, rows - r)
        yield slice(r, r + n), buf[:n].copy_(s2[r:r + n])


def _linear_rows(s_u8: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                 dtype: torch.dtype) -> tuple[torch.Tensor, int | None]:
    """(F.linear(s_u8.to(dtype), weight, bias), number of spikes or None) over the flattened rows: through the
    spike kernels (:mod:`~dnmsnn.functional.spike_matmul`) where they apply, else a chunk of rows at a time."""
    s2 = s_u8.reshape(-1, s_u8.shape[-1])
    y = POOL.empty((s2.shape[0], weight.shape[0]), dtype, s_u8.device)
    ones = count_ones(s2, weight) if dtype == torch.float32 else None
    if ones is not None:
        spike_linear_rows(s2, ones, weight, bias, y)
    else:
        w_t = weight.t()
        for rows, sf in _chunks(s2, dtype):
            if bias is None:
                torch.mm(sf, w_t, out=y[rows])
            else:
                torch.addmm(bias, sf, w_t, out=y[rows])
    return y.view(*s_u8.shape[:-1], weight.shape[0]), ones


def _weight_grad(g: torch.Tensor, s_u8: torch.Tensor, ones: int | None) -> torch.Tensor:
    """g^T s for rows g [R, out] and uint8 0/1 rows s [R, in]: the spike kernel, or a chunk of rows at a time."""
    gw = spike_weight_grad(g, s_u8, ones)
    if gw is not None:
        return gw
    for rows, sf in _chunks(s_u8, g.dtype):
        gw = g[rows].t().mm(sf) if gw is None else gw.addmm_(g[rows].t(), sf)
    return gw if gw is not None else g.new_zeros(g.shape[1], s_u8.shape[1])


def _reduce_to(grad: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Sum a gradient of one step's shape [B, ...] down to a (broadcast) threshold shape."""
    if len(shape) == 0:
        return grad.sum()
    lead = grad.dim() - len(shape)
    grad = grad.sum(tuple(range(lead))) if lead else grad
    keep = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return grad.sum(keep, keepdim=True) if keep else grad


def _channels_last_steps(x: torch.Tensor) -> bool:
    """x [T, B, C, H, W] laid out as [T, B, H, W, C] (channels-last steps, e.g. from a stacked Conv2d)."""
    return x.dim() == 5 and not x.is_contiguous() and x.permute(0, 1, 3, 4, 2).is_contiguous()


def fused_neuron_sequence(x: torch.Tensor, p: NeuronParameters, temporal: bool,
                          record: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(spikes [T, B, ...], pre-reset potentials H [T, B, ...]) through the fused autograd node.

    Without gradients (grad mode off, or neither x nor the threshold requiring one) no node is built and
    H is returned only if ``record`` (else None).
    """
    thr = p.threshold if isinstance(p.threshold, torch.Tensor) else torch.tensor(p.threshold, dtype=x.dtype)
    if thr.numel() == 1 and _channels_last_steps(x):  # run on [T, B, H, W, C]: no copy, output channels-last
        s, h = fused_neuron_sequence(x.permute(0, 1, 3, 4, 2), p, temporal, record)
        return s.permute(0, 1, 4, 2, 3), (None if h is None else h.permute(0, 1, 4, 2, 3))
    if not (torch.is_grad_enabled() and (x.requires_grad or thr.requires_grad)):
        return _forward(x, thr.detach(), p, want_h=record)
    return NeuronSequence.apply(x, thr, p, temporal)


def neuron_pool_fusable(x: torch.Tensor, p: NeuronParameters, k: int) -> bool:
    """Whether :func:`fused_neuron_pool` runs for x [T, B, C, Hgt, Wid]: channels-last steps, Hgt and Wid
    multiples of k, one threshold value, the C++ kernel available for x and p."""
    thr = p.threshold
    if (isinstance(thr, torch.Tensor) and thr.numel() != 1) or not _channels_last_steps(x) or x.shape[3] % k \
            or x.shape[4] % k:
        return False
    return _kernel(x, p) is not None


def fused_neuron_pool(x: torch.Tensor, p: NeuronParameters, temporal: bool, k: int,
                      who: str = "neuron_pool_sequence") -> torch.Tensor:
    """The k x k average pooling (stride k) of the spikes of layer p driven by x [T, B, C, Hgt, Wid] (see
    :func:`neuron_pool_fusable`), through :class:`NeuronPoolSequence`, or its forward alone without gradients.
    NaN or Inf in x: :class:`~dnmsnn.InputError` naming ``who``."""
    thr = p.threshold if isinstance(p.threshold, torch.Tensor) else torch.tensor(p.threshold, dtype=x.dtype)
    xp = x.permute(0, 1, 3, 4, 2)
    if torch.is_grad_enabled() and (x.requires_grad or thr.requires_grad):
        pooled = NeuronPoolSequence.apply(xp, thr, p, temporal, k, who)
    else:
        pooled, _ = _forward_pooled(xp, p._replace(threshold=thr.detach()), k, want_h=False, who=who)
    return pooled.permute(0, 1, 4, 2, 3)


def fused_neuron_linear(x: torch.Tensor, p: NeuronParameters, temporal: bool, weight: torch.Tensor,
                        bias: torch.Tensor | None) -> torch.Tensor:
    """``F.linear(spikes, weight, bias)`` of the spiking layer p driven by x, through one node
    (:class:`NeuronLinearSequence`); the spikes themselves are not returned."""
    thr = p.threshold if isinstance(p.threshold, torch.Tensor) else torch.tensor(p.threshold, dtype=x.dtype)
    return NeuronLinearSequence.apply(x, thr, weight, bias, p, temporal)
