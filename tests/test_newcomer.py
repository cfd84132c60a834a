"""A newcomer's first hour: the README's command sequence runs as written, every example an error message
gives works, errors name the config key, and the small commands (info MODEL, kernels) say what they should."""
from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from dnmsnn import ConfigError
from dnmsnn.cli import main
from dnmsnn.train import Trainer, load_run_config

README = Path(__file__).resolve().parents[1] / "README.md"
FAST = ["data.name=digits", "model.name=digits_mlp", "encoder.T=4", "train.progress=false", "train.epochs=1"]


def error_of(overrides: list[str]) -> str:
    with pytest.raises(ConfigError) as info:
        cfg = load_run_config(None, overrides)
        Trainer(cfg, Path("/nonexistent-never-created"), echo=lambda s: None)
    return str(info.value)


BAD_OVERRIDES = [["model.args.hidden"], ["=3"], ["optim..lr=1"], ["train.tensorboard=[abc"], ["optim.lr=fast"],
                 ["train.epochs=2.5"], ["optim.lr='1e-3'"], ["encoder.eval_T=5x"], ["optim.lrr=1e-3"]]


@pytest.mark.parametrize("bad", BAD_OVERRIDES, ids=lambda b: b[0])
def test_every_example_an_override_error_gives_works(bad, tmp_path):
    message = error_of(bad)
    examples = re.findall(r"(?:--set|e\.g\.|or) '([\w.]+=[^']*)'", message)
    for example in examples:
        load_run_config(None, [example])  # parses and validates as written
    if bad == ["model.args.hidden"]:
        assert "model.args.hidden=[128, 64]" in examples


def test_builder_errors_name_the_config_key(tmp_path):
    cfg = load_run_config(None, [*FAST, "model.args.beta=2"])
    with pytest.raises(ConfigError, match=r"^model\.args\.beta must lie in \(0, 1\]"):
        Trainer(cfg, tmp_path / "r", echo=lambda s: None)
    cfg = load_run_config(None, [*FAST, "model.args.threshold=-1"])
    with pytest.raises(ConfigError, match=r"^model\.args\.threshold"):
        Trainer(cfg, tmp_path / "r2", echo=lambda s: None)


def test_resume_with_another_model_says_different_model(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", *[a for o in FAST for a in ("--set", o)], "--out", str(out)]) == 0
    assert main(["train", "--out", str(out), "--resume", "--set", "model.name=mlp"]) == 2
    assert "different model" in capsys.readouterr().err
    assert main(["train", "--out", str(out), "--resume", "--set", "model.args.beta=0.5"]) == 2
    assert "(model.args.beta)" in capsys.readouterr().err


def test_info_model_lists_layers_parameters_defaults_and_weights(capsys):
    assert main(["info", "bondarev_mlp"]) == 0
    out = capsys.readouterr().out
    assert "parameters: 328,200" in out and "beta = 0.8187" in out and "paper: Bondarev" in out
    assert "fc1 LIF" in out and "output Integrator" in out and "bondarev_mlp/mnist" in out
    assert main(["info", "resnet11", "--set", "width=8"]) == 0
    assert "width = 8   (set)" in capsys.readouterr().out
    assert main(["info", "nonsense"]) == 2


def test_kernels_command_says_one_line(capsys):
    from dnmsnn.functional import cpp

    cpp.load()  # built (make test builds them at set-up) or unavailable: either way the command says one line
    assert main(["kernels"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("dnmsnn kernels: ")


def _readme_first_run() -> list[str]:
    block = README.read_text().split("<!-- first-run -->")[1].split("```sh\n")[1].split("```")[0]
    return [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]


def test_readme_first_run_sequence_runs_as_written(shared_data, tmp_path, monkeypatch):
    """train -> eval -> plot -> analyze -> export-nir, each line as the README has it (the training cut to a
    few hundred images by added --set overrides), with no --data-dir after the first."""
    pytest.importorskip("nir")
    monkeypatch.delenv("DNMSNN_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    repo = README.parent
    commands = _readme_first_run()
    assert [c.split()[1] for c in commands] == ["train", "eval", "plot", "analyze", "export-nir"]
    assert sum("--data-dir" in c for c in commands) == 1
    for line in commands:
        argv = shlex.split(line)[1:]
        argv = [str(shared_data) if a == "../shared/data" else str(repo / a) if a.startswith("configs/") else a
                for a in argv]
        if argv[0] == "train":
            argv += ["--set", "data.train_limit=300", "--set", "data.test_limit=200", "--set", "train.epochs=1",
                     "--set", "train.progress=false", "--set", "encoder.eval_T=[1,5]"]
        assert main(argv) == 0, line


def test_the_one_time_kernel_build_is_not_inside_a_timed_epoch(tmp_path, monkeypatch):
    """The trainer loads (on a first run: compiles) the kernels before the first epoch's clock starts: a load
    made artificially slow shows up before the epoch, not in train_time_s."""
    import time

    from dnmsnn.functional import cpp

    real, calls = cpp.load, []

    def slow_first_load():
        if not calls:
            time.sleep(1.5)
        calls.append(1)
        return real()

    monkeypatch.setattr(cpp, "load", slow_first_load)
    res = Trainer(load_run_config(None, [*FAST, "train.epochs=1"]), tmp_path / "r", echo=lambda s: None).fit()
    row = [json.loads(x) for x in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()][0]
    assert calls and row["train_time_s"] < 1.5 and res["epochs"] == 1
