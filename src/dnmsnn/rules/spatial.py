"""Bondarev's spatial backpropagation (Bondarev, eqs. 7-13).

At every step k the output error is propagated through the layers *within step k only*:

    Delta^M[k] = dL_k / dnet^M[k]                                   (eq. 9 / eq. 12)
    Delta^m[k] = f'(v^m[k] - s) (W^{m+1})^T Delta^{m+1}[k]          (eq. 8, f' = exp(-|v - s|), eq. 13)
    dW^m      += Delta^m[k] (b^{m-1}[k])^T                          (eq. 7, summed or applied per step)

No gradient passes through v[k-1] (neither the leak nor the reset): the network runs with
``net.run(..., temporal_grad=False)``, in which each neuron detaches its previous state.

Per-step losses L_k on the output at step k, out[k] (the accumulated potential v^M[k] for an
Integrator output; the running spike count for a spiking output):

* ``loss="ce"``: softmax cross-entropy of out[k] (eqs. 10-12: Delta^M = P - y), times
  ``step_scale`` = 1 (``"none"``) or 1/k (``"1/k"``; the paper does not say which it used);
* ``loss="mse"``: eq. 9 literally, L_k = 1/2 ||y - out[k]/k||^2, so Delta^M[k] = -e[k]/k with
  e[k] = y - out[k]/k (the output read as a rate).

Modes: ``online=False`` sums the per-step gradients in one backward over the whole sequence;
``online=True`` runs one step at a time and calls backward at every step, never holding more than
one step's graph (memory O(1) in T). With ``update="batch"`` the gradients equal the offline ones;
``update="step"`` applies the optimizer at every step k, eq. 7 literally (the per-step Adam update
is our extension: the paper writes eq. 7 as plain SGD). The mini-batch mean over samples is kept.
"""
from __future__ import annotations

from typing import Any

import torch

from .._checks import check_choice
from ..errors import InputError
from ..network import Network, read_out
from .base import AuxLoss, LearningRule, PendingBackward, check_batch, no_sequence, task_loss
from .registry import register_rule

STEP_SCALES = ("none", "1/k")
UPDATES = ("batch", "step")


def detach_state(state: Any) -> Any:
    """The same nested state (tuples, lists, NamedTuples of tensors) cut from its graph."""
    if isinstance(state, torch.Tensor):
        return state.detach()
    if isinstance(state, tuple) and hasattr(state, "_fields"):
        return type(state)(*(detach_state(s) for s in state))
    if isinstance(state, (list, tuple)):
        return type(state)(detach_state(s) for s in state)
    return state


def running_readout(trace: torch.Tensor, readout: str) -> torch.Tensor:
    """out[k] for every k (shape [T, B, C]) with the gradient of out[k] reaching trace[k] only."""
    if readout == "final":
        return trace
    total = trace + (torch.cumsum(trace, 0) - trace).detach()
    if readout == "sum":
        return total
    steps = torch.arange(1, trace.shape[0] + 1, dtype=trace.dtype, device=trace.device)
    return total / steps.view(-1, *([1] * (trace.dim() - 1)))


@register_rule("spatial")
class Spatial(LearningRule):
    """Per-step spatial backpropagation; offline (summed) or online (O(1) memory in T)."""

    def __init__(self, loss: str = "ce", online: bool = False, update: str = "batch", step_scale: str = "none") -> None:
        super().__init__(loss)
        self.online = bool(online)
        self.update = check_choice(update, "update", UPDATES)
        self.step_scale = check_choice(step_scale, "step_scale", STEP_SCALES)
        if self.update == "step" and not self.online:
            raise InputError("update='step' (an optimizer step at every time step) needs online=True")

    @property
    def steps_optimizer(self) -> bool:
        """True when the rule applies the optimizer itself (online, update='step')."""
        return self.update == "step"

    def step_loss(self, out_k: torch.Tensor, targets: torch.Tensor, k: int, aux_loss: AuxLoss | None) -> torch.Tensor:
        """L_k for the output at (1-based) step k, including the optional auxiliary term."""
        if self.loss == "mse":
            loss = task_loss(out_k / k, targets, "mse")
        else:
            loss = task_loss(out_k, targets, "ce") * (1.0 / k if self.step_scale == "1/k" else 1.0)
        if aux_loss is not None:
            loss = loss + aux_loss(out_k) * (1.0 / k if self.step_scale == "1/k" else 1.0)
        return loss

    def loss_backward(
        self,
        model: Network,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        aux_loss: AuxLoss | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.online:
            check_batch(model, inputs, targets)
            return self._online(model, inputs, targets, aux_loss)
        return super().loss_backward(model, inputs, targets, aux_loss)

    def forward_pass(self, model: Network, inputs: torch.Tensor, targets: torch.Tensor,
                     sequence: bool = False) -> PendingBackward | None:
        """Offline only: the online rule calls backward (and may step the optimizer) at every step. No output
        sequence: the per-step losses already compare each step's running output with the peers' final one."""
        no_sequence(self, sequence)
        if self.online:
            return None
        check_batch(model, inputs, targets)
        trace = model.run(inputs, temporal_grad=False).output
        outs = running_readout(trace, model.readout)
        logits = read_out(trace.detach(), model.readout)

        def finish(aux_loss: AuxLoss | None) -> tuple[torch.Tensor, torch.Tensor]:
            total = sum(self.step_loss(outs[k], targets, k + 1, aux_loss) for k in range(outs.shape[0]))
            total.backward()
            return total.detach(), logits

        return PendingBackward(logits, finish)

    def _online(self, model: Network, inputs: torch.Tensor, targets: torch.Tensor,
                aux_loss: AuxLoss | None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.update == "step" and self.optimizer is None:
            raise InputError("the spatial rule with update='step' needs bind_optimizer(optimizer) first")
        state, running, total, T = None, None, 0.0, inputs.shape[0]
        for k in range(T):
            result = model.run(inputs[k], "step", state=state, temporal_grad=False)
            y, state = result.output, result.state
            running = y if running is None or model.readout == "final" else running.detach() + y
            out_k = running / (k + 1) if model.readout == "mean" else running
            loss = self.step_loss(out_k, targets, k + 1, aux_loss)
            loss.backward()
            total += float(loss.detach())
            if self.update == "step":
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
            state = detach_state(state)
        logits = running.detach() if model.readout != "mean" else running.detach() / T
        return torch.tensor(total), logits

    def __repr__(self) -> str:
        return (f"Spatial(loss={self.loss!r}, online={self.online}, update={self.update!r}, "
                f"step_scale={self.step_scale!r})")
