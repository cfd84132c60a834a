#!/usr/bin/env bash
# The DNM study's design on the CIFAR-10 SUBSET (issue 19; reports/dnm_resnet.md): single / DNM pair /
# lambda = 0 pair, seeds 0-2, resnet11_w8 and resnet20_w4. Fixed folders under runs/dnm_resnet_cifar/, resumable
# (run again next session: finished runs are skipped, cut-off ones resumed); two calls share the work.
#   mkdir -p runs/dnm_resnet_cifar && nohup setsid scripts/dnm_resnet_cifar.sh > runs/dnm_resnet_cifar/w1.log 2>&1 &
set -u
cd "$(dirname "$0")/.."
. scripts/_dnm_run.sh
mkdir -p runs/dnm_resnet_cifar
# resnet11_w8 trained its lambda = 0 pairs as cohorts; resnet20_w4 assembles them from the single run and a partner
# run (dnm_mix in _dnm_run.sh: the same numbers for half the training).
for model in resnet11_w8 resnet20_w4; do
  groups="single dnm lambda0"
  [ $model = resnet11_w8 ] || groups="single dnm partner"
  for seed in 0 1 2; do
    for group in $groups; do
      # shellcheck disable=SC2046  # the group's overrides are words
      dnm_run "runs/dnm_resnet_cifar/${model}_${group}_s$seed" configs/dnm_resnet_cifar_subset.yaml "$seed" \
        --set model.name=$model $(dnm_group $group $seed)
    done
    [ $model = resnet11_w8 ] || dnm_mix "runs/dnm_resnet_cifar/${model}_lambda0_s$seed" \
      "runs/dnm_resnet_cifar/${model}_single_s$seed" "runs/dnm_resnet_cifar/${model}_partner_s$seed"
  done
done
