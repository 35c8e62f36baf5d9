"""Background jobs run by `metrica worker` (arq over Redis): rollups, daily reports, alerts, retention.

Each job module exposes ``FUNCTIONS`` (arq functions, enqueued by name) and ``CRON_JOBS``; `metrica.jobs.worker`
assembles them. Jobs get the worker's context: ``ctx["pool"]`` (asyncpg), ``ctx["settings"]``
(`metrica.config.Settings`), ``ctx["redis"]`` (arq's Redis, also used to publish live messages). Every job is
safe to run twice and with several workers at once: writes are idempotent upserts or guarded by unique keys.
"""
