"""Learning rules as interchangeable strategies behind one interface."""
from . import asf, bptt, spatial  # noqa: F401  (register "asf", "bptt", "spatial")
from .base import LOSSES, LearningRule, PendingBackward, task_loss
from .registry import available, create, register_rule

__all__ = ["LOSSES", "LearningRule", "PendingBackward", "available", "create", "register_rule", "task_loss"]
