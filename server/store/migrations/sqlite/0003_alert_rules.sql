-- Alert threshold overrides, per workspace (app_id NULL) or per app, and the re-arm mark of alerts.

CREATE TABLE alert_rules (
    id                 TEXT PRIMARY KEY,
    workspace_id       TEXT NOT NULL REFERENCES workspaces(id),
    -- NULL: the rule applies to every app of the workspace that has no rule of its own.
    app_id             TEXT REFERENCES apps(id) ON DELETE CASCADE,
    type               TEXT NOT NULL,
    warning_threshold  REAL NOT NULL,
    critical_threshold REAL NOT NULL,
    recovery_threshold REAL NOT NULL,
    hold_seconds       INTEGER NOT NULL,
    created_ns         INTEGER NOT NULL,
    updated_ns         INTEGER NOT NULL
);
-- One rule per (workspace, app or workspace-wide, type): overrides never compete.
CREATE UNIQUE INDEX alert_rules_one_per_scope ON alert_rules(workspace_id, coalesce(app_id, ''), type);

-- A manually resolved alert keeps its (app, type) latched until the metric is seen recovered:
-- rearmed_ns is when that happened. NULL on a manual resolution means "still latched".
ALTER TABLE alerts ADD COLUMN rearmed_ns INTEGER;
CREATE INDEX alerts_latched ON alerts(app_id, type) WHERE resolved_by = 'manual' AND rearmed_ns IS NULL;
