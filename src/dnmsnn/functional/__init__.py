"""Pure functions underneath the modules: neuron steps and sequences, spike functions with surrogates."""
from .buffers import buffer_pool, release_buffers
from .conv import stacked_avg_pool2d, stacked_conv, stacked_conv2d, stacked_conv_applies
from .fused import BACKENDS as FUSED_BACKENDS
from .fused import fast_path_info, fused_backend, neuron_pool_fusable
from .neuron import (
    IntegratorState,
    NeuronParameters,
    NeuronState,
    charge,
    fire_and_reset,
    fused_enabled,
    initial_state,
    integrator_readout,
    integrator_readout_weights,
    integrator_sequence,
    integrator_step,
    neuron_step,
    reference_path,
)
from .sequence import neuron_linear_sequence, neuron_loop, neuron_pool_sequence, neuron_sequence
from .spike_matmul import spike_matmul, spike_matmul_enabled
from .surrogate import SURROGATES, Surrogate, get_surrogate, spike

__all__ = [
    "FUSED_BACKENDS", "IntegratorState", "NeuronParameters", "NeuronState", "SURROGATES", "Surrogate",
    "buffer_pool", "charge", "fast_path_info", "fire_and_reset", "fused_backend", "fused_enabled", "get_surrogate",
    "initial_state", "integrator_readout", "integrator_readout_weights", "integrator_sequence", "integrator_step",
    "neuron_linear_sequence", "neuron_loop", "neuron_pool_fusable", "neuron_pool_sequence", "neuron_sequence",
    "neuron_step",
    "reference_path", "release_buffers", "spike", "spike_matmul", "spike_matmul_enabled",
    "stacked_avg_pool2d", "stacked_conv", "stacked_conv2d", "stacked_conv_applies",
]
