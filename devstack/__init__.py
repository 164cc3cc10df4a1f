"""The local demo stack behind `make run`: real Prometheus, the local Loki stand-in, a demo workload,
the gRPC server and the edge, seeded with a demo workspace through PlatformService."""
