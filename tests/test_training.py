"""The trainer, checkpoints and CLI: accuracy on the embedded digits, determinism, resume, clear errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dnmsnn import CheckpointError, ConfigError
from dnmsnn.cli import DEMO_OVERRIDES, main
from dnmsnn.train import Trainer, TrainingError, load_checkpoint, load_run_config, save_checkpoint

FAST = ["data.name=digits", "model.name=digits_mlp", "encoder.T=6", "train.batch_size=64", "train.progress=false"]


def make_trainer(tmp_path, *overrides, resume=False, name="run"):
    cfg = load_run_config(None, [*FAST, *overrides])
    return Trainer(cfg, tmp_path / name, resume=resume, echo=lambda s: None)


def weights(trainer):
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


def test_demo_reaches_90_percent_on_digits(tmp_path):
    cfg = load_run_config(None, [*DEMO_OVERRIDES, "train.progress=false"])
    res = Trainer(cfg, tmp_path / "demo", echo=lambda s: None).fit()
    assert res["test_acc"] >= 0.90, res
    assert set(res["test_acc_by_T"]) == {"1", "2", "5", "10", "20"}
    lines = (tmp_path / "demo" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == cfg.train.epochs and "test_acc" in json.loads(lines[-1])


def test_same_seed_gives_identical_runs(tmp_path):
    a, b = make_trainer(tmp_path, "train.epochs=2", name="a"), make_trainer(tmp_path, "train.epochs=2", name="b")
    ra, rb = a.fit(), b.fit()
    assert ra["test_acc_by_T"] == rb["test_acc_by_T"]
    for k, v in weights(a).items():
        assert torch.equal(v, weights(b)[k]), k
    c = make_trainer(tmp_path, "train.epochs=2", "train.seed=1", name="c")
    c.fit()
    assert not torch.equal(weights(a)["1.weight"], weights(c)["1.weight"])


@pytest.mark.parametrize("augment", [[], ["data.shift=1", "data.hflip=true"]], ids=["plain", "augmented"])
def test_resume_gives_the_uninterrupted_result(tmp_path, augment):
    full = make_trainer(tmp_path, "train.epochs=4", "data.val_fraction=0.2", *augment, name="full")
    full.fit()
    part = make_trainer(tmp_path, "train.epochs=2", "data.val_fraction=0.2", *augment, name="part")
    part.fit()
    resumed = make_trainer(tmp_path, "train.epochs=4", "data.val_fraction=0.2", *augment, name="part", resume=True)
    assert resumed.start_epoch == 2
    resumed.fit()
    for k, v in weights(full).items():
        assert torch.equal(v, weights(resumed)[k]), k
    assert (tmp_path / "full" / "metrics.jsonl").read_text().count("\n") == 4
    m_full = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    m_res = [json.loads(x) for x in (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()]
    assert [m["test_acc"] for m in m_full] == [m["test_acc"] for m in m_res]


def test_run_directory_guards(tmp_path):
    make_trainer(tmp_path, "train.epochs=1").fit()
    with pytest.raises(ConfigError, match="--resume"):
        make_trainer(tmp_path, "train.epochs=1")
    said = []  # --resume of a folder with no checkpoint yet starts the run from the beginning, saying so
    cfg = load_run_config(None, [*FAST, "train.epochs=1"])
    fresh = Trainer(cfg, tmp_path / "other", resume=True, echo=said.append)
    assert fresh.start_epoch == 0 and any("starting it from the beginning" in s for s in said), said
    fresh.close()
    with pytest.raises(ConfigError, match="optim.lr"):
        make_trainer(tmp_path, "train.epochs=2", "optim.lr=0.5", resume=True)


def test_checkpoint_is_atomic_and_verified(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint({"model": {"w": torch.arange(5.0)}, "epoch": 3}, path)
    assert load_checkpoint(path)["epoch"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary files left
    raw = bytearray(path.read_bytes())
    raw[-10] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="hash"):
        load_checkpoint(path)
    path.write_bytes(bytes(raw[:40]))
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="header"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_nan_loss_stops_and_keeps_last_checkpoint(tmp_path, monkeypatch):
    t = make_trainer(tmp_path, "train.epochs=2")
    t.fit()
    before = load_checkpoint(tmp_path / "run" / "checkpoint.pt")["epoch"]
    t2 = make_trainer(tmp_path, "train.epochs=3", resume=True)
    def nan_loss(model, x, y, aux=None):
        return torch.tensor(float("nan")), torch.zeros(len(y), 10)

    monkeypatch.setattr(t2.rule, "loss_backward", nan_loss)
    with pytest.raises(TrainingError, match="nan"):
        t2.fit()
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["epoch"] == before


def test_model_and_data_shape_mismatch_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="input_shape"):
        make_trainer(tmp_path, "model.name=mlp", "model.args={input_shape: [1, 28, 28]}")


@pytest.mark.parametrize("args, message", [
    (["train", "--set", "optim.lrr=1"], "lr"),
    (["train", "--set", "optim.lr=-1"], "optim.lr"),
    (["train", "--set", "model.name=nope"], "available"),
    (["train", "--set", "rule.name=nope"], "bptt"),
    (["train", "--set", "data.name=mnist", "--data-dir", "/nonexistent-dnmsnn"], "nonexistent-dnmsnn"),
    (["train", "--set", "model.args={beta: 2.0}"], "beta"),
    (["train", "--config", "does-not-exist.yaml"], "does-not-exist.yaml"),
    (["eval", "nowhere"], "run directory"),
])
def test_cli_errors_exit_2_with_a_message(args, message, tmp_path, capsys):
    assert main([*args, "--out", str(tmp_path / "o")] if args[0] == "train" else args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_train_eval_models_info(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: {name: digits_mlp}\ndata: {name: digits}\nencoder: {T: 4, eval_T: [2]}\n"
                   "train: {epochs: 1, progress: false}\n")
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--out", str(out)]) == 0
    assert json.loads((out / "results.json").read_text())["epochs"] == 1
    assert main(["train", "--config", str(cfg), "--out", str(out), "--resume", "--set", "train.epochs=2"]) == 0
    assert json.loads((out / "results.json").read_text())["epochs"] == 2
    assert main(["eval", str(out), "--T", "3"]) == 0
    assert "T=   3" in capsys.readouterr().out
    assert main(["models"]) == 0 and "digits_mlp" in capsys.readouterr().out
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and "alif:" in out and "plif:" in out  # the registered neuron kinds


def test_mnist_mlp_end_to_end(shared_data, tmp_path):
    cfg = load_run_config(Path(__file__).resolve().parents[1] / "configs" / "mnist_mlp_bptt.yaml",
                          ["train.epochs=1", "data.train_limit=2000", "data.test_limit=500", "train.progress=false"])
    res = Trainer(cfg, tmp_path / "m", data_dir=str(shared_data), echo=lambda s: None).fit()
    assert res["parameters"] == 328_200
    assert res["test_acc"] > 0.6


@pytest.mark.parametrize("config", sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_shipped_configs_are_valid(config):
    cfg = load_run_config(config)
    assert cfg.train.epochs > 0
