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
# MNIST trained its lambda = 0 pairs as cohorts; the rest assemble them from the single run and a partner run
# (dnm_seed / dnm_mix in _dnm_run.sh: the same numbers for half the training).
for data in mnist fashion_mnist; do
  lambda0=assembled
  [ $data = mnist ] && lambda0=trained
  for seed in 0 1 2; do
    dnm_seed "runs/dnm_resnet/$data" configs/dnm_resnet11_mnist.yaml "$seed" $lambda0 --set data.name=$data
  done
done
