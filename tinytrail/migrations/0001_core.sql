-- Accounts, users, websites and the raw events table.
CREATE EXTENSION IF NOT EXISTS pgcrypto;

CREATE TABLE accounts (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id    uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    email         text,
    role          text NOT NULL CHECK (role IN ('admin', 'user')),
    api_key_hash  bytea NOT NULL UNIQUE,  -- HMAC-SHA256(server secret, key): lookup
    api_key_enc   bytea NOT NULL,         -- AEAD-encrypted key: the retrieval endpoint
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX users_account_idx ON users (account_id);

CREATE TABLE websites (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id      uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    domain          text NOT NULL CHECK (length(domain) BETWEEN 1 AND 255),
    content_groups  jsonb NOT NULL DEFAULT '[]',  -- [{"name": ..., "pattern": glob}]
    excluded_ips    jsonb NOT NULL DEFAULT '[]',  -- ["203.0.113.7", "10.0.0.0/8"]
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, domain)
);

-- Every accepted event, stored once (idempotent on (received_at, event_id)),
-- with its enrichment and the Kafka coordinates it was read from.
-- Range-partitioned by UTC day; partitions are created ahead of time by
-- tinytrail_ensure_event_partitions() and dropped by retention.
CREATE TABLE events (
    event_id          uuid NOT NULL,
    received_at       timestamptz NOT NULL,
    website_id        uuid NOT NULL REFERENCES websites (id) ON DELETE CASCADE,
    visitor_id        text NOT NULL,
    session_id        uuid NOT NULL,
    event_type        text NOT NULL,
    event_name        text,
    url               text NOT NULL,
    path              text NOT NULL,
    referrer          text,
    referrer_domain   text,
    referrer_channel  text NOT NULL,
    utm_source        text,
    utm_medium        text,
    utm_campaign      text,
    screen_width      integer,
    screen_height     integer,
    screen_bucket     text NOT NULL,
    browser_family    text NOT NULL,
    os_family         text NOT NULL,
    device_type       text NOT NULL,
    content_group     text,
    properties        jsonb,
    is_bot            boolean NOT NULL,
    is_excluded       boolean NOT NULL,
    kafka_partition   integer NOT NULL,
    kafka_offset      bigint NOT NULL,
    PRIMARY KEY (received_at, event_id)
) PARTITION BY RANGE (received_at);

CREATE INDEX events_site_time_idx ON events (website_id, received_at);
CREATE INDEX events_session_idx ON events (website_id, session_id, received_at);

-- Creates the daily partitions covering [first_day, first_day + days).
CREATE FUNCTION tinytrail_ensure_event_partitions(first_day date, days integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    d date;
    created integer := 0;
    part text;
BEGIN
    FOR i IN 0 .. days - 1 LOOP
        d := first_day + i;
        part := 'events_' || to_char(d, 'YYYYMMDD');
        IF to_regclass(part) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE IF NOT EXISTS %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
                part,
                (d::timestamp AT TIME ZONE 'UTC'),
                ((d + 1)::timestamp AT TIME ZONE 'UTC'));
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END $$;

SELECT tinytrail_ensure_event_partitions((now() AT TIME ZONE 'UTC')::date - 1, 9);
