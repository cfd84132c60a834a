"""peer_bench adapter for dnmsnn (load with ``--plugin benchmarks/peer_bench_dnmsnn.py``).

    PY=.venv-peers/bin/python   # the peers' venv, with dnmsnn installed: pip install --no-deps -e .
    $PY ../shared/tools/peer_bench/peer_bench.py --plugin benchmarks/peer_bench_dnmsnn.py --check --libs dnmsnn
    $PY ../shared/tools/peer_bench/peer_bench.py --plugin benchmarks/peer_bench_dnmsnn.py \
        --libs dnmsnn,torch-ann,torch-naive,snntorch,spikingjelly,norse --workloads bondarev-mlp --T 20

(``dnmsnn bench`` wraps this.) The canonical model (peer_bench README, section 3) maps onto the
public API one to one:

* hidden LIF ``v_t = beta v_{t-1} + I_t``, spike ``v_t > thr``, reset to zero, reset path detached:
  ``dnmsnn.LIF(beta, threshold, v_reset=0, reset="zero", detach_reset=True, strict=True)``.
  ``strict=True`` because the canonical Heaviside (and snntorch's, norse's) fires on ``>``;
  dnmsnn's default ``>=`` is SpikingJelly's. On this float input the two never differ (no
  potential lands exactly on 1.0), but the adapter states the canonical condition;
* SuperSpike ``dS/dv = 1/(1+|v-thr|)^2``: ``surrogate="fast_sigmoid", surrogate_param=1.0``
  (dnmsnn's fast_sigmoid is ``1/(1+slope|x|)^2``, snntorch's definition);
* readout: ``dnmsnn.Integrator(beta)`` (``u_t = beta u_{t-1} + I_t``, no threshold, no reset) with
  ``Network(readout="sum")``: logits ``= sum_t u_t``;
* synapses: ``dnmsnn.Linear`` / ``dnmsnn.Conv2d`` (torch layers applied once to the ``[T*B]`` stack),
  ``dnmsnn.AvgPool2d``, ``dnmsnn.Flatten``. Weights load 1:1 (no rescaling).

Training runs through ``Network.classify`` with the default fused paths (fused LIF node with the
C++ kernel when a compiler is available, closed-form Integrator readout); inference is the same
call under ``torch.inference_mode()`` (the fused neuron then skips saving anything for backward).
"""
from __future__ import annotations

import os

import peer_bench as pb
import torch


def _lif(spec):
    import dnmsnn

    return dnmsnn.LIF(beta=spec.beta, threshold=spec.threshold, v_reset=0.0, reset="zero",
                      surrogate="fast_sigmoid", surrogate_param=1.0, detach_reset=True, strict=True)


@pb.register("dnmsnn", packages=("dnmsnn",),
             description="dnmsnn.Network(Linear/Conv2d/AvgPool2d/Flatten + LIF(strict, fast_sigmoid, detach_reset) "
                         "+ Integrator(beta)), readout 'sum'; fused multi-step LIF node (C++ kernel when compiled)")
def build_dnmsnn(spec: pb.NetSpec, variant: str = "default") -> pb.Built:
    import dnmsnn
    from dnmsnn.functional import fast_path_info

    layers = []
    for L in spec.layers:
        if L.kind == "linear":
            layers.append(dnmsnn.Linear(L.args[0], L.args[1]))
        elif L.kind == "conv":
            layers.append(dnmsnn.Conv2d(L.args[0], L.args[1], L.args[2]))
        elif L.kind == "lif":
            layers.append(_lif(spec))
        elif L.kind == "li":
            layers.append(dnmsnn.Integrator(beta=spec.beta))
        elif L.kind == "avgpool":
            layers.append(dnmsnn.AvgPool2d(L.args[0]))
        elif L.kind == "flatten":
            layers.append(dnmsnn.Flatten())
        else:
            raise ValueError(f"unknown canonical layer kind {L.kind!r}")
    net = dnmsnn.Network(*layers, readout="sum", input_shape=tuple(spec.input_shape), num_classes=spec.n_classes)

    forward = net.classify
    if variant != "default":  # the comparison variants below: the same network on a slower path
        forward = _on_path(net.classify, variant)

    def infer(x_seq: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return forward(x_seq)

    return pb.Built(net, forward, [net[i] for i in spec.synapse_indices], infer=infer,
                    info={"neuron": "dnmsnn.LIF(beta, threshold, v_reset=0, reset='zero', detach_reset=True, "
                                    "strict=True, surrogate='fast_sigmoid', surrogate_param=1.0)",
                          "readout": "dnmsnn.Integrator(beta), Network(readout='sum')", "variant": variant,
                          "version": dnmsnn.__version__, **fast_path_info()})


def _on_path(fn, variant: str):
    from dnmsnn.functional import buffer_pool, fused_backend, reference_path, stacked_conv

    def run(x):
        if variant == "reference":
            with reference_path():
                return fn(x)
        if variant == "python":
            with fused_backend("python"):
                return fn(x)
        if variant == "nostacked":
            with stacked_conv(False):
                return fn(x)
        with buffer_pool(False):  # "nopool"
            return fn(x)

    return run


# Variants of dnmsnn for the fast-path comparison (reports/performance.md), registered only on request so
# that a default peer_bench run (all registered adapters) does not include them:
#   DNMSNN_PEER_BENCH_VARIANTS=1 $PY peer_bench.py --plugin ... --libs dnmsnn,dnmsnn-python,dnmsnn-nopool,...
if os.environ.get("DNMSNN_PEER_BENCH_VARIANTS"):
    for _v, _d in (("python", "PyTorch loop instead of the C++ kernel"), ("nopool", "no buffer reuse"),
                   ("reference", "step-by-step autograd reference path"),
                   ("nostacked", "one NCHW ATen convolution / pooling on the [T*B] stack (no stacked conv path)")):
        pb.register(f"dnmsnn-{_v}", packages=("dnmsnn",), description=f"dnmsnn, {_d}")(
            lambda spec, _v=_v: build_dnmsnn(spec, _v))
