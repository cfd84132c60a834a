"""Reader for IDX files (the MNIST / Fashion-MNIST container format), gzip-compressed or raw."""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from dnmsnn.errors import DataError

__all__ = ["IDX_DTYPES", "read_idx", "parse_idx"]

#: IDX type code -> big-endian numpy dtype.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"
_REFETCH = "re-copy or re-download the file"


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip if it starts with the gzip magic, else raw) into a writable native-endian array.

    Raises DataError if the file is missing, not IDX, truncated, has trailing bytes or a corrupt gzip stream.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if raw[:2] == _GZIP_MAGIC:
        raw = _gunzip(raw, path)
    return parse_idx(raw, source=str(path))


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parse the bytes of an uncompressed IDX file; `source` names it in error messages."""
    dtype, dims, offset = _parse_header(data, source)
    expected = math.prod(dims) * dtype.itemsize
    actual = len(data) - offset
    if actual != expected:
        what = "truncated" if actual < expected else "has trailing bytes"
        raise DataError(
            f"{source}: IDX file {what}: header declares shape {tuple(dims)} ({expected} payload bytes) "
            f"but the file holds {actual}; {_REFETCH}"
        )
    arr = np.frombuffer(data, dtype=dtype, count=math.prod(dims), offset=offset).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found; check the path or pass --data-dir") from None
    except OSError as exc:
        raise DataError(
            f"{path}: cannot read file ({exc.strerror or exc}); check the path and permissions"
        ) from None


def _gunzip(raw: bytes, path: Path) -> bytes:
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error, ValueError, struct.error) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip data ({exc}); {_REFETCH}") from None


def _parse_header(data: bytes, source: str) -> tuple[np.dtype, list[int], int]:
    if len(data) < 4:
        raise DataError(f"{source}: too short to be an IDX file ({len(data)} bytes); {_REFETCH}")
    zero0, zero1, code, ndim = data[0], data[1], data[2], data[3]
    if zero0 != 0 or zero1 != 0 or code not in IDX_DTYPES:
        raise DataError(
            f"{source}: not an IDX file (magic bytes {data[:4].hex()}, expected 0000 + type code + ndim); "
            f"{_REFETCH}"
        )
    if ndim == 0:
        raise DataError(f"{source}: IDX header declares 0 dimensions; {_REFETCH}")
    offset = 4 + 4 * ndim
    if len(data) < offset:
        raise DataError(f"{source}: IDX header truncated (needs {offset} bytes, has {len(data)}); {_REFETCH}")
    dims = list(struct.unpack(f">{ndim}I", data[4:offset]))
    return IDX_DTYPES[code], dims, offset
