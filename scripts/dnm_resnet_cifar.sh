#!/usr/bin/env bash
# The DNM study's design on the CIFAR-10 SUBSET (issue 19; reports/dnm_resnet.md): single / DNM pair /
# lambda = 0 pair, seeds 0-2, resnet11_w8 and resnet20_w4. Fixed folders under runs/dnm_resnet_cifar/, resumable
# (run again next session: finished runs are skipped, cut-off ones resumed); two calls share the work.
#   mkdir -p runs/dnm_resnet_cifar && nohup setsid scripts/dnm_resnet_cifar.sh > runs/dnm_resnet_cifar/w1.log 2>&1 &
set -u
cd "$(dirname "$0")/.."
. scripts/_dnm_run.sh
mkdir -p runs/dnm_resnet_cifar
for model in resnet11_w8 resnet20_w4; do
  for seed in 0 1 2; do
    for group in single dnm lambda0; do
      # shellcheck disable=SC2046  # the group's overrides are words
      dnm_run "runs/dnm_resnet_cifar/${model}_${group}_s$seed" configs/dnm_resnet_cifar_subset.yaml "$seed" \
        --set model.name=$model $(dnm_group $group)
    done
  done
done
