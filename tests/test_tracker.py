"""The tracker wrapper: stable ids, sampled timestamps, birth boxes, both trackers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from metrica.vision.tracker import PersonTracker


def walker(step: int, x0: float = 100.0, speed: float = 12.0) -> np.ndarray:
    x = x0 + speed * step
    return np.array([[x, 200.0, x + 40.0, 300.0, 0.9, 0.0]], dtype=np.float32)


@pytest.mark.parametrize("kind", ["botsort", "bytetrack"])
def test_one_walker_keeps_one_id_at_a_sampled_rate(kind: str) -> None:
    tracker = PersonTracker(kind, fps=5)  # type: ignore[arg-type]
    ids = set()
    outputs = 0
    for step in range(20):
        tracks = tracker.update(walker(step), np.zeros((480, 640, 3), np.uint8), pts=step * 0.2)
        if len(tracks):
            outputs += 1
            ids.add(int(tracks[0, 4]))
            assert tracks.shape[1] == 6
            assert abs(tracks[0, 0] - walker(step)[0, 0]) < 8  # the box follows the person
    assert len(ids) == 1
    assert outputs >= 18  # confirmed after its second detection


def test_birth_box_is_where_the_track_started() -> None:
    tracker = PersonTracker("botsort", fps=5)
    tracker.update(np.empty((0, 6), np.float32), None, pts=0.0)  # an empty first frame
    out = []
    for step in range(1, 5):
        tracks = tracker.update(walker(step), None, pts=step * 0.2)
        out.append((tracks, tracker.births(tracks, step * 0.2)))
    confirmed = [(t, b) for t, b in out if len(t)]
    assert len(confirmed) == 3  # reported from its second detection on
    tracks, births = confirmed[0]
    assert len(births) == 1 and births[0, 4] == tracks[0, 4]
    assert births[0, 0] == pytest.approx(walker(1)[0, 0], abs=1)  # the box of its first detection
    assert all(len(b) == 0 for _, b in confirmed[1:])  # reported once


def test_unknown_tracker_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown tracker"):
        PersonTracker("sort")  # type: ignore[arg-type]


def standing(x: float = 300.0) -> np.ndarray:
    return np.array([[x, 150.0, x + 50.0, 300.0, 0.9, 0.0]], dtype=np.float32)


def id_after_a_gap(kind: str, fps: float, hidden: int) -> tuple[int, int]:
    """Ids of a person seen for 2 s, missing from ``hidden`` sampled frames, then seen again where they stood."""
    tracker = PersonTracker(kind, fps=fps, lost_seconds=3.0)  # type: ignore[arg-type]
    step, pts, before = 1.0 / fps, 0.0, np.empty((0, 6), np.float32)
    for _ in range(round(2 * fps)):
        before = tracker.update(standing(), None, pts)
        pts += step
    for _ in range(hidden):
        assert len(tracker.update(np.empty((0, 6), np.float32), None, pts)) == 0
        pts += step
    after = tracker.update(standing(), None, pts)
    after = after if len(after) else tracker.update(standing(), None, pts + step)  # a new track confirms
    assert len(before) == 1 and len(after) == 1
    return int(before[0, 4]), int(after[0, 4])


@pytest.mark.parametrize("kind", ["botsort", "bytetrack"])
@pytest.mark.parametrize("fps", [2.5, 5.0, 7.5, 10.0])
def test_a_lost_track_is_kept_for_lost_seconds_at_any_sampled_rate(kind: str, fps: float) -> None:
    # lost_seconds is time, not frames: hidden for up to 3 s the person keeps their id, a little longer
    # and they are a new track, at every rate (7.5 fps is not a whole rate, which boxmot cannot take).
    within = math.floor(3.0 * fps + 1e-9)  # frames missing: the longest gap that is at most 3 s
    first, again = id_after_a_gap(kind, fps, within)
    assert again == first
    first, later = id_after_a_gap(kind, fps, within + 2)
    assert later != first


def test_tracker_refuses_a_rate_or_lost_time_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        PersonTracker("botsort", fps=0)
    with pytest.raises(ValueError, match="positive"):
        PersonTracker("botsort", lost_seconds=-1)
