-- GetAppHealthHistory reads an app's snapshots of up to 31 days (docs/metrics-and-health.md#health-history):
-- the last evaluation of each status before a time (a seek per status: how transitions are found), and the
-- number of evaluations of each status in a time range (a range of this index per status, stepped through
-- without reading a row). About 86,400 snapshots an app for 30 days at a 30 s tick.
CREATE INDEX health_snapshots_by_status ON health_snapshots(app_id, status, checked_ns);
