"""Distributed training on CPU: 2 processes over gloo against the one-process run of the same global batch.

Data parallel must end with the one-process weights up to float rounding for every rule (bptt, the online
spatial rule with an optimizer step at every time step, asf's totals backward) and for dropout; the cohort
spread over 2 ranks must be bitwise the one-process cohort; rank 0 alone writes; ``--resume`` works, also
through ``dnmsnn train --nproc 2``. Workers are spawned processes that join a process group through a file.
"""
from __future__ import annotations

import datetime
import gc
import json
import multiprocessing
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist

import dnmsnn
from dnmsnn import ConfigError
from dnmsnn.cli import main
from dnmsnn.data import load_dataset
from dnmsnn.network import read_out
from dnmsnn.rules.base import LearningRule
from dnmsnn.sharding import BatchShard, batch_shard, shard_sum
from dnmsnn.train import Trainer, load_checkpoint, load_run_config
from dnmsnn.train.distributed import DataParallel, Local, shard_bounds

if not (dist.is_available() and dist.is_gloo_available()):
    pytest.skip("torch.distributed with the gloo backend is not available", allow_module_level=True)

# 257 samples in batches of 64: the last batch has 1 sample, so rank 1's shard of it is empty
BASE = ["data.name=digits", "data.train_limit=257", "data.test_limit=100", "encoder.T=4", "train.batch_size=64",
        "train.epochs=1", "train.progress=false", "train.threads=1"]
DROPOUT_MLP = ["model.name=mlp", "model.args={hidden: [32], dropout: 0.2}"]
COHORT = [*DROPOUT_MLP, "data.name=digits", "data.train_limit=300", "data.test_limit=100", "data.val_fraction=0.2",
          "encoder.T=3", "train.progress=false", "train.threads=1", "cohort.size=2", "cohort.weight=0.5"]
RULES = {
    "bptt": ["model.name=digits_mlp"],
    "spatial-online-step": ["model.name=digits_mlp", "rule.name=spatial", "rule.args={online: true, update: step}"],
    "asf": ["model.name=digits_mlp", "rule.name=asf", "rule.loss=mse"],
    "dropout-cohort": [*DROPOUT_MLP, "cohort.size=2", "cohort.weight=0.5"],
}
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


# ----------------------------------------------------------------- harness
def _worker(rank: int, world: int, init_file: str, fn_name: str, args: tuple, err_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=60))
    try:
        globals()[fn_name](rank, *args)
        gc.collect()
        dist.barrier()  # leave together: no rank exits while another still has traffic in flight
    except BaseException:
        Path(err_dir, f"rank{rank}.err").write_text(traceback.format_exc())
        raise
    finally:
        dist.destroy_process_group()


def run_ranks(tmp_path: Path, fn, *args, world: int = 2, timeout: float = 120) -> None:
    """Run ``fn(rank, *args)`` on ``world`` spawned processes sharing a gloo process group."""
    tag = f"{fn.__name__}-{time.monotonic_ns()}"
    err_dir = tmp_path / f"errors-{tag}"
    err_dir.mkdir()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(r, world, str(tmp_path / f"pg-{tag}"), fn.__name__, args,
                                               str(err_dir))) for r in range(world)]
    for p in procs:
        p.start()
    deadline = time.monotonic() + timeout
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
    hung = [p for p in procs if p.is_alive()]
    for p in hung:
        p.kill()
        p.join()
    errors = "\n".join(f.read_text() for f in sorted(err_dir.glob("*.err")))
    assert not hung, f"ranks still running after {timeout} s\n{errors}"
    assert all(p.exitcode == 0 for p in procs), f"exit codes {[p.exitcode for p in procs]}\n{errors}"


def _train(rank: int, overrides: list[str], out: str, resume: bool = False) -> None:
    """Every rank gets its own --out: only rank 0's may come to exist."""
    cfg = load_run_config(None, overrides)
    results = Trainer(cfg, Path(out) / f"rank{rank}", resume=resume, echo=lambda s: None).fit()
    assert "test_acc" in results  # every rank returns rank 0's results


class LayerByLayer(LearningRule):
    """bptt that runs the layers itself instead of calling the network: DDP cannot see its graph."""

    def loss_backward(self, model, inputs, targets, aux_loss=None):
        x = inputs
        for layer in model:
            x = layer(x)
        logits = read_out(x, model.readout)
        loss = self.objective(logits, targets, aux_loss)
        loss.backward()
        return loss.detach(), logits.detach()


def one_batch(n: int = 33):
    ds = load_dataset("digits", "train")
    return dnmsnn.PoissonEncoder(4, seed=0)(ds.images[:n]), ds.labels[:n]


def fresh_member():
    torch.manual_seed(0)
    net = dnmsnn.models.create("digits_mlp")
    rule = LayerByLayer()
    return SimpleNamespace(model=net, rule=rule), dnmsnn.Cohort([net], [rule], seeds=[0])


def _custom_rule_grads(rank: int, out: str) -> None:
    member, cohort = fresh_member()
    par = DataParallel()
    par.attach([member], echo=lambda s: None)
    x, y = one_batch()
    stats = par.train_batch(cohort, x, y, 0.0)
    torch.save({"grads": {k: p.grad for k, p in member.model.named_parameters()}, "stats": stats},
               Path(out) / f"rank{rank}.pt")


def single(tmp_path: Path, name: str, overrides: list[str], resume: bool = False) -> Trainer:
    trainer = Trainer(load_run_config(None, overrides), tmp_path / name, resume=resume, echo=lambda s: None)
    trainer.fit()
    return trainer


def untimed(path: Path) -> list[dict]:
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    return [{k: v for k, v in r.items() if "time" not in k and "per_s" not in k} for r in rows]


def member_states(ckpt: dict) -> list[dict]:
    return ckpt.get("members", [ckpt])


# ----------------------------------------------------------------- no processes
def test_shards_cover_the_batch_in_order():
    for n in range(0, 12):
        for parts in range(1, 5):
            bounds = [shard_bounds(n, i, parts) for i in range(parts)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
            sizes = [b - a for a, b in bounds]
            assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_one_process_context_is_local(tmp_path):
    trainer = Trainer(load_run_config(None, [*BASE, "model.name=digits_mlp"]), tmp_path / "r", echo=lambda s: None)
    assert isinstance(trainer.par, Local) and trainer.par.is_main and trainer.par.own_members(3) == [0, 1, 2]


def test_a_shard_draws_its_rows_of_the_global_dropout_masks_and_sums_over_shards():
    drop = dnmsnn.layers.Dropout(0.5)
    x = torch.ones(3, 10, 7)
    torch.manual_seed(5)
    full = drop(x)
    parts = []
    for start, stop in (shard_bounds(10, r, 3) for r in range(3)):
        shard = BatchShard(start, stop, 10, all_sum=lambda t: t * 3)
        torch.manual_seed(5)
        with batch_shard(shard):
            parts.append(drop(x[:, start:stop]))
            assert torch.equal(shard_sum(torch.tensor([2.0])), torch.tensor([6.0]))
        with batch_shard(shard._replace(live=False)):  # a stand-in row adds nothing
            assert torch.equal(shard_sum(torch.tensor([2.0])), torch.tensor([0.0]))
    assert torch.equal(torch.cat(parts, 1), full)
    assert torch.equal(shard_sum(torch.tensor([2.0])), torch.tensor([2.0]))  # one process: the sum itself


def test_parallel_mode_is_validated():
    assert load_run_config(None, ["train.parallel=cohort"]).train.parallel == "cohort"
    with pytest.raises(ConfigError, match="train.parallel"):
        load_run_config(None, ["train.parallel=model"])


# ----------------------------------------------------------------- 2 processes
@pytest.mark.slow
@pytest.mark.parametrize("rule", list(RULES))
def test_data_parallel_gives_the_one_process_weights(rule, tmp_path):
    overrides = [*BASE, *RULES[rule]]
    run_ranks(tmp_path, _train, overrides, str(tmp_path / "dist"))
    ref = single(tmp_path, "single", overrides)
    assert not (tmp_path / "dist" / "rank1").exists()  # rank 1 wrote nothing
    ckpt = load_checkpoint(tmp_path / "dist" / "rank0" / "checkpoint.pt")
    states = member_states(ckpt)
    assert len(states) == len(ref.members)
    for member, state in zip(ref.members, states, strict=True):
        for name, value in member.model.state_dict().items():
            torch.testing.assert_close(state["model"][name], value, rtol=1e-4, atol=1e-6, msg=f"{rule} {name}")
    row, ref_row = (json.loads(p.read_text().splitlines()[-1]) for p in
                    (tmp_path / "dist" / "rank0" / "metrics.jsonl", tmp_path / "single" / "metrics.jsonl"))
    assert row["train_loss"] == pytest.approx(ref_row["train_loss"], rel=1e-5)
    assert row["train_acc"] == ref_row["train_acc"] and row["test_acc"] == ref_row["test_acc"]


@pytest.mark.slow
def test_cohort_over_two_ranks_is_bitwise_the_one_process_cohort(tmp_path):
    overrides = [*COHORT, "train.epochs=2", "train.parallel=cohort"]
    run_ranks(tmp_path, _train, overrides, str(tmp_path / "dist"))
    single(tmp_path, "single", overrides)  # train.parallel has no effect in one process
    assert not (tmp_path / "dist" / "rank1").exists()
    a, b = (load_checkpoint(tmp_path / d / "checkpoint.pt") for d in ("dist/rank0", "single"))
    for sa, sb in zip(a["members"], b["members"], strict=True):
        assert all(torch.equal(v, sb["model"][k]) for k, v in sa["model"].items())
        oa, ob = sa["optimizer"]["state"], sb["optimizer"]["state"]
        assert all(torch.equal(oa[i][key], ob[i][key]) for i in oa for key in oa[i])
        assert sa["scheduler"] == sb["scheduler"]
    assert untimed(tmp_path / "dist" / "rank0" / "metrics.jsonl") == untimed(tmp_path / "single" / "metrics.jsonl")
    ra, rb = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("dist/rank0", "single"))
    assert ra["members"] == rb["members"] and ra["mix"] == rb["mix"] and ra["test_acc_by_T"] == rb["test_acc_by_T"]


@pytest.mark.slow
def test_resume_under_two_processes_reads_the_checkpoint_on_rank_0_only(tmp_path):
    """Epoch 1 in one process, epoch 2 resumed on 2 ranks (cohort parallel): bitwise the uninterrupted run."""
    common = [*COHORT, "data.train_limit=200", "train.parallel=cohort", "cohort.warmup_epochs=1"]
    (tmp_path / "dist").mkdir()
    single(tmp_path, "dist/rank0", [*common, "train.epochs=1"])
    run_ranks(tmp_path, _train, [*common, "train.epochs=2"], str(tmp_path / "dist"), True)
    assert not (tmp_path / "dist" / "rank1").exists()  # rank 1 resumed from what rank 0 read and broadcast
    single(tmp_path, "single", [*common, "train.epochs=2"])
    a, b = (load_checkpoint(tmp_path / d / "checkpoint.pt") for d in ("dist/rank0", "single"))
    assert a["epoch"] == b["epoch"] == 1
    for sa, sb in zip(a["members"], b["members"], strict=True):
        assert all(torch.equal(v, sb["model"][k]) for k, v in sa["model"].items())
    assert untimed(tmp_path / "dist" / "rank0" / "metrics.jsonl") == untimed(tmp_path / "single" / "metrics.jsonl")


@pytest.mark.slow
def test_cli_nproc_2_resumes_a_one_process_run_data_parallel(tmp_path):
    """The world size may change at --resume: epoch 1 in one process, epoch 2 on `dnmsnn train --nproc 2`."""
    common = [*BASE, "model.name=digits_mlp", "data.val_fraction=0.2"]
    sets = [x for o in common for x in ("--set", o)]
    out = tmp_path / "run"
    assert main(["train", *sets, "--out", str(out)]) == 0
    proc = subprocess.run([sys.executable, "-m", "dnmsnn", "train", "--nproc", "2", *sets, "--set", "train.epochs=2",
                           "--out", str(out), "--resume"], env=ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "data parallel over 2 processes" in proc.stdout and proc.stdout.count("epoch 2/2") == 1
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "config.yaml", "data.json", "metrics.jsonl",
                                                     "results.json"]
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2
    ref = single(tmp_path, "single", [*common, "train.epochs=2"])
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert ckpt["epoch"] == 1
    for name, value in ref.model.state_dict().items():
        torch.testing.assert_close(ckpt["model"][name], value, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.slow
def test_gradients_ddp_cannot_see_are_summed_explicitly(tmp_path):
    """A rule that bypasses the network's forward/step/totals still gets the global-batch gradient (uneven
    shards of 17 and 16 samples, weighted 17/33 and 16/33)."""
    run_ranks(tmp_path, _custom_rule_grads, str(tmp_path))
    member, cohort = fresh_member()
    x, y = one_batch()
    (loss,), _ = cohort.loss_backward(x, y)
    for rank in range(2):
        got = torch.load(tmp_path / f"rank{rank}.pt", weights_only=False)
        for name, p in member.model.named_parameters():
            torch.testing.assert_close(got["grads"][name], p.grad, rtol=1e-5, atol=1e-7, msg=name)
        assert got["stats"][0][0] == pytest.approx(float(loss), rel=1e-6)
