"""Face detectors (YuNet, S3FD) and face crops."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mikupal.vision.crops import PAD_VALUE, face_crops, smooth_boxes
from mikupal.vision.faces import FaceDetector, S3FDDetector, YuNetDetector, load_face_detector
from mikupal.nets.s3fd import S3FD, prior_boxes

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def yunet_path(shared) -> Path:
    path = shared / "models/yunet/yunet_s_640_640.onnx"
    if not path.is_file():
        pytest.skip(f"{path} missing")
    return path


def _read_frames(path: Path, every: int = 1, limit: int | None = None) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames, i = [], 0
    try:
        while True:
            ok, frame = cap.read()
            if not ok or (limit is not None and len(frames) >= limit):
                break
            if i % every == 0:
                frames.append(frame)
            i += 1
    finally:
        cap.release()
    return frames


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


# ----------------------------------------------------------------------------- YuNet


@pytest.mark.parametrize("clip", [1, 2, 3, 4, 5])
def test_yunet_finds_exactly_one_face_per_frame(shared, yunet_path, clip):
    video = shared / f"media/vr_face{clip}.mp4"
    if not video.is_file():
        pytest.skip(f"{video} missing")
    frames = _read_frames(video, every=6)
    assert len(frames) >= 15
    det = YuNetDetector(yunet_path)
    assert isinstance(det, FaceDetector)
    results = det.detect(frames)
    assert len(results) == len(frames)
    h, w = frames[0].shape[:2]
    for boxes in results:
        assert boxes.shape == (1, 5) and boxes.dtype == np.float32
        x1, y1, x2, y2, score = boxes[0]
        assert score >= 0.6
        # a frontal, large face in frame pixel coordinates (not the 320 px input's)
        assert 0 <= x1 < x2 <= w and -5 <= y1 < y2 <= h + 5
        assert (x2 - x1) > 0.15 * w


def test_yunet_boxes_scale_back_to_frame_pixels(shared, yunet_path):
    frame = _read_frames(shared / "media/vr_face3.mp4", limit=1)[0]
    small = YuNetDetector(yunet_path, input_width=320).detect([frame])[0]
    full = YuNetDetector(yunet_path, input_width=None).detect([frame])[0]
    assert small.shape == full.shape == (1, 5)
    assert _iou(small[0], full[0]) > 0.8
    # a frame of another size resets the input size; the box follows the resize
    half = cv2.resize(frame, (frame.shape[1] // 2, frame.shape[0] // 2))
    det = YuNetDetector(yunet_path, input_width=320)
    a, b = det.detect([frame, half])
    assert _iou(a[0, :4] / 2, b[0]) > 0.8


def test_yunet_no_face_and_gray_input(yunet_path):
    det = load_face_detector("yunet", yunet_path)
    blank = np.full((240, 320, 3), 127, np.uint8)
    gray = np.zeros((200, 200), np.uint8)
    out = det.detect([blank, gray])
    assert [o.shape for o in out] == [(0, 5), (0, 5)]
    assert det.detect([]) == []


def test_load_face_detector_rejects_unknown_kind(tmp_path):
    with pytest.raises(ValueError):
        load_face_detector("mtcnn", tmp_path / "x")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        load_face_detector("yunet", tmp_path / "missing.onnx")


# ----------------------------------------------------------------------------- S3FD


def s3fd_official_layout() -> dict[str, tuple[int, ...]]:
    """Key -> shape of the public ``sfd_face.pth`` (S3FD pytorch ports, e.g.
    TaoRuijie/TalkNet-ASD model/faceDetector/s3fd): ``vgg`` is one ModuleList of
    VGG16 convs, ReLUs and pools (+ fc6 dilated 3x3 and fc7 1x1 as convs),
    three L2Norm scales, four ``extras`` convs and six ``loc`` / ``conf`` heads
    (the stride-4 conf head has 4 outputs: 3 max-out background + face)."""
    shapes: dict[str, tuple[int, ...]] = {}
    vgg = [(0, 3, 64), (2, 64, 64), (5, 64, 128), (7, 128, 128), (10, 128, 256), (12, 256, 256), (14, 256, 256),
           (17, 256, 512), (19, 512, 512), (21, 512, 512), (24, 512, 512), (26, 512, 512), (28, 512, 512),
           (31, 512, 1024)]  # fmt: skip
    for idx, cin, cout in vgg:
        shapes[f"vgg.{idx}.weight"] = (cout, cin, 3, 3)
        shapes[f"vgg.{idx}.bias"] = (cout,)
    shapes["vgg.33.weight"] = (1024, 1024, 1, 1)
    shapes["vgg.33.bias"] = (1024,)
    shapes["L2Norm3_3.weight"] = (256,)
    shapes["L2Norm4_3.weight"] = (512,)
    shapes["L2Norm5_3.weight"] = (512,)
    for i, (cin, cout, k) in enumerate([(1024, 256, 1), (256, 512, 3), (512, 128, 1), (128, 256, 3)]):
        shapes[f"extras.{i}.weight"] = (cout, cin, k, k)
        shapes[f"extras.{i}.bias"] = (cout,)
    for i, cin in enumerate([256, 512, 512, 1024, 512, 256]):
        shapes[f"loc.{i}.weight"] = (4, cin, 3, 3)
        shapes[f"loc.{i}.bias"] = (4,)
        n_conf = 4 if i == 0 else 2
        shapes[f"conf.{i}.weight"] = (n_conf, cin, 3, 3)
        shapes[f"conf.{i}.bias"] = (n_conf,)
    return shapes


def _random_s3fd_state(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in s3fd_official_layout().items():
        if key.startswith("L2Norm"):
            out[key] = torch.full(shape, 10.0)
        elif len(shape) == 1:
            out[key] = torch.zeros(shape)
        else:
            fan_in = shape[1] * shape[2] * shape[3]
            out[key] = torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5
    return out


@pytest.fixture(scope="module")
def random_s3fd() -> S3FD:
    net = S3FD()
    net.load_state_dict(_random_s3fd_state(), strict=True)
    return net.eval()


def test_s3fd_official_layout_loads_strict_and_runs(random_s3fd, tmp_path):
    ours = {k: tuple(v.shape) for k, v in S3FD().state_dict().items()}
    assert ours == s3fd_official_layout()
    x = torch.randn(1, 3, 64, 96)
    with torch.inference_mode():
        loc, prob, sizes = random_s3fd(x)
    assert sizes == [(16, 24), (8, 12), (4, 6), (2, 3), (1, 2), (1, 1)]
    n_priors = sum(h * w for h, w in sizes)
    assert loc.shape == (1, n_priors, 4) and prob.shape == (1, n_priors)
    assert ((prob >= 0) & (prob <= 1)).all()
    priors = prior_boxes((64, 96), sizes)
    assert priors.shape == (n_priors, 4)
    assert torch.allclose(priors[0], torch.tensor([2 / 96, 2 / 64, 16 / 96, 16 / 64]))
    # file round trip through the detector's constructor
    path = tmp_path / "sfd_face.pth"
    torch.save(_random_s3fd_state(seed=1), path)
    det = load_face_detector("s3fd", path, score_threshold=0.5)
    assert isinstance(det, S3FDDetector)


def test_s3fd_detect_on_real_frame(shared, random_s3fd):
    frame = _read_frames(shared / "media/vr_face1.mp4", limit=1)[0]
    # random weights: the threshold is set so that some anchors pass, to exercise decode + NMS
    det = S3FDDetector.from_network(random_s3fd, score_threshold=0.0, scale=0.15)
    out = det.detect([frame, frame])
    assert len(out) == 2
    for boxes in out:
        assert boxes.ndim == 2 and boxes.shape[1] == 5 and boxes.dtype == np.float32
        assert len(boxes) > 0
        assert np.all(boxes[:, 4] >= 0) and np.all(boxes[:, 4] <= 1)
        assert np.all(boxes[:, 2] >= boxes[:, 0]) and np.all(boxes[:, 3] >= boxes[:, 1])
    np.testing.assert_allclose(out[0], out[1], rtol=1e-4, atol=1e-3)
    strict = S3FDDetector.from_network(random_s3fd, score_threshold=1.0, scale=0.15)
    assert strict.detect([frame])[0].shape == (0, 5)


# ----------------------------------------------------------------------------- crops


def _demo_crop(frame: np.ndarray, s: float, cx: float, cy: float, cs: float = 0.4) -> np.ndarray:
    """The public demos' crop_video for one frame (pad, crop, 224 resize, gray, centre 112)."""
    bsi = int(s * (1 + 2 * cs))
    padded = np.pad(frame, ((bsi, bsi), (bsi, bsi), (0, 0)), "constant", constant_values=(110, 110))
    my, mx = cy + bsi, cx + bsi
    face = padded[int(my - s) : int(my + s * (1 + 2 * cs)), int(mx - s * (1 + cs)) : int(mx + s * (1 + cs))]
    face = cv2.cvtColor(cv2.resize(face, (224, 224)), cv2.COLOR_BGR2GRAY)
    return face[56:168, 56:168]


def test_face_crops_match_public_demo_convention():
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.integers(0, 255, (360, 480, 3), dtype=np.uint8), (0, 0), 6)
    img = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX)
    boxes = np.array([[180.0, 100.0, 300.0, 240.0], [-40.0, -60.0, 60.0, 40.0]])  # second leaves the image
    ours = face_crops([img, img], boxes, smooth=1)
    assert ours.shape == (2, 112, 112) and ours.dtype == np.uint8
    s, cx, cy = smooth_boxes(boxes, 1)
    for i in range(2):
        ref = _demo_crop(img, s[i], cx[i], cy[i])
        assert np.abs(ours[i].astype(int) - ref.astype(int)).mean() < 3.0
    # the second crop reaches past the top-left corner: padded with the demos' constant
    assert ours[1][0, 0] == PAD_VALUE


def test_face_crops_gray_input_smoothing_and_empty():
    frames = [np.full((100, 100), v, np.uint8) for v in (10, 20, 30)]
    boxes = np.array([[40, 40, 60, 60]] * 3, dtype=float)
    boxes[1] += 30  # one outlier box is removed by the median filter
    out = face_crops(frames, boxes, smooth=13)
    assert out.shape == (3, 112, 112)
    assert [int(o[56, 56]) for o in out] == [10, 20, 30]
    s, cx, cy = smooth_boxes(boxes, 13)
    np.testing.assert_allclose(cx, 50.0)
    assert face_crops([], np.zeros((0, 4))).shape == (0, 112, 112)
    with pytest.raises(ValueError):
        face_crops(frames, boxes[:2])
