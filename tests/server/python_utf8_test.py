#!/usr/bin/env python3
"""Issue 12 defect 1: a Python grpcio client (Debian's python3-grpcio and
python3-protobuf, stubs generated at test time) on text that stories260K's
byte-fallback vocabulary splits inside characters: Chinese and emoji.
Tokenize, Detokenize, Generate and GenerateStream with logprobs (and top
alternatives) must answer OK (a `string` field holding part of a character
made the Python client fail with INTERNAL "Exception deserializing
response"); token bytes reassemble into the input; streamed text is valid
UTF-8 and equals the unary text.

usage: python_utf8_test.py BUILD_DIR SOURCE_DIR TESTDATA_DIR
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lumend_py  # noqa: E402

TEXTS = ["你好，世界", "🦙🚀"]
TOP = 5  # sampling.logprobs: alternatives per token


def valid_utf8(b):
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def main():
    build, src, testdata = sys.argv[1], sys.argv[2], sys.argv[3]
    lumend_py.generate_stubs(build, src, "python_utf8")
    import grpc
    from lumen.v1 import inference_pb2 as pb, inference_pb2_grpc as pb_grpc

    t = lumend_py.Checks("python utf8")
    model = os.path.join(testdata, "models", "stories260K.gguf")
    with lumend_py.Lumend(build, ["--model", model, "--kv-cache-mb", "64"]) as d:
        stub = pb_grpc.InferenceStub(grpc.insecure_channel(d.address))
        piece_of = {}  # token id -> bytes, from Tokenize
        chosen = []  # every TokenLogprob received
        for text in TEXTS:
            want = text.encode("utf-8")
            # Tokenize: every piece is bytes; some are not characters on
            # their own (byte fallback), and together they are the text.
            tok = stub.Tokenize(pb.TokenizeRequest(text=text, add_special=False), timeout=60)
            pieces = list(tok.pieces)
            t.equal(len(pieces), len(tok.token_ids), "%s: one piece per token" % text)
            t.check(all(isinstance(p, bytes) for p in pieces), "%s: pieces are bytes" % text)
            t.check(any(not valid_utf8(p) for p in pieces),
                    "%s: some piece is part of a character (byte fallback): %r" % (text, pieces))
            # SentencePiece's dummy prefix: the text is tokenized as " " + text.
            t.equal(b"".join(pieces), b" " + want, "%s: pieces reassemble into the text" % text)
            for i, p in zip(tok.token_ids, pieces):
                piece_of[i] = p

            # Detokenize: the ids give the text back.
            detok = stub.Detokenize(pb.DetokenizeRequest(token_ids=tok.token_ids), timeout=60)
            t.equal(detok.text, text, "%s: Detokenize(Tokenize(text))" % text)

            # Generate with the text as prompt: greedy, with logprobs. The
            # prompt's own tokens come back through prompt_token_ids too.
            for name, req in [
                ("prompt", pb.GenerateRequest(prompt=text)),
                ("prompt_token_ids", pb.GenerateRequest(prompt_token_ids=[1] + list(tok.token_ids))),
            ]:
                req.return_token_ids = True
                req.sampling.max_tokens = 24
                req.sampling.temperature = 0.0
                req.sampling.logprobs = TOP
                resp = stub.Generate(req, timeout=60)
                what = "%s (%s)" % (text, name)
                t.equal(resp.usage.completion_tokens, len(resp.token_ids),
                        what + ": Generate usage")
                t.equal(len(resp.logprobs), len(resp.token_ids), what + ": one logprob per token")
                t.check(all(lp.token_id == i for lp, i in zip(resp.logprobs, resp.token_ids)),
                        what + ": logprob ids are the generated ids")
                t.check(all(len(lp.top) == TOP for lp in resp.logprobs),
                        what + ": %d alternatives per token" % TOP)
                t.check(all(isinstance(lp.token, bytes) and lp.top[0].token_id == lp.token_id
                            and lp.top[0].token == lp.token for lp in resp.logprobs),
                        what + ": greedy choice is the first alternative, as bytes")
                chosen.extend(resp.logprobs)
                gen_bytes = b"".join(lp.token for lp in resp.logprobs)
                t.equal(resp.text.encode("utf-8"), gen_bytes.decode("utf-8", "replace").encode(),
                        what + ": text is the tokens' bytes")

                stream_text, stream_lp, last = "", [], None
                for msg in stub.GenerateStream(req, timeout=60):
                    t.check(isinstance(msg.text, str), what + ": streamed text is a str")
                    stream_text += msg.text
                    stream_lp.extend(msg.logprobs)
                    if msg.finish_reason:
                        last = msg
                t.check(last is not None, what + ": the stream ends with finish_reason")
                t.equal(stream_text, resp.text, what + ": streamed text equals Generate's")
                t.equal([lp.token for lp in stream_lp], [lp.token for lp in resp.logprobs],
                        what + ": streamed logprob tokens equal Generate's")

        # A regex constraint makes the model spell each text byte by byte
        # (stories260K has no CJK or emoji pieces): every token is part of a
        # character, so the stream must hold bytes back until a character is
        # complete and the text fields stay valid UTF-8.
        for text in TEXTS:
            want = text.encode("utf-8")
            req = pb.GenerateRequest(prompt="Once", return_token_ids=True)
            req.sampling.max_tokens = 64
            req.sampling.regex = text
            req.sampling.logprobs = TOP
            resp = stub.Generate(req, timeout=60)
            what = "%s (regex)" % text
            t.equal((resp.text, resp.finish_reason), (text, "stop"), what + ": Generate")
            tokens = [lp.token for lp in resp.logprobs]
            t.equal(tokens, [bytes([b]) for b in want], what + ": one byte token per byte")
            chosen.extend(resp.logprobs)
            # After each message, the text so far is the bytes so far less
            # an unfinished character (never a finished one held back).
            text_so_far, bytes_so_far, lagging = "", b"", []
            for msg in stub.GenerateStream(req, timeout=60):
                text_so_far += msg.text
                bytes_so_far += b"".join(lp.token for lp in msg.logprobs)
                done = text_so_far.encode("utf-8")
                rest = bytes_so_far[len(done):]
                if not bytes_so_far.startswith(done) or len(rest) > 3 or (rest and valid_utf8(rest)):
                    lagging.append((msg.text, bytes_so_far))
            t.equal(text_so_far, text, what + ": streamed text")
            t.equal(lagging, [], what + ": text keeps up with the token bytes")

        # Every token's bytes agree wherever they appear: Tokenize pieces,
        # chosen tokens and their alternatives.
        for lp in chosen:
            piece_of.setdefault(lp.token_id, lp.token)
        mismatched = [(lp.token_id, lp.token) for lp in chosen
                      if piece_of[lp.token_id] != lp.token]
        for lp in chosen:
            for top in lp.top:
                if top.token_id in piece_of and piece_of[top.token_id] != top.token:
                    mismatched.append((top.token_id, top.token))
        t.equal(mismatched[:8], [], "token bytes agree across Tokenize, logprobs and alternatives")
        t.check(all(top.token for lp in chosen for top in lp.top),
                "every alternative carries its bytes")
    t.finish()


if __name__ == "__main__":
    main()
