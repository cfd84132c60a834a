"""The training loop: data -> encoder -> rule (gradient) -> optimizer, with metrics and checkpoints.

Determinism: every epoch's randomness (data order, encoder stream, dropout) is derived from
``(seed, epoch)``, so an uninterrupted run and a run resumed from any epoch checkpoint see the
same numbers. Run directory: ``config.yaml``, ``metrics.jsonl`` (one line per epoch),
``checkpoint.pt`` (atomic, after every epoch), ``results.json`` (at the end).
"""
from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from .. import __version__, models, rules
from ..data import ArrayDataset, load_dataset, split_validation
from ..encoders import Encoder, create_encoder
from ..errors import CheckpointError, ConfigError, DnmsnnError
from ..network import Network
from ..rules.base import LearningRule
from .checkpoint import load_checkpoint, save_checkpoint
from .config import RunConfig, config_dict, load_run_config, save_run_config
from .evaluate import batches, evaluate
from .optim import build_optimizer, build_scheduler

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
RESULTS = "results.json"
CONFIG = "config.yaml"
# keys that may change between a run and its resumption
RESUMABLE_CHANGES = {("train", "epochs"), ("train", "progress"), ("train", "threads")}


class TrainingError(DnmsnnError):
    """Training cannot go on (e.g. the loss became NaN); the last good checkpoint is kept."""


def derived_seed(seed: int, epoch: int, stream: int) -> int:
    """A 62-bit seed for one random stream of one epoch (0: data order, 1: encoder, 2: torch global)."""
    return (seed * 1_000_003 + epoch * 9_176 + stream * 7_919 + 12_345) % (1 << 62)


def build_model(cfg: RunConfig, data_shape: tuple[int, ...], num_classes: int) -> Network:
    """The configured model; ``input_shape`` / ``num_classes`` default to the dataset's when the builder takes them."""
    args = dict(cfg.model.args)
    defaults = models.info(cfg.model.name).defaults
    if "input_shape" in defaults:
        args.setdefault("input_shape", tuple(data_shape))
    if "num_classes" in defaults:
        args.setdefault("num_classes", num_classes)
    if "input_shape" in args:
        args["input_shape"] = tuple(args["input_shape"])
    model = models.create(cfg.model.name, **args)
    if model.input_shape and tuple(model.input_shape) != tuple(data_shape):
        raise ConfigError(f"model {cfg.model.name!r} expects inputs {model.input_shape} but dataset {cfg.data.name!r} "
                          f"has {tuple(data_shape)}; set model.args.input_shape or pick another model")
    return model


class Trainer:
    """Train one network as a :class:`RunConfig` says, writing into ``out_dir``."""

    def __init__(
        self,
        cfg: RunConfig,
        out_dir: str | Path,
        data_dir: str | None = None,
        resume: bool = False,
        echo: Callable[[str], None] = print,
    ) -> None:
        self.cfg, self.out, self.echo = cfg, Path(out_dir), echo
        self._prepare_dir(resume)
        t = cfg.train
        if t.threads:
            torch.set_num_threads(t.threads)
        if t.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        torch.manual_seed(t.seed)
        data_dir = data_dir or cfg.data.dir
        train = load_dataset(cfg.data.name, "train", data_dir, limit=cfg.data.train_limit)
        self.test = load_dataset(cfg.data.name, "test", data_dir, limit=cfg.data.test_limit)
        self.train_set, self.val = split_validation(train, cfg.data.val_fraction, t.seed)
        self.model = build_model(cfg, train.shape, len(train.classes))
        self.encoder: Encoder = create_encoder(cfg.encoder.name, cfg.encoder.T, seed=t.seed)
        self.rule: LearningRule = rules.create(cfg.rule.name, loss=cfg.rule.loss, **cfg.rule.args)
        self.optimizer = build_optimizer(self.model.parameters(), cfg.optim)
        self.scheduler = build_scheduler(self.optimizer, cfg.optim, t.epochs)
        if hasattr(self.rule, "bind_optimizer"):
            self.rule.bind_optimizer(self.optimizer)
        self.history: list[dict[str, Any]] = []
        self.start_epoch = 0
        if resume:
            self._load()

    # ----------------------------------------------------------------- run directory
    def _prepare_dir(self, resume: bool) -> None:
        ckpt = self.out / CHECKPOINT
        if resume and not ckpt.exists():
            raise CheckpointError(f"nothing to resume: {ckpt} does not exist; drop --resume to start a new run")
        if not resume and ckpt.exists():
            raise ConfigError(f"{self.out} already holds a run; pass --resume to continue it or choose another --out")
        if resume:
            saved = config_dict(load_run_config(self.out / CONFIG)) if (self.out / CONFIG).exists() else None
            now = config_dict(self.cfg)
            diff = [f"{s}.{k}" for s in now for k in now[s]
                    if saved is not None and (s, k) not in RESUMABLE_CHANGES and saved[s].get(k) != now[s][k]]
            if diff:
                raise ConfigError(f"--resume with a different config ({', '.join(diff)}); resume with the run's own "
                                  f"{CONFIG} or start a new --out")
        self.out.mkdir(parents=True, exist_ok=True)
        save_run_config(self.cfg, self.out / CONFIG)

    def _payload(self, epoch: int) -> dict[str, Any]:
        return {
            "dnmsnn_version": __version__,
            "model_name": self.cfg.model.name,
            "config": config_dict(self.cfg),
            "epoch": epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "history": self.history,
        }

    def _load(self) -> None:
        ckpt = load_checkpoint(self.out / CHECKPOINT)
        if ckpt.get("model_name") != self.cfg.model.name:
            raise CheckpointError(f"checkpoint is of model {ckpt.get('model_name')!r}, "
                                  f"config says {self.cfg.model.name!r}")
        try:
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.scheduler.load_state_dict(ckpt["scheduler"])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise CheckpointError(f"checkpoint does not fit this model/config: {exc}") from None
        self.history = list(ckpt["history"])
        self.start_epoch = int(ckpt["epoch"]) + 1
        self._write_metrics()
        self.echo(f"resumed {self.out} after epoch {self.start_epoch}")

    def _write_metrics(self) -> None:
        tmp = self.out / (METRICS + ".tmp")
        tmp.write_text("".join(json.dumps(m) + "\n" for m in self.history))
        os.replace(tmp, self.out / METRICS)

    # ----------------------------------------------------------------- loop
    def train_epoch(self, epoch: int) -> dict[str, float]:
        cfg, model = self.cfg, self.model
        model.train()
        order_rng = torch.Generator().manual_seed(derived_seed(cfg.train.seed, epoch, 0))
        order = torch.randperm(len(self.train_set), generator=order_rng)
        self.encoder.seed(derived_seed(cfg.train.seed, epoch, 1))
        self.encoder.with_T(cfg.encoder.T)
        torch.manual_seed(derived_seed(cfg.train.seed, epoch, 2))
        n_batches = math.ceil(len(self.train_set) / cfg.train.batch_size)
        bar = tqdm(batches(self.train_set, cfg.train.batch_size, order), total=n_batches, leave=False,
                   desc=f"epoch {epoch + 1}/{cfg.train.epochs}", disable=None if cfg.train.progress else True)
        loss_sum, correct, seen, t0 = 0.0, 0, 0, time.perf_counter()
        for b, (images, labels) in enumerate(bar):
            self.optimizer.zero_grad(set_to_none=True)
            loss, logits = self.rule.loss_backward(model, self.encoder(images), labels)
            if not math.isfinite(float(loss)):
                raise TrainingError(f"the loss became {float(loss)} at epoch {epoch + 1}, batch {b + 1}; the last good "
                                    f"checkpoint is kept in {self.out / CHECKPOINT}. Lower optim.lr or check the input")
            if not getattr(self.rule, "steps_optimizer", False):  # online per-step rules step it themselves
                if cfg.optim.grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
                self.optimizer.step()
            loss_sum += float(loss) * labels.shape[0]
            correct += int((logits.argmax(-1) == labels).sum())
            seen += labels.shape[0]
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.3f}", refresh=False)
        elapsed = time.perf_counter() - t0
        return {"train_loss": loss_sum / seen, "train_acc": correct / seen, "train_time_s": elapsed,
                "train_samples_per_s": seen / elapsed}

    def _evaluate(self, dataset: ArrayDataset, T: int) -> dict[str, float]:
        return evaluate(self.model, self.rule, self.encoder, dataset, T, self.cfg.train.eval_batch_size,
                        self.cfg.encoder.eval_seed)

    def fit(self) -> dict[str, Any]:
        """Train the remaining epochs, then evaluate at every eval T; returns (and writes) the results."""
        cfg, t_start = self.cfg, time.perf_counter()
        self.echo(f"{cfg.model.name} ({sum(p.numel() for p in self.model.parameters()):,} parameters) on "
                  f"{cfg.data.name}: {len(self.train_set)} train / {len(self.val) if self.val else 0} val / "
                  f"{len(self.test)} test, rule {cfg.rule.name}, T={cfg.encoder.T} (test T={cfg.test_T}) -> {self.out}")
        for epoch in range(self.start_epoch, cfg.train.epochs):
            row: dict[str, Any] = {"epoch": epoch + 1, "lr": self.optimizer.param_groups[0]["lr"]}
            row.update(self.train_epoch(epoch))
            self.scheduler.step()
            if self.val is not None:
                v = self._evaluate(self.val, cfg.test_T)
                row.update(val_acc=v["acc"], val_loss=v["loss"])
            te = self._evaluate(self.test, cfg.test_T)
            row.update(test_acc=te["acc"], test_loss=te["loss"], test_T=cfg.test_T)
            self.history.append(row)
            save_checkpoint(self._payload(epoch), self.out / CHECKPOINT)
            self._write_metrics()
            val = f" val {row['val_acc']:.2%}" if "val_acc" in row else ""
            self.echo(f"epoch {epoch + 1}/{cfg.train.epochs}  loss {row['train_loss']:.4f}  "
                      f"train {row['train_acc']:.2%}{val}  test {row['test_acc']:.2%} (T={cfg.test_T})  "
                      f"{row['train_time_s']:.1f}s "
                      f"{row['train_samples_per_s']:.0f} samples/s")
        results = self.final_results(time.perf_counter() - t_start)
        (self.out / RESULTS).write_text(json.dumps(results, indent=2) + "\n")
        return results

    def final_results(self, wall: float) -> dict[str, Any]:
        cfg = self.cfg
        by_T = {str(T): self._evaluate(self.test, T)["acc"] for T in cfg.eval_T}
        last = self.history[-1] if self.history else {}
        sps = [h["train_samples_per_s"] for h in self.history]
        return {
            "model": cfg.model.name,
            "dataset": self.test.name,
            "rule": cfg.rule.name,
            "seed": cfg.train.seed,
            "epochs": len(self.history),
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "train_T": cfg.encoder.T,
            "test_T": cfg.test_T,
            "test_acc": by_T[str(cfg.test_T)],
            "test_acc_by_T": by_T,
            "train_acc_running": last.get("train_acc"),
            "val_acc": last.get("val_acc"),
            "train_samples_per_s_median": sorted(sps)[len(sps) // 2] if sps else None,
            "wall_time_s_this_session": wall,
            "versions": {"dnmsnn": __version__, "torch": torch.__version__, "python": platform.python_version()},
            "threads": torch.get_num_threads(),
        }
