#!/usr/bin/env bash
# 1-epoch probes (10,000 training images, 2,000 test images): where in the firing band should the LIF layers start?
cd "$(dirname "$0")/../../../.."  # the repository root
for band in "0.01, 0.05" "0.02, 0.1" "0.05, 0.3" "0.1, 0.5"; do
  for slope in neuron shared; do
    name="probe_${slope}_band$(echo $band | tr -d ' ' | tr ',' '-')"
    out=runs/band_probes/$name
    [ -f $out/results.json ] && continue
    extra=(); [ $slope = shared ] && extra=(--set 'rule.args={slope: batch, phase1: layer}')
    .venv/bin/dnmsnn train --config configs/asf_mnist_lif_calibrated.yaml --data-dir ../shared/data --seed 0 --out runs/band_probes/$name \
      --set train.threads=1 --set train.progress=false --set train.epochs=1 --set data.train_limit=10000 \
      --set data.test_limit=2000 --set "model.firing_rate=[$band]" --set 'encoder.eval_T=[10]' "${extra[@]}" 2>&1 | grep -E "calibrated|epoch"
  done
done
