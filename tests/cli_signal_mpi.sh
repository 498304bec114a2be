#!/usr/bin/env bash
# Signals through the MPI launcher (docs/slurm.md, "Stopping an MPI run"):
#  - SIGUSR1 to mpiexec: forwarded to the ranks, which checkpoint and exit 75; so
#    does mpiexec, and --resume auto continues from the checkpoint;
#  - SIGTERM to mpiexec: Open MPI itself sends SIGCONT, SIGTERM and SIGKILL to the
#    ranks, odls_base_sigkill_timeout seconds apart, and exits 1 whatever they do;
#    with that timeout raised the ranks checkpoint (metrics.jsonl records the stop) and
#    the run resumes;
#  - jobs/train.sbatch without Slurm (NP=2): SIGTERM to the script, or to the mpirun
#    it started, ends in a checkpoint and exit 75 (the script raises the timeout and
#    reads the stop record when mpirun says 1);
#  - SIGTERM to the ranks themselves: mpiexec exits 75.
# The model (2 x 1024 LSTM, 13M parameters, a 160 MB checkpoint) is big enough that
# a checkpoint does not fit in Open MPI's default 1 s.
# Usage: bash tests/cli_signal_mpi.sh PATH/TO/charnn SOURCE_DIR
# Skipped (exit 77) when mpiexec is not installed.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/tap.sh"
charnn=$1
src=$2
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
unset OMPI_MCA_odls_base_sigkill_timeout

mpiexec=$(command -v mpiexec || command -v mpirun || true)
if [ -z "$mpiexec" ]; then
  echo "skipped: mpiexec is not installed"
  exit 77
fi

work=$PWD/cli_signal_mpi_work
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1


"$charnn" generate --chars 30000 --seed 9 > text.txt 2> gen.err ||
  { echo "not ok - generate the text"; show gen.err; exit 1; }
model=(--cell lstm --layers 2 --hidden 1024 --seq 5 --batch 1 --threads 1 --val-frac 0.01
       --test-frac 0.01 --eval-every 0 --checkpoint-every 0 --log-every 1 --no-progress)

# wait_step FILE N PID: wait (up to 120 s) until FILE shows step N, or PID ended
wait_step() {
  local i
  for i in $(seq 1200); do
    grep -q "^step $2/" "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
# stopped_at DIR: the step of the last stop record in DIR/metrics.jsonl
stopped_at() { grep '"type":"stop"' "$1/metrics.jsonl" 2>/dev/null | tail -n1 | sed 's/.*"step":\([0-9]*\).*/\1/'; }
# resumes DIR: --resume auto continues from the stop, 1 step more, exit 0
resumes() {
  local dir=$1 s rc
  s=$(stopped_at "$dir")
  [ -n "$s" ] || { echo "    # no stop record in $dir/metrics.jsonl"; return 1; }
  "$mpiexec" --oversubscribe -np 2 "$charnn" train --data text.txt --out "$dir" "${model[@]}" \
    --steps $((s + 1)) --resume auto > "$dir.resume.out" 2> "$dir.resume.err"; rc=$?
  [ "$rc" = 0 ] || { echo "    # resume exit $rc"; show "$dir.resume.err"; return 1; }
  has "$dir.resume.out" "step $((s + 1))/$((s + 1))" || { show "$dir.resume.out"; return 1; }
}

# ---- SIGUSR1 to mpiexec: exit 75 ----
"$mpiexec" --oversubscribe -np 2 "$charnn" train --data text.txt --out usr1 "${model[@]}" \
  --steps 100000 > usr1.out 2> usr1.err &
pid=$!
wait_step usr1.out 1 $pid
kill -USR1 $pid
wait $pid; rc=$?
check "SIGUSR1 to mpiexec: exit 75 (got $rc)" test "$rc" = 75 || show usr1.err
check "SIGUSR1 to mpiexec: the ranks said they checkpoint" has usr1.out "signal 10: checkpointing at step"
check "SIGUSR1 to mpiexec: 'latest' names a checkpoint" test -s "usr1/$(cat usr1/latest 2>/dev/null)"
check "SIGUSR1 to mpiexec: a stop record in metrics.jsonl" test -n "$(stopped_at usr1)"
check "SIGUSR1 to mpiexec: --resume auto continues from it" resumes usr1

# ---- SIGTERM to mpiexec, Open MPI's kill delay raised: checkpoint, mpiexec exits 1 ----
OMPI_MCA_odls_base_sigkill_timeout=30 "$mpiexec" --oversubscribe -np 2 "$charnn" train \
  --data text.txt --out term "${model[@]}" --steps 100000 > term.out 2> term.err &
pid=$!
wait_step term.out 1 $pid
kill -TERM $pid
wait $pid; rc=$?
check "SIGTERM to mpiexec: exit 1, Open MPI's status for a signalled launcher (got $rc)" \
  test "$rc" = 1 || show term.err
check "SIGTERM to mpiexec: the ranks checkpointed" has term.out "signal 15: checkpointing at step"
check "SIGTERM to mpiexec: a stop record in metrics.jsonl" test -n "$(stopped_at term)"
check "SIGTERM to mpiexec: the checkpoint verifies" \
  "$charnn" inspect "term/$(cat term/latest 2>/dev/null)" > /dev/null 2>&1
check "SIGTERM to mpiexec: --resume auto continues from it" resumes term

# ---- jobs/train.sbatch without Slurm, NP=2 ----
# job NAME: the script in the foreground of this (background) subshell, so that its pid is $!
job() {
  NP=2 THREADS=1 STOP_GRACE=20 CHARNN=$charnn DATA=$work/text.txt OUT=$work/$1 STEPS=100000 CHECKPOINT_EVERY=0 \
    EVAL_EVERY=0 LOG_EVERY=1 HIDDEN=1024 SEQ=5 BATCH=1 \
    TRAIN_FLAGS="--val-frac 0.01 --test-frac 0.01" exec bash "$src/jobs/train.sbatch" > $1.out 2> $1.err
}
# SIGTERM to the script: it forwards SIGUSR1 to mpirun
job jobterm & pid=$!
wait_step jobterm.out 1 $pid
kill -TERM $pid
wait $pid; rc=$?
check "SIGTERM to train.sbatch (NP=2): exit 75 (got $rc)" test "$rc" = 75 || show jobterm.err
check "SIGTERM to train.sbatch: a stop record" test -n "$(stopped_at jobterm)"
# SIGTERM to the mpirun the script started (as a kill aimed at the launcher would)
job joblauncher & pid=$!
wait_step joblauncher.out 1 $pid
mpirun_pid=$(pgrep -P $pid -x mpirun || pgrep -P $pid -x mpiexec || pgrep -P $pid -f orterun)
check "train.sbatch started mpirun" test -n "$mpirun_pid"
[ -z "$mpirun_pid" ] || kill -TERM $mpirun_pid
wait $pid; rc=$?
check "SIGTERM to train.sbatch's mpirun: the script exits 75 (got $rc)" test "$rc" = 75 ||
  { show joblauncher.out; show joblauncher.err; }
check "SIGTERM to train.sbatch's mpirun: the ranks checkpointed" test -n "$(stopped_at joblauncher)"
check "SIGTERM to train.sbatch's mpirun: --resume auto continues" resumes joblauncher

# ---- SIGTERM to the ranks themselves: mpiexec exits 75 ----
"$mpiexec" --oversubscribe -np 2 "$charnn" train --data text.txt --out ranks "${model[@]}" \
  --steps 100000 > ranks.out 2> ranks.err &
pid=$!
wait_step ranks.out 1 $pid
kill -TERM $(pgrep -P $pid) 2>/dev/null
wait $pid; rc=$?
check "SIGTERM to the ranks: mpiexec exits 75 (got $rc)" test "$rc" = 75 || show ranks.err
check "SIGTERM to the ranks: a stop record" test -n "$(stopped_at ranks)"

echo "cli_signal_mpi: $pass passed, $fail failed"
[ "$fail" = 0 ]
