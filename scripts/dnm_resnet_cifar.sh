#!/usr/bin/env bash
# The DNM study's design on the CIFAR-10 SUBSET (issue 19; reports/dnm_resnet.md): single / DNM pair /
# lambda = 0 pair, seeds 0-2, resnet11_w8 and resnet20_w4. Fixed folders under runs/dnm_resnet_cifar/, resumable
# (run again next session: finished runs are skipped, cut-off ones resumed); two calls share the work.
#   mkdir -p runs/dnm_resnet_cifar && nohup setsid scripts/dnm_resnet_cifar.sh > runs/dnm_resnet_cifar/w1.log 2>&1 &
set -u
cd "$(dirname "$0")/.."
D=.venv/bin/dnmsnn
mkdir -p runs/dnm_resnet_cifar
for model in resnet11_w8 resnet20_w4; do
  for seed in 0 1 2; do
    for group in single dnm lambda0; do
      out=runs/dnm_resnet_cifar/${model}_${group}_s$seed
      [ -f "$out/results.json" ] && continue
      case $group in single) g=(--set cohort.size=1);; dnm) g=();; lambda0) g=(--set cohort.weight=0);; esac
      echo "$(date +%T) $out"
      if [ -f "$out/config.yaml" ]; then
        $D train --out "$out" --resume --data-dir ../shared/data || continue
      else
        $D train --config configs/dnm_resnet_cifar_subset.yaml --data-dir ../shared/data --seed "$seed" --out "$out" \
          --set model.name=$model --set train.threads=1 --set train.progress=false "${g[@]}" || continue
      fi
    done
  done
done
