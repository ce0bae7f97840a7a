-- Countries (docs/COUNTRIES.md). The collector looks the client address up in an
-- offline IP-to-country database before hashing it; only the ISO 3166-1 alpha-2 code
-- travels on (RawEvent.country) and is stored. No address is stored, here or anywhere.
--
-- events.country: the code, NULL when unknown (private, reserved or unlisted address).
-- Nullable without a default: a catalogue-only change, no partition is rewritten.
ALTER TABLE events ADD COLUMN IF NOT EXISTS country text;

-- agg_dim_daily gets `visitors` (distinct visitor ids that day), filled only by the
-- `country` rows (0 elsewhere), so that `summary?country=DE` has every site figure.
--   country   key=ISO code ('' = unknown): visitors, visits, bounces, duration_sec of
--             the visits whose first event has that code; pageviews and events of
--             the events that have it (the two agree unless the database changed during
--             a visit). Sums over keys equal agg_site_daily. ~30 codes: few rows.
--
-- Nullable on purpose: a worker of the previous release, still running while the
-- upgrade rolls, builds its scratch table with `LIKE agg_dim_daily` (NOT NULL copied,
-- defaults not) and COPYs without this column; NOT NULL would refuse every batch it
-- writes. Its rows get NULL (no country rows: it does not know countries), which SUM
-- ignores.
ALTER TABLE agg_dim_daily ADD COLUMN IF NOT EXISTS visitors bigint DEFAULT 0;

-- Pages by country (`pages?country=DE`): page views of events from the country, unique
-- page views = visits from the country that viewed the path; known codes only. A table
-- of its own: paths x countries is many rows (2.4 M of 2.8 M aggregate rows before
-- compaction at 10 M events in bench/reports.py), which in agg_dim_daily slowed the
-- plain `pages` report ~6x. The key leads with (website, country, day), so one
-- country's period is one index range. Same rules as the other aggregates: additive,
-- per Kafka partition (`kpart`), compacted to kpart = -1, rebuilt with the day.
CREATE TABLE IF NOT EXISTS agg_page_country_daily (
    website_id        uuid NOT NULL REFERENCES websites (id) ON DELETE CASCADE,
    country           text NOT NULL,
    day               date NOT NULL,
    is_bot            boolean NOT NULL,
    path              text NOT NULL,
    grp               text NOT NULL DEFAULT '',
    kpart             smallint NOT NULL,
    pageviews         bigint NOT NULL DEFAULT 0,
    unique_pageviews  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (website_id, country, day, is_bot, path, grp, kpart)
);
