"""Model registry and the registered architectures."""
from . import mlp  # noqa: F401  (registers mlp, digits_mlp)
from .registry import ModelInfo, available, create, info, register_model

__all__ = ["ModelInfo", "available", "create", "info", "register_model"]
