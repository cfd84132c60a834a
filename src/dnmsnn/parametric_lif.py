"""The parametric LIF neuron (Fang et al., ICCV 2021, "Incorporating Learnable Membrane Time Constant to Enhance
Learning of Spiking Neural Networks"): a LIF layer whose membrane time constant is learned.

    H[t] = V[t-1] + k(w) (X[t] - (V[t-1] - V_reset)),   k(w) = sigmoid(w) = 1 / tau     (Fang et al., eqs. 4-5)
    S[t] = H(H[t] - V_th);   V[t] = H[t] (1 - S[t]) + V_reset S[t]

one learnable scalar ``w`` per layer, initialised so that ``tau = 1 / sigmoid(w)`` is the given ``tau``
(``w = -ln(tau - 1)``); ``tau`` then stays above 1 whatever ``w`` becomes. With ``w`` fixed this is Cao et al.'s /
Wu et al.'s LIF (:class:`~dnmsnn.neurons.LIF` with ``tau``), whose every other option it shares.

How it runs: the fused neuron kernels take tau as a constant, so a ParametricLIF runs the step-by-step autograd
loop; its registered kind says so (``runs_on``), and the plan (:func:`dnmsnn.plan.neuron_choice`) reads it, for
this layer only. The ``asf`` rule trains its synapses but not ``w`` (the totals network has
no time constant); NIR export writes the LIF with the learned tau of the moment.
"""
from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn

from . import functional as F
from .errors import InputError
from .functional.surrogate import Surrogate
from .neuron_registry import NeuronKind, register_neuron
from .neurons import LIF


class ParametricLIF(LIF):
    """LIF with a learnable membrane time constant, ``1 / tau = sigmoid(w)`` (Fang et al. 2021)."""

    kind: ClassVar[str] = "plif"

    def __init__(
        self,
        tau: float = 2.0,
        threshold: float | torch.Tensor = 1.0,
        v_reset: float = 0.0,
        reset: str = "zero",
        surrogate: str | Surrogate = "atan",
        detach_reset: bool = False,
        *,
        strict: bool = False,
        learn_threshold: bool = False,
        record: bool = False,
        surrogate_param: float | None = None,
    ) -> None:
        if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not math.isfinite(tau) or tau <= 1.0:
            raise InputError(f"ParametricLIF's initial tau must be a finite number > 1 (1 / tau = sigmoid(w) < 1), "
                             f"got {tau!r}")
        self._tau_init = float(tau)
        super().__init__(tau=tau, threshold=threshold, v_reset=v_reset, reset=reset, surrogate=surrogate,
                         detach_reset=detach_reset, strict=strict, learn_threshold=learn_threshold, record=record,
                         surrogate_param=surrogate_param)
        self.w = nn.Parameter(torch.tensor(-math.log(self._tau_init - 1.0)))

    @property
    def tau(self) -> float:  # type: ignore[override]
        """The time constant now, ``1 / sigmoid(w)`` (a number; the graph goes through :meth:`parameters_tuple`)."""
        w = self.__dict__.get("_parameters", {}).get("w")
        return self._tau_init if w is None else float(1.0 / torch.sigmoid(w.detach().double()))

    @tau.setter
    def tau(self, value: float | None) -> None:  # LIF.__init__ assigns it; w is the state
        if value is not None and "w" in self.__dict__.get("_parameters", {}):
            raise InputError("ParametricLIF.tau is learned: set .w (1 / tau = sigmoid(w)) instead")

    def parameters_tuple(self, dtype: torch.dtype | None = None) -> F.NeuronParameters:
        """As LIF's, with ``tau`` the tensor ``1 / sigmoid(w)``, so that the gradient reaches ``w``."""
        p = super().parameters_tuple(dtype)
        w = self.w if dtype is None else self.w.to(dtype)
        return p._replace(tau=1.0 / torch.sigmoid(w))

    def extra_repr(self) -> str:
        return f"learned tau={self.tau:.4g} (init {self._tau_init:g}), " + super().extra_repr().split(", ", 1)[1]


def _build(*, beta: float | None = None, tau: float | None = None, **common: object) -> ParametricLIF:
    if beta is not None:
        raise InputError("the parametric LIF (plif) learns tau (1 / tau = sigmoid(w)); give tau, not beta")
    return ParametricLIF(tau=2.0 if tau is None else tau, **common)  # type: ignore[arg-type]


register_neuron(NeuronKind(
    "plif", _build, "LIF with a learned membrane time constant, 1 / tau = sigmoid(w) (starts at tau, default 2)",
    paper="Fang et al. 2021",
    runs_on="the step-by-step autograd loop: the fused kernels take tau as a constant, so w would get no gradient"))
