-- One row per scan performed by imapav-icapd. Times are unix epoch microseconds (UTC);
-- time_iso is computed from time_us so it can never disagree and costs no storage.
-- Text fields the client did not send are '' rather than NULL, so they read back unchanged;
-- only uid_validity and uid are NULL when the request URL carried none.
-- No CHECK constraints: one unexpected value must not cost a whole batch of rows.
CREATE TABLE scan_events (
  id                INTEGER PRIMARY KEY,
  time_us           INTEGER NOT NULL,
  time_iso          TEXT GENERATED ALWAYS AS (
                      strftime('%Y-%m-%dT%H:%M:%S', time_us / 1000000, 'unixepoch')
                      || printf('.%06dZ', time_us % 1000000)) VIRTUAL,
  gateway           TEXT NOT NULL DEFAULT '',
  service           TEXT NOT NULL DEFAULT '',
  method            TEXT NOT NULL DEFAULT '',
  client_ip         TEXT NOT NULL DEFAULT '',
  user              TEXT NOT NULL DEFAULT '',
  imap_url          TEXT NOT NULL DEFAULT '',
  mailbox           TEXT NOT NULL DEFAULT '',
  uid_validity      INTEGER,
  uid               INTEGER,
  message_id        TEXT NOT NULL DEFAULT '',
  sender            TEXT NOT NULL DEFAULT '',
  recipients        TEXT NOT NULL DEFAULT '',
  subject           TEXT NOT NULL DEFAULT '',
  size              INTEGER NOT NULL DEFAULT 0,
  sha256            TEXT NOT NULL DEFAULT '',
  verdict           TEXT NOT NULL DEFAULT '',
  threats           TEXT NOT NULL DEFAULT '',
  action            TEXT NOT NULL DEFAULT '',
  error_class       TEXT NOT NULL DEFAULT '',
  scan_time_us      INTEGER NOT NULL DEFAULT 0,
  engine_version    TEXT NOT NULL DEFAULT '',
  signature_version TEXT NOT NULL DEFAULT '',
  cached            INTEGER NOT NULL DEFAULT 0
);

-- The operator's questions: "what happened between A and B", "which infections lately",
-- "what did this user / sender / gateway get", "where else did this file or message go".
CREATE INDEX scan_events_time ON scan_events (time_us);
CREATE INDEX scan_events_verdict_time ON scan_events (verdict, time_us);
CREATE INDEX scan_events_user_time ON scan_events (user, time_us);
CREATE INDEX scan_events_sender_time ON scan_events (sender, time_us);
CREATE INDEX scan_events_gateway_time ON scan_events (gateway, time_us);
CREATE INDEX scan_events_sha256 ON scan_events (sha256);
CREATE INDEX scan_events_message_id ON scan_events (message_id);

-- For people at the sqlite3 prompt: the columns worth a glance, newest first when ordered by id.
CREATE VIEW scan_events_readable AS
SELECT id, time_iso, gateway, user, mailbox, uid, sender, subject, size, verdict, threats,
       action, error_class, scan_time_us / 1000 AS scan_ms
FROM scan_events;
