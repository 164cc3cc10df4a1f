-- Health snapshots are pruned by age every evaluator tick (server/health.py); this index keeps that a
-- range delete instead of a scan of every app's history.
CREATE INDEX health_snapshots_by_time ON health_snapshots(checked_ns);
