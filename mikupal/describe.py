"""Words for the measured delivery: dataspeech-style bins of pitch, pitch variation, speaking rate,
loudness and noise, and a caption made from them when no labeler wrote one.

The bin names are dataspeech's (Parler-TTS's annotation recipe, `v02_text_bins.json`), so a
Parler-TTS export (`dataset/parler.py`) carries the words its descriptions were trained on. The
edges are fixed, not fitted to each dataset, so a segment's bins never change when more videos are
added:

- pitch (7 bins) on the mean F0 (dataspeech's `utterance_pitch_mean`), relative to the speaker's
  perceived gender where the labeler heard it: dataspeech's published v02 edges for male and
  female speakers (fitted on LibriTTS-R and MLS); with no gender, edges spaced evenly in semitones
  from 75 to 270 Hz, so a typical man sounds "low" and a typical woman "high";
- pitch variation (5 bins, dataspeech's `speech_monotony`) on the F0 spread in semitones, which
  needs no gender: 1.5 / 2.5 / 3.5 / 4.5 st;
- speaking rate (7) on syllables per second of speech (pauses excluded): 3.0 / 3.7 / 4.3 / 5.5 /
  6.2 / 7.0, moderate around typical conversational articulation rates (4.3-5.5);
- loudness (7, named like dataspeech's) on LUFS: -40 / -34 / -28 / -22 / -18 / -14: the
  recording's level as the dataset holds it (before `mikupal export loudness=...`);
- noise (7, dataspeech's `noise`) on the vocals' SNR in dB: 5 / 12 / 20 / 28 / 36 / 45.

The edges were checked against the shared clips (`benchmarks/prosody.md`); change them here.
A foundation module: the commit, `mikupal label` (a gender heard later moves the pitch bin), the
exports and the report all describe a row the same way (`describe_columns`).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Optional

import numpy as np

from typing import Any, Mapping

from .records import CAPTION_MEASURED, Prosody

PITCH_BINS = ("very low-pitch", "low-pitch", "slightly low-pitch", "moderate pitch", "slightly high-pitch",
              "high-pitch", "very high-pitch")
PITCH_VARIATION_BINS = ("very monotone", "monotone", "slightly expressive and animated", "expressive and animated",
                        "very expressive and animated")
SPEAKING_RATE_BINS = ("very slowly", "slowly", "slightly slowly", "moderate speed", "slightly fast", "fast",
                      "very fast")
LOUDNESS_BINS = ("very quiet", "quiet", "slightly quiet", "moderate loudness", "slightly loud", "loud", "very loud")
NOISE_BINS = ("very noisy", "noisy", "slightly noisy", "balanced in clarity", "slightly clean", "clean", "very clean")

#: dataspeech v02 bin edges (8 edges, 7 bins) of the mean pitch in Hz, per gender
PITCH_EDGES_HZ = {
    "male": (64.65, 81.67, 98.68, 115.69, 132.71, 149.72, 166.74, 183.75),
    "female": (120.18, 141.62, 163.07, 184.52, 205.96, 227.41, 248.85, 270.30),
    "unknown": tuple(round(float(v), 2) for v in np.geomspace(75.0, 270.0, 8)),
}
PITCH_VARIATION_CUTS_ST = (1.5, 2.5, 3.5, 4.5)
SPEAKING_RATE_CUTS = (3.0, 3.7, 4.3, 5.5, 6.2, 7.0)
LOUDNESS_CUTS_LUFS = (-40.0, -34.0, -28.0, -22.0, -18.0, -14.0)
NOISE_CUTS_DB = (5.0, 12.0, 20.0, 28.0, 36.0, 45.0)


def _cut(value: Optional[float], cuts: tuple[float, ...], names: tuple[str, ...]) -> Optional[str]:
    """The bin of `value` among `len(cuts) + 1` bins; None for no value."""
    return None if value is None else names[bisect_right(cuts, value)]


def pitch_bin(mean_hz: Optional[float], gender: Optional[str]) -> Optional[str]:
    """dataspeech's rule on its edges: below the first or above the last edge is the end bin."""
    if mean_hz is None:
        return None
    edges = PITCH_EDGES_HZ.get(gender or "unknown", PITCH_EDGES_HZ["unknown"])
    i = int(np.searchsorted(edges, mean_hz, side="left"))
    return PITCH_BINS[min(max(i - 1, 0), len(PITCH_BINS) - 1)]


@dataclass(frozen=True)
class Bins:
    pitch: Optional[str] = None
    pitch_variation: Optional[str] = None
    speaking_rate: Optional[str] = None
    loudness: Optional[str] = None
    noise: Optional[str] = None

    def columns(self) -> dict[str, Optional[str]]:
        """The `DatasetSegment` columns these fill."""
        return {"pitch_bin": self.pitch, "pitch_variation_bin": self.pitch_variation,
                "speaking_rate_bin": self.speaking_rate, "loudness_bin": self.loudness, "noise_bin": self.noise}


def bins(p: Optional[Prosody], gender: Optional[str] = None) -> Bins:
    """Every bin of one segment's measurements; `gender` (female | male; anything else: unknown)
    picks the pitch edges."""
    if p is None:
        return Bins()
    return Bins(pitch=pitch_bin(p.f0_mean_hz, gender if gender in ("female", "male") else None),
                pitch_variation=_cut(p.f0_std_semitones, PITCH_VARIATION_CUTS_ST, PITCH_VARIATION_BINS),
                speaking_rate=_cut(p.syllables_per_second, SPEAKING_RATE_CUTS, SPEAKING_RATE_BINS),
                loudness=_cut(p.loudness_lufs, LOUDNESS_CUTS_LUFS, LOUDNESS_BINS),
                noise=_cut(p.vocals_snr_db, NOISE_CUTS_DB, NOISE_BINS))


def measured_caption(b: Bins, gender: Optional[str] = None) -> Optional[str]:
    """A deterministic caption from the bins, e.g. "A woman speaks slightly fast with a
    high-pitch voice and an expressive and animated delivery. The recording is of moderate
    loudness and very clean." None when nothing was measured."""
    who = {"female": "A woman", "male": "A man"}.get(gender or "", "A speaker")
    parts = []
    if b.speaking_rate:
        parts.append("at a moderate speed" if b.speaking_rate == "moderate speed" else b.speaking_rate)
    voice = []
    if b.pitch:
        voice.append(f"a {b.pitch.replace('moderate pitch', 'moderate-pitch')} voice")
    if b.pitch_variation:
        article = "an" if b.pitch_variation[0] in "aeiou" else "a"
        voice.append(f"{article} {b.pitch_variation} delivery")
    if voice:
        parts.append("with " + " and ".join(voice))
    sentences = [f"{who} speaks {' '.join(parts)}."] if parts else []
    room = [x for x in ("of moderate loudness" if b.loudness == "moderate loudness" else b.loudness, b.noise) if x]
    if room:
        sentences.append(f"The recording is {' and '.join(room)}.")
    return " ".join(sentences) or None


def describe_columns(row: Mapping[str, Any]) -> dict[str, Any]:
    """The bin columns of a segment row (its measured columns and `perceived_gender`), and a
    caption made from them where the row has none from the labeler (`caption_source`)."""
    measured = {k: v for k in Prosody.model_fields if (v := row.get(k)) is not None}
    gender = row.get("perceived_gender")
    b = bins(Prosody(**measured) if measured else None, gender)
    out: dict[str, Any] = dict(b.columns())
    if not row.get("caption") or row.get("caption_source") == CAPTION_MEASURED:
        caption = measured_caption(b, gender)
        out.update(caption=caption, caption_source=CAPTION_MEASURED if caption else None)
    return out
