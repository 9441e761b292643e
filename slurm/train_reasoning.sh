#!/usr/bin/env bash
# GRPO with the reasoning vocabulary (Qwen3-0.6B + 75000 mirrored tokens, DeepScaleR) as one SLURM job.
#
#   sbatch slurm/train_reasoning.sh [hydra overrides...]
#   sbatch slurm/train_reasoning.sh training.learning_rate=3e-6 seed=1
#   sbatch slurm/train_reasoning.sh run_name=lr3e-6      # a fixed name: resubmitting it resumes it
# On the CPU-only local cluster (slurm/local_cluster.sh):
#   sbatch --gpus-per-node=0 --mem=4G slurm/train_reasoning.sh model=tiny dataset=arithmetic training=grpo_local
#
# Edit the header for your cluster (sbatch options on the command line override it).
# The job's output goes to <experiments root>/_slurm/<job name>-<job id>.out (unless you give --output);
# `rlvr-vocab logs RUN` finds it, and `rlvr-vocab resume RUN` submits the run again through this wrapper.
# Runs land in experiments/reasoning_vocab/<run_name>/, run_name defaulting to job<SLURM_JOB_ID>, which a
# requeued job keeps: it resumes from its latest complete checkpoint with the same W&B run.
#SBATCH --job-name=rlvr-reasoning
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=1
#SBATCH --cpus-per-task=8
#SBATCH --mem=64G
#SBATCH --time=24:00:00
#SBATCH --open-mode=append
#SBATCH --requeue
# USR2 five minutes before the time limit (and on preemption): checkpoint, then requeue.
#SBATCH --signal=USR2@300
set -euo pipefail
# Slurm runs a spooled copy of this file; the job starts in the directory sbatch was called from.
cd "${SLURM_SUBMIT_DIR:-$PWD}"

# --- cluster set-up: uncomment / edit -------------------------------------------
# module load WebProxy        # internet for the HF hub and W&B where the cluster proxies it
# module load cuda/12.4
# source ~/miniconda3/etc/profile.d/conda.sh && conda activate rlvr
if [[ -f "${RLVR_VENV:-.venv}/bin/activate" ]]; then
  source "${RLVR_VENV:-.venv}/bin/activate"
fi

# Output under the experiments root, not in the submit dir (Slurm needs an --output directory to exist before
# the job starts, so it cannot be given in the header).
# The job's own root decides: an experiments_root= override among the arguments wins over $RLVR_EXPERIMENTS_ROOT.
slurm_output_dir() {
  local root="${RLVR_EXPERIMENTS_ROOT:-experiments}" arg
  for arg in "$@"; do
    case "$arg" in
      experiments_root=*|++experiments_root=*) root="${arg#*=}" ;;
    esac
  done
  # Hydra drops the quotes around a value.
  if [[ ${#root} -ge 2 && ( $root == \"*\" || $root == \'*\' ) ]]; then
    root="${root:1:${#root}-2}"
  fi
  printf '%s/_slurm\n' "$root"
}
OUT_DIR="$(slurm_output_dir "$@")"
mkdir -p "$OUT_DIR"
SLURM_DEFAULT_OUT="$SLURM_SUBMIT_DIR/slurm-$SLURM_JOB_ID.out"
if scontrol show job -o "$SLURM_JOB_ID" | grep -qF "StdOut=$SLURM_DEFAULT_OUT"; then
  export RLVR_JOB_OUTPUT="$(cd "$OUT_DIR" && pwd)/$SLURM_JOB_NAME-$SLURM_JOB_ID.out"
  exec >>"$RLVR_JOB_OUTPUT" 2>&1
  rm -f "$SLURM_DEFAULT_OUT"
fi
# For the run's record: launched by this wrapper, which adds these overrides itself.
export RLVR_SBATCH_WRAPPER=1 RLVR_WRAPPER_OVERRIDES="experiment=reasoning_vocab"

# Extra arguments are Hydra overrides, passed through untouched (no YAML is parsed here; the job logs them,
# secrets redacted).
echo "rlvr: job ${SLURM_JOB_ID:-none} restart ${SLURM_RESTART_COUNT:-0} on $(hostname)"
srun --kill-on-bad-exit=1 python -m rlvr_vocab.train $RLVR_WRAPPER_OVERRIDES "$@"
