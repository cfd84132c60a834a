"""Where a dataset's files are: the candidate folders under a data dir, the first that holds every wanted file,
and the one-line error that says what is missing, where it was looked for, and the fix."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from dnmsnn.data.checksums import md5sum
from dnmsnn.errors import DataError

DATA_DIR_ENV = "DNMSNN_DATA_DIR"


def find_folder(
    data_dir: Path, folders: tuple[str, ...], wanted: list[tuple[str, ...]], looked: list[str],
    others: set[str],
) -> tuple[Path, list[Path]] | None:
    """First candidate folder holding every wanted file (each given as alternative names); log the misses.
    ``others``: the (normalised) folder names of the other datasets (see :func:`candidate_folders`)."""
    for folder in candidate_folders(data_dir, folders, looked, others):
        if not folder.is_dir():
            looked.append(f"{under(folder, data_dir)}: no such folder")
            continue
        paths = [next((folder / alt for alt in alts if (folder / alt).is_file()), None) for alts in wanted]
        missing = [" or ".join(alts) for alts, p in zip(wanted, paths, strict=True) if p is None]
        if not missing:
            return folder, [p for p in paths if p is not None]
        looked.append(f"{under(folder, data_dir)}: missing {', '.join(missing)}")
    return None


def candidate_folders(data_dir: Path, folders: tuple[str, ...], looked: list[str], others: set[str]) -> list[Path]:
    """data_dir/<folder> for each folder, then data_dir itself unless it is another dataset's folder."""
    candidates = [data_dir / f for f in folders]
    own = {norm(f) for f in folders}
    dir_name = norm(absolute(data_dir).name)
    if dir_name in own or dir_name not in others:
        candidates.append(data_dir)
    elif not any(line.startswith("./: skipped") for line in looked):
        looked.append("./: skipped, it is the folder of another dataset")
    return candidates


def under(folder: Path, data_dir: Path) -> str:
    """A candidate folder as shown in a not-found message: relative to the data dir (``./`` for itself)."""
    return "./" if folder == data_dir else f"{folder.relative_to(data_dir)}/"


def absolute(path: Path) -> Path:
    return Path(os.path.abspath(path))


def norm(folder: str) -> str:
    """A folder name compared without case, ``-`` or ``_``."""
    return folder.lower().replace("-", "").replace("_", "")


def not_found_error(name: str, split: str, data_dir: Path, looked: list[str], folder_hint: str) -> DataError:
    """One line: what is missing, where it was looked for, and the fix."""
    return DataError(
        f"dataset {name!r} ({split} split) not found under data dir {absolute(data_dir)} "
        f"(looked at: {'; '.join(looked)}); pass --data-dir (data_dir=) or set {DATA_DIR_ENV} to the folder "
        f"that holds {folder_hint}, or to that folder itself"
    )


def file_digests(paths: Sequence[Path]) -> dict[str, str]:
    """{absolute path: MD5} of the files a split was read from (the digests are cached by check_file)."""
    return {str(absolute(p)): md5sum(p) for p in paths}
