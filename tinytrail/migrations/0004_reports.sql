-- Reports: the funnel reads stored events step by step. Each step is
-- `event_type = X [AND path = P | AND event_name = N]` inside the day partitions
-- of its period, so one index keyed by (website, type, path) lets every step read
-- only its own events, and the INCLUDE columns make it an index-only scan.
CREATE INDEX IF NOT EXISTS events_funnel_idx
    ON events (website_id, event_type, path, received_at)
    INCLUDE (session_id, event_name, is_bot, is_excluded, content_group);
