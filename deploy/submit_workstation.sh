#!/usr/bin/env bash
# Run mikupal on one 8-GPU workstation through `ray job submit`.
#   1. start Ray on the machine (once):   ray start --head --num-gpus=8 --dashboard-host=127.0.0.1
#   2. submit (from a checkout of this repo):  INPUT=/data/videos OUTPUT=/data/out bash deploy/submit_workstation.sh
# The job's driver joins the cluster (RAY_ADDRESS is set by Ray for the entrypoint); GPU stages run
# as actor pools sized to the 8 GPUs (profile=gpu: workers=auto, fractional num_gpus).
set -euo pipefail
: "${INPUT:?set INPUT to a video, folder or list file}"
: "${OUTPUT:?set OUTPUT to the dataset directory}"
RAY_ADDRESS="${RAY_ADDRESS:-http://127.0.0.1:8265}" ray job submit \
  --working-dir . \
  --runtime-env deploy/runtime_env.yaml \
  -- mikupal run input="$INPUT" output="$OUTPUT" profile=gpu "$@"
