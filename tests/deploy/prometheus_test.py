#!/usr/bin/env python3
"""A real Prometheus (Debian's package) scrapes a real lumend every second.
After a bounded burst of Generate traffic, PromQL through Prometheus's HTTP
API sees generation tokens and a finite TTFT p99; every expression of the
Grafana dashboard is accepted by Prometheus and names only metrics lumend
exports (or documents in docs/metrics.md).

usage: prometheus_test.py BUILD_DIR SOURCE_DIR TESTDATA_DIR
"""
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred, seconds, what):
    deadline = time.time() + seconds
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise RuntimeError("timed out waiting for " + what)


def http_get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def query(prom, expr):
    url = "http://%s/api/v1/query?%s" % (prom, urllib.parse.urlencode({"query": expr}))
    try:
        return json.loads(http_get(url))
    except urllib.error.HTTPError as e:
        return json.loads(e.read().decode())


def main():
    build, src, testdata = sys.argv[1], sys.argv[2], sys.argv[3]
    prom_bin = shutil.which("prometheus")
    if not prom_bin:
        print("FAIL: the prometheus binary is not installed (scripts/setup.sh installs it)")
        sys.exit(1)
    tmp = tempfile.mkdtemp(prefix="lumen_prom_")
    procs = []
    try:
        log = open(os.path.join(tmp, "lumend.log"), "w")
        lumend = subprocess.Popen(
            [os.path.join(build, "bin/lumend"),
             "--model", os.path.join(testdata, "models/stories260K.gguf"),
             "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--http-listen", "",
                          "--kv-cache-mb", "64", "--data-dir", os.path.join(tmp, "data")],
            stdout=log, stderr=log)
        procs.append(lumend)

        def lumend_ports():
            text = open(os.path.join(tmp, "lumend.log")).read()
            g = re.search(r"listening on 127\.0\.0\.1:(\d+)", text)
            m = re.search(r"metrics on http://127\.0\.0\.1:(\d+)", text)
            return (g.group(1), m.group(1)) if g and m and "serving" in text else None
        try:
            grpc_port, metrics_port = wait_for(lumend_ports, 120, "lumend")
        except RuntimeError:
            print(open(os.path.join(tmp, "lumend.log")).read())
            raise

        prom = "127.0.0.1:%d" % free_port()
        with open(os.path.join(tmp, "prometheus.yml"), "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: lumend\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%s']\n" % metrics_port)
        plog = open(os.path.join(tmp, "prometheus.log"), "w")
        procs.append(subprocess.Popen(
            [prom_bin, "--config.file", os.path.join(tmp, "prometheus.yml"),
             "--storage.tsdb.path", os.path.join(tmp, "tsdb"),
             "--web.listen-address", prom], stdout=plog, stderr=plog))
        wait_for(lambda: "Ready" in _safe(lambda: http_get("http://%s/-/ready" % prom)), 60,
                 "prometheus")

        # Prometheus starts scraping after its first service discovery
        # update (about 5 s): wait until the target is up.
        wait_for(lambda: '"health":"up"' in _safe(lambda: http_get(
            "http://%s/api/v1/targets" % prom)), 60, "the first scrape")

        # Bounded burst: at most 40 runs of 24 requests, for about 8 seconds.
        lumen = os.path.join(build, "bin/lumen")
        start = time.time()
        for _ in range(40):
            subprocess.run([lumen, "bench", "--addr", "127.0.0.1:" + grpc_port,
                            "--concurrency", "4", "--requests", "24", "--prompt-tokens", "16",
                            "--max-tokens", "32", "--max-seconds", "20"],
                           check=True, stdout=subprocess.DEVNULL, timeout=60)
            if time.time() - start > 8:
                break
        time.sleep(3)  # a few more scrapes

        r = query(prom, "rate(lumen_generation_tokens_total[30s])")
        values = [float(x["value"][1]) for x in r.get("data", {}).get("result", [])]
        check(r.get("status") == "success" and values and max(values) > 0,
              "rate(lumen_generation_tokens_total[30s]) > 0: %s" % r)
        r = query(prom, "histogram_quantile(0.99, rate(lumen_time_to_first_token_seconds_bucket[30s]))")
        values = [float(x["value"][1]) for x in r.get("data", {}).get("result", [])]
        check(r.get("status") == "success" and values and all(math.isfinite(v) for v in values),
              "finite TTFT p99: %s" % r)

        exported = set(re.findall(r"^# TYPE (\S+)", http_get("http://127.0.0.1:%s/metrics" % metrics_port), re.M))
        documented = set(re.findall(r"`((?:lumen|process)_[a-z_]+)`", open(os.path.join(src, "docs/metrics.md")).read()))
        dash = json.load(open(os.path.join(src, "deploy/grafana/dashboards/lumen.json")))
        exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
        check(len(exprs) >= 15, "dashboard has its panels")
        wanted = ["lumen_requests_total", "lumen_generation_tokens_total",
                  "lumen_time_to_first_token_seconds", "lumen_time_per_output_token_seconds",
                  "lumen_queue_depth", "lumen_running_sequences", "lumen_kv_cache_usage_ratio",
                  "lumen_prefix_cache_hit_tokens_total", "lumen_step_tokens",
                  "lumen_preemptions_total", "lumen_rag_retrieval_seconds",
                  "lumen_moe_expert_tokens_total"]
        joined = " ".join(exprs)
        for w in wanted:
            check(w in joined, "dashboard plots " + w)
        for e in exprs:
            r = query(prom, e)
            check(r.get("status") == "success", "Prometheus accepts %r: %s" % (e, r.get("error")))
            for name in re.findall(r"\b((?:lumen|process)_[a-z_]+)", e):
                base = re.sub(r"_(bucket|sum|count)$", "", name)
                check(name in exported or base in exported or base in documented,
                      "%s in %r is exported or documented" % (name, e))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    print("prometheus: %d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


def _safe(fn):
    try:
        return fn()
    except Exception:
        return ""


if __name__ == "__main__":
    main()
