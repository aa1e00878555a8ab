#!/usr/bin/env bash
# Run mikupal on one workstation's Ray (e.g. 8 GPUs) through `ray job submit`.
#   1. start Ray on the machine (once):   ray start --head --num-gpus=8 --dashboard-host=127.0.0.1
#   2. submit (from a checkout of this repo):
#        INPUT=/data/videos OUTPUT=/data/out MODELS_DIR=/data/models bash deploy/submit_workstation.sh [key=value ...]
# INPUT, OUTPUT and MODELS_DIR (default: $MIKUPAL_MODELS_DIR, else mikupal's own default) are paths on
# the machine running the job; PROFILE (default gpu) picks the profile; RAY_ADDRESS (default
# http://127.0.0.1:8265) is the dashboard the job is submitted to. Extra key=value arguments go to
# `mikupal run` as they are (e.g. offline=true labeler=none). The job's driver joins the cluster
# (Ray sets RAY_ADDRESS for the entrypoint); GPU stages run as actor pools sized to the GPUs
# (profile=gpu: workers=auto, fractional num_gpus).
set -euo pipefail
: "${INPUT:?set INPUT to a video, folder or list file}"
: "${OUTPUT:?set OUTPUT to the dataset directory}"
MODELS_DIR="${MODELS_DIR:-${MIKUPAL_MODELS_DIR:-}}"
absolute() { case "$1" in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$PWD" "$1" ;; esac; }  # the job runs elsewhere
args=(input="$(absolute "$INPUT")" output="$(absolute "$OUTPUT")" profile="${PROFILE:-gpu}")
if [ -n "$MODELS_DIR" ]; then
  args+=(models_dir="$(absolute "$MODELS_DIR")")
fi
cd "$(dirname "$0")/.."   # the checkout the job ships (runtime_env.yaml: working_dir ".")
exec ray job submit \
  --address "${RAY_ADDRESS:-http://127.0.0.1:8265}" \
  --working-dir . \
  --runtime-env deploy/runtime_env.yaml \
  -- mikupal run "${args[@]}" "$@"
