"""How the vision stage's models run: loaded on the worker's device, described for the plan, and
batched across the utterances of one call when it holds more than one (`batching.py`)."""

from __future__ import annotations

from typing import Optional

from .batching import BatchedDetector, BatchedEncoders, Gather


def describe(faces_kind: str, asd_kind: str, gpu: bool) -> str:
    """What runs the detector and the ASD model, as asked for (the plan's execution column)."""
    torch_gpu = "torch cuda" if gpu else None
    detector = "YuNet: OpenCV CPU" if faces_kind == "yunet" else f"S3FD: {torch_gpu or 'torch cpu'}"
    return f"{detector}; {asd_kind}: {torch_gpu or 'onnxruntime/torch cpu'}"


def load_models(fc, ac, det_path, asd_path, device: str, threads: Optional[int], batched: bool):
    """(face detector, ASD model, bf16) for one worker; with `batched`, both go through one
    `Gather` (returned as the detector's `.gather`), so a call's utterances share their passes."""
    from .asd import ActiveSpeakerModel, use_bf16
    from .faces import load_face_detector

    if fc.kind == "yunet":
        detector = load_face_detector("yunet", det_path, score_threshold=fc.score_threshold, input_width=fc.input_width)
    else:
        scale = min(1.0, fc.input_width / float(fc.work_width))
        detector = load_face_detector(fc.kind, det_path, device=device, scale=scale, score_threshold=fc.score_threshold,
                                      batch_size=fc.batch_size)
    bf16 = use_bf16(ac.precision, device)
    # bf16 runs the torch encoders (faster than ONNX Runtime's fp32 there): skip the ONNX export
    model = ActiveSpeakerModel.load(ac.kind, asd_path, device=device, runtime="torch" if bf16 else "auto", threads=threads)
    gather = None
    if batched:
        gather = Gather()
        detector = BatchedDetector(detector, gather)
        model.encoders = BatchedEncoders(model.encoders, gather)
    return detector, model, bf16, gather
