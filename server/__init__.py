"""The Monitoring API gRPC server: MonitoringService and PlatformService over Prometheus, Loki and SQLite."""
