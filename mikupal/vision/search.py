"""Who speaks an utterance, from its faces: ASD scoring policy, face-turn cuts and attribution.

The vision stage decodes an utterance once (`Utterance`: frames, face tracks, the audio's MFCCs
and which frames are voiced) and asks `SpeakerSearch`:

* `score(u, doubt)` fills every candidate track's per-frame ASD scores and returns the audio/video
  offset used. How much is scored is the policy: with two or more faces that could be the speaker,
  every frame of each (who speaks *when* must be seen; a turn change between sampled windows would
  go unseen); with one, every frame too when `doubt` (the voice check found a suspect short turn,
  or the words hold a question and its reply: `asd.dense_on_doubt`), and then every face big
  enough, however briefly on screen (a cut to the other person for a one-word reply); else a
  sample (`asd.first_pass_seconds`, the full `asd.max_scored_seconds` only when the first pass
  leaves the speaker in doubt).
* `turns(u)` reads the scores as a timeline (`timeline.py`): changes of speaker and overlaps;
  `short_turns(...)`, where the faces were scored for it, a voice off screen and the voice suspects
  (`turn_check.py`): with one face, a voice suspect gets every frame around it and at both ends
  of the utterance scored, a question and its reply every frame.
* `find_speaker(tracks, n, voiced)` picks the speaker of a (piece of an) utterance (`attribution.py`).

The offset search is a property of the file, not of a face: one offset for the whole utterance,
the one at which the most in-sync face is seen speaking on the most voiced frames.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from .. import media
from ..errors import StageError
from ..records import FaceTrack, VoiceSuspect
from . import attribution as attr
from . import timeline
from .asd import MFCC_PER_FRAME, VIDEO_FPS, audio_mfcc
from .readers import VideoReaders
from .steps import Steps
from .track import detect_and_track
from .turn_check import TurnVerdicts, check_turns, sure_suspects

OFFSET_PENALTY = 0.01  # speaking fraction an audio/video offset must gain per frame of shift
FOCUS_MARGIN = 0.5  # seconds scored on each side of a voice suspect (the face before and after it) ...
FOCUS_SECONDS = 2.0  # ... and at least this much in all (ASD needs context)
FOCUS_EDGE_SECONDS = 1.5  # ... and the utterance's first and last seconds (where another turn's tail hides)


def focus_frames(suspects: Sequence[VoiceSuspect], t0: float, n: int) -> list[tuple[int, int]]:
    """[a, b) utterance frames around each suspect (source seconds; the utterance starts at `t0`)
    and at both ends of the utterance."""
    edge = int(round(FOCUS_EDGE_SECONDS * VIDEO_FPS))
    out = [(0, min(n, edge)), (max(0, n - edge), n)]
    for s in suspects:
        a, b = s.start - t0 - FOCUS_MARGIN, s.end - t0 + FOCUS_MARGIN
        grow = max(0.0, FOCUS_SECONDS - (b - a)) / 2.0
        out.append((max(0, int((a - grow) * VIDEO_FPS)), min(n, int(math.ceil((b + grow) * VIDEO_FPS)))))
    return merge_ranges(out)


def merge_ranges(spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, non-overlapping [a, b) ranges covering the same frames as `spans`."""
    out: list[list[int]] = []
    for a, b in sorted((int(a), int(b)) for a, b in spans if b > a):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


@dataclass
class Utterance:
    """One utterance as the vision stage decoded it."""

    frames: list[np.ndarray]  # BGR at 25 fps, scaled by `scale` from source pixels
    scale: float
    tracks: list[FaceTrack]
    mfcc: np.ndarray  # rows `row0 + 4k` are the audio of frame k (with room for the offset search)
    row0: int
    voiced: np.ndarray  # [n] bool
    audio: np.ndarray  # 16 kHz analysis audio from frame 0 on (the voice check of short turns)
    dense: bool = False  # every frame of the faces was scored
    focus: list[tuple[int, int]] = field(default_factory=list)  # else, frames scored whole around the voice suspects

    @property
    def n(self) -> int:
        return len(self.frames)


def decode_utterance(video_path, audio_path, start: float, end: float, display_width: Optional[int], detector,
                     faces_cfg, asd_cfg, steps: Steps, threads: Optional[int] = None,
                     readers: Optional[VideoReaders] = None) -> Utterance:
    """Decode [start, end) once at 25 fps scaled to `faces.work_width`, find its faces and tracks,
    and the 16 kHz audio's MFCCs (with room for the offset search on both sides) and voiced frames.
    `readers`: the worker's open videos (an utterance after the last one goes on decoding from it)."""
    t = time.perf_counter()
    if readers is None:
        decoded = media.decode_video(video_path, start, end, VIDEO_FPS, faces_cfg.work_width, display_width, threads=threads)
    else:
        with readers.reader(video_path, start) as reader:
            decoded = media.decode_video(video_path, start, end, VIDEO_FPS, faces_cfg.work_width, display_width, reader=reader)
    frames, scale, n = decoded.frames, decoded.scale, len(decoded.frames)
    steps.counts["frames"] += n
    steps.counts["items"] += 1
    steps.tick("decode", t)
    if n == 0:
        raise StageError("video_decode_failed", f"no video frame in [{start:.2f}, {end:.2f}) s")
    tracks = detect_and_track(detector, frames, scale, faces_cfg, steps)
    t = time.perf_counter()
    pad_frames = min(asd_cfg.max_offset_frames, int(math.floor(start * VIDEO_FPS + 1e-6)))
    pad = pad_frames / VIDEO_FPS
    audio16 = media.decode_audio(audio_path, start - pad, end + asd_cfg.max_offset_frames / VIDEO_FPS, media.ANALYSIS_RATE)
    head = int(round(pad * media.ANALYSIS_RATE))
    voiced = attr.voiced_frames(audio16[head : head + int(round(n / VIDEO_FPS * media.ANALYSIS_RATE))], n, VIDEO_FPS)
    u = Utterance(frames, scale, tracks, audio_mfcc(audio16), pad_frames * MFCC_PER_FRAME, voiced, audio16[head:])
    steps.tick("mfcc", t)
    return u


class SpeakerSearch:
    def __init__(self, model, faces_cfg, asd_cfg, bf16: bool = False, steps: Optional[Steps] = None):
        self.model, self.fc, self.ac, self.bf16 = model, faces_cfg, asd_cfg, bf16
        self.steps = steps or Steps()
        self.last_offset = 0

    # ---------------------------------------------------------------- policy

    def could_speak(self, track: FaceTrack, n_frames: int, briefly: bool = False) -> bool:
        """A face big enough and on screen long enough to be the speaker (only those are scored);
        `briefly`: long enough for a short turn (`asd.min_turn_seconds`)."""
        least = self.ac.min_turn_seconds * VIDEO_FPS if briefly else self.ac.min_coverage * n_frames
        return attr.face_size(track) >= self.fc.min_face_px and len(track.frames) >= least

    def score(self, u: Utterance, exchange: bool = False, suspects: Sequence[VoiceSuspect] = (), t0: float = 0.0) -> int:
        """Score the faces of `u` (see the module docstring). `exchange`: the words look like two
        people (every frame); `suspects`: the voice check's doubts (source seconds; the utterance
        starts at `t0`): the usual sample and every frame around each of them."""
        dense_from, on_doubt = self.ac.dense_from_faces, self.ac.dense_on_doubt
        if dense_from and sum(self.could_speak(t, u.n) for t in u.tracks) >= dense_from:
            self.steps.counts["dense_items"] += 1
            u.dense = True
            self.last_offset = self.score_tracks(u, dense=True, briefly=on_doubt and (exchange or bool(suspects)))
        elif exchange and on_doubt:
            self.steps.counts["dense_on_doubt"] += 1
            u.dense = True
            self.last_offset = self.score_tracks(u, dense=True, briefly=True)
        elif suspects and on_doubt:
            self.steps.counts["focused_on_doubt"] += 1
            u.focus = focus_frames(suspects, t0, u.n)
            self.last_offset = self.score_tracks(u, briefly=True, focus=u.focus)
        else:
            self.last_offset = self.score_one_face(u)
        return self.last_offset

    def score_one_face(self, u: Utterance) -> int:
        """A short first pass; the full `asd.max_scored_seconds` only when it leaves the speaker in doubt."""
        first = self.ac.first_pass_seconds
        short = bool(first) and (not self.ac.max_scored_seconds or first < self.ac.max_scored_seconds)
        offset = self.score_tracks(u, budget_seconds=first if short else None)
        if not short:
            return offset
        if self.clear_speaker(self.find_speaker(u.tracks, u.n, u.voiced), offset):
            self.steps.counts["early_stops"] += 1
            return offset
        return self.score_tracks(u)  # the first pass left the speaker in doubt: the full budget

    def clear_speaker(self, result: attr.Attribution, offset: int = 0) -> bool:
        """After the short first pass: one face seen speaking on at least `asd.early_stop_fraction`
        of the voice and every other face below `asd.min_evidence_fraction`: more scoring would not
        change the answer. Anything else (a reject, a close call, a second face that might talk)
        gets the full budget, and so does a best audio/video offset at the edge of the search: on a
        short window the best of the offsets can be fitted to noise."""
        ac = self.ac
        if not result.ok or (result.speaking_fraction or 0.0) < ac.early_stop_fraction:
            return False
        if ac.max_offset_frames and abs(offset) >= ac.max_offset_frames:
            return False
        others = [s for s in result.stats if s.track_id != result.speaker_track]
        return all(s.speaking_fraction < ac.min_evidence_fraction for s in others)

    # ---------------------------------------------------------------- scoring

    def _budget(self, budget_seconds: Optional[float], dense: bool) -> tuple[Optional[int], int]:
        ac = self.ac
        max_frames = None if not ac.max_scored_seconds or dense else int(round(ac.max_scored_seconds * VIDEO_FPS))
        win_frames = max(1, int(round(ac.scored_window_seconds * VIDEO_FPS)))
        if budget_seconds and not dense:
            max_frames = win_frames = max(1, int(round(budget_seconds * VIDEO_FPS)))
        return max_frames, win_frames

    def score_tracks(self, u: Utterance, budget_seconds: Optional[float] = None, dense: bool = False, briefly: bool = False,
                     focus: Sequence[tuple[int, int]] = ()) -> int:
        """Fill `asd_scores` (NaN where not scored) of the tracks that could be the speaker (`briefly`:
        of a short turn), in windows spread over their voiced frames and over every frame of the
        `focus` ranges (utterance frames); returns the offset used."""
        from .crops import face_crops

        max_frames, win_frames = self._budget(budget_seconds, dense)
        windows = list(self.ac.windows) or [0.0]
        offsets = list(range(-self.ac.max_offset_frames, self.ac.max_offset_frames + 1))
        pieces: list[tuple[FaceTrack, int, int, np.ndarray]] = []  # track, a, b, scores [offsets, b - a]
        for tr in u.tracks:
            tr.asd_scores = [math.nan] * len(tr.frames)
            if not self.could_speak(tr, u.n, briefly):
                continue
            boxes = np.asarray(tr.boxes, dtype=np.float64) * u.scale
            fr = np.asarray(tr.frames)
            spans = attr.scored_windows(len(fr), max_frames, win_frames, u.voiced[fr])
            spans += [(int(np.searchsorted(fr, fa)), int(np.searchsorted(fr, fb))) for fa, fb in focus]
            for a, b in merge_ranges(spans):
                t = time.perf_counter()
                crops = face_crops([u.frames[f] for f in fr[a:b]], boxes[a:b])
                t = self.steps.tick("crops", t)
                row = u.row0 + MFCC_PER_FRAME * int(fr[a])
                pieces.append((tr, a, b, self.model.score_offsets(u.mfcc, row, crops, offsets, windows, self.bf16)))
                self.steps.counts["scored_frames"] += b - a
                self.steps.tick("asd", t)
        if not pieces:
            return 0
        best_j = self._best_offset(pieces, offsets, u.voiced)
        for tr, a, b, s in pieces:
            scores = list(tr.asd_scores)
            scores[a:b] = [float(x) for x in s[best_j]]
            tr.asd_scores = scores
        return offsets[best_j]

    def _best_offset(self, pieces, offsets: list[int], voiced: np.ndarray) -> int:
        """The offset at which the most in-sync face is seen speaking on the most voiced frames, each
        frame of shift costing OFFSET_PENALTY of that fraction (a flat curve stays at 0 instead of
        drifting to the edge of the search on noise), then the higher mean score."""
        thr = self.ac.threshold
        best_j, best = len(offsets) // 2, (-math.inf, -math.inf)
        for j, o in enumerate(offsets):
            per_track: dict[int, list[np.ndarray]] = defaultdict(list)
            for tr, a, b, s in pieces:
                m = voiced[np.asarray(tr.frames[a:b])]
                per_track[tr.track_id].append(s[j][m] if m.any() else s[j])
            top = max(
                (round(float((v > thr).mean()) - OFFSET_PENALTY * abs(o), 4), float(v.mean()))
                for v in (np.concatenate(x) for x in per_track.values())
            )
            if top > best:
                best_j, best = j, top
        return best_j

    # ---------------------------------------------------------------- reading the scores

    @property
    def min_turn_frames(self) -> int:
        return max(1, int(round(self.ac.min_turn_seconds * VIDEO_FPS)))

    def turns(self, u: Utterance) -> timeline.FaceTurns:
        return timeline.face_turns(u.tracks, u.n, self.ac.threshold, u.voiced, VIDEO_FPS, self.min_turn_frames)

    def short_turns(self, u: Utterance, words, suspects, t0: float, doubt, voice_sim) -> TurnVerdicts:
        """Cuts for an unseen voice and confirmed voice suspects, where the faces were scored for them
        (`turn_check.py`); else the voice's sure suspects alone."""
        if not u.dense and not u.focus:
            return sure_suspects(suspects, t0, u.n / VIDEO_FPS)
        out = check_turns(u.tracks, u.n, u.voiced, words, suspects, t0, self.ac.threshold, self.min_turn_frames, doubt,
                          voice_sim, VIDEO_FPS)
        self.steps.counts["short_turns_cut"] += len(out.notes)
        self.steps.counts["short_turns_kept"] += len(out.kept)
        return out

    def find_speaker(self, tracks: list[FaceTrack], n_frames: int, voiced: Optional[np.ndarray]) -> attr.Attribution:
        return attr.attribute_with(tracks, n_frames, self.fc, self.ac, voiced)
