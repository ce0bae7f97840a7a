-- The funnel's per-day cache (api/reports/funnel.py, docs/REPORTS.md "Funnel cache").
--
-- A funnel is additive over UTC days (a session never crosses one), so the figures of a
-- day before today are kept per (website, funnel, day) and a period sums its days. A
-- cached day is used only while its fingerprint still holds:
--   events    the day's `sum(agg_site_daily.events)` for the website: the number of its
--             non-excluded stored events, which every writer (the sink, bulk loads)
--             raises in the same transaction as it stores them. Events are only ever
--             added, so the same count means the same events.
--   rebuilds  `rebuilt_days.rebuilds` of the day: a rebuild can change the counts
--             without adding an event (when it repairs them), so it bumps this.
-- Both are read in the same statement (snapshot) as the events the figures come from.
-- Retention deletes the rows of the days whose events it drops.

-- One row per funnel definition and website; `stored_at` orders the funnels for the
-- retention timer, which keeps the most recently stored ones (streams/retention.py).
CREATE TABLE IF NOT EXISTS funnel_cache (
    website_id  uuid NOT NULL REFERENCES websites (id) ON DELETE CASCADE,
    funnel      bytea NOT NULL,  -- SHA-256 of the definition: steps, content group, bots
    stored_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (website_id, funnel)
);

CREATE TABLE IF NOT EXISTS funnel_cache_days (
    website_id  uuid NOT NULL,
    funnel      bytea NOT NULL,
    day         date NOT NULL,
    events      bigint NOT NULL,    -- fingerprint: sum(agg_site_daily.events) of the day
    rebuilds    bigint NOT NULL,    -- fingerprint: rebuilt_days.rebuilds of the day (0: none)
    sessions    bigint[] NOT NULL,  -- visits of the day reaching step 1, 2, ... N
    PRIMARY KEY (website_id, funnel, day),
    FOREIGN KEY (website_id, funnel) REFERENCES funnel_cache ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS funnel_cache_days_day_idx ON funnel_cache_days (day);

-- How many times each day was rebuilt (streams/rebuild.py, in the day's transaction).
CREATE TABLE IF NOT EXISTS rebuilt_days (
    day       date PRIMARY KEY,
    rebuilds  bigint NOT NULL
);
