"""Daily report routes: the list, the figures (JSON), the renderings (HTML, CSV, PDF) and an admin's
"regenerate", which enqueues the job on the worker queue (`metrica.jobs.reports.generate_report`).

The three renderings also take ``?token=<viewer or admin token>``: a phone opens them from a plain link
(a new tab or a download cannot carry an Authorization header). The token then sits in the URL, so these
routes serve only report content, never anything the viewer token does not already read.
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any

import msgspec
import structlog
from litestar import Response, Router, get, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import PathParameter, QueryParameter
from litestar.status_codes import HTTP_202_ACCEPTED

from metrica.api.auth import admin_guard, authorize, token_from, viewer_guard
from metrica.api.errors import ApiError
from metrica.api.services import Services
from metrica.db import site
from metrica.jobs.reports import day_closed
from metrica.reports.figures import ReportFigures
from metrica.site import Store

__all__ = ["ROUTERS", "RegenerateAccepted", "ReportEntry", "StoredReport", "download_guard"]

log = structlog.get_logger(__name__)

Id = Annotated[int, PathParameter(ge=1, le=2**31 - 1)]
DateParam = Annotated[str, PathParameter(max_length=64, description="a business date, YYYY-MM-DD")]
Deps = NamedDependency[Services]
MAX_LIST = 3700


class ReportEntry(msgspec.Struct, kw_only=True):
    """One stored report (GET /api/stores/{id}/reports)."""

    date: date  # the business date
    version: int  # 1, then + 1 per regeneration
    generated_at: datetime
    in_count: int
    out_count: int


class StoredReport(ReportFigures, kw_only=True):
    """A report's figures, with its version and when that version was generated."""

    version: int
    generated_at: datetime


class RegenerateAccepted(msgspec.Struct, kw_only=True):
    job_id: str
    store_id: int
    date: date


def download_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """`viewer_guard` that also takes ``?token=`` (links a phone opens)."""
    settings = connection.app.state["services"].settings
    failure = authorize(token_from(connection, allow_query=True), "viewer", settings)
    if failure is None:
        return
    status, reason = failure
    if status == 401:
        raise NotAuthorizedException(
            reason + " (or add ?token=<token> to the link)", headers={"WWW-Authenticate": "Bearer"}
        )
    raise PermissionDeniedException(reason)


def _parse_date(value: str) -> date:
    parsed: date | None = None
    with contextlib.suppress(ValueError):
        parsed = date.fromisoformat(value.strip()) if len(value.strip()) == 10 else None
    if parsed is None:
        raise ApiError(400, f"date: expected a business date as YYYY-MM-DD, got {value!r}")
    if not 2000 <= parsed.year <= 2100:
        raise ApiError(400, f"date: {value!r} is outside the years 2000–2100")
    return parsed


async def _fetch(services: Services, store_id: int, value: str, column: str) -> tuple[Store, date, Any]:
    store = await site.get_store(services.pool, store_id)  # 404 for an unknown store
    d = _parse_date(value)
    row = await services.pool.fetchrow(
        f"SELECT {column}, version, generated_at FROM daily_reports WHERE store_id = $1 AND business_date = $2",
        store_id,
        d,
    )
    if row is None:
        hint = "" if day_closed(store, d, datetime.now(UTC)) else " (that business day has not closed yet)"
        raise ApiError(404, f"no report for store {store_id} on {d.isoformat()}{hint}")
    return store, d, row


def _slug(store: Store) -> str:
    ascii_name = unicodedata.normalize("NFKD", store.name).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9]+", "-", ascii_name).strip("-").lower()[:40] or f"store-{store.id}"


def _filename(store: Store, d: date, ext: str) -> str:
    return f"metrica-{_slug(store)}-{d.isoformat()}.{ext}"


_DOWNLOAD_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the link may carry ?token=
    "Cache-Control": "private, no-cache",
}
# The page has no script and no external asset: nothing else may load.
_HTML_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
)


@get(
    "/api/stores/{store_id:int}/reports",
    summary="The store's daily reports, newest first",
    description=(
        "`limit`: 1..3700 (default 30). Answer: a JSON list, newest business date first, of"
        " `{date, version, generated_at, in_count, out_count}`: `date` is the business date `YYYY-MM-DD`;"
        " `version` 1, then + 1 per regeneration; `generated_at` when that version was rendered (UTC);"
        " `in_count`/`out_count` the day's entrance visitors. A report is made about 15 minutes after its"
        " business day closes. Each one is served as JSON (`/reports/{date}`), a phone page"
        " (`/reports/{date}/html`), CSV (`/reports/{date}/csv`) and PDF (`/reports/{date}/pdf`)."
    ),
    tags=["reports"],
)
async def list_reports(
    services: Deps, store_id: Id, limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIST)] = 30
) -> list[ReportEntry]:
    await site.get_store(services.pool, store_id)
    rows = await services.pool.fetch(
        """SELECT business_date, version, generated_at, (data->>'in_count')::int AS in_count,
                  (data->>'out_count')::int AS out_count
           FROM daily_reports WHERE store_id = $1 ORDER BY business_date DESC LIMIT $2""",
        store_id,
        limit,
    )
    return [
        ReportEntry(
            date=r["business_date"],
            version=r["version"],
            generated_at=r["generated_at"],
            in_count=r["in_count"],
            out_count=r["out_count"],
        )
        for r in rows
    ]


@get(
    "/api/stores/{store_id:int}/reports/{business_date:str}",
    summary="The figures of one daily report (JSON)",
    description=(
        "`business_date`: `YYYY-MM-DD` (400 otherwise; 404 when there is no report). Answer: the figures the"
        " renderings are made of, plus `version` and `generated_at`. Times are ISO date-times in the store's"
        " zone. `hours`: one entry per hour of the business day (23, 24 or 25 on DST days) with `label` (local"
        " clock time), `in_count`, `out_count`, `peak_occupancy`, `avg_occupancy`. `busiest_hour` /"
        " `quietest_hour` / `peak_hour`: `{index, label, in_count}` or null — the quietest hour is the one"
        " with the fewest visitors between the first and the last visitor (`quietest_rule`); the peak hour"
        " holds `peak_at`, when the most people were inside. `last_week` and `four_weeks`:"
        " `{label, dates, in_count, delta, delta_pct}` (the same weekday a week before; the mean of the 4"
        " previous same weekdays that have data; null values: no data). `cameras`: uptime per camera"
        " (`uptime` 0..1, `warning` below 95%), and `camera_warning` a sentence when one was down."
    ),
    tags=["reports"],
)
async def get_report(services: Deps, store_id: Id, business_date: DateParam) -> StoredReport:
    _, _, row = await _fetch(services, store_id, business_date, "data::text AS data")
    figures = msgspec.json.decode(row["data"], type=ReportFigures)
    return StoredReport(
        **msgspec.structs.asdict(figures), version=row["version"], generated_at=row["generated_at"]
    )


@get(
    "/api/stores/{store_id:int}/reports/{business_date:str}/html",
    summary="One daily report as a phone page (HTML with inline SVG charts)",
    description=(
        "A self-contained page (no script, no external asset): key figures, visitors per hour with the"
        " busiest/quietest/peak hours, the comparison with previous weeks, camera uptime, the hourly table."
        " Accepts `?token=` instead of the Authorization header, so a phone can open it from a link."
    ),
    tags=["reports"],
    media_type="text/html; charset=utf-8",
)
async def get_report_html(services: Deps, store_id: Id, business_date: DateParam) -> Response[bytes]:
    _, _, row = await _fetch(services, store_id, business_date, "html")
    headers = {**_DOWNLOAD_HEADERS, "Content-Security-Policy": _HTML_CSP}
    return Response(row["html"].encode(), media_type="text/html; charset=utf-8", headers=headers)


@get(
    "/api/stores/{store_id:int}/reports/{business_date:str}/csv",
    summary="One daily report as CSV (one row per hour)",
    description=(
        "Columns: `business_date, hour_start, hour_end, hour, in_count, out_count, peak_occupancy,"
        " avg_occupancy` (times ISO 8601 with the store's offset); one row per hour of the business day, so"
        " the columns sum to the day's totals. Downloaded as `metrica-<store>-<date>.csv`. Accepts `?token=`."
    ),
    tags=["reports"],
    media_type="text/csv; charset=utf-8",
)
async def get_report_csv(services: Deps, store_id: Id, business_date: DateParam) -> Response[bytes]:
    store, d, row = await _fetch(services, store_id, business_date, "csv")
    headers = {
        **_DOWNLOAD_HEADERS,
        "Content-Disposition": f'attachment; filename="{_filename(store, d, "csv")}"',
    }
    return Response(row["csv"].encode(), media_type="text/csv; charset=utf-8", headers=headers)


@get(
    "/api/stores/{store_id:int}/reports/{business_date:str}/pdf",
    summary="One daily report as PDF (A4)",
    description="Downloaded as `metrica-<store>-<date>.pdf`. Accepts `?token=`.",
    tags=["reports"],
    media_type="application/pdf",
)
async def get_report_pdf(services: Deps, store_id: Id, business_date: DateParam) -> Response[bytes]:
    store, d, row = await _fetch(services, store_id, business_date, "pdf")
    headers = {
        **_DOWNLOAD_HEADERS,
        "Content-Disposition": f'attachment; filename="{_filename(store, d, "pdf")}"',
    }
    return Response(bytes(row["pdf"]), media_type="application/pdf", headers=headers)


async def _enqueue(redis_url: str, store_id: int, d: date) -> str:
    """Enqueue a regeneration on the worker queue; ApiError 503 when Redis cannot be reached."""
    from arq import create_pool
    from arq.connections import RedisSettings
    from redis.exceptions import RedisError

    from metrica.jobs.worker import QUEUE

    job_id = f"report:{store_id}:{d.isoformat()}:regenerate:{uuid.uuid4().hex[:12]}"
    try:
        rs = RedisSettings.from_dsn(redis_url)
    except (RuntimeError, ValueError) as exc:
        raise ApiError(503, f"the job queue is misconfigured (REDIS_URL: {exc})") from None
    rs.conn_retries, rs.conn_timeout = 0, 2  # an admin waits for an answer, not for retries
    try:
        redis = await create_pool(rs, default_queue_name=QUEUE)
    except (OSError, RedisError, TimeoutError) as exc:
        log.warning("report.queue_unavailable", error=type(exc).__name__)
        raise ApiError(
            503, "the job queue (Redis) is unreachable: the report was not queued; try again later"
        ) from None
    try:
        job = await redis.enqueue_job("generate_report", store_id, d.isoformat(), True, _job_id=job_id)
    except (OSError, RedisError, TimeoutError) as exc:
        log.warning("report.queue_unavailable", error=type(exc).__name__)
        raise ApiError(
            503, "the job queue (Redis) is unreachable: the report was not queued; try again later"
        ) from None
    finally:
        await redis.aclose()
    if job is None:  # a fresh random id: only if Redis already holds it
        raise ApiError(409, "that regeneration is already queued")
    return job_id


@post(
    "/api/admin/stores/{store_id:int}/reports/{business_date:str}/regenerate",
    summary="Re-render one daily report (queued for the worker)",
    description=(
        "Enqueues `generate_report` for that business day; the worker recomputes the day's rollups from the"
        " raw events and stores the report again with `version` + 1 (or version 1 if there was none)."
        " Answer 202 `{job_id, store_id, date}`. 400: a malformed date or a day that has not closed yet;"
        " 404: no such store; 503: the job queue (Redis) is not configured or unreachable."
    ),
    status_code=HTTP_202_ACCEPTED,
    tags=["admin", "reports"],
)
async def regenerate_report(services: Deps, store_id: Id, business_date: DateParam) -> RegenerateAccepted:
    store = await site.get_store(services.pool, store_id)
    d = _parse_date(business_date)
    if not day_closed(store, d, datetime.now(UTC)):
        raise ApiError(
            400, f"the business day {d.isoformat()} has not closed yet: a report covers a whole day"
        )
    if not services.settings.redis_url:
        raise ApiError(503, "no job queue: REDIS_URL is not set, so no worker can generate the report")
    job_id = await _enqueue(services.settings.redis_url, store_id, d)
    log.info("report.regenerate_queued", store_id=store_id, date=d.isoformat(), job_id=job_id)
    return RegenerateAccepted(job_id=job_id, store_id=store_id, date=d)


reports_router = Router(
    path="/", guards=[viewer_guard], route_handlers=[list_reports, get_report], security=[{"BearerToken": []}]
)
downloads_router = Router(
    path="/",
    guards=[download_guard],
    route_handlers=[get_report_html, get_report_csv, get_report_pdf],
    security=[{"BearerToken": []}],
)
reports_admin_router = Router(
    path="/", guards=[admin_guard], route_handlers=[regenerate_report], security=[{"BearerToken": []}]
)

ROUTERS: list[Router] = [reports_router, downloads_router, reports_admin_router]
