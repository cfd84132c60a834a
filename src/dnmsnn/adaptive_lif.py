"""The adaptive LIF neuron (Bellec et al., NeurIPS 2018, "Long short-term memory and learning-to-learn in networks
of spiking neurons"): a LIF layer whose threshold rises with each spike and relaxes back with its own time constant.

Bellec et al. (Methods): threshold ``A_j(t) = b_j^0 + beta a_j(t)``, adaptation
``a_j(t + dt) = rho_j a_j(t) + (1 - rho_j) z_j(t)``, ``rho_j = exp(-dt / tau_a)``, reset by subtracting the threshold.
In dnmsnn's discrete frame (input and spike in the same step, as for :class:`~dnmsnn.neurons.LIF`):

    H[k] = charge(V[k-1], x[k])                     (LIF's beta or tau form)
    A[k] = V_th + adapt a[k-1]                      (the adaptive threshold; adapt is Bellec et al.'s beta)
    S[k] = H(H[k] - A[k])                           (strict: H[k] > A[k])
    V[k] = H[k] - A[k] S[k]                         (reset="subtract", the default: Bellec et al.'s reset)
           H[k] (1 - S[k]) + V_reset S[k]           (reset="zero")
    a[k] = rho a[k-1] + (1 - rho) S[k],  rho = exp(-1 / tau_a),  a[0] = 0,  V[0] = V_reset

Gradients: the surrogate of ``H - A`` reaches both the potential and, through A, the adaptation's past (full BPTT;
in a run without temporal gradient, e.g. the spatial rule's, both V[k-1] and a[k-1] are detached). Differences from the
paper, stated: the surrogate takes ``H - A`` (Bellec et al. scale it by ``1 / A``), and the reset acts within the
step, so the next step's leak applies to it (Bellec et al. subtract it after the leak), as for every dnmsnn LIF.

How it runs: its state has two variables, which the fused neuron kernels do not carry, so an AdaptiveLIF runs the
step-by-step autograd loop in PyTorch (its own layer only). NIR has no neuron with an adaptive threshold: export
stops with an error naming the layer.
"""
from __future__ import annotations

import math
from typing import ClassVar, NamedTuple

import torch

from . import functional as F
from . import plan
from ._checks import check_finite, check_sequence
from .errors import InputError
from .functional.neuron import charge, fire_and_reset
from .functional.surrogate import Surrogate
from .module import DEFAULT_RUN, RunOptions
from .neuron_registry import NeuronKind, register_neuron
from .neurons import LIF


class AdaptiveState(NamedTuple):
    """State of an adaptive LIF layer between steps: the post-reset potential V[k] and the adaptation a[k]."""

    v: torch.Tensor
    a: torch.Tensor


def adaptive_lif_step(
    x: torch.Tensor, state: AdaptiveState | None, p: F.NeuronParameters, rho: float, adapt: float,
    temporal_grad: bool = True,
) -> tuple[torch.Tensor, AdaptiveState, torch.Tensor]:
    """One step (module docstring's equations): returns (spikes S[k], state (V[k], a[k]), potential H[k])."""
    if state is None:
        state = AdaptiveState(torch.full_like(x, p.v_reset), torch.zeros_like(x))
    v_prev, a_prev = state if temporal_grad else (state.v.detach(), state.a.detach())
    h = charge(v_prev, x, p)
    s, v = fire_and_reset(h, p._replace(threshold=p.threshold + adapt * a_prev))
    return s, AdaptiveState(v, rho * a_prev + (1.0 - rho) * s), h


class AdaptiveLIF(LIF):
    """LIF with an adaptive threshold ``V_th + adapt a``, ``a`` a low-pass of the spikes (Bellec et al. 2018)."""

    kind: ClassVar[str] = "alif"

    def __init__(
        self,
        beta: float | None = None,
        tau: float | None = None,
        threshold: float | torch.Tensor = 1.0,
        v_reset: float = 0.0,
        reset: str = "subtract",
        surrogate: str | Surrogate = "atan",
        detach_reset: bool = False,
        *,
        tau_a: float = 20.0,
        adapt: float = 1.0,
        strict: bool = False,
        learn_threshold: bool = False,
        record: bool = False,
        surrogate_param: float | None = None,
    ) -> None:
        if isinstance(tau_a, bool) or not isinstance(tau_a, (int, float)) or not math.isfinite(tau_a) or tau_a <= 0:
            raise InputError(f"tau_a (the adaptation's time constant, in steps) must be a finite number > 0, "
                             f"got {tau_a!r}")
        if isinstance(adapt, bool) or not isinstance(adapt, (int, float)) or not math.isfinite(adapt) or adapt < 0:
            raise InputError(f"adapt (the threshold's rise per unit of adaptation) must be a finite number >= 0, "
                             f"got {adapt!r}")
        super().__init__(beta=beta, tau=tau, threshold=threshold, v_reset=v_reset, reset=reset, surrogate=surrogate,
                         detach_reset=detach_reset, strict=strict, learn_threshold=learn_threshold, record=record,
                         surrogate_param=surrogate_param)
        self.tau_a = float(tau_a)
        self.adapt = float(adapt)

    @property
    def rho(self) -> float:
        """The adaptation's decay per step, ``exp(-1 / tau_a)``."""
        return math.exp(-1.0 / self.tau_a)

    def forward(self, x: torch.Tensor, run: RunOptions = DEFAULT_RUN) -> torch.Tensor:
        check_sequence(x, "AdaptiveLIF")
        check_finite(x, "AdaptiveLIF")
        self._check_threshold_shape(x.shape[1:])
        p, rho = self.parameters_tuple(x.dtype), self.rho
        if plan.recording():
            plan.note(plan.neuron_choice(x, p, self), self)
        state, spikes, trace = None, [], []
        for k in range(x.shape[0]):
            s, state, h = adaptive_lif_step(x[k], state, p, rho, self.adapt, run.temporal_grad)
            spikes.append(s)
            if self.record:
                trace.append(h.detach())
        self.v_trace = torch.stack(trace) if self.record else None
        out = torch.stack(spikes)
        self._accumulate(x.detach().sum(0), out.detach().sum(0), run)
        return out

    def step(self, x: torch.Tensor, state: AdaptiveState | None = None,
             run: RunOptions = DEFAULT_RUN) -> tuple[torch.Tensor, AdaptiveState]:
        if plan.recording():
            plan.note(plan.step_choice(self), self)
        s, state, _ = adaptive_lif_step(x, state, self.parameters_tuple(x.dtype), self.rho, self.adapt,
                                        run.temporal_grad)
        self._accumulate(x.detach(), s.detach(), run)
        return s, state

    def extra_repr(self) -> str:
        return f"tau_a={self.tau_a:g}, adapt={self.adapt:g}, " + super().extra_repr()


def _build(**kwargs: object) -> AdaptiveLIF:
    if kwargs.get("beta") is None and kwargs.get("tau") is None:
        kwargs["tau"] = 2.0
    return AdaptiveLIF(**kwargs)  # type: ignore[arg-type]


register_neuron(NeuronKind(
    "alif", _build, "LIF with an adaptive threshold V_th + adapt a, a[k] = rho a[k-1] + (1 - rho) S[k] (tau_a)",
    paper="Bellec et al. 2018", extra_args=("tau_a", "adapt"),
    runs_on="the step-by-step autograd loop in PyTorch: its state has two variables (V, a), which the fused "
            "kernels do not carry",
    nir="NIR has no neuron with an adaptive threshold (its LIF, CubaLIF and IF fire at a fixed v_threshold)"))
