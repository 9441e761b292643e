#!/usr/bin/env bash
# GRPO with the reasoning vocabulary (Qwen3-0.6B + 75000 mirrored tokens, DeepScaleR) as one SLURM job.
#
#   sbatch slurm/train_reasoning.sh [hydra overrides...]
#   sbatch slurm/train_reasoning.sh training.learning_rate=3e-6 seed=1
#   sbatch slurm/train_reasoning.sh run_name=lr3e-6      # a fixed name: resubmitting it resumes it
# On the CPU-only local cluster (slurm/local_cluster.sh):
#   sbatch --gpus-per-node=0 --cpus-per-task=1 --mem=4G slurm/train_reasoning.sh model=tiny dataset=arithmetic training=grpo_local
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

# The shared body (slurm/wrapper_job.sh, found where the package is installed): output, then the job.
source "$(python -m rlvr_vocab.core.resources wrapper_job.sh)"
run_wrapped_training reasoning_vocab "$@"
