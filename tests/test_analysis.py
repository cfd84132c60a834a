"""Activity, SynOps / MACs / energy, plots, TensorBoard and the plot / analyze CLI on a tiny trained run."""
from __future__ import annotations

import json
import sys

import pytest
import torch
import torch.nn.functional as tF

import dnmsnn
from dnmsnn import DnmsnnError
from dnmsnn.analysis import activity, plots
from dnmsnn.analysis.activity import E_AC_PJ, E_MAC_PJ, analyze, count_activity, energy_pj, firing_rates
from dnmsnn.cli import main


def hand_net() -> dnmsnn.Network:
    """4 -> 3 (IF, threshold 1) -> 2 (Integrator), weights chosen so every spike is known by hand."""
    net = dnmsnn.Network(dnmsnn.Linear(4, 3, bias=False), dnmsnn.IF(threshold=1.0),
                         dnmsnn.Linear(3, 2, bias=False), dnmsnn.Integrator(), input_shape=(4,))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 0.5]]))
        net[2].weight.fill_(0.25)
    return net


def hand_input(batch: int = 1) -> torch.Tensor:
    x = torch.zeros(2, batch, 4)
    x[0, :, 0] = x[0, :, 2] = 1.0  # step 0: inputs 0 and 2 spike -> hidden 0 and 1 reach 1.0 and fire
    x[1, :, 3] = 1.0               # step 1: input 3 spikes -> hidden 2 reaches 0.5, no spike
    return x


def rows_by_name(report):
    return {r["name"]: r for r in report["layers"]}


def test_synops_macs_and_energy_of_a_hand_computed_network():
    report = analyze(hand_net(), hand_input(batch=3))
    rows, t = rows_by_name(report), report["totals"]
    assert report["samples"] == 3 and report["T"] == 2
    assert rows["input"]["spikes_per_sample"] == 3 and rows["input"]["firing_rate"] == 3 / (4 * 2)
    # layer 0: 3 input spikes x fan-out 3 = 9 accumulates; layer 2: 2 hidden spikes x fan-out 2 = 4
    assert rows["0"]["driven_by"] == "spikes" and rows["0"]["synops_per_sample"] == 9
    assert rows["1"]["spikes_per_sample"] == 2 and rows["1"]["firing_rate"] == pytest.approx(2 / (3 * 2))
    assert rows["2"]["synops_per_sample"] == 4 and rows["2"]["mean_fan_out"] == 2
    assert rows["3"]["firing_rate"] is None  # the Integrator never spikes
    assert t["synops_per_sample"] == 13 and t["snn_macs_per_sample"] == 0
    assert t["ann_macs_per_pass"] == 4 * 3 + 3 * 2 and t["dense_macs_per_sample"] == 2 * 18
    assert t["energy_snn_pj_per_sample"] == pytest.approx(13 * 0.9)
    assert t["energy_ann_pj_per_pass"] == pytest.approx(18 * 4.6)
    assert t["energy_ratio_ann_over_snn"] == pytest.approx(18 * 4.6 / (13 * 0.9))
    assert report["energy_per_op_pj"]["ac"] == E_AC_PJ == 0.9 and E_MAC_PJ == 4.6


def test_analog_input_makes_the_first_layer_multiply():
    x = torch.full((2, 1, 4), 0.5)
    report = analyze(hand_net(), x)  # values not in {-1, 0, 1}: analog (direct coding)
    rows = rows_by_name(report)
    assert "input" not in rows
    assert rows["0"]["driven_by"] == "analog" and rows["0"]["synops_per_sample"] == 0
    assert rows["0"]["macs_per_sample"] == 12 * 2  # dense MACs at each of the T = 2 steps
    forced = rows_by_name(analyze(hand_net(), hand_input(), input_spikes=False))
    assert forced["0"]["macs_per_sample"] == 24 and forced["2"]["driven_by"] == "spikes"


def test_energy_arithmetic():
    assert energy_pj(10) == pytest.approx(9.0)
    assert energy_pj(10, 2) == pytest.approx(10 * 0.9 + 2 * 4.6)
    assert energy_pj(1, 1, e_ac=1.0, e_mac=2.0) == 3.0


def conv_synops(x: torch.Tensor, conv: torch.nn.Conv2d) -> float:
    """Brute force: every (output position, out channel, nonzero input tap) pair, via unfold (groups=1)."""
    taps = tF.unfold((x != 0).float(), conv.kernel_size, dilation=conv.dilation, padding=conv.padding,
                     stride=conv.stride)
    return float(taps.sum()) * conv.out_channels


def test_conv_synops_are_exact_at_borders_and_with_stride():
    net = dnmsnn.Network(dnmsnn.Conv2d(1, 2, 3, padding=1, bias=False), dnmsnn.IF(), input_shape=(1, 4, 4))
    x = torch.zeros(1, 1, 1, 4, 4)
    x[0, 0, 0, 0, 0] = x[0, 0, 0, 1, 1] = 1.0
    rows = rows_by_name(analyze(net, x))
    # corner spike reaches 2x2 output positions, inner spike 3x3; each position has 2 output channels
    assert rows["0"]["synops_per_sample"] == (4 + 9) * 2
    assert rows["0"]["ann_macs_per_pass"] == 2 * 4 * 4 * 9
    strided = dnmsnn.Network(dnmsnn.Conv2d(1, 1, 3, stride=2, bias=False), dnmsnn.IF(), input_shape=(1, 5, 5))
    x = torch.zeros(1, 1, 1, 5, 5)
    x[0, 0, 0, 2, 2] = x[0, 0, 0, 0, 0] = x[0, 0, 0, 1, 1] = 1.0
    assert rows_by_name(analyze(strided, x))["0"]["synops_per_sample"] == 4 + 1 + 1
    grouped = dnmsnn.Network(dnmsnn.Conv2d(2, 4, 1, groups=2, bias=False), dnmsnn.IF(), input_shape=(2, 3, 3))
    x = (torch.rand(3, 2, 2, 3, 3) < 0.5).float()
    r = rows_by_name(analyze(grouped, x))["0"]
    assert r["synops_per_sample"] == pytest.approx(float((x != 0).sum()) * 2 / 2)  # fan-out 4 / 2 groups
    torch.manual_seed(0)
    conv = dnmsnn.Conv2d(3, 5, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), bias=False)
    net = dnmsnn.Network(conv, dnmsnn.IF(), input_shape=(3, 7, 6))
    x = (torch.rand(4, 2, 3, 7, 6) < 0.3).float()
    got = rows_by_name(analyze(net, x))["0"]["synops_per_sample"] * 2
    assert got == pytest.approx(conv_synops(x.flatten(0, 1), conv))


def test_spikes_pass_through_pooling_and_residuals():
    net = dnmsnn.Network(
        dnmsnn.Conv2d(1, 2, 3, padding=1), dnmsnn.LIF(beta=0.9), dnmsnn.AvgPool2d(2), dnmsnn.Flatten(),
        dnmsnn.Linear(8, 8), dnmsnn.IF(),
        dnmsnn.Residual(dnmsnn.Sequential(dnmsnn.Linear(8, 8), dnmsnn.IF())),
        dnmsnn.BatchNorm1d(8), dnmsnn.Linear(8, 3), dnmsnn.Integrator(), input_shape=(1, 4, 4))
    x = (torch.rand(5, 2, 1, 4, 4) < 0.5).float()
    rows = rows_by_name(analyze(net, x))
    assert rows["4"]["driven_by"] == "spikes"            # after AvgPool2d + Flatten of spikes
    assert rows["6.body.0"]["driven_by"] == "spikes"     # inside the residual block
    assert rows["6.body.1"]["role"] == "neuron"
    assert rows["8"]["driven_by"] == "analog"            # after BatchNorm: multiplies
    assert rows["8"]["macs_per_sample"] == 8 * 3 * 5
    rates = firing_rates(net, x)
    assert set(rates) == {"input", "1", "5", "6.body.1"} and all(0.0 <= v <= 1.0 for v in rates.values())


def test_counts_merge_over_batches_and_reject_bad_input():
    net, x = hand_net(), hand_input(batch=2)
    one = analyze(net, x)
    two = analyze(net, [x, x])
    assert two["samples"] == 4 and two["totals"] == one["totals"]
    with pytest.raises(dnmsnn.InputError):
        count_activity(net, torch.zeros(2, 4))
    with pytest.raises(dnmsnn.InputError):
        analyze(net, [])


def test_record_neurons_restores_flags_and_returns_traces():
    net = hand_net()
    rec = activity.record_neurons(net, hand_input())
    assert set(rec) == {"input", "1", "3"} and rec["1"]["kind"] == "IF"
    assert rec["1"]["v"].shape == (2, 1, 3) and rec["1"]["v"][0, 0, 0] == 1.0
    assert net[1].record is False and net[1].v_trace is None


# ----------------------------------------------------------------------------------------------- plots
def assert_files(files, names, formats=("png", "svg")):
    got = {f.name for f in files}
    for name in names:
        for fmt in formats:
            assert f"{name}.{fmt}" in got, (name, fmt, got)
    for f in files:
        assert f.stat().st_size > 500, f


def cohort_rows():
    return [{"epoch": e, "train_loss": 1.0 / e, "train_acc": 0.5 + 0.1 * e, "test_acc": 0.6 + 0.1 * e,
             "members": [{"train_loss": 1.0 / e, "train_acc": 0.5 + 0.1 * e, "test_acc": 0.6 + 0.1 * e},
                         {"train_loss": 1.1 / e, "train_acc": 0.45 + 0.1 * e, "test_acc": 0.55 + 0.1 * e}],
             "mix": {"better": "max", "best_member": 0, "val": None,
                     "test": {"max": 0.62 + 0.1 * e, "average": 0.61 + 0.1 * e, "better": 0.62 + 0.1 * e}}}
            for e in (1, 2, 3)]


def test_training_curves_with_and_without_members(tmp_path):
    pytest.importorskip("matplotlib")
    rows = [{"epoch": 1, "train_loss": 1.0, "train_acc": 0.5, "test_acc": 0.6},
            {"epoch": 2, "train_loss": 0.5, "train_acc": 0.7, "test_acc": 0.8, "val_acc": 0.75}]
    assert_files(plots.plot_training(rows, tmp_path / "single"), ["single"])
    assert_files(plots.plot_training(cohort_rows(), tmp_path / "cohort", formats=("png",)), ["cohort"], ("png",))
    odd = [{"epoch": 1, "test_acc": 0.5, "members": [0.4, 0.45], "mix": {"vote": {"acc": 0.5}}}]
    assert_files(plots.plot_training(odd, tmp_path / "odd", formats=("svg",)), ["odd"], ("svg",))
    with pytest.raises(DnmsnnError):
        plots.plot_training([], tmp_path / "empty")


def test_cohort_bar_chart(tmp_path):
    pytest.importorskip("matplotlib")
    results = {"test_acc": 0.9, "members": [{"seed": 0, "test_acc": 0.9}, {"seed": 1, "test_acc": 0.88}],
               "mix": {"better": "max", "best_member": 0, "test_acc": {"max": 0.91, "average": 0.905}}}
    assert_files(plots.plot_cohort(results, tmp_path / "members"), ["members"])
    assert plots._mix_accuracies(results["mix"]) == {"max": 0.91, "average": 0.905}
    assert plots.plot_cohort({"test_acc": 0.9}, tmp_path / "none") == []


def test_raster_membrane_and_rates_plots(tmp_path):
    pytest.importorskip("matplotlib")
    torch.manual_seed(0)
    net = dnmsnn.models.create("digits_mlp")
    x = (torch.rand(8, 3, 1, 8, 8) < 0.4).float()
    rec = activity.record_neurons(net, x)
    files = plots.plot_raster(rec, tmp_path / "raster", sample=1)
    files += plots.plot_membrane(rec, tmp_path / "membrane", neurons={"2": [0, 5]}, thresholds={"2": 1.0}, label=3)
    files += plots.plot_firing_rates(firing_rates(net, x), tmp_path / "rates")
    assert_files(files, ["raster", "membrane", "rates"])


# ----------------------------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("analysis") / "run"
    assert main(["train", "--set", "train.epochs=1", "--set", "train.progress=false", "--set", "encoder.T=8",
                 "--out", str(out)]) == 0
    return out


def test_cli_plot_writes_every_figure(run_dir, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "figs"
    assert main(["plot", str(run_dir), "--out", str(out), "--format", "png,svg"]) == 0
    files = sorted(out.iterdir())
    assert_files(files, ["curves", "acc_vs_T", "raster", "membrane", "firing_rates", "reconstruction"])
    assert "raster.png" in capsys.readouterr().out


def test_cli_plot_tensorboard(run_dir, tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logdir = tmp_path / "tb"
    assert main(["plot", str(run_dir), "--out", str(tmp_path / "f"), "--format", "png", "--tensorboard",
                 str(logdir)]) == 0
    acc = EventAccumulator(str(logdir))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert {"loss/train", "accuracy/test", "results/test_acc_by_T"} <= set(tags)
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert acc.Scalars("accuracy/test")[0].value == pytest.approx(metrics[0]["test_acc"])


def test_tensorboard_logger_tags_members_and_mix(tmp_path):
    pytest.importorskip("tensorboard")
    from dnmsnn.analysis.tensorboard import TensorBoardLogger, scalars

    tags = dict(scalars(cohort_rows()[0]))
    assert tags["loss/train"] == 1.0 and tags["member/1/accuracy/test"] == pytest.approx(0.65)
    assert tags["mix/test/max"] == pytest.approx(0.72) and "mix/better" not in tags
    with TensorBoardLogger(tmp_path / "tb") as tb:
        assert tb.log(cohort_rows()[0]) == len(tags)
    assert any(p.name.startswith("events.out.tfevents") for p in (tmp_path / "tb").iterdir())


def test_tensorboard_missing_is_a_clear_error(tmp_path, monkeypatch):
    from dnmsnn.analysis.tensorboard import TensorBoardLogger

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(DnmsnnError, match="pip install 'dnmsnn\\[tensorboard\\]'"):
        TensorBoardLogger(tmp_path / "tb")


def test_cli_analyze_writes_json_and_markdown(run_dir, capsys):
    assert main(["analyze", str(run_dir), "--batches", "2", "--batch-size", "40", "--T", "5"]) == 0
    report = json.loads((run_dir / "analysis.json").read_text())
    assert report["samples"] == 80 and report["T"] == 5 and report["encoder"] == "poisson"
    syn = [r for r in report["layers"] if r["role"] == "synapse"]
    assert [r["driven_by"] for r in syn] == ["spikes", "spikes"]  # Poisson input: the first layer accumulates
    assert report["totals"]["synops_per_sample"] == pytest.approx(sum(r["synops_per_sample"] for r in syn))
    assert report["totals"]["ann_macs_per_pass"] == 64 * 128 + 128 * 10
    assert 0.0 < report["layers"][0]["firing_rate"] < 1.0 and 0.0 <= report["accuracy"] <= 1.0
    md = (run_dir / "analysis.md").read_text()
    assert "SynOps" in md and "Horowitz" in md
    assert "| fc1 (`1`) | Linear |" in capsys.readouterr().out  # the layer's role, then its module name


def test_cli_errors_exit_2(run_dir, tmp_path, capsys, monkeypatch):
    assert main(["plot", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert main(["analyze", str(tmp_path / "missing")]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert main(["analyze", str(run_dir), "--batches", "0"]) == 2
    assert main(["plot", str(run_dir), "--format", "jpg"]) == 2
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["plot", str(run_dir), "--out", str(tmp_path / "f")]) == 2
    assert "needs matplotlib" in capsys.readouterr().err


def test_trainer_writes_tensorboard_events(tmp_path):
    pytest.importorskip("tensorboard")
    from dnmsnn.cli import main

    board = tmp_path / "tb"
    assert main(["train", "--set", "train.epochs=2", "--set", "train.progress=false", "--set", "encoder.T=4",
                 "--set", f"train.tensorboard={board}", "--out", str(tmp_path / "run")]) == 0
    assert list(board.glob("events.out.tfevents.*"))
