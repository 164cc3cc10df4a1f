"""Everything read from Prometheus: the client, every PromQL template, GetAppMetrics, the evaluator's tick,
health, and the workspace overview."""
