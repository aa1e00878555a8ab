"""Syllables of a transcript word in any script, from its letters alone (no dictionary, no model).

The speaking rate (`prosody.py`) divides them by the seconds of speech. The count is an estimate,
made per writing system:

- Latin, Cyrillic, Greek, Armenian, Georgian: groups of consecutive vowel letters (accents
  stripped; `y` a vowel after a consonant), each group one nucleus. English (`language="en"`)
  also drops a silent final `e` ("make") but keeps `-le` after a consonant ("table").
- Hangul: one syllable per block. Han characters (Chinese, Japanese kanji): one each.
- Kana: one per kana, except the small ya/yu/yo and small vowels (they join the kana before),
  the small tsu, `n` and the long-vowel mark (a mora, not a syllable nucleus).
- Brahmic abugidas (Devanagari, Bengali, Tamil, ...): each consonant carries a vowel unless a
  virama follows it, plus each independent vowel.
- Abjads (Arabic, Hebrew), whose short vowels are unwritten, and Thai and Lao (vowels written
  around the consonants, no spaces): one per two letters, rounded up.
- Digits: one per digit ("1961" is said in more, so numbers are undercounted).

A word with letters but no nucleus found (an abbreviation such as "TV") counts one per letter
group of up to two letters. Checked against hand counts in `tests/unit/test_prosody.py`.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

_VOWELS = set("aeiouyæøœɑɛɔəɪʊ" "аеёиоуыэюяіїєў" "αεηιουω" "աեէըիոօ" "აეიოუ")
_SMALL_KANA = set("ゃゅょぁぃぅぇぉゎャュョァィゥェォヮ")
_NON_NUCLEUS_KANA = set("っッんンー")


@lru_cache(maxsize=65536)
def _char_kind(ch: str) -> str:
    o = ord(ch)
    if 0xAC00 <= o <= 0xD7A3:
        return "hangul"
    if 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF:
        return "han"
    if 0x3040 <= o <= 0x30FF:
        return "kana"
    if ch.isdigit():
        return "digit"
    if not ch.isalpha() and unicodedata.category(ch) not in ("Mn", "Mc"):
        return "other"
    name = unicodedata.name(ch, "")
    script = name.split(" ", 1)[0]
    if script in ("ARABIC", "HEBREW", "SYRIAC", "THAANA", "THAI", "LAO"):
        return "abjad" if unicodedata.category(ch) == "Lo" else "other"
    if "VIRAMA" in name:
        return "virama"
    if script in ("DEVANAGARI", "BENGALI", "GURMUKHI", "GUJARATI", "ORIYA", "TAMIL", "TELUGU", "KANNADA",
                  "MALAYALAM", "SINHALA", "MYANMAR", "KHMER", "TIBETAN"):
        if "VOWEL SIGN" in name or unicodedata.category(ch) in ("Mn", "Mc"):
            return "mark"
        if "LETTER" in name and ("VOWEL" in name or name.split()[-1] in ("A", "AA", "I", "II", "U", "UU", "E", "O")):
            return "brahmic_vowel"
        return "brahmic_consonant"
    return "alpha"


def _alphabetic(letters: str, english: bool) -> int:
    """Vowel groups of a word in an alphabet (accents stripped, lowercase)."""
    base = "".join(c for c in unicodedata.normalize("NFD", letters.lower()) if unicodedata.category(c) != "Mn")
    groups, prev_vowel = 0, False
    for i, c in enumerate(base):
        vowel = c in _VOWELS and not (c == "y" and (i == 0 or base[i - 1] in _VOWELS))
        if vowel and not prev_vowel:
            groups += 1
        prev_vowel = vowel
    if english and groups > 1 and base.endswith("e") and not base.endswith(("le", "ee", "ye")):
        groups -= 1  # a silent final e: "make", "voice"
    elif english and groups > 1 and base.endswith("le") and len(base) > 2 and base[-3] in _VOWELS:
        groups -= 1  # "male", "smile": the e is silent there too
    if groups == 0 and base:
        return (len(base) + 1) // 2  # no vowel letter: an abbreviation, said letter by letter
    return groups


def count_syllables(word: str, language: str = "") -> int:
    """Estimated syllables of one transcript word (punctuation and spaces ignored)."""
    english = language.lower().startswith("en")
    n = 0
    run: list[str] = []  # letters of the current alphabetic run
    abjad = 0
    prev = ""
    for ch in word:
        kind = _char_kind(ch)
        if kind != "alpha" and run:
            n += _alphabetic("".join(run), english)
            run = []
        if kind == "alpha":
            run.append(ch)
        elif kind in ("hangul", "han", "digit"):
            n += 1
        elif kind == "kana":
            n += ch not in _SMALL_KANA and ch not in _NON_NUCLEUS_KANA
        elif kind == "abjad":
            abjad += 1
        elif kind in ("brahmic_consonant", "brahmic_vowel"):
            n += 1
        elif kind == "virama" and prev == "brahmic_consonant":
            n -= 1  # the consonant before it has no vowel of its own
        prev = kind
    if run:
        n += _alphabetic("".join(run), english)
    n += (abjad + 1) // 2
    return max(0, n)


def count_text_syllables(words: list[str], language: str = "") -> int:
    return sum(count_syllables(w, language) for w in words)
