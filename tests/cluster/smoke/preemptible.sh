#!/usr/bin/env bash
# A resumable job in miniature: counts to STEPS (0.5 s a step), recording progress in STATE.progress.
# On SIGUSR1/SIGTERM (Slurm preemption or time limit) it saves the step to STATE and exits 75
# (xstilts' "preempted" code); started again, it resumes from STATE.
# usage: preemptible.sh STATE STEPS OUT
set -euo pipefail
state=$1 steps=$2 out=$3
mkdir -p "$(dirname "$state")"
step=0 resumed=no
if [[ -s $state ]]; then
    step=$(cat "$state") resumed=$step
    echo "resuming from step $step (job $SLURM_JOB_ID)"
else
    echo "starting at step 0 (job $SLURM_JOB_ID)"
fi
trap 'echo "$step" > "$state"; echo "preempted at step $step: state saved"; exit 75' USR1 TERM
while (( step < steps )); do
    echo "$step" > "$state.progress"
    sleep 0.5 & wait $!
    step=$((step + 1))
done
echo "finished $steps steps; resumed from step: $resumed" > "$out"
rm -f "$state" "$state.progress"
