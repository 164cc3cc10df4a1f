"""The REST/SSE edge of the Monitoring API: documented HTTP paths → gRPC calls, from the proto annotations."""
