"""Alerts: a store over its occupancy limit, a camera offline, traffic far below the usual.

`evaluate_alerts` runs every 15 seconds under `metrica worker` (one tick per cluster: ``unique``). It reads
the database only, so it works whichever process runs the cameras, and decides per (store, kind, subject)
whether the condition holds:

- ``occupancy``: entrance IN − OUT since the business day began (as the live hub counts it) is above the
  store's ``occupancy_limit``; it clears once the number is back to ``limit − margin`` (a tenth of the
  limit, at least one person), so a crowd hovering at the limit does not fire and clear on every tick.
- ``camera_offline`` (subject ``camera:{id}``): an enabled camera has not been seen running for
  ``alert_offline_minutes``. A running actor reports every few seconds, so a silent box counts as offline
  too; a camera changed or re-enabled gets the same grace from the change. Clears when it runs again
  (or is disabled or removed).
- ``low_traffic``: the last complete hour had fewer entrance visitors than ``alert_low_traffic_ratio`` ×
  the usual for that weekday and hour (the mean of the same local hour on the previous four same weekdays
  that were recorded, from the rollups), when the usual is at least `LOW_TRAFFIC_MIN_USUAL` and every
  enabled camera ran through the hour — a dead camera is a camera alert, not a quiet shop. Clears when a
  later hour is not low.

"Each alert once": an alert is opened by ``INSERT ... ON CONFLICT DO NOTHING`` under the partial unique
index of one open alert per (store, kind, subject), and resolved by an ``UPDATE ... WHERE resolved_at IS
NULL``; only the statement that changed the row announces it, so two workers or two overlapping ticks send
nothing twice. In the same transaction one ``alert_deliveries`` row per webhook URL is written (delivered
with retries by `metrica.jobs.webhooks`); after the commit the change is published on the store's live
channel, which the API forwards to the phones as ``{"type": "alert", "event": "fired"|"resolved", ...}``.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import asyncpg
import msgspec
import structlog
from arq.cron import CronJob, cron

from metrica.actors.live import business_day
from metrica.config import Settings
from metrica.db import queries, site
from metrica.jobs.rollups import day_hours
from metrica.site import Camera, Store

__all__ = [
    "CRON_JOBS",
    "FUNCTIONS",
    "LOW_TRAFFIC_MIN_USUAL",
    "AlertChange",
    "AlertView",
    "evaluate_alerts",
    "evaluate_alerts_job",
    "list_alerts",
    "occupancy_margin",
    "publish_changes",
]

log = structlog.get_logger(__name__)

AlertKind = Literal["occupancy", "camera_offline", "low_traffic"]
LOW_TRAFFIC_MIN_USUAL = 10.0  # below this many visitors an hour, "far below the usual" is noise
LOW_TRAFFIC_WEEKS = 4
LOW_TRAFFIC_MIN_WEEKS = 2  # recorded same weekdays needed before there is a "usual"
SETTLE = timedelta(minutes=2)  # an hour is judged this long after it ends: the writer's last batch landed
RUNNING_FRESH = timedelta(minutes=2)  # a running camera reports every few seconds; older means silent


class AlertView(msgspec.Struct, kw_only=True):
    """An alert as the API, the WebSocket and the webhooks show it."""

    id: int
    store_id: int
    kind: AlertKind
    subject: str
    camera_id: int | None
    message: str
    details: dict[str, Any]
    opened_at: datetime
    resolved_at: datetime | None = None
    resolved_message: str | None = None


class AlertChange(msgspec.Struct, kw_only=True):
    """One alert opened or resolved by this evaluation (what is announced)."""

    event: Literal["fired", "resolved"]
    alert: AlertView
    deliveries: int = 0  # webhook deliveries queued with it


class _Wanted(msgspec.Struct, kw_only=True):
    """The outcome for one (kind, subject): open it (with a message) or resolve it, or leave it as is."""

    kind: AlertKind
    subject: str
    fire: bool = False
    clear: bool = False
    camera_id: int | None = None
    message: str = ""
    details: dict[str, Any] = msgspec.field(default_factory=dict)


_ALERT_COLUMNS = (
    "id, store_id, kind, subject, camera_id, message, details, opened_at, resolved_at, resolved_message"
)


def _view(row: asyncpg.Record) -> AlertView:
    return AlertView(**dict(row.items()))


def occupancy_margin(limit: int) -> int:
    """How far below the limit occupancy must drop before an occupancy alert clears."""
    return max(1, limit // 10)


def _minutes(delta: timedelta) -> str:
    total = int(delta.total_seconds() // 60)
    return f"{total // 60} h {total % 60:02d} min" if total >= 60 else f"{total} min"


# -- conditions -------------------------------------------------------------------------------------------


async def _occupancy(conn: asyncpg.Connection, store: Store, now: datetime, is_open: bool) -> _Wanted:
    # As the live hub counts it: entrance IN − OUT since the business day began, never below zero.
    ins, outs = await queries.footfall_totals(conn, store.id, business_day(store, now)[1])
    inside = max(0, ins - outs)
    limit = store.occupancy_limit
    wanted = _Wanted(kind="occupancy", subject="", details={"inside": inside, "limit": limit})
    if limit is not None and inside > limit:
        wanted.fire = True
        wanted.message = f"{inside} people inside {store.name}: above the limit of {limit}"
    elif is_open and (limit is None or inside <= limit - occupancy_margin(limit)):
        wanted.clear = True
        wanted.message = (
            f"Back to {inside} inside (limit {limit})"
            if limit is not None
            else "The occupancy limit was removed"
        )
    return wanted


async def _cameras_offline(
    conn: asyncpg.Connection,
    store: Store,
    cameras: Sequence[Camera],
    open_subjects: set[str],
    now: datetime,
    offline_after: timedelta,
) -> list[_Wanted]:
    enabled = {c.id: c for c in cameras if c.enabled}
    rows = await conn.fetch(
        """SELECT c.id,
                  (SELECT ts FROM camera_status s WHERE s.camera_id = c.id AND s.state = 'running'
                   ORDER BY ts DESC LIMIT 1) AS last_running,
                  l.ts AS last_ts, l.state AS last_state, l.error AS last_error
           FROM unnest($1::integer[]) AS c(id)
           LEFT JOIN LATERAL (SELECT ts, state, error FROM camera_status s WHERE s.camera_id = c.id
                              ORDER BY ts DESC LIMIT 1) l ON true""",
        list(enabled),
    )
    out: list[_Wanted] = []
    for r in rows:
        cam = enabled[r["id"]]
        subject = f"camera:{cam.id}"
        # Seen running, or changed/enabled (a fresh start gets the same grace as a running camera).
        seen = max((t for t in (r["last_running"], cam.updated_at) if t is not None), default=None)
        down_for = now - seen if seen is not None else None
        state = r["last_state"] or "no report"
        details = {
            "camera": cam.name,
            "state": state,
            "error": r["last_error"],
            "last_running": r["last_running"].isoformat() if r["last_running"] else None,
        }
        w = _Wanted(kind="camera_offline", subject=subject, camera_id=cam.id, details=details)
        if down_for is None or down_for > offline_after:
            w.fire = True
            reason = f"{state}: {r['last_error']}" if r["last_error"] else state
            since = f"for {_minutes(down_for)}" if down_for is not None else "since it was set up"
            w.message = f"Camera {cam.name} has not been counting {since} ({reason})"
        elif (
            subject in open_subjects
            and r["last_state"] == "running"
            and r["last_ts"] is not None
            and now - r["last_ts"] <= RUNNING_FRESH
        ):
            w.clear = True
            w.message = f"Camera {cam.name} is counting again"
        out.append(w)
    for subject in open_subjects - {f"camera:{i}" for i in enabled}:  # disabled or removed since
        camera_id = int(subject.split(":", 1)[1])
        out.append(
            _Wanted(
                kind="camera_offline",
                subject=subject,
                camera_id=camera_id,
                clear=True,
                message="The camera was disabled or removed",
            )
        )
    return out


def _last_complete_hour(store: Store, now: datetime) -> tuple[date, datetime, datetime]:
    """(business date, start, end) of the last rollup hour of the store that ended at least SETTLE ago."""
    t = now - SETTLE
    d = business_day(store, t)[0]
    hours = [(d - timedelta(days=1), h) for h in day_hours(store, d - timedelta(days=1))]
    hours += [(d, h) for h in day_hours(store, d)]
    bdate, (start, end) = max(((bd, h) for bd, h in hours if h[1] <= t), key=lambda x: x[1][1])
    return bdate, start, end


def _same_hour_weeks_before(store: Store, start: datetime, weeks: int) -> list[tuple[date, datetime]]:
    """(business date, hour start) of the rollup hour starting at the same local wall-clock time on each of
    the ``weeks`` previous same weekdays; a week whose day skipped that hour (spring forward) is left out."""
    tz = zoneinfo.ZoneInfo(store.timezone)
    local = start.astimezone(tz)
    out = []
    for k in range(1, weeks + 1):
        d = business_day(store, start - timedelta(days=7 * k))[0]
        for h0, _ in day_hours(store, d):
            hl = h0.astimezone(tz)
            if (hl.weekday(), hl.hour, hl.minute) == (local.weekday(), local.hour, local.minute):
                out.append((d, h0))
                break
    return out


async def _cameras_ran_through(
    conn: asyncpg.Connection, cameras: Sequence[Camera], start: datetime, end: datetime
) -> bool:
    """Every enabled camera was running at ``start``, never left running before ``end``, and still
    reported near ``end`` (a silent box reports nothing at all)."""
    ids = [c.id for c in cameras if c.enabled]
    if not ids:
        return False
    ok = await conn.fetchval(
        """SELECT bool_and(
                 (SELECT state = 'running' FROM camera_status s WHERE s.camera_id = c.id AND s.ts <= $2
                  ORDER BY ts DESC LIMIT 1)
             AND NOT EXISTS (SELECT 1 FROM camera_status s WHERE s.camera_id = c.id AND s.ts > $2
                             AND s.ts < $3 AND s.state <> 'running')
             AND EXISTS (SELECT 1 FROM camera_status s WHERE s.camera_id = c.id AND s.ts >= $3 - $4::interval
                         AND s.ts < $3 + $4::interval))
           FROM unnest($1::integer[]) AS c(id)""",
        ids,
        start,
        end,
        RUNNING_FRESH,
    )
    return bool(ok)


async def _low_traffic(
    conn: asyncpg.Connection,
    store: Store,
    cameras: Sequence[Camera],
    now: datetime,
    ratio: float,
    is_open: bool,
) -> _Wanted:
    wanted = _Wanted(kind="low_traffic", subject="")
    _, start, end = _last_complete_hour(store, now)
    ins = int(
        await conn.fetchval(
            """SELECT count(*) FROM crossings
               WHERE store_id = $1 AND footfall AND direction = 'in' AND ts >= $2 AND ts < $3""",
            store.id,
            start,
            end,
        )
    )
    weeks = _same_hour_weeks_before(store, start, LOW_TRAFFIC_WEEKS)
    # A same weekday counts when it was recorded: it had visitors or a camera running (not a day before
    # the store was set up). Its hour then counts even with nobody (no rollup row: zero visitors).
    rows = await conn.fetch(
        """SELECT w.bdate,
                  EXISTS (SELECT 1 FROM store_daily d WHERE d.store_id = $1 AND d.business_date = w.bdate
                          AND d.ins + d.outs > 0)
               OR EXISTS (SELECT 1 FROM camera_daily c WHERE c.store_id = $1 AND c.business_date = w.bdate
                          AND c.running_seconds > 0) AS recorded,
                  coalesce((SELECT h.ins FROM store_hourly h WHERE h.store_id = $1 AND h.hour_start = w.hstart), 0)
                      AS ins
           FROM unnest($2::date[], $3::timestamptz[]) AS w(bdate, hstart)""",
        store.id,
        [d for d, _ in weeks],
        [h for _, h in weeks],
    )
    usual_weeks = [int(r["ins"]) for r in rows if r["recorded"]]
    local = start.astimezone(zoneinfo.ZoneInfo(store.timezone))
    end_local = end.astimezone(zoneinfo.ZoneInfo(store.timezone))
    span = f"{local:%H:%M}–{end_local:%H:%M}"
    wanted.details = {"hour_start": start.isoformat(), "in_count": ins, "weeks": usual_weeks}
    if len(usual_weeks) < LOW_TRAFFIC_MIN_WEEKS:
        usual = None
    else:
        usual = sum(usual_weeks) / len(usual_weeks)
        wanted.details["usual"] = round(usual, 1)
    low = usual is not None and usual >= LOW_TRAFFIC_MIN_USUAL and ins < ratio * usual
    if low:
        if not await _cameras_ran_through(conn, cameras, start, end):
            return wanted  # a camera was down: its own alert says so; this one neither fires nor clears
        assert usual is not None
        wanted.fire = True
        wanted.message = (
            f"Only {ins} visitors at {store.name} {span}, against {usual:.0f} usually on a {local:%A}"
        )
    elif is_open:
        wanted.clear = True
        wanted.message = (
            f"Traffic back to usual: {ins} visitors {span} (usually {usual:.0f})"
            if usual is not None and usual >= LOW_TRAFFIC_MIN_USUAL
            else f"{ins} visitors {span}, a usually quiet hour"
        )
    return wanted


# -- opening and resolving --------------------------------------------------------------------------------


async def _apply(
    conn: asyncpg.Connection, store: Store, wanted: _Wanted, now: datetime, webhook_urls: Sequence[str]
) -> AlertChange | None:
    async with conn.transaction():
        if wanted.fire:
            row = await conn.fetchrow(
                f"""INSERT INTO alerts (store_id, kind, subject, camera_id, message, details, opened_at)
                    VALUES ($1, $2, $3, $4, $5, $6, $7)
                    ON CONFLICT (store_id, kind, subject) WHERE resolved_at IS NULL DO NOTHING
                    RETURNING {_ALERT_COLUMNS}""",
                store.id,
                wanted.kind,
                wanted.subject,
                wanted.camera_id,
                wanted.message,
                wanted.details,
                now,
            )
            event: Literal["fired", "resolved"] = "fired"
        else:
            row = await conn.fetchrow(
                f"""UPDATE alerts SET resolved_at = $4, resolved_message = $5,
                           details = details || jsonb_build_object('resolved', $6::jsonb)
                    WHERE store_id = $1 AND kind = $2 AND subject = $3 AND resolved_at IS NULL
                    RETURNING {_ALERT_COLUMNS}""",
                store.id,
                wanted.kind,
                wanted.subject,
                now,
                wanted.message,
                wanted.details,
            )
            event = "resolved"
        if row is None:
            return None  # another worker or tick got there first: it announces it
        if webhook_urls:
            await conn.executemany(
                """INSERT INTO alert_deliveries (alert_id, event, url, next_attempt_at) VALUES ($1, $2, $3, $4)
                   ON CONFLICT DO NOTHING""",
                [(row["id"], event, url, now) for url in webhook_urls],
            )
    return AlertChange(event=event, alert=_view(row), deliveries=len(webhook_urls))


async def evaluate_store(
    pool: asyncpg.Pool, store: Store, cameras: Sequence[Camera], settings: Settings, now: datetime
) -> list[AlertChange]:
    """Evaluate the three conditions of one store; the alerts this call opened or resolved."""
    async with pool.acquire() as conn:
        open_rows = await conn.fetch(
            "SELECT kind, subject FROM alerts WHERE store_id = $1 AND resolved_at IS NULL", store.id
        )
        open_keys = {(r["kind"], r["subject"]) for r in open_rows}
        wanted = [await _occupancy(conn, store, now, ("occupancy", "") in open_keys)]
        wanted += await _cameras_offline(
            conn,
            store,
            cameras,
            {s for k, s in open_keys if k == "camera_offline"},
            now,
            timedelta(minutes=settings.alert_offline_minutes),
        )
        wanted.append(
            await _low_traffic(
                conn, store, cameras, now, settings.alert_low_traffic_ratio, ("low_traffic", "") in open_keys
            )
        )
        changes = []
        for w in wanted:
            if (w.fire and (w.kind, w.subject) not in open_keys) or (
                w.clear and (w.kind, w.subject) in open_keys
            ):
                change = await _apply(conn, store, w, now, settings.webhook_urls)
                if change is not None:
                    changes.append(change)
    return changes


async def evaluate_alerts(
    pool: asyncpg.Pool, settings: Settings, now: datetime | None = None
) -> list[AlertChange]:
    """Evaluate every store (see the module doc); the alerts opened or resolved, to be announced."""
    now = now or datetime.now(UTC)
    stores = await site.list_stores(pool)
    cameras = await site.list_cameras(pool)
    changes: list[AlertChange] = []
    for store in stores:
        try:
            changes += await evaluate_store(
                pool, store, [c for c in cameras if c.store_id == store.id], settings, now
            )
        except asyncpg.PostgresError as exc:  # one store's bad data must not silence the others
            log.error("alerts.store_failed", store_id=store.id, error=str(exc))
        # A lost database (OSError, InterfaceError) fails the tick; the next one, 15 s later, retries.
    for c in changes:
        log.info(
            "alert." + c.event,
            alert_id=c.alert.id,
            store_id=c.alert.store_id,
            kind=c.alert.kind,
            subject=c.alert.subject,
            message=c.alert.resolved_message if c.event == "resolved" else c.alert.message,
        )
    return changes


_encoder = msgspec.json.Encoder()


def alert_message(event: str, alert: AlertView) -> bytes:
    """The WebSocket message (and webhook body) of one alert change."""
    return _encoder.encode({"type": "alert", "event": event, "alert": alert})


async def publish_changes(ctx: dict[str, Any], changes: Sequence[AlertChange]) -> None:
    """Announce the changes on each store's live channel and start delivering their webhooks."""
    from metrica.jobs.worker import QUEUE, live_channel  # the worker module imports this one

    redis = ctx["redis"]
    for c in changes:
        await redis.publish(live_channel(ctx, c.alert.store_id), alert_message(c.event, c.alert))
    if any(c.deliveries for c in changes):
        await redis.enqueue_job("deliver_webhooks", _queue_name=QUEUE)


async def evaluate_alerts_job(ctx: dict[str, Any]) -> dict[str, Any]:
    """arq cron: evaluate, then announce (see the module doc)."""
    changes = await evaluate_alerts(ctx["pool"], ctx["settings"])
    await publish_changes(ctx, changes)
    return {
        "fired": sum(c.event == "fired" for c in changes),
        "resolved": sum(c.event == "resolved" for c in changes),
    }


async def list_alerts(
    pool: asyncpg.Pool, store_id: int, *, open_only: bool = False, limit: int = 50
) -> list[AlertView]:
    """The store's alerts, newest first (open ones only with ``open_only``)."""
    rows = await pool.fetch(
        f"""SELECT {_ALERT_COLUMNS} FROM alerts
            WHERE store_id = $1 AND (NOT $2::boolean OR resolved_at IS NULL)
            ORDER BY opened_at DESC, id DESC LIMIT $3""",
        store_id,
        open_only,
        limit,
    )
    return [_view(r) for r in rows]


FUNCTIONS: list[Any] = [evaluate_alerts_job]
CRON_JOBS: list[CronJob] = [
    cron(
        evaluate_alerts_job,
        name="cron:alerts",
        second={0, 15, 30, 45},
        unique=True,
        timeout=60,
        max_tries=1,
    )
]
