# Sourced by the DNM study runners (dnm_resnet_study.sh, dnm_resnet_exchange.sh, dnm_resnet_cifar.sh).
# dnm_run OUT CONFIG SEED [--set key=value ...]: one training into the fixed folder OUT, on one thread. A finished
# run (OUT/results.json) is skipped; a cut-off one (OUT/config.yaml) is resumed; a run another worker holds fails on
# its folder lock, and the caller goes on to the next.
# dnm_group GROUP SEED: the overrides of a study group -- single (one network), dnm (the pair as configured), lambda0
# (the pair with lambda = 0), partner (one network initialised from model seed SEED + 1: the lambda = 0 pair's member 1).
# dnm_mix OUT RUN RUN...: the mix of finished runs trained apart (dnmsnn mix) into OUT/results.json, once all are
# finished; the lambda = 0 pair of seed S is the mix of the single and partner runs of S (member k of a lambda = 0
# cohort is bitwise the single run with model seed S + k: tests/test_cohort.py), at half the training.
# dnm_seed PREFIX CONFIG SEED LAMBDA0 [--set key=value ...]: a study's groups for one seed, into PREFIX_<group>_s<SEED>:
# single, dnm and the lambda = 0 pair, trained as a cohort (LAMBDA0 = trained) or assembled from the single and the
# partner run (LAMBDA0 = assembled).
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
    partner) echo "--set cohort.size=1 --set train.model_seed=$(($2 + 1))";;
    *) echo "unknown group $1" >&2; return 1;;
  esac
}

dnm_mix() {
  local out=$1 run
  shift
  [ -f "$out/results.json" ] && return 0
  for run in "$@"; do
    [ -f "$run/results.json" ] || return 0
  done
  echo "$(date +%T) $out (mix of $*)"
  $D mix "$@" --data-dir ../shared/data --out "$out/results.json"
}

dnm_seed() {
  local prefix=$1 config=$2 seed=$3 lambda0=$4 group groups
  shift 4
  case $lambda0 in
    trained) groups="single dnm lambda0";;
    assembled) groups="single dnm partner";;
    *) echo "dnm_seed: LAMBDA0 is trained or assembled, not $lambda0" >&2; return 1;;
  esac
  for group in $groups; do
    # shellcheck disable=SC2046  # the group's overrides are words
    dnm_run "${prefix}_${group}_s$seed" "$config" "$seed" "$@" $(dnm_group "$group" "$seed")
  done
  if [ "$lambda0" = assembled ]; then
    dnm_mix "${prefix}_lambda0_s$seed" "${prefix}_single_s$seed" "${prefix}_partner_s$seed"
  fi
}
