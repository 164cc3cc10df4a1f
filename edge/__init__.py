"""The REST/SSE edge of the Monitoring API: documented HTTP paths → gRPC calls, from the proto annotations."""

import os

# The edge's gRPC client runs on gRPC's long-standing I/O manager rather than the EventEngine client that grpcio
# 1.85 turns on by default: the same calls cost the edge 10–20 % less CPU (docs/edge.md, "Cost per request").
# gRPC reads GRPC_EXPERIMENTS once, when grpc is first imported: it is set for that import only (the processes a
# program importing the edge starts are not affected), and an operator's own GRPC_EXPERIMENTS is left as it is.
if "GRPC_EXPERIMENTS" not in os.environ:
    os.environ["GRPC_EXPERIMENTS"] = "-event_engine_client"
    try:
        import grpc  # noqa: F401
    finally:
        del os.environ["GRPC_EXPERIMENTS"]
