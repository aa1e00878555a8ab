"""mel.py gives librosa's mel power spectrogram without importing librosa (numba and llvmlite:
~200 MB per worker): the GE2E voice encoder's front end and DNSMOS P.808's."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from mikupal import mel

librosa = pytest.importorskip("librosa")


@pytest.mark.parametrize("sr,n_fft,hop,n_mels", [(16000, 400, 160, 40), (16000, 321, 160, 120)])
def test_power_mel_is_librosas(sr, n_fft, hop, n_mels):
    rng = np.random.default_rng(0)
    for n in (n_fft, 16000, 16000 * 3 + 77):
        y = (rng.standard_normal(n) * 0.1).astype(np.float32)
        ref = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=n_fft, hop_length=hop, n_mels=n_mels).T
        ours = mel.power_mel(y, sr, n_fft, hop, n_mels)
        assert ours.shape == ref.shape
        np.testing.assert_allclose(ours, ref, rtol=2e-4, atol=1e-7)


def test_the_voice_encoder_front_end_imports_no_librosa():
    code = ("import sys, numpy as np; from mikupal.speaker.embed import mel_frames; "
            "mel_frames(np.zeros(16000, np.float32)); print('librosa' in sys.modules, 'numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.split() == ["False", "False"]
