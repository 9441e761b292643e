# The sbatch wrappers' shared body (slurm/train_*.sh source it, then call `run_wrapped_training EXPERIMENT ARGS...`).
# Not a job script of its own.

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
# run_wrapped_training EXPERIMENT [hydra overrides...]: output under the experiments root, then the job itself.
run_wrapped_training() {
  local experiment="$1"
  shift
  local out_dir default_out
  out_dir="$(slurm_output_dir "$@")"
  mkdir -p "$out_dir"
  default_out="$SLURM_SUBMIT_DIR/slurm-$SLURM_JOB_ID.out"
  if scontrol show job -o "$SLURM_JOB_ID" | grep -qF "StdOut=$default_out"; then
    export RLVR_JOB_OUTPUT="$(cd "$out_dir" && pwd)/$SLURM_JOB_NAME-$SLURM_JOB_ID.out"
    exec >>"$RLVR_JOB_OUTPUT" 2>&1
    rm -f "$default_out"
  fi
  # The code the job runs, fixed at its first start and kept for its requeues (rlvr_vocab/run/code.py).
  local snapshot
  snapshot="$(python -m rlvr_vocab.run.code "${out_dir%/_slurm}" "$SLURM_JOB_ID")" || return 1
  export RLVR_CODE="$snapshot" PYTHONPATH="$snapshot${PYTHONPATH:+:$PYTHONPATH}" PYTHONSAFEPATH=1
  # For the run's record: launched by a wrapper, which adds this override itself.
  export RLVR_SBATCH_WRAPPER=1 RLVR_WRAPPER_OVERRIDES="experiment=$experiment"
  # Extra arguments are Hydra overrides, passed through untouched (no YAML is parsed here; the job logs them,
  # secrets redacted).
  echo "rlvr: job ${SLURM_JOB_ID:-none} restart ${SLURM_RESTART_COUNT:-0} on $(hostname)"
  srun --kill-on-bad-exit=1 python -m rlvr_vocab.train $RLVR_WRAPPER_OVERRIDES "$@"
}
