#!/usr/bin/env bash
# The DNM study's design on the CIFAR-10 SUBSET (issue 19; reports/dnm_resnet.md): single / DNM pair /
# lambda = 0 pair, seeds 0-2, resnet11_w8 and resnet20_w4. Fixed folders under runs/dnm_resnet_cifar/, resumable
# (run again next session: finished runs are skipped, cut-off ones resumed); two calls share the work.
#   mkdir -p runs/dnm_resnet_cifar && nohup setsid scripts/dnm_resnet_cifar.sh > runs/dnm_resnet_cifar/w1.log 2>&1 &
set -u
cd "$(dirname "$0")/.."
. scripts/_dnm_run.sh
mkdir -p runs/dnm_resnet_cifar
# resnet11_w8 trained its lambda = 0 pairs as cohorts; the rest assemble them from the single run and a partner run
# (dnm_seed / dnm_mix in _dnm_run.sh: the same numbers for half the training).
for model in resnet11_w8 resnet20_w4; do
  lambda0=assembled
  [ $model = resnet11_w8 ] && lambda0=trained
  for seed in 0 1 2; do
    dnm_seed "runs/dnm_resnet_cifar/$model" configs/dnm_resnet_cifar_subset.yaml "$seed" $lambda0 --set model.name=$model
  done
done
