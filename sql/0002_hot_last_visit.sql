-- Sliding writes last_visit_time back for every active session every second
-- (write-behind). An index on that column makes each of those updates a
-- non-HOT update that also writes every index of the row; and the purge,
-- whose cutoff depends on each app's durations, never used it (nor the
-- create_time index): it walks the table. Without them, and with free room
-- left in each page, those updates are heap-only (HOT).
DROP INDEX IF EXISTS sessions_last_visit_time;
DROP INDEX IF EXISTS sessions_create_time;
ALTER TABLE sessions SET (fillfactor = 85);
