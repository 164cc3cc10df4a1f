-- Alerts people can live with (issue 16): acknowledgements, silences, deploy holds, and notification channels
-- fed by a durable outbox; the same tables as SQLite's migration 0008. An event's outbox rows are written in
-- the transaction of the alert change they tell, so an event is queued exactly when its change commits
-- (server/store/base.py, apply_alert_changes).

-- The alert's lifecycle, in the order of the Alert record's fields (ALERT_COLUMNS): who resolved it by hand;
-- the latest acknowledgement (when, by which key, its note, until when: NULL until resolved); the silence
-- that matched when it fired; the end of the deploy hold it fired in; when its `fired` event was queued
-- (NULL while held or silenced: nobody was told).
ALTER TABLE alerts ADD COLUMN resolved_by_key TEXT COLLATE "C";
ALTER TABLE alerts ADD COLUMN acknowledged_ns BIGINT;
ALTER TABLE alerts ADD COLUMN acknowledged_by TEXT COLLATE "C";
ALTER TABLE alerts ADD COLUMN ack_note TEXT;
ALTER TABLE alerts ADD COLUMN ack_until_ns BIGINT;
ALTER TABLE alerts ADD COLUMN silence_id TEXT COLLATE "C";
ALTER TABLE alerts ADD COLUMN held_until_ns BIGINT;
ALTER TABLE alerts ADD COLUMN notified_ns BIGINT;

-- Alerts raised before this migration count as told: there were no channels to tell, and releasing them now
-- would announce old breaches as if they had just fired.
UPDATE alerts SET notified_ns = triggered_ns;

-- Silences are kept after they end (the record of who silenced what). app_id NULL: every app of the
-- workspace; alert_types: comma-separated AlertType values, '' for every type. No foreign key on app_id:
-- a silence outlives the app it named, as a record.
CREATE TABLE silences (
    id           TEXT COLLATE "C" PRIMARY KEY,
    workspace_id TEXT COLLATE "C" NOT NULL REFERENCES workspaces(id),
    app_id       TEXT COLLATE "C",
    alert_types  TEXT NOT NULL,
    starts_ns    BIGINT NOT NULL,
    ends_ns      BIGINT NOT NULL,
    comment      TEXT NOT NULL,
    created_by   TEXT COLLATE "C" NOT NULL,
    created_ns   BIGINT NOT NULL
);
-- ListSilences (newest start first) and the live-silence count of a workspace.
CREATE INDEX silences_by_workspace ON silences(workspace_id, starts_ns, id);
-- The silences in effect now, of every workspace (each tick): the ones not yet ended, not every one ever made.
CREATE INDEX silences_by_end ON silences(ends_ns);

-- events: comma-separated NotificationEvent values (never empty). secret: a webhook's signing secret.
CREATE TABLE channels (
    id           TEXT COLLATE "C" PRIMARY KEY,
    workspace_id TEXT COLLATE "C" NOT NULL REFERENCES workspaces(id),
    name         TEXT NOT NULL,
    kind         TEXT COLLATE "C" NOT NULL,
    url          TEXT NOT NULL,
    format       TEXT COLLATE "C" NOT NULL,
    secret       TEXT NOT NULL,
    events       TEXT COLLATE "C" NOT NULL,
    reminder_s   INTEGER NOT NULL,
    created_ns   BIGINT NOT NULL
);
-- ListNotificationChannels (oldest first), and a change's subscribers.
CREATE INDEX channels_by_workspace ON channels(workspace_id, created_ns, id);

-- The outbox: one row per (event, channel). id is the event's id, the idempotency key of every attempt; body
-- is the payload as first sent (NULL before the first attempt), so that retries carry the same bytes. No
-- foreign key on alert_id: a delivery outlives its alert (deleted with its app) until its retention ends.
CREATE TABLE outbox (
    id               TEXT COLLATE "C" PRIMARY KEY,
    channel_id       TEXT COLLATE "C" NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    workspace_id     TEXT COLLATE "C" NOT NULL,
    event            TEXT COLLATE "C" NOT NULL,
    alert_id         TEXT COLLATE "C",
    created_ns       BIGINT NOT NULL,
    status           TEXT COLLATE "C" NOT NULL,
    attempts         INTEGER NOT NULL,
    next_attempt_ns  BIGINT,
    last_attempt_ns  BIGINT,
    last_status_code INTEGER,
    last_error       TEXT,
    body             BYTEA
);
-- The notifier's due deliveries: the pending ones, earliest due first.
CREATE INDEX outbox_due ON outbox(status, next_attempt_ns, created_ns);
-- A channel's delivery log, newest first (also the cascade when the channel is deleted).
CREATE INDEX outbox_by_channel ON outbox(channel_id, created_ns, id);
-- The newest event of each (channel, open alert): when a reminder is due.
CREATE INDEX outbox_by_alert ON outbox(alert_id, channel_id, created_ns);
-- The delivery log's retention: a range delete by age instead of a scan of the whole log.
CREATE INDEX outbox_by_time ON outbox(created_ns);

-- The start of each app's newest deploy since a time (the deploy hold, each tick): a range of this index.
CREATE INDEX deploys_by_start ON deploys(started_ns, app_id);
