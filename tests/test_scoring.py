"""Ground-truth crossings and the scoring rules of shared/data/README.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from metrica.eval.groundtruth import gt_crossings, load_sequence
from metrica.eval.scoring import Score, count_accuracy, match_count, score_line
from metrica.vision.counter import Crossing


@pytest.mark.parametrize("name", ["PETS09-S2L1", "KITTI-17"])
def test_ground_truth_crossings_match_the_published_events(name: str, pets: Path, kitti: Path) -> None:
    folder = {"PETS09-S2L1": pets, "KITTI-17": kitti}[name]
    seq = load_sequence(folder)
    published = json.loads((folder / "lines.json").read_text())["lines"]
    ours = gt_crossings(seq)
    for line in seq.lines:
        mine = sorted([c.frame, c.direction] for c in ours if c.line == line.name)
        assert mine == sorted(published[line.name]["gt_events"]), line.name


def test_matching_is_one_to_one_within_the_tolerance() -> None:
    assert match_count([10, 11], [10], tolerance=7) == 1  # one truth matches one prediction
    assert match_count([10], [18], tolerance=7) == 0  # 8 frames apart at 7 fps: more than a second
    assert match_count([10], [17], tolerance=7) == 1
    # Greedy-by-time must not steal a truth that only one prediction can reach.
    assert match_count([5, 12], [11, 18], tolerance=6) == 2


def c(frame: int, direction: str) -> Crossing:
    return Crossing("l", direction, 1, frame, frame / 10)  # type: ignore[arg-type]


def test_direction_must_match() -> None:
    s = score_line([c(10, "in")], [c(10, "out")], fps=10)
    assert s.tp == 0 and s.precision == 0 and s.recall == 0 and s.f1 == 0


def test_scores_and_count_accuracy() -> None:
    s = score_line(
        [c(10, "in"), c(30, "in"), c(50, "out")], [c(12, "in"), c(50, "out"), c(70, "out")], fps=10
    )
    assert (s.tp, s.pred_in, s.pred_out, s.gt_in, s.gt_out) == (2, 2, 1, 1, 2)
    assert s.precision == pytest.approx(2 / 3) and s.recall == pytest.approx(2 / 3)
    assert s.count_acc_in == pytest.approx(0.0) and s.count_acc_out == pytest.approx(0.5)
    pooled = s + Score(gt_in=1, pred_in=1, tp=1)
    assert pooled.tp == 3 and pooled.gt_in == 2
    assert count_accuracy(0, 0) == 1.0 and count_accuracy(3, 0) == 0.0
