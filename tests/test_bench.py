"""``dnmsnn bench``: command construction, library discovery and the paired-ratio summary (no benchmark is run)."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from dnmsnn.cli import main

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("bench", ROOT / "benchmarks" / "bench.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def rec(lib, T, train, infer, mem, workload="bondarev-mlp", repeat=0):
    return {"lib": lib, "workload": workload, "T": T, "status": "ok", "repeat": repeat, "batch": 64, "threads": 2,
            "train": {"median_s": train}, "infer": {"median_s": infer}, "train_peak_growth_mb": mem,
            "train_samples_per_s": 64 / train, "infer_samples_per_s": 64 / infer, "versions": {"torch": "x"}}


def write(path, recs):
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return path


def test_summary_pairs_runs_and_checks_targets(tmp_path):
    run1 = [rec("dnmsnn", 20, 0.05, 0.01, 20), rec("torch-ann", 20, 0.045, 0.012, 20),
            rec("spikingjelly", 20, 0.12, 0.03, 40), rec("snntorch", 20, 0.2, 0.05, 30),
            rec("dnmsnn", 80, 0.2, 0.04, 30), rec("spikingjelly", 80, 0.5, 0.1, 100)]
    run2 = [dict(r, train={"median_s": r["train"]["median_s"] * 2}) for r in run1]  # a slow host: ratios unchanged
    f = write(tmp_path / "a.jsonl", run1 + run2)  # two invocations appended: both start at repeat 0
    recs = bench.load_records([f])
    assert bench.paired(recs, "bondarev-mlp", 20, "spikingjelly", bench._train) == pytest.approx([2.4, 2.4])
    assert bench.paired(recs, "bondarev-mlp", 20, "ann", bench._train) == pytest.approx([0.9, 0.9])
    assert bench.paired(recs, "bondarev-mlp", 20, "peer", bench._infer) == pytest.approx([3.0, 3.0])
    assert bench.paired(recs, "bondarev-mlp", 80, "spikingjelly", bench._mem, invert=False) == pytest.approx([0.3, 0.3])
    text = bench.summarize(recs)
    assert "| bondarev-mlp T=20: train throughput vs spikingjelly >= 2.0 | 2.40" in text
    assert "| bondarev-mlp T=80: peak memory vs spikingjelly <= 0.5 | 0.30" in text
    assert "| asf-conv T=20: train throughput vs fastest peer >= 1.5 | not measured" in text


def test_summarize_cli_writes_markdown(tmp_path, capsys):
    f = write(tmp_path / "r.jsonl", [rec("dnmsnn", 20, 0.05, 0.01, 20), rec("torch-ann", 20, 0.05, 0.01, 20)])
    assert main(["bench", "--summarize", str(f), "--out", str(tmp_path / "sum")]) == 0
    assert "train throughput vs ANN >= 0.9 | 1.00" in (tmp_path / "sum.md").read_text()
    assert main(["bench", "--summarize", str(tmp_path / "missing.jsonl")]) == 2


def test_choose_libs_leaves_out_what_the_interpreter_cannot_import():
    import importlib.util

    libs, missing = bench.choose_libs(sys.executable, ["dnmsnn", "torch-ann", "snntorch"])
    assert libs[:2] == ["dnmsnn", "torch-ann"]
    has_snntorch = importlib.util.find_spec("snntorch") is not None
    assert ("snntorch" in libs) == has_snntorch and ("snntorch" in missing) != has_snntorch


def test_dry_run_prints_the_peer_bench_command(tmp_path, capsys):
    fake = tmp_path / "peer_bench.py"
    fake.write_text("")
    code = main(["bench", "--dry-run", "--python", sys.executable, "--peer-bench", str(fake), "--T", "20",
                 "--workloads", "bondarev-mlp", "--repeat", "3", "--libs", "dnmsnn,torch-ann",
                 "--out", str(tmp_path / "x")])
    out = capsys.readouterr().out
    assert code == 0
    assert f"{fake} --plugin" in out and "peer_bench_dnmsnn.py" in out
    assert "--libs dnmsnn,torch-ann" in out and "--repeat 3" in out and "--T 20" in out
    assert f"--json {tmp_path / 'x'}.jsonl" in out


def test_missing_peer_bench_is_a_clean_error(tmp_path):
    assert main(["bench", "--dry-run", "--python", sys.executable, "--peer-bench", str(tmp_path / "nope.py"),
                 "--libs", "torch-ann"]) == 2


def test_dnmsnn_bench_outside_a_clone_is_a_clear_error(tmp_path, monkeypatch, capsys):
    import dnmsnn.cli as cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "find_checkout_file", lambda relative, start=None: None)
    assert main(["bench", "--dry-run"]) == 2
    assert "clone of the repository" in capsys.readouterr().err
    monkeypatch.undo()
    assert cli.find_checkout_file("benchmarks/bench.py", ROOT / "docs") == ROOT / "benchmarks" / "bench.py"
