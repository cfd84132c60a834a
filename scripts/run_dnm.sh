#!/usr/bin/env bash
# The DNM-SNN comparison behind reports/dnm_*.md: single network vs cohorts of 2 and 3, several seeds.
#   scripts/run_dnm.sh DATASET [SEEDS] [SIZES] [extra dnmsnn train arguments...]
#   e.g. scripts/run_dnm.sh mnist "0 1 2" "1 2 3"      -> runs/dnm/mnist/size{K}_s{S}
# DATASET names the config configs/dnm_DATASET.yaml. Runs that finished (results.json) are skipped, so the
# script can be re-run after an interruption. Data: $DNMSNN_DATA_DIR or ../shared/data.
set -euo pipefail
dataset=$1; seeds=${2:-"0 1 2"}; sizes=${3:-"1 2 3"}; shift $(( $# < 3 ? $# : 3 ))
data_dir=${DNMSNN_DATA_DIR:-../shared/data}
dnmsnn=${DNMSNN:-.venv/bin/dnmsnn}
for seed in $seeds; do
  for size in $sizes; do
    out=runs/dnm/$dataset/size${size}_s${seed}
    [ -f "$out/results.json" ] && continue
    resume=(); [ -d "$out" ] && resume=(--resume)
    "$dnmsnn" train --config "configs/dnm_$dataset.yaml" --data-dir "$data_dir" --out "$out" --seed "$seed" \
      --set cohort.size="$size" --set train.progress=false "${resume[@]}" "$@"
  done
done
