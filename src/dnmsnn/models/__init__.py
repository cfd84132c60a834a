"""Model registry and the registered architectures."""
from . import asf, bondarev, mlp, resnet  # noqa: F401  (register the architectures)
from .registry import ModelInfo, available, create, info, register_model

__all__ = ["ModelInfo", "available", "create", "info", "register_model"]
