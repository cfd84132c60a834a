"""Every tutorial under docs/tutorials/ runs to the end and writes the figures it announces.

Each script runs in its own process on one thread, with its output folder under tmp_path: given by
``--out`` for every other tutorial and by ``$DNMSNN_TUTORIAL_OUT`` for the rest, so both ways stay working.
A tutorial prints one ``figure: PATH`` line per figure it writes.
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "docs" / "tutorials").glob("[0-9][0-9]_*.py"))

pytest.importorskip("matplotlib", reason="the tutorials draw figures with matplotlib (the plot / dev extras)")


def test_there_are_six_numbered_tutorials():
    assert [p.name[:3] for p in TUTORIALS] == [f"{i:02d}_" for i in range(1, 7)]


@pytest.mark.parametrize("script", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_explains_itself(script):
    doc = ast.get_docstring(ast.parse(script.read_text()))
    assert doc, f"{script.name} needs a header docstring saying what it teaches"
    assert doc.startswith(f"Tutorial {int(script.name[:2])}:") and "What this teaches" in doc


@pytest.mark.slow
@pytest.mark.parametrize("script", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs_and_writes_its_figures(script, tmp_path):
    out = tmp_path / "figures"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    env.pop("DNMSNN_TUTORIAL_OUT", None)
    cmd = [sys.executable, str(script)]
    if int(script.name[:2]) % 2:
        cmd += ["--out", str(out)]
    else:
        env["DNMSNN_TUTORIAL_OUT"] = str(out)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, (f"{script.name} failed after {seconds:.0f} s:\n"
                                  f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    figures = [Path(line.split("figure: ", 1)[1].strip()) for line in proc.stdout.splitlines()
               if line.startswith("figure: ")]
    assert figures, f"{script.name} announced no figure:\n{proc.stdout[-3000:]}"
    for fig in figures:
        assert fig.is_file() and fig.stat().st_size > 1000, f"{script.name}: {fig} missing or empty"
        assert out.resolve() in fig.resolve().parents, f"{script.name} wrote {fig} outside its output folder {out}"
