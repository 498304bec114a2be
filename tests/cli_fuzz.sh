#!/usr/bin/env bash
# Fuzz the readers: damaged checkpoints, prepared corpora and traces (truncated at
# many offsets, single bit flips, overwritten bytes), files of the wrong kind (a trace
# given as a model, a corpus as a trace, ...), empty files, FIFOs, directories and
# missing files, fed to eval, sample, inspect, train --resume, train --data, trace and
# analyze. Every case must end
#   - without a crash: no exit status >= 128, no sanitizer report;
#   - without a hang: within the timeout (FIFOs included);
#   - with exactly one line on stderr that names the file;
#   - non-zero, except a bit flip, overwrite or cut of the unused tail that left the file as
#     good as before:
#     exit 0 is accepted there only when stdout (for train: the trained model's
#     `inspect --json`) equals that of the undamaged file.
# The cases come from a seed, so a failure reproduces: each failing case prints its
# number and the command to run it again.
#
# Usage: bash tests/cli_fuzz.sh PATH/TO/charnn SOURCE_DIR
# Environment: FUZZ_SEED (default 1), FUZZ_CASES (default 300), FUZZ_ONLY (one case
# number), FUZZ_TIMEOUT (seconds per case, default 30; FIFOs 10).
# The sanitizer build runs it too (see README, "Reliability"):
#   cmake -S . -B build-asan -DCHARNN_SANITIZE=ON && cmake --build build-asan -j2 &&
#   bash tests/cli_fuzz.sh build-asan/charnn .
set -u
command -v python3 > /dev/null || { echo "skipped: the driver needs python3"; exit 77; }
charnn=$(realpath "$1")
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

work=$PWD/cli_fuzz_work
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
# HDF5 1.10 loses a few hundred bytes inside itself when a read fails its checksum (a
# direct leak whose only frame is libhdf5): not charnn's memory, so not a finding.
# Leaks anywhere else are.
echo "leak:libhdf5" > lsan.supp
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$work/lsan.supp:print_suppressions=0}

show() { sed -n '1,8s/^/    # /p' "$1"; }
setup() {
  "$charnn" generate --chars 20000 --seed 4 > text.txt &&
  "$charnn" train --data text.txt --out run --cell gru --layers 1 --hidden 16 --seq 16 --batch 4 \
    --steps 3 --eval-every 0 --no-progress > train.out &&
  cp run/model.h5 model.h5 &&
  "$charnn" prepare text.txt --out corpus.h5 > prepare.out &&
  "$charnn" trace --model model.h5 --data text.txt --split val --max-chars 200 --out trace.h5 \
    > trace.out
}
if ! setup 2> setup.err; then
  echo "not ok - set up the model, corpus and trace"; show setup.err; exit 1
fi

exec python3 - "$charnn" <<'EOF'
import os, random, shutil, stat, subprocess, sys

charnn = sys.argv[1]
seed = int(os.environ.get("FUZZ_SEED", "1"))
n_cases = int(os.environ.get("FUZZ_CASES", "300"))
only = os.environ.get("FUZZ_ONLY")
timeout = float(os.environ.get("FUZZ_TIMEOUT", "30"))
top = os.getcwd()
originals = {"model": "model.h5", "corpus": "corpus.h5", "trace": "trace.h5", "text": "text.txt"}
data = {k: open(v, "rb").read() for k, v in originals.items()}

# The commands, by the kind of file each reads; F is the file under test, run in a
# fresh directory holding good copies of the other inputs.
tiny = ["--threads", "1", "--no-progress", "--eval-every", "0", "--seq", "16", "--batch", "4"]
commands = {
    "model": {
        "eval": ["eval", "--model", "F", "--data", "text.txt", "--threads", "1"],
        "sample": ["sample", "--model", "F", "--length", "20", "--seed", "1"],
        "inspect": ["inspect", "F"],
        "resume": ["train", "--data", "text.txt", "--out", "out", "--resume", "F", "--steps", "4"] + tiny,
        "trace": ["trace", "--model", "F", "--data", "text.txt", "--max-chars", "50", "--out", "t.h5"],
    },
    "corpus": {
        "train-data": ["train", "--data", "F", "--out", "out", "--cell", "gru", "--layers", "1",
                       "--hidden", "16", "--steps", "2"] + tiny,
        "eval-data": ["eval", "--model", "good_model.h5", "--data", "F", "--threads", "1"],
    },
    "trace": {
        "analyze": ["analyze", "F"],
    },
}
slots = [(kind, name) for kind in commands for name in commands[kind]]

def mutations(rng, kind):
    """One mutation for a file of this kind: (label, how)."""
    size = len(data[kind])
    r = rng.random()
    if r < 0.35:
        k = rng.choice([0, 1, 7, 8, 64, 512, 1024, 2048, 4096, size // 2, size - 1,
                        rng.randrange(size), rng.randrange(size)])
        return ("truncate@%d" % k, ("truncate", k))
    if r < 0.65:
        off = rng.randrange(size)
        return ("bitflip@%d.%d" % (off, off % 8), ("flip", off, rng.randrange(8)))
    if r < 0.75:
        off = rng.randrange(size)
        return ("overwrite@%d+16" % off, ("overwrite", off, rng.getrandbits(128)))
    if r < 0.87:
        # text is a valid --data (only a model or a trace is the wrong kind there)
        other = rng.choice([k for k in originals if k != kind and not (kind == "corpus" and k == "text")])
        return ("swap:%s" % other, ("swap", other))
    return rng.choice([("empty", ("empty",)), ("fifo", ("fifo",)), ("directory", ("dir",)),
                       ("missing", ("missing",))])

def make(path, kind, how):
    op = how[0]
    if op == "truncate":
        open(path, "wb").write(data[kind][:how[1]])
    elif op == "flip":
        b = bytearray(data[kind]); b[how[1]] ^= 1 << how[2]; open(path, "wb").write(b)
    elif op == "overwrite":
        b = bytearray(data[kind]); off = how[1]
        junk = how[2].to_bytes(16, "little")
        b[off:off + 16] = junk[:len(b[off:off + 16])]
        open(path, "wb").write(b)
    elif op == "swap":
        open(path, "wb").write(data[how[1]])
    elif op == "empty":
        open(path, "wb").close()
    elif op == "fifo":
        os.mkfifo(path)
    elif op == "dir":
        os.mkdir(path)

def run(d, argv, t):
    try:
        p = subprocess.run([charnn] + argv, cwd=d, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, timeout=t)
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        return None, e.stdout or b"", e.stderr or b""

def workdir(name):
    d = os.path.join(top, name)
    shutil.rmtree(d, ignore_errors=True)
    os.mkdir(d)
    for src, dst in (("text.txt", "text.txt"), ("model.h5", "good_model.h5")):
        shutil.copy(os.path.join(top, src), os.path.join(d, dst))
    return d

def trained_model(d):
    """inspect --json of the model a train case wrote, without its paths"""
    rc, out, _ = run(d, ["inspect", "out/model.h5", "--json"], timeout)
    return out if rc == 0 else None

# the undamaged result of every command, for the bit flips that change nothing
baseline = {}
for kind, name in slots:
    d = workdir("base")
    fname = "f" + os.path.splitext(originals[kind])[1]
    shutil.copy(os.path.join(top, originals[kind]), os.path.join(d, fname))
    argv = [fname if a == "F" else a for a in commands[kind][name]]
    rc, out, err = run(d, argv, timeout)
    if rc != 0:
        print("not ok - baseline %s on an undamaged %s: exit %s: %s" % (name, kind, rc, err[:300]))
        sys.exit(1)
    baseline[name] = trained_model(d) if argv[0] == "train" else out

rng = random.Random(seed)
cases = []
for i in range(n_cases):
    kind, name = rng.choice(slots)
    label, how = mutations(rng, kind)
    cases.append((i, kind, name, label, how))

fails, counts = [], {}
for i, kind, name, label, how in cases:
    if only is not None and str(i) != only:
        continue
    d = workdir("case")
    # keep the extension of the kind the command expects: a corpus is recognised by
    # content, not by name, and a model named .h5 must still be refused if damaged
    fname = "f" + os.path.splitext(originals[kind])[1]
    make(os.path.join(d, fname), kind, how)
    argv = [fname if a == "F" else a for a in commands[kind][name]]
    t = 10.0 if how[0] == "fifo" else timeout
    rc, out, err = run(d, argv, t)
    text = err.decode("utf-8", "replace")
    lines = text.splitlines()
    why = None
    if rc is None:
        why = "hang: no exit within %gs" % t
    elif rc < 0 or rc >= 128:
        why = "crash: exit status %d" % (rc if rc >= 0 else 128 - rc)
    elif "Sanitizer" in text or "runtime error:" in text:
        why = "sanitizer report"
    elif rc == 0:
        # a flip or overwrite in a byte nobody reads, or a cut in the unused tail
        # that HDF5's core driver leaves after the end of allocation (up to about
        # 1 KiB in a checkpoint): harmless only when the result is the undamaged one
        harmless = how[0] in ("flip", "overwrite", "truncate") and (
            (trained_model(d) if argv[0] == "train" else out) == baseline[name])
        if not harmless:
            why = "exit 0 on a damaged input (output differs from the undamaged file's)"
    elif len(lines) != 1:
        why = "%d lines on stderr" % len(lines)
    elif fname not in lines[0]:
        why = "the message does not name the file"
    key = "%s/%s" % (name, label.split("@")[0])
    c = counts.setdefault(key, [0, 0])
    c[0] += 1
    if why:
        c[1] += 1
        fails.append((i, name, kind, label, why, rc, lines[:3]))
        print("not ok - case %d: %s on a %s %s: %s" % (i, name, label, kind, why))
        for l in lines[:3]:
            print("    # %s" % l[:200])
        print("    # again: FUZZ_SEED=%d FUZZ_CASES=%d FUZZ_ONLY=%d bash tests/cli_fuzz.sh %s SRC"
              % (seed, n_cases, i, charnn))
    else:
        print("ok - case %d: %s on a %s %s (exit %d)" % (i, name, label, kind, rc))

ran = sum(c[0] for c in counts.values())
print("cli_fuzz: seed %d, %d cases, %d failed" % (seed, ran, len(fails)))
for key in sorted(counts):
    if counts[key][1]:
        print("    %-28s %3d of %3d failed" % (key, counts[key][1], counts[key][0]))
sys.exit(1 if fails else 0)
EOF
