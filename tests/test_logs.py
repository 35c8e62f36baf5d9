"""One log format: the project's structlog events and the libraries' standard-library records alike."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import logging, sys, structlog
    from metrica.logs import configure_logging
    configure_logging(sys.argv[1], json=True)
    configure_logging(sys.argv[1], json=True)  # twice: still one line per record
    structlog.get_logger("metrica.test").info("ours.info", n=1)
    logging.getLogger("arq.worker").info("  0.01s -> cron:evaluate_alerts()")
    logging.getLogger("arq.worker").warning("job %s failed", "abc")
    try:
        1 / 0
    except ZeroDivisionError:
        logging.getLogger("asyncpg.pool").exception("connection lost")
    """
)


def run(level: str) -> list[dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, level], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout == ""
    return [json.loads(line) for line in done.stderr.splitlines()]  # every line is JSON


def test_library_records_are_json_lines_like_ours_and_quiet_below_warning() -> None:
    lines = run("info")
    assert [x["event"] for x in lines] == ["ours.info", "job abc failed", "connection lost"]
    warning, error = lines[1], lines[2]
    assert warning["level"] == "warning" and warning["logger"] == "arq.worker"
    assert error["level"] == "error" and "ZeroDivisionError" in str(error["exception"])
    assert all(str(x["timestamp"]).endswith("Z") for x in lines)


def test_debug_shows_library_info_and_error_level_hides_warnings() -> None:
    assert "  0.01s -> cron:evaluate_alerts()" in [x["event"] for x in run("debug")]
    assert [x["event"] for x in run("error")] == ["connection lost"]
