#!/usr/bin/env python3
"""A client in another language: Python with Debian's python3-grpcio, stubs
generated from proto/ at test time, calls Generate and GenerateStream on a
running lumend and checks the stories260K greedy reference.

usage: python_client_test.py ADDRESS PROTO_DIR TESTDATA_DIR
"""
import json
import os
import subprocess
import sys
import tempfile


def main():
    addr, proto_dir, testdata = sys.argv[1], sys.argv[2], sys.argv[3]
    out = tempfile.mkdtemp(prefix="lumen_py_")
    subprocess.run(
        ["protoc", "-I", proto_dir, "--python_out", out, "--grpc_out", out,
         "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin",
         "lumen/v1/inference.proto", "lumen/v1/knowledge.proto"],
        check=True)
    sys.path.insert(0, out)
    import grpc
    from lumen.v1 import inference_pb2, inference_pb2_grpc

    ref = json.load(open(os.path.join(testdata, "models/stories260K.greedy.json")))
    channel = grpc.insecure_channel(addr)
    stub = inference_pb2_grpc.InferenceStub(channel)
    req = inference_pb2.GenerateRequest(
        prompt_token_ids=[1], return_token_ids=True,
        sampling=inference_pb2.SamplingParams(max_tokens=200, temperature=0.0))
    resp = stub.Generate(req, timeout=60)
    assert list(resp.token_ids) == ref["next_ids"], "Generate ids differ"
    assert resp.text == ref["printed_text"], "Generate text differs"
    assert resp.finish_reason == "length", resp.finish_reason

    text, last = "", None
    for msg in stub.GenerateStream(req, timeout=60):
        text += msg.text
        if msg.finish_reason:
            last = msg
    assert text == ref["printed_text"], "GenerateStream text differs"
    assert last is not None and last.usage.completion_tokens == 200

    try:
        stub.Generate(inference_pb2.GenerateRequest(
            prompt="Once", sampling=inference_pb2.SamplingParams(temperature=-1.0)), timeout=60)
        raise AssertionError("negative temperature was accepted")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e.code()
        assert "temperature" in e.details(), e.details()
    print("python client: 3 passed, 0 failed")


if __name__ == "__main__":
    main()
