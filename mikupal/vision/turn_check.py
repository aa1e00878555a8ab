"""Short turns that the faces show or settle, with one face on screen as well as two.

`timeline.face_turns` sees a change when a *second face* is seen speaking. Two more cases need the
faces too, and both read the dense ASD scores of every face against the utterance's voiced frames:

* **an unseen voice**: voice on `min_run_frames` (0.5 s) or more in a row while the face that
  speaks the rest of the utterance is on screen and seen silent, and no other face speaks: someone
  off screen (the interviewer behind the camera, the other side of a reverse shot). It is cut out
  when whisper heard words there and the voice there is not clearly the speaker's (`voice_sim`
  below the doubt threshold for its length, or unknown). A stretch without words (a laugh, a
  breath, a sob) is never cut here: a laugh of the speaker must not count as a second voice.
* **a voice suspect** (`speaker/turns.py`: a run of words whose voice is unlike the rest): it is
  dismissed when the speaker's face is seen speaking on most of it and no other face is, and cut
  when another face speaks there or the speaker's face, on screen, is seen silent; where the faces
  cannot tell (the face off screen, ASD undecided), it is cut only when the voice alone is `sure`.

Pure functions over `FaceTrack` records and plain numbers; `voice_sim` is the vision stage's
(GE2E on the stretch's audio against the voice of the frames the speaker is seen speaking).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from ..records import FaceTrack, VoiceSuspect, Word
from .timeline import speaking_frames

#: a suspect is the speaker's when the face is seen speaking on this share of its voiced frames ...
SAME_FRACTION = 0.5
#: ... and someone else's when the face, on screen for SHOWN_FRACTION of it, speaks on less than this
SILENT_FRACTION = 0.25
SHOWN_FRACTION = 0.8


@dataclass
class TurnVerdicts:
    changes: list[float] = field(default_factory=list)  # seconds from the utterance's start
    notes: list[str] = field(default_factory=list)  # why, for the reject message
    kept: list[str] = field(default_factory=list)  # suspects and stretches the faces kept, and why


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def _on_screen(track: FaceTrack, n: int) -> np.ndarray:
    on = np.zeros(n, dtype=bool)
    fr = np.asarray(track.frames, dtype=int)
    on[fr[(fr >= 0) & (fr < n)]] = True
    return on


def check_turns(
    tracks: Sequence[FaceTrack],
    n_frames: int,
    voiced: np.ndarray,
    words: Sequence[Word],
    suspects: Sequence[VoiceSuspect],
    t0: float,
    threshold: float,
    min_run_frames: int,
    doubt: Callable[[float], float],
    voice_sim: Callable[[float, float], Optional[float]],
    fps: float = 25.0,
) -> TurnVerdicts:
    """Cuts (seconds from the utterance's start `t0`, source seconds for words and suspects) for
    the short turns of one utterance (see the module docstring). `doubt(seconds)` is the voice's
    doubt threshold for a stretch that long; `voice_sim(a, b)` the similarity of the audio of
    [a, b) (seconds from the start) to the speaker's voice, None when unknown. An unseen voice is
    looked for where the speaker's face was scored."""
    n = int(n_frames)
    v = np.zeros(n, dtype=bool)
    v[: min(n, len(voiced))] = np.asarray(voiced, dtype=bool)[:n]
    speaking = {t.track_id: m & v for t in tracks if (m := speaking_frames(t, n, threshold)) is not None}
    out = TurnVerdicts()
    if not speaking:
        return out
    main = max(speaking, key=lambda k: int(speaking[k].sum()))
    if speaking[main].sum() < min_run_frames:
        return out  # nobody is seen speaking: the faces cannot tell anything
    shown = _on_screen(next(t for t in tracks if t.track_id == main), n)
    anyone = np.any(np.stack(list(speaking.values())), axis=0)
    scored = np.zeros(n, dtype=bool)
    main_track = next(t for t in tracks if t.track_id == main)
    fr, sc = np.asarray(main_track.frames, dtype=int), np.asarray(main_track.asd_scores, dtype=np.float64)
    ok = (fr >= 0) & (fr < n)
    scored[fr[ok]] = np.isfinite(sc[: len(fr)][ok]) if len(sc) >= len(fr) else False
    for a, b in _runs(v & shown & scored & ~anyone):
        if b - a < min_run_frames:
            continue
        s0, s1 = a / fps, b / fps
        heard = [w for w in words if s0 <= (w.start + w.end) / 2.0 - t0 < s1]
        sim = voice_sim(s0, s1)
        what = f"voice off screen for {s1 - s0:.2f} s at {t0 + s0:.2f} s"
        if not heard:
            out.kept.append(f"{what} holds no word (a laugh or a breath of the speaker's)")
        elif sim is not None and sim >= doubt((b - a) / fps):
            out.kept.append(f"{what}: the speaker's voice (similarity {sim:.2f})")
        else:
            out.changes += [t for t in (s0, s1) if 0.0 < t < n / fps]
            out.notes.append(f"{what}, the speaker's face silent" + (f", voice similarity {sim:.2f}" if sim is not None else ""))
    for s in suspects:
        _suspect(s, t0, n, v, speaking, tracks, fps, out)
    # a cut at or beyond the first or last word splits nothing off
    inside = (words[0].start - t0 + 1e-3, words[-1].end - t0 - 1e-3) if words else (0.0, n / fps)
    out.changes = sorted(set(round(t, 3) for t in out.changes if inside[0] < t < inside[1]))
    return out


def sure_suspects(suspects: Sequence[VoiceSuspect], t0: float, duration: float) -> TurnVerdicts:
    """Where no face was scored for them: the voice's sure suspects are cut, the others kept."""
    out = TurnVerdicts()
    for s in suspects:
        what = f"voice unlike the rest in [{s.start:.2f}, {s.end:.2f}) s (similarity {s.similarity:.2f} < {s.doubt:.2f})"
        if s.sure:
            out.changes += [t for t in (s.start - t0, s.end - t0) if 0.0 < t < duration]
            out.notes.append(f"{what}, the voice is sure (faces not scored for it)")
        else:
            out.kept.append(f"{what}: faces not scored for it")
    out.changes = sorted(set(round(t, 3) for t in out.changes))
    return out


def _suspect(s: VoiceSuspect, t0: float, n: int, v: np.ndarray, speaking: dict[int, np.ndarray],
             tracks: Sequence[FaceTrack], fps: float, out: TurnVerdicts) -> None:
    """The verdict on one suspect: the speaker is the face seen speaking most outside it."""
    a = max(0, int(round((s.start - t0) * fps)))
    b = min(n, max(a + 1, int(round((s.end - t0) * fps))))
    main = max(speaking, key=lambda k: int(speaking[k][:a].sum() + speaking[k][b:].sum()))
    shown = _on_screen(next(t for t in tracks if t.track_id == main), n)
    frames = v[a:b] if v[a:b].any() else np.ones(b - a, dtype=bool)
    own = float(speaking[main][a:b][frames].mean())
    others = max([float(m[a:b][frames].mean()) for k, m in speaking.items() if k != main], default=0.0)
    what = f"voice unlike the rest in [{s.start:.2f}, {s.end:.2f}) s (similarity {s.similarity:.2f} < {s.doubt:.2f})"
    if own >= SAME_FRACTION and others < SILENT_FRACTION:
        out.kept.append(f"{what}: the speaker's face is seen speaking there ({own:.0%})")
        return
    if others >= SAME_FRACTION or (shown[a:b].mean() >= SHOWN_FRACTION and own < SILENT_FRACTION):
        why = "another face speaks there" if others >= SAME_FRACTION else f"the speaker's face is silent there ({own:.0%})"
    elif s.sure:
        why = "the faces cannot tell, the voice is sure"
    else:
        out.kept.append(f"{what}: the faces cannot tell ({own:.0%} speaking)")
        return
    out.changes += [t for t in (s.start - t0, s.end - t0) if 0.0 < t < n / fps]
    out.notes.append(f"{what}, {why}")
