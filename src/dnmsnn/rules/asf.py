"""Accumulated Spiking Flow (Wu et al., AAAI 2021; Wu et al.).

Phase 1 runs the T steps without autograd and records, per spiking layer n, ``FI^n = sum_t I^n(t)``
and ``FO^n = sum_t s^n(t)``. Phase 2 backpropagates once through the equivalent network on totals:

    FI^n = W^n FO^{n-1}                                    (eq. 6; FO^0 = input spike counts)
    dFO^n / dFI^n ~= S^n                                   (the ratio FO/FI)
    dL/dFO^n_i = sum_j dL/dFO^{n+1}_j S^{n+1}_j w^{n+1}_{ji}   (eq. 8, read with w^{n+1}: the slides print w^N)
    dL/dw^n_ij = dL/dFO^n_i S^n_i FO^{n-1}_j                 (eq. 9, read without the stray sum over j)
    L = 1/2 || Y - V^N(T) / (T V_th) ||^2                  (eq. 5; V^N(T) = FI^N, the Integrator output)

``slope`` chooses how S is shared (the slides: one ratio per layer, S^n = sum_i FO_i / sum_i FI_i;
whether the sums also run over the batch is not said; ``shared_fi="positive"`` sums FI over the neurons
with net positive input only, another reading, see :func:`asf_slope`). The default is ``"batch"``, the most
literal "shared for the whole layer" (reports/asf_mnist.md compares the modes):

* ``"batch"`` (default): one scalar per layer over the neurons and the whole mini-batch (``momentum`` > 0
  keeps a running average of it across batches);
* ``"sample"``: per layer and per sample, the slides' formula applied to each input;
* ``"neuron"``: per neuron and sample, ``FO_i / FI_i`` (the slides' first form, before sharing).

Our choices (the slides are silent): a ratio whose denominator ``FI <= eps`` (no net positive input,
so FO/FI is meaningless) falls back to ``1 / V_th``, the slope of an IF neuron's rate curve
FO ~= FI / V_th; negative ratios cannot occur elsewhere since FO >= 0. ``mask="silent"`` zeroes S for
neurons that did not fire (FO = 0): with ``slope="neuron"`` that is the gradient of a ReLU rate model, but
a layer that starts silent (LIF with tau = 2 at our initialisation) then never learns. ``mask="inhibited"``
zeroes S only where the net input FI <= eps and gives neurons that received positive input without firing
the slope 1 / V_th (per-neuron mode; the best IF setting on MNIST, where ``silent`` trailed at every
epoch: the numbers are in reports/asf_mnist.md).
Neither wakes a layer that is silent as a whole: the layer after it then gets FI = 0 everywhere, so no
gradient crosses it.
``phase1="step"`` (default) runs phase 1 one step at a time, so
the memory does not depend on T at all; ``phase1="layer"`` runs it layer by layer over all T: no graph is
kept, but the transient activations grow with T -- faster for small fully connected networks, as fast as
``"step"`` for the LeNet (the measurements: benchmarks/results/memory_vs_T_*.md).
"""
from __future__ import annotations

import torch

from .._checks import check_choice
from ..errors import InputError
from ..network import Network
from ..neurons import IF, LIF
from ..sharding import shard_sum
from ..totals import TotalsRecord
from .base import AuxLoss, LearningRule, PendingBackward, check_batch, no_sequence
from .registry import register_rule

SLOPES = ("sample", "batch", "neuron")
SHARED_FI = ("all", "positive")
PHASE1 = ("layer", "step")
MASKS = ("none", "silent", "inhibited")


def asf_slope(fi: torch.Tensor, fo: torch.Tensor, mode: str, fallback: float, eps: float = 1e-6,
              shared_fi: str = "all") -> torch.Tensor:
    """S = FO / FI shared per sample (``sample``), per mini-batch (``batch``) or per neuron.

    A shared ratio sums FI over every neuron (``shared_fi="all"``: the slides' sum_i FI_i) or over the
    neurons with net positive input only (``"positive"``: sum_i FO_i / sum_{i: FI_i > 0} FI_i, another reading
    of the slides; where inhibition outweighs excitation the plain sum is <= 0 although the layer fires).
    Where the denominator <= eps the ratio is meaningless and ``fallback`` is used.
    """
    if mode == "neuron":
        num, den = fo, fi
    else:
        fi = fi.clamp(min=0.0) if shared_fi == "positive" else fi
        if mode == "sample":
            dims = tuple(range(1, fi.dim()))
            num, den = fo.sum(dims, keepdim=True), fi.sum(dims, keepdim=True)
        else:  # shard_sum: in data-parallel training the sums run over the whole global batch, not the rank's part
            num, den = shard_sum(torch.stack([fo.sum(), fi.sum()])).reshape(2, *[1] * fi.dim()).unbind(0)
    ok = den > eps
    return torch.where(ok, num / torch.where(ok, den, torch.ones_like(den)), torch.full_like(den, fallback))


@register_rule("asf")
class ASF(LearningRule):
    """Accumulated Spiking Flow: phase 1 without a graph, one backward through the totals network."""

    def __init__(
        self,
        loss: str = "mse",
        slope: str = "batch",
        phase1: str = "step",
        mask: str = "none",
        momentum: float = 0.0,
        v_th: float | None = None,
        eps: float = 1e-6,
        shared_fi: str = "all",
    ) -> None:
        super().__init__(loss)
        self.slope = check_choice(slope, "slope", SLOPES)
        self.shared_fi = check_choice(shared_fi, "shared_fi", SHARED_FI)
        if shared_fi != "all" and slope == "neuron":
            raise InputError("shared_fi chooses the neurons whose FI a shared slope sums: it needs slope='sample' "
                             "or 'batch'")
        self.phase1 = check_choice(phase1, "phase1", PHASE1)
        self.mask = check_choice(mask, "mask", MASKS)
        if not 0.0 <= momentum < 1.0:
            raise InputError(f"momentum must lie in [0, 1), got {momentum}")
        if momentum and slope != "batch":
            raise InputError("momentum (a running average of S) needs slope='batch', the only per-layer scalar")
        if v_th is not None and v_th <= 0:
            raise InputError(f"v_th must be > 0, got {v_th}")
        self.momentum, self.v_th, self.eps = float(momentum), v_th, float(eps)
        self._running: dict[str, torch.Tensor] = {}
        self.last_totals: TotalsRecord | None = None  # phase 1's record of the last batch (FI, FO, S per layer)

    @staticmethod
    def spiking_layers(model: Network) -> list[tuple[str, LIF | IF]]:
        return [(name, m) for name, m in model.neurons() if isinstance(m, (LIF, IF))]

    def output_scale(self, model: Network, T: int) -> float:
        """T * V_th of eq. 5 (V_th: ``v_th`` or the last spiking layer's mean threshold)."""
        if model.readout != "final":
            return float(T)  # spiking output: spike counts / T are rates
        if self.v_th is not None:
            return T * self.v_th
        layers = self.spiking_layers(model)
        return T * (float(layers[-1][1].threshold.detach().mean()) if layers else 1.0)

    @torch.no_grad()
    def record(self, model: Network, inputs: torch.Tensor) -> TotalsRecord:
        """Phase 1: run the T steps without a graph, neurons accumulating FI and FO into a new record, returned
        and kept as ``self.last_totals``."""
        if self.phase1 == "layer":
            record = model.run(inputs, record_totals=True).totals
        else:
            record, state = TotalsRecord(), None
            for k in range(inputs.shape[0]):
                state = model.run(inputs[k], "step", state=state, record_totals=record).state
        self.last_totals = record
        return record

    def set_slopes(self, model: Network, record: TotalsRecord | None = None) -> TotalsRecord:
        """The slope S of every spiking layer, written into ``record`` (default: the last recorded one)."""
        record = self.last_totals if record is None else record
        if record is None:
            raise InputError("set_slopes needs the totals of a recorded forward (rule.record(model, inputs))")
        for name, layer in self.spiking_layers(model):
            fi, fo = record.fi(layer), record.fo(layer)
            fallback = 1.0 / float(layer.threshold.detach().mean())
            s = asf_slope(fi, fo, self.slope, fallback, self.eps, self.shared_fi)
            if self.momentum:
                prev = self._running.get(name)
                s = s if prev is None else self.momentum * prev + (1.0 - self.momentum) * s
                self._running[name] = s
            if self.mask == "silent":
                s = s * (fo > 0).to(s.dtype)
            elif self.mask == "inhibited":  # ReLU-like: no slope where the net input is <= 0, 1/V_th where a
                if self.slope == "neuron":  # neuron got positive input but stayed below threshold
                    s = torch.where(fo > 0, s, torch.full_like(s, fallback))
                s = s * (fi > self.eps).to(s.dtype)
            record.set_slope(layer, s)
        return record

    @torch.no_grad()
    def objective_logits(self, model: Network, inputs: torch.Tensor) -> torch.Tensor:
        """Phase 2's logits computed multi-step: V^N(T) (readout ``final``) or the output spike counts,
        over :meth:`output_scale` -- the totals network's output equals this total."""
        model.check_input(inputs)
        trace = model.run(inputs).output
        total = trace[-1] if model.readout == "final" else trace.sum(0)
        return total / self.output_scale(model, inputs.shape[0])

    def forward_pass(self, model: Network, inputs: torch.Tensor, targets: torch.Tensor,
                     sequence: bool = False) -> PendingBackward:
        no_sequence(self, sequence)  # phase 2 runs on totals: there is no output sequence to train
        check_batch(model, inputs, targets)
        T = inputs.shape[0]
        record = self.set_slopes(model, self.record(model, inputs))
        out = model.run(inputs.sum(0), "totals", totals=record, T=T).output  # phase 2: V^N(T) = FI^N
        logits = out / self.output_scale(model, T)

        def finish(aux_loss: AuxLoss | None) -> tuple[torch.Tensor, torch.Tensor]:
            loss = self.objective(logits, targets, aux_loss)
            loss.backward()
            return loss.detach(), logits.detach()

        return PendingBackward(logits.detach(), finish)

    def __repr__(self) -> str:
        return (f"ASF(loss={self.loss!r}, slope={self.slope!r}, shared_fi={self.shared_fi!r}, "
                f"phase1={self.phase1!r}, mask={self.mask!r}, momentum={self.momentum})")
