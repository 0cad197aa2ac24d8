#!/usr/bin/env python3
"""Issue 12 defect 4: requests whose bytes do not parse. Raw bytes go to
every lumend method (lumen.v1 Inference, Knowledge, Admin, found from the
generated descriptors) through grpcio's serializer-less calls: truncated
protobuf, and where the request has a top-level `string` field, that field
holding invalid UTF-8. Each must end INVALID_ARGUMENT with the exact
message naming the method and the request type (gRPC's callback handlers
answered UNIMPLEMENTED with an empty message). The daemon goes on serving,
and a method it does not have is still UNIMPLEMENTED. Each refused request is
counted in lumen_unparsable_requests_total{method} (exact values checked on
/metrics) and gets one request-log line.

usage: python_malformed_test.py BUILD_DIR SOURCE_DIR TESTDATA_DIR
"""
import os
import re
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lumend_py  # noqa: E402


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def main():
    build, src, testdata = sys.argv[1], sys.argv[2], sys.argv[3]
    lumend_py.generate_stubs(build, src, "python_malformed")
    import grpc
    from google.protobuf import descriptor
    from lumen.v1 import admin_pb2, inference_pb2, knowledge_pb2
    from lumen.v1 import inference_pb2 as pb, inference_pb2_grpc as pb_grpc

    t = lumend_py.Checks("python malformed")
    model = os.path.join(testdata, "models", "stories260K.gguf")
    with lumend_py.Lumend(build, ["--model", model, "--kv-cache-mb", "64",
                                  "--metrics-listen=127.0.0.1:0"]) as d:
        channel = grpc.insecure_channel(d.address)

        def call(path, streaming, payload):
            """(code, details, messages received) of a raw call."""
            try:
                if streaming:
                    got = list(channel.unary_stream(path)(payload, timeout=30))
                else:
                    got = [channel.unary_unary(path)(payload, timeout=30)]
                return grpc.StatusCode.OK, "", got
            except grpc.RpcError as e:
                return e.code(), e.details(), []

        methods = 0
        refused = {}  # method path -> requests sent that do not parse
        for module in (inference_pb2, knowledge_pb2, admin_pb2):
            for service in module.DESCRIPTOR.services_by_name.values():
                for m in service.methods:
                    methods += 1
                    path = "/%s/%s" % (service.full_name, m.name)
                    streaming = m.server_streaming
                    want = ("the request to %s could not be parsed as %s: malformed protobuf "
                            "bytes, or a string field that is not valid UTF-8"
                            % (path, m.input_type.full_name))
                    payloads = [("truncated", b"\x0a\x05ab"),
                                ("bad tag", b"\x00\x00\x00")]
                    strings = [f for f in m.input_type.fields
                               if f.type == descriptor.FieldDescriptor.TYPE_STRING]
                    if strings:
                        f = strings[0]
                        payloads.append(("invalid UTF-8 in " + f.name,
                                         varint(f.number << 3 | 2) + b"\x02\xff\xfe"))
                    refused[path] = len(payloads)
                    for what, payload in payloads:
                        code, details, got = call(path, streaming, payload)
                        t.equal((code, details), (grpc.StatusCode.INVALID_ARGUMENT, want),
                                "%s, %s" % (path, what))
                        t.equal(got, [], "%s, %s: no message" % (path, what))
        t.equal(methods, 17, "lumen.v1 methods tried")

        # Every refusal is counted by method, and logged once.
        port = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", d.log()).group(1)
        body = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % port,
                                      timeout=30).read().decode()
        counted = {m.group(1): float(m.group(2)) for m in re.finditer(
            r'^lumen_unparsable_requests_total\{method="([^"]+)"\} (\S+)$', body, re.M)}
        t.equal(counted, {p: float(n) for p, n in refused.items()},
                "lumen_unparsable_requests_total by method")
        logged = {}
        for m in re.finditer(r"lumend: request refused api=grpc method=(\S+) "
                             r"reason=unparsable status=INVALID_ARGUMENT$", d.log(), re.M):
            logged[m.group(1)] = logged.get(m.group(1), 0) + 1
        t.equal(logged, refused, "request-log lines of refused requests by method")

        # The daemon still serves, through the same handlers.
        stub = pb_grpc.InferenceStub(channel)
        tok = stub.Tokenize(pb.TokenizeRequest(text="Once upon a time", add_special=True), timeout=30)
        t.equal(list(tok.token_ids), [1, 403, 407, 261, 378], "Tokenize after bad requests")
        req = pb.GenerateRequest(prompt="Once", sampling=pb.SamplingParams(
            max_tokens=4, temperature=0.0))
        t.equal(len([m for m in stub.GenerateStream(req, timeout=30) if m.finish_reason]), 1,
                "GenerateStream after bad requests")
        code, details, _ = call("/lumen.v1.Inference/NoSuchMethod", False, b"")
        t.equal(code, grpc.StatusCode.UNIMPLEMENTED, "an unknown method")
    t.finish()


if __name__ == "__main__":
    main()
