-- Rollups written by `metrica worker` (metrica.jobs.rollups) as idempotent upserts: recomputing a store's
-- business day from raw crossings replaces its rows, so a late batch (an outbox replayed after an outage)
-- only needs the affected days recomputed. Hours and days are on the store's grid: a business day starts at
-- day_start_hour in its time zone and holds 23, 24 or 25 hourly rows; hour_start is the UTC instant.
-- Rollups are kept when raw events expire (retention): they are the history.

-- Store totals (entrance = footfall lines only), one row per hour of every rolled-up business day.
CREATE TABLE IF NOT EXISTS store_hourly (
    store_id        integer NOT NULL,
    hour_start      timestamptz NOT NULL,
    business_date   date NOT NULL,
    ins             integer NOT NULL DEFAULT 0,
    outs            integer NOT NULL DEFAULT 0,
    peak_occupancy  integer NOT NULL DEFAULT 0,      -- highest "inside" during the hour
    occupancy_seconds double precision NOT NULL DEFAULT 0,  -- ∫ occupancy dt over the hour (person-seconds)
    computed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (store_id, hour_start)
);
CREATE INDEX IF NOT EXISTS store_hourly_day ON store_hourly (store_id, business_date);

CREATE TABLE IF NOT EXISTS store_daily (
    store_id        integer NOT NULL,
    business_date   date NOT NULL,
    day_start       timestamptz NOT NULL,
    day_end         timestamptz NOT NULL,
    ins             integer NOT NULL DEFAULT 0,
    outs            integer NOT NULL DEFAULT 0,
    peak_occupancy  integer NOT NULL DEFAULT 0,
    peak_at         timestamptz,                     -- when the peak was first reached
    occupancy_seconds double precision NOT NULL DEFAULT 0,
    avg_dwell_seconds double precision,              -- occupancy_seconds / ins; NULL with no visits
    computed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (store_id, business_date)
);

-- Per line (every line, entrance or not; a camera's totals are the sum of its footfall lines).
CREATE TABLE IF NOT EXISTS line_hourly (
    store_id        integer NOT NULL,
    camera_id       integer NOT NULL,
    line_id         integer NOT NULL,
    line            text NOT NULL,                   -- the name it was last counted under
    footfall        boolean NOT NULL,
    hour_start      timestamptz NOT NULL,
    business_date   date NOT NULL,
    ins             integer NOT NULL DEFAULT 0,
    outs            integer NOT NULL DEFAULT 0,
    computed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (line_id, hour_start)
);
CREATE INDEX IF NOT EXISTS line_hourly_store ON line_hourly (store_id, hour_start);
CREATE INDEX IF NOT EXISTS line_hourly_day ON line_hourly (store_id, business_date);

CREATE TABLE IF NOT EXISTS line_daily (
    store_id        integer NOT NULL,
    camera_id       integer NOT NULL,
    line_id         integer NOT NULL,
    line            text NOT NULL,
    footfall        boolean NOT NULL,
    business_date   date NOT NULL,
    ins             integer NOT NULL DEFAULT 0,
    outs            integer NOT NULL DEFAULT 0,
    computed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (line_id, business_date)
);
CREATE INDEX IF NOT EXISTS line_daily_store ON line_daily (store_id, business_date);

-- Camera uptime per business day (seconds in state 'running' / seconds of the day observed so far).
CREATE TABLE IF NOT EXISTS camera_daily (
    store_id        integer NOT NULL,
    camera_id       integer NOT NULL,
    business_date   date NOT NULL,
    running_seconds double precision NOT NULL DEFAULT 0,
    observed_seconds double precision NOT NULL DEFAULT 0,
    computed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (camera_id, business_date)
);
CREATE INDEX IF NOT EXISTS camera_daily_store ON camera_daily (store_id, business_date);

-- Incremental passes: every crossing inserted at or before rolled_inserted_at is reflected in the rollups.
-- A pass re-reads a small overlap before it, since inserted_at is a transaction's start time and a
-- transaction may commit after a later one (recomputing a day twice is harmless).
CREATE TABLE IF NOT EXISTS rollup_state (
    id                  boolean PRIMARY KEY DEFAULT true CHECK (id),  -- a single row
    rolled_inserted_at  timestamptz NOT NULL DEFAULT '-infinity',
    updated_at          timestamptz NOT NULL DEFAULT now()
);
INSERT INTO rollup_state (id) VALUES (true) ON CONFLICT DO NOTHING;
