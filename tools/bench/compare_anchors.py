#!/usr/bin/env python3
"""Lumen against llama.cpp and ik_llama.cpp on one GGUF, the programs taking turns.

    tools/bench/compare_anchors.py MODEL.gguf --lumen build/bin/lumen \\
        --llama-bin LLAMA_BUILD/bin [--ik-bin IK_BUILD/bin] [--rounds 5]

Per round and figure each program gives its best of 3 runs: prefill 512 (llama-bench -p 512
-n 0 -r 3, best sample; lumen bench engine --only prefill), decode 1 (llama-bench -p 0 -n 64;
lumen bench engine --only decode --seqs 1 --steps 64, three times) and decode 16
(llama-batched-bench -c 8192 -b 2048 -ub 512 -npp 128 -ntg 64 -npl 16, its S_TG; --seqs 16
--steps 32). ik_llama.cpp runs plain and with -rtr 1 (llama-bench only). Prints each round
and the median of the per-round ratios Lumen / other, with their range. On a machine whose
speed drifts, ratios of alternated runs are what can be compared; the anchors are measuring
instruments, built outside this repository (../shared/notes/llama-cpp-anchor.md)."""
import argparse, json, os, re, statistics, subprocess

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("model")
parser.add_argument("--lumen", default="build/bin/lumen")
parser.add_argument("--llama-bin", required=True, help="llama.cpp's bin/ folder")
parser.add_argument("--ik-bin", help="ik_llama.cpp's bin/ folder (optional)")
parser.add_argument("--rounds", type=int, default=5)
parser.add_argument("--threads", default="2")
args = parser.parse_args()
env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}


def run(cmd):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=env, check=True).stdout


def llama_bench(bin_dir, test, extra=()):
    sizes = ["-p", "512", "-n", "0"] if test == "prefill" else ["-p", "0", "-n", "64"]
    out = subprocess.run([os.path.join(bin_dir, "llama-bench"), "-m", args.model, "-t",
                          args.threads, "-r", "3", "-o", "json", *sizes, *extra],
                         capture_output=True, text=True, env=env, check=True).stdout
    return max(json.loads(out)[0]["samples_ts"])


def batched_bench(bin_dir):
    out = run([os.path.join(bin_dir, "llama-batched-bench"), "-m", args.model, "-t",
               args.threads, "-c", "8192", "-b", "2048", "-ub", "512", "-npp", "128", "-ntg",
               "64", "-npl", "16"])
    row = next(l for l in out.splitlines() if re.match(r"^\|\s+128 ", l))
    return float(row.split("|")[8])


def lumen(test):
    engine = [args.lumen, "bench", "engine", "--model", args.model, "--threads", args.threads]
    if test == "prefill":
        out = run(engine + ["--only", "prefill"])
        return float(re.search(r"^prefill 512 tokens\s+([\d.]+)", out, re.M).group(1))
    seqs, steps, repeats = ("1", "64", 3) if test == "decode 1" else ("16", "32", 1)
    best = 0.0
    for _ in range(repeats):
        out = run(engine + ["--only", "decode", "--seqs", seqs, "--steps", steps])
        line = re.search(rf"^decode {seqs} seq @ ctx 128\s+([\d.]+)", out, re.M)
        best = max(best, float(line.group(1)))
    return best


ratios = {}
for r in range(args.rounds):
    for test in ("prefill", "decode 1", "decode 16"):
        rates = {"lumen": lumen(test)}
        if test == "decode 16":
            rates["llama.cpp"] = batched_bench(args.llama_bin)
            if args.ik_bin:
                rates["ik_llama.cpp"] = batched_bench(args.ik_bin)
        else:
            rates["llama.cpp"] = llama_bench(args.llama_bin, test)
            if args.ik_bin:
                rates["ik_llama.cpp"] = llama_bench(args.ik_bin, test)
                rates["ik_llama.cpp -rtr 1"] = llama_bench(args.ik_bin, test, ["-rtr", "1"])
        print(f"round {r} {test:9}: " + ", ".join(f"{k} {v:.1f}" for k, v in rates.items()),
              flush=True)
        for other, rate in rates.items():
            if other != "lumen":
                ratios.setdefault((test, other), []).append(rates["lumen"] / rate)
print()
for (test, other), values in ratios.items():
    print(f"{test:9} lumen / {other:20} median {statistics.median(values):.2f}x "
          f"({min(values):.2f}-{max(values):.2f})")
