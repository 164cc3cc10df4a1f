"""The REST/SSE edge of the Monitoring API: documented HTTP paths → gRPC calls, from the proto annotations."""

import os
import sys

# The edge's gRPC client runs on gRPC's long-standing I/O manager rather than the EventEngine client that grpcio
# 1.85 turns on by default: the same calls cost the edge 10–19 % less CPU (docs/edge.md, "Cost per request").
# gRPC reads GRPC_EXPERIMENTS once, when grpc is first imported: it is set for that import only (the processes a
# program importing the edge starts are not affected). Left alone when the operator set it, and when grpc was
# imported before the edge (a test process, say): then it is too late, and the edge runs on gRPC's default.
if "GRPC_EXPERIMENTS" not in os.environ and "grpc" not in sys.modules:
    os.environ["GRPC_EXPERIMENTS"] = "-event_engine_client"
    try:
        import grpc  # noqa: F401
    finally:
        del os.environ["GRPC_EXPERIMENTS"]
