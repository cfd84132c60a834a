"""Faults: a training process killed with SIGKILL (or stopped with Ctrl-C) at a random moment, then resumed,
ends with exactly the weights and metrics of an uninterrupted run."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dnmsnn.train import load_checkpoint

ARGS = ["--set", "data.name=digits", "--set", "model.name=digits_mlp", "--set", "encoder.T=6",
        "--set", "train.epochs=4", "--set", "train.progress=false", "--set", "data.val_fraction=0.2",
        "--set", "train.threads=1", "--set", "cohort.size=2"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def train(out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dnmsnn", "train", *ARGS, "--out", str(out), *extra],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def final_state(out: Path):
    ckpt = load_checkpoint(out / "checkpoint.pt")
    metrics = (out / "metrics.jsonl").read_text().splitlines()
    return ckpt, metrics


def untimed(rows: list[str]) -> list[dict]:
    """Metric rows without wall-clock fields (the only ones allowed to differ)."""
    return [{k: v for k, v in json.loads(r).items() if "time" not in k and "per_s" not in k} for r in rows]


def assert_same_run(a: Path, b: Path) -> None:
    (ca, ma), (cb, mb) = final_state(a), final_state(b)
    assert ca["epoch"] == cb["epoch"] == 3
    for k, v in ca["model"].items():
        assert torch.equal(v, cb["model"][k]), k
    for member_a, member_b in zip(ca["members"], cb["members"], strict=True):
        for k, v in member_a["model"].items():
            assert torch.equal(v, member_b["model"][k]), k
    assert untimed(ma) == untimed(mb)
    ra, rb = (json.loads((d / "results.json").read_text()) for d in (a, b))
    assert ra["test_acc_by_T"] == rb["test_acc_by_T"] and ra["mix"]["test_acc"] == rb["mix"]["test_acc"]


def wait_for_checkpoint(proc: subprocess.Popen, path: Path, timeout: float = 120) -> None:
    t0 = time.time()
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"training ended before its first checkpoint: {proc.stderr.read()}")
        if time.time() - t0 > timeout:
            pytest.fail("no checkpoint appeared")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("faults") / "uninterrupted"
    proc = train(out)
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    return out


@pytest.mark.slow
@pytest.mark.parametrize("attempt", range(2))
def test_sigkill_at_a_random_moment_then_resume(reference, tmp_path, attempt):
    out = tmp_path / "killed"
    proc = train(out)
    wait_for_checkpoint(proc, out / "checkpoint.pt")
    time.sleep(random.Random(attempt).uniform(0.0, 1.0))  # anywhere in an epoch, even inside a checkpoint write
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    load_checkpoint(out / "checkpoint.pt")  # whole and verified by its content hash, whenever the kill came
    (out / ".checkpoint.pt.torn.tmp").write_bytes(b"half a checkpoint")  # what a kill mid-write leaves
    resumed = subprocess.run([sys.executable, "-m", "dnmsnn", "train", *ARGS, "--out", str(out), "--resume"],
                             env=ENV, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert not list(out.glob(".checkpoint.pt.*.tmp"))
    assert_same_run(reference, out)


@pytest.mark.slow
def test_ctrl_c_exits_cleanly_and_resumes(reference, tmp_path):
    out = tmp_path / "interrupted"
    proc = train(out)
    wait_for_checkpoint(proc, out / "checkpoint.pt")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the run finished before the signal arrived")
    assert proc.returncode == 130 and "--resume" in err and "Traceback" not in err
    resumed = subprocess.run([sys.executable, "-m", "dnmsnn", "train", *ARGS, "--out", str(out), "--resume"],
                             env=ENV, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_run(reference, out)
