"""The execution plan: which code computes each layer, chosen by the functions of this module, with the reason.

Every path computes the same equations (they differ by float rounding at most, see docs/concepts/speed.md);
what differs is speed and memory. The choices between paths are made here, by pure functions of the layer,
its input and :mod:`dnmsnn.settings`; the layers call them and run what they return (the public functional
entry points -- ``neuron_sequence`` and its pooled / Linear variants -- also check the backend themselves,
since they can be called without a layer; see docs/concepts/plan.md for what is left inside them):

* :func:`neuron_choice`: a spiking layer's multi-step recurrence -- the C++ fused node (``cpu-kernels``), the
  fused node's PyTorch loop (``torch``), or the step-by-step autograd loop (``reference``, and neurons whose
  equations the fused node does not carry: :mod:`dnmsnn.neuron_registry`'s ``runs_on``);
* :func:`pair_choice`: whether a neuron and the layer after it run as one node (neuron + Linear with gradients:
  spikes kept as bytes; neuron + k x k AvgPool2d on channels-last conv output: spikes never written);
* :func:`linear_choice` / :func:`spike_kernel_reason`: a Linear (or the product of a fused neuron + Linear)
  on 0/1 input through the multiplication-free spike kernels, or the dense oneDNN / MKL product;
* :func:`conv_choice` / :func:`pool_choice`: a multi-step Conv2d / AvgPool2d over the ``[T*B]`` stack,
  channels-last in chunks (with the spike convolution where it applies), or PyTorch's own;
* :func:`readout_choice`: the Integrator readout in closed form, or its literal trace.

:func:`explain` runs a network once on an example input with a recorder switched on and returns the plan
that ran: one row per layer (or fused pair), its block, backend, kernel and why. The recorder costs nothing
when off (one context-variable read per decision).
"""
from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from . import settings
from .module import RunOptions

REFERENCE, TORCH, CPU_KERNELS = "reference", "torch", "cpu-kernels"
LOOP = "step-by-step autograd loop"
MODES = ("sequence", "step", "totals")


@dataclass(frozen=True)
class Choice:
    """How one block runs: ``block`` (what runs as one unit), ``backend`` (``reference``, ``torch`` or
    ``cpu-kernels``), ``kernel`` (the code that computes it) and ``reason`` (why this one)."""

    block: str
    backend: str
    kernel: str
    reason: str


# ----------------------------------------------------------------------------- the recorder
_RECORDER: contextvars.ContextVar[list[tuple[tuple[nn.Module, ...], Choice]] | None] = contextvars.ContextVar(
    "dnmsnn_plan_recorder", default=None)


def recording() -> bool:
    """Whether an :func:`explain` run is recording the choices (the layers note them only then)."""
    return _RECORDER.get() is not None


def note(choice: Choice, *modules: nn.Module) -> Choice:
    """Record ``choice`` for ``modules`` when :func:`explain` records; returns the choice."""
    rows = _RECORDER.get()
    if rows is not None:
        rows.append((modules, choice))
    return choice


@contextlib.contextmanager
def _record() -> Iterator[list[tuple[tuple[nn.Module, ...], Choice]]]:
    rows: list[tuple[tuple[nn.Module, ...], Choice]] = []
    token = _RECORDER.set(rows)
    try:
        yield rows
    finally:
        _RECORDER.reset(token)


# ----------------------------------------------------------------------------- the decisions
def cpp_neuron_reason(x: torch.Tensor, p: Any) -> str | None:
    """Why the C++ fused neuron kernel cannot run the layer p on x (None: it can, and is loaded)."""
    from .functional import cpp
    from .functional.fused import _SURROGATE_CODES

    s = settings.current()
    if not s.cpp:
        return f"backend {s.backend!r} runs no C++ code"
    if x.device.type != "cpu":
        return f"the C++ kernel runs on the CPU only (input on {x.device})"
    if x.dtype not in (torch.float32, torch.float64):
        return f"the C++ kernel supports float32/float64, not {x.dtype}"
    if type(p.surrogate) not in _SURROGATE_CODES:
        return f"the C++ kernel knows the built-in surrogates only, not {type(p.surrogate).__name__}"
    if cpp.load() is None:
        return f"the C++ kernels are unavailable: {cpp.status()}"
    return None


def neuron_choice(x: torch.Tensor, p: Any, module: nn.Module | None = None) -> Choice:
    """The multi-step recurrence of a spiking layer (parameters p, input x [T, B, ...])."""
    from .neuron_registry import FUSED, kind_of

    kind = None if module is None else kind_of(module)
    if kind is not None and kind.runs_on != FUSED:
        return Choice("neuron", TORCH if settings.current().fused else REFERENCE, LOOP, f"{kind.name}: {kind.runs_on}")
    if not settings.current().fused:
        return Choice("neuron", REFERENCE, LOOP, "backend 'reference': the literal equations")
    why = cpp_neuron_reason(x, p)
    if why is None:
        return Choice("neuron", CPU_KERNELS, "fused node, C++ kernel (lif_kernel.cpp)",
                      "CPU, float32/64, a built-in surrogate: one pass over [T, N] each way")
    return Choice("neuron", TORCH, "fused node, PyTorch loop", why)


_NEURON_LINEAR = Choice("neuron+linear", "-", "one node, spikes kept as bytes",
                        "a Linear after a neuron, with gradients: less memory, same values")


def _pair_refused(neuron: nn.Module, nxt: nn.Module, why: str) -> None:
    note(Choice("neuron", "-", "not fused with the next layer", why), neuron)
    return None


def pair_choice(neuron: nn.Module, nxt: nn.Module, x: torch.Tensor, run: RunOptions) -> Choice | None:
    """Whether ``nxt(neuron(x))`` runs as one node (the Choice) or as two layers (None), in a run with options
    ``run``."""
    from .functional.fused import neuron_pool_fusable
    from .layers import AvgPool2d, Linear, square_window
    from .module import has_hooks
    from .neuron_registry import FUSED, kind_of
    from .neurons import _SpikingNeuron

    pool = type(nxt).forward is AvgPool2d.forward or type(nxt) is nn.AvgPool2d
    linear = type(nxt).forward is Linear.forward or type(nxt).forward is nn.Linear.forward
    if not (pool or linear):
        return None
    if type(neuron).forward is not _SpikingNeuron.forward:
        return _pair_refused(neuron, nxt, f"{type(neuron).__name__} has a forward of its own")
    kind = kind_of(neuron)
    if kind is not None and kind.runs_on != FUSED:
        return _pair_refused(neuron, nxt, f"{kind.name}: {kind.runs_on}")
    if neuron.record:
        return _pair_refused(neuron, nxt, "the neuron records its potential trace")
    if run.record is not None:
        return _pair_refused(neuron, nxt, "totals are being recorded (asf phase 1)")
    if not settings.current().fused:
        return _pair_refused(neuron, nxt, "backend 'reference'")
    if torch.is_autocast_enabled(x.device.type):
        return _pair_refused(neuron, nxt, "autocast is on")
    if has_hooks(neuron) or has_hooks(nxt):
        return _pair_refused(neuron, nxt, "module hooks are attached")
    if pool:
        k = square_window(nxt)
        if k is None:
            return _pair_refused(neuron, nxt, "the pool is not a plain k x k window with stride k")
        why = "the input is not [T, B, C, H, W]" if x.dim() != 5 else stacked_reason(x.flatten(0, 1))
        if why is not None:
            return _pair_refused(neuron, nxt, why)
        if not neuron_pool_fusable(x, neuron.parameters_tuple(x.dtype), k):
            return _pair_refused(neuron, nxt, "needs channels-last conv output, one threshold value, sizes divisible "
                                 "by k and the C++ kernel")
        return note(Choice("neuron+pool", CPU_KERNELS, "neuron + pooling in one C++ pass (lif_kernel.cpp)",
                           f"{k}x{k} AvgPool2d after a neuron on channels-last conv output: spikes never written"),
                    neuron, nxt)
    if not torch.is_grad_enabled():
        return _pair_refused(neuron, nxt, "no gradients (inference): the spikes feed the Linear directly")
    if not (x.requires_grad or neuron.threshold.requires_grad or any(q.requires_grad for q in nxt.parameters())):
        return _pair_refused(neuron, nxt, "nothing to differentiate")
    if not recording():  # the block decides; what runs inside it is only described when explaining
        return _NEURON_LINEAR
    inner = neuron_choice(x, neuron.parameters_tuple(x.dtype), neuron)
    return note(Choice("neuron+linear", inner.backend, f"one node, spikes kept as bytes ({inner.kernel})",
                       _NEURON_LINEAR.reason), neuron, nxt)


def step_choice(module: nn.Module) -> Choice:
    """Single-step mode: one step of a layer, through autograd (no fused node spans one step)."""
    from .neurons import _SpikingNeuron

    if isinstance(module, _SpikingNeuron):
        return Choice("neuron", TORCH, "one step of the equations (neuron_step)", "single-step mode")
    return Choice(type(module).__name__.lower(), TORCH, f"{_torch_base(module)} on one step [B, ...]",
                  "single-step mode")


def totals_choice(module: nn.Module) -> Choice:
    """Totals mode (Wu et al.'s phase 2): the layer applied to accumulated flows [B, ...]."""
    from .neurons import _SpikingNeuron

    if isinstance(module, _SpikingNeuron):
        return Choice("neuron", TORCH, "straight-through on totals: value FO, gradient S x incoming",
                      "Wu et al. eqs. 8-9")
    return Choice(type(module).__name__.lower(), TORCH, f"{_torch_base(module)} on the totals",
                  "linear in time: commutes with the sum over T (a bias counts T times)")


def _torch_base(module: nn.Module) -> str:
    """The torch.nn class a dnmsnn layer wraps (e.g. ``torch.nn.BatchNorm2d``), else the module's own name."""
    for cls in type(module).__mro__:
        if cls.__module__.startswith("torch.nn"):
            return f"torch.nn.{cls.__name__}"
    return type(module).__name__


ADVICE = {nn.Linear: "dnmsnn.Linear (spike kernels; it also fuses with the neuron before it, as this one does)",
          nn.Flatten: "dnmsnn.Flatten (flattens each step's features; torch's Flatten would merge B with them)",
          nn.Dropout: "dnmsnn.Dropout (one mask for all T steps)"}


def foreign_choice(module: nn.Module) -> Choice:
    """A plain torch module inside a network: applied to ``[T, B, ...]`` as it is (no choice to make)."""
    advice = ADVICE.get(type(module))
    return Choice(type(module).__name__.lower(), TORCH, f"torch.nn.{type(module).__name__} on [T, B, ...] as given",
                  f"a plain torch module; for the fast paths use {advice}" if advice else "a plain torch module")


def sequence_choice(module: nn.Module) -> Choice:
    """A dnmsnn layer with one way to run multi-step: its torch layer on the ``[T*B]`` stack."""
    return Choice(type(module).__name__.lower(), TORCH, f"{_torch_base(module)} on the [T*B] stack", "one path")


def spike_kernel_reason(kind: str, *tensors: torch.Tensor) -> str | None:
    """Why the spike kernels of ``kind`` (``linear`` or ``conv``) do not run on these tensors (None: they run,
    and the C++ module is loaded). The input's values (0/1 or not) are checked by the kernels themselves."""
    from .functional import cpp
    from .functional.spike_matmul import machine_choice

    s = settings.current()
    if not s.cpp:
        return f"backend {s.backend!r} runs no C++ code"
    if s.spike_kernels is False:
        return "spike kernels switched off"
    for t in tensors:
        if t.device.type != "cpu" or t.dtype not in (torch.float32, torch.uint8):
            return f"spike kernels take CPU float32 / uint8, not {t.dtype} on {t.device}"
    if cpp.load() is None:
        return f"the C++ kernels are unavailable: {cpp.status()}"
    if s.spike_kernels is None and not machine_choice().get(kind, {}).get("spike", False):
        return "dense products measured faster on this machine (dnmsnn kernels)"
    return None


def linear_choice(x: torch.Tensor, weight: torch.Tensor, ones: int | None) -> Choice:
    """The product of a Linear: ``ones`` is the count of ones in x when the spike kernels run (None: dense)."""
    if ones is not None:
        return Choice("linear", CPU_KERNELS, "spike matmul (sums of weight rows)", "0/1 input; spike kernels chosen")
    why = spike_kernel_reason("linear", x, weight)
    backend = TORCH if settings.current().fused else REFERENCE
    return Choice("linear", backend, "F.linear (oneDNN / MKL)", why or "the input is not 0/1")


def stacked_reason(stack: torch.Tensor) -> str | None:
    """Why a multi-step Conv2d / AvgPool2d cannot take the chunked channels-last path on this ``[N, C, H, W]``
    stack (None: it can)."""
    s = settings.current()
    if not s.fused:
        return "backend 'reference'"
    if not s.stacked_conv:
        return "stacked_conv switched off"
    if stack.device.type != "cpu" or stack.dim() != 4 or stack.dtype not in (torch.float32, torch.float64):
        return (f"needs a CPU float32/float64 [N, C, H, W] stack, got {stack.dtype} {tuple(stack.shape)} on "
                f"{stack.device}")
    if torch.is_autocast_enabled("cpu"):
        return "autocast is on"
    return None


_STACKED_CONV = Choice("conv", TORCH, "chunked channels-last convolution (oneDNN)", "multi-step on the CPU")


def conv_choice(conv: nn.Conv2d, stack: torch.Tensor) -> Choice | None:
    """A multi-step Conv2d on the ``[T*B]`` stack: the chunked channels-last path (a Choice), or None for
    PyTorch's own convolution (noted with the reason when recording)."""
    if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        why = f"padding {conv.padding!r} / mode {conv.padding_mode!r}: the stacked path takes numeric zero padding"
    else:
        why = stacked_reason(stack)
    if why is None:
        return _STACKED_CONV
    if recording():
        note(Choice("conv", REFERENCE if not settings.current().fused else TORCH, "F.conv2d", why), conv)
    return None


def spike_conv_choice(spike: bool, x: torch.Tensor, weight: torch.Tensor) -> Choice:
    """The chunked convolution's forward product: the spike convolution (``spike``) or oneDNN's."""
    if spike:
        return Choice("conv", CPU_KERNELS, "spike convolution (table lookups), channels-last",
                      "0/1 input, stride 1, kernel width <= 10; spike kernels chosen")
    why = spike_kernel_reason("conv", x, weight)
    return Choice("conv", TORCH, _STACKED_CONV.kernel,
                  why or "the spike convolution does not apply (input not 0/1, stride, dilation, groups or size)")


def pool_choice(pool: nn.Module, stack: torch.Tensor) -> int | None:
    """k when a multi-step AvgPool2d runs the stacked channels-last path (a plain k x k / stride k window on
    channels-last input), else None (PyTorch's avg_pool2d on the input as laid out)."""
    from .layers import square_window

    k = square_window(pool)
    why = ("not a plain k x k window with stride k" if k is None else stacked_reason(stack)
           or (None if stack.permute(0, 2, 3, 1).is_contiguous() else "the input is not channels-last"))
    if recording():
        if why is None:
            note(Choice("pool", TORCH, "channels-last average pooling (broadcast backward)", f"{k}x{k}, stride {k}"),
                 pool)
        else:
            note(Choice("pool", TORCH if settings.current().fused else REFERENCE, "F.avg_pool2d", why), pool)
    return k if why is None else None


def readout_choice(network: nn.Module, run: RunOptions) -> bool:
    """Whether a Network's Integrator readout runs in closed form (one weighted sum over T) instead of its trace,
    in a run with options ``run``."""
    from .module import has_hooks
    from .neurons import Integrator

    why = None
    if not len(network) or type(network[-1]) is not Integrator:
        why = "the output layer is not an Integrator"
    elif network[-1].record:
        why = "the Integrator records its trace"
    elif not settings.current().fused:
        why = "backend 'reference'"
    elif not run.temporal_grad:
        why = "no temporal gradient (spatial rule): the literal trace"
    elif has_hooks(network) or has_hooks(network[-1]):
        why = "module hooks are attached"
    if why is None:
        note(Choice("readout", TORCH, "closed form: one weighted sum over T", f"readout {network.readout!r}"),
             network[-1])
        return True
    if recording() and len(network):
        note(Choice("readout", TORCH if settings.current().fused else REFERENCE, f"read_out(trace, "
                    f"{network.readout!r})", why), network[-1])
    return False


# ----------------------------------------------------------------------------- explain
@dataclass
class Plan:
    """The plan of one run: its rows (layer path, layer type, :class:`Choice`) and a header."""

    header: str
    rows: list[tuple[str, str, Choice]] = field(default_factory=list)

    def blocks(self) -> list[str]:
        return [c.block for _, _, c in self.rows]

    def for_layer(self, path: str) -> list[Choice]:
        """Every choice recorded for the layer at ``path`` (e.g. ``"2"`` or ``"3.body.2"``)."""
        return [c for p, _, c in self.rows if path in p.split(" + ")]

    def summary(self) -> str:
        """How many recorded choices ran on each backend (``-``: a pairing that was not taken)."""
        counts: dict[str, int] = {}
        for _, _, c in self.rows:
            counts[c.backend] = counts.get(c.backend, 0) + 1
        return ", ".join(f"{b}: {n}" for b, n in sorted(counts.items()))

    def __str__(self) -> str:
        table = [("layer", "block", "backend", "kernel", "why")]
        table += [(f"{p} {t}", c.block, c.backend, c.kernel, c.reason) for p, t, c in self.rows]
        widths = [max(len(r[i]) for r in table) for i in range(4)]
        lines = [self.header, ""]
        for r in table:
            lines.append("  ".join(v.ljust(w) for v, w in zip(r[:4], widths, strict=True)) + "  " + r[4])
        return "\n".join([*lines, "", f"choices by backend: {self.summary()}"])


def explain(network: nn.Module, example: torch.Tensor, mode: str = "sequence", grad: bool = True,
            temporal_grad: bool = True) -> Plan:
    """Run ``network`` once on ``example`` ([T, B, ...]) in ``mode`` (``sequence``: multi-step classify;
    ``step``: one step; ``totals``: the asf rule's two phases) with the recorder on, and return the plan that
    ran. ``grad``: with parameter gradients (as in training) or without (inference); ``temporal_grad=False``:
    the spatial rule's run (no gradient between steps). The network's outputs are discarded; its BatchNorm
    running statistics and gradients are as they were."""
    from ._checks import check_choice
    from .errors import InputError
    from .layers import run_module
    from .module import step_module

    check_choice(mode, "mode", MODES)
    if not isinstance(example, torch.Tensor) or example.dim() < 3:
        raise InputError("explain needs an example input [T, B, ...] (encode images first)")
    order = {id(m): (i, name or "(network)") for i, (name, m) in enumerate(network.named_modules())}
    saved = [b.detach().clone() for b in network.buffers()]
    grads = [p.grad for p in network.parameters()]
    try:
        with _record() as rows, torch.set_grad_enabled(grad):
            run = RunOptions(temporal_grad=bool(temporal_grad))
            if mode == "sequence":
                if hasattr(network, "run"):
                    network.run(example, "logits", temporal_grad=run.temporal_grad)
                else:
                    run_module(network, example, run)
            elif mode == "step":
                step_module(network, example[0], None, run)
            else:
                from . import rules

                targets = torch.zeros(example.shape[1], dtype=torch.long)
                pending = rules.create("asf").forward_pass(network, example, targets)
                del pending
    finally:
        with torch.no_grad():
            for b, s in zip(network.buffers(), saved, strict=True):
                b.copy_(s)
        for p, g in zip(network.parameters(), grads, strict=True):  # gradients as they were (a totals-mode
            p.grad = g                                              # explain runs a backward-ready forward only)
    s = settings.current()
    within = "" if temporal_grad else " (within each step only)"
    header = (f"{type(network).__name__}, mode {mode}, input {list(example.shape)} {example.dtype}, gradients "
              f"{'on' if grad else 'off'}{within}; settings: backend {s.backend}, spike_kernels "
              f"{'machine verdict' if s.spike_kernels is None else s.spike_kernels}, stacked_conv {s.stacked_conv}, "
              f"buffer_pool {s.buffer_pool}")
    plan, seen = Plan(header), set()
    # in layer order, each (layers, choice) once (a step-by-step pass makes the same choice at every step)
    for modules, choice in sorted(rows, key=lambda r: order.get(id(r[0][0]), (-1, "")) if r[0] else (-1, "")):
        path = " + ".join(order.get(id(m), (-1, "?"))[1] for m in modules) or "(functional)"
        if (path, choice) not in seen:
            seen.add((path, choice))
            plan.rows.append((path, " + ".join(type(m).__name__ for m in modules), choice))
    return plan
