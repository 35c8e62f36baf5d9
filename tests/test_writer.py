"""EventWriter against real PostgreSQL: batching, dedup, and the outage tests on a server we stop and start."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import msgspec
import pytest

from metrica.actors.writer import EventWriter, Outbox, OutboxBusy
from metrica.db.migrate import migrate
from metrica.eval.bench_writer import bench_writer
from metrica.events import CameraStatus, CrossingEvent, Event, OccupancySample, crossing_id
from tests.pgcluster import ADMIN_DSN, PrivateCluster, create_database, drop_database

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def crossing(session: str, i: int, *, camera: int = 1) -> CrossingEvent:
    return CrossingEvent(
        id=crossing_id(camera, session, "door", i, 0),
        ts=T0 + timedelta(milliseconds=10 * i),
        store_id=1,
        camera_id=camera,
        line_id=1,
        line="door",
        direction="in" if i % 3 else "out",
        footfall=True,
        track=i,
        session=session,
        frame=i + 1,
    )


async def count(dsn: str, session: str) -> tuple[int, int]:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS n, count(DISTINCT id) AS d FROM crossings WHERE session = $1", session
        )
        assert row is not None
        return int(row["n"]), int(row["d"])
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def dsn() -> Iterator[str]:
    dsn = create_database()
    try:
        asyncio.run(migrate(dsn))
        yield dsn
    finally:
        drop_database(dsn)


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    try:
        cluster = PrivateCluster()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    with cluster:
        yield cluster


@pytest.fixture(scope="module")
def cluster_dsn(cluster: PrivateCluster) -> str:
    dsn = cluster.create_database("metrica_writer")
    asyncio.run(migrate(dsn))
    return dsn


def ensure_running(cluster: PrivateCluster) -> None:
    if not cluster.running():
        cluster.start()


async def test_ingests_all_three_kinds_and_stores_a_resubmitted_event_once(dsn: str, tmp_path: Path) -> None:
    session = uuid.uuid4().hex
    writer = EventWriter(dsn, tmp_path / "outbox", batch_size=100, flush_interval=0.05)
    await writer.start()
    assert writer.db_up
    events: list[Event] = [crossing(session, i) for i in range(1234)]
    events.append(CameraStatus(ts=T0, camera_id=77, state="running", fps=6.5, restarts=2))
    events.append(OccupancySample(ts=T0, store_id=77, inside=12))
    for e in events:
        await writer.submit(e)
    await writer.flush()
    assert await count(dsn, session) == (1234, 1234)
    assert writer.written == 1236 and writer.duplicates == 0

    # At-least-once delivery: the same events again (a retry, a replay) change nothing.
    for e in events[:300]:
        await writer.submit(e)
    await writer.flush()
    assert await count(dsn, session) == (1234, 1234)
    assert writer.duplicates == 300 and writer.written == 1236
    await writer.stop()
    assert writer.outbox_depth == 0 and writer.pending == 0

    conn = await asyncpg.connect(dsn)
    try:
        status = await conn.fetchrow("SELECT state, fps, restarts FROM camera_status WHERE camera_id = 77")
        inside = await conn.fetchval("SELECT inside FROM occupancy_samples WHERE store_id = 77")
        row = await conn.fetchrow("SELECT * FROM crossings WHERE id = $1", events[5].id)  # type: ignore[union-attr]
    finally:
        await conn.close()
    assert status is not None and tuple(status) == ("running", 6.5, 2)
    assert inside == 12
    assert row is not None
    first = events[5]
    assert isinstance(first, CrossingEvent)
    assert (row["ts"], row["direction"], row["track"], row["frame"], row["line"]) == (
        first.ts,
        first.direction,
        first.track,
        first.frame,
        "door",
    )


async def test_a_row_the_database_refuses_is_dropped_alone(dsn: str, tmp_path: Path) -> None:
    session = uuid.uuid4().hex
    writer = EventWriter(dsn, tmp_path / "outbox", batch_size=50)
    await writer.start()
    for i in range(20):
        await writer.submit(crossing(session, i))
    await writer.submit(
        OccupancySample(ts=T0, store_id=78, inside=-1)
    )  # CHECK (inside >= 0): the server refuses
    huge = msgspec.structs.replace(
        crossing(session, 99), track=2**40
    )  # not an integer column: asyncpg refuses
    await writer.submit(huge)
    await writer.flush()
    await writer.stop()
    assert await count(dsn, session) == (20, 20)
    assert writer.rejected == 2 and writer.outbox_depth == 0 and writer.written == 20


async def test_submit_does_not_wait_for_an_unreachable_database(tmp_path: Path) -> None:
    # Nothing listens on port 1: connecting is refused at once, every event goes to the outbox.
    writer = EventWriter(
        "postgresql://postgres:s3cret@127.0.0.1:1/x", tmp_path / "outbox", retry_interval=0.2
    )
    await writer.start()
    assert not writer.db_up
    assert writer.last_error is not None and "s3cret" not in writer.last_error
    loop = asyncio.get_running_loop()
    began = loop.time()
    for i in range(1000):
        await writer.submit(crossing("unreachable", i))
    assert loop.time() - began < 0.5
    await writer.flush(timeout=30)
    assert writer.outbox_depth == 1000 and writer.pending == 0
    await writer.stop()
    assert sum(1 for _ in (tmp_path / "outbox").glob("seg-*.jsonl")) >= 1


async def produce(writer: EventWriter, session: str, total: int, seconds: float) -> None:
    """Submit ``total`` crossings evenly over about ``seconds``, like a busy camera would."""
    step = 10
    pause = seconds / (total / step)
    for start in range(0, total, step):
        for i in range(start, min(total, start + step)):
            await writer.submit(crossing(session, i))
        await asyncio.sleep(pause)


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_outage_loses_nothing_and_counts_nothing_twice(
    cluster: PrivateCluster, cluster_dsn: str, tmp_path: Path, mode: str
) -> None:
    ensure_running(cluster)
    session = uuid.uuid4().hex
    total = 2000
    writer = EventWriter(
        cluster_dsn, tmp_path / "outbox", batch_size=100, flush_interval=0.05, retry_interval=0.2
    )
    await writer.start()
    assert writer.db_up
    producer = asyncio.create_task(produce(writer, session, total, seconds=4.0))

    await asyncio.sleep(1.0)
    assert writer.written > 0  # rows went straight in before the outage
    await asyncio.to_thread(cluster.stop, mode)  # type: ignore[arg-type]
    seen_down = False
    deepest = 0
    for _ in range(30):  # 1.5 s of outage while the producer keeps submitting
        await asyncio.sleep(0.05)
        seen_down |= not writer.db_up
        deepest = max(deepest, writer.outbox_depth)
    assert seen_down, "the writer never noticed the database was gone"
    assert deepest > 0, "nothing went to the outbox during the outage"
    await asyncio.to_thread(cluster.start)
    await producer
    await writer.drain(timeout=60)
    await writer.stop()

    assert await count(cluster_dsn, session) == (total, total)
    assert writer.outbox_depth == 0 and writer.db_up
    assert writer.replayed >= deepest
    assert list((tmp_path / "outbox").glob("seg-*")) == []


async def test_restart_replays_an_outbox_left_by_a_writer_stopped_during_an_outage(
    cluster: PrivateCluster, cluster_dsn: str, tmp_path: Path
) -> None:
    ensure_running(cluster)
    session = uuid.uuid4().hex
    outbox = tmp_path / "outbox"
    first = EventWriter(cluster_dsn, outbox, batch_size=100, flush_interval=0.05, retry_interval=0.2)
    await first.start()
    for i in range(300):
        await first.submit(crossing(session, i))
    await first.flush()
    assert await count(cluster_dsn, session) == (300, 300)

    await asyncio.to_thread(cluster.stop, "immediate")
    for i in range(300, 1000):
        await first.submit(crossing(session, i))
    await first.stop()  # the database is still down: what was in memory is now on disk
    assert first.outbox_depth == 700 and first.pending == 0

    # The process "crashed" in the middle of its next append: a torn last line must not stop the replay.
    segments = sorted(outbox.glob("seg-*.jsonl"))
    with segments[-1].open("ab") as f:
        f.write(b'{"type":"crossing","id":"6f1d')

    await asyncio.to_thread(cluster.start)
    second = EventWriter(cluster_dsn, outbox, batch_size=100, flush_interval=0.05, retry_interval=0.2)
    await second.start()
    assert second.outbox_depth == 701  # the torn line counts as a line until it is read
    await second.drain(timeout=60)
    await second.stop()
    assert await count(cluster_dsn, session) == (1000, 1000)
    assert second.replayed == 700 and list(outbox.glob("seg-*")) == []


async def test_a_replay_cut_short_stores_nothing_twice(
    cluster_dsn: str, cluster: PrivateCluster, tmp_path: Path
) -> None:
    ensure_running(cluster)
    session = uuid.uuid4().hex
    events = [crossing(session, i) for i in range(500)]
    outbox = Outbox(tmp_path / "outbox")
    outbox.load()
    outbox.append(events)
    outbox.close()
    # A crash after the first 200 rows were committed but before the segment was deleted.
    warm = EventWriter(cluster_dsn, tmp_path / "other", batch_size=200)
    await warm.start()
    for e in events[:200]:
        await warm.submit(e)
    await warm.stop()

    writer = EventWriter(cluster_dsn, tmp_path / "outbox", batch_size=100, retry_interval=0.2)
    await writer.start()
    await writer.drain(timeout=60)
    await writer.stop()
    assert await count(cluster_dsn, session) == (500, 500)
    assert writer.written == 300 and writer.duplicates == 200


def test_outbox_keeps_order_across_segments_and_skips_a_torn_line(tmp_path: Path) -> None:
    box = Outbox(tmp_path, segment_events=250)
    box.load()
    events = [crossing("order", i) for i in range(1000)]
    for i in range(0, 1000, 100):
        box.append(events[i : i + 100])
    assert box.depth == 1000 and box.segments == 4
    box.close()
    last = sorted(tmp_path.glob("seg-*.jsonl"))[-1]
    with last.open("ab") as f:
        f.write(b'{"type":"cross')

    again = Outbox(tmp_path)
    assert again.load() == 1001
    read: list[Event] = []
    while (segment := again.oldest()) is not None:
        read += again.read(segment)
        again.remove(segment)
    assert read == events  # torn line skipped, order kept
    assert again.depth == 0 and list(tmp_path.glob("seg-*")) == []

    # A new run appends to a new segment, numbered after the old ones.
    again.append(events[:1])
    assert [p.name for p in tmp_path.glob("seg-*")] == ["seg-000000000005.jsonl"]

    # One outbox, one live writer: a second process must not replay segments still being written.
    with pytest.raises(OutboxBusy, match="another process is using this outbox"):
        Outbox(tmp_path).load()
    again.close()
    third = Outbox(tmp_path)
    assert third.load() == 1
    third.close()


async def test_bench_writer_measures_in_a_scratch_database() -> None:
    result = await bench_writer(ADMIN_DSN, 2000, batch_size=500)
    assert result["ingest"]["written"] == 2000 and result["dedup"]["duplicates"] == 2000
    assert result["outbox_replay"]["written"] == 2000
    for key in ("ingest", "dedup", "outbox_append", "outbox_replay", "unnest", "executemany"):
        assert result[key]["events_per_s"] > 0
    conn = await asyncpg.connect(ADMIN_DSN)
    try:  # and leaves no database behind
        left = await conn.fetchval(
            "SELECT count(*) FROM pg_database WHERE datname = $1", result["scratch_database"]
        )
    finally:
        await conn.close()
    assert left == 0
