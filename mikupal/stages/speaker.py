"""Speaker: voice embeddings of each utterance, and cuts where its voice changes.

Thin adapter over `speaker/`: decode the utterance's 16 kHz analysis audio, embed sliding windows
(GE2E), find voice changes and two-voices-at-once stretches, and cut the utterance at the word
boundaries nearest them. Each piece goes on as its own utterance, carrying its windows (the vision
stage cuts again where faces show another change, and needs the pieces' voices), its voice
embedding and its suspect short turns (`speaker/turns.py`: the faces decide those); what is cut
away is a reject span (`speaker_change`, `overlapping_speech`).
"""

from __future__ import annotations

from typing import Optional

from .. import media
from ..config import Resources, RunConfig
from ..errors import StageError
from ..models_dir import ModelNeed, ensure_file, file_need
from ..speaker.change import find_changes
from ..speaker.embed import VoiceEncoder, mean_voice, slice_windows, windows_record
from ..speaker.turns import TurnRules, short_turns
from ..vision.asd import use_bf16
from ..audio.word_cuts import OVERLAPPING_SPEECH, Removal, split_utterance
from ..records import WorkItem
from .base import Stage


class SpeakerStage(Stage):
    name = "speaker"
    holds_model = True
    level = "segment"

    encoder: Optional[VoiceEncoder] = None

    @property
    def resources(self) -> Resources:
        return self.cfg.speaker.resources

    @classmethod
    def models(cls, cfg: RunConfig) -> list[ModelNeed]:
        return [file_need("speaker", cfg.models_dir, cfg.speaker.model, "torch")]

    def execution(self) -> str:
        return f"GE2E: torch {'cuda' if self.holds_gpu else 'cpu'}"

    def setup(self) -> None:
        sc = self.cfg.speaker
        path = ensure_file(self.cfg.models_dir, sc.model, self.cfg.offline)
        self.limit_threads()
        device = self.device("speaker (GE2E)")
        self.encoder = VoiceEncoder.load(path, device, use_bf16(sc.precision, device))

    def process(self, item: WorkItem) -> list[WorkItem]:
        seg = item.data.segment
        if seg is None:
            raise StageError("no_segment", "the speaker stage needs an utterance (segment-level item)")
        if self.encoder is None:
            self.start()
        sc = self.cfg.speaker
        audio = media.decode_audio(item.data.analysis_path or item.path or item.source, seg.start, seg.end, media.ANALYSIS_RATE)
        frames = self.encoder.analyse(audio)
        windows = windows_record(self.encoder.embed_windows(frames, sc.window_seconds, sc.hop_seconds), seg.start)
        found = find_changes(windows, sc.change_similarity, sc.overlap_similarity, sc.min_side_windows)
        removals = [Removal(a, b, OVERLAPPING_SPEECH, f"two voices at once in [{a:.2f}, {b:.2f}) s (voice windows match no single voice)")
                    for a, b in found.overlaps]
        why = ", ".join(f"voice change at {t:.2f} s (similarity {s:.2f} < {sc.change_similarity:g})"
                        for t, s in zip(found.changes, found.similarity))
        pieces, rejects = split_utterance(seg, found.changes, removals, self.cfg.segment, self.name, why)
        out = item.pieces(pieces, rejects)
        rules = TurnRules(sc.turn_thresholds, sc.turn_min_seconds, sc.turn_max_seconds, sc.turn_cue_bonus)
        for it in out:
            if it.status == "dropped":
                continue
            it.data.voice = slice_windows(windows, it.data.segment.start, it.data.segment.end) if len(pieces) > 1 else windows
            it.data.speaker_embedding = mean_voice(it.data.voice)
            it.data.voice_suspects = short_turns(self.encoder, frames, it.data.voice, it.data.segment.words, seg.start, rules)
        return out
