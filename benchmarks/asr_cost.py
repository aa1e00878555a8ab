"""What whisper alone costs per minute of speech on the speed benchmark's input (one thread, the
CPU profile's decoding: int8, beam 1, no sampling, word times), against the ASR stage's whole CPU.

    python -m benchmarks.asr_cost
"""

from __future__ import annotations

import json
import time

from faster_whisper import WhisperModel

from mikupal import media

from .inputs import base_minute
from .pipeline import models_dir


def cost(model: WhisperModel, audio, **options) -> dict:
    t, w = time.process_time(), time.perf_counter()
    segments, _ = model.transcribe(audio, beam_size=1, temperature=[0.0], vad_filter=False,
                                   condition_on_previous_text=False, language="en", **options)
    words = sum(len(s.text.split()) for s in segments)
    return {"cpu_s": round(time.process_time() - t, 2), "wall_s": round(time.perf_counter() - w, 2), "words": words}


def main() -> None:
    audio = media.decode_audio(str(base_minute()), 0, 60, 16000)
    model = WhisperModel(str(models_dir() / "whisper" / "tiny.en"), device="cpu", compute_type="int8", cpu_threads=1)
    cost(model, audio, word_timestamps=True)  # warm-up
    out = {"media_seconds": round(len(audio) / 16000, 2), "model": "tiny.en int8, 1 thread",
           "with_word_times": cost(model, audio, word_timestamps=True),
           "without_word_times": cost(model, audio, word_timestamps=False)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
