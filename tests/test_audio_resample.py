"""The audio resampler at awkward rates: length rule, passband accuracy against the
analytic signal, streaming == one-shot, bounded memory and sane speed.

Rates like 7919 Hz (prime) or 22254 Hz have thousands of co-prime output phases; a
per-phase kernel table spanning a whole period needed 4.6-12.6 GB. Here they take the
interpolated table, 11025 and 192000 Hz the exact one, so both paths are checked.
"""
import math
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from talking_head.pipelines.core import audio
from talking_head.pipelines.core.errors import MediaError

RATES = (7919, 11025, 22254, 44056, 192000)
TARGETS = (16000, 48000)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# four tones up to 0.8 x the lower Nyquist (the passband; the cutoff is at 0.945)
FRACTIONS = np.array([0.02, 0.3, 0.6, 0.8])
AMPLITUDES = np.array([0.4, 0.3, 0.2, 0.1])
PHASES = np.array([0.1, 1.0, 2.0, 0.5])


def tones(t, nyquist):
    f = FRACTIONS[:, None] * nyquist
    return (AMPLITUDES[:, None] * np.sin(2 * np.pi * f * t[None] + PHASES[:, None])).sum(0)


@pytest.mark.parametrize("new", TARGETS)
@pytest.mark.parametrize("orig", RATES)
def test_length_rule_and_passband_accuracy(orig, new):
    for length in (1, 2, orig // 7 + 3):
        y = audio.resample(torch.zeros(2, length), orig, new)
        assert y.shape == (2, -(-length * new // orig))
    nyquist = min(orig, new) / 2
    x = tones(np.arange(orig + 37) / orig, nyquist)
    for dtype, tolerance in ((torch.float32, 5e-6), (torch.float64, 1e-6)):
        y = audio.resample(torch.from_numpy(x).to(dtype), orig, new)
        assert y.dtype == dtype and y.shape == (-(-(orig + 37) * new // orig),)
        # output n sits at input time n * orig / new, i.e. at n / new seconds
        ref = tones(np.arange(len(y)) / new, nyquist)
        edge = new // 20   # the kernel sees the zero padding near the ends
        err = np.abs(y.double().numpy() - ref)[edge:-edge].max()
        assert err < tolerance * AMPLITUDES.sum(), (orig, new, dtype, err)


@pytest.mark.parametrize("orig,new", [(192000, 16000), (44056, 16000), (22254, 16000)])
def test_content_above_the_new_nyquist_is_removed(orig, new):
    t = np.arange(orig) / orig
    x = torch.from_numpy(np.sin(2 * np.pi * 0.6 * new * t)).float()   # 1.2 x new Nyquist
    y = audio.resample(x, orig, new)
    assert y[new // 20:-new // 20].abs().max() < 1e-4


def test_interpolated_table_agrees_with_the_exact_one(monkeypatch):
    """Force the fine (interpolated) table on a ratio with an exact one: same output."""
    x = torch.randn(3 * 11025, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    exact = audio.resample(x, 11025, 16000)
    assert audio._Plan.make(11025, 16000).exact
    monkeypatch.setattr(audio, "MAX_EXACT_TABLE", 0)
    assert not audio._Plan.make(11025, 16000).exact
    assert (audio.resample(x, 11025, 16000) - exact).abs().max() < 1e-5


@pytest.mark.parametrize("new", TARGETS)
@pytest.mark.parametrize("orig", RATES)
def test_streaming_equals_one_shot(orig, new):
    x = torch.randn(orig // 2 + 321, generator=torch.Generator().manual_seed(orig))
    whole = audio.resample(x, orig, new)
    rng = np.random.default_rng(new)
    for most in (3, 5000):       # tiny pieces (then larger ones), and larger ones only
        st = audio.StreamResampler(orig, new)
        out, i = [], 0
        while i < len(x):
            k = int(rng.integers(1, most if i < 1500 else 5000))
            out.append(st.push(x[i:i + k]))
            i += k
        out.append(st.finish())
        y = torch.cat(out)
        assert y.shape == whole.shape and (y - whole).abs().max() < 1e-5
        assert len(st.buf) < 2 * st.plan.taps + orig   # the buffer does not grow


def test_rejects_bad_rates():
    with pytest.raises(MediaError, match="positive"):
        audio.resample(torch.zeros(10), 0, 16000)
    with pytest.raises(MediaError, match="positive"):
        audio.StreamResampler(16000, -1)


MEMORY_SCRIPT = r"""
import sys, types
import torch
torch.set_num_threads(1)
pkg = types.ModuleType("talking_head"); pkg.__path__ = [sys.argv[1]]
sys.modules["talking_head"] = pkg
from talking_head.pipelines.core import audio


def peak_kib():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))


orig, new = int(sys.argv[2]), int(sys.argv[3])
x = torch.sin(torch.arange(10 * orig) * 0.05)
audio.resample(x[:100], 16000, 8000)       # load the kernels used before the baseline
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")                           # peak := resident size now (Linux >= 4.0)
base = peak_kib()
y = audio.resample(x, orig, new)
assert len(y) == -(-len(x) * new // orig)
print((peak_kib() - base) / 1024)
"""


@pytest.mark.parametrize("orig,new", [(7919, 48000), (22254, 16000)])
def test_peak_memory_of_ten_seconds_is_bounded(orig, new):
    """Peak resident size over a baseline with torch imported and the input made; these
    two were killed by the OOM killer at 12.6 GB and 4.6 GB before. VmHWM with the peak
    reset, not ru_maxrss: a child's ru_maxrss keeps the parent's size at fork (the
    kernel folds the pre-exec memory into it), which is pytest's, hundreds of MB."""
    if not os.path.exists("/proc/self/clear_refs"):
        pytest.skip("needs Linux /proc to reset and read the peak resident size")
    run = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, ROOT, str(orig), str(new)],
                         capture_output=True, text=True, timeout=120)
    if run.returncode != 0 and "clear_refs" in run.stderr:
        pytest.skip("resetting the peak resident size is not permitted here")
    assert run.returncode == 0, run.stderr
    peak_mb = float(run.stdout.split()[-1])
    print(f"{orig} -> {new}: peak +{peak_mb:.1f} MB")
    assert peak_mb < 100


def test_ten_seconds_of_cd_audio_to_16k_is_fast():
    x = torch.randn(441000)
    audio.resample(x[:4410], 44100, 16000)
    best = math.inf
    for _ in range(3):     # best of three: the machine is shared
        t = time.perf_counter()
        y = audio.resample(x, 44100, 16000)
        best = min(best, time.perf_counter() - t)
    assert y.shape == (160000,)
    print(f"10 s 44.1k -> 16k: {best * 1000:.0f} ms")
    assert best < 0.5
