#!/usr/bin/env python3
"""The soak run behind scripts/soak.sh: a real lumend on loopback under
mixed load for a bounded time, watched for leaks and lost requests.

CLIENTS threads each loop over a mix of requests: streams read to the end,
streams cancelled after a few messages, unary Generate with a deadline too
short to finish, requests lumend must refuse (INVALID_ARGUMENT), Tokenize,
RAG generations over a collection (embedded by a synthetic BERT model),
document upserts and searches, a LoRA adapter loaded, used and unloaded,
and streamed and abandoned HTTP completions (/v1/completions). Every request must end with its expected status; any other end
(including a hang past its own timeout) counts as lost. Every 5 s the
daemon's RSS and open descriptors are sampled; the run fails when RSS after
warm-up (the first fifth of the run, at least 20 s) grows more than 5%, or
the descriptors keep growing.

usage: soak.py BUILD_DIR SOURCE_DIR MODEL SECONDS CLIENTS
"""
import http.client
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "server"))
import lumend_py  # noqa: E402

SAMPLE_SECONDS = 5


def rss_kib(pid, field="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def main():
    build, src, model, seconds, clients = (sys.argv[1], sys.argv[2], sys.argv[3],
                                           float(sys.argv[4]), int(sys.argv[5]))
    lumend_py.generate_stubs(build, src, "soak")
    import grpc
    from lumen.v1 import inference_pb2 as pb, inference_pb2_grpc as pb_grpc
    from lumen.v1 import knowledge_pb2 as kpb, knowledge_pb2_grpc as kpb_grpc
    from lumen.v1 import admin_pb2 as apb, admin_pb2_grpc as apb_grpc

    # The embedding model and the adapters, made for this run.
    work = tempfile.mkdtemp(prefix="lumen_soak_")
    lumen = os.path.join(build, "bin", "lumen")
    bert = os.path.join(work, "bert.gguf")
    subprocess.run([lumen, "model", "synth", "--arch", "bert", "--dim", "64", "--layers", "2",
                    "--heads", "4", "--kv-heads", "4", "--ffn", "128", "--ctx", "128",
                    "--vocab-from", os.path.join(src, "..", "shared", "testdata", "vocab",
                                                 "ggml-vocab-bert-bge.gguf"),
                    "--type", "f32", "--seed", "7", bert], check=True, capture_output=True)
    adapters = []
    for i, targets in enumerate(["q,k,v,o", "gate,up,down"]):
        path = os.path.join(work, "lora%d.gguf" % i)
        subprocess.run([lumen, "model", "synth-lora", "--base", model, "--rank", "4",
                        "--alpha", "8", "--targets", targets, "--seed", str(i + 1), path],
                       check=True, capture_output=True)
        adapters.append(path)

    # --ctx-size 4096: a "cancel" stream is long enough (seconds) that it is
    # still running when its client cancels, however starved the client is.
    with lumend_py.Lumend(build, ["--model", model, "--kv-cache-mb", "64", "--ctx-size", "4096",
                                  "--max-running", "8", "--max-queue", "256",
                                  "--embedding-model", bert,
                                  "--http-listen", "127.0.0.1:0"]) as d:
        pid = d.proc.pid
        setup = grpc.insecure_channel(d.address)
        knowledge = kpb_grpc.KnowledgeStub(setup)
        knowledge.CreateCollection(kpb.CreateCollectionRequest(name="soak"), timeout=60)
        words = ["dog", "cat", "park", "ball", "sun", "tree", "bird", "boat"]
        knowledge.UpsertDocuments(kpb.UpsertDocumentsRequest(collection="soak", documents=[
            kpb.Document(id="d%d" % i, text="The %s and the %s went to the %s." % (
                words[i % 8], words[(i * 3) % 8], words[(i * 5) % 8])) for i in range(32)]),
            timeout=120)
        stop = threading.Event()
        lock = threading.Lock()
        counts = {}   # kind -> requests that ended as expected
        lost = []     # (kind, code, details)

        def done(kind, ok, code=None, details=""):
            with lock:
                if ok:
                    counts[kind] = counts.get(kind, 0) + 1
                else:
                    lost.append((kind, code, details))

        kinds = ["stream", "stream", "stream", "cancel", "deadline", "invalid", "tokenize",
                 "rag", "upsert", "adapter", "http", "http_abandon"]
        if os.environ.get("LUMEN_SOAK_KINDS"):  # to look for a leak one kind at a time
            kinds = os.environ["LUMEN_SOAK_KINDS"].split(",")

        def client(seed):
            rng = random.Random(seed)
            channel = grpc.insecure_channel(d.address)
            stub = pb_grpc.InferenceStub(channel)
            kstub = kpb_grpc.KnowledgeStub(channel)
            admin = apb_grpc.AdminStub(channel)
            n = 0
            while not stop.is_set():
                n += 1
                kind = rng.choice(kinds)
                req = pb.GenerateRequest(prompt=rng.choice(["Once", "The dog", "Lily saw"]))
                req.sampling.max_tokens = rng.randint(8, 96)
                req.sampling.temperature = rng.choice([0.0, 0.8])
                req.sampling.seed = rng.randint(0, 1 << 30)
                try:
                    if kind == "stream":
                        last = None
                        for msg in stub.GenerateStream(req, timeout=120):
                            last = msg
                        done(kind, last is not None and last.finish_reason in ("stop", "length"),
                             "OK", repr(last and last.finish_reason))
                    elif kind == "cancel":
                        req.sampling.max_tokens = 3000
                        req.sampling.ignore_eos = True
                        call = stub.GenerateStream(req, timeout=120)
                        for i, _ in enumerate(call):
                            if i == 0:
                                call.cancel()
                        done(kind, False, "OK", "a cancelled stream ended normally")
                    elif kind == "deadline":
                        req.sampling.max_tokens = 400
                        req.sampling.ignore_eos = True
                        stub.Generate(req, timeout=0.005)
                        done(kind, False, "OK", "400 tokens in 5 ms")
                    elif kind == "invalid":
                        req.sampling.temperature = -1.0
                        stub.Generate(req, timeout=60)
                        done(kind, False, "OK", "negative temperature accepted")
                    elif kind == "tokenize":
                        resp = stub.Tokenize(pb.TokenizeRequest(text=req.prompt), timeout=60)
                        done(kind, len(resp.token_ids) > 0, "OK", "no tokens")
                    elif kind == "rag":
                        req.rag.collections.append("soak")
                        req.rag.top_k = 2
                        first = None
                        last = None
                        for msg in stub.GenerateStream(req, timeout=120):
                            first = first or msg
                            last = msg
                        done(kind, last is not None and len(first.citations) > 0 and
                             last.finish_reason in ("stop", "length"), "OK",
                             "no citations or no finish")
                    elif kind == "upsert":
                        doc_id = "c%d-%d" % (seed, n % 16)  # bounded: replaces
                        kstub.UpsertDocuments(kpb.UpsertDocumentsRequest(
                            collection="soak", documents=[kpb.Document(
                                id=doc_id, text="%s saw a %s at %d." % (
                                    rng.choice(words), rng.choice(words), n))]), timeout=120)
                        found = kstub.Search(kpb.SearchRequest(
                            collection="soak", query=rng.choice(words), top_k=3), timeout=60)
                        done(kind, len(found.hits) > 0, "OK", "search found nothing")
                    elif kind == "adapter":
                        name = "soak-%d-%d" % (seed, n)
                        admin.LoadAdapter(apb.LoadAdapterRequest(
                            name=name, path=rng.choice(adapters)), timeout=120)
                        req.adapter = name
                        req.sampling.max_tokens = 8
                        resp = stub.Generate(req, timeout=120)
                        admin.UnloadAdapter(apb.UnloadAdapterRequest(name=name), timeout=120)
                        done(kind, resp.usage.completion_tokens > 0, "OK", "no tokens")
                    else:  # http, http_abandon: a streamed /v1/completions
                        conn = http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=120)
                        conn.request("POST", "/v1/completions", json.dumps({
                            "prompt": req.prompt, "max_tokens": 400 if kind == "http_abandon"
                            else req.sampling.max_tokens, "stream": True,
                            "ignore_eos": kind == "http_abandon"}),
                            {"Content-Type": "application/json"})
                        r = conn.getresponse()
                        if kind == "http_abandon":
                            r.readline()  # the first event, then the client leaves
                            conn.close()
                            done(kind, r.status == 200, r.status, "not 200")
                        else:
                            body = r.read().decode()
                            conn.close()
                            done(kind, r.status == 200 and body.endswith("data: [DONE]\n\n"),
                                 r.status, body[-200:])
                except (OSError, http.client.HTTPException) as e:
                    done(kind, False, "HTTP", repr(e))
                except grpc.RpcError as e:
                    expected = {"cancel": grpc.StatusCode.CANCELLED,
                                "deadline": grpc.StatusCode.DEADLINE_EXCEEDED,
                                "invalid": grpc.StatusCode.INVALID_ARGUMENT}.get(kind)
                    done(kind, e.code() == expected, e.code(), e.details())
            channel.close()

        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        start = time.time()
        for th in threads:
            th.start()
        samples = []  # (seconds since start, RSS KiB, fds, requests so far)
        while time.time() - start < seconds:
            time.sleep(SAMPLE_SECONDS)
            with lock:
                finished = sum(counts.values()) + len(lost)
            samples.append((time.time() - start, rss_kib(pid), open_fds(pid), finished))
            print("%6.0f s  RSS %8d KiB  fds %4d  requests %7d" % samples[-1],
                  " (anonymous %d KiB)" % rss_kib(pid, "RssAnon"), flush=True)
        stop.set()
        for th in threads:
            th.join(timeout=180)
        hung = sum(th.is_alive() for th in threads)
        alive = d.proc.poll() is None
        setup.close()

    warm = max(20.0, seconds / 5)
    after = [s for s in samples if s[0] >= warm]
    base = after[0] if after else samples[-1]
    peak_rss = max(s[1] for s in after) if after else base[1]
    growth = (peak_rss - base[1]) / base[1] * 100 if base[1] else 0.0
    fd_growth = samples[-1][2] - base[2]
    total = sum(counts.values())
    print("requests ended as expected: %d (%s)" % (
        total, ", ".join("%s %d" % kv for kv in sorted(counts.items()))))
    print("RSS after warm-up (%.0f s): %d KiB, peak %d KiB (%+.1f%%); fds %d -> %d" % (
        base[0], base[1], peak_rss, growth, base[2], samples[-1][2]))
    checks = [
        ("no request lost", not lost, "%d requests lost, e.g. %r" % (len(lost), lost[:5])),
        ("no client hung", not hung, "%d clients still waiting after the run" % hung),
        ("lumend alive", alive, "lumend exited during the run"),
        ("RSS flat", growth <= 5.0, "RSS grew %.1f%% after warm-up" % growth),
        ("descriptors flat", fd_growth <= 4 * clients, "open descriptors grew by %d" % fd_growth),
        ("requests completed", total > 0, "no request completed"),
    ]
    failures = [why for _, ok, why in checks if not ok]
    for why in failures:
        print("FAIL:", why)
    print("soak: %d passed, %d failed" % (len(checks) - len(failures), len(failures)))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
