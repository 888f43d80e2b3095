-- The jobs of one thing (a CloudPod, a tenant's backups) run in order: each
-- asks whether a live job whose key starts with the thing's prefix came
-- before it. Keys are ASCII and compared byte for byte; the database's
-- collation need not keep keys with a common prefix together, so this
-- index holds them in byte order (COLLATE "C") and such a check reads the
-- keys under its prefix. Without it, with a million messages to deliver
-- (each keyed) after a big billing run, each check read every live job:
-- 120 ms, repeated every second by a CloudPod job that waits.
CREATE INDEX jobs_unique_live_bytes ON jobs ((unique_key COLLATE "C"))
    WHERE unique_key IS NOT NULL AND state IN ('pending', 'failed', 'running');
