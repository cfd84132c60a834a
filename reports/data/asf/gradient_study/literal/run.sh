#!/usr/bin/env bash
# the literal (shared-slope) rule: the FI-over-positive-inputs reading, initialisation, lr and T (300 batches each)
cd "$(dirname "$0")/../../../../.."  # the repository root
S=".venv/bin/python scripts/asf_gradient_study.py --data-dir ../shared/data --batches 300 --every 25 --plot"
O=reports/data/asf/gradient_study/literal
C=batch,batch-positive,sample,neuron+inhibited
mkdir -p $O
run() { local name=$1; shift; [ -f $O/$name.jsonl ] || { echo "$(date +%T) $name"; $S "$@" --compare $C --out $O/$name.jsonl > /dev/null; }; }
run if_train-batch-positive --neuron if --train batch-positive
run if_train-batch --neuron if --train batch
run lif_cal0.05-0.3_train-batch-positive --neuron lif --calibrate 0.05,0.3 --train batch-positive
run lif_cal0.05-0.3_train-batch --neuron lif --calibrate 0.05,0.3 --train batch
run if_cal0.05-0.3_train-batch --neuron if --calibrate 0.05,0.3 --train batch
run if_train-batch_lr3e-3 --neuron if --train batch --lr 3e-3
run if_train-batch_lr3e-4 --neuron if --train batch --lr 3e-4
run if_train-batch_T20 --neuron if --train batch --T 20
run if_train-batch_T5 --neuron if --train batch --T 5
echo "$(date +%T) done"
