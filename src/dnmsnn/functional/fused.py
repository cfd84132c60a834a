"""A fused multi-step LIF / IF layer: one autograd node for the whole ``[T, B, ...]`` recurrence.

Forward runs the same arithmetic as :func:`~dnmsnn.functional.neuron.neuron_step` (identical values)
without building a graph, and saves only the pre-reset potentials H (float) and the spikes (bool).
Backward is the chain rule of the recurrence written out, from k = T-1 down to 0:

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
"""
from __future__ import annotations

import torch

from .neuron import NeuronParameters, charge


def charge_slopes(p: NeuronParameters) -> tuple[float, float]:
    """(dH/dV, dH/dx) of the charge equation."""
    if p.beta is not None:
        return p.beta, 1.0
    if p.tau is not None:
        return 1.0 - 1.0 / p.tau, 1.0 / p.tau
    return 1.0, 1.0


class NeuronSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, thr: torch.Tensor, p: NeuronParameters, temporal: bool):  # type: ignore[override]
        p = p._replace(threshold=thr.detach())
        T = x.shape[0]
        h_seq = torch.empty_like(x)
        s_seq = torch.empty(x.shape, dtype=torch.bool, device=x.device)
        v = torch.full_like(x[0], p.v_reset)
        for k in range(T):
            h = charge(v, x[k], p)
            h_seq[k] = h
            s = (h > thr) if p.strict else (h >= thr)
            s_seq[k] = s
            if p.reset == "zero":
                v = h.masked_fill(s, p.v_reset)
            else:
                v = h - thr * s.to(h.dtype)
        ctx.save_for_backward(h_seq, s_seq)
        ctx.p, ctx.temporal, ctx.thr_shape = p, temporal, thr.shape
        ctx.mark_non_differentiable(h_seq)
        return s_seq.to(x.dtype), h_seq

    @staticmethod
    def backward(ctx, grad_s: torch.Tensor, _grad_h: torch.Tensor):  # type: ignore[override]
        h_seq, s_seq = ctx.saved_tensors
        p: NeuronParameters = ctx.p
        a, c = charge_slopes(p)
        thr = p.threshold
        want_thr = ctx.needs_input_grad[1]
        grad_x = torch.empty_like(h_seq)
        g_thr = torch.zeros_like(h_seq[0]) if want_thr else None
        g_v = None  # dL/dV[k], arriving from step k+1
        for k in range(h_seq.shape[0] - 1, -1, -1):
            h = h_seq[k]
            sg = p.surrogate.derivative(h - thr)
            g_h = grad_s[k] * sg
            if want_thr:
                g_thr = g_thr - g_h
            if g_v is not None:
                if p.reset == "zero":
                    dv_dh = (~s_seq[k]).to(h.dtype)
                    if not p.detach_reset:
                        dv_dh = dv_dh + (p.v_reset - h) * sg
                        if want_thr:
                            g_thr = g_thr - g_v * (p.v_reset - h) * sg
                else:
                    dv_dh = 1.0 - thr * sg if not p.detach_reset else torch.ones_like(h)
                    if want_thr:
                        s = s_seq[k].to(h.dtype)
                        g_thr = g_thr + g_v * (thr * sg - s if not p.detach_reset else -s)
                g_h = g_h + g_v * dv_dh
            grad_x[k] = g_h if c == 1.0 else g_h * c
            g_v = g_h * a if ctx.temporal else None
        if want_thr:
            g_thr = _reduce_to(g_thr, ctx.thr_shape)
        return grad_x, g_thr, None, None


def _reduce_to(grad: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Sum a gradient of one step's shape [B, ...] down to a (broadcast) threshold shape."""
    if len(shape) == 0:
        return grad.sum()
    lead = grad.dim() - len(shape)
    grad = grad.sum(tuple(range(lead))) if lead else grad
    keep = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return grad.sum(keep, keepdim=True) if keep else grad


def fused_neuron_sequence(x: torch.Tensor, p: NeuronParameters, temporal: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(spikes [T, B, ...], pre-reset potentials H [T, B, ...]) through the fused autograd node."""
    thr = p.threshold if isinstance(p.threshold, torch.Tensor) else torch.tensor(p.threshold, dtype=x.dtype)
    return NeuronSequence.apply(x, thr, p, temporal)
