"""Atomic, self-verifying checkpoints.

File layout: ``b"DNMSNN-CKPT\\n"`` + 64 hex chars of SHA-256 of the payload + ``b"\\n"`` + payload, where
the payload is ``torch.save`` of a dict of tensors and plain values. Writes go to a temporary file in
the same folder, are fsynced, then renamed over the target, so a kill at any moment leaves either the
old or the new checkpoint, never a torn one. Loading checks the magic, the hash and the format version.
"""
from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError

MAGIC = b"DNMSNN-CKPT\n"
FORMAT_VERSION = 1


def save_checkpoint(payload: dict[str, Any], path: str | Path) -> None:
    """Write ``payload`` (plus the format version) to ``path`` atomically."""
    buf = io.BytesIO()
    torch.save({"format_version": FORMAT_VERSION, **payload}, buf)
    data = buf.getvalue()
    digest = hashlib.sha256(data).hexdigest().encode()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, MAGIC + digest + b"\n" + data)


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file of this process's own in the same folder, fsynced and
    renamed over ``path``: a reader, or a kill at any moment, sees the old file or the new one, never a part."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename durable too
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Delete temporary files a killed :func:`save_checkpoint` left beside ``path``; returns what was removed."""
    path = Path(path)
    stale = list(path.parent.glob(f".{path.name}.*.tmp"))
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and verify a checkpoint; any problem raises CheckpointError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}; train first or point at a run directory that has one")
    raw = path.read_bytes()
    head = len(MAGIC) + 65
    if not raw.startswith(MAGIC) or len(raw) < head or raw[head - 1:head] != b"\n":
        raise CheckpointError(f"{path} is not a dnmsnn checkpoint (bad header)")
    digest, data = raw[len(MAGIC):head - 1].decode(errors="replace"), raw[head:]
    if hashlib.sha256(data).hexdigest() != digest:
        raise CheckpointError(f"{path} is corrupt or truncated (content hash mismatch); use an older checkpoint "
                              "or retrain")
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a corrupt file to the user
        raise CheckpointError(f"{path} could not be read: {exc}") from None
    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has checkpoint format {payload.get('format_version')!r}, this dnmsnn reads "
                              f"format {FORMAT_VERSION}")
    return payload
