#!/usr/bin/python3
"""Translates texts with a transformer-serving server.

    /usr/bin/python3 client/python/translate.py --server=localhost:50051 \
        --beam_size=1 "A man is riding a bicycle." "Two dogs play."

Prints one translation per line, in input order; without TEXT arguments,
reads one text per line from stdin. On an RPC error, prints the status to
stderr and exits 1.
"""

import argparse
import os
import sys

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ts_stubs  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="localhost:50051",
                        help="gRPC target, e.g. localhost:50051")
    parser.add_argument("--beam_size", type=int, default=0,
                        help="1 = greedy; 0 = the model's default")
    parser.add_argument("--max_length", type=int, default=0,
                        help="tokens, counting the decoder start token; "
                        "0 = the model's default")
    parser.add_argument("--num_hypotheses", type=int, default=0,
                        help="hypotheses per text (printed tab-separated)")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds per call")
    ts_stubs.add_model_arguments(parser)
    parser.add_argument("texts", nargs="*", metavar="TEXT")
    args = parser.parse_args()

    model, metadata = ts_stubs.model_from_arguments(parser, args)
    pb2, pb2_grpc = ts_stubs.load(args.stubs_dir)
    texts = args.texts or [line.rstrip("\n") for line in sys.stdin]
    if not texts:
        return 0
    request = pb2.TranslateRequest(
        texts=texts, **model,
        options=pb2.TranslationOptions(beam_size=args.beam_size,
                                       max_length=args.max_length,
                                       num_hypotheses=args.num_hypotheses))
    with grpc.insecure_channel(args.server) as channel:
        stub = pb2_grpc.TransformerServiceStub(channel)
        try:
            response = stub.Translate(request, timeout=args.timeout,
                                      metadata=metadata)
        except grpc.RpcError as error:
            print(f"Translate failed: {error.code().name}: {error.details()}",
                  file=sys.stderr)
            return 1
    for translation in response.translations:
        print("\t".join(h.text for h in translation.hypotheses))
    return 0


if __name__ == "__main__":
    sys.exit(main())
