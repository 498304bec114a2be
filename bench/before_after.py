#!/usr/bin/env python3
"""Two charnn builds, the same training loop, in one run: is a change any slower?

Normally started by bench/before_after.sh, which builds the base revision and the working
tree. For each config and setup it runs build A and build B alternately (A, B, B, A, ...
so that neither always goes first), --repeats times each, with bench.py's run_charnn (the
same timed intervals as the main benchmark), and reports median chars/s, min-max and the
ratio B/A. Python 3 standard library only; writes
bench/results/before-after-<host>-<date>.{json,md}.
"""
import argparse
import datetime
import json
import os
import socket
import statistics
import sys
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402  (bench.py beside this file)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--a", required=True, help="charnn binary of the base ('before')")
    p.add_argument("--b", required=True, help="charnn binary of the change ('after')")
    p.add_argument("--a-label", default="before")
    p.add_argument("--b-label", default="after")
    p.add_argument("--configs", default="lstm-2x512,lstm-1x128")
    p.add_argument("--setups", default="1t,1r2t")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="1 repeat, short runs (smoke test)")
    p.add_argument("--data", default=None)
    p.add_argument("--timeout", type=float, default=900.0)
    p.add_argument("--mpiexec", default="mpiexec")
    p.add_argument("--out-dir", default=os.path.join(HERE, "results"))
    a = p.parse_args()
    bench.BLAS_CORE = ""  # both builds on the kernels OpenBLAS picks for this CPU
    repeats = 1 if a.quick else a.repeats
    data, data_kind = bench.pick_data(types.SimpleNamespace(data=a.data))
    setups = {s[0]: s[2] for s in bench.SETUPS}
    rows = []
    for cname in a.configs.split(","):
        cfg = bench.CONFIGS[cname]
        k, warm, timed = ((cfg["qk"], cfg["qwarm"], cfg["qtimed"]) if a.quick
                          else (cfg["k"], cfg["warm"], cfg["timed"]))
        for sname in a.setups.split(","):
            st = setups[sname]
            runs = {"a": [], "b": []}
            for r in range(repeats):
                order = ("a", "b") if r % 2 == 0 else ("b", "a")
                for which in order:
                    ns = types.SimpleNamespace(charnn=getattr(a, which), mpiexec=a.mpiexec,
                                               timeout=a.timeout)
                    res = bench.run_charnn(ns, cfg, cname, st["ranks"], st["threads"], k,
                                           warm, timed, data)
                    if not res.get("chars_per_s") or "error" in res:
                        sys.exit(f"before_after: {which} failed on {cname} {sname}: "
                                 f"{res.get('error', 'no chars/s')}")
                    runs[which].append(res["chars_per_s"])
                    bench.log(f"{cname} {sname} {which}: {res['chars_per_s']:.0f} chars/s")
            ma, mb = statistics.median(runs["a"]), statistics.median(runs["b"])
            rows.append(dict(config=cname, setup=sname, a=runs["a"], b=runs["b"],
                             a_median=ma, b_median=mb, ratio=round(mb / ma, 4)))
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = os.path.join(a.out_dir, f"before-after-{socket.gethostname()}-{stamp}")
    def rel(path):  # paths as seen from the repository, not this machine's layout
        return os.path.relpath(os.path.realpath(path), bench.TOP)

    doc = dict(a=a.a_label, b=a.b_label, a_binary=os.path.basename(a.a),
               b_binary=rel(a.b), data=rel(data),
               data_kind=data_kind, repeats=repeats, quick=a.quick, rows=rows)
    os.makedirs(a.out_dir, exist_ok=True)
    with open(base + ".json", "w") as f:
        json.dump(doc, f, indent=1)
    lines = [f"# charnn {a.a_label} against {a.b_label}", "",
             f"Data: {os.path.basename(data)} ({data_kind}). Median chars/s over {repeats} "
             "alternating runs each, min-max in brackets.", "",
             f"| config | setup | {a.a_label} | {a.b_label} | {a.b_label} / {a.a_label} |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['config']} | {r['setup']} | {r['a_median']:,.0f} "
                     f"[{min(r['a']):,.0f}-{max(r['a']):,.0f}] | {r['b_median']:,.0f} "
                     f"[{min(r['b']):,.0f}-{max(r['b']):,.0f}] | {r['ratio']:.3f} |")
    with open(base + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nwritten: {base}.md, {base}.json")


if __name__ == "__main__":
    main()
