"""Cohorts (Cao et al.'s mutually learning networks) and the mix module: losses, gradients, modes, trainer, CLI."""
from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

import dnmsnn
from dnmsnn import Cohort, ConfigError, InputError, Mix
from dnmsnn.cli import main
from dnmsnn.cohort import exchange_loss
from dnmsnn.data import load_dataset
from dnmsnn.train import Trainer, load_run_config

FAST = ["data.name=digits", "encoder.T=3", "train.progress=false", "data.train_limit=300", "data.test_limit=200"]
DROPOUT_MLP = ["model.name=mlp", "model.args={hidden: [32], dropout: 0.2}"]


def trainer(tmp_path, name, *overrides, resume=False):
    cfg = load_run_config(None, [*FAST, *overrides])
    return Trainer(cfg, tmp_path / name, resume=resume, echo=lambda s: None)


def digits_batch(n=48, T=4, seed=0):
    ds = load_dataset("digits", "train")
    x = dnmsnn.PoissonEncoder(T, seed=seed)(ds.images[:n])
    return x, ds.labels[:n]


def members(*seeds, **kw):
    out = []
    for s in seeds:
        torch.manual_seed(s)
        out.append(dnmsnn.models.create("mlp", input_shape=(1, 8, 8), hidden=(32,), **kw))
    return out


# ----------------------------------------------------------------- exchange losses
def test_exchange_losses_match_their_formulas():
    torch.manual_seed(0)
    z, p1, p2 = torch.randn(3, 5, 4).unbind(0)
    tau = 2.0
    q = [F.softmax(p / tau, -1) for p in (p1, p2)]
    log_s = F.log_softmax(z / tau, -1)
    kl = sum((qi * (qi.log() - log_s)).sum(-1).mean() for qi in q) / 2 * tau**2
    assert torch.allclose(exchange_loss("kl", z, [p1, p2], tau), kl)
    assert float(exchange_loss("kl", z, [z.clone()], 3.0)) == pytest.approx(0.0, abs=1e-6)
    mse = sum(0.5 * ((z - p) ** 2).sum(-1).mean() for p in (p1, p2)) / 2
    assert torch.allclose(exchange_loss("mse", z, [p1, p2]), mse)
    ce = (F.cross_entropy(z, p1.argmax(-1)) + F.cross_entropy(z, p2.argmax(-1))) / 2
    assert torch.allclose(exchange_loss("ce", z, [p1, p2]), ce)
    with pytest.raises(InputError, match="exchange"):
        exchange_loss("js", z, [p1])
    with pytest.raises(InputError, match="peer"):
        exchange_loss("kl", z, [])


def test_sequence_exchanges_compare_the_outputs_after_every_step():
    torch.manual_seed(0)
    z, p = torch.randn(2, 5, 6, 4).unbind(0)            # [T, B, classes]
    tau = 1.5
    kl_steps = sum(exchange_loss("kl", z[t], [p[t]], tau) for t in range(5)) / 5
    assert torch.allclose(exchange_loss("kl_steps", z, [p], tau), kl_steps)
    mse_steps = sum(0.5 * ((z[t] - p[t]) ** 2).sum(-1).mean() for t in range(5)) / 5
    assert torch.allclose(exchange_loss("mse_steps", z, [p]), mse_steps)
    with pytest.raises(InputError, match="sequences"):
        exchange_loss("kl_steps", z[-1], [p[-1]])
    # the prefix readouts: spike counts so far (sum), rates so far (mean), the trace itself (final)
    from dnmsnn.network import prefix_readouts

    spikes = (torch.rand(5, 3, 4) < 0.4).float()
    assert torch.equal(prefix_readouts(spikes, "sum")[2], spikes[:3].sum(0))
    assert torch.allclose(prefix_readouts(spikes, "mean")[3], spikes[:4].mean(0))
    assert prefix_readouts(spikes, "final") is spikes


def test_a_sequence_exchange_trains_each_member_on_its_peers_output_sequence():
    """kl_steps: member k's gradient is that of task(readout) + lambda E(its prefix readouts, the peer's), with the
    peer's sequence taken from the peer's training forward; only bptt offers sequences."""
    x, y = digits_batch()
    a, b = members(0, 1, output="spiking", tau=2.0, surrogate="atan")
    cohort = Cohort([a, b], "bptt", exchange="kl_steps", weight=0.5, seeds=[0, 1])
    losses, logits = cohort.loss_backward(x, y)
    got = [[p.grad.clone() for p in m.parameters()] for m in (a, b)]
    from dnmsnn.network import prefix_readouts

    seqs = [prefix_readouts(m(x), "sum").detach() for m in (a, b)]
    assert seqs[0].shape == (x.shape[0], x.shape[1], 10) and torch.equal(logits[0], seqs[0][-1])
    for k, m in enumerate((a, b)):
        m.zero_grad(set_to_none=True)
        out = prefix_readouts(m(x), "sum")
        loss = F.cross_entropy(out[-1], y) + 0.5 * sum(
            exchange_loss("kl", out[t], [seqs[1 - k][t]]) for t in range(out.shape[0])) / out.shape[0]
        loss.backward()
        assert torch.allclose(loss.detach(), losses[k])
        for g, p in zip(got[k], m.parameters(), strict=True):
            assert torch.allclose(g, p.grad, atol=1e-6)
    asf = [dnmsnn.rules.create("asf") for _ in range(2)]
    with pytest.raises(InputError, match="cannot exchange the output sequence"):
        Cohort(members(0, 1), asf, exchange="mse_steps").loss_backward(x, y)
    online = [dnmsnn.rules.create("spatial", online=True) for _ in range(2)]
    with pytest.raises(InputError, match="spatial rule cannot exchange the output sequence"):
        Cohort(members(0, 1), online, exchange="kl_steps").loss_backward(x, y)
    with pytest.raises(InputError, match="separate_predictions"):
        Cohort(members(0, 1), exchange="kl_steps", separate_predictions=True)


def test_exchange_gradient_reaches_only_its_own_member():
    x, y = digits_batch()
    a, b = members(0, 1)
    za, zb = a.classify(x), b.classify(x)      # the peer's logits still carry a graph here
    exchange_loss("kl", za, [zb]).backward()
    assert all(p.grad is None for p in b.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in a.parameters())

    # cohort level: member k's gradient is exactly its own rule's with the exchange against the others' predictions
    a, b = members(0, 1)
    cohort = Cohort([a, b], "bptt", exchange="kl", weight=0.7, temperature=2.0)
    losses, _ = cohort.loss_backward(x, y)
    got = [[p.grad.clone() for p in m.parameters()] for m in (a, b)]
    preds = [a.classify(x).detach(), b.classify(x).detach()]
    rule = dnmsnn.rules.create("bptt")
    for k, m in enumerate((a, b)):
        m.zero_grad(set_to_none=True)
        loss, _ = rule.loss_backward(m, x, y, lambda z, k=k: 0.7 * exchange_loss("kl", z, [preds[1 - k]], 2.0))
        assert torch.equal(loss, losses[k])
        for g, p in zip(got[k], m.parameters(), strict=True):
            assert torch.equal(g, p.grad)


def test_peer_prediction_is_the_members_own_training_forward():
    x, y = digits_batch()
    nets = members(0, 1, dropout=0.3)
    bn = dnmsnn.Network(dnmsnn.Flatten(), dnmsnn.Linear(64, 16), dnmsnn.BatchNorm1d(16), dnmsnn.LIF(beta=0.9),
                        dnmsnn.Linear(16, 10), dnmsnn.Integrator(), input_shape=(1, 8, 8))
    cohort = Cohort([*nets, bn], "bptt", seeds=[5, 6, 7])
    buffers = [b.clone() for b in bn.buffers()]
    preds = cohort.peer_predictions(x)
    assert all(torch.equal(b, s) for b, s in zip(bn.buffers(), buffers, strict=True))  # running stats untouched
    assert torch.equal(cohort.peer_predictions(x)[0], preds[0])                        # the stream is replayed
    _, logits = cohort.loss_backward(x, y)
    for p, z in zip(preds, logits, strict=True):   # same dropout masks and batch statistics as the training forward
        assert torch.equal(p, z)
    assert not torch.equal(preds[0], nets[0].eval().classify(x))


def bn_member(seed, norm=True):
    torch.manual_seed(seed)
    return dnmsnn.Network(dnmsnn.Flatten(), dnmsnn.Linear(64, 16), dnmsnn.BatchNorm1d(16) if norm else dnmsnn.Flatten(),
                          dnmsnn.LIF(beta=0.9), dnmsnn.Dropout(0.2), dnmsnn.Linear(16, 10), dnmsnn.Integrator(),
                          input_shape=(1, 8, 8))


@pytest.mark.parametrize("rule, args", [("bptt", {}), ("asf", {"loss": "mse", "phase1": "layer"}), ("spatial", {}),
                                        ("spatial", {"online": True})], ids=["bptt", "asf", "spatial", "online"])
def test_predictions_from_the_training_forward_equal_the_separate_pass_at_one_forward_per_member(rule, args):
    """The default cohort step takes each member's prediction from its training forward: same losses,
    gradients and buffers as the separate no-grad prediction pass, with one forward per member instead of two
    (the online spatial rule cannot split its forward from its backward and takes the separate pass)."""
    x, y = digits_batch()
    results = {}
    for separate in (False, True):
        nets = [bn_member(0, rule != "asf"), bn_member(1, rule != "asf")]  # asf has no BatchNorm
        calls = [0, 0]
        for k, n in enumerate(nets):
            n[1].register_forward_hook(lambda *a, k=k, calls=calls: calls.__setitem__(k, calls[k] + 1))
        cohort = Cohort(nets, [dnmsnn.rules.create(rule, **args) for _ in nets], weight=0.5, seeds=[3, 4],
                        separate_predictions=separate)
        losses, logits = cohort.loss_backward(x, y)
        results[separate] = (losses, logits, [[p.grad.clone() for p in n.parameters()] for n in nets],
                             [[b.clone() for b in n.buffers()] for n in nets], calls)
    (l0, z0, g0, b0, calls0), (l1, z1, g1, b1, calls1) = results[False], results[True]
    if args.get("online"):  # it steps (no forward hook calls) after the same separate prediction pass
        assert calls0 == calls1 == [1, 1]
    else:
        assert calls0 == [1, 1] and calls1 == [2, 2]
    exact = rule == "bptt"  # asf's totals network and spatial's trace readout differ from the pass by rounding
    close = (lambda a, b: torch.equal(a, b)) if exact else (lambda a, b: torch.allclose(a, b, atol=1e-5))
    for k in range(2):
        assert close(l0[k], l1[k]) and close(z0[k], z1[k])
        assert all(close(a, b) for a, b in zip(g0[k], g1[k], strict=True))
        assert all(torch.equal(a, b) for a, b in zip(b0[k], b1[k], strict=True))  # BatchNorm statistics


def test_asf_objective_logits_equal_its_training_logits():
    x, y = digits_batch()
    (net,) = members(0)
    rule = dnmsnn.rules.create("asf")
    _, logits = rule.loss_backward(net, x, y)
    assert torch.allclose(rule.objective_logits(net, x), logits, atol=1e-5)


@pytest.mark.parametrize("rule, args, exchange", [
    ("bptt", {}, "kl"), ("spatial", {}, "ce"), ("spatial", {"online": True}, "kl"), ("asf", {"loss": "mse"}, "mse"),
])
def test_cohort_with_each_rule_lowers_the_loss(rule, args, exchange):
    x, y = digits_batch(n=64, T=4)
    nets = members(0, 1)
    cohort = Cohort(nets, [dnmsnn.rules.create(rule, **args) for _ in nets], exchange=exchange, weight=0.5)
    opts = [torch.optim.Adam(m.parameters(), lr=1e-2) for m in nets]
    history = []
    for _ in range(12):
        for o in opts:
            o.zero_grad()
        losses, logits = cohort.loss_backward(x, y)
        for o in opts:
            o.step()
        history.append([float(v) for v in losses])
        assert all(z.shape == (64, 10) and not z.requires_grad for z in logits)
    for k in range(len(nets)):
        assert math.isfinite(history[-1][k]) and history[-1][k] < 0.8 * history[0][k], (rule, k, history)


def test_cohort_argument_errors():
    nets = members(0, 1)
    with pytest.raises(InputError, match="own rule"):
        rule = dnmsnn.rules.create("bptt")
        Cohort(nets, [rule, rule])
    with pytest.raises(InputError, match="one LearningRule per member"):
        Cohort(nets, [dnmsnn.rules.create("bptt")])
    with pytest.raises(InputError, match="exchange"):
        Cohort(nets, exchange="l2")
    with pytest.raises(InputError, match="weight"):
        Cohort(nets, weight=-1.0)
    with pytest.raises(InputError, match="temperature"):
        Cohort(nets, temperature=0.0)
    with pytest.raises(InputError, match="classes"):
        Cohort([nets[0], dnmsnn.models.create("mlp", input_shape=(1, 8, 8), hidden=(8,), num_classes=3)])


# ----------------------------------------------------------------- mix module
A = torch.tensor([[3.0, 2.5, 0.0], [0.0, 1.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
B = torch.tensor([[0.0, 2.5, 0.0], [0.0, 0.0, 2.0], [0.0, 0.0, 1.0], [0.0, 3.0, 0.0]])


def test_mix_modes_on_hand_made_outputs():
    raw = Mix(space="raw")
    assert torch.equal(raw.combine([A, B], "max"), torch.maximum(A, B))
    assert torch.equal(raw.combine([A, B], "average"), (A + B) / 2)
    assert raw.predict([A, B], "max").tolist() == [0, 2, 0, 1]
    assert raw.predict([A, B], "average").tolist() == [1, 2, 0, 1]
    # two members: every disagreement is a tie, broken by the average among the tied classes
    assert raw.predict([A, B], "vote").tolist() == [1, 2, 0, 1]
    # three members: the majority wins, even against the average
    P, Q = torch.tensor([[5.0, 0.0, 0.0]]), torch.tensor([[0.0, 1.0, 0.0]])
    assert raw.predict([P, Q, Q], "vote").tolist() == [1] and raw.predict([P, Q, Q], "average").tolist() == [0]
    assert raw.combine([P, Q, Q], "vote").tolist() == [[1.0, 2.0, 0.0]]
    assert raw.predict([A, 10 * B], "average").tolist() == [1, 2, 2, 1]
    soft = Mix()   # default: softmax probabilities, so members on different scales are comparable
    assert torch.allclose(soft.combine([A, B], "max"), torch.maximum(A.softmax(-1), B.softmax(-1)))
    assert torch.allclose(soft.combine([A, 10 * B], "average"), (A.softmax(-1) + (10 * B).softmax(-1)) / 2)
    assert set(soft.accuracy([A, B], torch.tensor([0, 2, 0, 1]))) == {"max", "average", "vote"}


def test_better_and_best_member_are_decided_on_the_fit_data_only():
    mix = Mix(space="raw")
    with pytest.raises(InputError, match="fit"):
        mix.predict([A, B], "better")
    val_labels = torch.tensor([0, 2, 0, 1])           # max is right on all four, average on three
    mix.fit([A, B], val_labels)
    assert mix.better == "max" and mix.fit_accuracy["max"] == 1.0 and mix.fit_accuracy["average"] == 0.75
    assert mix.member_accuracy == [0.5, 0.5] and mix.best_member == 0   # a tie goes to the lowest index
    # on "test" data where average and member 1 would win, nothing is re-decided
    test_labels = torch.tensor([1, 2, 0, 1])
    acc = mix.accuracy([A, B], test_labels)
    assert acc["better"] == acc["max"] == 0.75 and acc["average"] == 1.0
    assert acc["best_member"] == 0.25 and torch.equal(mix.predict([A, B], "best_member"), A.argmax(-1))
    mix.fit([A, B], test_labels)
    assert (mix.better, mix.best_member) == ("average", 1)


def test_mix_input_errors():
    with pytest.raises(InputError, match="shape"):
        Mix().predict([A, A[:2]], "max")
    with pytest.raises(InputError, match="labels"):
        Mix().fit([A, B], torch.tensor([0, 1]))
    with pytest.raises(InputError, match="mode"):
        Mix().predict([A, B], "median")
    with pytest.raises(InputError, match="space"):
        Mix(space="log")


# ----------------------------------------------------------------- trainer
def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_zero_weight_cohort_equals_independent_runs(tmp_path):
    """Member k of a cohort with seed s and lambda = 0 is bitwise the single run with train.model_seed = s + k."""
    common = [*DROPOUT_MLP, "data.val_fraction=0.2", "train.epochs=2", "train.seed=3"]
    cohort = trainer(tmp_path, "cohort", *common, "cohort.size=2", "cohort.weight=0")
    res = cohort.fit()
    for k in range(2):
        single = trainer(tmp_path, f"single{k}", *common, f"train.model_seed={3 + k}")
        r = single.fit()
        assert all(torch.equal(v, weights(cohort.members[k].model)[n]) for n, v in weights(single.model).items())
        assert r["test_acc_by_T"] == res["members"][k]["test_acc_by_T"]
        assert r["val_acc"] == res["members"][k]["val_acc"]
        rows = [json.loads(x) for x in (tmp_path / f"single{k}" / "metrics.jsonl").read_text().splitlines()]
        assert "members" not in rows[-1] and "mix" not in r
    default = trainer(tmp_path, "default", *common)   # member 0 = the single run of the same config
    default.fit()
    assert all(torch.equal(v, weights(cohort.model)[n]) for n, v in weights(default.model).items())
    # a warm-up epoch is an epoch at lambda = 0
    warm = trainer(tmp_path, "warm", *common[:-2], "train.epochs=1", "train.seed=3", "cohort.size=2",
                   "cohort.warmup_epochs=1")
    zero = trainer(tmp_path, "zero", *common[:-2], "train.epochs=1", "train.seed=3", "cohort.size=2",
                   "cohort.weight=0")
    warm.fit()
    zero.fit()
    for a, b in zip(warm.members, zero.members, strict=True):
        assert all(torch.equal(v, weights(b.model)[n]) for n, v in weights(a.model).items())
    assert json.loads((tmp_path / "warm" / "metrics.jsonl").read_text())["exchange_weight"] == 0.0


def test_mixing_single_runs_gives_the_lambda_zero_cohort(tmp_path, capsys):
    """dnmsnn mix over the single runs with model_seed s and s + 1 reproduces the lambda = 0 pair's results:
    every member's accuracies and every mix mode's, better / best_member decided on the same validation split."""
    from dnmsnn.train.mixing import mix_runs

    common = [*DROPOUT_MLP, "data.val_fraction=0.2", "train.epochs=2", "train.seed=3"]
    pair = trainer(tmp_path, "pair", *common, "cohort.size=2", "cohort.weight=0").fit()
    for k in range(2):
        trainer(tmp_path, f"single{k}", *common, f"train.model_seed={3 + k}").fit()
    mixed = mix_runs([tmp_path / "single0", tmp_path / "single1"])
    assert mixed["mix"] == pair["mix"]
    for k in range(2):
        assert mixed["members"][k]["test_acc_by_T"] == pair["members"][k]["test_acc_by_T"]
        assert mixed["members"][k]["val_acc"] == pair["members"][k]["val_acc"]
        assert mixed["members"][k]["model_seed"] == 3 + k
    assert mix_runs([tmp_path / "pair"])["mix"] == pair["mix"]  # a cohort run's own members mix the same way
    out = tmp_path / "mix.json"
    assert main(["mix", str(tmp_path / "single0"), str(tmp_path / "single1"), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["mix"] == pair["mix"] and "mix max" in capsys.readouterr().out
    trainer(tmp_path, "other", *common[:-2], "train.epochs=1", "train.seed=4").fit()
    with pytest.raises(ConfigError, match="train.seed"):
        mix_runs([tmp_path / "single0", tmp_path / "other"])
    with pytest.raises(ConfigError, match="at least two networks"):
        mix_runs([tmp_path / "single0"])


def test_cohort_resume_gives_the_uninterrupted_result(tmp_path):
    common = [*DROPOUT_MLP, "data.val_fraction=0.2", "cohort.size=2", "cohort.weight=0.5", "cohort.warmup_epochs=1"]
    full = trainer(tmp_path, "full", *common, "train.epochs=3")
    full.fit()
    trainer(tmp_path, "part", *common, "train.epochs=1").fit()
    resumed = trainer(tmp_path, "part", *common, "train.epochs=3", resume=True)
    assert resumed.start_epoch == 1
    resumed.fit()
    for a, b in zip(full.members, resumed.members, strict=True):
        assert all(torch.equal(v, weights(b.model)[n]) for n, v in weights(a.model).items())
        sa, sb = a.optimizer.state_dict()["state"], b.optimizer.state_dict()["state"]
        assert sa.keys() == sb.keys()
        assert all(torch.equal(sa[i][key], sb[i][key]) for i in sa for key in sa[i])
        assert a.scheduler.state_dict() == b.scheduler.state_dict()
    m_full, m_res = ([json.loads(x) for x in (tmp_path / d / "metrics.jsonl").read_text().splitlines()]
                     for d in ("full", "part"))
    drop = ("train_time_s", "train_samples_per_s")
    assert [{k: v for k, v in r.items() if k not in drop} for r in m_full] == \
           [{k: v for k, v in r.items() if k not in drop} for r in m_res]
    with pytest.raises(ConfigError, match="cohort.size"):
        trainer(tmp_path, "part", *common, "train.epochs=4", "cohort.size=3", resume=True)


def test_cohort_config_is_validated():
    for override, key in [("cohort.size=0", "cohort.size"), ("cohort.weight=-1", "cohort.weight"),
                          ("cohort.temperature=0", "cohort.temperature"), ("cohort.exchange=l1", "cohort.exchange"),
                          ("cohort.warmup_epochs=-1", "cohort.warmup_epochs"), ("cohort.sizes=2", "size")]:
        with pytest.raises(ConfigError, match=key):
            load_run_config(None, [override])
    with pytest.raises(ConfigError, match="cohort.ramp_epochs"):
        load_run_config(None, ["cohort.ramp_epochs=-1"])
    cfg = load_run_config(None, ["cohort={size: 3, exchange: mse, warmup_epochs: 2}"])
    assert (cfg.cohort.size, cfg.cohort.exchange, cfg.cohort.weight_at(1), cfg.cohort.weight_at(2)) == (3, "mse", 0, 1)
    cfg = load_run_config(None, ["cohort={size: 2, exchange: kl_steps, weight: 0.8, warmup_epochs: 1, ramp_epochs: 4}"])
    assert [cfg.cohort.weight_at(e) for e in range(7)] == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 0.8, 0.8])


def test_cli_trains_a_cohort(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: {name: digits_mlp}\ndata: {name: digits, val_fraction: 0.2, train_limit: 300}\n"
                   "encoder: {T: 3, eval_T: [2]}\ntrain: {epochs: 1, progress: false}\ncohort: {size: 2}\n")
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--out", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())
    assert [m["seed"] for m in res["members"]] == [0, 1] and res["test_acc"] == res["members"][0]["test_acc"]
    assert set(res["mix"]["test_acc"]) == {"max", "average", "better", "vote", "best_member"}
    assert set(res["mix"]["test_acc_by_T"]) == {"2", "3"} and res["mix"]["decided_on"] == "val"
    row = json.loads((out / "metrics.jsonl").read_text())
    assert len(row["members"]) == 2 and {"train_loss", "train_acc", "val_acc", "test_acc"} <= set(row["members"][1])
    assert row["mix"]["better"] in ("max", "average") and "mix test" in capsys.readouterr().out
    assert main(["eval", str(out), "--T", "3"]) == 0          # every member and the val-free mix modes
    by_T = json.loads((out / "eval.json").read_text())["by_T"]["3"]
    assert [by_T["member0"], by_T["member1"]] == [m["test_acc_by_T"]["3"] for m in res["members"]]
    assert {k: by_T[f"mix_{k}"] for k in ("max", "average", "vote")} == {
        k: res["mix"]["test_acc_by_T"]["3"][k] for k in ("max", "average", "vote")}
    # without a validation split, better and best_member are left out rather than decided on test data
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "noval"), "--set", "data.val_fraction=0"]) == 0
    mix = json.loads((tmp_path / "noval" / "results.json").read_text())["mix"]
    assert mix["better"] is None and mix["best_member"] is None and set(mix["test_acc"]) == {"max", "average", "vote"}
