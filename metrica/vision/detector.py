"""Person detection with Ultralytics YOLO (persons only, bounded CPU threads)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

PERSON = 0  # COCO class id
DEFAULT_MODEL = "yolo11n.pt"  # downloads itself on a machine with internet


def resolve_model(model: str | None = None) -> str:
    """The model to load: the argument, else ``METRICA_MODEL``, else a COCO model found in
    ``shared/models`` beside the checkout (offline machines), else Ultralytics' default name."""
    if model:
        return model
    env = os.environ.get("METRICA_MODEL")
    if env:
        return env
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "shared" / "models" / "yolov8n_int8.onnx"
        if candidate.is_file():
            return str(candidate)
    return DEFAULT_MODEL


class ModelError(RuntimeError):
    """The detector model could not be loaded."""


class PersonDetector:
    """Wraps an Ultralytics YOLO model and returns person boxes as ``x1, y1, x2, y2, conf, cls`` rows."""

    def __init__(
        self,
        model: str | None = None,
        *,
        conf: float = 0.25,
        iou: float = 0.6,
        imgsz: int | None = None,
        threads: int | None = None,
        device: str = "cpu",
    ) -> None:
        os.environ.setdefault("YOLO_OFFLINE", "1")
        os.environ.setdefault("YOLO_VERBOSE", "False")
        import torch
        from ultralytics import YOLO

        self.model_name = resolve_model(model)
        is_path = os.sep in self.model_name or self.model_name.endswith(".onnx")
        if is_path and not Path(self.model_name).is_file():
            raise ModelError(f"model file not found: {self.model_name}")
        self.threads = threads
        if threads:
            torch.set_num_threads(threads)
        try:
            self._model = YOLO(self.model_name, task="detect")
        except Exception as exc:  # ultralytics raises many types; the user needs the name and the reason
            raise ModelError(f"cannot load model {self.model_name!r}: {exc}") from exc
        self.conf = conf
        self.iou = iou
        self.imgsz = imgsz
        self.device = device
        self._session_tuned = False

    def _predict_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {
            "classes": [PERSON],
            "conf": self.conf,
            "iou": self.iou,
            "device": self.device,
            "verbose": False,
        }
        if self.imgsz:
            kw["imgsz"] = self.imgsz
        return kw

    def detect(self, image: np.ndarray) -> np.ndarray:
        """Person boxes in ``image`` (HxWx3 BGR) as an ``(N, 6)`` float32 array."""
        results: Any = self._model.predict(image, **self._predict_kwargs())
        if not self._session_tuned:
            self._limit_onnx_threads()
        data = results[0].boxes.data
        return np.asarray(data.cpu().numpy() if hasattr(data, "cpu") else data, dtype=np.float32)

    def _limit_onnx_threads(self) -> None:
        """ONNX Runtime sizes its pool to every core; a per-camera process must take only its share."""
        self._session_tuned = True
        if not self.threads:
            return
        predictor = getattr(self._model, "predictor", None)
        backend: Any = getattr(getattr(predictor, "model", None), "backend", None)
        session = getattr(backend, "session", None)
        if session is None:
            return
        import onnxruntime

        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        backend.session = onnxruntime.InferenceSession(
            session._model_path, opts, providers=session.get_providers()
        )
