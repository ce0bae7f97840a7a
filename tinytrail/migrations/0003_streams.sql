-- Stream worker state: sessions and consumer offsets (see docs/STREAMS.md).
--
-- Both are written in the same transaction as the events and the aggregate
-- deltas of one batch, so after any crash Postgres holds a consistent cut:
-- `stream_offsets.next_offset` says which raw messages are already applied.

CREATE TABLE sessions (
    session_id       uuid PRIMARY KEY,
    website_id       uuid NOT NULL REFERENCES websites (id) ON DELETE CASCADE,
    visitor_id       text NOT NULL,
    day              date NOT NULL,
    kpart            smallint NOT NULL,
    is_bot           boolean NOT NULL,
    first_of_day     boolean NOT NULL,  -- counts the visitor once in agg_site_daily.visitors
    first_ms         bigint NOT NULL,   -- first / last event time (epoch ms)
    last_ms          bigint NOT NULL,
    first_eid        uuid NOT NULL,     -- first event (ties on time broken by event id)
    pageviews        integer NOT NULL,
    events           integer NOT NULL,
    engaged          boolean NOT NULL,  -- has a custom or outbound_link event
    landing_ms       bigint,
    landing_eid      uuid,
    landing_path     text,
    landing_group    text,
    exit_ms          bigint,
    exit_eid         uuid,
    exit_path        text,
    exit_group       text,
    channel          text NOT NULL,
    referrer_domain  text,
    utm_source       text,
    utm_medium       text,
    utm_campaign     text,
    device_type      text NOT NULL,
    browser_family   text NOT NULL,
    os_family        text NOT NULL,
    screen_bucket    text NOT NULL,
    seen_pages       jsonb NOT NULL DEFAULT '[]',  -- [[path, group], ...] viewed in this visit
    seen_groups      jsonb NOT NULL DEFAULT '[]'   -- content groups viewed in this visit
);
CREATE INDEX sessions_visitor_idx
    ON sessions (website_id, visitor_id, day, is_bot, kpart, last_ms DESC);
CREATE INDEX sessions_day_idx ON sessions (day);

CREATE TABLE stream_offsets (
    consumer_group  text NOT NULL,
    topic           text NOT NULL,
    kpartition      integer NOT NULL,
    next_offset     bigint NOT NULL,  -- first raw message offset not yet applied
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, kpartition)
);
