-- Daily aggregates maintained by the stream workers (and rebuilt from stored
-- events by `tinytrail aggregate` / POST /api/v1/admin/aggregate).
--
-- Every figure is additive across rows, so any period is a SUM:
--   * `kpart` is the Kafka partition of the raw events. A visitor (and so each
--     session) lives in one partition, which makes every counter exact per
--     partition; keeping the partition in the key spreads a hot website over
--     many rows and workers (no single-row lock per site). Reports sum kpart.
--   * Visitor ids rotate with the daily salt, so per-day distinct visitors add
--     up over a period (a person seen on two days counts twice: documented).
--   * Sessions never cross a UTC day (the salt changes at midnight), so every
--     session figure belongs to exactly one day.
--   * Excluded traffic is never aggregated; bot traffic is kept apart (is_bot).

CREATE TABLE agg_site_daily (
    website_id    uuid NOT NULL REFERENCES websites (id) ON DELETE CASCADE,
    day           date NOT NULL,
    is_bot        boolean NOT NULL,
    kpart         smallint NOT NULL,
    visitors      bigint NOT NULL DEFAULT 0,  -- distinct visitor ids that day
    visits        bigint NOT NULL DEFAULT 0,  -- sessions with >= 1 page_view
    pageviews     bigint NOT NULL DEFAULT 0,  -- page_view events
    bounces       bigint NOT NULL DEFAULT 0,  -- visits with 1 page_view, no custom/outbound_link
    duration_sec  bigint NOT NULL DEFAULT 0,  -- sum over visits of whole seconds (last - first event)
    events        bigint NOT NULL DEFAULT 0,  -- all events (any type)
    PRIMARY KEY (website_id, day, is_bot, kpart)
);

-- Breakdowns. `dim` / `key` / which counters are meaningful:
--   page          key=path, grp=content group at ingest ('' = none):
--                 pageviews, unique_pageviews (visits that viewed the path),
--                 entries (visits landing here), exits (visits whose last page_view is here),
--                 bounces and duration_sec (of the visits that landed here)
--   channel       key=Organic Search|Paid Search|Social|Email|Referral|Direct: visits, bounces, duration_sec
--   referrer      key=referrer host without www. (external referrers only): visits
--   utm           key=source \x1f medium \x1f campaign (visits with any UTM value): visits
--   device        key=desktop|mobile|tablet|bot|other: visits
--   browser       key=browser family: visits
--   os            key=OS family: visits
--   screen        key=320-375|376-768|769-1024|1025-1440|1441+|unknown: visits
--   content_group key=group name: pageviews, unique_pageviews, entries
--   event_type    key=event type: events
--   custom_event  key=properties.name of `custom` events: events
-- Session-level dimensions (channel, referrer, utm, device, browser, os, screen)
-- come from the first event of the visit.
CREATE TABLE agg_dim_daily (
    website_id        uuid NOT NULL REFERENCES websites (id) ON DELETE CASCADE,
    day               date NOT NULL,
    is_bot            boolean NOT NULL,
    dim               text NOT NULL,
    key               text NOT NULL,
    grp               text NOT NULL DEFAULT '',
    kpart             smallint NOT NULL,
    visits            bigint NOT NULL DEFAULT 0,
    pageviews         bigint NOT NULL DEFAULT 0,
    unique_pageviews  bigint NOT NULL DEFAULT 0,
    entries           bigint NOT NULL DEFAULT 0,
    exits             bigint NOT NULL DEFAULT 0,
    bounces           bigint NOT NULL DEFAULT 0,
    duration_sec      bigint NOT NULL DEFAULT 0,
    events            bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (website_id, day, is_bot, dim, key, grp, kpart)
);
CREATE INDEX agg_dim_daily_lookup_idx ON agg_dim_daily (website_id, dim, day);
