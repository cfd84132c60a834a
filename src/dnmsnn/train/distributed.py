"""Scale-out on torch.distributed: data-parallel training with every rule, and cohorts spread over ranks.

Launch
------
``torchrun --nproc-per-node N -m dnmsnn train --config ...``, or ``dnmsnn train --nproc N ...`` which runs
``python -m torch.distributed.run --standalone`` itself. :func:`setup` reads torchrun's environment
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``) and initialises the default
process group: ``gloo`` for CPU tensors and, where CUDA is available, ``nccl`` for CUDA tensors (backend
``cpu:gloo,cuda:nccl``; ``$DNMSNN_DIST_BACKEND`` overrides it, ``$DNMSNN_DIST_TIMEOUT_S`` sets the
collective timeout, default 2 h). Outside torchrun (``WORLD_SIZE`` unset or 1) it returns :class:`Local`,
whose every method is what the one-process trainer always did, so that path is unchanged.

Run directory: rank 0 only
--------------------------
Rank 0 alone checks and writes the run directory (config, metrics, checkpoints, results, TensorBoard) and
prints. On ``--resume`` rank 0 reads the checkpoint and broadcasts it (:meth:`Local.on_main`), so the other
ranks -- on other nodes too -- never touch the run directory. Evaluation (every epoch's validation / test
and the final sweep over T) runs on rank 0 alone, on the same fixed-seed input stream as one process:
its numbers are a one-process evaluation of the same weights, exactly. Meanwhile the other ranks go on
to the next epoch and wait in its first collective. (Sharding evaluation would save that idle time but
needs every rank to draw the whole fixed-seed stream anyway and the cohort's mix needs every output in
one place; exact and simple won.)

Data parallel (``train.parallel: data``, the default)
-----------------------------------------------------
* Sampler. Every rank draws the same epoch order from ``(seed, epoch)`` and walks the same global
  batches of ``train.batch_size``; rank r keeps rows ``start_r:stop_r`` of each (:func:`shard_bounds`:
  contiguous, sizes differing by at most one).
* Randomness does not depend on N. Every rank encodes the *whole* global batch with the shared encoder
  stream and keeps its rows, so the Poisson draws of every sample are those of one process whatever
  the number of ranks (the price: each rank encodes B samples, cheap next to the network). Dropout does
  the same through :func:`dnmsnn.sharding.batch_shard` (the global batch's masks are drawn, the rank's rows
  kept), on the member's own stream, identical on every rank.
* Gradients. The losses are batch means, so the global-batch gradient is ``sum_r (n_r / B) grad_r``. Each
  member's network is wrapped in DistributedDataParallel with a communication hook
  (:func:`_weighted_allreduce`) that scales the rank's gradient bucket by ``n_r / B`` before summing: the
  plain DDP average when shards are equal, still exact for the last, uneven batch. A rank whose shard is
  empty (a last batch smaller than N) runs a one-sample stand-in with weight 0.
* Rules whose graph does not go through ``module.forward``. DDP synchronises the graph of a call of the
  module it wraps, and the rules run the network in three modes through its one entry point,
  :meth:`~dnmsnn.Network.run`: ``sequence`` / ``logits`` (bptt, offline spatial), ``step`` (online spatial,
  one backward per time step) and ``totals`` (asf phase 2). DDP wraps :class:`_Routed`, whose forward is
  the network's :meth:`~dnmsnn.Network.execute`; for the duration of a training batch the network's
  ``executor`` is that DDP, which ``run`` uses whenever autograd is recording (:meth:`_Sync.routing`).
  No-grad calls -- asf phase 1, the cohort's prediction pass, evaluation -- run locally and cost no
  traffic. So real DDP synchronises each of the online spatial rule's per-step backward passes (with
  ``update: step`` the rule's optimizer step after each one sees the synchronised gradient, as in one
  process) and asf's one backward through the totals network, with the rule code untouched. Should a
  (custom) rule produce gradients without ``run``, DDP sees nothing; :func:`all_reduce_grads` then sums
  the weighted gradients explicitly, so ranks never drift apart silently (a rule that also steps the
  optimizer itself must use ``run``). A routed ``step`` must be followed by its own backward (one DDP
  iteration per step).
  Why route rather than all-reduce every gradient by hand after the rule: DDP overlaps communication
  with the backward pass bucket by bucket, checks that all ranks hold the same parameters, and its hooks
  fire inside the rule, which the per-step optimizer of the online spatial rule needs (a reduction after
  ``loss_backward`` would come after that rule's T optimizer steps, too late).
* ``find_unused_parameters`` is on when the network's neurons have parameters (a learnable beta or
  threshold): asf's totals network and a first step from rest leave them out of the graph. Buffers are
  not synchronised at forward: each rank's are its own.
* Metrics: each batch's per-member (loss x samples, correct) is summed over ranks (an all_reduce of
  16 bytes per member), so every rank sees the global-batch loss and a NaN stops all ranks at the same batch.

Guarantee: N-process training ends with the one-process weights up to floating-point rounding (the same
sums in another order; a rounding difference can flip a spike, so long runs drift apart slowly, as runs
on different thread counts do). Batch-wide quantities are taken over the global batch: asf's ``slope:
batch`` sums FO and FI over all ranks (:func:`dnmsnn.sharding.shard_sum`). Not equal, named by
:func:`caveats` at start-up: BatchNorm (statistics of the rank's shard; there is no synchronised
BatchNorm here).

Cohort parallel (``train.parallel: cohort``)
--------------------------------------------
N = K x G ranks for K = ``cohort.size`` >= 2 members: rank r trains member k = r // G on shard g = r % G of
every global batch. A rank computes its member's no-grad prediction of its shard and ``all_gather`` over
the K ranks holding that shard (its shard group) hands every member its peers' predictions: the only
per-batch traffic besides the gradients among the G ranks of one member (data parallel as above, over
that member group). With G = 1 there is no gradient traffic at all, and member k's computation is the
one-process cohort's operation for operation: the run is bitwise the one-process run. Once per epoch the
members' loss sums are added over ranks and each member's state (weights, optimizer, schedule) is
gathered to rank 0, which evaluates every member and the mix and checkpoints all members. Each rank
builds every member (to load a checkpoint and, on rank 0, to evaluate) but trains only its own.
"""
from __future__ import annotations

import contextlib
import datetime
import gc
import inspect
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from ..errors import ConfigError, DnmsnnError
from ..module import RunOptions
from ..network import Network
from ..sharding import BatchShard, batch_shard

ENV_BACKEND = "DNMSNN_DIST_BACKEND"
ENV_TIMEOUT = "DNMSNN_DIST_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 7200.0
R = TypeVar("R")
# per member k: (loss of the batch, loss x samples, correct predictions) -- what the trainer adds up
BatchStats = dict[int, tuple[float, float, int]]

_created_here = False  # whether init_from_env made the default process group (then teardown destroys it)


# ----------------------------------------------------------------- process group and ranks
def env_world_size() -> int:
    """WORLD_SIZE as torchrun sets it (1 outside torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def default_backend() -> str:
    """``$DNMSNN_DIST_BACKEND``, else gloo for CPU tensors plus nccl for CUDA tensors where CUDA is available."""
    override = os.environ.get(ENV_BACKEND)
    if override:
        return override
    if torch.cuda.is_available() and dist.is_nccl_available():
        return "cpu:gloo,cuda:nccl"
    return "gloo"


def init_from_env(backend: str | None = None, timeout_s: float | None = None) -> bool:
    """Initialise the default process group from torchrun's environment when ``WORLD_SIZE`` > 1 and there is none.

    Returns whether this call created it (:func:`teardown` destroys only such a group).
    """
    global _created_here
    if env_world_size() <= 1 or (dist.is_available() and dist.is_initialized()):
        return False
    if not dist.is_available():
        raise DnmsnnError("WORLD_SIZE > 1 but this torch build has no torch.distributed; run in one process")
    backend = backend or default_backend()
    if "nccl" in backend:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    timeout = float(timeout_s or os.environ.get(ENV_TIMEOUT) or DEFAULT_TIMEOUT_S)
    dist.init_process_group(backend=backend, init_method="env://", timeout=datetime.timedelta(seconds=timeout))
    _created_here = True
    return True


def teardown(clean: bool = True) -> None:
    """Destroy the default process group if :func:`init_from_env` created it (a no-op otherwise).

    ``clean``: all ranks got here normally; they meet at a barrier first, so none leaves while another
    still has traffic in flight (skip it after an error: the other ranks may never come).
    """
    global _created_here
    if _created_here and dist.is_available() and dist.is_initialized():
        # the trainer's DDP wrappers (reducer, communication hook, pending futures) sit in reference cycles: free
        # them now, while the group and the interpreter are alive. Left to the interpreter's exit, a gloo
        # work object could be destroyed after the group, which aborted rank 1 now and then
        # ("terminate called without an active exception" after the last epoch).
        gc.collect()
        if clean:
            dist.barrier()
        dist.destroy_process_group()
    _created_here = False


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's global rank (0 without a process group)."""
    return dist.get_rank() if is_initialized() else 0


def world_size() -> int:
    """The number of processes (1 without a process group)."""
    return dist.get_world_size() if is_initialized() else 1


def is_main() -> bool:
    """Rank 0: the one process that writes and prints."""
    return rank() == 0


def shard_bounds(n: int, index: int, parts: int) -> tuple[int, int]:
    """Rows ``start:stop`` of part ``index`` when ``n`` rows are split into ``parts`` contiguous parts.

    Sizes differ by at most one, the larger parts first (like ``torch.tensor_split``); a part may be empty.
    """
    base, extra = divmod(n, parts)
    start = index * base + min(index, extra)
    return start, start + base + (1 if index < extra else 0)


# ----------------------------------------------------------------- gradient synchronisation
class _Routed(nn.Module):
    """What DDP wraps: the network's :meth:`~dnmsnn.Network.execute` (``forward(mode, x, state, T, run)``).

    A step's new state leaves by the side (``self.state``), not as an output: DDP looks for the
    parameters a graph uses from the outputs, and the loss of a step depends on its output only.
    """

    def __init__(self, net: Network) -> None:
        super().__init__()
        self.net = net
        self.calls = 0
        self.state: Any = None

    def forward(self, mode: str, x: torch.Tensor, state: Any, T: int | None, run: RunOptions) -> torch.Tensor:
        self.calls += 1
        y, self.state = self.net.execute(mode, x, state, T, run)
        return y


class _HookState:
    """The communication hook's state: the process group and this rank's weight n_r / B for the current batch."""

    def __init__(self, group: Any) -> None:
        self.group = group
        self.weight = 1.0


def _weighted_allreduce(state, bucket):  # no annotations: DDP checks them, and here they would be strings
    """DDP communication hook ``(_HookState, dist.GradBucket) -> Future[Tensor]``: the sum over ranks of
    weight_r x gradient bucket_r (the global-batch mean gradient)."""
    buffer = bucket.buffer()
    buffer.mul_(state.weight)
    future = dist.all_reduce(buffer, group=state.group, async_op=True).get_future()
    return future.then(lambda f: f.value()[0])


def all_reduce_grads(params: Sequence[torch.Tensor], weight: float, group: Any = None) -> None:
    """``grad <- sum_r weight_r grad_r`` over ``group`` in one all_reduce, for gradients DDP did not see.

    Every rank must hold gradients for the same parameters (they run the same code on their shards).
    """
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads]).mul_(weight)
    dist.all_reduce(flat, group=group)
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def _may_leave_parameters_unused(net: nn.Module) -> bool:
    """Whether a graph may skip some parameters: those of neurons (a learnable beta or threshold), which
    asf's totals network and a first time step from rest leave out. Synapses are on every path to the
    output. (With DDP's find_unused_parameters the graph is searched at every call, so only when needed.)"""
    neurons = net.neurons() if hasattr(net, "neurons") else [("", net)]
    return any(p.requires_grad for _, m in neurons for p in m.parameters())


class _Sync:
    """One network's gradient synchronisation over ``group`` (None: all ranks): DDP and the routing of its calls."""

    def __init__(self, net: nn.Module, group: Any = None) -> None:
        self.net, self.group = net, group
        self.routed = _Routed(net)
        first = next(net.parameters())
        DDP = nn.parallel.DistributedDataParallel
        # buffers are not synchronised at forward (the name of that switch changed in torch 2.13)
        buffers = ({"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(DDP).parameters
                   else {"broadcast_buffers": False})
        self.ddp = DDP(self.routed, device_ids=[first.device.index] if first.is_cuda else None, process_group=group,
                       find_unused_parameters=_may_leave_parameters_unused(net), **buffers)
        self.hook = _HookState(group)
        self.ddp.register_comm_hook(self.hook, _weighted_allreduce)

    @contextlib.contextmanager
    def routing(self, weight: float) -> Iterator[None]:
        """Within the block, the network's grad-recording runs (:meth:`~dnmsnn.Network.run`, the one way in) go
        through DDP: the network's ``executor`` is set to it for the block.

        ``weight`` is this rank's share n_r / B of the global batch. Afterwards, gradients no routed call
        produced are summed explicitly (:func:`all_reduce_grads`).
        """
        net, ddp, routed = self.net, self.ddp, self.routed
        self.hook.weight, routed.calls = weight, 0

        def through_ddp(_net: Network, mode: str, x: torch.Tensor, state: Any, T: int | None,
                        run: RunOptions) -> tuple[torch.Tensor, Any]:
            y = ddp(mode, x, state, T, run)
            new_state, routed.state = routed.state, None
            return y, new_state

        net.executor = through_ddp
        try:
            yield
        finally:
            del net.executor
        if routed.calls == 0:  # the rule made its graph without Network.run: DDP saw nothing
            all_reduce_grads(list(net.parameters()), weight, self.group)


# ----------------------------------------------------------------- the trainer's view
class Local:
    """One process: every method is what the trainer does without torch.distributed."""

    mode = "single"
    rank = 0
    world_size = 1
    is_main = True

    def own_members(self, size: int) -> list[int]:
        """The cohort members this rank trains."""
        return list(range(size))

    def attach(self, members: Sequence[Any], echo: Callable[[str], None]) -> None:
        """Set up gradient synchronisation for the members (after any checkpoint is loaded)."""

    def train_batch(self, cohort: Any, inputs: torch.Tensor, labels: torch.Tensor, weight: float) -> BatchStats:
        """Fill the trained members' gradients for one global batch (inputs [T, B, ...] encoded, labels [B])."""
        losses, logits = cohort.loss_backward(inputs, labels, weight)
        return {k: (float(loss), float(loss) * labels.shape[0], int((z.argmax(-1) == labels).sum()))
                for k, (loss, z) in enumerate(zip(losses, logits, strict=True))}

    def reduce_epoch(self, loss_sum: list[float], correct: list[int]) -> tuple[list[float], list[int]]:
        """Per-member epoch sums over all ranks."""
        return loss_sum, correct

    def collect_members(self, members: Sequence[Any]) -> None:
        """Bring every member's state to rank 0 (cohort parallel)."""

    def on_main(self, fn: Callable[..., R], *args: Any) -> R:
        """``fn(*args)`` on rank 0; every rank returns its result or raises its error."""
        return fn(*args)


def _portable(exc: BaseException) -> DnmsnnError:
    """An error of rank 0 as the other ranks raise it (a DnmsnnError keeps its type and message)."""
    if isinstance(exc, DnmsnnError):
        try:
            return type(exc)(str(exc))
        except TypeError:
            pass
    return DnmsnnError(f"rank 0 failed: {type(exc).__name__}: {exc}")


class _Distributed(Local):
    def __init__(self) -> None:
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.is_main = self.rank == 0

    def on_main(self, fn: Callable[..., R], *args: Any) -> R:
        result, error = None, None
        if self.is_main:
            try:
                result = fn(*args)
            except Exception as exc:  # noqa: BLE001 - handed to every rank, re-raised below
                error = exc
        box: list[Any] = [(result, None if error is None else _portable(error))]
        dist.broadcast_object_list(box, src=0)
        if error is not None:
            raise error
        result, remote = box[0]
        if remote is not None:
            raise remote
        return result

    @staticmethod
    def _shard(inputs: torch.Tensor, labels: torch.Tensor, index: int, parts: int, group: Any
               ) -> tuple[torch.Tensor, torch.Tensor, int, BatchShard]:
        """(inputs, labels, n, shard) of part ``index`` of the global batch, shared with the ranks of ``group``.

        An empty part runs the first sample as a stand-in, with n = 0 (weight 0, nothing added to sums).
        """
        start, stop = shard_bounds(labels.shape[0], index, parts)
        n = stop - start
        if n == 0:
            start, stop = 0, 1

        def all_sum(t: torch.Tensor) -> torch.Tensor:
            t = t.clone()
            dist.all_reduce(t, group=group)
            return t

        shard = BatchShard(start, stop, labels.shape[0], all_sum, live=n > 0)
        return inputs[:, start:stop].contiguous(), labels[start:stop], n, shard


def caveats(members: Sequence[Any]) -> list[str]:
    """What makes data-parallel training differ from one process beyond rounding, for these members."""
    notes = []
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in members[0].model.modules()):
        notes.append("BatchNorm layers normalise with each rank's shard statistics: the run will not match a "
                     "one-process run with the same global batch")
    return notes


class DataParallel(_Distributed):
    """Every rank trains every member on its shard of each global batch; DDP sums the weighted gradients."""

    mode = "data"

    def __init__(self) -> None:
        super().__init__()
        self.syncs: list[_Sync] = []

    def attach(self, members: Sequence[Any], echo: Callable[[str], None]) -> None:
        self.syncs = [_Sync(m.model) for m in members]
        echo(f"distributed: data parallel over {self.world_size} processes ({dist.get_backend()}); each global "
             "batch is split across the ranks")
        for note in caveats(members):
            echo(f"warning: {note}")

    def train_batch(self, cohort: Any, inputs: torch.Tensor, labels: torch.Tensor, weight: float) -> BatchStats:
        B = labels.shape[0]
        x, y, n, shard = self._shard(inputs, labels, self.rank, self.world_size, None)
        with contextlib.ExitStack() as stack:
            stack.enter_context(batch_shard(shard))
            for s in self.syncs:
                stack.enter_context(s.routing(n / B))
            losses, logits = cohort.loss_backward(x, y, weight)
        stats = torch.tensor([[float(loss) * n if n else 0.0, float((z.argmax(-1) == y).sum()) if n else 0.0]
                              for loss, z in zip(losses, logits, strict=True)], dtype=torch.float64)
        dist.all_reduce(stats)
        return {k: (float(stats[k, 0]) / B, float(stats[k, 0]), int(stats[k, 1])) for k in range(len(losses))}


class CohortParallel(_Distributed):
    """Member k = rank // G on the G ranks k*G .. k*G + G - 1; peers' predictions arrive by all_gather."""

    mode = "cohort"

    def __init__(self, size: int) -> None:
        super().__init__()
        if size < 2:
            raise ConfigError("train.parallel: cohort needs cohort.size >= 2 (one network has no peers); use "
                              "train.parallel=data")
        if self.world_size % size:
            raise ConfigError(f"train.parallel: cohort needs a number of processes that is a multiple of "
                              f"cohort.size = {size}, got {self.world_size}")
        self.K, self.G = size, self.world_size // size
        self.member, self.shard = divmod(self.rank, self.G)
        self.member_group: Any = None
        self.shard_group: Any = None  # None: all ranks (G = 1)
        if self.G > 1:  # every rank creates every group, in the same order, as torch.distributed requires
            member_groups = [dist.new_group(list(range(k * self.G, (k + 1) * self.G))) for k in range(self.K)]
            shard_groups = [dist.new_group([k * self.G + g for k in range(self.K)]) for g in range(self.G)]
            self.member_group, self.shard_group = member_groups[self.member], shard_groups[self.shard]
        self.sync: _Sync | None = None

    def own_members(self, size: int) -> list[int]:
        return [self.member]

    def attach(self, members: Sequence[Any], echo: Callable[[str], None]) -> None:
        if self.G > 1:
            self.sync = _Sync(members[self.member].model, self.member_group)
        echo(f"distributed: cohort of {self.K} over {self.world_size} processes ({dist.get_backend()}), "
             f"{self.G} per member; members exchange their predictions of every batch with all_gather")
        if self.G > 1:
            for note in caveats(members):
                echo(f"warning: {note}")

    def train_batch(self, cohort: Any, inputs: torch.Tensor, labels: torch.Tensor, weight: float) -> BatchStats:
        k, weight = self.member, float(weight)
        with contextlib.ExitStack() as stack:
            if self.G > 1:
                x, y, n, shard = self._shard(inputs, labels, self.shard, self.G, self.member_group)
                stack.enter_context(batch_shard(shard))
                stack.enter_context(self.sync.routing(n / labels.shape[0]))
            else:
                x, y, n = inputs, labels, labels.shape[0]
            if weight > 0:  # as Cohort.loss_backward, the predictions gathered from the other ranks
                pending, own = cohort.start_member(k, x, y)
                predictions = [torch.empty_like(own) for _ in range(self.K)]
                dist.all_gather(predictions, own, group=self.shard_group)
                loss, z = cohort.finish_member(k, pending, x, y, cohort.aux_loss(k, predictions, weight))
            else:
                loss, z = cohort.member_loss_backward(k, x, y)
        return {k: (float(loss), float(loss) * n if n else 0.0, int((z.argmax(-1) == y).sum()) if n else 0)}

    def reduce_epoch(self, loss_sum: list[float], correct: list[int]) -> tuple[list[float], list[int]]:
        stats = torch.tensor([[float(s), float(c)] for s, c in zip(loss_sum, correct, strict=True)],
                             dtype=torch.float64)
        dist.all_reduce(stats)  # other members' rows are 0 here: the sum is each member's owners' total
        return [float(s) for s in stats[:, 0]], [int(c) for c in stats[:, 1]]

    def collect_members(self, members: Sequence[Any]) -> None:
        state = members[self.member].state() if self.shard == 0 else None
        gathered: list[Any] | None = [None] * self.world_size if self.is_main else None
        dist.gather_object(state, gathered, dst=0)
        if self.is_main:
            for r, s in enumerate(gathered):
                if s is not None and r // self.G != self.member:
                    members[r // self.G].load(s)


def setup(cfg: Any) -> Local:
    """The trainer's parallel context for a :class:`~dnmsnn.train.config.RunConfig`: :class:`Local` in one
    process, else :class:`DataParallel` or :class:`CohortParallel` as ``train.parallel`` says (the default
    process group is initialised from torchrun's environment when needed)."""
    init_from_env()
    if world_size() == 1:
        return Local()
    if cfg.train.parallel == "cohort":
        return CohortParallel(cfg.cohort.size)
    return DataParallel()
