"""Face detectors behind one protocol: ``detect(frames_bgr) -> [N, 5]`` boxes per frame.

Boxes are ``x1, y1, x2, y2, score`` in the input frame's pixel coordinates, float32.

* :class:`YuNetDetector`: OpenCV's ``FaceDetectorYN`` (libfacedetection YuNet ONNX),
  run on a copy of the frame resized to ``input_width`` pixels wide. Fast on CPU.
* :class:`S3FDDetector`: S3FD (VGG16) as used by the public ASD demos
  (frames scaled by 0.25). Much slower on CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import cv2
import numpy as np

__all__ = ["FaceDetector", "YuNetDetector", "S3FDDetector", "load_face_detector", "FaceDetectorKind"]

FaceDetectorKind = Literal["yunet", "s3fd"]


@runtime_checkable
class FaceDetector(Protocol):
    def detect(self, frames_bgr: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One ``[N, 5]`` float32 array (x1, y1, x2, y2, score) per frame."""
        ...


def _empty() -> np.ndarray:
    return np.zeros((0, 5), dtype=np.float32)


class YuNetDetector:
    """YuNet through ``cv2.FaceDetectorYN``.

    Each frame is resized so its width is ``input_width`` (aspect kept; frames
    narrower than that are used as they are), detected, and boxes are scaled
    back. The detector's input size is only reset when the frame size changes.
    """

    def __init__(
        self,
        model_path: str | Path,
        score_threshold: float = 0.6,
        input_width: int | None = 320,
        nms_threshold: float = 0.3,
        top_k: int = 5000,
    ):
        self.model_path = str(model_path)
        if not Path(self.model_path).is_file():
            raise FileNotFoundError(self.model_path)
        self.score_threshold = float(score_threshold)
        self.input_width = input_width
        self._det = cv2.FaceDetectorYN.create(
            self.model_path, "", (320, 320), self.score_threshold, float(nms_threshold), int(top_k)
        )
        self._input_size: tuple[int, int] | None = None

    def _prepare(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        h, w = frame.shape[:2]
        if self.input_width and w > self.input_width:
            f = self.input_width / w
            size = (self.input_width, max(1, int(round(h * f))))
            img = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        else:
            img = frame
        ih, iw = img.shape[:2]
        if self._input_size != (iw, ih):
            self._det.setInputSize((iw, ih))
            self._input_size = (iw, ih)
        return img, w / iw

    def detect_one(self, frame_bgr: np.ndarray) -> np.ndarray:
        if frame_bgr.ndim == 2:
            frame_bgr = cv2.cvtColor(frame_bgr, cv2.COLOR_GRAY2BGR)
        img, back = self._prepare(frame_bgr)
        _, faces = self._det.detect(img)
        if faces is None or len(faces) == 0:
            return _empty()
        faces = np.asarray(faces, dtype=np.float32)
        out = np.empty((len(faces), 5), dtype=np.float32)
        out[:, 0] = faces[:, 0] * back
        out[:, 1] = faces[:, 1] * back
        out[:, 2] = (faces[:, 0] + faces[:, 2]) * back
        out[:, 3] = (faces[:, 1] + faces[:, 3]) * back
        out[:, 4] = faces[:, -1]
        return out

    def detect(self, frames_bgr: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [self.detect_one(f) for f in frames_bgr]


class S3FDDetector:
    """S3FD with the public demos' pre/post-processing.

    Frames are resized by ``scale`` (bilinear), converted to RGB minus the
    training mean, and passed through the network; anchors with face
    probability above ``score_threshold`` are decoded and merged with NMS
    (IoU ``nms_threshold``; the demos use 0.3 per scale and then 0.1).
    Frames of the same size are batched ``batch_size`` at a time.
    """

    def __init__(
        self,
        weights_path: str | Path,
        device: str = "cpu",
        scale: float = 0.25,
        score_threshold: float = 0.8,
        nms_threshold: float = 0.1,
        batch_size: int = 4,
    ):
        import torch

        from ..nets.s3fd import S3FD

        self._torch = torch
        self.device = torch.device(device)
        self.net = S3FD.from_checkpoint(weights_path, self.device)
        self.scale = float(scale)
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.batch_size = max(1, int(batch_size))
        self._priors_key = None
        self._priors = None

    @classmethod
    def from_network(cls, net, device: str = "cpu", **kw) -> "S3FDDetector":
        """Wrap an already built :class:`mikupal.nets.s3fd.S3FD` (e.g. for tests)."""
        import torch

        self = cls.__new__(cls)
        self._torch = torch
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.scale = float(kw.get("scale", 0.25))
        self.score_threshold = float(kw.get("score_threshold", 0.8))
        self.nms_threshold = float(kw.get("nms_threshold", 0.1))
        self.batch_size = max(1, int(kw.get("batch_size", 4)))
        self._priors_key = None
        self._priors = None
        return self

    def _preprocess(self, frame: np.ndarray) -> np.ndarray:
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        if self.scale != 1.0:
            frame = cv2.resize(frame, (0, 0), fx=self.scale, fy=self.scale, interpolation=cv2.INTER_LINEAR)
        rgb = frame[:, :, ::-1].astype(np.float32) - np.array((123.0, 117.0, 104.0), dtype=np.float32)
        return np.ascontiguousarray(rgb.transpose(2, 0, 1))

    def _priors_for(self, hw, sizes):
        from ..nets.s3fd import prior_boxes

        key = (hw, tuple(sizes))
        if key != self._priors_key:
            self._priors = prior_boxes(hw, sizes).to(self.device)
            self._priors_key = key
        return self._priors

    def _postprocess(self, loc, prob, priors, orig_hw) -> np.ndarray:
        from torchvision.ops import nms

        from ..nets.s3fd import decode_boxes

        keep = prob > self.score_threshold
        if not bool(keep.any()):
            return _empty()
        boxes = decode_boxes(loc[keep], priors[keep])
        scores = prob[keep]
        idx = nms(boxes, scores, self.nms_threshold)
        h, w = orig_hw
        boxes = boxes[idx] * boxes.new_tensor([w, h, w, h])
        out = self._torch.cat([boxes, scores[idx, None]], dim=1)
        return out.cpu().numpy().astype(np.float32)

    def detect(self, frames_bgr: Sequence[np.ndarray]) -> list[np.ndarray]:
        torch = self._torch
        results: list[np.ndarray] = []
        i = 0
        with torch.inference_mode():
            while i < len(frames_bgr):
                shape = frames_bgr[i].shape[:2]
                j = i + 1
                while j < len(frames_bgr) and j - i < self.batch_size and frames_bgr[j].shape[:2] == shape:
                    j += 1
                batch = np.stack([self._preprocess(f) for f in frames_bgr[i:j]])
                x = torch.from_numpy(batch).to(self.device)
                loc, prob, sizes = self.net(x)
                priors = self._priors_for(tuple(x.shape[2:]), sizes)
                for k in range(j - i):
                    results.append(self._postprocess(loc[k], prob[k], priors, shape))
                i = j
        return results


def load_face_detector(kind: FaceDetectorKind, path: str | Path, **kw) -> FaceDetector:
    """``kind`` 'yunet' -> :class:`YuNetDetector`, 's3fd' -> :class:`S3FDDetector`; ``kw`` go to the constructor."""
    if kind == "yunet":
        return YuNetDetector(path, **kw)
    if kind == "s3fd":
        return S3FDDetector(path, **kw)
    raise ValueError(f"unknown face detector kind {kind!r}")
