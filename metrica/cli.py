"""The ``metrica`` command: demo | serve | migrate | count | eval | bench."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from metrica.logs import configure_logging

_json = msgspec.json.Encoder()


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(_json.encode(obj).decode() + "\n")
    sys.stdout.flush()


def _positive(kind: type[float] | type[int]) -> Callable[[str], float | int]:
    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def _setting(text: str) -> tuple[str, str]:
    from metrica.eval.bench_rollups import parse_setting

    try:
        return parse_setting(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_pipeline_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model", help="YOLO model name (yolo11n.pt) or path (.onnx/.pt); default: $METRICA_MODEL"
    )
    p.add_argument("--fps", type=_positive(float), help="sample the source down to this many frames a second")
    p.add_argument("--conf", type=float, default=0.25, help="detector confidence floor (default 0.25)")
    p.add_argument("--imgsz", type=_positive(int), help="detector input size (default: the model's own)")
    p.add_argument("--threads", type=_positive(int), help="CPU threads for the detector")
    p.add_argument("--tracker", choices=["botsort", "bytetrack"], default="botsort")
    defaults = _default_config()
    p.add_argument("--track-new", type=float, default=defaults.track_new, help="score that may start a track")
    p.add_argument(
        "--track-high", type=float, default=defaults.track_high, help="first-pass association score"
    )
    p.add_argument(
        "--band-ratio",
        type=float,
        default=defaults.band_ratio,
        help="hysteresis band either side of the line, as a fraction of the box height",
    )
    p.add_argument("--json", action="store_true", help="machine-readable JSON lines on standard output")


def _default_config() -> Any:
    from metrica.vision.pipeline import PipelineConfig

    return PipelineConfig()


def _config(args: argparse.Namespace) -> Any:
    from metrica.vision.pipeline import PipelineConfig

    return PipelineConfig(
        model=args.model,
        fps=args.fps,
        conf=args.conf,
        imgsz=args.imgsz,
        threads=args.threads,
        tracker=args.tracker,
        track_new=args.track_new,
        track_high=args.track_high,
        band_ratio=args.band_ratio,
    )


def _progress(total: int | None, desc: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="frame", disable=not enabled, file=sys.stderr, leave=False)


def cmd_count(args: argparse.Namespace) -> int:
    from metrica.vision.counter import Line
    from metrica.vision.pipeline import CountingPipeline
    from metrica.vision.source import VideoSource

    lines = [Line.parse(spec) for spec in args.line]
    config = _config(args)
    started = time.perf_counter()
    with VideoSource(args.source, target_fps=config.fps) as source:
        pipeline = CountingPipeline(lines, config, source_fps=source.native_fps)
        last_index = 0
        bar = _progress(source.frame_count, "counting", not args.json and not source.is_live)

        def on_frame(frame: Any) -> None:
            nonlocal last_index
            bar.update(frame.index - last_index)
            last_index = frame.index

        try:
            for c in pipeline.run(source, on_frame=on_frame):
                if args.json:
                    _emit(
                        {
                            "type": "crossing",
                            "line": c.line,
                            "direction": c.direction,
                            "frame": c.frame,
                            "pts": round(c.pts, 4),
                            "track": c.track,
                        }
                    )
                else:
                    bar.write(
                        f"{c.pts:9.2f}s  frame {c.frame:>6}  {c.line:<12} {c.direction.upper():<3}  track {c.track}"
                    )
        except KeyboardInterrupt:
            pass
        finally:
            bar.close()
        frames = source.frames_read
    seconds = time.perf_counter() - started
    if args.json:
        _emit(
            {
                "type": "summary",
                "lines": pipeline.counter.counts,
                "frames": frames,
                "processed": pipeline.processed,
                "seconds": round(seconds, 3),
            }
        )
    else:
        print(f"\n{'line':<16}{'in':>8}{'out':>8}")
        for name, n in pipeline.counter.counts.items():
            print(f"{name:<16}{n['in']:>8}{n['out']:>8}")
        print(f"\n{frames} frames read, {pipeline.processed} processed in {seconds:.1f} s")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from metrica.eval.evaluate import evaluate

    config = _config(args)
    bars: list[Any] = []

    def progress(seq: Any) -> Callable[[int], None] | None:
        if args.json:
            return None
        for old in bars:
            old.close()
        bar = _progress(None, seq.name, True)
        bars.append(bar)
        return lambda index: bar.update(index - bar.n)

    results = evaluate(args.dirs, config, progress)
    for bar in bars:
        bar.close()
    if args.json:
        for r in results:
            _emit(r.as_dict())
        return 0
    header = f"{'sequence':<14}{'line':<8}{'gt in/out':>10}{'pred in/out':>12}{'TP':>5}{'P':>7}{'R':>7}{'F1':>7}{'acc in':>8}{'acc out':>8}"
    print(header)
    print("-" * len(header))
    for r in results:
        s = r.score
        if r.sequence == "ALL":
            print("-" * len(header))
        print(
            f"{r.sequence:<14}{r.line:<8}{f'{s.gt_in}/{s.gt_out}':>10}{f'{s.pred_in}/{s.pred_out}':>12}{s.tp:>5}"
            f"{s.precision:>7.3f}{s.recall:>7.3f}{s.f1:>7.3f}{s.count_acc_in:>8.3f}{s.count_acc_out:>8.3f}"
        )
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from metrica.eval.bench import bench_cameras, bench_once

    config = _config(args)
    if args.cameras > 1 and not args.threads:
        config = msgspec.structs.replace(config, threads=max(1, (os.cpu_count() or 1) // args.cameras))
    if args.cameras == 1:
        bar = _progress(args.frames, "bench", not args.json)
        results = [bench_once(args.source, config, args.frames, on_frame=lambda: bar.update(1))]
        bar.close()
    else:
        results = bench_cameras(args.source, config, args.cameras, args.frames)
    if args.json:
        for r in results:
            _emit(msgspec.to_builtins(r))
        return 0
    r0 = results[0]
    print(
        f"model {r0.model}  source {r0.source}  fps target {config.fps or 'native'}  threads {config.threads or 'default'}"
    )
    print(f"{'stage':<8}{'median ms':>11}{'p95 ms':>9}")
    for name, cost in r0.stages.items():
        print(f"{name:<8}{cost.median_ms:>11.2f}{cost.p95_ms:>9.2f}")
    for i, r in enumerate(results):
        print(
            f"camera {i + 1}: {r.fps:.2f} fps over {r.frames} frames, CPU {r.cpu_percent:.0f}%,"
            f" peak RSS {r.peak_rss_mb:.0f} MB"
        )
    if len(results) > 1:
        print(f"total: {sum(r.fps for r in results):.2f} fps over {len(results)} cameras")
    return 0


def cmd_bench_api(args: argparse.Namespace) -> int:
    import asyncio

    from metrica.eval.bench_api import bench_api

    token = args.token or os.environ.get("METRICA_VIEWER_TOKEN")
    if not token:
        raise ValueError("pass --token or set METRICA_VIEWER_TOKEN")
    paths = args.path or ["/api/health", "/api/stores/1/live", "/api/stores/1/traffic?bucket=hour"]
    results = asyncio.run(
        bench_api(args.url, token, paths, concurrency=args.concurrency, requests=args.requests)
    )
    for r in results:
        if args.json:
            _emit(msgspec.to_builtins(r))
        else:
            print(
                f"{r.path:<45} p50 {r.p50_ms:7.1f} ms  p95 {r.p95_ms:7.1f} ms  p99 {r.p99_ms:7.1f} ms"
                f"  {r.rps:7.1f} req/s  errors {r.errors}/{r.requests}"
            )
    return 1 if any(r.errors for r in results) else 0


def cmd_bench_rollups(args: argparse.Namespace) -> int:
    import asyncio

    from metrica.eval.bench_rollups import DEFAULT_URL, bench_rollups, bench_url, format_report

    result = asyncio.run(
        bench_rollups(
            bench_url(args.database_url or os.environ.get("DATABASE_URL") or DEFAULT_URL),
            stores=args.stores,
            days=args.days,
            visits_per_day=args.visits_per_day,
            requests=args.requests,
            settings=dict(args.set),
            full_pass_stores=args.full_pass_stores,
            keep=args.keep,
            verbose=not args.json,
        )
    )
    if args.json:
        _emit(result)
    else:
        print(format_report(result))
    check = result["check"]
    return 0 if check["ok"] and check["api_totals_equal_raw"] else 1


def cmd_migrate(args: argparse.Namespace) -> int:
    import asyncio

    from metrica.db.migrate import migrate

    url = args.database_url or os.environ.get("DATABASE_URL")
    if not url:
        raise ValueError("no database: set DATABASE_URL or pass --database-url")
    applied = asyncio.run(migrate(url))
    print(f"applied {len(applied)} migration(s): {', '.join(applied)}" if applied else "schema is up to date")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    import asyncio

    from metrica.config import Settings
    from metrica.jobs.worker import run_worker

    asyncio.run(run_worker(Settings.from_env()))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import asyncio

    from metrica.config import Settings, load_site_config
    from metrica.service import run_service

    overrides: dict[str, Any] = {}
    if args.port is not None:
        overrides["port"] = args.port
    if args.host is not None:
        overrides["host"] = args.host
    if args.config is not None:
        overrides["site_config"] = args.config
    settings = Settings.from_env(**overrides)
    site = load_site_config(settings.site_config) if settings.site_config else None
    asyncio.run(run_service(settings, site=site))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    from metrica.config import Settings
    from metrica.service import SHARED_VIDEO, demo_site, load_tokens, run_demo

    video = Path(args.video) if args.video else SHARED_VIDEO
    if not video.is_file():
        hint = "" if args.video else " (../shared beside the checkout has the demo footage; or pass --video)"
        raise FileNotFoundError(f"no such video: {video}{hint}")
    data_dir = Path(args.data_dir).resolve()
    tokens = load_tokens(data_dir)
    settings = Settings.from_env(
        data_dir=str(data_dir),
        port=args.port,
        host=args.host,
        admin_token=tokens.admin,
        viewer_token=tokens.viewer,
    )
    asyncio.run(run_demo(settings, demo_site(video)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="metrica", description="Anonymous foot-traffic counting from CCTV.")
    parser.add_argument(
        "--log-level",
        default=os.environ.get("METRICA_LOG_LEVEL"),
        help="debug|info|warning|error (default: info for demo and serve, warning otherwise)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "demo", help="run everything on this machine: embedded database and Redis, a demo store and camera"
    )
    p.add_argument("--port", type=_positive(int), default=8000)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 for phones on the LAN)")
    p.add_argument("--video", help="video replayed as the demo camera (default: ../shared PETS09-S2L1)")
    p.add_argument(
        "--data-dir",
        default=os.environ.get("METRICA_DATA_DIR", "data/demo"),
        help="where the embedded database, Redis, outbox and tokens live (default: ./data/demo)",
    )
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("serve", help="run the service against DATABASE_URL and REDIS_URL (production)")
    p.add_argument("--port", type=_positive(int), help="default: $METRICA_PORT or 8000")
    p.add_argument("--host", help="default: $METRICA_HOST or 127.0.0.1")
    p.add_argument("--config", help="site YAML loaded into an empty database (default: $METRICA_CONFIG)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "worker", help="run the background jobs (rollups, daily reports, alerts, retention) from REDIS_URL"
    )
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("bench-api", help="API latency under concurrent load against a running service")
    p.add_argument("url", nargs="?", default="http://127.0.0.1:8000")
    p.add_argument("--token", help="viewer token (default: $METRICA_VIEWER_TOKEN)")
    p.add_argument("--path", action="append", help="path to GET (repeatable; default: health, live, traffic)")
    p.add_argument("--concurrency", type=_positive(int), default=20)
    p.add_argument("--requests", type=_positive(int), default=500, help="per path")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_api)

    p = sub.add_parser(
        "bench-rollups",
        help="rollup passes and traffic API latency over a generated year of events (own scratch database)",
    )
    p.add_argument(
        "--database-url",
        help="server to run on (default: $DATABASE_URL, else postgresql://postgres@127.0.0.1:5432/metrica_bench);"
        " the benchmark drops and recreates the URL's database if its name starts with metrica_bench,"
        " else metrica_bench beside it",
    )
    p.add_argument("--stores", type=_positive(int), default=100)
    p.add_argument("--days", type=_positive(int), default=365)
    p.add_argument("--visits-per-day", type=_positive(int), default=200, help="mean visits per store and day")
    p.add_argument("--requests", type=_positive(int), default=200, help="API requests per query kind")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        type=_setting,
        metavar="NAME=VALUE",
        help="PostgreSQL setting for the database's connections (repeatable), e.g. jit=off",
    )
    p.add_argument(
        "--full-pass-stores",
        type=_positive(int),
        help="time the full pass on this many stores and extrapolate (when it would take hours)",
    )
    p.add_argument("--keep", action="store_true", help="leave the database in place afterwards")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_rollups)

    p = sub.add_parser("migrate", help="create or upgrade the database schema (sql/ migrations)")
    p.add_argument("--database-url", help="default: $DATABASE_URL")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("count", help="count line crossings in a video file, RTSP stream or USB camera")
    p.add_argument("source", help="file path, rtsp://…, /dev/videoN or usb:N")
    p.add_argument(
        "--line",
        action="append",
        required=True,
        metavar="NAME=x1,y1,x2,y2",
        help="counting line (repeatable)",
    )
    _add_pipeline_args(p)
    p.set_defaults(func=cmd_count)

    p = sub.add_parser("eval", help="score counting against ground-truth sequences")
    p.add_argument(
        "dirs", nargs="+", metavar="DIR", help="sequence folders (video.mp4, gt/gt.txt, lines.json)"
    )
    _add_pipeline_args(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("bench", help="per-stage cost, fps, CPU and memory of the pipeline")
    p.add_argument("source")
    p.add_argument("--cameras", type=_positive(int), default=1, help="run N pipelines at once")
    p.add_argument(
        "--frames", type=_positive(int), help="frames per pipeline (loops the file; default: whole file)"
    )
    _add_pipeline_args(p)
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(
        args.log_level or ("info" if args.command in ("demo", "serve", "worker") else "warning")
    )
    from metrica.db.errors import DatabaseUnavailable, MigrationError
    from metrica.vision.detector import ModelError
    from metrica.vision.source import SourceError

    try:
        return int(args.func(args))
    except (
        SourceError,
        ModelError,
        ValueError,
        FileNotFoundError,
        ConnectionError,
        DatabaseUnavailable,
        MigrationError,
    ) as exc:
        print(f"metrica {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
