-- Leases: one holder at a time per name (the evaluator among replicas). epoch grows by one whenever the
-- lease passes to another holder, so a write fenced by an older epoch can be refused (server/store/base.py).
-- expires_ns is read on the database's clock (clock_timestamp()), so replicas on different machines agree.

CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    epoch      BIGINT NOT NULL,
    expires_ns BIGINT NOT NULL
);
