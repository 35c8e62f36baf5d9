"""Counting geometry, frame by frame (DESIGN.md: foot point, hysteresis, segment-limited)."""

from __future__ import annotations

import numpy as np
import pytest

from metrica.vision.counter import Crossing, Line, LineCounter

# A horizontal door line from x=100 to x=300 at y=200, directed left → right:
# s(p) = (x2-x1)*(py-y1) > 0 below the line, so walking downwards is "in".
DOOR = Line("door", 100, 200, 300, 200)
H = 100.0  # box height; the band is 10 px either side of the line


def box(fx: float, fy: float, tid: int, h: float = H, w: float = 40.0) -> list[float]:
    """Box whose foot point (bottom centre) is (fx, fy)."""
    return [fx - w / 2, fy - h, fx + w / 2, fy, tid]


def walk(
    counter: LineCounter, points: list[tuple[float, float]], tid: int = 1, start: int = 1
) -> list[Crossing]:
    out: list[Crossing] = []
    for i, (x, y) in enumerate(points):
        frame = start + i
        out += counter.update(frame, frame / 10, np.array([box(x, y, tid)]))
    return out


def test_walking_in_and_out_again_is_one_in_and_one_out() -> None:
    c = LineCounter([DOOR], band_ratio=0.1)
    events = walk(c, [(200, 150), (200, 180), (200, 205), (200, 230), (200, 250)])
    assert [(e.direction, e.frame) for e in events] == [("in", 4)]  # committed at y=230 (s=30 ≥ 10)
    events = walk(c, [(200, 230), (200, 195), (200, 170)], start=6)
    assert [(e.direction, e.frame) for e in events] == [("out", 8)]
    assert c.counts == {"door": {"in": 1, "out": 1}}


def test_direction_follows_the_segment_not_the_image_axes() -> None:
    reversed_door = Line("door", 300, 200, 100, 200)  # same place, opposite direction
    c = LineCounter([reversed_door], band_ratio=0.1)
    events = walk(c, [(200, 150), (200, 250)])
    assert [e.direction for e in events] == ["out"]


def test_u_turn_before_the_line_counts_nothing() -> None:
    c = LineCounter([DOOR], band_ratio=0.1)
    assert walk(c, [(200, 120), (200, 160), (200, 185), (200, 160), (200, 120)]) == []


def test_flicker_at_the_line_counts_at_most_once() -> None:
    c = LineCounter([DOOR], band_ratio=0.1)
    # Committed outside, then jitter across the line inside the band, then settle inside.
    path = [(200, 150), (200, 198), (200, 203), (200, 197), (200, 204), (200, 199), (200, 206), (200, 240)]
    events = walk(c, path)
    assert [e.direction for e in events] == ["in"]
    # Jitter without ever leaving the band on the other side counts nothing.
    c2 = LineCounter([DOOR], band_ratio=0.1)
    assert walk(c2, [(200, 150), (200, 195), (200, 205), (200, 195), (200, 205), (200, 195)]) == []


def test_fast_mover_jumping_the_band_between_two_sampled_frames_counts() -> None:
    c = LineCounter([DOOR], band_ratio=0.1)
    events = walk(c, [(200, 120), (200, 290)])  # one step from far outside to far inside
    assert [(e.direction, e.frame) for e in events] == [("in", 2)]


def test_crossing_outside_the_segment_does_not_count() -> None:
    c = LineCounter([DOOR], band_ratio=0.1)
    assert walk(c, [(400, 150), (400, 250)]) == []  # x=400 is right of the door's end (300)
    # Crossing outside, then walking over inside without crossing the line again: still nothing.
    assert walk(c, [(350, 250), (250, 250), (200, 260)], tid=2) == []


def test_diagonal_path_is_judged_where_it_meets_the_line() -> None:
    c = LineCounter([DOOR], band_ratio=0.1)
    # Starts beyond the door's end (x=360 > 300) but meets y=200 at x=280: inside the door.
    events = walk(c, [(360, 120), (200, 280)])
    assert [e.direction for e in events] == ["in"]
    # Starts above the door (x=250) but meets y=200 at x=335: outside it.
    assert walk(c, [(250, 120), (420, 280)], tid=2) == []


def test_track_that_appears_on_the_far_side_counts_nothing() -> None:
    c = LineCounter([DOOR], band_ratio=0.1)
    assert walk(c, [(200, 260), (200, 280), (200, 300)]) == []
    assert c.counts["door"] == {"in": 0, "out": 0}


def test_several_named_lines_count_independently() -> None:
    side = Line("side", 500, 0, 500, 400)  # vertical, directed downwards: s > 0 left of it
    c = LineCounter([DOOR, side], band_ratio=0.1)
    walk(c, [(200, 150), (200, 250)], tid=1)
    walk(c, [(560, 100), (440, 100)], tid=2)
    assert c.counts == {"door": {"in": 1, "out": 0}, "side": {"in": 1, "out": 0}}


def test_per_track_state_is_dropped_when_tracks_end() -> None:
    c = LineCounter([DOOR], band_ratio=0.1, track_ttl=1.0)
    for tid in range(1000):
        c.update(tid + 1, tid * 0.5, np.array([box(200, 150, tid)]))
    assert c.active_tracks <= 3  # only tracks seen within the last second survive
    c.end_track(999)
    assert c.active_tracks <= 2


def test_line_parse_and_validation() -> None:
    assert Line.parse("door=1,2,3.5,4") == Line("door", 1, 2, 3.5, 4)
    for bad in ["door", "door=1,2,3", "=1,2,3,4", "door=a,b,c,d"]:
        with pytest.raises(ValueError, match="bad line"):
            Line.parse(bad)
    with pytest.raises(ValueError, match="same"):
        Line.parse("dot=5,5,5,5")
    with pytest.raises(ValueError, match="unique"):
        LineCounter([DOOR, DOOR], band_ratio=0.1)
