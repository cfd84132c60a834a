"""Shipped weights: every entry loads (checked by SHA-256), builds by name, refuses corruption, and -- where
../shared/data is present -- reproduces the accuracy recorded when it was shipped, exactly."""
from __future__ import annotations

import shutil

import pytest
import torch

import dnmsnn
from dnmsnn import CheckpointError, InputError, weights
from dnmsnn.cli import main

NAMES = weights.available()


def test_something_is_shipped_for_each_paper():
    assert {weights.info(n).reproduces for n in NAMES} == {"bondarev", "asf", "dnm"}


@pytest.mark.parametrize("name", NAMES)
def test_entry_loads_and_builds_by_name(name):
    entry = weights.info(name)
    meta = entry.meta
    assert weights.sha256(entry.file) == meta["sha256"] and entry.file.stat().st_size == meta["bytes"]
    for key in ("paper", "dataset", "config", "command", "commit", "measured", "report", "trained"):
        assert meta[key], key
    assert 0 < meta["measured"]["test_acc"] <= 1 and 0 < meta["paper"]["test_acc"] <= 1
    nets = weights.load_members(name)
    assert len(nets) == entry.members and not any(n.training for n in nets)
    model, tag = name.split("/")
    net = dnmsnn.models.create(model, weights=tag, member=entry.members - 1)
    for k, v in net.state_dict().items():
        assert torch.equal(v, nets[-1].state_dict()[k]), k


def test_corrupt_or_missing_weights_are_clear_errors(tmp_path):
    name = NAMES[0]
    key = name.replace("/", "--")
    for suffix in (".json", ".pt"):
        shutil.copy(weights.FOLDER / f"{key}{suffix}", tmp_path / f"{key}{suffix}")
    raw = bytearray((tmp_path / f"{key}.pt").read_bytes())
    raw[len(raw) // 2] ^= 0x01
    (tmp_path / f"{key}.pt").write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="corrupt"):
        weights.load_members(name, folder=tmp_path)
    (tmp_path / f"{key}.pt").unlink()
    with pytest.raises(CheckpointError, match="missing"):
        weights.load_members(name, folder=tmp_path)
    with pytest.raises(InputError, match="available"):
        weights.info("bondarev_mlp/nowhere")
    model = name.split("/")[0]
    with pytest.raises(InputError, match="belong to model"):
        dnmsnn.models.create("digits_mlp", weights=name)
    with pytest.raises(InputError, match="trained with"):
        dnmsnn.models.create(model, weights=name.split("/")[1], input_shape=(3, 5, 5))


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_entry_reproduces_its_recorded_accuracy_exactly(name, shared_data):
    measured = weights.info(name).meta["measured"]
    got = weights.evaluate(name, data_dir=shared_data)
    assert got["accuracy"] == measured["test_acc"] and got["members"] == measured["members"]
    assert got.get("mix", {}) == measured.get("mix", {})


def test_reproduce_command(shared_data, capsys):
    assert main(["reproduce", "dnm", "--data-dir", str(shared_data)]) == 0
    out = capsys.readouterr().out
    assert "identical" in out and "paper: " in out and "our report" in out
    assert main(["weights"]) == 0
    listed = capsys.readouterr().out
    assert all(n in listed for n in NAMES)
    assert main(["eval", "--weights", NAMES[0], "--data-dir", str(shared_data), "--T", "2"]) == 0
    assert main(["eval"]) == 2  # neither a run nor --weights
