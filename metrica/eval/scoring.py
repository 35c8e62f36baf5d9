"""Matching predicted crossings to ground truth and scoring them.

A prediction matches a ground-truth crossing when the direction is the same and the frames
are at most one second apart; each event matches at most once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec

from metrica.vision.counter import Crossing, Direction


class Score(msgspec.Struct):
    gt_in: int = 0
    gt_out: int = 0
    pred_in: int = 0
    pred_out: int = 0
    tp: int = 0

    @property
    def precision(self) -> float:
        pred = self.pred_in + self.pred_out
        return self.tp / pred if pred else (1.0 if not self.gt_in + self.gt_out else 0.0)

    @property
    def recall(self) -> float:
        gt = self.gt_in + self.gt_out
        return self.tp / gt if gt else (1.0 if not self.pred_in + self.pred_out else 0.0)

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def count_acc_in(self) -> float:
        return count_accuracy(self.pred_in, self.gt_in)

    @property
    def count_acc_out(self) -> float:
        return count_accuracy(self.pred_out, self.gt_out)

    def __add__(self, other: Score) -> Score:
        return Score(
            self.gt_in + other.gt_in,
            self.gt_out + other.gt_out,
            self.pred_in + other.pred_in,
            self.pred_out + other.pred_out,
            self.tp + other.tp,
        )

    def as_dict(self) -> dict[str, float | int]:
        return {
            "gt_in": self.gt_in,
            "gt_out": self.gt_out,
            "pred_in": self.pred_in,
            "pred_out": self.pred_out,
            "tp": self.tp,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
            "count_acc_in": round(self.count_acc_in, 4),
            "count_acc_out": round(self.count_acc_out, 4),
        }


def count_accuracy(predicted: int, truth: int) -> float:
    """``1 - |predicted - truth| / truth`` (1.0 when both are zero, 0.0 for a count out of nothing)."""
    if truth == 0:
        return 1.0 if predicted == 0 else 0.0
    return 1.0 - abs(predicted - truth) / truth


def match_count(pred_frames: Sequence[int], gt_frames: Sequence[int], tolerance: float) -> int:
    """Maximum number of one-to-one matches with ``|pred - gt| <= tolerance`` (frames).

    With the same window for every event, greedily pairing each prediction (in time order)
    with the earliest unmatched ground truth still within reach is optimal.
    """
    gts = sorted(gt_frames)
    j = 0
    matched = 0
    for p in sorted(pred_frames):
        while j < len(gts) and gts[j] < p - tolerance:
            j += 1
        if j < len(gts) and gts[j] <= p + tolerance:
            matched += 1
            j += 1
    return matched


def score_line(predicted: Iterable[Crossing], truth: Iterable[Crossing], fps: float) -> Score:
    preds, gts = list(predicted), list(truth)
    score = Score(
        gt_in=sum(c.direction == "in" for c in gts),
        gt_out=sum(c.direction == "out" for c in gts),
        pred_in=sum(c.direction == "in" for c in preds),
        pred_out=sum(c.direction == "out" for c in preds),
    )
    directions: tuple[Direction, ...] = ("in", "out")
    for d in directions:
        score.tp += match_count(
            [c.frame for c in preds if c.direction == d], [c.frame for c in gts if c.direction == d], fps
        )
    return score
