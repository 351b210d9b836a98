"""Ditto audio features: resampling, HuBERT chunking and alignment (golden wav2feat_chunking),
end to end through onnxruntime with a stand-in ONNX that has the released I/O names."""
import os
import warnings

import numpy as np
import pytest
import torch

from talking_head.pipelines.core import audio
from talking_head.pipelines.ditto import hubert
from talking_head.pipelines.core.errors import MediaError
from tests.paths import FIDELITY, needs_shared

GOLDEN = os.path.join(FIDELITY, "ditto", "wav2feat_chunking.safetensors")


def standin(chunk):
    """The golden's formula encoder: E[j,k] = chunk[320j + k%400] * (1 + k//400)."""
    j = np.arange(20)[:, None]
    k = np.arange(1024)[None, :]
    return chunk[320 * j + k % 400] * (1 + k // 400).astype(np.float32)


class _StandinNet(torch.nn.Module):
    """The same formula as a strided conv (one non-zero tap per output channel), so an
    ONNX export reproduces it exactly: input_values (1,L) -> encoding_out (T,1024)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(1, 1024, 400, stride=320, bias=False)
        w = torch.zeros(1024, 1, 400)
        k = torch.arange(1024)
        w[k, 0, k % 400] = (1 + k // 400).float()
        self.conv.weight.data = w

    def forward(self, input_values):
        return self.conv(input_values[:, None])[0].transpose(0, 1)


def export_standin(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_StandinNet(), (torch.zeros(1, hubert.CHUNK),), str(path),
                          input_names=["input_values"], output_names=["encoding_out"],
                          dynamo=False, dynamic_axes={"input_values": {1: "L"}})
    return str(path)


@pytest.fixture(scope="module")
def standin_onnx(tmp_path_factory):
    return export_standin(tmp_path_factory.mktemp("hubert") / "hubert_standin.onnx")


def _golden():
    from safetensors.numpy import load_file
    return load_file(GOLDEN)


@needs_shared
def test_wav2feat_chunking_golden_bit_exact():
    g = _golden()
    feats = hubert.wav2feat(g["audio"], standin)
    assert feats.shape == (33, 1024)
    assert np.array_equal(feats, g["feat_offline"])


@needs_shared
def test_wav2feat_golden_through_onnxruntime(standin_onnx):
    g = _golden()
    enc = hubert.HubertOnnx(standin_onnx)
    assert enc.session.get_inputs()[0].name == "input_values"
    assert np.array_equal(hubert.wav2feat(g["audio"], enc), g["feat_offline"])
    # ComfyUI AUDIO layout (B,C,T), two identical channels: the mono mix is exact
    wave = torch.from_numpy(g["audio"]).repeat(2, 1)[None]
    af = hubert.hubert_features(wave, 16000, standin_onnx)
    assert af.kind == "hubert" and af.fps == 25 and af.seconds == pytest.approx(1.3)
    assert np.array_equal(af.features.numpy(), g["feat_offline"])


def test_frame_alignment_of_an_impulse():
    """An impulse inside video frame i (away from the 80-sample pair overlap) lands in
    feature i only: each pair of HuBERT frames is centred on its video frame."""
    n = 16000
    for frame, offset in ((7, 300), (12, 100), (0, 500)):
        x = np.zeros(n, np.float32)
        x[frame * 640 + offset] = 1.0
        f = hubert.wav2feat(x, standin)
        assert np.flatnonzero(np.abs(f).sum(1)).tolist() == [frame]


def test_online_stream_is_offline_shifted_by_80_samples():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(16000 + 1234).astype(np.float32)
    x[:80] = 0   # online's first chunk also sees these 80 samples; offline(x[80:]) cannot
    st = hubert.HubertStream(standin)
    parts, i = [], 0
    for size in (1000, 5000, 1, 3200, 7000, 99999):   # arbitrary pieces
        parts.append(st.push(x[i:i + size]))
        i += size
    parts.append(st.finish())
    online = np.concatenate(parts)
    # the reference feeds ceil((L+1920)/3200) chunks of 5 features
    assert len(online) == 5 * -(-(len(x) + 1920) // 3200)
    offline = hubert.wav2feat(x[80:], standin)
    m = min(len(online), len(offline))
    assert np.array_equal(online[:m], offline[:m])


def test_num_frames_matches_reference_formula():
    assert hubert.num_frames(20800) == 33
    assert hubert.num_frames(16000 * 10) == 250
    assert hubert.num_frames(1) == 1


@pytest.mark.parametrize("sr", [8000, 22050, 44100, 48000])
def test_resampler_reproduces_band_limited_signal(sr):
    t = np.arange(sr) / sr
    sig = lambda tt: np.sin(2 * np.pi * 440 * tt) + 0.5 * np.sin(2 * np.pi * 3000 * tt + 0.3)  # noqa
    y = audio.resample(torch.from_numpy(sig(t)).float(), sr, 16000).numpy()
    assert len(y) == -(-sr * 16000 // sr)
    ref = sig(np.arange(len(y)) / 16000)
    assert np.abs(y - ref)[200:-200].max() < 1e-5


def test_resampler_removes_content_above_new_nyquist_and_keeps_identity():
    t = np.arange(44100) / 44100
    y = audio.resample(torch.from_numpy(np.sin(2 * np.pi * 10000 * t)).float(), 44100, 16000)
    assert y.abs()[200:-200].max() < 1e-4
    x = torch.randn(2, 1000)
    assert torch.equal(audio.resample(x, 16000, 16000), x)
    assert audio.resample(x, 16000, 24000).shape == (2, 1500)


def test_prepare_audio_mixes_channels_and_rejects_bad_audio():
    stereo = torch.stack([torch.ones(4800), -torch.ones(4800)])[None]     # (1,2,T) at 48 kHz
    out = audio.prepare_audio(stereo, 48000)
    assert out.shape == (1600,) and np.abs(out).max() < 1e-6
    with pytest.raises(MediaError, match="empty"):
        audio.prepare_audio(torch.zeros(1, 0), 16000)
    with pytest.raises(MediaError, match="NaN"):
        audio.prepare_audio(torch.tensor([0.0, float("nan")]), 16000)


def test_stream_resampler_equals_whole_signal_resampling():
    x = torch.randn(48000 + 123, generator=torch.Generator().manual_seed(0))
    for sr in (48000, 44100, 16000):
        st = audio.StreamResampler(sr, 16000)
        rng = np.random.default_rng(1)
        out, i = [], 0
        while i < len(x):
            k = int(rng.integers(1, 4000))
            out.append(st.push(x[i:i + k]))
            i += k
        out.append(st.finish())
        y, whole = torch.cat(out), audio.resample(x, sr, 16000)
        assert y.shape == whole.shape and (y - whole).abs().max() < 1e-5
