"""The typed run configuration: one dataclass per section, loadable from YAML with ``--set`` overrides.

```yaml
model:   {name: mlp, args: {hidden: [300, 300], beta: 0.8187}}
data:    {name: mnist, val_fraction: 0.0}
encoder: {name: poisson, T: 20, eval_T: [1, 5, 10, 20]}
rule:    {name: bptt, loss: ce}
optim:   {name: adam, lr: 1.0e-4, schedule: none}
train:   {epochs: 20, batch_size: 64, seed: 0, test_T: 5}            # parallel: data | cohort (multi-process)
cohort:  {size: 2, exchange: kl, weight: 1.0, temperature: 1.0, warmup_epochs: 0}   # optional, DNM-SNN
```
Unknown keys are errors that list the valid ones (see :mod:`dnmsnn.train.configtools`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import ConfigError
from .configtools import dump_yaml, load_config, to_dict


def _require(cond: bool, key: str, message: str) -> None:
    if not cond:
        raise ConfigError(f"{key}: {message}")


@dataclass
class ModelConfig:
    """``name`` from ``dnmsnn models``; ``args`` override the builder's keyword arguments.

    ``firing_rate: [low, high]`` calibrates the initial weights so that every LIF / IF layer fires within that
    band (spikes per neuron per step) on the first ``calibration_samples`` training images, encoded as in
    training (:func:`dnmsnn.calibrate.calibrate_firing`); null keeps the builder's initialisation.
    """

    name: str = "digits_mlp"
    args: dict[str, Any] = field(default_factory=dict)
    firing_rate: list[float] | None = None
    calibration_samples: int = 256

    def validate(self) -> None:
        from .. import models

        _require(self.name in models.available(), "model.name",
                 f"unknown model {self.name!r}; available: {', '.join(models.available())}")
        band = self.firing_rate
        _require(band is None or (len(band) == 2 and 0.0 < band[0] < band[1] < 1.0), "model.firing_rate",
                 f"must be null or [low, high] with 0 < low < high < 1, e.g. [0.02, 0.2]; got {band}")
        _require(self.calibration_samples > 0, "model.calibration_samples",
                 f"must be > 0, got {self.calibration_samples}")
        valid = models.info(self.name).defaults
        unknown = sorted(set(self.args) - set(valid))
        _require(not unknown, "model.args", f"{self.name!r} has no argument(s) {unknown}; valid: {', '.join(valid)}")


@dataclass
class DataConfig:
    """Dataset name, optional folder (``--data-dir`` wins), validation split carved from train, size limits.

    ``shift`` and ``hflip`` augment the training batches (never validation or test; see
    :mod:`dnmsnn.data.augment`): a random translation by up to ``shift`` pixels (zero fill) and a random
    left-right mirror. Off by default; none of the papers states an augmentation.
    """

    name: str = "digits"
    dir: str | None = None
    val_fraction: float = 0.0
    train_limit: int | None = None
    test_limit: int | None = None
    shift: int = 0
    hflip: bool = False

    def validate(self) -> None:
        _require(0.0 <= self.val_fraction < 1.0, "data.val_fraction", f"must lie in [0, 1), got {self.val_fraction}")
        for key in ("train_limit", "test_limit"):
            v = getattr(self, key)
            _require(v is None or v > 0, f"data.{key}", f"must be null or > 0, got {v}")
        _require(self.shift >= 0, "data.shift", f"must be >= 0 (pixels), got {self.shift}")


@dataclass
class EncoderConfig:
    """Input coding; ``T`` is the training sequence length, ``eval_T`` the lengths of the final test sweep."""

    name: Literal["poisson", "signed_poisson", "direct"] = "poisson"
    T: int = 20
    eval_T: list[int] = field(default_factory=list)
    eval_seed: int = 12345

    def validate(self) -> None:
        _require(self.T > 0, "encoder.T", f"must be > 0, got {self.T}")
        _require(all(t > 0 for t in self.eval_T), "encoder.eval_T", f"all values must be > 0, got {self.eval_T}")


@dataclass
class RuleConfig:
    """Learning rule by name (``bptt``, ...), its task loss and its own arguments."""

    name: str = "bptt"
    loss: Literal["ce", "mse"] = "ce"
    args: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        from .. import rules

        _require(self.name in rules.available(), "rule.name",
                 f"unknown rule {self.name!r}; available: {', '.join(rules.available())}")


@dataclass
class OptimConfig:
    """Optimizer and learning-rate schedule (stepped once per epoch)."""

    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    momentum: float = 0.0
    schedule: Literal["none", "cosine", "step", "exponential"] = "none"
    step_size: int = 10
    gamma: float = 0.1
    grad_clip: float | None = None

    def validate(self) -> None:
        _require(self.lr > 0, "optim.lr", f"must be > 0, got {self.lr}")
        _require(all(0.0 <= b < 1.0 for b in self.betas), "optim.betas", f"each must lie in [0, 1), got {self.betas}")
        _require(self.weight_decay >= 0, "optim.weight_decay", f"must be >= 0, got {self.weight_decay}")
        _require(0.0 <= self.momentum < 1.0, "optim.momentum", f"must lie in [0, 1), got {self.momentum}")
        _require(self.step_size > 0, "optim.step_size", f"must be > 0, got {self.step_size}")
        _require(0.0 < self.gamma <= 1.0, "optim.gamma", f"must lie in (0, 1], got {self.gamma}")
        _require(self.grad_clip is None or self.grad_clip > 0, "optim.grad_clip", "must be null or > 0")


@dataclass
class TrainConfig:
    """Loop settings. ``test_T`` is the T of the per-epoch test (Bondarev trains at 20, tests at 5).

    ``seed`` drives the validation split, the data order and the encoder stream; ``model_seed`` (null:
    ``seed``) the weight initialisation and the network's own random stream (dropout). Cohort member k
    uses ``model_seed + k``.

    ``parallel`` says how a run launched on several processes (``torchrun`` or ``dnmsnn train --nproc N``)
    splits the work; it has no effect in one process (see :mod:`dnmsnn.train.distributed`):

    * ``data`` (default): data parallel. Every global batch of ``batch_size`` is split across the N
      ranks, gradients are averaged with DistributedDataParallel, and the weights equal the one-process
      run's up to floating-point rounding. A cohort trains all its members on every rank.
    * ``cohort``: the members of a cohort (``cohort.size`` = K >= 2) on different ranks: N = K x G
      processes, member k on ranks k*G .. k*G + G - 1 (data parallel among those G when G > 1). Members
      exchange their predictions of each batch with ``all_gather``, the only per-batch traffic besides
      gradients; with G = 1 the run is bitwise the one-process cohort.
    """

    epochs: int = 10
    batch_size: int = 64
    eval_batch_size: int = 500
    seed: int = 0
    model_seed: int | None = None
    test_T: int | None = None
    threads: int | None = None
    deterministic: bool = True
    progress: bool = True
    tensorboard: str | None = None  # a log folder: every epoch's metrics row also goes to TensorBoard
    parallel: Literal["data", "cohort"] = "data"  # how a multi-process launch splits the work (see above)

    def validate(self) -> None:
        for key in ("epochs", "batch_size", "eval_batch_size"):
            _require(getattr(self, key) > 0, f"train.{key}", f"must be > 0, got {getattr(self, key)}")
        _require(self.test_T is None or self.test_T > 0, "train.test_T", "must be null or > 0")
        _require(self.threads is None or self.threads > 0, "train.threads", "must be null or > 0")


@dataclass
class CohortConfig:
    """DNM-SNN mutual learning (Cao et al.) -- see :mod:`dnmsnn.cohort` for what is the paper's and what is ours.

    ``size`` networks of the configured model train together (1: ordinary single-network training);
    member k's loss is its task loss plus ``weight`` (lambda) times the ``exchange`` loss against the
    other members' predictions of the same batch, with lambda = 0 for the first ``warmup_epochs``, then rising
    linearly to ``weight`` over ``ramp_epochs`` (0: at once). ``exchange`` is a logit exchange (``kl``, ``mse``,
    ``ce``) or one of the output sequences after every step (``kl_steps``, ``mse_steps``; bptt only).
    ``temperature`` softens the outputs of the ``kl`` exchanges. ``separate_predictions`` takes the
    predictions from an extra no-grad pass per member (one member's graph alive at a time) instead of
    from the members' training forwards (all K graphs alive together; no extra pass).
    """

    size: int = 1
    exchange: Literal["kl", "mse", "ce", "kl_steps", "mse_steps"] = "kl"
    weight: float = 1.0
    temperature: float = 1.0
    warmup_epochs: int = 0
    ramp_epochs: int = 0
    separate_predictions: bool = False

    def validate(self) -> None:
        _require(self.size >= 1, "cohort.size", f"must be >= 1 (1: a single network), got {self.size}")
        _require(self.weight >= 0, "cohort.weight", f"must be >= 0, got {self.weight}")
        _require(self.temperature > 0, "cohort.temperature", f"must be > 0, got {self.temperature}")
        _require(self.warmup_epochs >= 0, "cohort.warmup_epochs", f"must be >= 0, got {self.warmup_epochs}")
        _require(self.ramp_epochs >= 0, "cohort.ramp_epochs", f"must be >= 0, got {self.ramp_epochs}")

    def weight_at(self, epoch: int) -> float:
        """lambda in (0-based) ``epoch``: 0 during the warm-up, then ``weight (e + 1) / ramp_epochs`` in the e-th
        epoch after it while ``e < ramp_epochs``, then ``weight``."""
        after = epoch - self.warmup_epochs
        if after < 0:
            return 0.0
        return self.weight * min(1.0, (after + 1) / self.ramp_epochs) if self.ramp_epochs else self.weight


@dataclass
class RunConfig:
    """A whole experiment: what ``dnmsnn train --config FILE`` reads."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    rule: RuleConfig = field(default_factory=RuleConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    cohort: CohortConfig = field(default_factory=CohortConfig)

    @property
    def test_T(self) -> int:
        return self.train.test_T or self.encoder.T

    @property
    def eval_T(self) -> list[int]:
        return sorted(set(self.encoder.eval_T) | {self.test_T})

    @property
    def model_seed(self) -> int:
        return self.train.seed if self.train.model_seed is None else self.train.model_seed


def load_run_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """YAML file (or defaults when None) plus ``key=value`` overrides, validated."""
    return load_config(RunConfig, None if path is None else str(path), list(overrides))


def save_run_config(cfg: RunConfig, path: str | Path) -> None:
    dump_yaml(cfg, str(path))


def config_dict(cfg: RunConfig) -> dict[str, Any]:
    return to_dict(cfg)
