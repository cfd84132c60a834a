"""Tests for dnmsnn.data: IDX / CIFAR readers, checksums, the dataset registry and validation splits."""

from __future__ import annotations

import gzip
import hashlib
import math
import shutil
import struct
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dnmsnn.data import (
    DATASETS,
    KNOWN_MD5,
    ArrayDataset,
    PartialDatasetWarning,
    available_datasets,
    check_file,
    load_dataset,
    md5sum,
    parse_idx,
    read_cifar10_bin,
    read_cifar10_classes,
    read_idx,
    read_md5sums,
    split_validation,
    verify,
)
from dnmsnn.data import checksums as checksums_mod
from dnmsnn.errors import DataError, InputError

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_mnist = pytest.mark.skipif(not (DATA / "mnist").is_dir(), reason="shared/data/mnist not present")
needs_fashion = pytest.mark.skipif(
    not (DATA / "fashion-mnist").is_dir(), reason="shared/data/fashion-mnist not present"
)
needs_cifar = pytest.mark.skipif(
    not (DATA / "cifar10-partial").is_dir(), reason="shared/data/cifar10-partial not present"
)
RECORD = 3073


# -------------------------------------------------------------------------------- builders


def idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    """Serialise an array as an IDX file with the given type code."""
    dtypes = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + np.ascontiguousarray(arr, dtype=dtypes[code]).tobytes()


def cifar_bytes(labels: list[int], seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    rows = [bytes([lab]) + rng.integers(0, 256, 3072, dtype=np.uint8).tobytes() for lab in labels]
    return b"".join(rows)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def make_idx_dataset(folder: Path, n_images: int, n_labels: int, gz: bool = False) -> None:
    rng = np.random.default_rng(1)
    for prefix in ("train", "t10k"):
        images = idx_bytes(rng.integers(0, 256, (n_images, 28, 28), dtype=np.uint8))
        labels = idx_bytes(rng.integers(0, 10, n_labels, dtype=np.uint8))
        if gz:
            images, labels = gzip.compress(images), gzip.compress(labels)
        ext = ".gz" if gz else ""
        write(folder / f"{prefix}-images-idx3-ubyte{ext}", images)
        write(folder / f"{prefix}-labels-idx1-ubyte{ext}", labels)


SMALL = np.arange(60, dtype=np.uint8).reshape(3, 4, 5)


# -------------------------------------------------------------------------------- real data


@needs_mnist
def test_mnist_real() -> None:
    train = load_dataset("mnist", "train", DATA)
    assert train.images.shape == (60000, 1, 28, 28) and train.shape == (1, 28, 28)
    assert train.images.dtype == torch.float32 and train.labels.dtype == torch.int64
    assert train.labels[:5].tolist() == [5, 0, 4, 1, 9]
    assert float(train.images.min()) == 0.0 and float(train.images.max()) == 1.0
    assert torch.bincount(train.labels).sum() == 60000 and train.name == "mnist"
    test = load_dataset("mnist", "test", DATA, limit=100)
    assert len(test) == 100 and test.labels[:5].tolist() == [7, 2, 1, 0, 4]


@needs_mnist
def test_read_idx_real_raw_arrays() -> None:
    images = read_idx(DATA / "mnist" / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(DATA / "mnist" / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.max() == 9
    images[0, 0, 0] = 1  # writable, no shared read-only buffer


@needs_fashion
def test_fashion_mnist_real_and_alias() -> None:
    test = load_dataset("fashion-mnist", "test", DATA)
    assert test.images.shape == (10000, 1, 28, 28) and test.name == "fashion_mnist"
    assert test.classes[0] == "T-shirt/top" and test.classes[9] == "Ankle boot"
    train = load_dataset("fashion_mnist", "train", DATA, limit=10)
    assert len(train) == 10 and train.labels[:3].tolist() == [9, 0, 0]


@needs_cifar
def test_cifar_partial_real() -> None:
    with pytest.warns(PartialDatasetWarning, match="NOT full CIFAR-10"):
        train = load_dataset("cifar10", "train", DATA)
    assert train.name == "cifar10-partial" and train.images.shape == (4000, 3, 32, 32)
    assert train.labels[:5].tolist() == [6, 9, 9, 4, 1]
    assert train.classes[:2] == ["airplane", "automobile"] and len(train.classes) == 10
    assert torch.bincount(train.labels, minlength=10).tolist() == [
        396,
        366,
        420,
        384,
        422,
        393,
        414,
        385,
        407,
        413,
    ]
    with pytest.warns(PartialDatasetWarning):
        test = load_dataset("cifar10", "test", DATA / "cifar10-partial", limit=5)
    assert test.labels.tolist() == [3, 8, 8, 0, 6]
    images, labels = read_cifar10_bin(DATA / "cifar10-partial" / "test_batch_first1000.bin", max_records=3)
    assert images.shape == (3, 3, 32, 32) and images.dtype == np.uint8 and labels.dtype == np.int64


@needs_mnist
def test_data_dir_may_be_the_dataset_folder_and_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    ds = load_dataset("mnist", "test", DATA / "mnist", limit=3)
    assert ds.labels.tolist() == [7, 2, 1]
    monkeypatch.setenv("DNMSNN_DATA_DIR", str(DATA))
    assert load_dataset("mnist", "test", limit=2).labels.tolist() == [7, 2]
    with pytest.raises(DataError, match="another dataset"):  # the mnist folder is not fashion-mnist
        load_dataset("fashion_mnist", "test", DATA / "mnist")


# -------------------------------------------------------------------------------- checksums


@needs_mnist
def test_checksums_shared_md5sums_and_known_table(tmp_path: Path) -> None:
    sums = read_md5sums(DATA / "MD5SUMS")
    assert sums["mnist/train-labels-idx1-ubyte.gz"] == KNOWN_MD5["mnist/train-labels-idx1-ubyte.gz"]
    for key, digest in KNOWN_MD5.items():
        assert sums[key] == digest
    lbl = DATA / "mnist" / "t10k-labels-idx1-ubyte.gz"
    assert md5sum(lbl) == KNOWN_MD5["mnist/t10k-labels-idx1-ubyte.gz"]
    assert check_file(lbl, "mnist/t10k-labels-idx1-ubyte.gz") == "MD5SUMS"
    copy = shutil.copy(lbl, tmp_path / lbl.name)
    assert check_file(copy, "mnist/t10k-labels-idx1-ubyte.gz") == "known"
    assert check_file(copy) == "unchecked"
    verify(copy, KNOWN_MD5["mnist/t10k-labels-idx1-ubyte.gz"].upper())


@needs_mnist
def test_modified_copy_fails_checksum(tmp_path: Path) -> None:
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(DATA / "mnist" / name, folder / name)
    assert load_dataset("mnist", "test", tmp_path, limit=5).labels.tolist() == [7, 2, 1, 0, 4]
    lbl = folder / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(lbl.read_bytes())
    data[4] ^= 0xFF  # gzip header mtime: still decodes to the same labels, only the checksum can tell
    lbl.write_bytes(bytes(data))
    assert read_idx(lbl).shape == (10000,)
    with pytest.raises(DataError, match="checksum mismatch") as info:
        load_dataset("mnist", "test", tmp_path)
    msg = str(info.value)
    assert KNOWN_MD5["mnist/t10k-labels-idx1-ubyte.gz"] in msg and hashlib.md5(bytes(data)).hexdigest() in msg
    assert "re-copy" in msg


def test_md5sums_file_takes_precedence_and_is_parsed(tmp_path: Path) -> None:
    f = write(tmp_path / "cifar10-partial" / "test_batch_first1000.bin", cifar_bytes([1, 2]))
    good = hashlib.md5(f.read_bytes()).hexdigest()
    (tmp_path / "MD5SUMS").write_text(f"# comment\n\n{good}  cifar10-partial/test_batch_first1000.bin\n")
    assert read_md5sums(tmp_path / "MD5SUMS") == {"cifar10-partial/test_batch_first1000.bin": good}
    assert check_file(f) == "MD5SUMS"
    (tmp_path / "MD5SUMS").write_text(f"{'0' * 32} *cifar10-partial/test_batch_first1000.bin\n")
    with pytest.raises(DataError, match="checksum mismatch"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PartialDatasetWarning)
            load_dataset("cifar10", "test", tmp_path)
    (tmp_path / "MD5SUMS").write_text("not a checksum line\n")
    with pytest.raises(DataError, match="MD5SUMS:1"):
        read_md5sums(tmp_path / "MD5SUMS")


def test_md5_cache_avoids_rehash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = write(tmp_path / "blob.bin", b"abc" * 1000)
    calls = []
    real_md5 = hashlib.md5

    def counting_md5(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real_md5(*args, **kwargs)

    monkeypatch.setattr(checksums_mod.hashlib, "md5", counting_md5)
    first = md5sum(f)
    assert md5sum(f) == first and len(calls) == 1
    f.write_bytes(b"abcd" * 1000)  # new size -> new cache key
    assert md5sum(f) != first and len(calls) == 2
    with pytest.raises(DataError, match="not found"):
        md5sum(tmp_path / "missing.bin")


# -------------------------------------------------------------------------------- errors


def test_missing_dir_names_paths(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError) as info:
        load_dataset("mnist", "train", missing)
    msg = str(info.value)
    assert str(missing) in msg and "mnist/: no such folder" in msg and "--data-dir" in msg
    assert "\n" not in msg  # one line on stderr
    with pytest.raises(DataError, match="cifar10-partial"):
        load_dataset("cifar10", "test", missing)


def test_default_data_dir_is_cwd_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DNMSNN_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match=f"under data dir {tmp_path / 'data'} .*mnist/: no such folder"):
        load_dataset("mnist")


def test_unknown_name_and_bad_arguments() -> None:
    with pytest.raises(DataError, match="digits, mnist, fashion_mnist, cifar10"):
        load_dataset("imagenet")
    with pytest.raises(InputError, match="split"):
        load_dataset("digits", "validation")
    for bad in (0, -3, True, 2.5):
        with pytest.raises(InputError, match="limit"):
            load_dataset("digits", limit=bad)  # type: ignore[arg-type]
    assert available_datasets() == ["digits", "mnist", "fashion_mnist", "cifar10"]
    assert DATASETS["mnist"].shape == (1, 28, 28) and not DATASETS["digits"].needs_files


def test_label_count_mismatch_and_raw_idx_names(tmp_path: Path) -> None:
    make_idx_dataset(tmp_path / "mnist", n_images=4, n_labels=4)
    ds = load_dataset("mnist", "test", tmp_path)
    assert ds.images.shape == (4, 1, 28, 28)
    make_idx_dataset(tmp_path / "other" / "mnist", n_images=4, n_labels=3)
    with pytest.raises(DataError, match="3 labels but"):
        load_dataset("mnist", "train", tmp_path / "other")
    make_idx_dataset(tmp_path / "gz" / "mnist", n_images=4, n_labels=4, gz=True)
    with pytest.raises(DataError, match="checksum mismatch"):  # .gz files must match the known upstream md5
        load_dataset("mnist", "train", tmp_path / "gz")


def test_missing_label_file_is_named(tmp_path: Path) -> None:
    make_idx_dataset(tmp_path / "mnist", 2, 2)
    (tmp_path / "mnist" / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="missing train-labels-idx1-ubyte.gz or train-labels-idx1-ubyte"):
        load_dataset("mnist", "train", tmp_path)


def test_wrong_image_shape_is_rejected(tmp_path: Path) -> None:
    write(tmp_path / "train-images-idx3-ubyte", idx_bytes(np.zeros((2, 8, 8), np.uint8)))
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(np.zeros(2, np.uint8)))
    with pytest.raises(DataError, match=r"\[N,28,28\]"):
        load_dataset("mnist", "train", tmp_path)


@pytest.mark.parametrize(
    ("code", "dtype"),
    [
        (0x08, np.uint8),
        (0x09, np.int8),
        (0x0B, np.int16),
        (0x0C, np.int32),
        (0x0D, np.float32),
        (0x0E, np.float64),
    ],
)
def test_idx_dtypes_roundtrip(tmp_path: Path, code: int, dtype: type) -> None:
    arr = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    if code == 0x08:
        arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    out = read_idx(write(tmp_path / "a.idx", idx_bytes(arr, code)))
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative and np.array_equal(out, arr)
    assert np.array_equal(read_idx(write(tmp_path / "a.idx.gz", gzip.compress(idx_bytes(arr, code)))), arr)


def test_idx_structural_errors(tmp_path: Path) -> None:
    good = idx_bytes(SMALL)
    assert read_idx(write(tmp_path / "ok.idx", good)).shape == (3, 4, 5)
    cases = {
        "truncated raw": (good[:-1], "truncated"),
        "trailing": (good + b"\x00", "trailing bytes"),
        "wrong magic": (b"\x01" + good[1:], "not an IDX file"),
        "bad type code": (good[:2] + b"\x07" + good[3:], "not an IDX file"),
        "short header": (good[:9], "header truncated"),
        "tiny": (b"\x00\x00", "too short"),
        "zero dims": (b"\x00\x00\x08\x00", "0 dimensions"),
    }
    for label, (data, match) in cases.items():
        with pytest.raises(DataError, match=match):
            read_idx(write(tmp_path / f"{label}.idx", data))
    gz = gzip.compress(good)
    with pytest.raises(DataError, match="gzip"):
        read_idx(write(tmp_path / "trunc.gz", gz[: len(gz) // 2]))
    bad_crc = bytearray(gz)
    bad_crc[-6] ^= 0x01
    with pytest.raises(DataError, match="gzip"):
        read_idx(write(tmp_path / "crc.gz", bytes(bad_crc)))
    with pytest.raises(DataError, match="not found"):
        read_idx(tmp_path / "absent.gz")
    with pytest.raises(DataError, match="cannot read"):
        read_idx(tmp_path)


def test_cifar_structural_errors(tmp_path: Path) -> None:
    ok = write(tmp_path / "ok.bin", cifar_bytes([0, 9, 3]))
    images, labels = read_cifar10_bin(ok)
    assert images.shape == (3, 3, 32, 32) and labels.tolist() == [0, 9, 3]
    raw = ok.read_bytes()
    assert np.array_equal(images[1].reshape(-1), np.frombuffer(raw[RECORD + 1 : 2 * RECORD], np.uint8))
    assert read_cifar10_bin(ok, max_records=2)[1].tolist() == [0, 9]
    with pytest.raises(DataError, match="multiple of the 3073"):
        read_cifar10_bin(write(tmp_path / "short.bin", raw[:-1]))
    with pytest.raises(DataError, match="multiple of the 3073"):
        read_cifar10_bin(write(tmp_path / "empty.bin", b""))
    with pytest.raises(DataError, match="label 11"):
        read_cifar10_bin(write(tmp_path / "lab.bin", cifar_bytes([1, 11])))
    with pytest.raises(DataError, match="not found"):
        read_cifar10_bin(tmp_path / "absent.bin")
    with pytest.raises(InputError):
        read_cifar10_bin(ok, max_records=0)


def test_cifar_class_names(tmp_path: Path) -> None:
    assert read_cifar10_classes(None)[9] == "truck"
    assert read_cifar10_classes(tmp_path / "absent.txt")[0] == "airplane"
    meta = write(tmp_path / "batches.meta.txt", b"\n".join(f"c{i}".encode() for i in range(10)) + b"\n\n")
    assert read_cifar10_classes(meta) == [f"c{i}" for i in range(10)]
    meta.write_text("a\nb\n")
    with pytest.raises(DataError, match="expected 10 class names"):
        read_cifar10_classes(meta)


def test_cifar_full_batches_preferred(tmp_path: Path) -> None:
    full = tmp_path / "cifar-10-batches-bin"
    for i in range(1, 6):
        write(full / f"data_batch_{i}.bin", cifar_bytes([i, i], seed=i))
    write(full / "test_batch.bin", cifar_bytes([7]))
    write(tmp_path / "cifar10-partial" / "data_batch_1_first4000.bin", cifar_bytes([0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train = load_dataset("cifar10", "train", tmp_path)
        test = load_dataset("cifar10", "test", tmp_path)
        limited = load_dataset("cifar10", "train", tmp_path, limit=3)
    assert train.name == "cifar10" and train.labels.tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert test.labels.tolist() == [7] and limited.labels.tolist() == [1, 1, 2]
    (full / "data_batch_3.bin").unlink()  # an incomplete full copy is an error, not a silent fallback
    with pytest.raises(DataError, match="data_batch_3.bin"):
        load_dataset("cifar10", "train", tmp_path)


def test_cifar_partial_labels_cross_checked(tmp_path: Path) -> None:
    folder = tmp_path / "cifar10-partial"
    write(folder / "data_batch_1_first4000.bin", cifar_bytes([6, 9]))
    write(folder / "train_labels_all50000.bin", bytes([6, 9, 9]))
    with pytest.warns(PartialDatasetWarning):
        assert load_dataset("cifar10", "train", tmp_path).labels.tolist() == [6, 9]
    write(folder / "train_labels_all50000.bin", bytes([6, 8, 9]))
    with pytest.raises(DataError, match="disagree"), warnings.catch_warnings():
        warnings.simplefilter("ignore", PartialDatasetWarning)
        load_dataset("cifar10", "train", tmp_path)


# -------------------------------------------------------------------------------- properties


def declared_shape(data: bytes) -> tuple[int, ...]:
    ndim = data[3]
    return tuple(struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim]))


corruption = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 10_000), st.just(0)),
    st.tuples(st.just("append"), st.integers(1, 16), st.integers(0, 255)),
)


def corrupt(data: bytes, ops: list[tuple[str, int, int]]) -> bytes:
    buf = bytearray(data)
    for kind, pos, val in ops:
        if kind == "flip" and buf:
            buf[pos % len(buf)] ^= val
        elif kind == "truncate":
            del buf[pos % (len(buf) + 1) :]
        elif kind == "append":
            buf += bytes([val]) * pos
    return bytes(buf)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(corruption, min_size=1, max_size=3), compressed=st.booleans())
def test_idx_corruption_never_escapes_as_other_exception(ops: list, compressed: bool) -> None:
    clean = idx_bytes(SMALL)
    data = corrupt(gzip.compress(clean) if compressed else clean, ops)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("f.idx.gz" if compressed else "f.idx")
        path.write_bytes(data)
        try:
            arr = read_idx(path)
        except DataError:
            return
    payload = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    shape = declared_shape(payload)
    assert arr.shape == shape and arr.nbytes == len(payload) - 4 - 4 * len(shape)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(corruption, min_size=1, max_size=3))
def test_cifar_corruption_never_escapes_as_other_exception(ops: list) -> None:
    data = corrupt(cifar_bytes([3, 0, 9]), [(k, p * 3 if k != "append" else p, v) for k, p, v in ops])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.bin"
        path.write_bytes(data)
        try:
            images, labels = read_cifar10_bin(path)
        except DataError:
            return
    n = len(data) // RECORD
    assert images.shape == (n, 3, 32, 32) and labels.shape == (n,) and int(labels.max()) <= 9


@settings(max_examples=60, deadline=None)
@given(
    labels=st.lists(st.integers(0, 4), min_size=2, max_size=80),
    fraction=st.floats(0.01, 0.95),
    seed=st.integers(0, 2**31),
)
def test_split_validation_properties(labels: list[int], fraction: float, seed: int) -> None:
    n = len(labels)
    ds = ArrayDataset(
        torch.arange(n, dtype=torch.float32).reshape(n, 1, 1, 1), torch.tensor(labels), list("abcde"), "t"
    )
    train, val = split_validation(ds, fraction, seed)
    assert val is not None
    ids_t = train.images.flatten().long().tolist()
    ids_v = val.images.flatten().long().tolist()
    assert sorted(ids_t + ids_v) == list(range(n)) and not set(ids_t) & set(ids_v)
    assert len(val) == min(max(round(fraction * n), 1), n - 1)
    assert ids_v == sorted(ids_v) and ids_t == sorted(ids_t)
    counts = torch.bincount(ds.labels, minlength=5)
    val_counts = torch.bincount(val.labels, minlength=5)
    for c in range(5):
        exact = len(val) * int(counts[c]) / n
        assert math.floor(exact) <= int(val_counts[c]) <= math.ceil(exact)
    again_t, again_v = split_validation(ds, fraction, seed)
    assert torch.equal(again_v.images, val.images) and torch.equal(again_t.images, train.images)


# -------------------------------------------------------------------------------- digits & splits


def test_digits_embedded() -> None:
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert len(train) + len(test) == 1797 and (len(train), len(test)) == (1437, 360)
    assert train.shape == (1, 8, 8) and train.classes == [str(d) for d in range(10)]
    for ds in (train, test):
        assert float(ds.images.min()) == 0.0 and float(ds.images.max()) == 1.0
    counts = torch.bincount(test.labels, minlength=10)
    assert int(counts.min()) >= 35 and int(counts.max()) <= 37  # stratified: ~36 per class
    again = load_dataset("digits", "train", data_dir="/definitely/not/needed")
    assert torch.equal(again.images, train.images) and torch.equal(again.labels, train.labels)
    from sklearn.datasets import load_digits

    ref = (load_digits().images.astype(np.float32) / 16).reshape(1797, -1)
    ours = torch.cat([train.images, test.images]).reshape(1797, -1).numpy()
    assert sorted(r.tobytes() for r in ours) == sorted(r.tobytes() for r in ref)  # a partition of the data
    assert len(load_dataset("digits", "test", limit=7)) == 7


def test_split_validation_basics() -> None:
    ds = load_dataset("digits", "train")
    same, none = split_validation(ds, 0, seed=1)
    assert same is ds and none is None
    tr1, va1 = split_validation(ds, 0.2, seed=3)
    tr2, va2 = split_validation(ds, 0.2, seed=3)
    _, va3 = split_validation(ds, 0.2, seed=4)
    assert va1 is not None and va2 is not None and va3 is not None
    assert torch.equal(va1.images, va2.images) and not torch.equal(va1.images, va3.images)
    assert len(tr1) + len(va1) == len(ds) and len(va1) == round(0.2 * len(ds))
    assert tr1.name == va1.name == "digits"
    for bad in (1.0, -0.1, float("nan"), 1.5, True, "0.1"):
        with pytest.raises(InputError):
            split_validation(ds, bad, seed=0)  # type: ignore[arg-type]
    with pytest.raises(InputError):
        split_validation(ds.subset([0]), 0.5, seed=0)
    for bad_seed in (-1, 1.5, "3", None):
        with pytest.raises(InputError, match="seed"):
            split_validation(ds, 0.1, seed=bad_seed)  # type: ignore[arg-type]


def test_array_dataset_api() -> None:
    ds = load_dataset("digits", "test")
    x, y = ds[3]
    assert x.shape == (1, 8, 8) and int(y) == int(ds.labels[3]) and len(ds) == 360
    sub = ds.subset([5, 1, -1])
    assert (
        len(sub) == 3
        and torch.equal(sub.images[0], ds.images[5])
        and torch.equal(sub.images[2], ds.images[-1])
    )
    assert len(ds.subset(torch.arange(10))) == 10 and len(ds.subset(slice(0, 4))) == 4
    assert len(ds.subset(np.array([], dtype=np.int64))) == 0
    for bad in ([360], torch.zeros(3, dtype=torch.bool), [0.5], [[1, 2]]):
        with pytest.raises(InputError):
            ds.subset(bad)  # type: ignore[arg-type]
    batch_x, batch_y = next(iter(torch.utils.data.DataLoader(ds, batch_size=16)))
    assert batch_x.shape == (16, 1, 8, 8) and batch_y.dtype == torch.int64
    assert "digits" in repr(ds) and ds.num_classes == 10
    with pytest.raises(InputError):
        ArrayDataset(torch.zeros(2, 1, 2, 2), torch.zeros(3, dtype=torch.int64), ["a"], "x")
    with pytest.raises(InputError):
        ArrayDataset(
            torch.zeros(2, 1, 2, 2, dtype=torch.float64), torch.zeros(2, dtype=torch.int64), ["a"], "x"
        )
    with pytest.raises(InputError):
        ArrayDataset(torch.zeros(2, 1, 2, 2), torch.tensor([0, 1]), ["a"], "x")


def test_parse_idx_bytes_directly() -> None:
    assert parse_idx(idx_bytes(SMALL)).shape == (3, 4, 5)
    assert parse_idx(bytes([0, 0, 8, 2, 0, 0, 0, 0, 0, 0, 0, 5])).shape == (0, 5)
