#!/usr/bin/env python3
"""Lumen against llama.cpp and ik_llama.cpp on one GGUF, the programs taking turns.

    tools/bench/compare_anchors.py MODEL.gguf --lumen build/bin/lumen \\
        --llama-bin LLAMA_BUILD/bin [--ik-bin IK_BUILD/bin] [--rounds 5]

Run it from the repository root. Per round, prefill 512 and decode 1 are each program's best
of 3 runs: llama-bench -p 512 -n 0 -r 3 (best sample) against lumen bench engine --only
prefill (best of its 3); llama-bench -p 0 -n 64 -r 3 against lumen bench engine --only decode
--seqs 1 --steps 64, three times. Decode 16 is one run each: llama-batched-bench -c 8192 -b
2048 -ub 512 -npp 128 -ntg 64 -npl 16 (its S_TG) against --seqs 16 --steps 64. ik_llama.cpp
runs plain and with -rtr 1 (a llama-bench option only). OpenMP wait settings are cleared from
the environment, so every program runs with its own defaults. Prints each round
and the median of the per-round ratios Lumen / other, with their range. On a machine whose
speed drifts, ratios of alternated runs are what can be compared; the anchors are measuring
instruments, built outside this repository (../shared/notes/llama-cpp-anchor.md)."""
import argparse, json, os, re, statistics, subprocess, sys, tempfile

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("model", help="the GGUF file every program runs")
parser.add_argument("--lumen", default="build/bin/lumen", help="the lumen binary")
parser.add_argument("--llama-bin", required=True, help="llama.cpp's bin/ folder")
parser.add_argument("--ik-bin", help="ik_llama.cpp's bin/ folder (optional)")
parser.add_argument("--rounds", type=int, default=5, help="alternations of all programs")
parser.add_argument("--threads", default="2", help="threads of every program")
args = parser.parse_args()
env = {k: v for k, v in os.environ.items()
       if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
for name in ("model", "lumen", "llama_bin", "ik_bin"):
    if getattr(args, name):
        setattr(args, name, os.path.abspath(getattr(args, name)))
# The programs run in a scratch folder: llama-bench leaves a llama.log behind.
workdir = tempfile.TemporaryDirectory()


def fail(cmd, output):
    tail = "\n".join(output.splitlines()[-15:])
    sys.exit(f"compare_anchors: {' '.join(cmd)} did not give its figure:\n{tail}")


def run(cmd, merge_stderr=True):
    done = subprocess.run(cmd, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
                          text=True, env=env, cwd=workdir.name)
    if done.returncode != 0:
        fail(cmd, done.stdout + (done.stderr or ""))
    return done.stdout


def find(cmd, pattern, output):
    match = re.search(pattern, output, re.M)
    if match is None:
        fail(cmd, output)
    return match


def llama_bench(bin_dir, test, extra=()):
    sizes = ["-p", "512", "-n", "0"] if test == "prefill" else ["-p", "0", "-n", "64"]
    cmd = [os.path.join(bin_dir, "llama-bench"), "-m", args.model, "-t", args.threads, "-r",
           "3", "-o", "json", *sizes, *extra]
    out = run(cmd, merge_stderr=False)  # the JSON alone
    try:
        return max(json.loads(out)[0]["samples_ts"])
    except (ValueError, LookupError):
        fail(cmd, out)


def batched_bench(bin_dir):
    cmd = [os.path.join(bin_dir, "llama-batched-bench"), "-m", args.model, "-t", args.threads,
           "-c", "8192", "-b", "2048", "-ub", "512", "-npp", "128", "-ntg", "64", "-npl", "16"]
    out = run(cmd)
    # | PP | TG | B | N_KV | T_PP s | S_PP t/s | T_TG s | S_TG t/s | T s | S t/s |
    row = find(cmd, r"^\|\s+128 .*$", out).group(0)
    return float(row.split("|")[8])


def lumen(test):
    engine = [args.lumen, "bench", "engine", "--model", args.model, "--threads", args.threads]
    if test == "prefill":
        cmd = engine + ["--only", "prefill"]
        return float(find(cmd, r"^prefill 512 tokens\s+([\d.]+)", run(cmd)).group(1))
    seqs, steps, repeats = ("1", "64", 3) if test == "decode 1" else ("16", "64", 1)
    best = 0.0
    for _ in range(repeats):
        cmd = engine + ["--only", "decode", "--seqs", seqs, "--steps", steps]
        line = find(cmd, rf"^decode {seqs} seq @ ctx 128\s+([\d.]+)", run(cmd))
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
