"""MD5 checksums of dataset files: hashing, MD5SUMS parsing, known upstream digests and the verify policy.

Policy (see `check_file`): a file is verified against the `MD5SUMS` file of its data root if that lists it,
else against the built-in `KNOWN_MD5` table, else only the readers' structural checks apply.
Digests are cached per (path, size, mtime) in-process, so loading a dataset twice hashes it once.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from pathlib import Path

from dnmsnn.errors import DataError

__all__ = ["KNOWN_MD5", "MD5SUMS_NAME", "check_file", "clear_cache", "md5sum", "read_md5sums", "verify"]

MD5SUMS_NAME = "MD5SUMS"

#: Canonical upstream md5 of the original gzip files, keyed by "<dataset folder>/<file name>".
KNOWN_MD5: dict[str, str] = {
    "mnist/train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "mnist/train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "mnist/t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "mnist/t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    "fashion-mnist/train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "fashion-mnist/train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "fashion-mnist/t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "fashion-mnist/t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}

_CHUNK = 1 << 20
_MD5_RE = re.compile(r"^([0-9a-fA-F]{32}) [ *](.+)$")
_cache: dict[tuple[str, int, int], str] = {}
_sums_cache: dict[tuple[str, int, int], dict[str, str]] = {}
_lock = threading.Lock()


def md5sum(path: str | os.PathLike, chunk_size: int = _CHUNK) -> str:
    """Hex md5 of a file, read in chunks; cached per (path, size, mtime)."""
    path = Path(path)
    key = _cache_key(path)
    with _lock:
        if key in _cache:
            return _cache[key]
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(chunk_size):
                digest.update(chunk)
    except OSError as exc:
        raise DataError(f"{path}: cannot read file to checksum it ({exc.strerror or exc})") from None
    result = digest.hexdigest()
    with _lock:
        _cache[key] = result
    return result


def verify(path: str | os.PathLike, expected_md5: str) -> None:
    """Raise DataError unless the file's md5 equals `expected_md5`."""
    actual = md5sum(path)
    if actual != expected_md5.strip().lower():
        raise DataError(
            f"{path}: checksum mismatch (md5 {actual}, expected {expected_md5.strip().lower()}): "
            "the file is corrupt, truncated or a different version; re-copy the file from a good source"
        )


def read_md5sums(file: str | os.PathLike) -> dict[str, str]:
    """Parse an `md5sum`-format file into {relative path: lower-case md5}; blank and '#' lines are skipped."""
    file = Path(file)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{file}: cannot read checksum list ({exc}); re-copy it or delete it") from None
    table: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _MD5_RE.match(line.rstrip("\r\n"))
        if match is None:
            raise DataError(
                f"{file}:{lineno}: not an md5sum line ('<32 hex digits>  <path>'): {line.strip()[:80]!r}; "
                "fix or delete the line"
            )
        table[_normalise(match.group(2))] = match.group(1).lower()
    return table


def check_file(path: str | os.PathLike, known_key: str | None = None) -> str:
    """Verify one dataset file by the policy above; return "MD5SUMS", "known" or "unchecked".

    The MD5SUMS file is looked for in the file's folder and in its parent (the data root);
    `known_key` is the file's key in KNOWN_MD5 (e.g. "mnist/train-images-idx3-ubyte.gz").
    """
    path = Path(path)
    listed = _md5sums_entry(path)
    if listed is not None:
        verify(path, listed)
        return MD5SUMS_NAME
    if known_key is not None and known_key in KNOWN_MD5:
        verify(path, KNOWN_MD5[known_key])
        return "known"
    return "unchecked"


def clear_cache() -> None:
    """Forget every cached digest (and parsed MD5SUMS file)."""
    with _lock:
        _cache.clear()
        _sums_cache.clear()


def _md5sums_entry(path: Path) -> str | None:
    folder = path.parent
    for root in (folder, folder.parent):
        sums_file = root / MD5SUMS_NAME
        if not sums_file.is_file():
            continue
        rel = path.relative_to(root).as_posix()
        entry = _load_sums(sums_file).get(rel)
        if entry is not None:
            return entry
    return None


def _load_sums(sums_file: Path) -> dict[str, str]:
    key = _cache_key(sums_file)
    with _lock:
        if key in _sums_cache:
            return _sums_cache[key]
    table = read_md5sums(sums_file)
    with _lock:
        _sums_cache[key] = table
    return table


def _cache_key(path: Path) -> tuple[str, int, int]:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found; check the path or pass --data-dir") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def _normalise(rel: str) -> str:
    rel = rel.strip().replace("\\", "/")
    while rel.startswith("./"):
        rel = rel[2:]
    return rel
