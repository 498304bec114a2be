#!/usr/bin/env bash
# The job scripts against a real Slurm: tests/slurm/up.sh brings up munged,
# slurmctld and slurmd on localhost (Debian's Slurm 22.05, no systemd) and a
# trap stops them by PID on exit. Then, with a tiny model on a 200 KB corpus:
#
#  - jobs/train.sbatch with 2 ranks (srun --mpi=pmix, and LAUNCHER=mpirun)
#    writes a model that charnn inspect reads; progress shows in the output file;
#  - jobs/analyze.sbatch, chained with --dependency=afterok, writes the trace
#    and the analysis (it starts only once a requeued training job has finished);
#  - jobs/sweep.sbatch runs its 6-task array and OUT/summary.tsv lists every task;
#  - preemption: a job sent SIGUSR1 (scancel --batch --signal=USR1) checkpoints,
#    requeues itself, resumes and ends bit-identical (h5diff) to an uninterrupted job;
#  - a job cancelled with plain scancel keeps a checkpoint at most
#    --checkpoint-every steps behind the last step it printed;
#  - without Slurm, `bash jobs/*.sbatch` falls back to mpirun / a loop.
#
#   bash tests/cli_slurm.sh <path-to-charnn> <source-dir>    (as root; ~2-4 min)
# Exit 77 (skipped) when not root or when the Slurm packages cannot be installed.
# CHARNN_SLURM_DIR (default /var/tmp/charnn-slurm) holds the cluster's state.
set -u

CHARNN=${1:?usage: cli_slurm.sh CHARNN SOURCE_DIR}
SRC=${2:?usage: cli_slurm.sh CHARNN SOURCE_DIR}
CHARNN=$(realpath "$CHARNN")
SRC=$(realpath "$SRC")
WORK=$PWD/cli_slurm.d
T0=$(date +%s)
DEADLINE=$((T0 + ${CHARNN_SLURM_TEST_BUDGET:-420})) # every wait gives up by then

PASS=0
FAIL=0
ok() { echo "ok - $*"; PASS=$((PASS + 1)); }
notok() { echo "not ok - $*"; FAIL=$((FAIL + 1)); }
check() {
    local what=$1
    shift
    if "$@"; then ok "$what"; else notok "$what"; fi
}
show() { sed -e 's/^/#   /' "$@" | tail -n 25; }
note() { echo "# [+$(($(date +%s) - T0))s] $*"; }
finish() {
    note "done"
    echo "$PASS passed, $FAIL failed"
    [ "$FAIL" = 0 ]
    exit $?
}

if [ "$(id -u)" != 0 ]; then
    echo "# skipped: the Slurm fixture needs root"
    exit 77
fi
for tool in mpirun h5diff realpath; do
    command -v "$tool" >/dev/null || { notok "$tool is installed"; finish; }
done

rm -rf "$WORK"
mkdir -p "$WORK"
cd "$WORK" || exit 1

# ---- the cluster -------------------------------------------------------------
export CHARNN_SLURM_DIR=${CHARNN_SLURM_DIR:-/var/tmp/charnn-slurm}
export SLURM_CONF=$CHARNN_SLURM_DIR/slurm.conf
# daemons left by an earlier run that was killed before its trap (a ctest timeout):
# stopped by the PIDs that run recorded
bash "$SRC/tests/slurm/down.sh" >"$WORK/down-before.log" 2>&1
bash "$SRC/tests/slurm/up.sh" >"$WORK/up.log" 2>&1
rc=$?
case $rc in
0) ;;
2 | 3)
    show "$WORK/up.log"
    echo "# skipped: not root, or the slurm packages (munge slurmctld slurmd slurm-client) cannot be installed"
    exit 77
    ;;
*)
    show "$WORK/up.log"
    notok "tests/slurm/up.sh brings up munged, slurmctld and slurmd (exit $rc)"
    finish
    ;;
esac
stop_cluster() {
    bash "$SRC/tests/slurm/down.sh" >"$WORK/down.log" 2>&1 || { echo "# down.sh:"; show "$WORK/down.log"; }
}
trap stop_cluster EXIT
ok "tests/slurm/up.sh brings up the cluster ($(grep -o 'up: .*;' "$WORK/up.log" | tr -d ';'))"
NCPU=$(scontrol show node localhost | sed -n 's/.*CPUTot=\([0-9]*\).*/\1/p')
note "node localhost has ${NCPU:-?} CPUs"

# ---- data: the first 200 KB of the default corpus, whole lines ---------------
FULL=
if [ -s "$SRC/data/corpus/fortunes.txt" ]; then
    FULL=$SRC/data/corpus/fortunes.txt
elif [ -d /usr/share/games/fortunes ] && "$SRC/data/build_corpus.sh" "$WORK/fortunes.txt" >/dev/null 2>&1; then
    FULL=$WORK/fortunes.txt
elif [ -s "$SRC/../shared/data/tinyshakespeare.txt" ]; then
    FULL=$SRC/../shared/data/tinyshakespeare.txt
fi
[ -n "$FULL" ] || { notok "a corpus (data/build_corpus.sh or ../shared/data/tinyshakespeare.txt)"; finish; }
DATA=$WORK/corpus.txt
head -c 200000 "$FULL" | sed '$d' >"$DATA"
note "data: $DATA ($(wc -c <"$DATA") bytes of $FULL)"

# Settings of every job. With 2 ranks x 8 streams x 32 steps an epoch of this
# text is about 350 steps: the runs stay inside the first epoch.
export CHARNN DATA CHARNN_HOME=$SRC
export CELL=lstm LAYERS=1 SEQ=32 BATCH=8 LR=2e-3 SEED=7

# ---- helpers -------------------------------------------------------------------
jfield() { scontrol show job -o "$1" 2>/dev/null | head -n1 | tr ' ' '\n' | sed -n "s/^$2=//p"; }
final_state() {
    case $1 in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | PREEMPTED | BOOT_FAIL | DEADLINE) return 0 ;; esac
    return 1
}
# wait_job JOB: until the job is in a final state (0), or the deadline (1)
wait_job() {
    while [ "$(date +%s)" -lt "$DEADLINE" ]; do
        final_state "$(jfield "$1" JobState)" && return 0
        sleep 0.5
    done
    note "gave up waiting for job $1 ($(jfield "$1" JobState))"
    return 1
}
# wait_array JOB: until no task of the array is pending or running
wait_array() {
    while [ "$(date +%s)" -lt "$DEADLINE" ]; do
        [ -z "$(squeue -h -j "$1" 2>/dev/null)" ] && return 0
        sleep 0.5
    done
    note "gave up waiting for array $1"
    return 1
}
# job_ok JOB OUTFILE: COMPLETED with exit code 0:0 (shows the output otherwise)
job_ok() {
    local st ec
    st=$(jfield "$1" JobState)
    ec=$(jfield "$1" ExitCode)
    [ "$st" = COMPLETED ] && [ "$ec" = 0:0 ] && return 0
    echo "#   job $1: JobState=$st ExitCode=$ec Reason=$(jfield "$1" Reason)"
    [ -f "$2" ] && show "$2"
    return 1
}
ckpt_field() { "$CHARNN" inspect "$1" --json 2>/dev/null | sed -nE "s/.*\"$2\":\"?([^,\"}]*).*/\1/p"; }
ckpt_step() { ckpt_field "$1" step; }
# last_step OUTFILE: the last "step N/" progress line of a job's output
last_step() { grep -oE '^step [0-9]+/' "$1" 2>/dev/null | tail -n1 | tr -dc 0-9; }
sbatch_id() { env "$@" | cut -d';' -f1; } # sbatch_id [VAR=value...] sbatch --parsable ...
epoch_s() { date -d "$1" +%s 2>/dev/null || echo 0; }

# ---- submit everything -----------------------------------------------------------
# A: training, 2 ranks x 1 thread through srun --mpi=pmix; B: analysis chained to A
J_TRAIN=$(sbatch_id OUT="$WORK/train" HIDDEN=32 STEPS=60 EVAL_EVERY=20 CHECKPOINT_EVERY=20 LOG_EVERY=10 \
    sbatch --parsable -n 2 -c 1 -o "$WORK/train-%j.out" "$SRC/jobs/train.sbatch")
J_AN=$(sbatch_id RUN="$WORK/train" sbatch --parsable -c 1 --dependency=afterok:"$J_TRAIN" -o "$WORK/analyze-%j.out" \
    "$SRC/jobs/analyze.sbatch")
# C: the same through mpirun inside the allocation
J_MPIRUN=$(sbatch_id OUT="$WORK/mpirun" HIDDEN=32 STEPS=20 EVAL_EVERY=10 CHECKPOINT_EVERY=10 LAUNCHER=mpirun \
    sbatch --parsable -n 2 -c 1 -o "$WORK/mpirun-%j.out" "$SRC/jobs/train.sbatch")
# D: preemption. REF runs straight through; PRE gets SIGUSR1 (batch shell only)
# after its first checkpoint; CANCEL is cancelled with a plain scancel.
PRE_ENV=(HIDDEN=128 STEPS=300 EVAL_EVERY=100 CHECKPOINT_EVERY=50 LOG_EVERY=10)
J_REF=$(sbatch_id "${PRE_ENV[@]}" OUT="$WORK/ref" sbatch --parsable -n 2 -c 1 -o "$WORK/ref-%j.out" "$SRC/jobs/train.sbatch")
J_PRE=$(sbatch_id "${PRE_ENV[@]}" OUT="$WORK/pre" sbatch --parsable -n 2 -c 1 -o "$WORK/pre-%j.out" "$SRC/jobs/train.sbatch")
J_PRE_AN=$(sbatch_id RUN="$WORK/pre" sbatch --parsable -c 1 --dependency=afterok:"$J_PRE" -o "$WORK/pre-analyze-%j.out" \
    "$SRC/jobs/analyze.sbatch")
J_CANCEL=$(sbatch_id "${PRE_ENV[@]}" OUT="$WORK/cancel" sbatch --parsable -n 2 -c 1 -o "$WORK/cancel-%j.out" "$SRC/jobs/train.sbatch")
# E: the sweep, 3 cells x 2 sizes as --array=0-5 (from the script), one CPU each
J_SWEEP=$(sbatch_id OUT="$WORK/sweep" SIZES="16 32" STEPS=40 EVAL_EVERY=20 CHECKPOINT_EVERY=20 LOG_EVERY=20 \
    sbatch --parsable -c 1 -o "$WORK/sweep-%A_%a.out" "$SRC/jobs/sweep.sbatch")
# E2: a sweep task that is signalled requeues itself alone, not the whole array
J_SWQ=$(sbatch_id OUT="$WORK/sweepq" CELLS="lstm gru" SIZES=128 STEPS=300 EVAL_EVERY=100 CHECKPOINT_EVERY=50 \
    LOG_EVERY=10 sbatch --parsable -c 1 --array=0-1 -o "$WORK/sweepq-%A_%a.out" "$SRC/jobs/sweep.sbatch")
# G: the time limit. -t 2 --signal=B:USR1@100 (instead of the script's @300) makes
# the signal due at once; slurmctld sends it at its next check, within about 30 s.
# A model big enough to be still training then; cancelled once it has resumed.
J_TL=$(sbatch_id HIDDEN=384 LAYERS=2 SEQ=16 BATCH=4 STEPS=2700 EVAL_EVERY=0 CHECKPOINT_EVERY=1000 \
    LOG_EVERY=10 OUT="$WORK/timelimit" \
    sbatch --parsable -n 1 -c 1 -t 2 --signal=B:USR1@100 -o "$WORK/timelimit-%j.out" "$SRC/jobs/train.sbatch")
note "submitted: train $J_TRAIN, analyze $J_AN, mpirun $J_MPIRUN, ref $J_REF, pre $J_PRE (+analyze $J_PRE_AN), cancel $J_CANCEL, sweep $J_SWEEP, sweep to requeue $J_SWQ, time limit $J_TL"
for j in "$J_TRAIN" "$J_AN" "$J_MPIRUN" "$J_REF" "$J_PRE" "$J_PRE_AN" "$J_CANCEL" "$J_SWEEP" "$J_SWQ" "$J_TL"; do
    [[ "$j" =~ ^[0-9]+$ ]] || { notok "sbatch accepts every job script (got '$j')"; finish; }
done
ok "sbatch accepts train.sbatch, analyze.sbatch (--dependency=afterok) and sweep.sbatch"

# ---- F: meanwhile, the scripts without Slurm (no SLURM_JOB_ID: mpirun / loops) ----
(
    unset SLURM_CONF
    export HIDDEN=16 STEPS=20 EVAL_EVERY=10 CHECKPOINT_EVERY=10 LOG_EVERY=10 THREADS=1
    OUT=$WORK/local-train NP=2 bash "$SRC/jobs/train.sbatch" >"$WORK/local-train.log" 2>&1
    echo "train $?" >"$WORK/local.rc"
    OUT=$WORK/local-sweep CELLS="rnn gru" SIZES="16" bash "$SRC/jobs/sweep.sbatch" \
        >"$WORK/local-sweep.log" 2>&1
    echo "sweep $?" >>"$WORK/local.rc"
    RUN=$WORK/local-train bash "$SRC/jobs/analyze.sbatch" >"$WORK/local-analyze.log" 2>&1
    echo "analyze $?" >>"$WORK/local.rc"
) &
LOCAL_PID=$!

# ---- signal PRE and cancel CANCEL once each is past its first checkpoint ---------
PRE_OUT=$WORK/pre-$J_PRE.out
CANCEL_OUT=$WORK/cancel-$J_CANCEL.out
TL_OUT=$WORK/timelimit-$J_TL.out
SWQ_OUT=$WORK/sweepq-${J_SWQ}_1.out
pre_sent="" cancel_sent="" cancel_printed="" tl_done="" swq_sent="" polls=0
while [ "$(date +%s)" -lt "$DEADLINE" ] &&
    { [ -z "$pre_sent" ] || [ -z "$cancel_sent" ] || [ -z "$tl_done" ] || [ -z "$swq_sent" ]; }; do
    if [ -z "$swq_sent" ] && grep -q 'ckpt-00000050.h5' "$SWQ_OUT" 2>/dev/null; then
        scancel --batch --signal=USR1 "${J_SWQ}_1"
        swq_sent=$(last_step "$SWQ_OUT")
        note "scancel --batch --signal=USR1 ${J_SWQ}_1 (it had printed step $swq_sent)"
    fi
    if [ -z "$pre_sent" ] && grep -q 'ckpt-00000050.h5' "$PRE_OUT" 2>/dev/null; then
        scancel --batch --signal=USR1 "$J_PRE"
        pre_sent=$(last_step "$PRE_OUT")
        note "scancel --batch --signal=USR1 $J_PRE (it had printed step $pre_sent)"
    fi
    if [ -z "$cancel_sent" ] && grep -q 'ckpt-00000050.h5' "$CANCEL_OUT" 2>/dev/null; then
        cancel_printed=$(last_step "$CANCEL_OUT")
        scancel "$J_CANCEL"
        cancel_sent=1
        note "scancel $J_CANCEL (it had printed step $cancel_printed)"
    fi
    # the time-limit job: once it has resumed and trained on, it has shown what it should
    if [ -z "$tl_done" ] && sed -n '/^resumed from/,$p' "$TL_OUT" 2>/dev/null | grep -q '^step '; then
        scontrol show job -o "$J_TL" >"$WORK/timelimit.job"
        scancel "$J_TL"
        tl_done=1
        note "job $J_TL resumed after its time-limit signal: cancelled it"
    fi
    # a job that ended before its signal: every 2 s (scontrol is slow next to grep)
    if [ $((++polls % 10)) = 0 ]; then
        final_state "$(jfield "$J_TL" JobState)" && [ -z "$tl_done" ] && tl_done=never
        final_state "$(jfield "$J_PRE" JobState)" && [ -z "$pre_sent" ] && pre_sent=never
        final_state "$(jfield "$J_CANCEL" JobState)" && [ -z "$cancel_sent" ] && cancel_sent=never
        [ -z "$swq_sent" ] && [ -z "$(squeue -h -j "$J_SWQ" 2>/dev/null)" ] && swq_sent=never
    fi
    sleep 0.2
done

# ---- A: training -----------------------------------------------------------------------
wait_job "$J_TRAIN"
out=$WORK/train-$J_TRAIN.out
check "train.sbatch: job $J_TRAIN COMPLETED with exit 0" job_ok "$J_TRAIN" "$out"
check "train.sbatch: 2 ranks x 1 thread from SLURM_NTASKS / SLURM_CPUS_PER_TASK through srun --mpi=pmix" \
    grep -q '2 rank(s) x 1 thread(s)' "$out"
check "train.sbatch: charnn ran with --threads 1 --resume auto under srun --mpi=pmix" \
    grep -qE 'run: srun --mpi=pmix .*--threads 1 .*--resume auto' "$out"
check "train.sbatch: progress lines in the output file (step 60/60)" grep -q '^step 60/60 ' "$out"
check "train.sbatch: charnn inspect reads model.h5 (step 60, 2 ranks)" \
    test "$(ckpt_step "$WORK/train/model.h5")" = 60 -a "$(ckpt_field "$WORK/train/model.h5" nranks)" = 2
check "train.sbatch: best.h5 and job-status 'done' in OUT" \
    test -f "$WORK/train/best.h5" -a "$(awk '{print $1}' "$WORK/train/job-status" 2>/dev/null)" = "done"

wait_job "$J_MPIRUN"
out=$WORK/mpirun-$J_MPIRUN.out
check "train.sbatch LAUNCHER=mpirun: job $J_MPIRUN COMPLETED, model.h5 at step 20 of 2 ranks" \
    sh -c "grep -q 'run: mpirun -np 2' '$out' && [ '$(jfield "$J_MPIRUN" JobState)' = COMPLETED ] &&
           [ '$(ckpt_step "$WORK/mpirun/model.h5")' = 20 ] && [ '$(ckpt_field "$WORK/mpirun/model.h5" nranks)' = 2 ]"

# ---- B: analysis chained to A ---------------------------------------------------------
wait_job "$J_AN"
out=$WORK/analyze-$J_AN.out
check "analyze.sbatch: started after training job $J_TRAIN ended (afterok)" \
    test "$(epoch_s "$(jfield "$J_AN" StartTime)")" -ge "$(epoch_s "$(jfield "$J_TRAIN" EndTime)")"
if ! job_ok "$J_AN" "$out"; then
    notok "analyze.sbatch: job $J_AN COMPLETED with exit 0 (charnn trace/analyze: $(grep -m1 -o 'charnn: .*' "$out"))"
else
    ok "analyze.sbatch: job $J_AN COMPLETED with exit 0"
fi
check "analyze.sbatch: RUN/trace.h5 is a charnn trace" \
    sh -c "h5dump -a /format '$WORK/train/trace.h5' 2>/dev/null | grep -q charnn-trace"
check "analyze.sbatch: RUN/analysis.json is JSON" \
    sh -c "[ -s '$WORK/train/analysis.json' ] && { ! command -v python3 >/dev/null || python3 -m json.tool '$WORK/train/analysis.json' >/dev/null; }"
check "analyze.sbatch: RUN/analysis.html is an HTML page" \
    sh -c "[ -s '$WORK/train/analysis.html' ] && grep -qi '<html' '$WORK/train/analysis.html'"

# ---- D: preemption ----------------------------------------------------------------
wait_job "$J_REF"
wait_job "$J_PRE"
out=$WORK/pre-$J_PRE.out
check "preempt: job $J_PRE was signalled during training (after step 50)" \
    test -n "$pre_sent" -a "$pre_sent" != never
stop_step=$(sed -nE 's/^signal 10: checkpointing at step ([0-9]+) and stopping.*/\1/p' "$out" | head -n1)
check "preempt: charnn checkpointed at step ${stop_step:-?} < 300 on SIGUSR1 and exited 75" \
    sh -c "[ -n '$stop_step' ] && [ '$stop_step' -lt 300 ] && grep -q 'Exited with exit code 75' '$out'"
check "preempt: the job requeued itself (scontrol requeue) and restarted once" \
    sh -c "grep -q 'requeueing job $J_PRE' '$out' && [ '$(jfield "$J_PRE" Restarts)' = 1 ]"
check "preempt: the output file kept both runs (--open-mode=append)" \
    sh -c "grep -q 'restart 0,' '$out' && grep -q 'restart 1,' '$out'"
check "preempt: the requeued run resumed from the step-$stop_step checkpoint" \
    grep -qE "^resumed from '.*ckpt-0*${stop_step:-x}\.h5' at step ${stop_step:-x} " "$out"
check "preempt: job $J_PRE COMPLETED with exit 0" job_ok "$J_PRE" "$out"
check "preempt: uninterrupted job $J_REF COMPLETED with exit 0" job_ok "$J_REF" "$WORK/ref-$J_REF.out"
for g in /model /optimizer /ranks; do
    if h5diff "$WORK/ref/model.h5" "$WORK/pre/model.h5" "$g" >"$WORK/h5diff.out" 2>&1; then
        ok "preempt: h5diff ref/model.h5 pre/model.h5 $g: identical"
    else
        notok "preempt: h5diff ref/model.h5 pre/model.h5 $g: differs"
        show "$WORK/h5diff.out"
    fi
done
wait_job "$J_PRE_AN"
check "analyze chained to the preempted job started only after its final end" \
    test "$(epoch_s "$(jfield "$J_PRE_AN" StartTime)")" -ge "$(epoch_s "$(jfield "$J_PRE" EndTime)")" \
    -a "$(jfield "$J_PRE_AN" Restarts)" = 0
check "analyze chained to the preempted job found its finished model" \
    sh -c "! grep -q 'training has not finished' '$WORK/pre-analyze-$J_PRE_AN.out'"

# ---- plain scancel ------------------------------------------------------------------
wait_job "$J_CANCEL"
out=$WORK/cancel-$J_CANCEL.out
check "scancel: job $J_CANCEL was cancelled during training" \
    sh -c "[ -n '$cancel_printed' ] && [ '$(jfield "$J_CANCEL" JobState)' = CANCELLED ]"
check "scancel: a cancelled job is not requeued" test "$(jfield "$J_CANCEL" Restarts)" = 0
latest=$(cat "$WORK/cancel/latest" 2>/dev/null)
lstep=$(ckpt_step "$WORK/cancel/${latest:-none}")
check "scancel: latest checkpoint ($latest, step ${lstep:-?}) >= printed step ${cancel_printed:-?} - 50" \
    sh -c "[ -n '$lstep' ] && [ -n '$cancel_printed' ] && [ '$lstep' -ge $((${cancel_printed:-0} - 50)) ]"

# ---- G: time limit ---------------------------------------------------------------------
wait_job "$J_TL"
out=$TL_OUT
tl_step=$(sed -nE 's/^signal 10: checkpointing at step ([0-9]+) and stopping.*/\1/p' "$out" | head -n1)
check "time limit: --signal=B:USR1@100 reached the batch script, which forwarded it" \
    grep -q 'got SIGUSR1, forwarding it to the ranks' "$out"
check "time limit: charnn checkpointed at step ${tl_step:-?} and the job requeued itself" \
    sh -c "[ -n '$tl_step' ] && grep -q 'requeueing job $J_TL' '$out' &&
           grep -q ' Restarts=[1-9]' '$WORK/timelimit.job'"
check "time limit: the requeued job resumed from that checkpoint" \
    grep -qE "^resumed from '.*ckpt-0*${tl_step:-x}\.h5' at step ${tl_step:-x} " "$out"
[ -n "$tl_step" ] && grep -q "^resumed from" "$out" || show "$out"

# ---- E: sweep ---------------------------------------------------------------------
wait_array "$J_SWEEP"
states=$(scontrol show job -o "$J_SWEEP" 2>/dev/null | sed -n 's/.*ArrayTaskId=\([0-9]*\) .*JobState=\([A-Z_]*\).*/\1 \2/p' | sort -n)
check "sweep: array tasks 0-5 all COMPLETED" \
    test "$(echo "$states" | grep -c ' COMPLETED$')" = 6
[ "$(echo "$states" | grep -c ' COMPLETED$')" = 6 ] || echo "$states" | sed 's/^/#   /'
sum=$WORK/sweep/summary.tsv
check "sweep: summary.tsv lists the 6 tasks, all done" \
    sh -c "[ \$(awk -F'\t' 'NR > 1 && \$5 == \"done\"' '$sum' | wc -l) = 6 ]"
check "sweep: summary.tsv has every cell x size (rnn/lstm/gru x 16/32)" \
    sh -c "[ \$(awk -F'\t' 'NR > 1 {print \$3 \"-\" \$4}' '$sum' | sort -u | wc -l) = 6 ]"
check "sweep: summary.tsv is sorted by best validation loss, which matches charnn inspect" \
    sh -c "awk -F'\t' 'NR > 1 {print \$1}' '$sum' | sort -c -g &&
           [ \"\$(awk -F'\t' 'NR == 2 {print \$1}' '$sum')\" = \"\$('$CHARNN' inspect \"\$(awk -F'\t' 'NR == 2 {print \$7}' '$sum')/best.h5\" --json | sed -nE 's/.*\"best_val_loss\":([^,]*).*/\1/p')\" ]"
[ -f "$sum" ] && show "$sum"
check "sweep: one run directory per task with model.h5" \
    test "$(ls "$WORK"/sweep/*/model.h5 2>/dev/null | wc -l)" = 6
check "sweep: report.html (charnn report) overlays the 6 runs in its legend and table" \
    sh -c "[ \$(grep -c '<tr class=\"run-row\">' '$WORK/sweep/report.html') = 6 ] &&
           [ \$(grep -o '<li><span class=\"swatch\"' '$WORK/sweep/report.html' | wc -l) = 6 ]"

# ---- E2: requeue of one sweep task ---------------------------------------------------
wait_array "$J_SWQ"
task_info() { scontrol show job -o "$J_SWQ" 2>/dev/null | grep " ArrayTaskId=$1 " | tr ' ' '\n' | sed -n "s/^$2=//p"; }
check "sweep requeue: task 1 was signalled during training" test -n "$swq_sent" -a "$swq_sent" != never
check "sweep requeue: task 1 requeued itself as ${J_SWQ}_1, resumed and COMPLETED (restarts 1)" \
    sh -c "grep -q 'requeueing job ${J_SWQ}_1:' '$SWQ_OUT' && grep -q '^resumed from' '$SWQ_OUT' &&
           [ '$(task_info 1 JobState)' = COMPLETED ] && [ '$(task_info 1 Restarts)' = 1 ]"
check "sweep requeue: task 0 was not requeued with it and COMPLETED" \
    test "$(task_info 0 JobState)" = COMPLETED -a "$(task_info 0 Restarts)" = 0
check "sweep requeue: summary.tsv has both tasks done" \
    sh -c "[ \$(awk -F'\t' 'NR > 1 && \$5 == \"done\"' '$WORK/sweepq/summary.tsv' | wc -l) = 2 ]"

# ---- F: without Slurm ------------------------------------------------------------
while kill -0 "$LOCAL_PID" 2>/dev/null && [ "$(date +%s)" -lt "$DEADLINE" ]; do sleep 0.5; done
kill -0 "$LOCAL_PID" 2>/dev/null && kill "$LOCAL_PID"
wait "$LOCAL_PID" 2>/dev/null
lrc() { awk -v w="$1" '$1 == w {print $2}' "$WORK/local.rc" 2>/dev/null; }
check "no Slurm: NP=2 bash jobs/train.sbatch runs mpirun -np 2, exits 0, model.h5 of 2 ranks" \
    sh -c "[ '$(lrc train)' = 0 ] && grep -q 'run: mpirun -np 2' '$WORK/local-train.log' &&
           [ '$(ckpt_field "$WORK/local-train/model.h5" nranks)' = 2 ]"
[ "$(lrc train)" = 0 ] || show "$WORK/local-train.log"
check "no Slurm: bash jobs/sweep.sbatch loops over its grid and writes summary.tsv" \
    sh -c "[ '$(lrc sweep)' = 0 ] && [ \$(awk -F'\t' 'NR > 1 && \$5 == \"done\"' '$WORK/local-sweep/summary.tsv' | wc -l) = 2 ]"
[ "$(lrc sweep)" = 0 ] || show "$WORK/local-sweep.log"
check "no Slurm: bash jobs/analyze.sbatch exits 0 and writes trace.h5, analysis.json, analysis.html" \
    sh -c "[ '$(lrc analyze)' = 0 ] && [ -s '$WORK/local-train/trace.h5' ] && [ -s '$WORK/local-train/analysis.json' ] && [ -s '$WORK/local-train/analysis.html' ]"
[ "$(lrc analyze)" = 0 ] || show "$WORK/local-analyze.log"

# ---- the fixture stops by PID ------------------------------------------------------
trap - EXIT
pids=$(cat "$CHARNN_SLURM_DIR"/pids/*.pid 2>/dev/null | tr '\n' ' ')
stop_cluster
alive=""
for p in $pids; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
check "tests/slurm/down.sh stops munged, slurmctld and slurmd (pids $pids)" test -z "$alive"
finish
