# Sourced by the DNM study runners (dnm_resnet_study.sh, dnm_resnet_exchange.sh, dnm_resnet_cifar.sh).
# dnm_run OUT CONFIG SEED [--set key=value ...]: one training into the fixed folder OUT, on one thread. A finished
# run (OUT/results.json) is skipped; a cut-off one (OUT/config.yaml) is resumed; a run another worker holds fails on
# its folder lock, and the caller goes on to the next.
# dnm_group GROUP: the overrides of a study group -- single (one network), dnm (the pair as configured), lambda0.
D=.venv/bin/dnmsnn

dnm_run() {
  local out=$1 config=$2 seed=$3
  shift 3
  [ -f "$out/results.json" ] && return 0
  echo "$(date +%T) $out"
  if [ -f "$out/config.yaml" ]; then
    $D train --out "$out" --resume --data-dir ../shared/data
  else
    $D train --config "$config" --data-dir ../shared/data --seed "$seed" --out "$out" \
      --set train.threads=1 --set train.progress=false "$@"
  fi
}

dnm_group() {
  case $1 in
    single) echo "--set cohort.size=1";;
    dnm) ;;
    lambda0) echo "--set cohort.weight=0";;
    *) echo "unknown group $1" >&2; return 1;;
  esac
}
