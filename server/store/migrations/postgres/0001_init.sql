-- The service's own state: the final schema of SQLite migrations 0001-0004 in one step (no PostgreSQL
-- database predates this backend). Times are BIGINT nanoseconds since the Unix epoch (UTC); REAL in SQLite
-- is an 8-byte float, hence DOUBLE PRECISION. Ids and enum strings use the "C" collation so that ORDER BY
-- compares bytes, as SQLite does, whatever the database's locale.

CREATE TABLE workspaces (
    id          TEXT COLLATE "C" PRIMARY KEY,
    name        TEXT NOT NULL,
    created_ns  BIGINT NOT NULL
);

CREATE TABLE apps (
    id               TEXT COLLATE "C" PRIMARY KEY,
    workspace_id     TEXT COLLATE "C" NOT NULL REFERENCES workspaces(id),
    name             TEXT NOT NULL,
    service_name     TEXT NOT NULL,
    memory_limit_mib DOUBLE PRECISION NOT NULL,
    cpu_limit_cores  DOUBLE PRECISION NOT NULL,
    created_ns       BIGINT NOT NULL
);
CREATE INDEX apps_by_workspace ON apps(workspace_id, id);

CREATE TABLE deploys (
    app_id       TEXT COLLATE "C" NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    id           TEXT COLLATE "C" NOT NULL,
    workspace_id TEXT COLLATE "C" NOT NULL,
    status       TEXT NOT NULL,
    started_ns   BIGINT NOT NULL,
    finished_ns  BIGINT,
    PRIMARY KEY (app_id, id)
);
CREATE INDEX deploys_by_workspace ON deploys(workspace_id, started_ns);

CREATE TABLE builds (
    app_id       TEXT COLLATE "C" NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    id           TEXT COLLATE "C" NOT NULL,
    workspace_id TEXT COLLATE "C" NOT NULL,
    status       TEXT NOT NULL,
    started_ns   BIGINT NOT NULL,
    finished_ns  BIGINT,
    PRIMARY KEY (app_id, id)
);
CREATE INDEX builds_by_workspace ON builds(workspace_id, started_ns);

-- Only the SHA-256 of a key's secret is kept.
CREATE TABLE api_keys (
    id           TEXT COLLATE "C" PRIMARY KEY,
    workspace_id TEXT COLLATE "C" NOT NULL REFERENCES workspaces(id),
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    secret_hash  BYTEA NOT NULL UNIQUE,
    created_ns   BIGINT NOT NULL,
    revoked_ns   BIGINT
);

CREATE TABLE health_snapshots (
    app_id          TEXT COLLATE "C" NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    workspace_id    TEXT COLLATE "C" NOT NULL,
    checked_ns      BIGINT NOT NULL,
    status          TEXT NOT NULL,
    up_since_ns     BIGINT,
    instance_count  INTEGER,
    error_rate      DOUBLE PRECISION,
    avg_latency_ms  DOUBLE PRECISION,
    reasons         TEXT NOT NULL,
    PRIMARY KEY (app_id, checked_ns)
);
-- Snapshots are pruned by age every evaluator tick: a range delete instead of a scan of every app's history.
CREATE INDEX health_snapshots_by_time ON health_snapshots(checked_ns);

CREATE TABLE alerts (
    id            TEXT COLLATE "C" PRIMARY KEY,
    workspace_id  TEXT COLLATE "C" NOT NULL,
    app_id        TEXT COLLATE "C" NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    type          TEXT COLLATE "C" NOT NULL,
    severity      TEXT NOT NULL,
    message       TEXT NOT NULL,
    triggered_ns  BIGINT NOT NULL,
    resolved_ns   BIGINT,
    resolved_by   TEXT,
    -- A manually resolved alert keeps its (app, type) latched until the metric is seen recovered:
    -- rearmed_ns is when that happened. NULL on a manual resolution means "still latched".
    rearmed_ns    BIGINT
);
CREATE INDEX alerts_by_workspace ON alerts(workspace_id, triggered_ns);
-- At most one open alert per (app, type), so two evaluators cannot fire the same breach twice.
CREATE UNIQUE INDEX alerts_one_open ON alerts(app_id, type) WHERE resolved_ns IS NULL;
CREATE INDEX alerts_latched ON alerts(app_id, type) WHERE resolved_by = 'manual' AND rearmed_ns IS NULL;

-- Alert threshold overrides, per workspace (app_id NULL) or per app.
CREATE TABLE alert_rules (
    id                 TEXT COLLATE "C" PRIMARY KEY,
    workspace_id       TEXT COLLATE "C" NOT NULL REFERENCES workspaces(id),
    -- NULL: the rule applies to every app of the workspace that has no rule of its own.
    app_id             TEXT COLLATE "C" REFERENCES apps(id) ON DELETE CASCADE,
    type               TEXT COLLATE "C" NOT NULL,
    warning_threshold  DOUBLE PRECISION NOT NULL,
    critical_threshold DOUBLE PRECISION NOT NULL,
    recovery_threshold DOUBLE PRECISION NOT NULL,
    hold_seconds       INTEGER NOT NULL,
    created_ns         BIGINT NOT NULL,
    updated_ns         BIGINT NOT NULL
);
-- One rule per (workspace, app or workspace-wide, type): overrides never compete.
CREATE UNIQUE INDEX alert_rules_one_per_scope ON alert_rules(workspace_id, coalesce(app_id, ''), type);

-- Secrets the server generates once and keeps, e.g. the HMAC key of log page tokens and stream cursors
-- when MONITORING_TOKEN_SECRET is not set (so tokens survive restarts and work on every replica).
CREATE TABLE server_secrets (
    name       TEXT PRIMARY KEY,
    value      BYTEA NOT NULL,
    created_ns BIGINT NOT NULL
);
