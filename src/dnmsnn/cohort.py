"""Networks that learn from each other (Cao et al., DNM-SNN) and the mix module that combines them.

What the paper says, and no more (sections 1.2-1.3, Algorithm 1): two identical networks receive the
same encoded data; after each batch's predictions are inferred, model 1's are passed to model 2 and
model 2's to model 1, and "the two networks constrain each other"; Figure 1 says it is the output
spike sequences of each batch that are exchanged. At inference a mix module builds
``getMax`` and ``getAverage`` channels of the two outputs and ``whichBetter`` picks one. It gives no
loss, weight, temperature, training rule or definition of the three functions.

Everything else is our design:

* :class:`Cohort`: K >= 2 members (K = 2 is the paper's; K = 1 is plain training), any architectures
  with the same classes, each with its own rule instance, all given the same encoded batch. What is
  exchanged is each member's output sequence as its readout summarises it (the output potential or
  spike counts: the logits). Member k minimises

      L_k = task(z_k, y) + lambda * E(z_k, {sg(z_j) : j != k})

  where z are logits in the rule's objective space (what its ``aux_loss`` receives) and sg stops the
  gradient: a peer's prediction is a target, so the exchange term's gradient reaches member k only.
* exchange losses E, each averaged over the K - 1 peers (:data:`EXCHANGES`):

  - ``kl``: tau^2 KL(softmax(z_j / tau) || softmax(z_k / tau)), batch mean (deep mutual learning,
    Zhang et al. 2018; tau^2 keeps the gradient's size independent of tau);
  - ``mse``: 1/2 ||z_k - z_j||^2 summed over classes, batch mean (outputs compared as they are:
    potentials, spike counts or rates);
  - ``ce``: cross-entropy of z_k against the peer's predicted class argmax z_j.
* two exchanges of the output *sequences* (the paper's "output spike sequences"), bptt only
  (:data:`SEQUENCE_EXCHANGES`): each member's outputs after every step t, ``z[t]`` = the readout of steps
  0..t (:func:`~dnmsnn.network.prefix_readouts`: with a spiking output, the spike counts so far), compared
  step by step and averaged over the T steps:

  - ``kl_steps``: the ``kl`` above at every step (the members agree on their running rates, i.e. on the
    prediction they would give if stopped after any step);
  - ``mse_steps``: the ``mse`` above at every step: a distance between the two output spike trains (their
    running counts compared step by step -- van Rossum's distance with a kernel that does not decay).
* the exchange term sits where each rule puts ``aux_loss``: on bptt's readout logits, on asf's totals
  output / (T V_th), and on the spatial rule's output at every step k, out[k], against the peers'
  final predictions (as its task loss compares out[k] with the label; with a potential readout prefer
  ``kl`` or ``ce`` there, since ``mse`` would pull the early potentials to the final ones).
* :class:`Mix`: our reading of Algorithm 1 plus two modes of ours (see its docstring).
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F

from . import rules as rule_registry
from ._checks import check_choice
from .errors import InputError
from .network import Network
from .rules.base import AuxLoss, LearningRule, PendingBackward


def _kl(logits: torch.Tensor, peer: torch.Tensor, temperature: float) -> torch.Tensor:
    log_p = F.log_softmax(logits / temperature, -1)
    log_q = F.log_softmax(peer / temperature, -1)
    return temperature**2 * F.kl_div(log_p, log_q, reduction="batchmean", log_target=True)


def _mse(logits: torch.Tensor, peer: torch.Tensor, temperature: float) -> torch.Tensor:
    return 0.5 * (logits - peer).pow(2).sum(-1).mean()


def _ce(logits: torch.Tensor, peer: torch.Tensor, temperature: float) -> torch.Tensor:
    return F.cross_entropy(logits, peer.argmax(-1))


Exchange = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]


def _per_step(fn: Exchange) -> Exchange:
    """``fn`` applied to the outputs after every step t, averaged over the T steps (inputs [T, B, classes])."""
    def over_steps(outputs: torch.Tensor, peer: torch.Tensor, temperature: float) -> torch.Tensor:
        return sum(fn(outputs[t], peer[t], temperature) for t in range(outputs.shape[0])) / outputs.shape[0]

    return over_steps


EXCHANGES: dict[str, Exchange] = {
    "kl": _kl, "mse": _mse, "ce": _ce, "kl_steps": _per_step(_kl), "mse_steps": _per_step(_mse),
}
SEQUENCE_EXCHANGES = ("kl_steps", "mse_steps")  # compare the members' outputs after every step


def exchange_loss(
    name: str, logits: torch.Tensor, peers: Sequence[torch.Tensor], temperature: float = 1.0,
) -> torch.Tensor:
    """E(z, {z_j}) averaged over the peers; the peers are detached here, so only ``logits`` gets a gradient."""
    check_choice(name, "exchange", tuple(EXCHANGES))
    if not peers:
        raise InputError("exchange_loss needs at least one peer prediction")
    if name in SEQUENCE_EXCHANGES and logits.dim() != 3:
        raise InputError(f"the {name!r} exchange compares output sequences [T, B, classes], got shape "
                         f"{tuple(logits.shape)}")
    for p in peers:
        if p.shape != logits.shape:
            raise InputError(f"peer predictions {tuple(p.shape)} do not match the logits {tuple(logits.shape)}")
    fn = EXCHANGES[name]
    return sum(fn(logits, p.detach(), temperature) for p in peers) / len(peers)


class Cohort:
    """K networks trained together on the same encoded batches, each pulled towards its peers' predictions.

    ``loss_backward(inputs, targets)`` fills every member's ``.grad`` (like a rule; the optimizer steps
    stay with the caller, one optimizer per member) and returns each member's detached loss and logits.

    Peers' predictions: member k needs its peers' predictions of the batch before its own backward.
    By default every member first runs its rule's training forward (:meth:`LearningRule.forward_pass`, on
    its own random stream), the detached logits of those forwards are the predictions exchanged, and then
    each member's backward runs with the exchange term as ``aux_loss``. A peer thus receives exactly the
    prediction the member is trained on, and a batch costs K forwards and K backwards, as K separate
    networks would; the price is that the K members' graphs are alive together (peak activation memory K
    times one member's). ``separate_predictions=True`` keeps one graph alive at a time instead: a no-grad
    pass of every member (``rule.objective_logits``, on a replayed random stream, buffers such as BatchNorm
    running statistics restored afterwards) gives the predictions, then each member's ``loss_backward``
    runs: one extra forward per member and batch, and the same predictions (bitwise for bptt and offline
    spatial, up to rounding for asf's totals network). A rule that cannot split its forward from its
    backward (the online spatial rule, which calls backward at every step and may step the optimizer
    within the sequence, so its peers see the prediction of the weights at the start of the batch) always
    takes the separate pass. With lambda = 0 or K = 1 no prediction is exchanged and the members train
    exactly as K independent runs.

    Random streams: each member draws dropout masks (and any other use of torch's default generators)
    from its own stream, set by :meth:`seed`; unseeded streams are drawn from torch's global generator
    at construction, so ``torch.manual_seed`` makes them repeatable.
    """

    def __init__(
        self,
        models: Sequence[Network],
        rules: str | Sequence[LearningRule] = "bptt",
        exchange: str = "kl",
        weight: float = 1.0,
        temperature: float = 1.0,
        seeds: Sequence[int] | None = None,
        separate_predictions: bool = False,
    ) -> None:
        self.models = list(models)
        if not self.models or not all(isinstance(m, Network) for m in self.models):
            raise InputError("Cohort needs a non-empty sequence of dnmsnn.Network members")
        if len({m.num_classes for m in self.models}) != 1:
            raise InputError(f"cohort members must have the same classes, got {[m.num_classes for m in self.models]}")
        if isinstance(rules, str):
            self.rules = [rule_registry.create(rules) for _ in self.models]
        else:
            self.rules = list(rules)
            if len(self.rules) != len(self.models) or not all(isinstance(r, LearningRule) for r in self.rules):
                raise InputError(f"give one LearningRule per member ({len(self.models)}) or a rule name")
            if len({id(r) for r in self.rules}) != len(self.rules):
                raise InputError("each member needs its own rule instance (rules may keep per-network state)")
        self.exchange = check_choice(exchange, "exchange", tuple(EXCHANGES))
        self.sequence = self.exchange in SEQUENCE_EXCHANGES
        if self.sequence and separate_predictions:
            raise InputError(f"the {exchange!r} exchange compares the members' output sequences of their training "
                             "forwards; separate_predictions is not available with it")
        if not weight >= 0:
            raise InputError(f"weight (lambda) must be >= 0, got {weight}")
        if not temperature > 0:
            raise InputError(f"temperature must be > 0, got {temperature}")
        self.weight, self.temperature = float(weight), float(temperature)
        self.separate_predictions = bool(separate_predictions)
        if seeds is None:
            seeds = torch.randint(0, 2**62, (len(self.models),)).tolist()
        self.seed(seeds)

    def __len__(self) -> int:
        return len(self.models)

    # ----------------------------------------------------------------- random streams
    def seed(self, seeds: Sequence[int]) -> None:
        """Restart member k's random stream from ``seeds[k]`` (like ``torch.manual_seed`` for that member alone)."""
        if len(seeds) != len(self):
            raise InputError(f"need one seed per member ({len(self)}), got {len(seeds)}")
        self._seeds = [int(s) for s in seeds]
        self._states: list[dict[str, torch.Tensor]] = [{} for _ in seeds]

    @contextlib.contextmanager
    def _stream(self, k: int, replay: bool = False) -> Iterator[None]:
        """Run a block on member k's stream of the CPU generator and its model's CUDA generators.

        The caller's global state is restored afterwards; ``replay=True`` does not advance the member's
        stream either, so the next block on it draws the same numbers.
        """
        devices = sorted({p.get_device() for p in self.models[k].parameters() if p.is_cuda})
        states = self._states[k]
        with torch.random.fork_rng(devices=devices):
            for key, gen in _generators(devices):
                if key in states:
                    gen.set_state(states[key])
                else:
                    gen.manual_seed(self._seeds[k])
            yield
            if not replay:
                for key, gen in _generators(devices):
                    states[key] = gen.get_state()

    # ----------------------------------------------------------------- training
    @torch.no_grad()
    def peer_predictions(self, inputs: torch.Tensor) -> list[torch.Tensor]:
        """Every member's logits of the batch in its rule's objective space, without gradients.

        Run in each member's current mode (training mode in training), on a replayed random stream and
        with its buffers restored afterwards, so the member's own training step is unaffected.
        """
        return [self.peer_prediction(k, inputs) for k in range(len(self))]

    @torch.no_grad()
    def peer_prediction(self, k: int, inputs: torch.Tensor) -> torch.Tensor:
        """Member k's part of :meth:`peer_predictions` (a rank of a distributed cohort computes only its own)."""
        model, rule = self.models[k], self.rules[k]
        saved = [b.clone() for b in model.buffers()]
        with self._stream(k, replay=True):
            out = rule.objective_logits(model, inputs)
        for b, s in zip(model.buffers(), saved, strict=True):
            b.copy_(s)
        return out

    def aux_loss(self, k: int, predictions: Sequence[torch.Tensor], weight: float) -> AuxLoss:
        """lambda * E(., peers of member k): the term member k's rule adds to its objective."""
        peers = [p for j, p in enumerate(predictions) if j != k]
        return lambda logits: weight * exchange_loss(self.exchange, logits, peers, self.temperature)

    def loss_backward(
        self, inputs: torch.Tensor, targets: torch.Tensor, weight: float | None = None,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Fill every member's ``.grad`` for one batch; return their (losses, logits), detached.

        ``weight`` overrides lambda for this batch (0 during a warm-up).
        """
        weight = self.weight if weight is None else float(weight)
        if weight <= 0 or len(self) == 1:  # nothing exchanged: K independent steps, one graph at a time
            return _unzip([self.member_loss_backward(k, inputs, targets) for k in range(len(self))])
        started = [self.start_member(k, inputs, targets) for k in range(len(self))]
        predictions = [prediction for _, prediction in started]
        return _unzip([self.finish_member(k, pending, inputs, targets, self.aux_loss(k, predictions, weight))
                       for k, (pending, _) in enumerate(started)])

    def start_member(self, k: int, inputs: torch.Tensor, targets: torch.Tensor,
                     ) -> tuple[PendingBackward | None, torch.Tensor]:
        """Member k's prediction for its peers: (its training forward with the backward pending, its detached
        logits), or ``(None, the separate no-grad pass)`` with ``separate_predictions`` or a rule that cannot
        split its forward from its backward. :meth:`finish_member` completes the step."""
        pending = None
        if not self.separate_predictions:
            with self._stream(k):
                pending = self.rules[k].forward_pass(self.models[k], inputs, targets, sequence=self.sequence)
        if pending is None and self.sequence:
            raise InputError(f"member {k}'s rule ({self.rules[k]!r}) cannot split its forward from its backward, so "
                             f"it cannot exchange output sequences ({self.exchange!r}); use a logit exchange")
        return pending, pending.prediction if pending is not None else self.peer_prediction(k, inputs)

    def finish_member(self, k: int, pending: PendingBackward | None, inputs: torch.Tensor, targets: torch.Tensor,
                      aux: AuxLoss) -> tuple[torch.Tensor, torch.Tensor]:
        """Member k's backward with its exchange term ``aux``, after :meth:`start_member`: the pending backward,
        or (no forward kept) its whole rule step."""
        return pending.finish(aux) if pending is not None else self.member_loss_backward(k, inputs, targets, aux)

    def member_loss_backward(
        self, k: int, inputs: torch.Tensor, targets: torch.Tensor, aux: AuxLoss | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Member k's part of :meth:`loss_backward`: its rule on its own random stream, ``aux`` its exchange term."""
        with self._stream(k):
            return self.rules[k].loss_backward(self.models[k], inputs, targets, aux)

    @torch.no_grad()
    def predict(self, inputs: torch.Tensor) -> list[torch.Tensor]:
        """Every member's inference logits [B, classes] (``rule.predict``) of the same encoded inputs."""
        return [rule.predict(model, inputs) for model, rule in zip(self.models, self.rules, strict=True)]

    def __repr__(self) -> str:
        return (f"Cohort(size={len(self)}, rules={[r.name for r in self.rules]}, exchange={self.exchange!r}, "
                f"weight={self.weight}, temperature={self.temperature})")


def _unzip(results: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    return [loss for loss, _ in results], [z for _, z in results]


def _generators(devices: Sequence[int]) -> Iterator[tuple[str, torch.Generator]]:
    """torch's default generators: the CPU one and those of the given CUDA devices."""
    yield "cpu", torch.random.default_generator
    for d in devices:
        yield f"cuda:{d}", torch.cuda.default_generators[d]


MIX_MODES = ("max", "average", "better", "vote", "best_member")
MIX_SPACES = ("softmax", "raw")


class Mix:
    """The multi-channel mix module (Cao et al., Algorithm 1), read as follows.

    Each member's outputs [N, classes] are first mapped to a common space: ``space="softmax"`` (default)
    compares softmax probabilities, so members whose potentials or logits live on different scales are
    comparable; ``space="raw"`` takes the outputs as they are (e.g. spike counts of identical members).
    With s_k the mapped outputs of member k:

    * ``max`` (getMax): element-wise max_k s_k, then argmax;
    * ``average`` (getAverage): mean_k s_k, then argmax;
    * ``better`` (whichBetter): whichever of ``max`` and ``average`` is more accurate on the data given
      to :meth:`fit` (a validation split, never the test set); ties go to ``max``, Algorithm 1's first
      channel;
    * ``vote`` (ours): the class most members predict; a tie is broken by ``average`` among the tied
      classes (with K = 2 every disagreement is a tie), then by the lowest class index;
    * ``best_member`` (ours): the member with the best accuracy on the :meth:`fit` data (lowest index on ties).

    ``better`` and ``best_member`` need :meth:`fit` first; the other modes need no labels.
    """

    def __init__(self, space: str = "softmax") -> None:
        self.space = check_choice(space, "space", MIX_SPACES)
        self.better: str | None = None
        self.best_member: int | None = None
        self.fit_accuracy: dict[str, float] = {}
        self.member_accuracy: list[float] = []

    def fit(self, outputs: Sequence[torch.Tensor], labels: torch.Tensor) -> Mix:
        """Decide ``better`` and ``best_member`` from validation outputs and labels; returns self."""
        self._check(outputs, labels)
        self.member_accuracy = [_accuracy(o.argmax(-1), labels) for o in outputs]
        self.best_member = max(range(len(outputs)), key=lambda k: (self.member_accuracy[k], -k))
        acc_max = _accuracy(self.predict(outputs, "max"), labels)
        acc_avg = _accuracy(self.predict(outputs, "average"), labels)
        self.better = "max" if acc_max >= acc_avg else "average"
        self.fit_accuracy = self.accuracy(outputs, labels)
        return self

    @property
    def fitted(self) -> bool:
        return self.better is not None

    @property
    def modes(self) -> tuple[str, ...]:
        """The modes usable now: all of :data:`MIX_MODES` after :meth:`fit`, else those that need no labels."""
        return MIX_MODES if self.fitted else ("max", "average", "vote")

    def combine(self, outputs: Sequence[torch.Tensor], mode: str) -> torch.Tensor:
        """Scores [N, classes] of a mode (``vote``: the vote counts, ties not yet broken)."""
        check_choice(mode, "mode", MIX_MODES)
        self._check(outputs)
        if mode in ("better", "best_member") and not self.fitted:
            raise InputError(f"mix mode {mode!r} is decided on validation data: call Mix.fit(val_outputs, val_labels) "
                             "first")
        if mode == "vote":
            return sum(F.one_hot(o.argmax(-1), o.shape[-1]) for o in outputs).to(outputs[0].dtype)
        if mode == "best_member":
            if self.best_member >= len(outputs):
                raise InputError(f"the mix was fitted on more members ({self.best_member + 1}+) than given "
                                 f"({len(outputs)})")
            return self._space(outputs[self.best_member])
        s = torch.stack([self._space(o) for o in outputs])
        if mode == "better":
            mode = self.better
        return s.max(0).values if mode == "max" else s.mean(0)

    def predict(self, outputs: Sequence[torch.Tensor], mode: str) -> torch.Tensor:
        """Predicted classes [N] of a mode."""
        scores = self.combine(outputs, mode)
        if mode == "vote":
            tied = scores == scores.max(-1, keepdim=True).values
            scores = self.combine(outputs, "average").masked_fill(~tied, float("-inf"))
        return scores.argmax(-1)

    def accuracy(self, outputs: Sequence[torch.Tensor], labels: torch.Tensor) -> dict[str, float]:
        """Accuracy of every usable mode (:attr:`modes`)."""
        self._check(outputs, labels)
        return {mode: _accuracy(self.predict(outputs, mode), labels) for mode in self.modes}

    def _space(self, o: torch.Tensor) -> torch.Tensor:
        return o.softmax(-1) if self.space == "softmax" else o

    @staticmethod
    def _check(outputs: Sequence[torch.Tensor], labels: torch.Tensor | None = None) -> None:
        if not outputs or not all(isinstance(o, torch.Tensor) and o.dim() == 2 for o in outputs):
            raise InputError("Mix needs a non-empty sequence of member outputs, each [N, classes]")
        if len({tuple(o.shape) for o in outputs}) != 1:
            raise InputError(f"member outputs differ in shape: {[tuple(o.shape) for o in outputs]}")
        if labels is not None and (labels.dtype != torch.long or tuple(labels.shape) != (outputs[0].shape[0],)):
            raise InputError(f"labels must be int64 [N] = [{outputs[0].shape[0]}], got {labels.dtype} "
                             f"{tuple(labels.shape)}")

    def __repr__(self) -> str:
        return f"Mix(space={self.space!r}, better={self.better!r}, best_member={self.best_member})"


def _accuracy(pred: torch.Tensor, labels: torch.Tensor) -> float:
    return int((pred == labels).sum()) / max(labels.numel(), 1)
