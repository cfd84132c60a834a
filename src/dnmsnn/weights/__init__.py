"""Shipped trained weights of the reproductions, torchvision-style: each with its metadata, loaded by name.

A weight entry is two files in this folder: ``MODEL--TAG.json`` (metadata) and ``MODEL--TAG.pt`` (the
members' state dicts, ``torch.save({"members": [state_dict, ...]})``). The metadata says which paper the
weights reproduce and its number, the run config and command that trained them, the commit, the accuracy
measured on the test set with exactly :func:`evaluate` (``measured``), the seed spread of the report, and the
file's SHA-256, which is checked before the file is read.

    >>> net = dnmsnn.models.create("bondarev_mlp", weights="mnist")         # one network, eval mode
    >>> nets = dnmsnn.weights.load_members("mlp/dnm_mnist")                 # a DNM-SNN cohort: every member
    >>> dnmsnn.weights.evaluate("bondarev_mlp/mnist", data_dir="../shared/data")["accuracy"]

``dnmsnn reproduce bondarev|asf|dnm`` and ``dnmsnn eval --weights NAME`` are built on :func:`evaluate`.
``scripts/ship_weights.py RUN_DIR NAME ...`` makes an entry from a finished run.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..errors import CheckpointError, InputError

if TYPE_CHECKING:
    from ..network import Network
    from ..train.config import RunConfig

FOLDER = Path(__file__).resolve().parent
WEIGHTS_DIR_ENV = "DNMSNN_WEIGHTS_DIR"


@dataclass(frozen=True)
class WeightsInfo:
    """One shipped entry: ``name`` is ``MODEL/TAG``; ``meta`` the whole metadata dict."""

    name: str
    folder: Path
    meta: dict[str, Any]

    @property
    def model(self) -> str:
        return str(self.meta["model"])

    @property
    def members(self) -> int:
        return int(self.meta["members"])

    @property
    def file(self) -> Path:
        return self.folder / str(self.meta["file"])

    @property
    def reproduces(self) -> str:
        return str(self.meta.get("reproduces", ""))


def weights_dir(folder: str | os.PathLike | None = None) -> Path:
    """Where entries are read from: ``folder``, else ``$DNMSNN_WEIGHTS_DIR``, else the package's own folder."""
    if folder is not None:
        return Path(folder)
    env = os.environ.get(WEIGHTS_DIR_ENV, "").strip()
    return Path(env) if env else FOLDER


def _key(name: str) -> str:
    return name.replace("/", "--")


def available(folder: str | os.PathLike | None = None) -> list[str]:
    """Names (``MODEL/TAG``) of every shipped entry, sorted."""
    return sorted(p.stem.replace("--", "/") for p in weights_dir(folder).glob("*--*.json"))


def info(name: str, folder: str | os.PathLike | None = None) -> WeightsInfo:
    """The metadata of entry ``name``; an :class:`InputError` listing the entries when there is none."""
    root = weights_dir(folder)
    path = root / f"{_key(name)}.json"
    if "/" not in name or not path.is_file():
        names = ", ".join(available(folder)) or "none"
        raise InputError(f"no shipped weights {name!r}; available: {names}")
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path} (metadata of {name}) cannot be read: {exc}") from None
    return WeightsInfo(name, root, meta)


def for_model(model: str, folder: str | os.PathLike | None = None) -> list[str]:
    """The tags shipped for one registered model."""
    return [n.split("/", 1)[1] for n in available(folder) if n.split("/", 1)[0] == model]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_state_dicts(name: str, folder: str | os.PathLike | None = None) -> list[dict[str, torch.Tensor]]:
    """Every member's state dict, after the file's SHA-256 has been checked against the metadata."""
    entry = info(name, folder)
    path = entry.file
    if not path.is_file():
        raise CheckpointError(f"the weights file of {name} is missing: {path}")
    raw = path.read_bytes()
    if hashlib.sha256(raw).hexdigest() != entry.meta.get("sha256"):
        raise CheckpointError(f"{path} is corrupt (its SHA-256 differs from the one in {_key(name)}.json); "
                              "reinstall dnmsnn or restore the file")
    try:
        payload = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
        states = payload["members"]
    except Exception as exc:  # noqa: BLE001 - an unreadable file that passed its hash: a wrong entry
        raise CheckpointError(f"{path} cannot be read as dnmsnn weights: {exc}") from None
    if len(states) != entry.members:
        raise CheckpointError(f"{path} holds {len(states)} member(s), its metadata says {entry.members}")
    return states


def run_config(name: str, folder: str | os.PathLike | None = None) -> RunConfig:
    """The config of the run that trained the entry (its encoder, T and evaluation seed included)."""
    from ..train.config import RunConfig
    from ..train.configtools import from_dict

    return from_dict(RunConfig, info(name, folder).meta["config"])


def load_members(name: str, folder: str | os.PathLike | None = None) -> list[Network]:
    """Every member of the entry as a network in eval mode (one for a single network, K for a cohort)."""
    from .. import models

    entry = info(name, folder)
    nets = []
    for state in load_state_dicts(name, folder):
        net = models.create(entry.model, **_builder_args(entry))
        try:
            net.load_state_dict(state)
        except (RuntimeError, KeyError) as exc:
            raise CheckpointError(f"weights {name} do not fit model {entry.model!r}: {exc}") from None
        nets.append(net.eval())
    return nets


def _builder_args(entry: WeightsInfo) -> dict[str, Any]:
    args = dict(entry.meta.get("model_args", {}))
    if "input_shape" in args:
        args["input_shape"] = tuple(args["input_shape"])
    return args


def load(model: str, tag: str, member: int = 0, overrides: dict[str, Any] | None = None,
         folder: str | os.PathLike | None = None) -> Network:
    """``models.create(model, weights=tag)``: member ``member`` of entry ``model/tag``, in eval mode.

    ``overrides`` (other builder arguments) must agree with the ones the weights were trained with."""
    if "/" in tag:  # a full name is accepted when it is this model's
        owner, _, tag = tag.partition("/")
        if owner != model:
            raise InputError(f"weights {owner}/{tag} belong to model {owner!r}, not {model!r}")
    name = f"{model}/{tag}"
    entry = info(name, folder)
    args = _builder_args(entry)
    clash = {k: v for k, v in (overrides or {}).items()
             if k not in args or _plain(v) != _plain(args[k])}
    if clash:
        raise InputError(f"weights {name} were trained with {', '.join(f'{k}={args.get(k)!r}' for k in clash)}; "
                         f"drop {', '.join(clash)} or build the model without weights")
    if not 0 <= member < entry.members:
        raise InputError(f"weights {name} hold {entry.members} member(s); member must lie in 0..{entry.members - 1}")
    return load_members(entry.name, folder)[member]


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, (tuple, list)) else value


def evaluate(name: str, data_dir: str | os.PathLike | None = None, T: int | None = None,
             folder: str | os.PathLike | None = None) -> dict[str, Any]:
    """Test accuracy of entry ``name`` at ``T`` (default: its run's test T), computed exactly as the run's
    own test: same encoder, evaluation seed and batch size. Returns ``{"T", "samples", "accuracy"
    (member 0, or the run's headline: member 0), "members": [...], "mix": {mode: acc}}`` (mix for cohorts,
    ``better`` / ``best_member`` as decided on the run's validation split)."""
    from .. import Mix
    from ..data import load_dataset
    from ..train.evaluate import run_outputs

    entry = info(name, folder)
    cfg = run_config(name, folder)
    nets = load_members(name, folder)
    test = load_dataset(cfg.data.name, "test", data_dir, limit=cfg.data.test_limit)
    T = T or cfg.test_T
    outputs, labels = run_outputs(cfg, nets, test, T)
    accs = [float((o.argmax(-1) == labels).double().mean()) for o in outputs]
    result: dict[str, Any] = {"name": name, "T": T, "samples": len(labels), "accuracy": accs[0], "members": accs}
    if len(nets) > 1:
        mix = Mix()
        chosen = entry.meta.get("measured", {}).get("mix_choice", {})
        mix.better, mix.best_member = chosen.get("better"), chosen.get("best_member")
        result["mix"] = {m: float((mix.predict(outputs, m) == labels).double().mean())
                         for m in mix.modes}
    return result
