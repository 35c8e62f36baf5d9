"""The ``metrica`` command-line contract, run as a user would, on real footage."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from metrica.eval.groundtruth import gt_crossings, load_sequence
from metrica.eval.scoring import score_line
from metrica.vision.counter import Crossing

METRICA = str(Path(sys.executable).with_name("metrica"))
CROSSING_KEYS = {"type", "line", "direction", "frame", "pts", "track"}
EVAL_KEYS = {
    "sequence", "line", "gt_in", "gt_out", "pred_in", "pred_out", "tp",
    "precision", "recall", "f1", "count_acc_in", "count_acc_out",
}  # fmt: skip


def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([METRICA, *args], capture_output=True, text=True, timeout=timeout)


def lines_args(folder: Path) -> list[str]:
    spec = json.loads((folder / "lines.json").read_text())["lines"]
    out: list[str] = []
    for name, item in spec.items():
        out += ["--line", f"{name}=" + ",".join(str(v) for v in item["segment"])]
    return out


def parse_json_lines(stdout: str) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in stdout.splitlines()]
    assert rows, "no output"
    return rows


@pytest.fixture(scope="module")
def kitti_count(kitti: Path, yolov8n: Path) -> list[dict[str, Any]]:
    proc = run("count", str(kitti / "video.mp4"), *lines_args(kitti), "--model", str(yolov8n), "--json")
    assert proc.returncode == 0, proc.stderr
    return parse_json_lines(proc.stdout)


def test_count_json_contract(kitti_count: list[dict[str, Any]]) -> None:
    *crossings, summary = kitti_count
    assert summary["type"] == "summary"
    assert set(summary) == {"type", "lines", "frames", "processed", "seconds"}
    assert summary["frames"] == 145 and summary["processed"] == 145
    assert summary["seconds"] > 0
    assert set(summary["lines"]) == {"h333", "v612"}
    frames = []
    for c in crossings:
        assert set(c) == CROSSING_KEYS and c["type"] == "crossing"
        assert c["direction"] in ("in", "out") and c["line"] in ("h333", "v612")
        assert isinstance(c["track"], int) and isinstance(c["frame"], int)
        assert 1 <= c["frame"] <= 145
        assert c["pts"] == pytest.approx((c["frame"] - 1) / 10, abs=1e-3)  # 10 fps, first frame at 0
        frames.append(c["frame"])
    assert frames == sorted(frames)
    # The summary is the tally of the crossing lines.
    for name, counts in summary["lines"].items():
        for d in ("in", "out"):
            assert counts[d] == sum(1 for c in crossings if c["line"] == name and c["direction"] == d)


def test_count_on_real_footage_agrees_with_ground_truth(
    kitti: Path, kitti_count: list[dict[str, Any]]
) -> None:
    *rows, summary = kitti_count
    predicted = [Crossing(r["line"], r["direction"], r["track"], r["frame"], r["pts"]) for r in rows]
    truth = gt_crossings(load_sequence(kitti))
    total = score_line(predicted, truth, fps=10)
    assert total.f1 >= 0.85, total.as_dict()
    for name in summary["lines"]:
        line = score_line(
            [c for c in predicted if c.line == name], [c for c in truth if c.line == name], fps=10
        )
        assert line.recall >= 0.8, (name, line.as_dict())


def test_count_sampled_fps_keeps_source_frame_numbers(kitti: Path, yolov8n: Path) -> None:
    proc = run(
        "count", str(kitti / "video.mp4"), *lines_args(kitti), "--model", str(yolov8n), "--fps", "5", "--json"
    )
    assert proc.returncode == 0, proc.stderr
    *crossings, summary = parse_json_lines(proc.stdout)
    assert summary["frames"] == 145
    assert summary["processed"] == 73  # frames 1, 3, …, 145: every other one by presentation time
    assert crossings, "5 fps still counts people"
    assert all(c["frame"] % 2 == 1 for c in crossings)


def test_count_human_output_has_a_table(kitti: Path, yolov8n: Path) -> None:
    proc = run(
        "count",
        str(kitti / "video.mp4"),
        "--line",
        "door=61,333,1163,333",
        "--model",
        str(yolov8n),
        "--fps",
        "2",
    )
    assert proc.returncode == 0, proc.stderr
    assert "door" in proc.stdout and "in" in proc.stdout and "out" in proc.stdout
    assert "frames read" in proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["count", "/nonexistent/video.mp4", "--line", "a=0,0,10,10"], "no such file"),
        (["count", "{video}", "--line", "a=0,0,10"], "bad line"),
        (["count", "{video}", "--line", "a=0,0,10,10", "--line", "a=1,1,5,5"], "unique"),
        (
            ["count", "{video}", "--line", "a=0,0,10,10", "--model", "/nonexistent/m.onnx"],
            "model file not found",
        ),
        (["count", "{video}", "--line", "a=0,0,10,10", "--fps", "-3"], "must be positive"),
        (["eval", "/nonexistent/sequence"], "lines.json"),
    ],
)
def test_bad_input_gets_a_clear_error(args: list[str], message: str, kitti: Path) -> None:
    proc = run(*(a.replace("{video}", str(kitti / "video.mp4")) for a in args), timeout=120)
    assert proc.returncode == 2
    assert message in proc.stderr.lower()
    assert "Traceback" not in proc.stderr


def test_eval_json_contract(kitti: Path, yolov8n: Path) -> None:
    proc = run("eval", str(kitti), "--model", str(yolov8n), "--fps", "5", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = parse_json_lines(proc.stdout)
    assert [(r["sequence"], r["line"]) for r in rows] == [
        ("KITTI-17", "h333"),
        ("KITTI-17", "v612"),
        ("ALL", "pooled"),
    ]
    for r in rows:
        assert set(r) == EVAL_KEYS
        assert 0 <= r["precision"] <= 1 and 0 <= r["recall"] <= 1 and 0 <= r["f1"] <= 1
    assert (rows[0]["gt_in"], rows[0]["gt_out"], rows[1]["gt_in"], rows[1]["gt_out"]) == (5, 1, 1, 5)
    pooled = rows[-1]
    for key in ("gt_in", "gt_out", "pred_in", "pred_out", "tp"):
        assert pooled[key] == rows[0][key] + rows[1][key]


def test_bench_reports_every_stage_for_each_camera(kitti: Path, yolo11n: Path) -> None:
    proc = run(
        "bench",
        str(kitti / "video.mp4"),
        "--model",
        str(yolo11n),
        "--frames",
        "4",
        "--cameras",
        "2",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    results = parse_json_lines(proc.stdout)
    assert len(results) == 2  # one per camera process
    for r in results:
        assert r["frames"] == 4 and r["fps"] > 0 and r["peak_rss_mb"] > 0
        assert set(r["stages"]) == {"decode", "detect", "track", "count"}
        assert r["stages"]["detect"]["median_ms"] > 0
        assert r["stages"]["detect"]["p95_ms"] >= r["stages"]["detect"]["median_ms"]


def test_tuning_flags_reach_the_pipeline_config() -> None:
    from metrica.cli import _config, build_parser
    from metrica.vision.pipeline import PipelineConfig

    args = build_parser().parse_args(
        ["eval", "x", "--band-ratio", "0.12", "--track-new", "0.5", "--tracker", "bytetrack"]
    )
    config = _config(args)
    assert (config.band_ratio, config.track_new, config.tracker) == (0.12, 0.5, "bytetrack")
    defaults = _config(build_parser().parse_args(["eval", "x"]))
    assert defaults == PipelineConfig()  # the CLI's defaults are the evaluated ones
