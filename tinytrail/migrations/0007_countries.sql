-- Countries (docs/COUNTRIES.md). The collector looks the client address up in an
-- offline IP-to-country database before hashing it; only the ISO 3166-1 alpha-2 code
-- travels on (RawEvent.country) and is stored. No address is stored, here or anywhere.
--
-- events.country: the code, NULL when unknown (private, reserved or unlisted address).
-- Nullable without a default: a catalogue-only change, no partition is rewritten.
ALTER TABLE events ADD COLUMN IF NOT EXISTS country text;

-- agg_dim_daily gets `visitors` (distinct visitor ids that day), filled only by the
-- country rows (0 elsewhere), so that `summary?country=DE` has every site figure.
-- New dims (streams/sessions.py):
--   country   key=ISO code ('' = unknown): visitors, visits, bounces, duration_sec of
--             the visits whose first event has that country; pageviews and events of
--             the events that have it (the two agree unless the database changed during
--             a visit). Sums over keys equal agg_site_daily.
--   page:CC   (one dim per country, e.g. 'page:DE'; known countries only)
--             key=path, grp=content group: pageviews (events from CC),
--             unique_pageviews (visits from CC that viewed the path).
-- One dim per country keeps `pages?country=DE` on the (website_id, dim, day) index.
ALTER TABLE agg_dim_daily ADD COLUMN IF NOT EXISTS visitors bigint NOT NULL DEFAULT 0;
