#!/usr/bin/env bash
# The page of `charnn analyze --html`, rendered: a small LSTM trained on generated
# structured text, traced with gradients, analysed into one self-contained page that
# headless Chromium opens; the screenshot must not be blank and the rendered DOM must hold
# the coloured text, the feature panels, the saturation scatter plots (SVG circles) and
# the gradient-flow plot, with nothing fetched from outside; the page opens on the unit
# with the highest |r| over all features and names that feature.
# Usage: bash tests/cli_analyze_html.sh PATH/TO/charnn SOURCE_DIR   (exit 77: no chromium)
set -u
charnn=$1
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}

browser=
for cand in chromium chromium-browser; do
  if command -v "$cand" > /dev/null 2>&1; then browser=$cand; break; fi
done
if [ -z "$browser" ]; then
  echo "chromium is not installed: skipped"
  exit 77
fi

work=$PWD/cli_analyze_html_work
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1

pass=0; fail=0
# check DESCRIPTION COMMAND...: the check passes when COMMAND exits 0
check() {
  local what=$1; shift
  if "$@"; then echo "ok - $what"; pass=$((pass+1)); return 0; fi
  echo "not ok - $what"; fail=$((fail+1)); return 1
}
# show FILE: a file's first lines as diagnostics (after a failure)
show() { sed -n '1,8s/^/    # /p' "$1"; }
# into OUT ERR COMMAND...: run COMMAND with its output and errors in files
into() { local out=$1 err=$2; shift 2; "$@" > "$out" 2> "$err"; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" = 0 ]; exit $?; }

# ---- a trace of a small trained LSTM ----
check "generate structured text" "$charnn" generate --kind structured --chars 60000 --seed 5 \
  --out text.txt || finish
check "train a small lstm" into train.log train.err "$charnn" train --data text.txt --out run \
  --cell lstm --layers 1 --hidden 32 --seq 32 --batch 8 --steps 150 --seed 5 --threads 1 \
  --eval-every 0 --checkpoint-every 0 --no-progress || { show train.err; finish; }
check "trace it with gradients" into trace.log trace.err "$charnn" trace --model run/model.h5 \
  --data text.txt --out trace.h5 --max-chars 2000 --grads --grad-chunk 50 --grad-chunks 10 \
  --threads 1 || { show trace.err; finish; }
check "analyze --html --json" into analyze.json analyze.err "$charnn" analyze trace.h5 --json \
  --html page.html --excerpt 800 --feature 'keyword=\<(if|then|else)\>' ||
  { show analyze.err; finish; }
check "the JSON is one object with correlations and gradient flow" python3 -c '
import json, sys
j = json.load(open("analyze.json"))
ok = (j["kind"] == "text" and len(j["correlations"]) == 6 and j["gradient_flow"]["chunk_len"] == 50
      and j["unit"] is not None and len(j["saturation"]) == 4)
sys.exit(0 if ok else 1)'

# self-contained: no scripts, no external references
check "the page has no scripts" bash -c '! grep -qi "<script" page.html'
check "the page references nothing outside itself" \
  bash -c '! grep -Eqi "(src|href)=\"|url\(|@import" page.html'

# ---- render it ----
render() {
  timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$(mktemp -d "$work/profile.XXXXXX")" "$@" "file://$work/page.html"
}
into render.log render.err render --screenshot="$work/shot.png" --window-size=1200,2000
check "chromium took a screenshot" test -s shot.png || show render.err
into dom.html dump.err render --dump-dom
check "chromium dumped the DOM" test -s dom.html || show dump.err

# the screenshot: count distinct colours (a blank page has one or two)
check "the screenshot is not blank" python3 "$2/tests/png_colors.py" shot.png

# the rendered DOM: the coloured text, a panel per feature, the scatter plots, the gradient plot
cat > dom_check.py <<'EOF'
import html, json, re, sys
dom = open('dom.html', encoding='utf-8').read()
text = open('text.txt', encoding='utf-8').read()
fails = []
def need(ok, what):
    if not ok:
        fails.append(what)
need(re.search(r'<pre[^>]*id="text-unit"', dom), 'pre#text-unit')
panels = re.findall(r'<div[^>]*class="feature-panel"', dom)
need(len(panels) == 6, 'six .feature-panel (5 built-in + keyword), found %d' % len(panels))
need('id="feature-keyword"' in dom, 'the panel of the --feature')
plots = re.findall(r'<svg[^>]*class="saturation-plot"[^>]*>(.*?)</svg>', dom, re.S)
need(len(plots) == 4, 'four svg.saturation-plot (i, f, g, o), found %d' % len(plots))
need(all(p.count('<circle') == 32 for p in plots), 'one circle per unit in every scatter plot')
grad = re.search(r'<svg[^>]*id="gradient-flow"[^>]*>(.*?)</svg>', dom, re.S)
need(grad and grad.group(1).count('<polyline') == 2, 'svg#gradient-flow with lines for h and c')
# the coloured text is the traced text (the first 800 characters), escaped and intact
m = re.search(r'<pre[^>]*id="text-unit"[^>]*>(.*?)</pre>', dom, re.S)
shown = html.unescape(re.sub(r'<[^>]+>', '', m.group(1))) if m else ''
need(shown == text[:800], 'the text of #text-unit is the first 800 characters of the trace')
need(len(re.findall(r'<span class="v-?\d+"', m.group(1) if m else '')) > 50,
     'the text is coloured in many spans')
# the page opens on its best find: the unit with the highest |r| over every feature
j = json.load(open('analyze.json'))
best = max((c for c in j['correlations'] if c['top']), key=lambda c: abs(c['top'][0]['r']))
t = best['top'][0]
h2 = re.search(r'<h2[^>]*>.*?</h2>', dom, re.S)
want = 'Best find: unit %d:%d:%s tracks %s, r = %+.3f' % (t['layer'], t['unit'], t['state'],
                                                        best['feature'], t['r'])
need(h2 and 'id="best-find"' in h2.group(0) and want in h2.group(0),
     'the first heading is "%s" (found %s)' % (want, h2.group(0) if h2 else None))
need(j['unit']['feature'] == best['feature'] and j['unit']['unit'] == t['unit'],
     'the JSON unit is the best find')
for f in fails:
    print('    # missing: ' + f)
sys.exit(1 if fails else 0)
EOF
check "the rendered page has its parts" python3 dom_check.py

finish
