"""The mix of independently trained runs: Cao et al.'s mix module over networks that never exchanged anything.

``mix_runs([run_a, run_b, ...])`` evaluates every trained network of the runs (a single run gives one, a cohort
run its K members) on the same data as the runs were tested on, and combines them with
:class:`~dnmsnn.cohort.Mix`: ``max``, ``average``, ``vote``, and ``better`` / ``best_member`` decided on the
runs' shared validation split, never on the test set. The result has the shape of a cohort run's ``results.json``
(``members``, ``mix``), so a lambda = 0 control can be assembled from single runs: member k of a lambda = 0
cohort of seed S *is* the single run with ``train.seed = S`` and ``train.model_seed = S + k``
(``tests/test_cohort.py``), so mixing those single runs gives the pair's numbers without training member 0 twice.

The runs must share what makes their outputs comparable: the dataset and its limits, the validation split
(``data.val_fraction``, ``train.seed``), the encoder (name, T, evaluation T's and stream), the test T, and the
number of classes. Each network is evaluated by its own run's rule.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..cohort import Mix, _accuracy
from ..data.datasets import split_validation
from ..errors import ConfigError
from ..network import Network
from .config import RunConfig
from .evaluate import run_outputs

SHARED = ("data.name", "data.train_limit", "data.test_limit", "data.val_fraction", "train.seed", "encoder.name",
          "encoder.T", "encoder.eval_T", "encoder.eval_seed", "train.test_T")


def _setting(cfg: RunConfig, key: str) -> Any:
    section, name = key.split(".")
    return getattr(getattr(cfg, section), name)


def check_mixable(cfgs: list[RunConfig], names: list[str]) -> None:
    """The runs share every setting of :data:`SHARED` (else a :class:`~dnmsnn.ConfigError` naming the first that
    differs and the runs)."""
    for key in SHARED:
        values = [_setting(c, key) for c in cfgs]
        if any(v != values[0] for v in values[1:]):
            shown = ", ".join(f"{n}: {v!r}" for n, v in zip(names, values, strict=True))
            raise ConfigError(f"runs to mix must share {key} (their outputs are compared sample by sample on the "
                              f"same validation split and input stream); got {shown}")


def _outputs(runs: list[tuple[RunConfig, list[Network]]], dataset: Any, T: int) -> tuple[list[torch.Tensor],
                                                                                       torch.Tensor]:
    outputs: list[torch.Tensor] = []
    labels = None
    for cfg, models in runs:
        outs, labels = run_outputs(cfg, models, dataset, T)
        outputs += outs
    return outputs, labels


def mix_runs(run_dirs: list[str | Path], data_dir: str | None = None) -> dict[str, Any]:
    """Every network of the runs and every mix mode, tested at each evaluation T (module docstring)."""
    from ..analysis.runs import load_run_data, load_run_members

    names = [str(d) for d in run_dirs]
    runs = [load_run_members(d) for d in run_dirs]
    cfgs = [cfg for cfg, _ in runs]
    check_mixable(cfgs, names)
    if sum(len(models) for _, models in runs) < 2:
        raise ConfigError("a mix needs at least two networks (one cohort run, or two or more runs)")
    cfg = cfgs[0]
    test = load_run_data(run_dirs[0], cfg, "test", data_dir)
    _, val = split_validation(load_run_data(run_dirs[0], cfg, "train", data_dir), cfg.data.val_fraction,
                              cfg.train.seed)
    mix = Mix().fit(*_outputs(runs, val, cfg.test_T)) if val is not None else Mix()  # member_accuracy: val acc
    tests = {T: _outputs(runs, test, T) for T in cfg.eval_T}
    members = []
    for run, (run_cfg, models) in zip(names, runs, strict=True):
        for k in range(len(models)):
            i = len(members)
            members.append({"run": run, "member": k, "model_seed": run_cfg.model_seed + k,
                            "test_acc_by_T": {str(T): _accuracy(o[i].argmax(-1), y) for T, (o, y) in tests.items()},
                            "val_acc": mix.member_accuracy[i] if mix.fitted else None})
            members[-1]["test_acc"] = members[-1]["test_acc_by_T"][str(cfg.test_T)]
    by_T = {str(T): mix.accuracy(o, y) for T, (o, y) in tests.items()}
    return {"runs": names, "dataset": cfg.data.name, "seed": cfg.train.seed, "test_T": cfg.test_T,
            "members": members,
            "mix": {"space": mix.space, "decided_on": "val" if val is not None else None, "better": mix.better,
                    "best_member": mix.best_member, "val_acc": mix.fit_accuracy or None,
                    "test_acc": by_T[str(cfg.test_T)], "test_acc_by_T": by_T}}

