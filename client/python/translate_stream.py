#!/usr/bin/python3
"""Translates texts with a transformer-serving server, printing as it decodes.

    /usr/bin/python3 client/python/translate_stream.py --server=localhost:50051 \
        --beam_size=1 "A man is riding a bicycle." "Two dogs play."

Calls TranslateStream once per text, in turn, and prints each translation
piece by piece as the server decodes it (greedy search streams every token;
beam search sends each text when it is done), one line per text. Without TEXT
arguments, reads one text per line from stdin. With --json, prints each
message as a JSON line instead: text_index, token_ids, text_delta, and on a
text's last message its translation (text, token_ids, score). On an RPC error,
prints the status to stderr and exits 1.
"""

import argparse
import json
import os
import sys

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ts_stubs  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="localhost:50051",
                        help="gRPC target, e.g. localhost:50051")
    parser.add_argument("--beam_size", type=int, default=1,
                        help="1 = greedy (streams token by token, the "
                        "default here); 0 = the model's default")
    parser.add_argument("--max_length", type=int, default=0,
                        help="tokens, counting the decoder start token; "
                        "0 = the model's default")
    parser.add_argument("--json", action="store_true",
                        help="print every message as a JSON line")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds per call")
    ts_stubs.add_model_arguments(parser)
    parser.add_argument("texts", nargs="*", metavar="TEXT")
    args = parser.parse_args()

    model, metadata = ts_stubs.model_from_arguments(parser, args)
    pb2, pb2_grpc = ts_stubs.load(args.stubs_dir)
    texts = args.texts or [line.rstrip("\n") for line in sys.stdin]
    options = pb2.TranslationOptions(beam_size=args.beam_size,
                                     max_length=args.max_length)
    with grpc.insecure_channel(args.server) as channel:
        stub = pb2_grpc.TransformerServiceStub(channel)
        for text in texts:
            request = pb2.TranslateRequest(texts=[text], options=options,
                                           **model)
            try:
                for message in stub.TranslateStream(request,
                                                    timeout=args.timeout,
                                                    metadata=metadata):
                    if args.json:
                        print(json.dumps(message_json(message),
                                         ensure_ascii=False), flush=True)
                    else:
                        print(message.text_delta, end="", flush=True)
            except grpc.RpcError as error:
                if not args.json:
                    print()
                print(f"TranslateStream failed: {error.code().name}: "
                      f"{error.details()}", file=sys.stderr)
                return 1
            if not args.json:
                print(flush=True)
    return 0


def message_json(message):
    """One TranslateStreamResponse as a dict (the translation's best
    hypothesis only)."""
    row = {"text_index": message.text_index,
           "token_ids": list(message.token_ids),
           "text_delta": message.text_delta}
    if message.HasField("translation") and message.translation.hypotheses:
        best = message.translation.hypotheses[0]
        row["translation"] = {"text": best.text,
                              "token_ids": list(best.token_ids),
                              "score": best.score}
    return row


if __name__ == "__main__":
    sys.exit(main())
