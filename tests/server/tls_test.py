#!/usr/bin/env python3
"""TLS and mutual TLS end to end, with certificates made by `openssl` (Debian's
openssl) in a temporary directory: a CA that signs lumend's certificate and a
client's, and another CA that signs a client certificate lumend must refuse.

lumend --tls-cert/--tls-key/--tls-client-ca: a Python grpcio client with a
good certificate is served (and the lumen CLI with --tls-ca/--tls-cert/
--tls-key); without a certificate, with one from the other CA, or over
plaintext it gets UNAVAILABLE (the handshake fails), and so does a client
that does not trust lumend's CA. The HTTPS API (--http-listen) takes the same
client certificates. Without --tls-client-ca, TLS needs no client
certificate. Bad TLS flags stop lumend before it loads a model.

usage: tls_test.py BUILD_DIR SOURCE_DIR TESTDATA_DIR
"""
import http.client
import os
import shutil
import ssl
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lumend_py  # noqa: E402

EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_certificates(d):
    """ca.pem signs server.pem (127.0.0.1, localhost) and client.pem;
    other_ca.pem signs other_client.pem."""
    for ca in ("ca", "other_ca"):
        openssl("req", "-x509", *EC, "-keyout", ca + ".key", "-out", ca + ".pem", "-days", "2",
                "-subj", "/CN=Lumen test " + ca,
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    leaves = [("server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
               "extendedKeyUsage=serverAuth\n"),
              ("client", "ca", "extendedKeyUsage=clientAuth\n"),
              ("other_client", "other_ca", "extendedKeyUsage=clientAuth\n")]
    for name, ca, ext in leaves:
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write(ext)
        openssl("req", *EC, "-keyout", name + ".key", "-out", name + ".csr",
                "-subj", "/CN=" + name, cwd=d)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
                "-CAcreateserial", "-out", name + ".pem", "-days", "2",
                "-extfile", name + ".ext", cwd=d)


def main():
    build, src, testdata = sys.argv[1], sys.argv[2], sys.argv[3]
    if not shutil.which("openssl"):
        print("FAIL: openssl is not installed (scripts/setup.sh --deps --test installs it)")
        sys.exit(1)
    lumend_py.generate_stubs(build, src, "tls")
    import grpc
    from lumen.v1 import inference_pb2 as pb, inference_pb2_grpc as pb_grpc

    t = lumend_py.Checks("tls")
    certs = tempfile.mkdtemp(prefix="lumen_tls_")
    make_certificates(certs)

    def path(name):
        return os.path.join(certs, name)

    def read(name):
        with open(path(name), "rb") as f:
            return f.read()

    def tokenize(address, credentials):
        """The status code of a Tokenize call, and the ids when OK."""
        channel = (grpc.secure_channel(address, credentials) if credentials
                   else grpc.insecure_channel(address))
        try:
            resp = pb_grpc.InferenceStub(channel).Tokenize(
                pb.TokenizeRequest(text="Once upon a time", add_special=True), timeout=30)
            return grpc.StatusCode.OK, list(resp.token_ids)
        except grpc.RpcError as e:
            return e.code(), e.details()
        finally:
            channel.close()

    def lumen(*args):
        return subprocess.run([os.path.join(build, "bin", "lumen")] + list(args),
                              capture_output=True, text=True, timeout=120)

    def https_get(port, with_cert):
        """(HTTP status, None) or (None, the error) of GET /v1/models."""
        ctx = ssl.create_default_context(cafile=path("ca.pem"))
        if with_cert:
            ctx.load_cert_chain(path("client.pem"), path("client.key"))
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
        try:
            conn.request("GET", "/v1/models")
            return conn.getresponse().status, None
        except (ssl.SSLError, ConnectionError) as e:
            return None, e
        finally:
            conn.close()

    ids = [1, 403, 407, 261, 378]
    model = os.path.join(testdata, "models", "stories260K.gguf")
    good = grpc.ssl_channel_credentials(read("ca.pem"), read("client.key"), read("client.pem"))
    no_cert = grpc.ssl_channel_credentials(read("ca.pem"))
    other = grpc.ssl_channel_credentials(read("ca.pem"), read("other_client.key"),
                                         read("other_client.pem"))
    untrusting = grpc.ssl_channel_credentials(read("other_ca.pem"), read("client.key"),
                                              read("client.pem"))
    mtls = ["--tls-cert", path("server.pem"), "--tls-key", path("server.key"),
            "--tls-client-ca", path("ca.pem")]
    with lumend_py.Lumend(build, ["--model", model, "--kv-cache-mb", "64",
                                  "--http-listen", "127.0.0.1:0"] + mtls) as d:
        t.equal(tokenize(d.address, good), (grpc.StatusCode.OK, ids), "mTLS: good certificate")
        t.equal(tokenize(d.address, no_cert)[0], grpc.StatusCode.UNAVAILABLE,
                "mTLS: no client certificate")
        t.equal(tokenize(d.address, other)[0], grpc.StatusCode.UNAVAILABLE,
                "mTLS: certificate from another CA")
        t.equal(tokenize(d.address, None)[0], grpc.StatusCode.UNAVAILABLE, "mTLS: plaintext")
        t.equal(tokenize(d.address, untrusting)[0], grpc.StatusCode.UNAVAILABLE,
                "mTLS: client that does not trust lumend's CA")

        tls_flags = ["--addr", d.address, "--tls-ca", path("ca.pem"),
                     "--tls-cert", path("client.pem"), "--tls-key", path("client.key")]
        r = lumen("tokenize", "--text", "Once upon a time", *tls_flags)
        t.equal((r.returncode, r.stdout), (0, "[1, 403, 407, 261, 378]\n"),
                "lumen tokenize over mTLS: " + r.stderr)
        r = lumen("generate", "--prompt", "Once", "--max-tokens", "8", "--temperature", "0",
                  *tls_flags)
        t.check(r.returncode == 0 and r.stdout.startswith(" upon a time"),
                "lumen generate over mTLS: %r %r" % (r.stdout, r.stderr))
        r = lumen("tokenize", "--text", "x", "--addr", d.address, "--tls-ca", path("ca.pem"))
        t.equal((r.returncode, r.stderr.split(":")[:2]), (1, ["lumen", " UNAVAILABLE"]),
                "lumen without a client certificate: " + r.stderr)
        r = lumen("tokenize", "--text", "x", "--addr", d.address)
        t.equal((r.returncode, r.stderr.split(":")[:2]), (1, ["lumen", " UNAVAILABLE"]),
                "lumen over plaintext: " + r.stderr)
        r = lumen("tokenize", "--text", "x", *tls_flags[:4], "--tls-cert", path("missing.pem"),
                  "--tls-key", path("client.key"))
        t.equal((r.returncode, r.stderr.startswith(
            "lumen: cannot read --tls-cert %s: No such file" % path("missing.pem"))),
            (2, True), "lumen with a missing --tls-cert: " + r.stderr)
        r = lumen("tokenize", "--text", "x", "--addr", d.address, "--tls-cert",
                  path("client.pem"))
        t.equal((r.returncode, r.stderr), (2, "lumen: --tls-cert and --tls-key go together\n"),
                "lumen --tls-cert without --tls-key")

        t.check(d.http_port is not None, "HTTPS API is up: " + d.log()[-500:])
        if d.http_port:
            t.equal(https_get(d.http_port, True), (200, None), "HTTPS with a client certificate")
            status, error = https_get(d.http_port, False)
            t.check(status is None and error is not None,
                    "HTTPS without a client certificate is refused: %r %r" % (status, error))

    # TLS without --tls-client-ca: no client certificate needed.
    with lumend_py.Lumend(build, ["--model", model, "--kv-cache-mb", "64",
                                  "--tls-cert", path("server.pem"),
                                  "--tls-key", path("server.key")]) as d:
        t.equal(tokenize(d.address, no_cert), (grpc.StatusCode.OK, ids),
                "TLS: client without a certificate")
        t.equal(tokenize(d.address, None)[0], grpc.StatusCode.UNAVAILABLE, "TLS: plaintext")
        r = lumen("tokenize", "--text", "Once upon a time", "--addr", d.address,
                  "--tls-ca", path("ca.pem"))
        t.equal((r.returncode, r.stdout), (0, "[1, 403, 407, 261, 378]\n"),
                "lumen tokenize over TLS: " + r.stderr)

    # Bad TLS flags end lumend with exit code 1 and a line naming the flag.
    for args, message in [
        (["--tls-client-ca", path("ca.pem")], "--tls-client-ca needs --tls-cert and --tls-key"),
        (["--tls-cert", path("server.pem")], "--tls-cert and --tls-key go together"),
        (mtls[:4] + ["--tls-client-ca", path("missing.pem")],
         "cannot read --tls-client-ca %s: No such file or directory" % path("missing.pem")),
        (mtls[:4] + ["--tls-client-ca", path("server.ext")],
         "cannot read --tls-client-ca %s: no PEM block in it" % path("server.ext")),
    ]:
        d = lumend_py.Lumend(build, ["--model", model] + args, expect_start=False)
        try:
            code = d.wait_exit()
            t.equal((code, message in d.log()), (1, True), "lumend %s: %s" % (args, d.log()))
        finally:
            d.stop()

    shutil.rmtree(certs, ignore_errors=True)
    t.finish()


if __name__ == "__main__":
    main()
