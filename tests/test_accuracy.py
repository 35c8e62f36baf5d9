"""The accuracy bar of the counting engine on real footage (see docs/ACCURACY.md).

Pooled over every line: F1 ≥ 0.95 and count accuracy ≥ 0.95 in each direction; no line
below F1 0.85 — at the native frame rate and sampled at 5 fps.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from metrica.eval.evaluate import evaluate
from metrica.vision.pipeline import PipelineConfig

from .conftest import SEQUENCES


@pytest.mark.slow
@pytest.mark.parametrize("fps", [None, 5.0], ids=["native", "5fps"])
def test_counting_accuracy_on_reference_footage(fps: float | None, pets: Path, yolov8n: Path) -> None:
    folders = sorted(str(p) for p in SEQUENCES.iterdir() if (p / "lines.json").is_file())
    assert len(folders) >= 2
    results = evaluate(folders, PipelineConfig(model=str(yolov8n), fps=fps))
    *lines, pooled = results
    table = "\n".join(f"{r.sequence}/{r.line}: {r.score.as_dict()}" for r in results)
    assert pooled.sequence == "ALL"
    assert pooled.score.f1 >= 0.95, table
    assert pooled.score.count_acc_in >= 0.95, table
    assert pooled.score.count_acc_out >= 0.95, table
    assert min(r.score.f1 for r in lines) >= 0.85, table
