"""A run directory's own bookkeeping: the lock held for a run's life, the record of its data, and clear I/O errors.

* :class:`RunLock` -- an exclusive OS lock (``flock``) on the run folder itself, taken before a run writes
  anything and held until it ends. The kernel drops it when the process exits in any way (SIGKILL
  included), and there is no lock file, so nothing stale is left behind.
* :func:`record_data` / :func:`run_data_dir` -- ``RUN/data.json`` records where the run's dataset was (as
  given, resolved, and relative to the run folder) and the MD5 of every file read, so ``eval``, ``plot``,
  ``analyze`` and ``--resume`` find the data again without ``--data-dir``.
* :func:`writing` -- turns an ``OSError`` while writing into the run folder (disk full, read-only, vanished,
  permission denied) into one :class:`RunDirError` line that names the folder, what was kept and how to go on.

Where data is looked up (one rule, for every command and for ``load_dataset``): an explicit argument
(``--data-dir`` / ``data_dir=`` / the config's ``data.dir``), else the run's record (commands that read a
run), else ``$DNMSNN_DATA_DIR``, else ``./data``.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import DnmsnnError
from .checkpoint import write_atomic

DATA_RECORD = "data.json"


class RunDirError(DnmsnnError):
    """The run folder cannot be written (full, read-only, gone, not ours) or is in use by another process."""


class RunLock:
    """Exclusive lock on a run folder for one process; :meth:`release` (or the process's end) frees it.

    The lock is a ``flock`` on the folder itself (no lock file): nothing is left behind by any exit,
    SIGKILL included. A refused process names the holder, found in ``/proc/locks`` (Linux)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> RunLock:
        """Take the lock or raise :class:`RunDirError` naming the process that holds it."""
        if self._fd is not None:
            return self
        fd = os.open(self.run_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(os.fstat(fd))
            os.close(fd)
            raise RunDirError(f"{self.run_dir} is in use by another dnmsnn run ({holder}); wait for it to end or "
                              "stop it, or choose another --out") from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()


def _holder(st: os.stat_result) -> str:
    """'pid N: COMMAND' of the process holding a flock on the file of ``st``, from /proc/locks."""
    dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return "another process"
    for line in lines:
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == dev:
            pid = fields[4]
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                cmd = ""
            return f"pid {pid}" + (f": {cmd}" if cmd else "")
    return "another process"


# ------------------------------------------------------------------------------------------- errors on write
_WHY = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOENT: "the run folder is gone (deleted or unmounted)",
    errno.ESTALE: "the run folder is gone (stale network file handle)",
    errno.EIO: "an I/O error from the device",
}


@contextmanager
def writing(run_dir: Path, what: str, kept: str, resume_hint: str) -> Iterator[None]:
    """Run a write into ``run_dir``; an ``OSError`` becomes one :class:`RunDirError` line.

    ``what`` names the file being written, ``kept`` what is still there, ``resume_hint`` how to continue.
    """
    try:
        yield
    except OSError as exc:
        why = _WHY.get(exc.errno or 0, exc.strerror or type(exc).__name__)
        gone = exc.errno in (errno.ENOENT, errno.ESTALE) and not run_dir.is_dir()
        kept_now = "nothing (the folder is gone)" if gone else kept
        raise RunDirError(f"cannot write {what} in {run_dir}: {why} ({exc.strerror or exc}); kept: {kept_now}; "
                          f"fix the folder, then {resume_hint}") from None


# ------------------------------------------------------------------------------------------- data record
def record_data(run_dir: Path, dataset: str, given: str | None, source: str, resolved: Path,
                files: dict[str, str]) -> dict[str, Any]:
    """Write ``RUN/data.json``: the data dir as given and where it came from (``--data-dir``, ``data.dir``,
    ``$DNMSNN_DATA_DIR``, ``default``), resolved and relative to the run folder, and {file: MD5} relative to
    it. Returns the record."""
    root = Path(os.path.abspath(resolved))
    record = {
        "dataset": dataset,
        "given": given,
        "source": source,
        "resolved": str(root),
        "relative_to_run": os.path.relpath(root, Path(os.path.abspath(run_dir))),
        "files": {os.path.relpath(f, root): md5 for f, md5 in sorted(files.items())},
    }
    write_atomic(run_dir / DATA_RECORD, (json.dumps(record, indent=2) + "\n").encode())
    return record


def read_data_record(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's ``data.json``, or None (runs made before it existed, or a dataset with no files)."""
    path = Path(run_dir) / DATA_RECORD
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def run_data_dir(run_dir: str | Path, override: str | os.PathLike | None = None,
                 config_dir: str | None = None) -> tuple[str | None, str]:
    """Where a command that reads a run looks for its data, and why: ``(data_dir, source)``.

    ``override`` (``--data-dir``) first; then the run's record (its resolved folder, else the same folder
    relative to the run, for a moved tree); then the config's ``data.dir``; else None, which
    :func:`dnmsnn.data.resolve_data_dir` turns into ``$DNMSNN_DATA_DIR`` or ``./data``.
    """
    if override:
        return str(override), "--data-dir"
    record = read_data_record(run_dir)
    if record:
        for key in ("resolved", "relative_to_run"):
            value = record.get(key)
            if value:
                folder = Path(value) if key == "resolved" else Path(run_dir) / value
                if folder.is_dir():
                    return str(folder), f"the run's {DATA_RECORD}"
    if config_dir:
        return config_dir, "the run's data.dir"
    return None, "default"


def changed_files(record: dict[str, Any] | None, resolved: Path, files: dict[str, str]) -> list[str]:
    """Files of ``files`` (absolute path -> MD5, read from ``resolved``) whose MD5 differs from the record."""
    if not record:
        return []
    root = Path(os.path.abspath(resolved))
    known = record.get("files", {})
    return [rel for f, md5 in files.items() if (rel := os.path.relpath(f, root)) in known and known[rel] != md5]
