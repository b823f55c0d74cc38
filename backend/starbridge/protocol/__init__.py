"""Generated protobuf and gRPC modules (scripts/gen_protos.py from protos/). Do not edit by hand."""
