"""Analysis: reading run directories, activity / SynOps / energy, plots and TensorBoard logging.

matplotlib (the ``plot`` extra) and tensorboard (the ``tensorboard`` extra) are imported only when a
figure or a logger is made.
"""
from .activity import (
    E_AC_PJ,
    E_MAC_PJ,
    Activity,
    analyze,
    analyze_run,
    count_activity,
    energy_pj,
    firing_rates,
    record_neurons,
    to_markdown,
)
from .runs import check_run_dir, load_metrics, load_results, load_run, load_run_model, summarize
from .tensorboard import TensorBoardLogger, metrics_to_tensorboard

__all__ = ["E_AC_PJ", "E_MAC_PJ", "Activity", "TensorBoardLogger", "analyze", "analyze_run", "check_run_dir",
           "count_activity", "energy_pj", "firing_rates", "load_metrics", "load_results", "load_run",
           "load_run_model", "metrics_to_tensorboard", "record_neurons", "summarize", "to_markdown"]
