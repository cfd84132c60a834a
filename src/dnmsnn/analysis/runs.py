"""Reading run directories: metrics.jsonl, results.json, the trained model, and mean +- std over seeds."""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DnmsnnError

if TYPE_CHECKING:
    from ..data import ArrayDataset
    from ..encoders import Encoder
    from ..network import Network
    from ..train.config import RunConfig


def load_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise DnmsnnError(f"{path} not found; is {run_dir} a run directory?")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load_results(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / "results.json"
    if not path.is_file():
        raise DnmsnnError(f"{path} not found; has the run in {run_dir} finished?")
    return json.loads(path.read_text())


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    n = len(values)
    m = sum(values) / n
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return m, sd


def summarize(run_dirs: Sequence[str | Path], key: str = "test_acc") -> tuple[float, float, int]:
    """(mean, std, n) of a results.json key over runs (e.g. seeds)."""
    vals = [float(load_results(d)[key]) for d in run_dirs]
    m, sd = mean_std(vals)
    return m, sd, len(vals)


def check_run_dir(run_dir: str | Path) -> Path:
    """The run directory as a Path; a DnmsnnError when it holds no ``config.yaml``."""
    run = Path(run_dir)
    if not (run / "config.yaml").is_file():
        raise DnmsnnError(f"{run} is not a run directory (no config.yaml); pass the folder that train or demo wrote")
    return run


def load_run_members(run_dir: str | Path) -> tuple[RunConfig, list[Network]]:
    """(config, every trained member in eval mode: one network, or a cohort's K) of a run directory.

    Needs no dataset files (the shapes come from the dataset registry).
    """
    from ..data.datasets import DATASETS, _canonical_name
    from ..train import build_model, load_checkpoint, load_run_config

    run = check_run_dir(run_dir)
    cfg = load_run_config(run / "config.yaml")
    ckpt = load_checkpoint(run / "checkpoint.pt")
    info = DATASETS[_canonical_name(cfg.data.name)]
    states = [m.get("model") for m in ckpt["members"]] if "members" in ckpt else [ckpt.get("model")]
    models = []
    for state in states:
        if not isinstance(state, dict):
            raise DnmsnnError(f"{run / 'checkpoint.pt'} holds no model state dict")
        model = build_model(cfg, info.shape, info.num_classes)
        try:
            model.load_state_dict(state)
        except (RuntimeError, KeyError) as exc:
            raise DnmsnnError(f"checkpoint in {run} does not fit its config's model: {exc}") from None
        models.append(model.eval())
    return cfg, models


def load_run_model(run_dir: str | Path) -> tuple[RunConfig, Network]:
    """(config, trained model in eval mode) of a run directory; for a cohort, member 0."""
    cfg, models = load_run_members(run_dir)
    return cfg, models[0]


def load_run(
    run_dir: str | Path, data_dir: str | None = None, split: str = "test", limit: int | None = None
) -> tuple[RunConfig, Network, ArrayDataset, Encoder]:
    """(config, trained model in eval mode, dataset split, the run's encoder) of a run directory."""
    from ..encoders import create_encoder

    cfg, model = load_run_model(run_dir)
    data = load_run_data(run_dir, cfg, split, data_dir, limit)
    encoder = create_encoder(cfg.encoder.name, cfg.encoder.T, seed=cfg.train.seed)
    return cfg, model, data, encoder


def load_run_data(run_dir: str | Path, cfg: RunConfig, split: str = "test", data_dir: str | None = None,
                  limit: int | None = None) -> ArrayDataset:
    """A split of a run's dataset, found by the lookup rule of :mod:`dnmsnn.train.rundir` (``data_dir``, else the
    run's ``data.json``, else its ``data.dir``, ``$DNMSNN_DATA_DIR``, ``./data``); a warning when the files
    differ from the ones the run recorded."""
    import warnings

    from ..data import load_dataset, resolve_data_dir
    from ..train.rundir import changed_files, read_data_record, run_data_dir

    if limit is None:
        limit = cfg.data.test_limit if split == "test" else cfg.data.train_limit
    folder, _ = run_data_dir(run_dir, data_dir, cfg.data.dir)
    data = load_dataset(cfg.data.name, split, folder, limit=limit)
    changed = changed_files(read_data_record(run_dir), resolve_data_dir(folder), data.files)
    if changed:
        warnings.warn(f"{', '.join(changed)} differ from the files the run in {run_dir} recorded (data.json): the "
                      "numbers may not be comparable", stacklevel=2)
    return data
