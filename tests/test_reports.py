"""Daily reports on a real PostgreSQL, a real Redis (db 2), real arq workers, the real app under uvicorn and
a real headless Chromium.

The store's visits are generated here (each visitor an IN and an OUT on an entrance line, plus crossings on
a non-entrance line that must not count), and every expected figure is recomputed in Python from those
rows, never copied from the code under test.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import itertools
import random
import re
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import arq
import asyncpg
import httpx
import msgspec
import pypdf
import pytest
import pytest_asyncio
from litestar.channels.backends.memory import MemoryChannelsBackend
from PIL import Image
from structlog.testing import capture_logs

from metrica.actors.live import LiveHub
from metrica.api import create_app
from metrica.api.services import Services
from metrica.config import CameraConfig, LineConfig, Settings, SiteConfig, StoreConfig
from metrica.db import site
from metrica.jobs import reports as report_jobs
from metrica.jobs.rollups import DayRollup, HourRollup, day_hours, rollup_store_day
from metrica.jobs.worker import QUEUE, create_worker, redis_settings
from metrica.reports.csv import COLUMNS, render_csv
from metrica.reports.figures import CameraInfo, PreviousDay, ReportFigures, make_figures
from metrica.reports.html import render_html
from metrica.site import Store
from tests.api_helpers import ADMIN, VIEWER, RecordingActors, Server, free_port, make_pool, temp_database

pytestmark = pytest.mark.asyncio(loop_scope="module")

REDIS_DB2 = "redis://127.0.0.1:6379/2"  # this module's own Redis database
REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "test-output"
CHROMIUM = Path("/usr/bin/chromium")
PARIS = ZoneInfo("Europe/Paris")
TUNIS = ZoneInfo("Africa/Tunis")
H = timedelta(hours=1)
DAY = date(2026, 10, 25)  # a Sunday, and the day Paris falls back: 25 hours
NO_DATA = date(2026, 10, 4)  # cameras off all day, nothing counted: left out of the 4-week average
V = {"Authorization": f"Bearer {VIEWER}"}
A = {"Authorization": f"Bearer {ADMIN}"}

SITE = SiteConfig(
    stores=[
        StoreConfig(
            name="Épicerie du Port",
            timezone="Europe/Paris",
            cameras=[
                CameraConfig(
                    name="door",
                    source="door.mp4",
                    lines=[
                        LineConfig(name="entrance", segment=(0, 100, 600, 100)),
                        LineConfig(name="aisle", segment=(300, 0, 300, 400), footfall=False),
                    ],
                ),
                CameraConfig(
                    name="back", source="back.mp4", lines=[LineConfig(name="back door", segment=(0, 0, 9, 9))]
                ),
            ],
        ),
        StoreConfig(
            name="Tunis6",
            timezone="Africa/Tunis",
            day_start_hour=6,
            cameras=[
                CameraConfig(
                    name="door", source="t6.mp4", lines=[LineConfig(name="entrance", segment=(0, 0, 9, 9))]
                )
            ],
        ),
    ]
)


@dataclass(frozen=True)
class Crossing:
    ts: datetime
    store_id: int
    camera_id: int
    line_id: int
    line: str
    direction: str
    footfall: bool


@dataclass(frozen=True)
class Visit:
    t_in: datetime
    t_out: datetime


@dataclass
class Env:
    pool: asyncpg.Pool
    dsn: str
    paris: Store
    tunis: Store
    cameras: dict[str, dict[str, int]]  # store name → camera name → id
    entrances: dict[str, list[tuple[int, int, str]]]  # store name → (camera id, line id, name)
    aisle: tuple[int, int, str]
    visits: dict[tuple[int, date], list[Visit]]  # (store id, business date) → visits


def local(d: date, hour: float, tz: ZoneInfo) -> datetime:
    return (datetime.combine(d, time(0), tzinfo=tz).astimezone(UTC) + timedelta(hours=hour)).astimezone(UTC)


def local_start(store: Store, d: date) -> datetime:
    return datetime.combine(d, time(store.day_start_hour), tzinfo=ZoneInfo(store.timezone)).astimezone(UTC)


def day_bounds(store: Store, d: date) -> tuple[datetime, datetime]:
    return local_start(store, d), local_start(store, d + timedelta(days=1))


def make_visits(rng: random.Random, store: Store, d: date, n: int) -> list[Visit]:
    """``n`` visitors between 09:00 and 18:30 (store time), each staying 2–40 minutes."""
    tz = ZoneInfo(store.timezone)
    opening = datetime.combine(d, time(9), tzinfo=tz).astimezone(UTC)
    out = []
    for _ in range(n):
        t_in = opening + timedelta(seconds=rng.uniform(0, 9.5 * 3600))
        t_in = t_in.replace(microsecond=t_in.microsecond // 1000 * 1000)
        out.append(Visit(t_in, t_in + timedelta(seconds=rng.randint(120, 2400))))
    return out


async def insert_visits(
    env: Env, store: Store, name: str, d: date, visits: list[Visit], rng: random.Random
) -> None:
    rows: list[Crossing] = []
    for v in visits:
        cam, lid, lname = rng.choice(env.entrances[name])
        rows.append(Crossing(v.t_in, store.id, cam, lid, lname, "in", True))
        rows.append(Crossing(v.t_out, store.id, cam, lid, lname, "out", True))
    if name == "Épicerie du Port":  # people walking down the aisle: counted on its line, not as visitors
        cam, lid, lname = env.aisle
        for v in visits[::3]:
            rows.append(Crossing(v.t_in + timedelta(seconds=30), store.id, cam, lid, lname, "in", False))
    await env.pool.executemany(
        """INSERT INTO crossings (id, ts, store_id, camera_id, line_id, line, direction, footfall, track, session,
                                  frame)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'test', 1)""",
        [
            (uuid.uuid4(), c.ts, c.store_id, c.camera_id, c.line_id, c.line, c.direction, c.footfall, i)
            for i, c in enumerate(rows)
        ],
    )
    env.visits[(store.id, d)] = env.visits.get((store.id, d), []) + visits


async def camera_state(pool: asyncpg.Pool, camera_id: int, ts: datetime, state: str) -> None:
    await pool.execute(
        "INSERT INTO camera_status (ts, camera_id, state, fps) VALUES ($1, $2, $3, 5)", ts, camera_id, state
    )


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env() -> AsyncIterator[Env]:
    async with temp_database("metrica_test_reports") as dsn:
        pool = await make_pool(dsn)
        try:
            await site.bootstrap(pool, SITE)
            stores = {s.name: s for s in await site.list_stores(pool)}
            cameras: dict[str, dict[str, int]] = {}
            entrances: dict[str, list[tuple[int, int, str]]] = {}
            aisle = (0, 0, "")
            for name, s in stores.items():
                cams = await site.list_cameras(pool, store_id=s.id)
                cameras[name] = {c.name: c.id for c in cams}
                entrances[name] = [(c.id, ln.id, ln.name) for c in cams for ln in c.lines if ln.footfall]
                aisle = next(
                    ((c.id, ln.id, ln.name) for c in cams for ln in c.lines if not ln.footfall), aisle
                )
            yield Env(
                pool=pool,
                dsn=dsn,
                paris=stores["Épicerie du Port"],
                tunis=stores["Tunis6"],
                cameras=cameras,
                entrances=entrances,
                aisle=aisle,
                visits={},
            )
        finally:
            await pool.close()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def paris_history(env: Env) -> dict[date, int]:
    """Five Sundays of visits (DAY and the four before it); NO_DATA has none and its cameras were off.
    On DAY the door camera is down 10:00–13:00. Returns the INs per Sunday."""
    rng = random.Random(25)
    store = env.paris
    door, back = env.cameras["Épicerie du Port"]["door"], env.cameras["Épicerie du Port"]["back"]
    first = DAY - timedelta(days=40)
    for cam in (door, back):
        await camera_state(env.pool, cam, local(first, 0, PARIS), "running")
        await camera_state(env.pool, cam, local(NO_DATA, 0, PARIS), "stopped")
        await camera_state(env.pool, cam, local(NO_DATA + timedelta(days=1), 0, PARIS), "running")
    await camera_state(env.pool, door, local(DAY, 10, PARIS), "stopped")
    await camera_state(env.pool, door, local(DAY, 13, PARIS), "running")
    counts: dict[date, int] = {}
    for k, n in ((0, 160), (1, 140), (2, 190), (4, 120)):
        d = DAY - timedelta(days=7 * k)
        await insert_visits(env, store, "Épicerie du Port", d, make_visits(rng, store, d, n), rng)
        counts[d] = n
    # A Saturday and a Monday around DAY: must not leak into it.
    for d in (DAY - timedelta(days=1), DAY + timedelta(days=1)):
        await insert_visits(env, store, "Épicerie du Port", d, make_visits(rng, store, d, 50), rng)
    # Last week's Sunday is rolled up already (read from store_daily); the others the job computes.
    await rollup_store_day(env.pool, store, DAY - timedelta(days=7))
    counts[NO_DATA] = 0
    return counts


async def report_row(pool: asyncpg.Pool, store_id: int, d: date) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT version, generated_at, data::text AS data, html, csv, pdf FROM daily_reports"
        " WHERE store_id = $1 AND business_date = $2",
        store_id,
        d,
    )


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def day_report(env: Env, paris_history: dict[date, int]) -> ReportFigures:
    with capture_logs() as logs:
        result = await report_jobs.generate_report({"pool": env.pool}, env.paris.id, DAY.isoformat())
    assert result == {"status": "generated", "version": 1}
    assert [x["event"] for x in logs].count("report.generated") == 1
    row = await report_row(env.pool, env.paris.id, DAY)
    assert row is not None
    return msgspec.json.decode(row["data"], type=ReportFigures)


# -- the figures --------------------------------------------------------------------------------------


def expected_hours(store: Store, d: date, visits: list[Visit]) -> tuple[list[int], list[int]]:
    """INs and OUTs per hour, hours stepping 3600 s from the day's start in UTC."""
    start, end = day_bounds(store, d)
    n = int((end - start).total_seconds() // 3600)
    ins, outs = [0] * n, [0] * n
    for v in visits:
        ins[int((v.t_in - start).total_seconds() // 3600)] += 1
        outs[int((v.t_out - start).total_seconds() // 3600)] += 1
    return ins, outs


def expected_peak(visits: list[Visit]) -> tuple[int, datetime | None]:
    events = sorted([(v.t_in, 0, 1) for v in visits] + [(v.t_out, 1, -1) for v in visits])
    cur = best = 0
    at = None
    for ts, _, delta in events:
        cur += delta
        if cur > best:
            best, at = cur, ts
    return best, at


async def test_figures_match_counts_recomputed_from_the_rows(
    env: Env, paris_history: dict[date, int], day_report: ReportFigures
) -> None:
    f = day_report
    visits = env.visits[(env.paris.id, DAY)]
    ins, outs = expected_hours(env.paris, DAY, visits)
    assert f.in_count == len(visits) == paris_history[DAY] and f.out_count == len(visits)
    # 25 hours on the fall-back day, labelled in Paris time; the repeated 02:00 carries its offsets.
    assert len(f.hours) == 25 == len(ins)
    labels = [h.label for h in f.hours]
    assert labels[:5] == ["00:00", "01:00", "02:00 (+02:00)", "02:00 (+01:00)", "03:00"]
    assert labels[-1] == "23:00"
    assert [h.in_count for h in f.hours] == ins and [h.out_count for h in f.hours] == outs
    # Busiest: most INs, earliest on a tie; quietest: fewest INs from the first to the last IN's hour.
    top = max(ins)
    assert (
        f.busiest_hour is not None
        and f.busiest_hour.index == ins.index(top)
        and f.busiest_hour.in_count == top
    )
    first = next(i for i, x in enumerate(ins) if x)
    last = max(i for i, x in enumerate(ins) if x)
    low = min(ins[first : last + 1])
    assert f.quietest_hour is not None and f.quietest_hour.index == first + ins[first : last + 1].index(low)
    assert "first and the last visitor" in f.quietest_rule
    # Occupancy: every visitor leaves after entering, so ∫ occupancy dt = Σ stays.
    peak, peak_at = expected_peak(visits)
    assert f.peak_occupancy == peak and f.peak_at == peak_at and peak_at is not None
    assert f.peak_hour is not None
    assert f.hours[f.peak_hour.index].start <= peak_at < f.hours[f.peak_hour.index].end
    mean_stay = sum((v.t_out - v.t_in).total_seconds() for v in visits) / len(visits)
    assert f.avg_dwell_seconds == pytest.approx(mean_stay, abs=0.1)
    # Comparisons: last Sunday, and the previous Sundays that have data (NO_DATA is left out).
    week_ago = DAY - timedelta(days=7)
    assert f.last_week.dates == [week_ago] and f.last_week.in_count == paris_history[week_ago]
    assert f.last_week.delta == paris_history[DAY] - paris_history[week_ago]
    assert f.last_week.delta_pct == pytest.approx(f.last_week.delta / paris_history[week_ago] * 100, abs=0.05)
    with_data = [DAY - timedelta(days=7 * k) for k in (1, 2, 4)]
    assert f.four_weeks.dates == with_data
    mean = sum(paris_history[d] for d in with_data) / 3
    assert f.four_weeks.in_count == pytest.approx(mean, abs=0.01)
    assert f.four_weeks.delta == pytest.approx(paris_history[DAY] - mean, abs=0.01)
    # The job computed the previous Sundays it did not find in the rollups.
    rolled = await env.pool.fetch(
        "SELECT business_date, ins FROM store_daily WHERE store_id = $1 ORDER BY 1", env.paris.id
    )
    assert {r["business_date"]: r["ins"] for r in rolled} == {
        d: paris_history[d] for d in [DAY - timedelta(days=7 * k) for k in range(5)]
    }
    # Uptime: the door camera was down 3 of the day's 25 hours; the back one ran all day.
    cams = {c.name: c for c in f.cameras}
    assert cams["door"].uptime == pytest.approx(22 / 25, abs=1e-4) and cams["door"].warning
    assert cams["back"].uptime == 1.0 and not cams["back"].warning
    assert f.camera_warning is not None and "“door” ran 88%" in f.camera_warning
    assert "back" not in f.camera_warning


async def test_csv_parses_one_row_per_hour_and_sums_to_the_totals(
    env: Env, day_report: ReportFigures
) -> None:
    row = await report_row(env.pool, env.paris.id, DAY)
    assert row is not None
    rows = list(csv.reader(io.StringIO(row["csv"])))
    assert rows[0] == list(COLUMNS)
    body = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    assert len(rows) == len(day_report.hours) + 1 == 26
    assert sum(int(r["in_count"]) for r in body) == day_report.in_count
    assert sum(int(r["out_count"]) for r in body) == day_report.out_count
    starts = [datetime.fromisoformat(r["hour_start"]) for r in body]
    assert all((b - a) == H for a, b in itertools.pairwise(starts))  # distinct, even across 02:00
    assert {r["business_date"] for r in body} == {DAY.isoformat()}


async def test_pdf_opens_and_holds_the_visitor_count(env: Env, day_report: ReportFigures) -> None:
    row = await report_row(env.pool, env.paris.id, DAY)
    assert row is not None
    reader = pypdf.PdfReader(io.BytesIO(bytes(row["pdf"])))
    assert len(reader.pages) >= 1
    text = "\n".join(p.extract_text() for p in reader.pages)
    assert re.search(rf"Visitors in\s*{day_report.in_count}\b", text), text[:500]
    assert "Épicerie du Port" in text and "door" in text
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / f"report-{DAY.isoformat()}.pdf"
    path.write_bytes(bytes(row["pdf"]))
    print(f"PDF: {path}")


async def test_spring_forward_day_has_23_hours_and_a_quiet_day_has_no_busiest_hour() -> None:
    store = Store(id=7, name="Paris", timezone="Europe/Paris", day_start_hour=0)
    d = date(2026, 3, 29)
    hours = [HourRollup(hour_start=a, hour_end=b) for a, b in day_hours(store, d)]
    day = DayRollup(
        store_id=7,
        business_date=d,
        day_start=hours[0].hour_start,
        day_end=hours[-1].hour_end,
        hours=hours,
        cameras={1: (23 * 3600 * 0.5, 23 * 3600.0), 2: (0.0, 23 * 3600.0)},
    )
    cameras = [CameraInfo(id=1, name="door"), CameraInfo(id=2, name="spare", enabled=False)]
    f = make_figures(store, day, cameras, [PreviousDay(date=d - timedelta(days=7), in_count=0)])
    assert len(f.hours) == 23 and "02:00" not in [h.label for h in f.hours]
    assert [h.label for h in f.hours][:3] == ["00:00", "01:00", "03:00"]
    assert f.busiest_hour is None and f.quietest_hour is None and f.peak_hour is None
    assert f.last_week.in_count == 0 and f.last_week.delta == 0 and f.last_week.delta_pct is None
    assert f.four_weeks.dates == [d - timedelta(days=7)]
    # Half a day down is called out; a disabled camera that did not run is listed, not flagged.
    assert [(c.name, c.uptime, c.warning) for c in f.cameras] == [("door", 0.5, True), ("spare", 0.0, False)]
    assert (
        f.camera_warning is not None
        and "“door” ran 50%" in f.camera_warning
        and "spare" not in f.camera_warning
    )
    rows = list(csv.reader(io.StringIO(render_csv(f))))
    assert len(rows) == 24
    html = render_html(f)
    assert html.count('class="bar') == 23 and "circle" not in html


# -- the browser --------------------------------------------------------------------------------------


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))

    def with_class(self, tag: str, cls: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.found if t == tag and cls in (a.get("class") or "").split()]


async def chromium(*args: str, timeout: float = 90) -> bytes:
    profile = tempfile.mkdtemp(prefix="metrica-chromium-")
    try:
        proc = await asyncio.create_subprocess_exec(
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        assert proc.returncode == 0, f"chromium exited with {proc.returncode}"
        return out
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed")
async def test_report_page_renders_its_charts_in_chromium(env: Env, day_report: ReportFigures) -> None:
    row = await report_row(env.pool, env.paris.id, DAY)
    assert row is not None
    OUTPUT.mkdir(exist_ok=True)
    page = OUTPUT / f"report-{DAY.isoformat()}.html"
    page.write_text(row["html"], encoding="utf-8")
    dom = (await chromium("--dump-dom", page.as_uri())).decode()
    parsed = _Elements()
    parsed.feed(dom)
    f = day_report
    assert len(parsed.with_class("svg", "hourly")) == 1
    bars = parsed.with_class("rect", "bar")
    assert len(bars) == len(f.hours) == 25
    assert [int(b["data-in"] or -1) for b in bars] == [h.in_count for h in f.hours]
    busiest = parsed.with_class("rect", "busiest")
    assert f.busiest_hour is not None and [b["data-hour"] for b in busiest] == [f.busiest_hour.label]
    peak = parsed.with_class("circle", "peak")
    assert f.peak_hour is not None and [p["data-hour"] for p in peak] == [f.peak_hour.label]
    assert len(parsed.with_class("polyline", "occupancy")) == 1
    assert len(parsed.with_class("rect", "cmp")) == 3
    uptime = parsed.with_class("rect", "uptime")
    assert len(uptime) == 2 and sum("low" in (u["class"] or "") for u in uptime) == 1
    assert len(parsed.with_class("div", "warning")) == 1
    assert not [t for t, _ in parsed.found if t == "script"]
    # A phone-sized screenshot: the bars and the warning are painted, not only in the DOM.
    shot = OUTPUT / f"report-{DAY.isoformat()}.png"
    shot.unlink(missing_ok=True)
    await chromium(f"--screenshot={shot}", "--window-size=390,1600", "--hide-scrollbars", page.as_uri())
    print(f"screenshot: {shot}")
    with Image.open(shot) as img:
        assert img.size == (390, 1600)
        pixels = list(img.convert("RGB").get_flattened_data())
    accent = sum(1 for p in pixels if p == (37, 99, 235))  # the bars' blue
    busy = sum(1 for p in pixels if p == (245, 158, 11))  # the busiest hour's orange
    assert accent > 500 and busy > 20, (accent, busy)


# -- workers ------------------------------------------------------------------------------------------


async def redis_db2() -> arq.ArqRedis:
    settings = Settings.from_env({}, database_url="postgresql://unused", redis_url=REDIS_DB2)
    redis = await arq.create_pool(redis_settings(settings), default_queue_name=QUEUE)
    await redis.flushdb()  # db 2 is this module's own
    return redis


async def recent_days(env: Env) -> list[tuple[Store, date]]:
    """Visits on the last 9 days of both stores (real time), stores set up a month ago."""
    rng = random.Random(9)
    await env.pool.execute("UPDATE stores SET created_at = now() - interval '30 days'")
    now = datetime.now(UTC)
    out = []
    for name, store in (("Épicerie du Port", env.paris), ("Tunis6", env.tunis)):
        today = datetime.now(ZoneInfo(store.timezone)).date()
        for k in range(1, 10):
            d = today - timedelta(days=k)
            visits = [v for v in make_visits(rng, store, d, 20) if v.t_out < now]
            await insert_visits(env, store, name, d, visits, rng)
        out += [(store, d) for d in await_due(store, now)]
    return out


def await_due(store: Store, now: datetime) -> list[date]:
    """The closed business days (15 min grace) of the last week, computed here from the store's clock."""
    tz = ZoneInfo(store.timezone)
    shifted = (now - timedelta(minutes=15)).astimezone(tz) - timedelta(hours=store.day_start_hour)
    current = shifted.date()  # the business day now - grace is in
    return [current - timedelta(days=k) for k in range(1, 8)]


async def test_two_workers_and_duplicate_enqueues_make_each_report_once(env: Env) -> None:
    due = await recent_days(env)
    assert len(due) == 14
    redis = await redis_db2()
    settings = Settings.from_env({}, database_url=env.dsn, redis_url=REDIS_DB2)
    try:
        first = await report_jobs.enqueue_due_reports(redis, env.pool)
        assert sorted(first) == sorted(report_jobs.report_job_id(s.id, d) for s, d in due)
        assert await report_jobs.enqueue_due_reports(redis, env.pool) == []  # arq holds those ids
        # Duplicates under other job ids (an operator's script, a second scheduler): the job itself refuses.
        for i, (store, d) in enumerate(due[:6]):
            await redis.enqueue_job("generate_report", store.id, d.isoformat(), _job_id=f"dup-{i}")
        pools = [await arq.create_pool(redis_settings(settings), default_queue_name=QUEUE) for _ in range(2)]
        workers = [
            create_worker(
                settings,
                burst=True,
                handle_signals=False,
                redis_pool=p,
                cron_jobs=[dataclasses.replace(c) for c in report_jobs.CRON_JOBS],
                poll_delay=0.05,
            )
            for p in pools
        ]
        try:
            # Both workers see the same cron tick (10:00:30): one cron job is queued.
            tick = datetime(2026, 11, 24, 10, 0, 29, 900000, tzinfo=UTC)
            for w in workers:
                await w.run_cron(tick, 0.5)
                await w.run_cron(tick + timedelta(milliseconds=200), 0.5)
                for c in w.cron_jobs:  # the next tick is a while away
                    c.next_run = datetime.now(UTC) + H
            queued = [q for q in await redis.zrange(QUEUE, 0, -1) if q.startswith(b"cron:")]
            assert len(queued) == 1 and queued[0].startswith(b"cron:reports:"), queued
            with capture_logs() as logs:
                await asyncio.gather(*(w.main() for w in workers))
        finally:
            for w in workers:
                await w.close()
        assert sum(w.jobs_failed for w in workers) == 0
        assert sum(w.jobs_complete for w in workers) == 14 + 1 + 6
        assert all(w.jobs_complete > 0 for w in workers)  # both took part
        generated = [x for x in logs if x["event"] == "report.generated"]
        assert sorted((x["store_id"], x["date"]) for x in generated) == sorted(
            (s.id, d.isoformat()) for s, d in due
        )
        assert sum(x["event"] == "report.exists" for x in logs) == 6
        rows = await env.pool.fetch(
            "SELECT store_id, business_date, version, (data->>'in_count')::int AS n FROM daily_reports"
            " WHERE business_date > $1",
            DAY + timedelta(days=1),
        )
        assert sorted((r["store_id"], r["business_date"]) for r in rows) == sorted((s.id, d) for s, d in due)
        assert {r["version"] for r in rows} == {1}
        for r in rows:
            store = env.paris if r["store_id"] == env.paris.id else env.tunis
            start, end = day_bounds(store, r["business_date"])
            expected = sum(start <= v.t_in < end for v in env.visits.get((store.id, r["business_date"]), []))
            assert r["n"] == expected
        assert await report_jobs.due_reports(env.pool, datetime.now(UTC)) == []

        # An admin's regeneration: version 2, nothing else touched.
        store, d = due[0]
        before = await report_row(env.pool, store.id, d)
        await redis.enqueue_job("generate_report", store.id, d.isoformat(), True, _job_id="regen-1")
        worker = create_worker(settings, burst=True, handle_signals=False, cron=False, poll_delay=0.05)
        try:
            await worker.main()
        finally:
            await worker.close()
        after = await report_row(env.pool, store.id, d)
        assert before is not None and after is not None
        assert (before["version"], after["version"]) == (1, 2) and after["generated_at"] > before[
            "generated_at"
        ]
        assert await env.pool.fetchval("SELECT count(*) FROM daily_reports WHERE version > 1") == 1
    finally:
        await redis.flushdb()
        await redis.aclose()


# -- the API ------------------------------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def client(env: Env, day_report: ReportFigures) -> AsyncIterator[httpx.AsyncClient]:
    services = Services(
        settings=Settings(admin_token=ADMIN, viewer_token=VIEWER, redis_url=REDIS_DB2),
        pool=env.pool,
        actors=RecordingActors(),
        hub=LiveHub(),
        channels_backend=MemoryChannelsBackend(),
    )
    async with (
        Server(create_app(services)) as server,
        httpx.AsyncClient(base_url=server.url, timeout=30) as c,
    ):
        yield c


async def test_api_lists_and_serves_the_report(
    env: Env, client: httpx.AsyncClient, day_report: ReportFigures
) -> None:
    sid = env.paris.id
    r = await client.get(f"/api/stores/{sid}/reports", headers=V)
    assert r.status_code == 200
    listed = r.json()
    assert [x["date"] for x in listed] == sorted((x["date"] for x in listed), reverse=True)
    entry = next(x for x in listed if x["date"] == DAY.isoformat())
    assert set(entry) == {"date", "version", "generated_at", "in_count", "out_count"}
    assert (entry["in_count"], entry["out_count"]) == (day_report.in_count, day_report.out_count)
    assert len((await client.get(f"/api/stores/{sid}/reports?limit=1", headers=V)).json()) == 1

    r = await client.get(f"/api/stores/{sid}/reports/{DAY}", headers=V)
    assert r.status_code == 200
    body = r.json()
    assert body["in_count"] == day_report.in_count and len(body["hours"]) == 25 and body["version"] >= 1
    assert body["busiest_hour"]["label"] == day_report.busiest_hour.label  # type: ignore[union-attr]

    r = await client.get(f"/api/stores/{sid}/reports/{DAY}/html", headers=V)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert r.text.count('class="bar') == 25
    r = await client.get(f"/api/stores/{sid}/reports/{DAY}/csv", headers=V)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == f'attachment; filename="metrica-epicerie-du-port-{DAY}.csv"'
    assert sum(int(x["in_count"]) for x in csv.DictReader(io.StringIO(r.text))) == day_report.in_count
    r = await client.get(f"/api/stores/{sid}/reports/{DAY}/pdf", headers=V)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"] == f'attachment; filename="metrica-epicerie-du-port-{DAY}.pdf"'
    assert len(pypdf.PdfReader(io.BytesIO(r.content)).pages) >= 1

    # A phone opens the links with ?token=; the JSON routes keep to the header.
    for kind in ("html", "csv", "pdf"):
        assert (await client.get(f"/api/stores/{sid}/reports/{DAY}/{kind}?token={VIEWER}")).status_code == 200
        assert (await client.get(f"/api/stores/{sid}/reports/{DAY}/{kind}")).status_code == 401
        assert (
            await client.get(f"/api/stores/{sid}/reports/{DAY}/{kind}?token=wrong-token")
        ).status_code == 403
    assert (await client.get(f"/api/stores/{sid}/reports?token={VIEWER}")).status_code == 401

    # The paths the frontend uses are documented.
    spec = (await client.get("/docs/openapi.json")).json()
    for path in (
        "/api/stores/{store_id}/reports",
        "/api/stores/{store_id}/reports/{business_date}",
        "/api/stores/{store_id}/reports/{business_date}/html",
        "/api/stores/{store_id}/reports/{business_date}/csv",
        "/api/stores/{store_id}/reports/{business_date}/pdf",
        "/api/admin/stores/{store_id}/reports/{business_date}/regenerate",
    ):
        assert path in spec["paths"], path


async def test_api_errors_are_clear_4xx(env: Env, client: httpx.AsyncClient) -> None:
    sid = env.paris.id
    for bad in ("2026-13-01", "yesterday", "2026-10-25T00", "1999-01-01"):
        for suffix in ("", "/html", "/csv", "/pdf"):
            r = await client.get(f"/api/stores/{sid}/reports/{bad}{suffix}", headers=V)
            assert r.status_code == 400 and "date" in r.json()["detail"], (bad, suffix, r.text)
    r = await client.get(f"/api/stores/{sid}/reports/2026-01-01", headers=V)
    assert r.status_code == 404 and "no report" in r.json()["detail"]
    assert (await client.get("/api/stores/999/reports", headers=V)).status_code == 404
    assert (await client.get(f"/api/stores/999/reports/{DAY}/html", headers=V)).status_code == 404
    assert (await client.get(f"/api/stores/{sid}/reports?limit=0", headers=V)).status_code == 400
    url = f"/api/admin/stores/{sid}/reports/{DAY}/regenerate"
    assert (await client.post(url, headers=V)).status_code == 403
    assert (await client.post(url)).status_code == 401
    assert (
        await client.post(f"/api/admin/stores/999/reports/{DAY}/regenerate", headers=A)
    ).status_code == 404
    assert (
        await client.post(f"/api/admin/stores/{sid}/reports/2026-02-30/regenerate", headers=A)
    ).status_code == 400
    today = datetime.now(PARIS).date()
    r = await client.post(f"/api/admin/stores/{sid}/reports/{today}/regenerate", headers=A)
    assert r.status_code == 400 and "has not closed" in r.json()["detail"]


async def test_api_regenerate_enqueues_the_job_and_the_worker_bumps_the_version(
    env: Env, client: httpx.AsyncClient
) -> None:
    sid = env.paris.id
    redis = await redis_db2()
    try:
        before = await report_row(env.pool, sid, DAY)
        assert before is not None
        r = await client.post(f"/api/admin/stores/{sid}/reports/{DAY}/regenerate", headers=A)
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        assert r.json()["date"] == DAY.isoformat() and job_id.startswith(f"report:{sid}:{DAY}:")
        info = await arq.jobs.Job(job_id, redis, _queue_name=QUEUE).info()
        assert (
            info is not None
            and info.function == "generate_report"
            and info.args == (sid, DAY.isoformat(), True)
        )
        settings = Settings.from_env({}, database_url=env.dsn, redis_url=REDIS_DB2)
        worker = create_worker(settings, burst=True, handle_signals=False, cron=False, poll_delay=0.05)
        try:
            await worker.main()
        finally:
            await worker.close()
        assert worker.jobs_complete == 1
        body = (await client.get(f"/api/stores/{sid}/reports/{DAY}", headers=V)).json()
        assert body["version"] == before["version"] + 1
    finally:
        await redis.flushdb()
        await redis.aclose()


async def test_api_regenerate_without_redis_is_503(env: Env) -> None:
    services = Services(
        settings=Settings(
            admin_token=ADMIN, viewer_token=VIEWER, redis_url=f"redis://127.0.0.1:{free_port()}/0"
        ),
        pool=env.pool,
        actors=RecordingActors(),
        hub=LiveHub(),
        channels_backend=MemoryChannelsBackend(),
    )
    async with (
        Server(create_app(services)) as server,
        httpx.AsyncClient(base_url=server.url, timeout=30) as c,
    ):
        r = await c.post(f"/api/admin/stores/{env.paris.id}/reports/{DAY}/regenerate", headers=A)
        assert r.status_code == 503 and "Redis" in r.json()["detail"]
