-- The service's own state. Times are INTEGER nanoseconds since the Unix epoch (UTC).

CREATE TABLE workspaces (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_ns  INTEGER NOT NULL
);

CREATE TABLE apps (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL REFERENCES workspaces(id),
    name             TEXT NOT NULL,
    service_name     TEXT NOT NULL,
    memory_limit_mib REAL NOT NULL,
    cpu_limit_cores  REAL NOT NULL,
    created_ns       INTEGER NOT NULL
);
CREATE INDEX apps_by_workspace ON apps(workspace_id, id);

CREATE TABLE deploys (
    app_id       TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    id           TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    status       TEXT NOT NULL,
    started_ns   INTEGER NOT NULL,
    finished_ns  INTEGER,
    PRIMARY KEY (app_id, id)
);
CREATE INDEX deploys_by_workspace ON deploys(workspace_id, started_ns);

CREATE TABLE builds (
    app_id       TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    id           TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    status       TEXT NOT NULL,
    started_ns   INTEGER NOT NULL,
    finished_ns  INTEGER,
    PRIMARY KEY (app_id, id)
);
CREATE INDEX builds_by_workspace ON builds(workspace_id, started_ns);

-- Only the SHA-256 of a key's secret is kept.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    secret_hash  BLOB NOT NULL UNIQUE,
    created_ns   INTEGER NOT NULL,
    revoked_ns   INTEGER
);

CREATE TABLE health_snapshots (
    app_id          TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    workspace_id    TEXT NOT NULL,
    checked_ns      INTEGER NOT NULL,
    status          TEXT NOT NULL,
    up_since_ns     INTEGER,
    instance_count  INTEGER,
    error_rate      REAL,
    avg_latency_ms  REAL,
    reasons         TEXT NOT NULL,
    PRIMARY KEY (app_id, checked_ns)
);

CREATE TABLE alerts (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL,
    app_id        TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    type          TEXT NOT NULL,
    severity      TEXT NOT NULL,
    message       TEXT NOT NULL,
    triggered_ns  INTEGER NOT NULL,
    resolved_ns   INTEGER,
    resolved_by   TEXT
);
CREATE INDEX alerts_by_workspace ON alerts(workspace_id, triggered_ns);
-- At most one open alert per (app, type), so two evaluators cannot fire the same breach twice.
CREATE UNIQUE INDEX alerts_one_open ON alerts(app_id, type) WHERE resolved_ns IS NULL;
