# Shared by the checkpoint tests (cli_resume.sh, cli_ckpt_faults.sh): TAP-like
# ok/not ok counters, a data file (tinyshakespeare when present, otherwise a
# generated text in $WORK), and a time-limited runner. Needs SRC and WORK set.
# shellcheck shell=bash
PASS=0
FAIL=0
ok() { echo "ok - $*"; PASS=$((PASS + 1)); }
notok() { echo "not ok - $*"; FAIL=$((FAIL + 1)); }
# check "description" command...: passes when the command exits 0
check() {
    local what=$1
    shift
    if "$@"; then ok "$what"; else notok "$what"; fi
}
# show a file's tail under a failed check
show() { sed -e 's/^/#   /' "$@" | tail -n 15; }

# ---- data ---------------------------------------------------------------
# ../shared/data beside the repository; without it a generated text does.
DATA=$SRC/../shared/data/tinyshakespeare.txt
if [ ! -s "$DATA" ]; then
    DATA=$WORK/text.txt
    awk 'BEGIN { srand(7); split("the of and to a in that is was he for it with as his on be at by had not are but from or have an they which one you were her all she there would their we him been has when who will more no if out so said what up its about into than them can only other new some could time these two may then do first any my now such like our over man me even most made after also did many before must through back years where much your way well down should because each just those people how too little state good very make world still own see men work long get here between both life being under never day same another know while last might us great old year off come since against go came right used take three", W, " ")
    nw = 0; for (k in W) nw++
    for (i = 0; i < 6000; i++) {
        line = ""
        n = 4 + int(rand() * 8)
        for (j = 0; j < n; j++) line = line (j ? " " : "") W[1 + int(rand() * nw)]
        print toupper(substr(line, 1, 1)) substr(line, 2) "."
    }
}' >"$DATA"
fi
echo "# data: $DATA"

# run a command with a time limit (seconds); the exit status is the command's
run_limited() {
    local limit=$1
    shift
    timeout -k 10 "$limit" "$@"
}
