"""Shared fixtures: the footage and models in ../shared (referenced, never copied)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SEQUENCES = SHARED / "data" / "sequences"
MODELS = SHARED / "models"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is not here (../shared beside the checkout holds the footage and models)")
    return path


@pytest.fixture(scope="session")
def pets() -> Path:
    return _need(SEQUENCES / "PETS09-S2L1")


@pytest.fixture(scope="session")
def kitti() -> Path:
    return _need(SEQUENCES / "KITTI-17")


@pytest.fixture(scope="session")
def yolov8n() -> Path:
    return _need(MODELS / "yolov8n_int8.onnx")


@pytest.fixture(scope="session")
def yolo11n() -> Path:
    return _need(MODELS / "yolo11n_int8.onnx")
