-- Leases: one holder at a time per name (the evaluator among replicas). epoch grows by one whenever the
-- lease passes to another holder, so a write fenced by an older epoch can be refused (server/store/base.py).
-- expires_ns is read on the store's clock, so replicas on different machines agree on an expiry.

CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    epoch      INTEGER NOT NULL,
    expires_ns INTEGER NOT NULL
);
