"""``metrica eval``: count every line of ground-truth sequences and score the result."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import msgspec

from metrica.eval.groundtruth import Sequence, gt_crossings, load_sequence
from metrica.eval.scoring import Score, score_line
from metrica.vision.counter import Crossing
from metrica.vision.detector import PersonDetector
from metrica.vision.pipeline import CountingPipeline, PipelineConfig
from metrica.vision.source import VideoSource


class LineResult(msgspec.Struct):
    sequence: str
    line: str
    score: Score

    def as_dict(self) -> dict[str, object]:
        return {"sequence": self.sequence, "line": self.line, **self.score.as_dict()}


def count_sequence(
    seq: Sequence,
    config: PipelineConfig,
    detector: PersonDetector | None = None,
    on_frame: Callable[[int], None] | None = None,
) -> list[Crossing]:
    with VideoSource(str(seq.video), target_fps=config.fps) as source:
        pipeline = CountingPipeline(
            seq.lines, config, source_fps=source.native_fps or seq.fps, detector=detector
        )
        hook = (lambda frame: on_frame(frame.index)) if on_frame else None
        return list(pipeline.run(source, on_frame=hook))


def evaluate(
    folders: Iterable[str],
    config: PipelineConfig,
    progress: Callable[[Sequence], Callable[[int], None] | None] | None = None,
) -> list[LineResult]:
    """Score each line of each sequence; the last row is the pooled result over all lines."""
    results: list[LineResult] = []
    detector = PersonDetector(config.model, conf=config.conf, imgsz=config.imgsz, threads=config.threads)
    for folder in folders:
        seq = load_sequence(folder)
        predicted = count_sequence(seq, config, detector, progress(seq) if progress else None)
        truth = gt_crossings(seq)
        for line in seq.lines:
            score = score_line(
                (c for c in predicted if c.line == line.name),
                (c for c in truth if c.line == line.name),
                seq.fps,
            )
            results.append(LineResult(seq.name, line.name, score))
    pooled = sum((r.score for r in results), Score())
    results.append(LineResult("ALL", "pooled", pooled))
    return results
