"""Pure functions underneath the modules: neuron steps and sequences, spike functions with surrogates."""
from .neuron import (
    IntegratorState,
    NeuronParameters,
    NeuronState,
    charge,
    fire_and_reset,
    initial_state,
    integrator_sequence,
    integrator_step,
    neuron_sequence,
    neuron_step,
    no_temporal_grad,
    reference_path,
    temporal_grad_enabled,
)
from .surrogate import SURROGATES, Surrogate, get_surrogate, spike

__all__ = [
    "IntegratorState", "NeuronParameters", "NeuronState", "SURROGATES", "Surrogate", "charge",
    "fire_and_reset", "get_surrogate", "initial_state", "integrator_sequence", "integrator_step",
    "neuron_sequence", "neuron_step", "no_temporal_grad", "reference_path", "spike", "temporal_grad_enabled",
]
