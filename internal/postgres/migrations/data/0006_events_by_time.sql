-- The retention sweep drops a tenant's events dated before its cutoff
-- (DELETE … WHERE tenant_id = $1 AND at < $2) and lists them
-- (EventsBefore). Without an index by time both read every row of the
-- tenant: 6 to 22 s with 10 M events stored, every hour, and the ingest
-- writer, which runs the drop, waited meanwhile. Events arrive roughly in
-- time order, so this index grows at its right edge and costs little per
-- insert. Building it takes a lock that holds writes to events up while
-- it runs (about a minute per 10 M events here).
CREATE INDEX events_by_time ON events (tenant_id, at);
