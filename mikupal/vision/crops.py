"""Face crops in the convention the public ASD models (TalkNet, Light-ASD, LR-ASD) were trained on.

The public demos (``crop_video`` in ``Columbia_test.py`` / ``demoTalkNet.py``) do,
per track frame, with half box size ``s = max(w, h) / 2`` and centre ``(cx, cy)``
median-filtered over 13 frames and ``cs = 0.40``:

1. take the square ``[cy - s, cy + s(1 + 2cs)] x [cx - s(1 + cs), cx + s(1 + cs)]``
   (side ``2s(1 + cs)``; it starts at the box top and extends below the chin),
   padding the frame with the constant 110 where it leaves the image;
2. resize it to 224x224, convert to grayscale;
3. keep the central 112x112.

Steps 2-3 amount to taking the central half of the square, i.e. a square of side
``s(1 + cs)`` centred at ``(cx, cy + cs * s)``, resized to 112x112. We do exactly
that in one bilinear ``cv2.warpAffine`` per frame (same sampling grid as
``cv2.resize``), which is cheaper than crop + pad + resize + crop.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = ["face_crops", "smooth_boxes", "PAD_VALUE"]

PAD_VALUE = 110


def _median_filter(x: np.ndarray, kernel: int) -> np.ndarray:
    """Running median with edge replication (scipy's medfilt pads with zeros,
    which drags the first/last frames' boxes toward the origin)."""
    n = len(x)
    if kernel <= 1 or n < 2:
        return x.copy()
    kernel = min(kernel, n if n % 2 == 1 else n - 1)
    if kernel <= 1:
        return x.copy()
    half = kernel // 2
    padded = np.pad(x, (half, half), mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, kernel)
    return np.median(windows, axis=1)


def smooth_boxes(boxes: np.ndarray, kernel: int = 13) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``[T, 4]`` x1, y1, x2, y2 -> (half size s, centre x, centre y), each median filtered."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    s = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) / 2.0
    cx = (boxes[:, 0] + boxes[:, 2]) / 2.0
    cy = (boxes[:, 1] + boxes[:, 3]) / 2.0
    return _median_filter(s, kernel), _median_filter(cx, kernel), _median_filter(cy, kernel)


def _to_gray(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        return frame
    if frame.shape[2] == 1:
        return frame[:, :, 0]
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


def face_crops(
    frames_gray_or_bgr: Sequence[np.ndarray],
    boxes: np.ndarray,
    size: int = 112,
    scale: float = 0.40,
    smooth: int = 13,
) -> np.ndarray:
    """Grayscale face crops ``[T, size, size]`` uint8 for one face track.

    ``frames_gray_or_bgr``: the T frames of the track (HxW gray or HxWx3 BGR uint8);
    ``boxes``: ``[T, 4]`` x1, y1, x2, y2 in frame pixels (one per frame);
    ``scale``: the demos' ``cropScale``; ``smooth``: median filter length over the
    track (13 as in the demos; 1 disables).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    n = len(frames_gray_or_bgr)
    if len(boxes) != n:
        raise ValueError(f"{n} frames but {len(boxes)} boxes")
    out = np.empty((n, size, size), dtype=np.uint8)
    if n == 0:
        return out
    s, cx, cy = smooth_boxes(boxes, smooth)
    side = np.maximum(s * (1.0 + scale), 1e-3)  # side of the region that ends up in the output
    centre_y = cy + scale * s
    for i, frame in enumerate(frames_gray_or_bgr):
        gray = _to_gray(frame)
        step = side[i] / size  # source pixels per output pixel
        x0 = cx[i] - side[i] / 2.0
        y0 = centre_y[i] - side[i] / 2.0
        # output pixel u samples source x = x0 + (u + 0.5) * step - 0.5 (cv2.resize's grid)
        m = np.array(
            [[step, 0.0, x0 + 0.5 * step - 0.5], [0.0, step, y0 + 0.5 * step - 0.5]],
            dtype=np.float64,
        )
        out[i] = cv2.warpAffine(
            gray,
            m,
            (size, size),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=PAD_VALUE,
        )
    return out
