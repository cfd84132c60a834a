"""Learning rules as interchangeable strategies behind one interface."""
from . import bptt, spatial  # noqa: F401  (register "bptt", "spatial")
from .base import LOSSES, LearningRule, task_loss
from .registry import available, create, register_rule

__all__ = ["LOSSES", "LearningRule", "available", "create", "register_rule", "task_loss"]
