#!/usr/bin/env python3
"""bf16 side by side: charnn f32 and bf16 against Intel oneDNN f32 and bf16 and PyTorch.

Issue 17's table in one run: every config at 1 and 2 threads, charnn --precision f32 and
bf16, the oneDNN peer (../shared/bench/onednn_charlm_bench.c, compiled here into the build
directory; needs libdnnl-dev) in --precision f32 and bf16, and the PyTorch peer on
OpenMP OpenBLAS (its best setup in bench.py). It reuses bench.py's runners, so the runs
are the same as bench/run.sh's (same steps, warm-up, environment). Each cell is the
median of --repeats runs; GFLOP/s use the peers' FLOP count per character and are put
against the peaks fma_peak measures (FP32 FMA for f32 columns, vdpbf16ps for bf16).

  python3 bench/bf16_side.py [--configs lstm-2x512,...] [--repeats 3] [--quick]

Writes bench/results/bf16-side-<host>-<time>.{json,md} and prints the Markdown table.
Needs a quiet machine: every number of a busy one is low by an unknown factor.
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402

CONFIGS = ["lstm-2x512", "gru-2x512", "rnn-2x512", "lstm-1x128"]


def build_onednn(a):
    src = os.path.join(B.TOP, "..", "shared", "bench", "onednn_charlm_bench.c")
    out = os.path.join(os.path.dirname(a.charnn), "onednn_charlm_bench")
    if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(src):
        r = subprocess.run(["gcc", "-O3", "-march=native", "-fopenmp", src, "-ldnnl", "-lm",
                            "-o", out], capture_output=True, text=True)
        if r.returncode != 0:
            return None, "cannot build the oneDNN peer (apt-get install libdnnl-dev): " + \
                r.stderr.strip()[-300:]
    return out, None


def run_onednn(a, exe, cfg, threads, prec, k, warm, timed, data):
    cmd = [exe, "--cell", cfg["cell"], "--layers", str(cfg["layers"]),
           "--hidden", str(cfg["hidden"]), "--batch", str(cfg["batch"]), "--seq", str(cfg["seq"]),
           "--steps", str(k * timed), "--warmup", str(k * warm), "--threads", str(threads),
           "--data", data, "--precision", prec]
    r = B.run_child(cmd, B.base_env(), a.timeout)
    for line in reversed(r["out"].splitlines()):
        if line.startswith("{"):
            try:
                j = json.loads(line)
            except ValueError:
                continue
            if r["rc"] == 0 and "chars_per_s" in j:
                return dict(ok=True, chars_per_s=j["chars_per_s"], peak_rss_mib=r["maxrss_mib"])
    return dict(ok=False, error=f"exit {r['rc']}; " + r["err"].strip()[-300:])


def median(runs):
    v = [r["chars_per_s"] for r in runs if r.get("ok")]
    return statistics.median(v) if v else None


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="1 repeat, short runs: a smoke test")
    p.add_argument("--charnn", default=os.path.join(B.TOP, "build", "charnn"))
    p.add_argument("--fma-peak", default=os.path.join(B.TOP, "build", "fma_peak"))
    p.add_argument("--peer", default=os.path.join(B.TOP, "..", "shared", "bench",
                                                  "torch_charlm_bench.py"))
    p.add_argument("--python", default="/usr/bin/python3")
    p.add_argument("--mpiexec", default="mpiexec")
    p.add_argument("--data", default=None)
    p.add_argument("--timeout", type=float, default=900.0)
    p.add_argument("--blas-core", default="native")
    p.add_argument("--out-dir", default=os.path.join(B.HERE, "results"))
    a = p.parse_args()
    if a.quick:
        a.repeats = 1
    B.BLAS_CORE = None if a.blas_core == "env" else ("" if a.blas_core == "native"
                                                     else a.blas_core)
    data, _ = B.pick_data(a)
    if not os.path.exists(a.fma_peak):
        subprocess.run(["gcc", "-std=gnu11", "-O3", "-march=native", "-mfma", "-fopenmp",
                        os.path.join(B.HERE, "fma_peak.c"), "-o", a.fma_peak], check=True)
    peak = B.measure_peak(a)
    onednn, why = build_onednn(a)
    if why:
        B.log("oneDNN peer skipped: " + why)
    rows = []
    for name in a.configs.split(","):
        cfg = B.CONFIGS[name]
        k, warm, timed = ((cfg["qk"], cfg["qwarm"], cfg["qtimed"]) if a.quick
                          else (cfg["k"], cfg["warm"], cfg["timed"]))
        _, fpc = B.flops_per_char(cfg["cell"], B.vocab_of(data), cfg["hidden"], cfg["layers"])
        for threads in (1, 2):
            res = {}
            for rep in range(a.repeats):
                for prec in ("f32", "bf16"):
                    r = B.run_charnn(a, cfg, name, 1, threads, k, warm, timed, data,
                                     extra=("--precision", prec))
                    res.setdefault("charnn_" + prec, []).append(r)
                    if onednn:
                        r = run_onednn(a, onednn, cfg, threads, prec, k, warm, timed, data)
                        res.setdefault("onednn_" + prec, []).append(r)
                r = B.run_peer(a, cfg, threads, "openblas-openmp", k, warm, timed, data)
                res.setdefault("torch", []).append(r)
                B.log(f"  [{name} {threads}t {rep + 1}/{a.repeats}] " + ", ".join(
                    f"{key} {median(v) or 0:,.0f}" for key, v in res.items()))
            med = {key: median(v) for key, v in res.items()}
            pk = peak["peak_gflops_1" if threads == 1 else "peak_gflops_all"]
            pkb = peak["bf16_gflops_1" if threads == 1 else "bf16_gflops_all"]
            rows.append(dict(config=name, threads=threads, chars_per_s=med, flops_per_char=fpc,
                             peak_f32=pk, peak_bf16=pkb, runs=res))
    md = ["| config | threads | charnn f32 | charnn bf16 | oneDNN f32 | oneDNN bf16 | PyTorch | "
          "bf16 / f32 | charnn bf16 / oneDNN bf16 | charnn bf16 GFLOP/s (% of bf16 peak) | "
          "charnn peak RSS f32 → bf16 (MiB) |",
          "|---|---|---|---|---|---|---|---|---|---|---|"]

    def c(v):
        return f"{v / 1000:.1f}k" if v else "-"

    def rss(runs):
        v = [x["peak_rss_mib"] for x in runs if x.get("ok") and x.get("peak_rss_mib")]
        return f"{statistics.median(v):.1f}" if v else "-"

    for r in rows:
        m = r["chars_per_s"]
        g = (m.get("charnn_bf16") or 0) * r["flops_per_char"] / 1e9
        ratio = (f"{m['charnn_bf16'] / m['charnn_f32']:.2f}"
                 if m.get("charnn_bf16") and m.get("charnn_f32") else "-")
        vs = (f"{m['charnn_bf16'] / m['onednn_bf16']:.2f}"
              if m.get("charnn_bf16") and m.get("onednn_bf16") else "-")
        share = f"{g:.0f} ({100 * g / r['peak_bf16']:.0f}%)" if r["peak_bf16"] else f"{g:.0f}"
        md.append(f"| {r['config']} | {r['threads']} | {c(m.get('charnn_f32'))} | "
                  f"{c(m.get('charnn_bf16'))} | {c(m.get('onednn_f32'))} | "
                  f"{c(m.get('onednn_bf16'))} | {c(m.get('torch'))} | {ratio} | {vs} | {share} | "
                  f"{rss(r['runs'].get('charnn_f32', []))} → {rss(r['runs'].get('charnn_bf16', []))} |")
    md.append("")
    md.append(f"chars/s and peak RSS (maximum resident set of the process), median of {a.repeats}; peaks (fma_peak): FP32 "
              f"{peak['peak_gflops_1']:.0f} / {peak['peak_gflops_all']:.0f} GFLOP/s, bf16 "
              f"{peak.get('bf16_gflops_1', 0):.0f} / {peak.get('bf16_gflops_all', 0):.0f} GFLOP/s "
              f"(1 / all threads)")
    text = "\n".join(md)
    print(text)
    os.makedirs(a.out_dir, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = os.path.join(a.out_dir, f"bf16-side-{platform.node()}-{stamp}")
    with open(base + ".json", "w") as f:
        json.dump(dict(peak=peak, rows=rows, quick=a.quick, repeats=a.repeats), f, indent=1)
    with open(base + ".md", "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
