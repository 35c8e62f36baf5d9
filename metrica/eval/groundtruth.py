"""Ground truth for counting: MOTChallenge tracks → line crossings.

The crossings are computed from ``gt/gt.txt`` with the very same ``LineCounter`` the live
pipeline uses, which is the definition in ``shared/data/README.md``: foot point, a band of a
tenth of the box height, segment-limited, frame of commitment.
"""

from __future__ import annotations

import configparser
import json
from collections import defaultdict
from pathlib import Path

import msgspec
import numpy as np

from metrica.vision.counter import Crossing, Line, LineCounter


class Sequence(msgspec.Struct, frozen=True):
    """One evaluation folder: video, ground-truth tracks and counting lines."""

    name: str
    path: Path
    video: Path
    gt: Path
    fps: float
    lines: list[Line]


def load_sequence(folder: str | Path) -> Sequence:
    path = Path(folder)
    spec_file = path / "lines.json"
    if not spec_file.is_file():
        raise FileNotFoundError(
            f"{path}: no lines.json (expected a sequence folder like shared/data/sequences/X)"
        )
    spec = json.loads(spec_file.read_text())
    fps = float(spec.get("fps") or 0)
    ini = path / "seqinfo.ini"
    if not fps and ini.is_file():
        cfg = configparser.ConfigParser()
        cfg.read(ini)
        fps = float(cfg["Sequence"]["frameRate"])
    lines = [Line(name, *map(float, item["segment"])) for name, item in spec["lines"].items()]
    return Sequence(
        name=path.name,
        path=path,
        video=path / spec.get("video", "video.mp4"),
        gt=path / spec.get("gt", "gt/gt.txt"),
        fps=fps,
        lines=lines,
    )


def read_gt_tracks(gt_file: str | Path) -> dict[int, np.ndarray]:
    """Frame number → rows ``x1, y1, x2, y2, id`` of the boxes marked ``conf=1``."""
    data = np.loadtxt(gt_file, delimiter=",", ndmin=2)
    data = data[data[:, 6] == 1]
    frames: dict[int, list[list[float]]] = defaultdict(list)
    for f, tid, x, y, w, h, *_ in data:
        frames[int(f)].append([x, y, x + w, y + h, tid])
    return {f: np.asarray(rows, dtype=np.float64) for f, rows in sorted(frames.items())}


def gt_crossings(seq: Sequence) -> list[Crossing]:
    counter = LineCounter(seq.lines, band_ratio=0.1, track_ttl=float("inf"))  # the README's definition
    out: list[Crossing] = []
    for frame, rows in read_gt_tracks(seq.gt).items():
        out.extend(counter.update(frame, (frame - 1) / seq.fps, rows))
    return out
