"""EventWriter: events into PostgreSQL in batches, through a durable on-disk outbox when the database is down.

Delivery is at-least-once and the effect exactly-once: every row has a deterministic key (a crossing's
uuid, a sample's (store, ts), a status's (camera, ts)) and every INSERT is ``ON CONFLICT DO NOTHING``.

One task does all the work, in submission order:

* ``submit`` appends to an in-memory buffer and returns; it never waits for, nor fails because of, the
  database.
* Every ``flush_interval`` (sooner when a full batch is waiting) the task writes the buffer as batches of
  ``batch_size``: one multi-row ``INSERT ... SELECT FROM unnest(...)`` per table, one transaction per batch.
* When the database cannot be reached, the batch is appended to the outbox: msgspec-JSON lines in segment
  files under ``outbox_dir``, written and fsync'd in a thread. While the outbox holds anything, new batches
  go behind it, so order is kept. Every ``retry_interval`` the task replays the oldest segment and deletes
  it only after its rows are committed; a crash in between replays it again, which stores nothing twice.
* A torn last line (a crash in the middle of an append) is skipped with a warning. An outbox left by an
  earlier run is replayed after ``start``.
* Rows the database rejects as bad data (a CHECK or type violation) are retried one by one and the bad
  ones dropped with ``writer.event_rejected``: one poisoned event must not hold up all the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import structlog

from metrica.db.pool import BAD_DATA, connect, describe_dsn, is_unavailable
from metrica.events import CameraStatus, CrossingEvent, Event, OccupancySample

__all__ = ["EventWriter", "Outbox", "OutboxBusy", "bench_writer"]

log = structlog.get_logger(__name__)

CROSSINGS_SQL = """
INSERT INTO crossings (id, ts, store_id, camera_id, line_id, line, direction, footfall, track, session, frame)
SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::integer[], $4::integer[], $5::integer[], $6::text[],
                     $7::text[], $8::boolean[], $9::integer[], $10::text[], $11::integer[])
ON CONFLICT DO NOTHING
"""
STATUS_SQL = """
INSERT INTO camera_status (ts, camera_id, state, fps, error, restarts)
SELECT * FROM unnest($1::timestamptz[], $2::integer[], $3::text[], $4::real[], $5::text[], $6::integer[])
ON CONFLICT DO NOTHING
"""
OCCUPANCY_SQL = """
INSERT INTO occupancy_samples (ts, store_id, inside)
SELECT * FROM unnest($1::timestamptz[], $2::integer[], $3::integer[])
ON CONFLICT DO NOTHING
"""


def crossing_columns(rows: Sequence[CrossingEvent]) -> list[list[Any]]:
    return [
        [e.id for e in rows],
        [e.ts for e in rows],
        [e.store_id for e in rows],
        [e.camera_id for e in rows],
        [e.line_id for e in rows],
        [e.line for e in rows],
        [e.direction for e in rows],
        [e.footfall for e in rows],
        [e.track for e in rows],
        [e.session for e in rows],
        [e.frame for e in rows],
    ]


def status_columns(rows: Sequence[CameraStatus]) -> list[list[Any]]:
    return [
        [e.ts for e in rows],
        [e.camera_id for e in rows],
        [e.state for e in rows],
        [e.fps for e in rows],
        [e.error for e in rows],
        [e.restarts for e in rows],
    ]


def occupancy_columns(rows: Sequence[OccupancySample]) -> list[list[Any]]:
    return [[e.ts for e in rows], [e.store_id for e in rows], [e.inside for e in rows]]


def _split(events: Sequence[Event]) -> tuple[list[CrossingEvent], list[CameraStatus], list[OccupancySample]]:
    crossings: list[CrossingEvent] = []
    statuses: list[CameraStatus] = []
    samples: list[OccupancySample] = []
    for e in events:
        if isinstance(e, CrossingEvent):
            crossings.append(e)
        elif isinstance(e, CameraStatus):
            statuses.append(e)
        else:
            samples.append(e)
    return crossings, statuses, samples


def _inserted(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])  # "INSERT 0 <n>"


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class _Unavailable(Exception):
    """Internal: the database cannot take this batch now; it goes to the outbox."""


# --- the outbox ----------------------------------------------------------------------------------------


class OutboxBusy(RuntimeError):
    """Another live writer holds this outbox directory."""


class _Segment:
    __slots__ = ("count", "path")

    def __init__(self, path: Path, count: int) -> None:
        self.path = path
        self.count = count


class Outbox:
    """Append-only segment files of msgspec-JSON lines, one event a line, oldest segment first.

    Blocking file I/O: the writer calls every method but ``depth`` through ``asyncio.to_thread``, one
    call at a time. Only the newest segment is ever appended to; a segment is closed ("rotated") before it
    is replayed, and a fresh process always starts a new one, so a torn line can only be a file's last.
    """

    PREFIX = "seg-"
    SUFFIX = ".jsonl"

    def __init__(self, directory: Path, *, segment_events: int = 20_000) -> None:
        self.directory = directory
        self.segment_events = segment_events
        self._segments: deque[_Segment] = deque()
        self._active: Any = None  # the open file of the newest segment, or None
        self._next = 1
        self._depth = 0
        self._lock: Any = None
        self._encoder = msgspec.json.Encoder()
        self._decoder = msgspec.json.Decoder(Event)

    @property
    def depth(self) -> int:
        """Events on disk, waiting to be replayed."""
        return self._depth

    @property
    def segments(self) -> int:
        return len(self._segments)

    def load(self) -> int:
        """Find the segments an earlier run left; return how many events they hold.

        Takes an exclusive lock on the directory: two live writers on one outbox would replay each other's
        segments while they are being written (`OutboxBusy`).
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._lock is None:
            lock = open(self.directory / ".lock", "a+b")  # noqa: SIM115 - held until close()
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.close()
                raise OutboxBusy(f"{self.directory}: another process is using this outbox") from None
            self._lock = lock
        found: list[tuple[int, Path]] = []
        for path in self.directory.glob(f"{self.PREFIX}*{self.SUFFIX}"):
            digits = path.name[len(self.PREFIX) : -len(self.SUFFIX)]
            if digits.isdigit():
                found.append((int(digits), path))
        found.sort()
        for number, path in found:
            self._next = max(self._next, number + 1)
            count = sum(1 for line in path.read_bytes().split(b"\n") if line.strip())
            if count == 0:
                path.unlink()
                continue
            self._segments.append(_Segment(path, count))
            self._depth += count
        return self._depth

    def append(self, events: Sequence[Event]) -> None:
        """Write ``events`` after the others and fsync them: when this returns they survive a crash."""
        blob = b"".join(self._encoder.encode(e) + b"\n" for e in events)
        if self._active is None or self._segments[-1].count >= self.segment_events:
            self._open_segment()
        f = self._active
        start = f.tell()
        try:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        except OSError:
            # Cut what was half written and start afresh, so the next append never follows a torn line.
            try:
                f.truncate(start)
            finally:
                self.rotate()
            raise
        self._segments[-1].count += len(events)
        self._depth += len(events)

    def _open_segment(self) -> None:
        self.rotate()
        path = self.directory / f"{self.PREFIX}{self._next:012d}{self.SUFFIX}"
        self._next += 1
        self._active = open(path, "ab")  # noqa: SIM115 - held open across appends, closed by rotate()
        self._segments.append(_Segment(path, 0))
        # The new name must survive a crash too, not only the bytes written under it.
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def rotate(self) -> None:
        """Close the segment being appended to; the next append starts a new one."""
        if self._active is not None:
            self._active.close()
            self._active = None

    def oldest(self) -> _Segment | None:
        """The oldest segment, closed for appends (so replaying it races with nothing)."""
        if not self._segments:
            return None
        if len(self._segments) == 1:
            self.rotate()
        return self._segments[0]

    def read(self, segment: _Segment) -> list[Event]:
        data = segment.path.read_bytes()
        lines = data.split(b"\n")
        events: list[Event] = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                events.append(self._decoder.decode(line))
            except msgspec.DecodeError as exc:
                torn = number == len(lines)  # no newline after it: the last append was cut short
                log.warning(
                    "writer.outbox_torn_line" if torn else "writer.outbox_bad_line",
                    segment=segment.path.name,
                    line=number,
                    error=str(exc),
                )
        return events

    def remove(self, segment: _Segment) -> None:
        """Forget a replayed segment. (No fsync: if the unlink is lost, replaying again stores nothing twice.)"""
        assert self._segments and self._segments[0] is segment
        if self._active is not None and len(self._segments) == 1:
            self.rotate()
        segment.path.unlink(missing_ok=True)
        self._segments.popleft()
        self._depth -= segment.count

    def close(self) -> None:
        self.rotate()
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None


# --- the writer --------------------------------------------------------------------------------------


class EventWriter:
    """Batches events into PostgreSQL; keeps them in an on-disk outbox while the database is down."""

    def __init__(
        self,
        dsn: str,
        outbox_dir: Path,
        *,
        batch_size: int = 500,
        flush_interval: float = 0.2,
        retry_interval: float = 1.0,
        connect_timeout: float = 5.0,
        statement_timeout: float = 30.0,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.dsn = dsn
        self.outbox = Outbox(Path(outbox_dir))
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.retry_interval = retry_interval
        self.connect_timeout = connect_timeout
        self.statement_timeout = statement_timeout
        # counters (metrics)
        self.written = 0  # rows inserted
        self.duplicates = 0  # rows skipped by ON CONFLICT (already stored)
        self.rejected = 0  # rows the database refused as bad data (dropped, logged)
        self.replayed = 0  # events replayed from the outbox
        self.last_error: str | None = None
        self._db_up = False
        self._down_logged = False
        self._conn: asyncpg.Connection | None = None
        self._buffer: deque[Event] = deque()
        self._submitted = 0  # events accepted by submit()
        self._handled = 0  # of those, how many are in the database or the outbox (always a prefix)
        self._wake = asyncio.Event()
        self._progress = asyncio.Condition()
        self._next_retry = 0.0
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._stopped = False

    # -- public API ---------------------------------------------------------------------------------

    @property
    def db_up(self) -> bool:
        return self._db_up

    @property
    def outbox_depth(self) -> int:
        """Events waiting on disk for the database."""
        return self.outbox.depth

    @property
    def pending(self) -> int:
        """Events in memory, not yet in the database nor in the outbox."""
        return len(self._buffer)

    async def start(self) -> None:
        """Load any outbox an earlier run left (replayed first, in order) and start writing."""
        if self._task is not None:
            raise RuntimeError("EventWriter already started")
        left = await asyncio.to_thread(self.outbox.load)
        if left:
            log.info("writer.outbox_found", events=left, segments=self.outbox.segments)
        with contextlib.suppress(_Unavailable):  # logged by _mark_down; the outbox holds events meanwhile
            await self._connection()
        self._task = asyncio.create_task(self._run(), name="event-writer")
        log.info("writer.started", database=describe_dsn(self.dsn), db_up=self._db_up, outbox=left)

    def submit_nowait(self, event: Event) -> None:
        """Queue an event (from sync code on the loop's thread); never waits, never fails for the database."""
        if self._stopped or self._stopping:
            raise RuntimeError("EventWriter is stopped")
        if not isinstance(event, CrossingEvent | CameraStatus | OccupancySample):
            raise TypeError(f"not an event: {type(event).__name__}")
        self._buffer.append(event)
        self._submitted += 1
        if len(self._buffer) >= self.batch_size:
            self._wake.set()

    async def submit(self, event: Event) -> None:
        self.submit_nowait(event)

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until everything submitted so far is in the database or durably in the outbox."""
        target = self._submitted
        if self._task is None:
            if target > self._handled:
                raise RuntimeError("EventWriter not started")
            return
        self._wake.set()
        async with asyncio.timeout(timeout), self._progress:
            await self._progress.wait_for(lambda: self._handled >= target or self._task_done())
        if self._handled < target:
            raise RuntimeError(f"EventWriter stopped with {target - self._handled} events unwritten")

    async def drain(self, timeout: float | None = None) -> None:
        """Flush, then wait until the outbox is empty too (everything in the database). For tests, shutdown."""
        async with asyncio.timeout(timeout):
            await self.flush()
            while self.outbox.depth or self._buffer:
                if self._task_done():
                    raise RuntimeError("EventWriter stopped before its outbox was replayed")
                self._wake.set()
                await asyncio.sleep(min(0.05, self.retry_interval))

    async def stop(self, timeout: float | None = None) -> None:
        """Flush what is in memory (to the database or the outbox) and stop. What the outbox holds stays there.

        With a ``timeout`` (the database and the disk both failing), events still in memory after it are
        given up, and logged as ``writer.stop_lost``.
        """
        if self._stopped:
            return
        self._stopping = True
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                log.error("writer.stop_lost", events=len(self._buffer), error=self.last_error)
        self._stopped = True
        await self._close_connection()
        await asyncio.to_thread(self.outbox.close)
        log.info("writer.stopped", written=self.written, duplicates=self.duplicates, outbox=self.outbox.depth)

    # -- the task -----------------------------------------------------------------------------------

    def _task_done(self) -> bool:
        return self._task is None or self._task.done()

    def _replay_due(self) -> bool:
        return bool(self.outbox.depth) and not self._stopping and time.monotonic() >= self._next_retry

    async def _run(self) -> None:
        try:
            await self._loop()
        finally:  # however the loop ends, nobody may be left waiting in flush()
            async with self._progress:
                self._progress.notify_all()

    async def _loop(self) -> None:
        while True:
            if not self._stopping and not self._replay_due():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.flush_interval)
            self._wake.clear()
            try:
                if self._replay_due():
                    await self._replay_oldest()
                while self._buffer:
                    n = min(len(self._buffer), self.batch_size)
                    batch = [self._buffer.popleft() for _ in range(n)]
                    try:
                        await self._persist(batch)
                    except BaseException:
                        self._buffer.extendleft(reversed(batch))  # keep them, in order, for the next try
                        raise
                    self._handled += n
                    async with self._progress:
                        self._progress.notify_all()
            except Exception as exc:
                # The outbox itself failed (disk full?) with the database down: keep the events, retry later.
                self.last_error = _error_text(exc)
                log.error("writer.error", error=self.last_error, pending=len(self._buffer))
                await asyncio.sleep(self.retry_interval)
            if self._stopping and not self._buffer:
                break

    async def _persist(self, batch: list[Event]) -> None:
        if not self.outbox.depth and (self._db_up or time.monotonic() >= self._next_retry):
            try:
                await self._write(batch)
                return
            except _Unavailable:
                pass
        await asyncio.to_thread(self.outbox.append, batch)
        log.debug("writer.outboxed", events=len(batch), outbox=self.outbox.depth)

    async def _replay_oldest(self) -> None:
        segment = await asyncio.to_thread(self.outbox.oldest)
        if segment is None:
            return
        events = await asyncio.to_thread(self.outbox.read, segment)
        try:
            for i in range(0, len(events), self.batch_size):
                await self._write(events[i : i + self.batch_size])
        except _Unavailable:
            return  # retried after retry_interval; rows already committed are skipped then
        await asyncio.to_thread(self.outbox.remove, segment)
        self.replayed += len(events)
        self._next_retry = 0.0  # go on with the next segment at once
        log.info(
            "writer.outbox_replayed", segment=segment.path.name, events=len(events), left=self.outbox.depth
        )
        if not self.outbox.depth:
            log.info("writer.outbox_empty", replayed=self.replayed)

    # -- the database -------------------------------------------------------------------------------

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is not None and not self._conn.is_closed():
            return self._conn
        self._conn = None
        try:
            self._conn = await connect(
                self.dsn, timeout=self.connect_timeout, command_timeout=self.statement_timeout
            )
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            self._mark_down(exc)
            raise _Unavailable from exc
        self._mark_up()
        return self._conn

    async def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), 2.0)
            except Exception:
                conn.terminate()

    def _mark_down(self, exc: BaseException) -> None:
        self.last_error = _error_text(exc)
        self._next_retry = time.monotonic() + self.retry_interval
        if not self._down_logged:  # once per outage, not once per retry
            log.warning("writer.db_down", database=describe_dsn(self.dsn), error=self.last_error)
            self._down_logged = True
        self._db_up = False

    def _mark_up(self) -> None:
        if not self._db_up:
            log.info("writer.db_up", database=describe_dsn(self.dsn), outbox=self.outbox.depth)
        self._db_up = True
        self._down_logged = False

    async def _write(self, events: Sequence[Event]) -> None:
        """Insert one batch in one transaction; `_Unavailable` when the database cannot take it now."""
        conn = await self._connection()
        crossings, statuses, samples = _split(events)
        try:
            inserted = 0
            async with conn.transaction():
                if crossings:
                    inserted += _inserted(await conn.execute(CROSSINGS_SQL, *crossing_columns(crossings)))
                if statuses:
                    inserted += _inserted(await conn.execute(STATUS_SQL, *status_columns(statuses)))
                if samples:
                    inserted += _inserted(await conn.execute(OCCUPANCY_SQL, *occupancy_columns(samples)))
        except BAD_DATA as exc:
            log.warning("writer.batch_rejected", events=len(events), error=_error_text(exc))
            await self._write_one_by_one(conn, crossings, statuses, samples)
            return
        except Exception as exc:
            await self._lost(conn, exc)
            raise _Unavailable from exc
        self._mark_up()
        self.written += inserted
        self.duplicates += len(events) - inserted

    async def _lost(self, conn: asyncpg.Connection, exc: BaseException) -> None:
        # Not bad data: the server went away, or something we cannot fix here (a missing table before
        # `metrica migrate`). Either way keep the events (outbox) and retry later on a fresh connection.
        if not is_unavailable(exc):
            log.error("writer.write_failed", error=_error_text(exc))
        self._conn = None
        conn.terminate()
        self._mark_down(exc)

    async def _write_one_by_one(
        self,
        conn: asyncpg.Connection,
        crossings: list[CrossingEvent],
        statuses: list[CameraStatus],
        samples: list[OccupancySample],
    ) -> None:
        jobs: list[tuple[str, list[list[Any]], Event]] = []
        jobs += [(CROSSINGS_SQL, crossing_columns([e]), e) for e in crossings]
        jobs += [(STATUS_SQL, status_columns([e]), e) for e in statuses]
        jobs += [(OCCUPANCY_SQL, occupancy_columns([e]), e) for e in samples]
        for sql, columns, event in jobs:
            try:
                inserted = _inserted(await conn.execute(sql, *columns))
            except BAD_DATA as exc:
                self.rejected += 1
                log.error("writer.event_rejected", kind=type(event).__name__, error=_error_text(exc))
                continue
            except Exception as exc:
                await self._lost(conn, exc)
                raise _Unavailable from exc
            self.written += inserted
            self.duplicates += 1 - inserted
        self._mark_up()


async def bench_writer(dsn: str, events: int) -> dict[str, Any]:
    """Ingest benchmark (see `metrica.eval.bench_writer`), here too so either import works."""
    from metrica.eval.bench_writer import bench_writer as run

    return await run(dsn, events)
