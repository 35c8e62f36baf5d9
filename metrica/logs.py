"""structlog set-up: pretty in a terminal, JSON lines otherwise; always on stderr.

Libraries that log through the standard library (arq, asyncpg, uvicorn, litestar) are rendered by the
same renderer on the same stream, so `metrica worker`/`serve`/`demo` write one format an operator can
ship and parse. Their records are kept from WARNING up (arq logs every job it runs at INFO), or all of
them at ``level="debug"``; never below the level asked for.
"""

from __future__ import annotations

import logging
import sys

import structlog

_HANDLER_NAME = "metrica"


def configure_logging(level: str = "info", json: bool | None = None) -> None:
    if json is None:
        json = not sys.stderr.isatty()
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    levelno = logging.getLevelNamesMapping()[level.upper()]
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            timestamper,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(levelno),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )

    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name, timestamper],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *([structlog.processors.format_exc_info] if json else []),
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    # replace our own handler when called again; leave anybody else's (pytest's capture) in place
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(levelno if levelno <= logging.DEBUG else max(levelno, logging.WARNING))
