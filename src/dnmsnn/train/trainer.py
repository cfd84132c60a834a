"""The training loop: data -> encoder -> rule (gradient) -> optimizer, with metrics and checkpoints.

Determinism: every epoch's randomness (data order, encoder stream, dropout) is derived from
``(seed, epoch)`` (dropout from ``(model_seed, epoch)``, one stream per cohort member), so an
uninterrupted run and a run resumed from any epoch checkpoint see the same numbers. Run directory:
``config.yaml``, ``data.json`` (where the data was, with the files' MD5s), ``metrics.jsonl`` (one line per
epoch), ``checkpoint.pt`` (atomic, after every epoch), ``results.json`` (at the end). While it runs, a run
holds an OS lock on its folder (see :mod:`dnmsnn.train.rundir`).

Several processes (torchrun, ``dnmsnn train --nproc N``): :mod:`dnmsnn.train.distributed` does the work;
the lines here that call ``self.par`` are marked ``[distributed]``, and in one process ``self.par`` is a
:class:`~dnmsnn.train.distributed.Local` that does exactly what this loop did before.
"""
from __future__ import annotations

import errno
import json
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from tqdm.auto import tqdm

from .. import __version__, models, rules
from ..cohort import Cohort, Mix
from ..data import DATA_DIR_ENV, ArrayDataset, load_dataset, resolve_data_dir, split_validation
from ..data.augment import Augmentation
from ..encoders import Encoder, create_encoder
from ..errors import CheckpointError, ConfigError, DnmsnnError
from ..network import Network
from ..rules.base import LearningRule
from . import distributed
from .checkpoint import load_checkpoint, remove_stale_temporaries, save_checkpoint, write_atomic
from .config import RunConfig, config_dict, load_run_config, save_run_config
from .evaluate import batches, collect_outputs, metrics
from .optim import build_optimizer, build_scheduler
from .rundir import RunLock, changed_files, read_data_record, record_data, run_data_dir, writing

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
RESULTS = "results.json"
CONFIG = "config.yaml"
# keys that may change between a run and its resumption
RESUMABLE_CHANGES = {("train", "epochs"), ("train", "progress"), ("train", "threads"), ("train", "parallel")}


class TrainingError(DnmsnnError):
    """Training cannot go on (e.g. the loss became NaN); the last good checkpoint is kept."""


def derived_seed(seed: int, epoch: int, stream: int) -> int:
    """A 62-bit seed for one random stream of one epoch (0: data order, 1: encoder, 2: torch global,
    3: augmentation; 4 with epoch 0: the batch a firing-rate calibration encodes)."""
    return (seed * 1_000_003 + epoch * 9_176 + stream * 7_919 + 12_345) % (1 << 62)


def build_model(cfg: RunConfig, data_shape: tuple[int, ...], num_classes: int) -> Network:
    """The configured model; ``input_shape`` / ``num_classes`` default to the dataset's when the builder takes them."""
    args = dict(cfg.model.args)
    try:
        defaults = models.info(cfg.model.name).defaults
    except DnmsnnError as exc:
        raise ConfigError(f"model.name: {exc}") from None
    if "input_shape" in defaults:
        args.setdefault("input_shape", tuple(data_shape))
    if "num_classes" in defaults:
        args.setdefault("num_classes", num_classes)
    if "input_shape" in args:
        args["input_shape"] = tuple(args["input_shape"])
    try:
        model = models.create(cfg.model.name, **args)
    except (DnmsnnError, ValueError) as exc:
        raise ConfigError(_name_model_key(str(exc), args)) from None
    if model.input_shape and tuple(model.input_shape) != tuple(data_shape):
        raise ConfigError(f"model {cfg.model.name!r} expects inputs {model.input_shape} but dataset {cfg.data.name!r} "
                          f"has {tuple(data_shape)}; set model.args.input_shape or pick another model")
    return model


def _name_model_key(message: str, args: dict[str, Any]) -> str:
    """A builder's error message with the config key it is about: ``beta must ...`` -> ``model.args.beta must ...``."""
    import re

    for key in sorted(args, key=len, reverse=True):
        if message.startswith(f"{key} "):
            return f"model.args.{key}{message[len(key):]}"
    named = [k for k in args if re.search(rf"\b{re.escape(k)}\b", message)]
    return f"model.args.{named[0]}: {message}" if len(named) == 1 else f"model.args: {message}"


def _differences(key: str, old: Any, new: Any) -> list[str]:
    """The config keys that differ, one level into dicts (``model.args.beta``, not ``model.args``)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [f"{key}.{k}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    return [key] if old != new else []


@dataclass
class Member:
    """One network of the run with what is its own: seed, weights, rule instance, optimizer, schedule."""

    seed: int
    model: Network
    rule: LearningRule
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler

    def state(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict()}

    def load(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])


class Evaluation(NamedTuple):
    """Every member's metrics and logits [N, classes] on one dataset at one T, and the labels [N]."""

    metrics: list[dict[str, float]]
    outputs: list[torch.Tensor]
    labels: torch.Tensor


class Trainer:
    """Train one network, or a cohort of ``cohort.size`` networks, as a :class:`RunConfig` says, into ``out_dir``.

    Cohort (Cao et al., :class:`dnmsnn.Cohort`): member k is initialised from ``model_seed + k`` and has
    its own rule instance, optimizer, schedule and dropout stream (derived from ``(model_seed + k,
    epoch)``); all members see the same data order and the same encoded batches (derived from
    ``(seed, epoch)``). Hence with lambda = 0 member k is bitwise the single-network run with
    ``train.model_seed = model_seed + k`` and the same ``train.seed``, and member 0 is the single run of
    the same config. ``model``, ``rule``, ``optimizer``, ``scheduler`` are member 0's; metrics rows and
    results keep their single-network keys (member 0's values) and add ``members`` and ``mix``.
    """

    def __init__(
        self,
        cfg: RunConfig,
        out_dir: str | Path,
        data_dir: str | None = None,
        resume: bool = False,
        echo: Callable[[str], None] = print,
    ) -> None:
        self.cfg, self.out, self.echo = cfg, Path(out_dir), echo
        self.lock = RunLock(self.out)
        self.complete = False  # a resumed run that has already trained every epoch and written its results
        self.par = distributed.setup(cfg)  # [distributed] Local in one process; rank 0 alone prints and writes
        if not self.par.is_main:
            self.echo = lambda s: None
        # [distributed] rank 0 locks and checks the run directory, all raise; a --resume of a run that never
        # reached its first checkpoint starts it from the beginning
        asked_resume, resume = resume, self.par.on_main(self._prepare_dir, resume)
        t = cfg.train
        if t.threads:
            torch.set_num_threads(t.threads)
        if t.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        given, source = self._data_location(data_dir, asked_resume)
        train = load_dataset(cfg.data.name, "train", given, limit=cfg.data.train_limit)
        self.test = load_dataset(cfg.data.name, "test", given, limit=cfg.data.test_limit)
        self.par.on_main(self._record_data, given, source, {**train.files, **self.test.files})
        self.train_set, self.val = split_validation(train, cfg.data.val_fraction, t.seed)
        self.members = [self._build_member(train.shape, len(train.classes), cfg.model_seed + k)
                        for k in range(cfg.cohort.size)]
        self.cohort = Cohort([m.model for m in self.members], [m.rule for m in self.members],
                             exchange=cfg.cohort.exchange, weight=cfg.cohort.weight,
                             temperature=cfg.cohort.temperature, seeds=[m.seed for m in self.members],
                             separate_predictions=cfg.cohort.separate_predictions)
        self.encoder: Encoder = create_encoder(cfg.encoder.name, cfg.encoder.T, seed=t.seed)
        if cfg.model.firing_rate and not resume:  # a resumed run loads its calibrated weights
            self._calibrate()
        self.augment = Augmentation(cfg.data.shift, cfg.data.hflip)
        _, h, w = train.shape
        if cfg.data.shift >= min(h, w):
            raise ConfigError(f"data.shift: {cfg.data.shift} pixels would move a {h}x{w} image out of view; "
                              f"use less than {min(h, w)}")
        self.history: list[dict[str, Any]] = []
        self.start_epoch = 0
        if resume:
            self._load()
        self.par.attach(self.members, self.echo)  # [distributed] gradient synchronisation (DDP)

    def _build_member(self, data_shape: tuple[int, ...], num_classes: int, seed: int) -> Member:
        cfg = self.cfg
        torch.manual_seed(seed)
        model = build_model(cfg, data_shape, num_classes)
        rule = rules.create(cfg.rule.name, loss=cfg.rule.loss, **cfg.rule.args)
        optimizer = build_optimizer(model.parameters(), cfg.optim)
        scheduler = build_scheduler(optimizer, cfg.optim, cfg.train.epochs)
        rule.bind_optimizer(optimizer)
        return Member(seed, model, rule, optimizer, scheduler)

    def _calibrate(self) -> None:
        """Firing-rate-aware initialisation of every member on the same encoded batch: the first
        ``model.calibration_samples`` training images, encoded at the training T from a stream of their own."""
        from ..calibrate import calibrate_firing
        from ..graph import layer_labels

        cfg = self.cfg
        low, high = cfg.model.firing_rate
        images = self.train_set.images[:cfg.model.calibration_samples]
        encoder = create_encoder(cfg.encoder.name, cfg.encoder.T, seed=derived_seed(cfg.train.seed, 0, 4))
        x = encoder(images)
        for k, m in enumerate(self.members):
            who = f"member {k} " if len(self.members) > 1 else ""
            records, labels = calibrate_firing(m.model, x, low, high), layer_labels(m.model)
            self.echo(f"{who}firing rates calibrated into [{low}, {high}] on {len(images)} training images: " +
                      ", ".join(f"{labels.get(r.name, r.name)} {r.rate_before:.3f}->{r.rate_after:.3f} (x{r.scale:.3g})"
                                + ("" if r.reached else " NOT REACHED") for r in records))

    @property
    def model(self) -> Network:
        return self.members[0].model

    @property
    def rule(self) -> LearningRule:
        return self.members[0].rule

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self.members[0].optimizer

    @property
    def scheduler(self) -> torch.optim.lr_scheduler.LRScheduler:
        return self.members[0].scheduler

    # ----------------------------------------------------------------- run directory
    def _prepare_dir(self, resume: bool) -> bool:
        """Lock the run folder, check it against ``resume``; returns whether there is a checkpoint to resume."""
        ckpt = self.out / CHECKPOINT
        with writing(self.out, "the run folder", "nothing yet", "start the run again"):
            self.out.mkdir(parents=True, exist_ok=True)
            self.lock.acquire()  # before anything is read or written: a second process stops here
        if not resume and ckpt.exists():
            raise ConfigError(f"{self.out} already holds a run; pass --resume to continue it or choose another --out")
        if resume and (self.out / CONFIG).exists():
            saved = config_dict(load_run_config(self.out / CONFIG))
            now = config_dict(self.cfg)
            if saved["model"].get("name") != now["model"]["name"]:
                raise ConfigError(f"--resume with a different model: the run in {self.out} trains "
                                  f"{saved['model'].get('name')!r}, model.name now says {now['model']['name']!r}; "
                                  f"resume with the run's own {CONFIG} or start a new --out")
            diff = [key for s in now for k in now[s] if (s, k) not in RESUMABLE_CHANGES
                    for key in _differences(f"{s}.{k}", saved[s].get(k), now[s][k])]
            if diff:
                raise ConfigError(f"--resume with a different config ({', '.join(diff)}); resume with the run's own "
                                  f"{CONFIG} or start a new --out")
        if resume and not ckpt.exists():
            self.echo(f"no checkpoint in {self.out} yet (the run ended before its first epoch did): starting it "
                      "from the beginning")
            resume = False
        if resume:
            remove_stale_temporaries(ckpt)  # left by a kill during a checkpoint write
        with writing(self.out, CONFIG, "nothing yet" if not resume else "the last checkpoint",
                     self._resume_hint()):
            save_run_config(self.cfg, self.out / CONFIG)
        return resume

    def _data_location(self, data_dir: str | None, resume: bool) -> tuple[str | None, str]:
        """(data dir to load from, where it came from): --data-dir, data.dir, the resumed run's record,
        $DNMSNN_DATA_DIR, ./data -- the rule of :mod:`dnmsnn.train.rundir`."""
        if data_dir:
            return data_dir, "--data-dir"
        if self.cfg.data.dir:
            return self.cfg.data.dir, "data.dir"
        if resume:
            given, source = self.par.on_main(run_data_dir, self.out)  # [distributed] rank 0 has the run folder
            if given is not None:
                return given, source
        return None, f"${DATA_DIR_ENV}" if os.environ.get(DATA_DIR_ENV, "").strip() else "default (./data)"

    def _record_data(self, given: str | None, source: str, files: dict[str, str]) -> None:
        resolved = resolve_data_dir(given)
        old = read_data_record(self.out)
        if old and source.startswith("the run's"):  # found through the record: keep what the user first gave
            given, source = old.get("given"), old.get("source", source)
        changed = changed_files(old, resolved, files)
        if changed:
            self.echo(f"warning: {', '.join(changed)} differ from the files this run was trained with so far "
                      f"(MD5 in {self.out / 'data.json'})")
        with writing(self.out, "data.json", "the files before it", self._resume_hint()):
            record_data(self.out, self.cfg.data.name, given, source, resolved, files)

    def _resume_hint(self) -> str:
        return f"continue with: dnmsnn train --out {self.out} --resume"

    def _kept(self) -> str:
        """What a failed write leaves in the run folder (the checkpoint is replaced atomically, never torn)."""
        if not self.history:
            return "no checkpoint yet (a --resume starts the run from the beginning)"
        n = self.history[-1]["epoch"]
        return f"the checkpoint and metrics after epoch {n}"

    def close(self) -> None:
        """Release the run folder's lock (also done at the end of :meth:`fit` and when the process exits)."""
        self.lock.release()

    def __enter__(self) -> Trainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _payload(self, epoch: int) -> dict[str, Any]:
        """Member 0 under the single-network keys (what ``dnmsnn eval`` reads); a cohort adds ``members`` (all)."""
        states = [m.state() for m in self.members]
        payload = {"dnmsnn_version": __version__, "model_name": self.cfg.model.name,
                   "config": config_dict(self.cfg), "epoch": epoch, **states[0], "history": self.history}
        if len(states) > 1:
            payload["members"] = states  # the same objects as member 0's above: torch.save stores them once
        return payload

    def _load(self) -> None:
        ckpt = self.par.on_main(load_checkpoint, self.out / CHECKPOINT)  # [distributed] rank 0 reads, all receive
        if ckpt.get("model_name") != self.cfg.model.name:
            raise CheckpointError(f"checkpoint is of model {ckpt.get('model_name')!r}, "
                                  f"config says {self.cfg.model.name!r}")
        states = ckpt.get("members", [ckpt])
        if len(states) != len(self.members):
            raise CheckpointError(f"checkpoint holds {len(states)} network(s), config says cohort.size = "
                                  f"{len(self.members)}")
        try:
            for member, state in zip(self.members, states, strict=True):
                member.load(state)
        except (RuntimeError, KeyError, ValueError) as exc:
            raise CheckpointError(f"checkpoint does not fit this model/config: {exc}") from None
        self.history = list(ckpt["history"])
        self.start_epoch = int(ckpt["epoch"]) + 1
        if self.par.is_main:  # [distributed]
            self._write_metrics()
        epochs = self.cfg.train.epochs
        if self.start_epoch >= epochs and (self.out / RESULTS).is_file():
            self.complete = True
            self.echo(f"the run in {self.out} is complete ({self.start_epoch} of {epochs} epochs; results in "
                      f"{self.out / RESULTS}); to train it longer: dnmsnn train --out {self.out} --resume --set "
                      f"train.epochs={self.start_epoch + max(1, epochs // 2)}")
        else:
            self.echo(f"resumed {self.out} after epoch {self.start_epoch} of {epochs}")

    def _write_metrics(self) -> None:
        with writing(self.out, METRICS, self._kept(), self._resume_hint()):
            write_atomic(self.out / METRICS, "".join(json.dumps(m) + "\n" for m in self.history).encode())

    # ----------------------------------------------------------------- loop
    def train_epoch(self, epoch: int) -> dict[str, Any]:
        """One pass over the training set; member 0's loss and accuracy (a cohort adds ``members``)."""
        cfg, members, par = self.cfg, self.members, self.par
        for m in members:
            m.model.train()
        order_rng = torch.Generator().manual_seed(derived_seed(cfg.train.seed, epoch, 0))
        order = torch.randperm(len(self.train_set), generator=order_rng)
        self.encoder.seed(derived_seed(cfg.train.seed, epoch, 1))
        self.encoder.with_T(cfg.encoder.T)
        self.cohort.seed([derived_seed(m.seed, epoch, 2) for m in members])
        self.augment.seed(derived_seed(cfg.train.seed, epoch, 3))
        weight = cfg.cohort.weight_at(epoch)
        n_batches = math.ceil(len(self.train_set) / cfg.train.batch_size)
        bar = tqdm(batches(self.train_set, cfg.train.batch_size, order), total=n_batches, leave=False,
                   desc=f"epoch {epoch + 1}/{cfg.train.epochs}",
                   disable=None if cfg.train.progress and par.is_main else True)  # [distributed] rank 0 only
        loss_sum, correct, seen, t0 = [0.0] * len(members), [0] * len(members), 0, time.perf_counter()
        for b, (images, labels) in enumerate(bar):
            for m in members:
                m.optimizer.zero_grad(set_to_none=True)
            if self.augment.active:  # the whole global batch, same draws on every rank
                images = self.augment(images)
            # [distributed] per trained member (loss, loss x samples, correct) of the global batch; Local: the
            # cohort's loss_backward on the whole batch, as before
            stats = par.train_batch(self.cohort, self.encoder(images), labels, weight)
            for k, (loss, loss_x_n, right) in stats.items():
                m = members[k]
                if not math.isfinite(loss):
                    who = f" of member {k}" if len(members) > 1 else ""
                    raise TrainingError(f"the loss{who} became {loss} at epoch {epoch + 1}, batch {b + 1}; the "
                                        f"last good checkpoint is kept in {self.out / CHECKPOINT}. Lower optim.lr or "
                                        "check the input")
                if not m.rule.steps_optimizer:  # online per-step rules step it themselves
                    if cfg.optim.grad_clip:
                        torch.nn.utils.clip_grad_norm_(m.model.parameters(), cfg.optim.grad_clip)
                    m.optimizer.step()
                loss_sum[k] += loss_x_n
                correct[k] += right
            seen += labels.shape[0]
            bar.set_postfix(loss=f"{loss_sum[0] / seen:.4f}", acc=f"{correct[0] / seen:.3f}", refresh=False)
        loss_sum, correct = par.reduce_epoch(loss_sum, correct)  # [distributed] cohort parallel: sums over ranks
        elapsed = time.perf_counter() - t0
        per_member = [{"train_loss": ls / seen, "train_acc": c / seen} for ls, c in zip(loss_sum, correct, strict=True)]
        row = {**per_member[0], "train_time_s": elapsed, "train_samples_per_s": seen / elapsed}
        if len(members) > 1:
            row.update(exchange_weight=weight, members=per_member)
        return row

    def _evaluate(self, dataset: ArrayDataset, T: int) -> Evaluation:
        """All members on the same fixed-seed input stream."""
        bs = self.cfg.train.eval_batch_size
        outputs, labels = collect_outputs([m.model for m in self.members], [m.rule for m in self.members],
                                          self.encoder, dataset, T, bs, self.cfg.encoder.eval_seed)
        return Evaluation([metrics(o, labels, m.rule.loss, bs) for o, m in zip(outputs, self.members, strict=True)],
                          outputs, labels)

    def _mix(self, val: Evaluation | None) -> Mix:
        """The mix module, with ``better`` and ``best_member`` decided on the validation split when there is one."""
        return Mix().fit(val.outputs, val.labels) if val is not None else Mix()

    def fit(self) -> dict[str, Any]:
        """Train the remaining epochs, then evaluate at every eval T; returns (and writes) the results.

        The run folder's lock is released when it returns or raises."""
        try:
            if self.complete:
                return json.loads((self.out / RESULTS).read_text())
            return self._fit()
        finally:
            self.close()

    def _fit(self) -> dict[str, Any]:
        cfg, K = self.cfg, len(self.members)
        self._warm_up_kernels()
        t_start = time.perf_counter()
        params = sum(p.numel() for p in self.model.parameters())
        ramp = f", ramp {cfg.cohort.ramp_epochs} epochs" if cfg.cohort.ramp_epochs else ""
        who = (f"{cfg.model.name} ({params:,} parameters)" if K == 1 else
               f"cohort of {K} x {cfg.model.name} ({params:,} parameters each; exchange {cfg.cohort.exchange}, "
               f"lambda {cfg.cohort.weight}, temperature {cfg.cohort.temperature}, warm-up "
               f"{cfg.cohort.warmup_epochs} epochs{ramp})")
        self.echo(f"{who} on {cfg.data.name}: {len(self.train_set)} train / {len(self.val) if self.val else 0} val / "
                  f"{len(self.test)} test, rule {cfg.rule.name}, T={cfg.encoder.T} (test T={cfg.test_T}) -> {self.out}")
        if K > 1 and self.val is None:
            self.echo("no validation split (data.val_fraction = 0): the mix modes 'better' and 'best_member' are "
                      "decided on validation data only, so they are left out")
        board = None
        if cfg.train.tensorboard and self.par.is_main:  # [distributed] rank 0 alone writes
            from .tensorboard import TensorBoardLogger

            board = TensorBoardLogger(cfg.train.tensorboard)
        for epoch in range(self.start_epoch, cfg.train.epochs):
            row: dict[str, Any] = {"epoch": epoch + 1, "lr": self.optimizer.param_groups[0]["lr"]}
            row.update(self.train_epoch(epoch))
            for k in self.par.own_members(len(self.members)):  # [distributed] all but in cohort parallel
                self.members[k].scheduler.step()
            self.par.collect_members(self.members)  # [distributed] cohort parallel: every member's state to rank 0
            if not self.par.is_main:  # [distributed] rank 0 alone evaluates, checkpoints and logs
                continue
            self._score_epoch(row)
            kept = self._kept()  # before this epoch's row: a failed write leaves the previous checkpoint
            self.history.append(row)
            with writing(self.out, CHECKPOINT, kept, self._resume_hint()):
                if not (self.out / CONFIG).is_file():  # deleted under the run: never re-create a bare folder
                    raise FileNotFoundError(errno.ENOENT, "the run's config.yaml disappeared", str(self.out))
                save_checkpoint(self._payload(epoch), self.out / CHECKPOINT)
            self._write_metrics()
            if board is not None:
                board.log(row)
                board.flush()
            self.echo(self._epoch_line(row))
        if board is not None:
            board.close()
        return self.par.on_main(self._finish, t_start)  # [distributed] every rank returns rank 0's results

    def _finish(self, t_start: float) -> dict[str, Any]:
        results = self.final_results(time.perf_counter() - t_start)
        hint = self._resume_hint() + " (it re-evaluates and writes the results)"
        with writing(self.out, RESULTS, self._kept(), hint):
            write_atomic(self.out / RESULTS, (json.dumps(results, indent=2) + "\n").encode())
        self.echo(f"results in {self.out / RESULTS}")
        return results

    def _warm_up_kernels(self) -> None:
        """Load (on a first run: compile) the C++ kernels and this machine's spike-kernel verdict (on a first
        run: measure it) before any epoch is timed, so no training speed includes either one-time cost."""
        from ..functional import cpp
        from ..functional.spike_matmul import machine_choice

        if cpp.load() is not None:
            machine_choice()

    def _score_epoch(self, row: dict[str, Any]) -> None:
        """Add validation and test metrics at test_T to an epoch row: member 0's under the single-network keys;
        a cohort also each member's in ``members`` and every mix mode's in ``mix``."""
        cfg = self.cfg
        val = self._evaluate(self.val, cfg.test_T) if self.val is not None else None
        test = self._evaluate(self.test, cfg.test_T)
        scores: list[dict[str, float]] = [{} for _ in self.members]
        for k, s in enumerate(scores):
            if val is not None:
                s.update(val_acc=val.metrics[k]["acc"], val_loss=val.metrics[k]["loss"])
            s.update(test_acc=test.metrics[k]["acc"], test_loss=test.metrics[k]["loss"])
        row.update(scores[0], test_T=cfg.test_T)
        if len(self.members) > 1:
            row["members"] = [{**m, **s} for m, s in zip(row.pop("members"), scores, strict=True)]
            mix = self._mix(val)
            row["mix"] = {"better": mix.better, "best_member": mix.best_member, "val_acc": mix.fit_accuracy or None,
                          "test_acc": mix.accuracy(test.outputs, test.labels)}

    def _epoch_line(self, row: dict[str, Any]) -> str:
        cfg = self.cfg
        val = f" val {row['val_acc']:.2%}" if "val_acc" in row else ""
        line = (f"epoch {row['epoch']}/{cfg.train.epochs}  loss {row['train_loss']:.4f}  train {row['train_acc']:.2%}"
                f"{val}  test {row['test_acc']:.2%} (T={cfg.test_T})  {row['train_time_s']:.1f}s "
                f"{row['train_samples_per_s']:.0f} samples/s")
        if "members" in row:
            mix = row["mix"]
            names = {"better": f"better({mix['better']})", "best_member": f"best_member({mix['best_member']})"}
            line += ("  | members test " + " ".join(f"{m['test_acc']:.2%}" for m in row["members"]) + "  mix test " +
                     " ".join(f"{names.get(mode, mode)} {acc:.2%}" for mode, acc in mix["test_acc"].items()))
        return line

    def final_results(self, wall: float) -> dict[str, Any]:
        cfg = self.cfg
        tests = {T: self._evaluate(self.test, T) for T in cfg.eval_T}
        by_T = {str(T): e.metrics[0]["acc"] for T, e in tests.items()}
        last = self.history[-1] if self.history else {}
        sps = [h["train_samples_per_s"] for h in self.history]
        results = {
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
        if len(self.members) > 1:
            results.update(self._cohort_results(tests, last))
        return results

    def _cohort_results(self, tests: dict[int, Evaluation], last: dict[str, Any]) -> dict[str, Any]:
        """Every member's accuracies and every mix mode's, ``better`` / ``best_member`` decided on validation."""
        cfg = self.cfg
        val = self._evaluate(self.val, cfg.test_T) if self.val is not None else None
        mix = self._mix(val)
        last_members = last.get("members", [{} for _ in self.members])
        members = [{"seed": m.seed,
                    "parameters": sum(p.numel() for p in m.model.parameters()),
                    "test_acc": tests[cfg.test_T].metrics[k]["acc"],
                    "test_acc_by_T": {str(T): e.metrics[k]["acc"] for T, e in tests.items()},
                    "train_acc_running": last_members[k].get("train_acc"),
                    "val_acc": val.metrics[k]["acc"] if val is not None else None}
                   for k, m in enumerate(self.members)]
        by_T = {str(T): mix.accuracy(e.outputs, e.labels) for T, e in tests.items()}
        return {"members": members,
                "mix": {"space": mix.space, "decided_on": "val" if val is not None else None,
                        "better": mix.better, "best_member": mix.best_member, "val_acc": mix.fit_accuracy or None,
                        "test_acc": by_T[str(cfg.test_T)], "test_acc_by_T": by_T}}
