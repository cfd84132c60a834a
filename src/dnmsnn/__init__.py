"""dnmsnn: spiking neural networks trained the way three papers describe.

Multi-step tensors are laid out ``[T, batch, ...]``. The neurons (:class:`LIF`, :class:`IF`,
:class:`Integrator`) start at rest on every call; learning rules live in :mod:`dnmsnn.rules`,
architectures in :mod:`dnmsnn.models`; :class:`Cohort` and :class:`Mix` are Cao et al.'s mutually
learning networks and mix module.
"""
from . import functional, models, rules, settings, weights
from .adaptive_lif import AdaptiveLIF
from .cohort import Cohort, Mix
from .encoders import DirectEncoder, Encoder, PoissonEncoder, SignedPoissonEncoder, create_encoder
from .errors import CheckpointError, ConfigError, DataError, DnmsnnError, InputError
from .functional.surrogate import get_surrogate
from .layers import (
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    Dropout,
    Flatten,
    Linear,
    MaxPool2d,
    Residual,
    Sequential,
)
from .module import RunOptions, SpikingModule
from .network import Network, RunResult
from .neurons import IF, LIF, Integrator
from .parametric_lif import ParametricLIF
from .plan import explain
from .settings import use_backend

__version__ = "0.1.0"

__all__ = [
    "IF", "LIF", "AdaptiveLIF", "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "CheckpointError", "Cohort", "ConfigError",
    "Conv2d", "DataError", "DirectEncoder", "DnmsnnError", "Dropout", "Encoder", "Flatten", "InputError",
    "Integrator", "Linear", "MaxPool2d", "Mix", "Network", "ParametricLIF", "PoissonEncoder", "Residual",
    "RunOptions", "RunResult", "Sequential", "SignedPoissonEncoder", "SpikingModule", "create_encoder", "explain",
    "functional", "get_surrogate", "models", "rules", "settings", "use_backend", "weights", "__version__",
]
