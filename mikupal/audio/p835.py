"""DNSMOS P.835 (`sig_bak_ovr.onnx`) with the costly part computed once per spectrogram frame.

The network turns a 9.01 s window into 900 log-power frames (hop 160 samples), runs four 3x3
convolutions over them at full resolution (98 % of its ~38 GFLOP per window, and of the quality
stage's CPU time), then pools, three small convolutions, a global max and a small MLP. What one
frame of those four layers' output holds depends only on the `halo` (4) frames either side of it,
with zeros past the window's edges. So:

- windows that overlap (the first and last of a 12 s utterance share 6 s) need the four layers once
  over their union;
- an utterance shorter than a window is repeated to fill it; when its length is a whole number of
  frames (segment times come in 10 ms steps), its frames repeat with it, and so do those layers'
  outputs away from the edges: one period of them is computed and the rest copied.

Only each window's first and last `halo` frames, which see the zeros, are computed on their own.
ONNX Runtime runs the model's own layers, cut in three at its own tensors (front: waveform ->
frames; body: the full-resolution layers; head: the rest), so the outputs are the whole model's
(equal to within float rounding; bit for bit on the speed benchmark's utterances), at 40-60 % of
the cost for a short utterance's window.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

FRAME_HOP = 160  # samples per spectrogram frame (the model's own framing)
#: body outputs of this many frames at most per call (a window's worth): bounds its memory
MAX_BODY_FRAMES = 900
#: windows whose shared frames span more than this are split into runs computed apart (memory)
MAX_RUN_FRAMES = 2400


class P835:
    """The three raw P.835 outputs of windows cut from one signal; see the module docstring."""

    def __init__(self, path: str | Path, opts, providers: list[str], check: Optional[Callable[[Any, str], Any]] = None):
        """`check(session, part name)`: called on each session opened (the provider it really got)."""
        import onnx
        import onnxruntime as ort
        from onnx import shape_inference, utils

        model = onnx.load(str(path))
        cut = _cut_points(model)

        def session(m, part: str = "P.835"):
            sess = ort.InferenceSession(m.SerializeToString(), opts, providers=providers)
            if check is not None:
                check(sess, part)
            return sess

        self.whole = None
        if cut is None:  # not the layout this was written for: run it whole, window by window
            self.whole = session(model)
            self._input = self.whole.get_inputs()[0].name
            return
        frames, features, self.halo = cut
        parts = utils.Extractor(shape_inference.infer_shapes(model))
        graph_in, graph_out = model.graph.input[0].name, model.graph.output[0].name
        self.front = session(parts.extract_model([graph_in], [frames]), "P.835 front")
        self.body = session(_any_frame_count(parts.extract_model([frames], [features])), "P.835 body")
        self.head = session(parts.extract_model([features], [graph_out]), "P.835 head")
        self._names = (graph_in, frames, features)

    def raw(self, windows: list[np.ndarray], starts: list[int], period: Optional[int] = None) -> np.ndarray:
        """[len(windows), 3] raw outputs (SIG, BAK, OVRL before the MOS fit). `starts`: each window's
        first sample in the signal (multiples of FRAME_HOP); `period`: the signal repeats every
        `period` frames (a short utterance tiled), or None."""
        batch = np.stack([np.asarray(w, dtype=np.float32) for w in windows])
        if self.whole is not None:
            return np.concatenate([self.whole.run(None, {self._input: w[np.newaxis]})[0] for w in batch])
        wave_in, frames_in, features_in = self._names
        spec = self.front.run(None, {wave_in: batch})[0]  # [m, 1, frames, bins]
        n, h = spec.shape[2], self.halo
        offsets = [s // FRAME_HOP for s in starts]
        # each window's first and last h frames see its zero padding: from its own first and last 2h
        edges = self.body.run(None, {frames_in: np.concatenate([spec[:, :, : 2 * h], spec[:, :, n - 2 * h :]])})[0]
        m = len(windows)
        out = []
        for run in _runs(offsets, n):
            first = offsets[run[0]]
            inner = self._inner(spec, offsets, run, period)  # body output of the run's frames from first + h on
            for k in run:
                feat = np.empty((1, edges.shape[1], n, edges.shape[3]), np.float32)
                feat[0, :, :h] = edges[k, :, :h]
                feat[0, :, n - h :] = edges[m + k, :, h:]
                _wrapped_copy(inner, offsets[k] - first, feat[0, :, h : n - h])
                out.append((k, self.head.run(None, {features_in: feat})[0][0]))
        return np.stack([r for _, r in sorted(out, key=lambda kr: kr[0])])

    def _inner(self, spec: np.ndarray, offsets: list[int], run: list[int], period: Optional[int]) -> np.ndarray:
        """Body output [channels, frames, bins] of the run's frames from its first + halo on: one
        period of them when the signal repeats (the caller wraps around), else all to its last - halo."""
        n, h = spec.shape[2], self.halo
        first, span = offsets[run[0]], offsets[run[-1]] + n - offsets[run[0]]
        frames = np.empty((span, spec.shape[3]), np.float32)  # the run's spectrogram, frame by frame
        for k in run:
            frames[offsets[k] - first : offsets[k] - first + n] = spec[k, 0]
        if period is not None and period + 2 * h < span:
            frames = frames[: period + 2 * h]
        pieces = []
        for lo in range(0, len(frames) - 2 * h, MAX_BODY_FRAMES - 2 * h):
            chunk = frames[lo : lo + MAX_BODY_FRAMES][np.newaxis, np.newaxis]
            pieces.append(self.body.run(None, {self._names[1]: chunk})[0][0][:, h : chunk.shape[2] - h])
        return np.concatenate(pieces, axis=1) if len(pieces) > 1 else pieces[0]


def _wrapped_copy(src: np.ndarray, start: int, dst: np.ndarray) -> None:
    """dst[:, j] = src[:, (start + j) % len] along axis 1, in as few block copies as the period allows."""
    period, j = src.shape[1], 0
    while j < dst.shape[1]:
        i = (start + j) % period
        count = min(dst.shape[1] - j, period - i)
        dst[:, j : j + count] = src[:, i : i + count]
        j += count


def _runs(offsets: list[int], n: int) -> list[list[int]]:
    """Indices of windows grouped where they overlap (in start order), each group spanning at most
    MAX_RUN_FRAMES frames (a window alone always makes one)."""
    runs: list[list[int]] = []
    for k in sorted(range(len(offsets)), key=lambda i: offsets[i]):
        if runs and offsets[k] < offsets[runs[-1][-1]] + n and offsets[k] + n - offsets[runs[-1][0]] <= MAX_RUN_FRAMES:
            runs[-1].append(k)
        else:
            runs.append([k])
    return runs


def _cut_points(model) -> Optional[tuple[str, str, int]]:
    """(frames tensor, features tensor, halo): the input of the first 2-D convolution (the log-power
    frames), the input of the first pooling, and how many 3x3 stride-1 'same' convolutions lie
    between them (each widens what one output frame sees by one frame a side). None if anything
    else lies between them (then the halo argument would not hold)."""
    nodes = list(model.graph.node)
    weights = {i.name: list(i.dims) for i in model.graph.initializer}
    start = next((i for i, nd in enumerate(nodes) if nd.op_type == "Conv" and len(weights.get(nd.input[1], [])) == 4), None)
    end = next((i for i, nd in enumerate(nodes) if nd.op_type == "MaxPool"), None)
    if start is None or end is None or end <= start or nodes[end].input[0] != nodes[end - 1].output[0]:
        return None
    body = nodes[start:end]
    halo = 0
    for nd in body:
        attrs = {a.name: list(a.ints) for a in nd.attribute}
        if nd.op_type == "Conv":
            if (weights[nd.input[1]][2:] != [3, 3] or attrs.get("pads") != [1, 1, 1, 1]
                    or attrs.get("strides", [1, 1]) != [1, 1] or attrs.get("dilations", [1, 1]) != [1, 1]):
                return None
            halo += 1
        elif nd.op_type != "Relu":
            return None
    # a straight chain: each node reads the one before it (and nothing outside reads inside it)
    inside = {o for nd in body for o in nd.output}
    if any(nd.input[0] != prev.output[0] for prev, nd in zip(body, body[1:])):
        return None
    if any(i in inside and i != body[-1].output[0] for nd in nodes[end:] for i in nd.input):
        return None
    return body[0].input[0], nodes[end].input[0], halo


def _any_frame_count(model):
    """The body, taking any number of frames (the exported model fixes its 900)."""
    del model.graph.value_info[:]
    for value, axes in ((model.graph.input[0], (0, 2)), (model.graph.output[0], (0, 2))):
        dims = value.type.tensor_type.shape.dim
        for axis in axes:
            dims[axis].ClearField("dim_value")
            dims[axis].dim_param = "frames" if axis == 2 else "batch"
    return model
