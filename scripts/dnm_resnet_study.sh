#!/usr/bin/env bash
# The DNM-on-ResNet11 study (issue 19): single / DNM pair / lambda = 0 pair, seeds 0-2, MNIST then Fashion-MNIST.
# Every run has a fixed folder under runs/dnm_resnet/; run this script again (next session) and it resumes
# what was cut off and skips what is finished. One training at a time per call (train.threads=1); start two
# calls to use two cores: they never take the same run (each run folder is locked while it trains).
#   mkdir -p runs/dnm_resnet && nohup setsid scripts/dnm_resnet_study.sh > runs/dnm_resnet/worker1.log 2>&1 &
set -u
cd "$(dirname "$0")/.."
. scripts/_dnm_run.sh
mkdir -p runs/dnm_resnet
for data in mnist fashion_mnist; do
  for seed in 0 1 2; do
    for group in single dnm lambda0; do
      # shellcheck disable=SC2046  # the group's overrides are words
      dnm_run "runs/dnm_resnet/${data}_${group}_s$seed" configs/dnm_resnet11_mnist.yaml "$seed" \
        --set data.name=$data $(dnm_group $group)
    done
  done
done
