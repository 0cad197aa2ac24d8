"""Shared pieces of the Python client tests (tests/server/python_*_test.py,
tests/server/tls_test.py): Python stubs generated from proto/ at test time
into the build tree, a real lumend on a free loopback port, and a counter of
checks that prints the "N passed, N failed" line ctest's callers read.

The stubs come from Debian's protoc and grpc_python_plugin
(protobuf-compiler, protobuf-compiler-grpc): the same protobuf 3.21 and
gRPC 1.51 as python3-protobuf and python3-grpcio. (Debian's
python3-grpc-tools is 1.14, four years older than the runtime.)
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

PROTOS = ["lumen/v1/inference.proto", "lumen/v1/knowledge.proto", "lumen/v1/admin.proto"]


def generate_stubs(build_dir, source_dir, name):
    """Writes the stubs to BUILD_DIR/tests/python_stubs/NAME (fresh) and puts
    that directory first on sys.path. Each test has its own directory, so
    tests running in parallel never see a half-written module."""
    out = os.path.join(build_dir, "tests", "python_stubs", name)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    subprocess.run(
        ["protoc", "-I", os.path.join(source_dir, "proto"), "--python_out", out,
         "--grpc_out", out, "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin"] + PROTOS,
        check=True)
    sys.path.insert(0, out)
    return out


class Checks:
    """Counts checks; a failed check prints what failed and the test goes on."""

    def __init__(self, name):
        self.name, self.passed, self.failed = name, 0, 0

    def check(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL:", what, flush=True)
        return cond

    def equal(self, got, want, what):
        return self.check(got == want, "%s: got %r, want %r" % (what, got, want))

    def finish(self):
        print("%s: %d passed, %d failed" % (self.name, self.passed, self.failed))
        sys.exit(1 if self.failed else 0)


class Lumend:
    """build/bin/lumend on 127.0.0.1:0 with `args`; waits (bounded) until its
    log says it serves. Use as a context manager: SIGTERM and wait at exit."""

    def __init__(self, build_dir, args, expect_start=True):
        self.tmp = tempfile.mkdtemp(prefix="lumen_py_")
        self.log_path = os.path.join(self.tmp, "lumend.log")
        self.port = None
        self.http_port = None
        cmd = [os.path.join(build_dir, "bin", "lumend"), "--listen", "127.0.0.1:0",
               "--metrics-listen=", "--data-dir", os.path.join(self.tmp, "data")]
        if not any(a.startswith("--http-listen") for a in args):
            cmd.append("--http-listen=")
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(cmd + args, stdout=log, stderr=log)
        if expect_start:
            self._wait_serving()

    def _wait_serving(self):
        deadline = time.time() + 120
        while time.time() < deadline:
            text = self.log()
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", text)
            if m and "serving" in text:
                self.port = int(m.group(1))
                h = re.search(r"HTTP API on https?://127\.0\.0\.1:(\d+)", text)
                self.http_port = int(h.group(1)) if h else None
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError("lumend did not start:\n" + self.log())

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_exit(self, seconds=60):
        """The exit code of a daemon expected to stop by itself."""
        return self.proc.wait(timeout=seconds)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
