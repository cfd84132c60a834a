"""A run folder is self-sufficient and guarded: it records its data, is locked while a run writes to it,
and every interruption or I/O fault ends in one clear line that says what was kept and how to go on.

The lock and the interruptions are tested with real processes; the I/O faults with real file-system
faults (a full tmpfs, a read-only remount, a deleted folder, a folder of another user), which need root
for the mounts: those tests skip elsewhere.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_faults import ARGS as FAULT_ARGS
from test_faults import ENV, assert_same_run, train, wait_for_checkpoint

from dnmsnn.cli import main
from dnmsnn.train import Trainer, load_run_config
from dnmsnn.train.rundir import RunDirError, RunLock

FAST = ["data.name=digits", "model.name=digits_mlp", "encoder.T=4", "train.batch_size=64", "train.progress=false"]


def cli(*argv: str) -> tuple[int, str, str]:
    proc = subprocess.run([sys.executable, "-m", "dnmsnn", *argv], env=ENV, capture_output=True, text=True,
                          timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


def sets(*overrides: str) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


# ----------------------------------------------------------------------------------------------- the lock
@pytest.mark.slow
def test_a_second_process_is_refused_while_a_run_holds_the_folder(tmp_path):
    out = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "dnmsnn", "train", *sets(*FAST, "train.epochs=200"),
                              "--out", str(out)], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_checkpoint(first, out / "checkpoint.pt")
        for argv in (["--resume"], [*sets(*FAST, "train.epochs=200")]):  # resume or a new run: both refused
            rc, _, err = cli("train", *sets(*FAST, "train.epochs=200"), "--out", str(out), *argv)
            assert rc == 2 and f"pid {first.pid}" in err and "in use by another dnmsnn run" in err, err
            assert "Traceback" not in err and len(err.strip().splitlines()) == 1
        assert first.poll() is None  # the first run is untouched
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # the kernel dropped the lock with the killed process: the run resumes
    rc, out_text, err = cli("train", *sets("train.epochs=1"), "--out", str(out), "--resume")
    assert rc == 0, err


def test_lock_in_one_process_and_release(tmp_path):
    lock = RunLock(tmp_path).acquire()
    with pytest.raises(RunDirError, match=f"pid {os.getpid()}"):
        RunLock(tmp_path).acquire()  # a second open file description is refused too
    lock.release()
    with RunLock(tmp_path):
        pass


def test_trainer_releases_its_lock_when_fit_ends(tmp_path):
    cfg = load_run_config(None, [*FAST, "train.epochs=1"])
    t = Trainer(cfg, tmp_path / "r", echo=lambda s: None)
    t.fit()
    assert not t.lock.held
    Trainer(cfg, tmp_path / "r", resume=True, echo=lambda s: None).close()  # a later run can take it


# ----------------------------------------------------------------------------------------------- interruptions
@pytest.mark.slow
def test_ctrl_c_before_the_first_checkpoint_says_so_and_resume_starts_over(tmp_path):
    ref = tmp_path / "reference"
    assert train(ref).wait(timeout=300) == 0
    out = tmp_path / "early"
    proc = train(out)
    t0 = time.time()
    while not (out / "data.json").exists():  # the run has started: config, lock and data record are written
        assert proc.poll() is None and time.time() - t0 < 120
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    if (out / "checkpoint.pt").exists():
        pytest.skip("the first epoch ended before the signal arrived")
    assert proc.returncode == 130 and "no checkpoint was written" in err and "Traceback" not in err, err
    rc, stdout, err = cli("train", *FAULT_ARGS, "--out", str(out), "--resume")
    assert rc == 0, err
    assert "starting it from the beginning" in stdout
    assert_same_run(ref, out)


def test_resuming_a_finished_run_says_it_is_complete(tmp_path, capsys):
    out = tmp_path / "done"
    assert main(["train", *sets(*FAST, "train.epochs=1"), "--out", str(out)]) == 0
    before = (out / "results.json").read_text()
    capsys.readouterr()
    assert main(["train", "--out", str(out), "--resume"]) == 0
    said = capsys.readouterr().out
    assert "is complete (1 of 1 epochs" in said and "--set train.epochs=" in said
    assert (out / "results.json").read_text() == before  # nothing redone
    hint = said.split("to train it longer: dnmsnn ")[1].split()  # the hint works as written
    assert main(hint) == 0
    assert len((out / "metrics.jsonl").read_text().splitlines()) == int(hint[-1].split("=")[1])


def test_resume_of_an_empty_folder_without_config_is_refused(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "nothing"), "--resume"]) == 2
    assert "holds no run" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------- data record
def test_a_run_remembers_its_data_for_every_later_command(shared_data, tmp_path, monkeypatch):
    monkeypatch.delenv("DNMSNN_DATA_DIR", raising=False)
    out = tmp_path / "mnist"
    small = sets("model.name=mlp", "model.args.hidden=[32]", "data.name=mnist", "data.train_limit=300",
                 "data.test_limit=200", "encoder.T=4", "encoder.eval_T=[2,4]", "train.epochs=1",
                 "train.progress=false")
    assert main(["train", *small, "--data-dir", str(shared_data), "--out", str(out)]) == 0
    record = json.loads((out / "data.json").read_text())
    assert record["source"] == "--data-dir" and record["given"] == str(shared_data)
    assert record["resolved"] == os.path.abspath(shared_data)  # absolute, links kept as given
    assert record["files"]["mnist/t10k-labels-idx1-ubyte.gz"] == "ec29112dd5afa0611ce80d1b7f02629c"
    monkeypatch.chdir(tmp_path)  # somewhere with no ./data: every command finds the data through the record
    assert main(["eval", str(out), "--T", "1", "--T", "4"]) == 0
    assert set(json.loads((out / "eval.json").read_text())["by_T"]) == {"1", "4"}
    assert main(["plot", str(out), "--format", "png"]) == 0
    assert {p.stem for p in (out / "plots").glob("*.png")} >= {"raster", "membrane", "firing_rates", "acc_vs_T"}
    assert main(["analyze", str(out), "--batches", "1"]) == 0
    assert main(["train", "--out", str(out), "--resume", "--set", "train.epochs=2"]) == 0
    again = json.loads((out / "data.json").read_text())  # found through the record, which keeps the first given
    assert (again["given"], again["source"], again["files"]) == (record["given"], "--data-dir", record["files"])
    # --data-dir overrides the record: a wrong folder is a clear error, and plot fails rather than skip
    assert main(["eval", str(out), "--data-dir", str(tmp_path / "elsewhere")]) == 2
    assert main(["plot", str(out), "--data-dir", str(tmp_path / "elsewhere")]) == 2
    # a moved tree: the record's path relative to the run still finds the data
    record["resolved"] = str(tmp_path / "gone")
    (out / "data.json").write_text(json.dumps(record))
    monkeypatch.chdir(out.parent)
    if (out / Path(record["relative_to_run"])).is_dir():
        assert main(["eval", str(out)]) == 0


def test_plot_fails_clearly_when_it_cannot_make_a_figure(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", *sets(*FAST, "train.epochs=1"), "--out", str(out)]) == 0
    (out / "checkpoint.pt").unlink()
    capsys.readouterr()
    assert main(["plot", str(out), "--format", "png"]) == 2
    captured = capsys.readouterr()
    assert "curves.png" in captured.out and "could not make: raster, membrane" in captured.err


# ----------------------------------------------------------------------------------------------- I/O faults
def _can_mount() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("mount") is not None


@pytest.fixture
def tmpfs(tmp_path):
    if not _can_mount():
        pytest.skip("needs root to mount a tmpfs")
    point = tmp_path / "fs"
    point.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(point)]).returncode != 0:
        pytest.skip("mount -t tmpfs is not permitted here")
    yield point
    subprocess.run(["umount", "-l", str(point)])


def _train_then_fault(folder: Path, fault) -> str:
    """Train 3 epochs into folder/run; after epoch 1 is written, ``fault(run)``; the RunDirError's message."""
    run = folder / "run"
    cfg = load_run_config(None, [*FAST, "train.epochs=3"])

    def echo(line: str) -> None:
        if line.startswith("epoch 1/"):
            fault(run)

    with pytest.raises(RunDirError) as info:
        Trainer(cfg, run, echo=echo).fit()
    message = str(info.value)
    assert "\n" not in message and str(run) in message
    return message


def test_disk_full_is_one_clear_line_and_the_run_resumes(tmpfs):
    def fill(run: Path) -> None:
        with open(tmpfs / "filler", "wb", buffering=0) as f:  # unbuffered: nothing left to flush at close
            try:
                while True:
                    f.write(b"\0" * (1 << 16))
            except OSError:
                pass

    message = _train_then_fault(tmpfs, fill)
    assert "the disk is full" in message and "kept: the checkpoint and metrics after epoch 1" in message
    assert "--resume" in message
    (tmpfs / "filler").unlink()
    cfg = load_run_config(None, [*FAST, "train.epochs=3"])
    resumed = Trainer(cfg, tmpfs / "run", resume=True, echo=lambda s: None)
    assert resumed.start_epoch == 1
    assert resumed.fit()["epochs"] == 3


def test_read_only_file_system(tmp_path):
    if not _can_mount():
        pytest.skip("needs root to bind-mount a folder read-only")
    mounted = []

    def read_only(run: Path) -> None:  # the run folder, bind-mounted over itself read-only, under the running run
        subprocess.run(["mount", "--bind", str(run), str(run)], check=True)
        mounted.append(run)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(run)], check=True)

    try:
        message = _train_then_fault(tmp_path, read_only)
    finally:
        for point in mounted:
            subprocess.run(["umount", "-l", str(point)])
    assert "read-only" in message and "after epoch 1" in message


def test_run_folder_deleted_during_the_run(tmp_path):
    message = _train_then_fault(tmp_path, shutil.rmtree)
    assert "the run folder is gone" in message and "kept: nothing" in message


def test_permission_denied(tmp_path):
    """A run whose folder stops being writable to it: the process runs without root's override of file
    permissions (setpriv drops CAP_DAC_OVERRIDE), and the folder is made read-only after epoch 1."""
    if not _can_mount() or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run without the permission override")
    out = tmp_path / "run"
    proc = subprocess.Popen(["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--",
                             sys.executable, "-m", "dnmsnn", "train", *sets(*FAST, "train.epochs=200"),
                             "--out", str(out)], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_checkpoint(proc, out / "checkpoint.pt")
        os.chmod(out, 0o555)
        _, err = proc.communicate(timeout=120)
    finally:
        os.chmod(out, 0o755)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2, err
    assert "permission denied" in err and f"in {out}" in err and "kept: the checkpoint" in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
