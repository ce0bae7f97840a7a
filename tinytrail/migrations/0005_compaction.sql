-- Compaction of closed days (streams/compaction.py, docs/STREAMS.md "Compaction").
--
-- Rows with kpart = -1 hold a day's figures summed over the Kafka partitions;
-- rows with kpart >= 0 are still written per partition by the workers (today,
-- yesterday, and late events for older days). The compaction run looks for days
-- that still have per-partition rows; this partial index holds only those rows
-- (a few days' worth), so the hourly look-up does not scan years of site rows.
CREATE INDEX IF NOT EXISTS agg_site_daily_uncompacted_idx
    ON agg_site_daily (day) WHERE kpart >= 0;
