"""How fast the EventWriter stores crossings in PostgreSQL, and what its outbox costs.

``python -m metrica.eval.bench_writer --dsn postgresql://postgres@127.0.0.1:5432/test --events 100000``

Runs in a scratch database (``metrica_bench_<hex>``, created on the DSN's server and dropped after) so it
never touches real data. Measures, for ``events`` crossings in batches of ``batch_size``:

* ``ingest``: submit → committed through the EventWriter (unnest INSERT ... ON CONFLICT DO NOTHING);
* ``dedup``: the same events again (every row a duplicate: a retry or a replay after a crash);
* ``outbox_append``: writing them to the on-disk outbox (fsync per batch), as during an outage;
* ``outbox_replay``: a writer replaying that outbox into the database;
* ``unnest`` vs ``executemany``: the two ways to send one multi-row batch, on bare connections.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from metrica.actors.writer import CROSSINGS_SQL, EventWriter, Outbox, crossing_columns
from metrica.db.migrate import migrate
from metrica.db.pool import connect
from metrica.events import CrossingEvent, crossing_id
from metrica.logs import configure_logging

__all__ = ["bench_writer", "make_crossings"]

_EXECUTEMANY_SQL = """
INSERT INTO crossings (id, ts, store_id, camera_id, line_id, line, direction, footfall, track, session, frame)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT DO NOTHING
"""


def make_crossings(n: int, session: str | None = None) -> list[CrossingEvent]:
    session = session or uuid.uuid4().hex
    t0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    return [
        CrossingEvent(
            id=crossing_id(1, session, "door", i, 0),
            ts=t0 + timedelta(milliseconds=50 * i),
            store_id=1,
            camera_id=1 + i % 4,
            line_id=1,
            line="door",
            direction="in" if i % 2 else "out",
            footfall=True,
            track=i,
            session=session,
            frame=i + 1,
        )
        for i in range(n)
    ]


def _with_database(dsn: str, database: str) -> str:
    head, _, query = dsn.partition("?")
    return f"{head.rsplit('/', 1)[0]}/{database}" + (f"?{query}" if query else "")


def _rate(n: int, seconds: float) -> dict[str, float]:
    return {"seconds": round(seconds, 3), "events_per_s": round(n / seconds, 1) if seconds > 0 else 0.0}


async def _through_writer(
    dsn: str, outbox: Path, events: list[CrossingEvent], batch_size: int
) -> tuple[float, EventWriter]:
    writer = EventWriter(dsn, outbox, batch_size=batch_size)
    await writer.start()
    began = time.perf_counter()
    for i, event in enumerate(events):
        writer.submit_nowait(event)
        if i % batch_size == batch_size - 1:
            await asyncio.sleep(0)  # a producer yields now and then; the writer runs in between
    await writer.drain()
    seconds = time.perf_counter() - began
    await writer.stop()
    return seconds, writer


async def _raw(conn: asyncpg.Connection, events: list[CrossingEvent], batch_size: int, method: str) -> float:
    began = time.perf_counter()
    for i in range(0, len(events), batch_size):
        batch = events[i : i + batch_size]
        async with conn.transaction():
            if method == "unnest":
                await conn.execute(CROSSINGS_SQL, *crossing_columns(batch))
            else:
                await conn.executemany(
                    _EXECUTEMANY_SQL, [tuple(row) for row in zip(*crossing_columns(batch), strict=True)]
                )
    return time.perf_counter() - began


async def bench_writer(
    dsn: str, events: int, *, batch_size: int = 500, scratch: bool = True
) -> dict[str, Any]:
    """Measure the writer on the server of ``dsn``; with ``scratch`` (default) in a throwaway database."""
    target = dsn
    name = f"metrica_bench_{uuid.uuid4().hex[:10]}"
    if scratch:
        admin = await connect(dsn)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        target = _with_database(dsn, name)
    try:
        await migrate(target)
        result: dict[str, Any] = {
            "events": events,
            "batch_size": batch_size,
            "scratch_database": name if scratch else None,
        }
        with tempfile.TemporaryDirectory(prefix="metrica-bench-") as tmp:
            rows = make_crossings(events)
            seconds, writer = await _through_writer(target, Path(tmp) / "a", rows, batch_size)
            result["ingest"] = _rate(events, seconds) | {"written": writer.written}
            seconds, writer = await _through_writer(target, Path(tmp) / "a", rows, batch_size)
            result["dedup"] = _rate(events, seconds) | {"duplicates": writer.duplicates}

            rows = make_crossings(events)
            box = Outbox(Path(tmp) / "b")
            box.load()
            began = time.perf_counter()
            for i in range(0, events, batch_size):
                box.append(rows[i : i + batch_size])
            result["outbox_append"] = _rate(events, time.perf_counter() - began)
            box.close()
            seconds, writer = await _through_writer(target, Path(tmp) / "b", [], batch_size)
            result["outbox_replay"] = _rate(events, seconds) | {"written": writer.written}

        conn = await connect(target)
        try:
            for method in ("unnest", "executemany"):
                seconds = await _raw(conn, make_crossings(events), batch_size, method)
                result[method] = _rate(events, seconds)
            result["server"] = await conn.fetchval("SHOW server_version")
        finally:
            await conn.close()
        return result
    finally:
        if scratch:
            admin = await connect(dsn)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args(argv)
    configure_logging("warning")  # stderr, and quiet: stdout is the JSON result
    print(json.dumps(asyncio.run(bench_writer(args.dsn, args.events, batch_size=args.batch_size)), indent=2))


if __name__ == "__main__":
    main()
