-- TimescaleDB when present, PostgreSQL always. On a server that offers the timescaledb extension this
-- creates it and turns the three time series into hypertables with compression and retention; on plain
-- PostgreSQL it only raises a NOTICE (the migration is still recorded, so it never runs twice).
-- Queries elsewhere use what both have (date_bin, window functions), so nothing depends on the outcome.
--
-- Defaults, chosen for a shop's volumes (a busy door is ~10k crossings a day, a few MB a month):
--   chunks       7 days for every table (a week of a store fits one chunk comfortably)
--   compression  chunks older than 7 days, segmented by store/camera and ordered by ts, so per-store
--                and per-camera time ranges (what reports and rollups read) decompress only what they need.
--                Late rows (an outbox replayed after a week-long outage) still insert: TimescaleDB >= 2.11
--                handles INSERT ... ON CONFLICT DO NOTHING into compressed chunks.
--   retention    crossings 400 days (a year of reports plus last-year comparisons), occupancy samples
--                400 days, camera status 90 days (uptime history and offline alerts need little).
--                Rollup tables, when added, keep their own (longer) retention.
-- To change a default later, write a new migration (remove_retention_policy + add_retention_policy).

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
        RAISE NOTICE 'timescaledb is not available: crossings, occupancy_samples and camera_status stay plain tables';
        RETURN;
    END IF;

    CREATE EXTENSION IF NOT EXISTS timescaledb;

    PERFORM create_hypertable('crossings', 'ts', chunk_time_interval => INTERVAL '7 days',
                              migrate_data => TRUE, if_not_exists => TRUE);
    PERFORM create_hypertable('occupancy_samples', 'ts', chunk_time_interval => INTERVAL '7 days',
                              migrate_data => TRUE, if_not_exists => TRUE);
    PERFORM create_hypertable('camera_status', 'ts', chunk_time_interval => INTERVAL '7 days',
                              migrate_data => TRUE, if_not_exists => TRUE);

    ALTER TABLE crossings SET (timescaledb.compress,
                               timescaledb.compress_segmentby = 'store_id, camera_id',
                               timescaledb.compress_orderby = 'ts DESC');
    ALTER TABLE occupancy_samples SET (timescaledb.compress,
                                       timescaledb.compress_segmentby = 'store_id',
                                       timescaledb.compress_orderby = 'ts DESC');
    ALTER TABLE camera_status SET (timescaledb.compress,
                                   timescaledb.compress_segmentby = 'camera_id',
                                   timescaledb.compress_orderby = 'ts DESC');

    PERFORM add_compression_policy('crossings', INTERVAL '7 days', if_not_exists => TRUE);
    PERFORM add_compression_policy('occupancy_samples', INTERVAL '7 days', if_not_exists => TRUE);
    PERFORM add_compression_policy('camera_status', INTERVAL '7 days', if_not_exists => TRUE);

    PERFORM add_retention_policy('crossings', INTERVAL '400 days', if_not_exists => TRUE);
    PERFORM add_retention_policy('occupancy_samples', INTERVAL '400 days', if_not_exists => TRUE);
    PERFORM add_retention_policy('camera_status', INTERVAL '90 days', if_not_exists => TRUE);

    RAISE NOTICE 'timescaledb: crossings, occupancy_samples and camera_status are hypertables';
END
$$;
