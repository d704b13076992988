-- Indexes for imapav-log's view of signature reloads and the verdict cache (issue 7):
-- which signatures answered (signature_version), and whether the answer came from the
-- cache (cached). On a 1M-row log this migration took about 8 s on 2 busy cores (the event
-- writer runs it on its own thread; scanning goes on) and adds about 55 MB (6%).

-- "stats" counts by signature version and cache hits in its one pass over a time range. The
-- covering index of 0003 gains the two columns, so that pass still reads no table page
-- (without them it read each row of the range from the table: a week of a 1M-row log took
-- 265 ms instead of 167). Same name, same leading columns: a query that used the old one
-- uses this one. +15 MB on 1M rows.
DROP INDEX scan_events_time_stats;
CREATE INDEX scan_events_time_stats ON scan_events
  (time_us, verdict, action, error_class, gateway, signature_version, cached);

-- "--signature-version V": like every filter's index, it ends in time_us ("newest first" is
-- one index range with no sort). Without it, a version from weeks ago read most of the log
-- (1.4-2.2 s on 1M rows; 10-60 ms with it). A version holds still between reloads, so rows
-- are added at the end of its range, as in scan_events_time.
CREATE INDEX scan_events_signature_version_time ON scan_events (signature_version, time_us);

-- "--cached yes": only the answers from the cache (none when it is off, where a walk in time
-- order would read the whole log to find nothing). imapav-log writes the term as
-- "cached = 1", which SQLite needs to see to use a partial index.
CREATE INDEX scan_events_cached_time ON scan_events (time_us) WHERE cached = 1;
