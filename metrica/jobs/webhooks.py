"""Webhook delivery of alerts: each ``alert_deliveries`` row is POSTed until a 2xx answer, with retries.

A row is claimed with a lease (``attempts`` + 1, ``next_attempt_at`` pushed `LEASE` ahead, ``FOR UPDATE SKIP
LOCKED``) in a short transaction, and the HTTP call is made outside it: two workers never post the same row
at once, and a worker that dies mid-call leaves a row the next sweep retries once the lease ran out. A
failure (connection error, time-out, non-2xx) schedules the next attempt after `backoff` (30 s doubling, at
most an hour); after `MAX_ATTEMPTS` the row stays with its ``last_error`` for the operator.

Delivery is at least once: receivers deduplicate on ``X-Metrica-Delivery`` (the row's id). The body is the
WebSocket message plus the store; with ``METRICA_WEBHOOK_SECRET`` set, ``X-Metrica-Signature:
sha256=<hex HMAC-SHA256 of the body>`` lets the receiver check it came from this site.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import msgspec
import structlog
from arq.cron import CronJob, cron

from metrica.config import Settings

__all__ = [
    "CRON_JOBS",
    "FUNCTIONS",
    "MAX_ATTEMPTS",
    "DeliveryResult",
    "backoff",
    "deliver_due",
    "deliver_webhooks",
    "sign",
]

log = structlog.get_logger(__name__)

MAX_ATTEMPTS = 10  # 30 s, 1, 2, 4, 8, 16, 32 min, then hourly: about four hours of retries
LEASE = timedelta(minutes=2)  # longer than one POST can take (TIMEOUT), so a claimed row is not re-sent
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
BATCH = 50
USER_AGENT = "Metrica-Webhooks/1"


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt."""
    return timedelta(seconds=min(3600, 30 * 2 ** (attempts - 1)))


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class DeliveryResult(msgspec.Struct, kw_only=True):
    delivered: int = 0
    failed: int = 0  # will be retried
    given_up: int = 0  # out of attempts


_CLAIM_SQL = """
UPDATE alert_deliveries d SET attempts = d.attempts + 1, next_attempt_at = $2::timestamptz + $3::interval
FROM (SELECT id FROM alert_deliveries
      WHERE delivered_at IS NULL AND attempts < $4 AND next_attempt_at <= $2
      ORDER BY next_attempt_at, id LIMIT $1 FOR UPDATE SKIP LOCKED) due
WHERE d.id = due.id
RETURNING d.id, d.alert_id, d.event, d.url, d.attempts
"""

_BODY_SQL = """
SELECT a.id, a.store_id, a.kind, a.subject, a.camera_id, a.message, a.details, a.opened_at, a.resolved_at,
       a.resolved_message, s.name AS store_name, s.timezone AS store_timezone
FROM alerts a LEFT JOIN stores s ON s.id = a.store_id WHERE a.id = ANY($1::bigint[])
"""

_encoder = msgspec.json.Encoder()


def _body(event: str, alert: asyncpg.Record) -> bytes:
    fields = dict(alert.items())
    store = {
        "id": fields["store_id"],
        "name": fields.pop("store_name"),
        "timezone": fields.pop("store_timezone"),
    }
    return _encoder.encode({"type": "alert", "event": event, "alert": fields, "store": store})


async def deliver_due(
    pool: asyncpg.Pool,
    settings: Settings,
    client: httpx.AsyncClient,
    now: datetime | None = None,
    limit: int = BATCH,
) -> DeliveryResult:
    """Post every delivery due at ``now`` (at most ``limit``); what happened to them."""
    now = now or datetime.now(UTC)
    claimed = await pool.fetch(_CLAIM_SQL, limit, now, LEASE, MAX_ATTEMPTS)
    result = DeliveryResult()
    if not claimed:
        return result
    alerts = {r["id"]: r for r in await pool.fetch(_BODY_SQL, list({r["alert_id"] for r in claimed}))}
    for d in claimed:
        body = _body(d["event"], alerts[d["alert_id"]])
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Metrica-Delivery": str(d["id"]),
            "X-Metrica-Event": f"alert.{d['event']}",
        }
        if settings.webhook_secret:
            headers["X-Metrica-Signature"] = sign(body, settings.webhook_secret)
        error: str | None = None
        try:
            response = await client.post(d["url"], content=body, headers=headers, timeout=TIMEOUT)
            if not 200 <= response.status_code < 300:
                error = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if error is None:
            await pool.execute(
                "UPDATE alert_deliveries SET delivered_at = $2, last_error = NULL WHERE id = $1", d["id"], now
            )
            result.delivered += 1
            continue
        gave_up = d["attempts"] >= MAX_ATTEMPTS
        await pool.execute(
            "UPDATE alert_deliveries SET next_attempt_at = $2, last_error = $3 WHERE id = $1",
            d["id"],
            now + backoff(d["attempts"]),
            error[:500],
        )
        if gave_up:
            result.given_up += 1
        else:
            result.failed += 1
        # The URL may hold a secret token in its query: log the host only.
        log.warning(
            "webhook.failed",
            delivery=d["id"],
            alert_id=d["alert_id"],
            host=httpx.URL(d["url"]).host,
            attempt=d["attempts"],
            error=error,
            gave_up=gave_up,
        )
    return result


async def deliver_webhooks(ctx: dict[str, Any]) -> dict[str, Any]:
    """arq job (enqueued after alerts change, and every 30 s as a sweep): deliver what is due."""
    async with httpx.AsyncClient(follow_redirects=False) as client:
        total = DeliveryResult()
        while True:
            r = await deliver_due(ctx["pool"], ctx["settings"], client)
            total.delivered += r.delivered
            total.failed += r.failed
            total.given_up += r.given_up
            if r.delivered + r.failed + r.given_up < BATCH:
                break
    return msgspec.to_builtins(total)


FUNCTIONS: list[Any] = [deliver_webhooks]
CRON_JOBS: list[CronJob] = [
    cron(deliver_webhooks, name="cron:webhooks", second={5, 35}, unique=True, timeout=600, max_tries=1)
]
