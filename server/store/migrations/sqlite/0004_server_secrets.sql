-- Secrets the server generates once and keeps, e.g. the HMAC key of log page tokens and stream cursors
-- when MONITORING_TOKEN_SECRET is not set (so tokens survive restarts and work on every replica).

CREATE TABLE server_secrets (
    name       TEXT PRIMARY KEY,
    value      BLOB NOT NULL,
    created_ns INTEGER NOT NULL
);
