-- An index for every query a request runs (REQUEST_QUERIES in server/store/sqlite.py; tests/store/
-- test_query_plans.py asks the planner). Each app's newest health snapshot needs none: the request reads it
-- from the workspace's apps through the primary key (app_id, checked_ns), one seek per app.

-- ListApiKeys: a workspace's keys in creation order, without reading every workspace's keys.
CREATE INDEX api_keys_by_workspace ON api_keys(workspace_id, created_ns, id);

-- ListAlerts and the overview's activity: newest first, ties by id, read in index order up to the limit.
DROP INDEX alerts_by_workspace;
CREATE INDEX alerts_by_workspace ON alerts(workspace_id, triggered_ns, id);
-- ... of one app (also the lookup of an app's alerts when DeleteApp cascades: alerts_one_open is partial) ...
CREATE INDEX alerts_by_app ON alerts(app_id, triggered_ns, id);
-- ... and only the open ones, which are few among the resolved.
CREATE INDEX alerts_open_by_workspace ON alerts(workspace_id, triggered_ns, id) WHERE resolved_ns IS NULL;

-- GetAppHealth's last successful deploy: one seek instead of every deploy of the app.
CREATE INDEX deploys_by_app_status ON deploys(app_id, status, started_ns);
