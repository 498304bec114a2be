#!/usr/bin/env bash
# Inputs and run directories that must fail cleanly (issue 19): one run per
# --out (a second one is refused at once naming the holder; a lock left by
# kill -9 never blocks the resume), FIFOs and devices refused at once by every
# reader, a flipped bit in a prepared corpus's /vocab refused as damaged, a
# damaged HDF5 file never read as text, prepare never overwrites its input,
# and the temporaries a kill leaves (latest.tmp.<pid> too) are removed.
# Every failure: exit 1 and one exact line on stderr.
#
#   bash tests/cli_io_faults.sh <path-to-charnn> <source-dir>
set -u

CHARNN=${1:?usage: cli_io_faults.sh CHARNN SOURCE_DIR}
SRC=${2:?usage: cli_io_faults.sh CHARNN SOURCE_DIR}
WORK=$PWD/cli_io_faults.d
rm -rf "$WORK"
mkdir -p "$WORK"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# shellcheck source=tests/ckpt_testlib.sh
. "$SRC/tests/ckpt_testlib.sh"

# fails_with NAME LIMIT EXPECTED_STDERR COMMAND...: exit 1 within LIMIT
# seconds and exactly EXPECTED_STDERR (one line) on stderr
fails_with() {
    local name=$1 limit=$2 want=$3
    shift 3
    local t0 t1 rc
    t0=$(date +%s.%N)
    timeout -k 5 "$limit" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
    rc=$?
    t1=$(date +%s.%N)
    check "$name: exit 1 (got $rc) after $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')s" [ $rc = 1 ]
    if [ "$(cat "$WORK/$name.err")" = "$want" ]; then
        ok "$name: stderr is '$want'"
    else
        notok "$name: stderr is not '$want'"
        show "$WORK/$name.err"
    fi
}

SMALL=(--data "$DATA" --cell lstm --layers 1 --hidden 32 --seq 16 --batch 4 --threads 1
       --log-every 1 --eval-every 0 --no-progress)

# ---- 1. one run per --out ---------------------------------------------------
L=$WORK/locked
"$CHARNN" train "${SMALL[@]}" --hidden 256 --steps 100000 --checkpoint-every 5 --out "$L" \
    >"$WORK/holder.out" 2>"$WORK/holder.err" &
holder=$!
for _ in $(seq 1 300); do
    grep -q '^step ' "$WORK/holder.out" 2>/dev/null && break
    kill -0 "$holder" 2>/dev/null || break
    sleep 0.1
done
check "the first run is training" grep -q '^step ' "$WORK/holder.out"
snapshot() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 -r md5sum); }
host=$(hostname)
# the first run keeps writing; the second must not: compare what it would touch
want="charnn: run directory '$L' is in use by another charnn run (pid $holder on host $host)"
ls -la --time-style=+%s.%N "$L" >"$WORK/lock.before"
fails_with second-run 30 "$want" "$CHARNN" train "${SMALL[@]}" --steps 10 --out "$L"
fails_with second-run-resume 30 "$want" "$CHARNN" train "${SMALL[@]}" --steps 10 --out "$L" \
    --resume auto
check "the second runs wrote no metrics of their own (one header in metrics.jsonl)" \
    [ "$(grep -c '"step":1,' "$L/metrics.jsonl")" = 1 ]
check "the lock file still names the first run" grep -qx "$holder $host" "$L/.charnn.lock"
if command -v mpiexec >/dev/null; then
    # 2 ranks: rank 0 is refused, rank 1 must not hang; mpiexec adds its own
    # report after charnn's line
    timeout -k 5 60 mpiexec -np 2 --oversubscribe "$CHARNN" train "${SMALL[@]}" --steps 10 \
        --out "$L" >"$WORK/second-run-mpi.out" 2>"$WORK/second-run-mpi.err"
    rc=$?
    check "second-run-mpi: 2 ranks end with exit 1 (got $rc), not a hang" [ $rc = 1 ]
    check "second-run-mpi: the first line of stderr is '$want'" \
        [ "$(head -n 1 "$WORK/second-run-mpi.err")" = "$want" ]
    check "second-run-mpi: charnn wrote one line" \
        [ "$(grep -c '^charnn' "$WORK/second-run-mpi.err")" = 1 ]
fi
# kill -9 the holder: the kernel drops its lock, and --resume auto goes on
for _ in $(seq 1 300); do
    [ -e "$L/latest" ] && break
    sleep 0.1
done
kill -KILL "$holder"
wait "$holder" 2>/dev/null
timeout -k 5 120 "$CHARNN" train "${SMALL[@]}" --hidden 256 --steps 12 --checkpoint-every 5 \
    --out "$L" --resume auto >"$WORK/after-kill.out" 2>"$WORK/after-kill.err"
rc=$?
check "after kill -9 of the holder, --resume auto exits 0 (got $rc)" [ $rc = 0 ]
check "it resumed from a checkpoint of the killed run" grep -q "^resumed from '$L/" \
    "$WORK/after-kill.out"
check "the lock file names the last run now, not the killed one" \
    bash -c "! grep -q '^$holder ' '$L/.charnn.lock'"
# a run that fails to start leaves no directory it created behind
fails_with missing-data 30 "charnn: cannot open '$WORK/no-such.txt': No such file or directory" \
    "$CHARNN" train "${SMALL[@]/$DATA/$WORK/no-such.txt}" --steps 2 --out "$WORK/never/made"
check "the failed start removed the run directory it had created" [ ! -e "$WORK/never/made" ]

# ---- 2. temporaries left by a kill --------------------------------------------
T=$WORK/tmpfiles
timeout -k 5 120 "$CHARNN" train "${SMALL[@]}" --steps 4 --checkpoint-every 2 --out "$T" \
    >/dev/null 2>&1
sleep 0 &
dead=$!
wait $dead
printf 'ckpt-00000002.h5\n' >"$T/latest.tmp.$dead"
printf 'half a checkpoint' >"$T/ckpt-00000004.h5.tmp.$dead"
printf 'half a model' >"$T/model.h5.tmp.$dead"
printf 'a live writer' >"$T/latest.tmp.$$"
timeout -k 5 120 "$CHARNN" train "${SMALL[@]}" --steps 6 --checkpoint-every 2 --out "$T" \
    --resume auto >"$WORK/tmpfiles.out" 2>"$WORK/tmpfiles.err"
rc=$?
check "resume next to stale temporaries exits 0 (got $rc)" [ $rc = 0 ]
for f in "latest.tmp.$dead" "ckpt-00000004.h5.tmp.$dead" "model.h5.tmp.$dead"; do
    check "the stale $f is removed" [ ! -e "$T/$f" ]
    check "stderr says 'charnn: removed '$T/$f', left by an interrupted write'" \
        grep -qxF "charnn: removed '$T/$f', left by an interrupted write" "$WORK/tmpfiles.err"
done
check "a temporary whose writer is alive (this shell) is kept" [ -e "$T/latest.tmp.$$" ]

# ---- 3. FIFOs and devices ---------------------------------------------------------
F=$WORK/fifo
mkfifo "$F"
fails_with train-fifo 10 "charnn: '$F' is a FIFO, not a regular file" \
    "$CHARNN" train "${SMALL[@]/$DATA/$F}" --steps 2 --out "$WORK/r-fifo"
fails_with train-devzero 10 "charnn: '/dev/zero' is a character device, not a regular file" \
    "$CHARNN" train "${SMALL[@]/$DATA//dev/zero}" --steps 2 --out "$WORK/r-zero"
fails_with prepare-fifo 10 "charnn: '$F' is a FIFO, not a regular file" \
    "$CHARNN" prepare "$F" --out "$WORK/p.h5"
fails_with prepare-devzero 10 "charnn: '/dev/zero' is a character device, not a regular file" \
    "$CHARNN" prepare /dev/zero --out "$WORK/p.h5"
check "prepare from a FIFO left no output or temporary" \
    bash -c "! ls '$WORK'/p.h5* >/dev/null 2>&1"
fails_with inspect-fifo 10 "charnn: '$F' is a FIFO, not a regular file" "$CHARNN" inspect "$F"
fails_with resume-fifo 10 "charnn: '$F' is a FIFO, not a regular file" \
    "$CHARNN" train "${SMALL[@]}" --steps 2 --out "$WORK/r-fifo2" --resume "$F"
fails_with analyze-fifo 10 "charnn analyze: '$F' is a FIFO, not a regular file" "$CHARNN" analyze "$F"
fails_with eval-fifo 10 "charnn: '$F' is a FIFO, not a regular file" \
    "$CHARNN" eval --model "$T/model.h5" --data "$F"
fails_with eval-devzero 10 "charnn: '/dev/zero' is a character device, not a regular file" \
    "$CHARNN" eval --model "$T/model.h5" --data /dev/zero
fails_with train-dir 10 "charnn: '$WORK' is a directory, not a regular file" \
    "$CHARNN" train "${SMALL[@]/$DATA/$WORK}" --steps 2 --out "$WORK/r-dir"

# ---- 4. a flipped bit in a prepared corpus --------------------------------------
C=$WORK/corpus.h5
printf 'the quick brown fox jumps over the lazy dog\n%.0s' $(seq 1 200) >"$WORK/fox.txt"
"$CHARNN" prepare "$WORK/fox.txt" --out "$C" >/dev/null 2>&1
check "prepare of the fox text exits 0" [ -s "$C" ]
# the byte offset of 'z' in /vocab: the symbols are uint32 little-endian, ascending
vocab_z=$(grep -obUaP 'x\x00\x00\x00y\x00\x00\x00z\x00\x00\x00' "$C" | head -n 1 | cut -d: -f1)
check "found /vocab's 'x y z' in the file" [ -n "$vocab_z" ]
cp "$C" "$WORK/flipped.h5"
# 'z' (0x7a) -> '{' (0x7b): every z the model reads or writes would become {
printf '{' | dd of="$WORK/flipped.h5" bs=1 seek=$((vocab_z + 8)) count=1 conv=notrunc status=none
fails_with train-flipped-vocab 60 \
    "charnn: '$WORK/flipped.h5' is damaged: checksum mismatch in /vocab" \
    "$CHARNN" train "${SMALL[@]/$DATA/$WORK/flipped.h5}" --steps 2 --out "$WORK/r-flip"
check "the refused run wrote no model" [ ! -e "$WORK/r-flip/model.h5" ]
fails_with eval-flipped-vocab 60 \
    "charnn: '$WORK/flipped.h5' is damaged: checksum mismatch in /vocab" \
    "$CHARNN" eval --model "$T/model.h5" --data "$WORK/flipped.h5"
# a damaged HDF5 file is never read as text and never gets a --bytes hint
head -c 4000 "$C" >"$WORK/truncated.h5"
fails_with train-truncated-corpus 60 "charnn: '$WORK/truncated.h5' is damaged: the file is truncated" \
    "$CHARNN" train "${SMALL[@]/$DATA/$WORK/truncated.h5}" --steps 2 --out "$WORK/r-trunc"
cp "$C" "$WORK/badsig.h5"
printf 'X' | dd of="$WORK/badsig.h5" bs=1 seek=6 count=1 conv=notrunc status=none
fails_with train-damaged-signature 60 "charnn: '$WORK/badsig.h5' is damaged: its HDF5 signature is broken" \
    "$CHARNN" train "${SMALL[@]/$DATA/$WORK/badsig.h5}" --steps 2 --out "$WORK/r-sig"
check "no message about a damaged corpus suggests --bytes" \
    bash -c "! cat '$WORK'/*flipped*.err '$WORK'/*truncated*.err '$WORK'/*signature*.err | grep -q -- --bytes"

# ---- 5. prepare never overwrites its input --------------------------------------
cp "$WORK/fox.txt" "$WORK/in.txt"
sum_before=$(md5sum <"$WORK/in.txt")
fails_with prepare-over-input 10 \
    "charnn: --out '$WORK/in.txt' is the input '$WORK/in.txt': preparing would overwrite it" \
    "$CHARNN" prepare "$WORK/in.txt" --out "$WORK/in.txt"
ln "$WORK/in.txt" "$WORK/same-inode.txt"
fails_with prepare-over-hardlink 10 \
    "charnn: --out '$WORK/same-inode.txt' is the input '$WORK/in.txt': preparing would overwrite it" \
    "$CHARNN" prepare "$WORK/fox.txt" "$WORK/in.txt" --out "$WORK/same-inode.txt"
check "the input is intact" [ "$(md5sum <"$WORK/in.txt")" = "$sum_before" ]
check "no temporary is left beside it" bash -c "! ls '$WORK'/*.tmp.* >/dev/null 2>&1"

# ---- 6. every dataset of a corpus and a trace is checksummed ---------------------
# the datasets of an HDF5 file and, of those, the ones with fletcher32
count_datasets() { h5dump -p -H "$1" | grep -c '^ *DATASET '; }
count_fletcher() { h5dump -p -H "$1" | grep -c 'CHECKSUM FLETCHER32'; }
n=$(count_datasets "$C")
check "prepared corpus: all $n datasets carry fletcher32 ($(count_fletcher "$C"))" \
    [ "$n" -ge 2 -a "$(count_fletcher "$C")" = "$n" ]
TR=$WORK/trace.h5
timeout -k 5 120 "$CHARNN" trace --model "$T/model.h5" --data "$WORK/fox.txt" --max-chars 300 \
    --grads --grad-chunk 20 --grad-chunks 3 --out "$TR" >/dev/null 2>"$WORK/trace.err"
rc=$?
check "trace exits 0 (got $rc)" [ $rc = 0 ]
n=$(count_datasets "$TR")
check "trace: all $n datasets carry fletcher32 ($(count_fletcher "$TR"))" \
    [ "$n" -ge 8 -a "$(count_fletcher "$TR")" = "$n" ]
# flip a byte inside the first chunk of /layer0/h (located with h5py)
# Debian's python3-h5py belongs to /usr/bin/python3, whatever else is on PATH
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
if "$PY" -c 'import h5py' 2>/dev/null; then
    off=$("$PY" -c 'import h5py, sys
d = h5py.File(sys.argv[1], "r")["/layer0/h"]
c = d.id.get_chunk_info(0)
print(c.byte_offset + c.size // 2)' "$TR")
    cp "$TR" "$WORK/trace-flipped.h5"
    b=$(od -An -tu1 -j "$off" -N1 "$TR" | tr -d ' \n')
    printf "$(printf '\\%03o' $((b ^ 0x10)))" |
        dd of="$WORK/trace-flipped.h5" bs=1 seek="$off" count=1 conv=notrunc status=none
    fails_with analyze-flipped-trace 60 \
        "charnn analyze: '$WORK/trace-flipped.h5' is damaged: checksum mismatch in /layer0/h" \
        "$CHARNN" analyze "$WORK/trace-flipped.h5"
else
    echo "# skipped the damaged-trace case: python3-h5py is not installed"
fi
head -c 3000 "$TR" >"$WORK/trace-truncated.h5"
fails_with analyze-truncated-trace 60 \
    "charnn analyze: '$WORK/trace-truncated.h5' is damaged: the file is truncated" \
    "$CHARNN" analyze "$WORK/trace-truncated.h5"

echo "# ${SECONDS}s elapsed"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
