"""Training: typed configs, the trainer loop, evaluation and checkpoints."""
from .checkpoint import load_checkpoint, save_checkpoint
from .config import RunConfig, load_run_config, save_run_config
from .evaluate import collect_outputs, evaluate
from .trainer import Trainer, TrainingError, build_model

__all__ = ["RunConfig", "Trainer", "TrainingError", "build_model", "collect_outputs", "evaluate", "load_checkpoint",
           "load_run_config", "save_checkpoint", "save_run_config"]
