"""Language ID's packing of clips into whisper windows and its mismatch rule (pure functions)."""

from __future__ import annotations

import numpy as np

from mikupal.audio.language_id import LanguageGuess, LanguageIdentifier, LanguageSchedule, is_mismatch, pack_windows


def test_short_clips_share_a_window_and_a_long_one_stands_alone():
    assert pack_windows([5.0, 10.0, 14.0, 3.0, 29.0, 40.0, 1.0]) == [[0, 1, 2], [3], [4], [5], [6]]
    assert pack_windows([]) == []
    assert pack_windows([30.0, 30.0]) == [[0], [1]]


def test_mismatch_needs_another_language_ahead_and_little_of_the_target():
    assert is_mismatch(LanguageGuess("zh", 0.99, 0.002), 0.2)
    assert not is_mismatch(LanguageGuess("en", 0.95, 0.95), 0.2)
    # accented English: another language ranks first, English keeps a real share
    assert not is_mismatch(LanguageGuess("hi", 0.55, 0.35), 0.2)
    assert is_mismatch(LanguageGuess("es", 0.88, 0.013), 0.2)


class _ByLoudness(LanguageIdentifier):
    """Language ID by a rule on the audio (the packing logic under test, not whisper): a window
    of one clip value is that language; a mix of two is unsure."""

    def identify(self, audio):
        values = set(np.unique(np.round(audio * 10)).astype(int).tolist())
        if values == {1}:
            return LanguageGuess("en", 0.97, 0.97)
        if values == {2}:
            return LanguageGuess("zh", 0.98, 0.01)
        return LanguageGuess("zh", 0.6, 0.3)


def test_an_unsure_window_is_identified_clip_by_clip():
    ident = _ByLoudness("rule", ".", "en")
    en, zh = np.full(16000 * 5, 0.1, np.float32), np.full(16000 * 5, 0.2, np.float32)
    guesses = ident.identify_clips([en, en, zh, en])
    assert [g.language for g in guesses] == ["en", "en", "zh", "en"]
    assert [g.language for g in ident.identify_clips([en, en])] == ["en", "en"]


def test_a_settled_video_skips_most_windows_and_a_doubt_resets_it():
    sched = LanguageSchedule()
    en = [LanguageGuess("en", 0.97, 0.97)]
    checked = []
    for i in range(12):
        due = sched.next_window()
        checked.append(due)
        if due:
            sched.record([LanguageGuess("zh", 0.95, 0.01)] if i == 8 else en, "en")
    # the first two settle it; then every 4th window is checked; window 8 is not English: all checked again
    assert checked == [True, True, False, False, True, False, False, False, True, True, True, False]
    assert LanguageSchedule.suspect([-0.98, -0.9]) and not LanguageSchedule.suspect([-0.3, -0.45]) and not LanguageSchedule.suspect([])
