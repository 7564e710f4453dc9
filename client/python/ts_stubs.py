"""Loads the generated Python stubs of transformer-serving's API.

The stubs are build output (see generate_stubs.sh): load() imports them from
`stubs_dir`, generating them there first if they are missing or older than
the proto.
"""

import importlib
import os
import shutil
import subprocess
import sys

REPO_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PROTO_DIR = os.path.join(REPO_DIR, "proto")
PROTO_FILE = "transformer/v1/transformer_service.proto"
DEFAULT_STUBS_DIR = os.path.join(REPO_DIR, "build", "python")


def _protoc_command(stubs_dir, include_dirs, proto_path):
    """protoc and the gRPC Python plugin of Debian (protobuf-compiler,
    protobuf-compiler-grpc) when installed: Debian's grpc_tools (1.14) bundles
    protoc 3.5, which rejects proto3 `optional` fields; else grpc_tools."""
    protoc = shutil.which("protoc")
    plugin = shutil.which("grpc_python_plugin")
    includes = ["-I" + d for d in include_dirs]
    outputs = ["--python_out=" + stubs_dir, "--grpc_python_out=" + stubs_dir]
    if protoc and plugin:
        return [protoc, "--plugin=protoc-gen-grpc_python=" + plugin] + \
            includes + outputs + [proto_path]
    return [sys.executable, "-m", "grpc_tools.protoc"] + includes + outputs + \
        [proto_path]


def generate(stubs_dir, proto_dir=PROTO_DIR, proto_file=PROTO_FILE):
    """Generates the messages and gRPC stubs of `proto_file` (relative to
    `proto_dir`) into `stubs_dir`."""
    os.makedirs(stubs_dir, exist_ok=True)
    command = _protoc_command(stubs_dir, [proto_dir],
                              os.path.join(proto_dir, proto_file))
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr}")


def load(stubs_dir=None):
    """Returns (transformer_service_pb2, transformer_service_pb2_grpc)."""
    stubs_dir = os.path.abspath(stubs_dir or os.environ.get("TS_PYTHON_STUBS")
                                or DEFAULT_STUBS_DIR)
    generated = os.path.join(stubs_dir, "transformer", "v1",
                             "transformer_service_pb2_grpc.py")
    proto = os.path.join(PROTO_DIR, PROTO_FILE)
    # Missing, or older than the proto (stubs from before a new RPC).
    if not os.path.exists(generated) or (
            os.path.exists(proto) and
            os.path.getmtime(generated) < os.path.getmtime(proto)):
        generate(stubs_dir)
    if stubs_dir not in sys.path:
        sys.path.insert(0, stubs_dir)
    pb2 = importlib.import_module("transformer.v1.transformer_service_pb2")
    pb2_grpc = importlib.import_module(
        "transformer.v1.transformer_service_pb2_grpc")
    return pb2, pb2_grpc


# gRPC metadata naming the model of a call, so that a proxy can keep each
# model on the same pods (Envoy RING_HASH with a hash_policy on this header);
# transformer-client sends the same.
MODEL_METADATA_KEY = "x-model"


def model_metadata(model="", source_language="", target_language=""):
    """The call metadata for a request's model: (("x-model", model),), or
    "SOURCE-TARGET" when routed by languages; () for the default model."""
    key = model or (f"{source_language}-{target_language}"
                    if source_language and target_language else "")
    return ((MODEL_METADATA_KEY, key),) if key else ()


def add_model_arguments(parser):
    """--model, --source_language, --target_language and --stubs_dir, as both
    command-line scripts take them."""
    parser.add_argument("--model", default="",
                        help="the server's model (its folder name in "
                        "--model_repository); empty = routed by the "
                        "languages, else the server's default model")
    parser.add_argument("--source_language", default="",
                        help="with --target_language: the server picks the "
                        "model for this pair (ISO 639-1 or 639-3 codes)")
    parser.add_argument("--target_language", default="",
                        help="with --source_language: the target language")
    parser.add_argument("--stubs_dir", default=None,
                        help="where the generated stubs are (generated there "
                        "if missing); default $TS_PYTHON_STUBS or "
                        "build/python")


def model_from_arguments(parser, args):
    """The request fields naming the model (a dict for TranslateRequest) and
    the call metadata for them; exits through parser.error when only one
    language is given."""
    if bool(args.source_language) != bool(args.target_language):
        parser.error("--source_language and --target_language go together")
    model = dict(model=args.model, source_language=args.source_language,
                 target_language=args.target_language)
    return model, model_metadata(**model)
