-- One row per notification mail imapav-icapd sent, failed to send, or decided not to send
-- (rate-limited, queue full, skipped). Times are unix epoch microseconds (UTC) of the final
-- outcome; time_iso is computed from time_us so it can never disagree and costs no storage.
-- Text fields are '' rather than NULL, so they read back unchanged.
-- No CHECK constraints: one unexpected value must not cost a whole batch of rows.
CREATE TABLE notifications (
  id          INTEGER PRIMARY KEY,
  time_us     INTEGER NOT NULL,
  time_iso    TEXT GENERATED ALWAYS AS (
                strftime('%Y-%m-%dT%H:%M:%S', time_us / 1000000, 'unixepoch')
                || printf('.%06dZ', time_us % 1000000)) VIRTUAL,
  kind        TEXT NOT NULL DEFAULT '',
  recipient   TEXT NOT NULL DEFAULT '',
  outcome     TEXT NOT NULL DEFAULT '',
  attempts    INTEGER NOT NULL DEFAULT 0,
  detail      TEXT NOT NULL DEFAULT '',
  message_id  TEXT NOT NULL DEFAULT '',
  gateway     TEXT NOT NULL DEFAULT ''
);

-- The operator's questions: "what went out between A and B", "which ones failed lately".
-- A notification is joined to its scan by message_id; scan_events already indexes that side.
CREATE INDEX notifications_time ON notifications (time_us);
CREATE INDEX notifications_outcome_time ON notifications (outcome, time_us);

-- For people at the sqlite3 prompt: the columns worth a glance, newest first when ordered by id.
CREATE VIEW notifications_readable AS
SELECT id, time_iso, kind, recipient, outcome, attempts, detail, message_id, gateway
FROM notifications;
