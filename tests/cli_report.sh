#!/usr/bin/env bash
# `charnn report`: the numbers it gives equal the metrics file's, computed here
# independently (python3) from a metrics.jsonl written by hand with a resume that
# goes back to an earlier checkpoint, sessions told apart by their time fields, a
# torn line, skipped steps and balance moves; the same on real runs (one resumed
# from an older checkpoint); --json parses; bad input gives exact errors; and the
# --html page of several runs renders in headless Chromium with its plots, legend
# and ranking table, nothing fetched from outside.
#   bash tests/cli_report.sh PATH/TO/charnn SOURCE_DIR
# CHARNN_UPDATE_SCREENSHOT=1 also copies the screenshot to SOURCE_DIR/docs/report.png.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/tap.sh"
charnn=$1
src=$2
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}

work=$PWD/cli_report_work
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1

into() { local out=$1 err=$2; shift 2; "$@" > "$out" 2> "$err"; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" = 0 ]; exit $?; }

# ---- a metrics file written by hand --------------------------------------
# session 1 starts at Unix time T0 and logs steps 10..40 (a skip at 25, a balance move at
# 30), then dies writing a line; session 2 resumes from the checkpoint of step 20, so
# steps 30 and 40 are logged again (and the skip at 25 and the move at 30 are gone
# unless logged again: the skip is, the move is not); session 3 resumes from step 50
# exactly (no step repeats: only its time fields show it is a new session).
T0=1700000000
mkdir -p hand
cat > hand/metrics.jsonl <<EOF
{"type":"train","step":10,"epoch":0,"loss":3.5,"bpc":5.05,"grad_norm":0.5,"lr":0.002,"chars_per_s":1000.0,"tokens_seen":640,"time":$((T0+2)),"elapsed":2.000}
{"type":"val","step":20,"val_loss":3.30,"val_bpc":4.76,"val_ppl":27.1,"tokens":100}
{"type":"train","step":20,"epoch":0,"loss":3.2,"bpc":4.62,"grad_norm":0.8,"lr":0.002,"chars_per_s":500.0,"tokens_seen":1280,"time":$((T0+4)),"elapsed":4.000}
{"type":"skip","step":25,"grad_norm":nan}
{"type":"balance","step":30,"streams":[3,5],"streams_per_s":[10.0,16.5]}
{"type":"train","step":30,"epoch":0,"loss":2.9,"bpc":4.18,"grad_norm":1.5,"lr":0.002,"chars_per_s":800.0,"tokens_seen":1920,"time":$((T0+5)),"elapsed":5.000}
{"type":"val","step":40,"val_loss":2.70,"val_bpc":3.90,"val_ppl":14.9,"tokens":100}
{"type":"train","step":40,"epoch":0,"loss":2.6,"bpc":3.75,"grad_norm":2.5,"lr":0.002,"chars_per_s":400.0,"tokens_seen":2560,"time":$((T0+7)),"elapsed":7.000}
{"type":"train","step":4
{"type":"skip","step":25,"grad_norm":inf}
{"type":"train","step":30,"epoch":0,"loss":2.95,"bpc":4.26,"grad_norm":1.4,"lr":0.001,"chars_per_s":900.0,"tokens_seen":1920,"time":$((T0+101)),"elapsed":1.000}

{"type":"val","step":40,"val_loss":2.75,"val_bpc":3.97,"val_ppl":15.6,"tokens":100}
{"type":"train","step":40,"epoch":0,"loss":2.65,"bpc":3.82,"grad_norm":2.0,"lr":0.001,"chars_per_s":600.0,"tokens_seen":2560,"time":$((T0+103)),"elapsed":3.000}
{"type":"train","step":50,"epoch":0,"loss":2.4,"bpc":3.46,"grad_norm":1.0,"lr":0.001,"chars_per_s":1200.0,"tokens_seen":3200,"time":$((T0+104)),"elapsed":4.000}
{"type":"val","step":50,"val_loss":2.60,"val_bpc":3.75,"val_ppl":13.5,"tokens":100}
{"type":"train","step":60,"epoch":0,"loss":2.3,"bpc":3.32,"grad_norm":0.9,"lr":0.0005,"chars_per_s":700.0,"tokens_seen":3840,"time":$((T0+505)),"elapsed":5.000}
{"type":"val","step":60,"val_loss":2.65,"val_bpc":3.82,"val_ppl":14.2,"tokens":100}
{"type":"train","step":70,"epoch":0,"loss":2.2,"bpc":3.17,"grad_norm":0.7,"lr":0.0005,"chars_per_s":1000.0,"tokens_seen":4480,"time":$((T0+507)),"elapsed":7.000}
EOF

# The rules of report.h, written again here: the expected numbers of a metrics file.
cat > expect.py <<'EOF'
import json, math, sys

def expected(path):
    kept = []          # (type, step, obj) in file order
    lines = malformed = replaced = 0
    first_bad = None
    sessions = 0
    timed = True
    have_time = False
    prev_el = prev_start = offset = 0.0
    cps_time = time_sum = 0.0
    pending = False
    times = {}         # id(obj) -> seconds of training at that line
    for no, text in enumerate(open(path), 1):
        if not text.strip():
            continue
        lines += 1
        try:
            o = json.loads(text.replace(':nan', ':NaN').replace(':inf', ':Infinity'))
            assert isinstance(o, dict) and 'type' in o and 'step' in o
        except Exception:
            malformed += 1
            first_bad = first_bad or no
            continue
        t, s = o['type'], o['step']
        if t not in ('train', 'val', 'skip', 'balance'):
            continue
        sessions = sessions or 1
        same = [k for k in kept if k[0] == t]
        if same and s <= same[-1][1]:
            before = len(kept)
            kept = [k for k in kept if k[1] < s or (k[1] == s and k[0] != t)]
            replaced += before - len(kept)
            if not pending:
                sessions += 1
            pending = True
        if t == 'train':
            if 'elapsed' in o and 'time' in o:
                el, start = o['elapsed'], o['time'] - o['elapsed']
                if have_time and (el < prev_el or abs(start - prev_start) > 2.0):
                    offset += prev_el
                    if not pending:
                        sessions += 1
                    dt = el
                elif not have_time:
                    dt = el
                else:
                    dt = el - prev_el
                cps_time += o['chars_per_s'] * dt
                time_sum += dt
                have_time, prev_el, prev_start = True, el, start
                times[id(o)] = offset + el
            else:
                timed = False
            pending = False
        kept.append((t, s, o))
    train = [k[2] for k in kept if k[0] == 'train']
    val = [k[2] for k in kept if k[0] == 'val']
    best = min(val, key=lambda v: (v['val_loss'], v['step'])) if val else None
    return {
        'steps': max([k[1] for k in kept] or [0]),
        'best_val_loss': best['val_loss'] if best else None,
        'best_val_step': best['step'] if best else None,
        'last_loss': train[-1]['loss'] if train else None,
        'mean_chars_per_s': (cps_time / time_sum if timed and time_sum > 0 else
                             sum(o['chars_per_s'] for o in train) / len(train) if train else None),
        'wall_time_s': offset + prev_el if timed and have_time else None,
        'bad_steps': sum(1 for k in kept if k[0] == 'skip'),
        'balance_moves': sum(1 for k in kept if k[0] == 'balance'),
        'sessions': sessions, 'lines': lines, 'replaced_lines': replaced,
        'malformed_lines': malformed, 'first_malformed_line': first_bad,
        'train_steps': [o['step'] for o in train],
    }

def compare(got, want, what):
    bad = []
    for k, v in want.items():
        if k == 'train_steps':
            continue
        g = got.get(k)
        if v is None or g is None:
            ok = v is None and g is None
        else:
            ok = abs(g - v) <= 1e-9 * max(1.0, abs(v))
        if not ok:
            bad.append('%s: %s, expected %s' % (k, g, v))
    for b in bad:
        print('    # %s %s' % (what, b))
    return not bad

if __name__ == '__main__':
    report = json.load(open(sys.argv[1]))
    ok = True
    for run, path in zip(report['runs'], sys.argv[2:]):
        ok &= compare(run, expected(path), run['dir'])
    sys.exit(0 if ok else 1)
EOF

check "report --json of the hand-written run" into hand.json hand.err "$charnn" report hand --json ||
  show hand.err
check "--json is one JSON object" python3 -c 'import json; json.load(open("hand.json"))'
check "its numbers equal the metrics file's (computed independently)" \
  python3 expect.py hand.json hand/metrics.jsonl
# the same rules by hand, so that a shared mistake in both readings shows
check "hand-checked: steps 70, best val 2.60 at 50, last loss 2.2, 3 sessions, 1 torn line" \
  python3 -c '
import json, sys
r = json.load(open("hand.json"))["runs"][0]
want = {"steps": 70, "best_val_loss": 2.6, "best_val_step": 50, "last_loss": 2.2,
        "sessions": 3, "malformed_lines": 1, "first_malformed_line": 9, "bad_steps": 1,
        "balance_moves": 0, "replaced_lines": 5, "lines": 18, "config": None}
# wall time: session 1 ran 7 s, session 2 4 s, session 3 7 s
want["wall_time_s"] = 18.0
# chars/s over time: (2*1000 + 2*500 + 1*800 + 2*400 + 1*900 + 2*600 + 1*1200 + 5*700 + 2*1000) / 18
want["mean_chars_per_s"] = 13400.0 / 18
bad = [k for k, v in want.items()
       if (r[k] != v if not isinstance(v, float) else abs(r[k] - v) > 1e-9 * max(1, abs(v)))]
print("    # mismatched: %s" % ", ".join("%s=%s" % (k, r[k]) for k in bad)) if bad else None
sys.exit(1 if bad else 0)'
check "the torn line is reported on stderr with its number" \
  grep -qxF "charnn: warning: 'hand/metrics.jsonl': skipped 1 malformed line (the first is line 9)" hand.err
check "report (table) of the hand-written run" into hand.txt hand.err2 "$charnn" report hand ||
  show hand.err2
check "the table gives the summary" grep -qF "steps 70 in 3 sessions; best val loss 2.6000 at step 50; last train loss 2.2000" hand.txt
check "the table says the config is unknown without a checkpoint" \
  grep -qF "config unknown (no checkpoint in 'hand' yet)" hand.txt

# ---- bad input --------------------------------------------------------------
expect_fail() { # STATUS MESSAGE ARGS...: exit status and the exact first line of stderr
  local want=$1 msg=$2; shift 2
  "$charnn" report "$@" > bad.out 2> bad.err
  local rc=$?
  [ "$rc" = "$want" ] && [ "$(head -n1 bad.err)" = "$msg" ] && return 0
  echo "    # exit $rc, stderr: $(head -n1 bad.err)"; return 1
}
mkdir -p empty torn
printf '{"type":"train","step":1\nnot json\n' > torn/metrics.jsonl
check "a missing run directory is an error" \
  expect_fail 1 "charnn: cannot open run directory 'nope': No such file or directory" nope
check "a directory without metrics.jsonl is an error" \
  expect_fail 1 "charnn: 'empty' is not a run directory: no metrics.jsonl (No such file or directory)" empty
check "a metrics file of malformed lines only is an error" \
  expect_fail 1 "charnn: 'torn/metrics.jsonl' holds no metrics: all 2 lines are malformed (line 1 is the first)" torn
check "no run directory is a usage error" \
  expect_fail 2 "charnn report: give at least one run directory" --json
check "an unknown flag is a usage error" expect_fail 2 "charnn report: unknown flag '--bogus'" hand --bogus
touch empty/metrics.jsonl
check "an empty metrics.jsonl (nothing logged yet) is reported, not an error" \
  bash -c "'$charnn' report empty | grep -qF 'no metrics logged yet'"

# ---- real runs ------------------------------------------------------------------
mkdir -p runs
check "generate a text" "$charnn" generate --kind structured --chars 60000 --seed 3 --out text.txt || finish
train() { # DIR ARGS...
  local dir=$1; shift
  "$charnn" train --data text.txt --out "$dir" --layers 1 --seq 32 --batch 8 --log-every 10 \
    --eval-every 50 --threads 1 --no-progress "$@" >> "$dir.log" 2>&1
}
check "train an lstm (300 steps)" train runs/lstm-h48 --cell lstm --hidden 48 --steps 300 --lr 0.01 \
  --checkpoint-every 100 --seed 1
check "resume it from the checkpoint of step 200 and go on to 400 (steps 210-300 again)" \
  train runs/lstm-h48 --cell lstm --hidden 48 --steps 400 --lr 0.01 --checkpoint-every 100 --seed 1 \
  --resume runs/lstm-h48/ckpt-00000200.h5
check "train a gru (400 steps)" train runs/gru-h48 --cell gru --hidden 48 --steps 400 --lr 0.01 --seed 1
check "train an rnn (400 steps)" train runs/rnn-h32 --cell rnn --hidden 32 --steps 400 --lr 0.005 --seed 1
check "report --json --html of the three runs" into runs.json runs.err "$charnn" report \
  runs/lstm-h48 runs/gru-h48 runs/rnn-h32 --json --html page.html || show runs.err
check "their numbers equal their metrics files'" python3 expect.py runs.json \
  runs/lstm-h48/metrics.jsonl runs/gru-h48/metrics.jsonl runs/rnn-h32/metrics.jsonl
check "the resumed run: 2 sessions, steps 210-300 replaced, a continuous curve to 400, config from model.h5" \
  python3 -c '
import json, sys
sys.path.insert(0, ".")
from expect import expected
r = json.load(open("runs.json"))["runs"][0]
e = expected("runs/lstm-h48/metrics.jsonl")
c = r["config"] or {}
ok = (r["sessions"] == 2 and r["replaced_lines"] >= 10 and r["steps"] == 400
      and e["train_steps"] == list(range(10, 401, 10)) and c.get("cell") == "lstm"
      and c.get("hidden") == 48 and c.get("checkpoint_step") == 400
      and r["config_from"] == "runs/lstm-h48/model.h5" and r["wall_time_s"] > 0)
print("    # %s" % {k: r[k] for k in ("sessions", "replaced_lines", "steps", "config_from")}) if not ok else None
sys.exit(0 if ok else 1)'
check "the page has no scripts" bash -c '! grep -qi "<script" page.html'
check "the page references nothing outside itself" \
  bash -c '! grep -Eqi "(src|href)=\"|url\(|@import" page.html'

# ---- the page in headless Chromium ---------------------------------------------
browser=
for cand in chromium chromium-browser; do
  if command -v "$cand" > /dev/null 2>&1; then browser=$cand; break; fi
done
if [ -z "$browser" ]; then
  echo "chromium is not installed: the page is not rendered"
  finish
fi
render() {
  timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --hide-scrollbars --user-data-dir="$(mktemp -d "$work/profile.XXXXXX")" "$@" \
    "file://$work/page.html"
}
into render.log render.err render --screenshot="$work/shot.png" --window-size=1180,1480
check "chromium took a screenshot" test -s shot.png || show render.err
into dom.html dump.err render --dump-dom
check "chromium dumped the DOM" test -s dom.html || show dump.err
check "the screenshot is not blank" python3 "$src/tests/png_colors.py" shot.png 10

cat > dom_check.py <<'EOF'
import json, re, sys
dom = open('dom.html', encoding='utf-8').read()
runs = json.load(open('runs.json'))['runs']
fails = []
def need(ok, what):
    if not ok:
        fails.append(what)
def svg(id):
    m = re.search(r'<svg[^>]*id="%s"[^>]*>(.*?)</svg>' % id, dom, re.S)
    return m.group(1) if m else ''
# loss plots: a training and a validation line per run; the others one line per run
for id, per_run in (('loss-steps', 2), ('loss-time', 2), ('grad-norm', 1), ('lr', 1),
                    ('chars-per-s', 1)):
    body = svg(id)
    paths = re.findall(r'<path class="series"[^>]*d="([^"]*)"', body)
    need(len(paths) == per_run * len(runs),
         '#%s: %d lines, expected %d' % (id, len(paths), per_run * len(runs)))
    need(all(p.startswith('M') and p.count('L') >= 2 for p in paths[::per_run]),
         '#%s: every training line has points' % id)
# the gradient norm is on a log axis: decade labels
need(re.search(r'>1e-?\d+</text>', svg('grad-norm')), '#grad-norm has 1eN tick labels')
# the validation lines carry markers
need(svg('loss-steps').count('class="marker"') >= sum(1 for r in runs), 'validation markers')
# legend: one entry per run, in the order given
legend = re.search(r'<ul[^>]*id="legend"[^>]*>(.*?)</ul>', dom, re.S)
items = re.findall(r'<li>.*?</span>([^<]*)</li>', legend.group(1) if legend else '', re.S)
# labels leave out the directory every run shares ("runs/"), which the page states once
label = lambda r: r['dir'][len('runs/'):]
need('3 runs in <code>runs/</code>' in dom, 'the shared directory')
need(items == [label(r) for r in runs], 'legend %s' % items)
# the table: ranked by best validation loss, with the reported numbers
rows = re.findall(r'<tr class="run-row">(.*?)</tr>', dom, re.S)
cells = [re.findall(r'<td[^>]*>(?:<span[^>]*></span>)?([^<]*)</td>', r) for r in rows]
need(len(cells) == len(runs), '%d table rows' % len(cells))
want = sorted(runs, key=lambda r: r['best_val_loss'])
need([c[1] for c in cells] == [label(r) for r in want],
     'rows in best-val order: %s' % [c[1] for c in cells])
need(all(abs(float(c[2]) - r['best_val_loss']) < 1e-4 and int(c[3]) == r['best_val_step']
         and int(c[4]) == r['steps'] for c, r in zip(cells, want)), 'table numbers')
for f in fails:
    print('    # ' + f)
sys.exit(1 if fails else 0)
EOF
check "the rendered page has its plots, legend and ranked table" python3 dom_check.py

if [ "${CHARNN_UPDATE_SCREENSHOT:-0}" = 1 ] && [ -s shot.png ]; then
  cp shot.png "$src/docs/report.png" && echo "# copied the screenshot to $src/docs/report.png"
fi
finish
