#!/usr/bin/env bash
# Exchange designs for the DNM-on-ResNet11 study (issue 19; reports/dnm_resnet.md): the same DNM pair as
# scripts/dnm_resnet_study.sh (resnet11_w8, MNIST, seed S) with another exchange or lambda schedule, chosen on the
# validation split only. Each run has a fixed folder under runs/dnm_resnet_exchange/; run the script again (next
# session) and it resumes what was cut off and skips what is finished; two calls share the work (folder locks).
#   mkdir -p runs/dnm_resnet_exchange && nohup setsid scripts/dnm_resnet_exchange.sh > runs/dnm_resnet_exchange/w1.log 2>&1 &
# The kl pair of the same seed (the design of the main study) is runs/dnm_resnet/mnist_dnm_s<S>.
set -u
cd "$(dirname "$0")/.."
. scripts/_dnm_run.sh
mkdir -p runs/dnm_resnet_exchange
for seed in ${SEEDS:-0 1}; do
  for variant in kl_steps mse_steps warmup2 ramp5; do
    case $variant in
      kl_steps) v=(--set cohort.exchange=kl_steps);;          # the outputs after every step (running counts), KL
      mse_steps) v=(--set cohort.exchange=mse_steps);;        # distance between the output spike trains
      warmup2) v=(--set cohort.warmup_epochs=2);;             # lambda = 0 for 2 epochs, then 1
      ramp5) v=(--set cohort.ramp_epochs=5);;                 # lambda rising 0.2, 0.4, ... 1 over 5 epochs
    esac
    dnm_run "runs/dnm_resnet_exchange/mnist_${variant}_s$seed" configs/dnm_resnet11_mnist.yaml "$seed" "${v[@]}"
  done
done
