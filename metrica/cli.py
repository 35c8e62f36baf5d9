"""The ``metrica`` command: count | eval | bench."""

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="metrica", description="Anonymous foot-traffic counting from CCTV.")
    parser.add_argument("--log-level", default=os.environ.get("METRICA_LOG_LEVEL", "warning"))
    sub = parser.add_subparsers(dest="command", required=True)

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
    configure_logging(args.log_level)
    from metrica.vision.detector import ModelError
    from metrica.vision.source import SourceError

    try:
        return int(args.func(args))
    except (SourceError, ModelError, ValueError, FileNotFoundError) as exc:
        print(f"metrica {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
