"""MuseTalk v1.5 audio features: golden case 1, positional encoding, exact-fps windows,
long-audio stitching and the 16 kHz resampler."""
import json
import math
import os

import numpy as np
import pytest
import torch

from talking_head.pipelines.core.errors import MediaError
from talking_head.pipelines.musetalk import audio as A
from talking_head.pipelines.musetalk.models import build_whisper
from talking_head.pipelines.core.audio import resample
from talking_head.pipelines.core.types import ModelBundle
from tests.fakes import keyed_state_dict, manifest_entries
from tests.goldens import golden
from tests.paths import FIDELITY, needs_shared

CASES = os.path.join(FIDELITY, "musetalk")


def _gold(name):
    from safetensors.torch import load_file

    return load_file(os.path.join(CASES, name))


def _tol(case, key):
    with open(os.path.join(CASES, "cases.json")) as fh:
        cases = {c["name"]: c for c in json.load(fh)["cases"]}
    return cases[case]["tolerance"][key]["suggested_max_rel"]


def _rel(ours, gold):
    gold = gold.float()
    scale = gold.std() if gold.numel() >= 8 else gold.abs().max()
    return float((ours.float() - gold).abs().max() / scale)


@needs_shared
def test_case1_whisper_features_golden():
    g = _gold("case1_whisper.safetensors")
    case = "case1_whisper_features"
    # log-mel of the single 30-s window
    feats = A.input_features(g["waveform"])
    assert _rel(feats, g["input_features"]) <= _tol(case, "input_features")

    # the HF checkpoint layout: "model." prefix and decoder keys that must be ignored
    entries = manifest_entries("musetalk_manifest_whisper_tiny.json")
    sd = {"model." + k: v for k, v in keyed_state_dict(entries, base_seed=golden("musetalk").base_seed).items()}
    sd["model.decoder.layer_norm.weight"] = torch.ones(384)
    sd["proj_out.weight"] = torch.zeros(8, 384)
    bundle = ModelBundle("musetalk", {"whisper": build_whisper(sd)}, torch.device("cpu"), torch.float32)

    hidden = A.stacked_hidden_states(A.whisper_encoder_fn(bundle["whisper"]), g["waveform"])
    err = _rel(hidden, g["hidden_states_stacked"][0])
    print(f"case1 hidden_states_stacked rel {err:.2e}")
    assert hidden.shape == (514, 5, 384)
    assert err <= _tol(case, "hidden_states_stacked")

    out = A.whisper_features(bundle, g["waveform"], fps=25)
    assert out.features.shape == (257, 50, 384) and out.kind == "whisper"
    assert out.seconds == pytest.approx(164516 / 16000)
    for part in ("first", "last"):
        idx = g[f"chunks_{part}_index"]
        assert idx.max() < out.features.shape[0]
        err = _rel(out.features[idx], g[f"chunks_{part}"])
        print(f"case1 chunks_{part} rel {err:.2e}")
        assert err <= _tol(case, f"chunks_{part}")


@needs_shared
def test_positional_encoding_matches_reference_table():
    g = _gold("case2_unet.safetensors")
    assert torch.equal(A.positional_encoding(50, 384), g["pe_table"])


def test_log_mel_matches_transformers_feature_extractor():
    """An independent implementation of the same log-mel (transformers, numpy path)."""
    from transformers import WhisperFeatureExtractor

    gen = torch.Generator().manual_seed(3)
    wave = 0.1 * torch.randn(3 * 16000, generator=gen)
    ref = WhisperFeatureExtractor()(wave.numpy(), sampling_rate=16000, return_tensors="np")
    ours = A.input_features(wave)
    ref = torch.from_numpy(ref["input_features"])
    assert ref.shape == ours.shape == (1, 80, 3000)
    assert _rel(ours, ref) < 1e-3


def _index_stream(n_frames, layers=2, d=3):
    """Fake hidden states whose value is (encoder frame index + 1): 0 marks padding."""
    return (torch.arange(n_frames, dtype=torch.float32) + 1)[:, None, None].expand(n_frames, layers, d)


def test_frame_windows_reference_layout_at_25fps():
    hidden = _index_stream(100)
    win = A.frame_windows(hidden, 25, 50)  # token = step*layers + layer
    assert win.shape == (50, 20, 3)
    for i in (0, 1, 2, 10, 49):
        steps = win[i, ::2, 0].numpy()
        expect = [(2 * i - 4 + k + 1) if 0 <= 2 * i - 4 + k < 100 else 0 for k in range(10)]
        assert steps.tolist() == expect


def test_non_integer_fps_does_not_drift():
    """29.97 fps: window i starts at floor(i*50/29.97); the reference's int(fps)=29 would
    start frame 898 at 1548, i.e. 1 s late, beyond the audio."""
    fps = 30000 / 1001
    n_samples = 30 * 16000
    t = A.frame_count(n_samples, fps)
    assert t == 899  # floor(30 * 29.97), not floor(30 * 29) = 870
    hidden = _index_stream(n_samples // 320, layers=1, d=1)
    win = A.frame_windows(hidden, fps, t)
    starts = win[:, 4, 0].numpy() - 1  # step 4 is the frame's own start (4 left pads)
    expect = np.floor(np.arange(t) * 50 / fps)
    assert np.array_equal(starts, expect)
    drift = np.abs(starts / 50 - np.arange(t) / fps)
    assert drift.max() < 0.02  # within one 20-ms encoder step everywhere
    # asking for more frames than the audio covers pads with zeros instead of failing
    more = A.frame_windows(hidden, fps, t + 40)
    assert more.shape[0] == t + 40 and float(more[-1].abs().max()) == 0.0


def test_window_plan_tiles_long_audio_with_context():
    assert A.window_plan(25 * 16000) == [(0, 0, 1250)]
    n = 95 * 16000 + 123
    plan = A.window_plan(n)
    total = n // 320
    assert plan[0][1] == 0 and plan[-1][2] == total
    for (s, a, b), nxt in zip(plan, plan[1:] + [None]):
        assert s <= a < b <= s + 1500
        if nxt is not None:
            assert b == nxt[1]                       # contiguous, no overlap
            assert a - s >= 250 or s == 0            # left context
            assert s + 1500 - b >= 250               # right context


def test_long_audio_has_no_seams_with_a_local_encoder():
    """With an encoder that only looks at its own mel frames, stitching the overlapping
    windows must reproduce the features of one giant window exactly (no seams at 20 s
    steps); the reference's independent 30-s segments would not (log-mel floor and STFT
    edges). Features: the two mel frames of each 20-ms step."""
    gen = torch.Generator().manual_seed(0)
    n = 71 * 16000
    t = torch.arange(n) / 16000
    wave = 0.05 * torch.randn(n, generator=gen) + 0.3 * torch.sin(2 * math.pi * 220 * t) * (t % 3 < 1.5)

    def local_encoder(mel):  # (B,80,2M) -> (B,M,2,80), any M
        return torch.stack([mel[:, :, 0::2], mel[:, :, 1::2]], dim=2).permute(0, 3, 2, 1)

    stitched = A.stacked_hidden_states(local_encoder, wave)
    frames = n // 320
    assert stitched.shape == (frames, 2, 80)
    # one STFT over the whole (zero-padded) signal, floored with the same global peak
    windows = torch.stack([A._window_samples(wave, s) for s, _a, _b in A.window_plan(n)])
    peak = A.log10_mel(windows).max()
    whole = A.log10_mel(torch.nn.functional.pad(wave, (0, 480000))[None])
    expect = local_encoder(A.normalise_log_mel(whole, peak)[:, :, : 2 * frames])[0]
    assert (stitched - expect).abs().max() < 1e-4


def test_waveform_checks():
    with pytest.raises(MediaError):
        A.check_waveform(torch.zeros(10))
    with pytest.raises(MediaError):
        A.check_waveform(torch.zeros(16000, dtype=torch.int16))
    stereo = torch.stack([torch.ones(16000), -torch.ones(16000)])[None]  # ComfyUI [B,C,T]
    assert torch.equal(A.check_waveform(stereo), torch.zeros(16000))


@pytest.mark.parametrize("sr", [44100, 48000, 22050, 8000])
def test_resample_to_16k_keeps_a_tone(sr):
    n = sr * 2
    x = (0.5 * torch.sin(2 * math.pi * 440 * torch.arange(n, dtype=torch.float64) / sr)).float()
    y = resample(x, sr, 16000)
    assert y.shape == (32000,)
    ref = 0.5 * torch.sin(2 * math.pi * 440 * torch.arange(32000, dtype=torch.float64) / 16000)
    assert (y[800:-800].double() - ref[800:-800]).abs().max() < 1e-3


def test_resample_removes_content_above_new_nyquist():
    x = torch.sin(2 * math.pi * 10000 * torch.arange(44100) / 44100)
    assert resample(x, 44100, 16000)[800:-800].abs().max() < 5e-3  # > 45 dB down


# ---------------------------------------------------------------------------------------
# the encoder stack run from the module's weights (last layer on the kept rows only)


def _small_whisper(seed=0):
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    torch.manual_seed(seed)
    cfg = WhisperConfig(d_model=64, encoder_layers=3, encoder_attention_heads=4,
                        encoder_ffn_dim=128, num_mel_bins=80, max_source_positions=1500)
    cfg._attn_implementation = "sdpa"
    enc = WhisperEncoder(cfg).eval()
    with torch.no_grad():  # non-trivial LayerNorms and biases
        for p in enc.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return enc


def _transformers_stack(enc, mel):
    with torch.inference_mode():
        return torch.stack(enc(mel, output_hidden_states=True).hidden_states, dim=2)


def _speech_like(n_samples, seed=0):
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(n_samples) / 16000
    return 0.05 * torch.randn(n_samples, generator=gen) + 0.2 * torch.sin(2 * math.pi * 180 * t)


@pytest.mark.parametrize("onednn", [True, False])  # oneDNN linears where available, F.linear
@pytest.mark.parametrize("seconds", [4.3, 30.0])  # a silent padded tail, and none
def test_encoder_stack_matches_transformers(seconds, onednn, monkeypatch):
    if not onednn:
        monkeypatch.setitem(A._ONEDNN, "ok", False)
    enc = _small_whisper()
    mel = A.input_features(_speech_like(int(seconds * 16000)))
    ref = _transformers_stack(enc, mel)
    run = A.whisper_encoder_fn(enc)
    full = run(mel)
    assert full.shape == ref.shape == (1, 1500, 4, 64)
    assert (full - ref).abs().max() / ref.std() < 1e-5
    lo, hi = 7, int(seconds * 50)
    part = run(mel, rows=(lo, hi))
    assert part.shape == (1, hi - lo, 4, 64)
    assert (part - ref[:, lo:hi]).abs().max() / ref.std() < 1e-5


def test_stacked_hidden_states_rows_follow_the_window_plan():
    """Long audio, several windows per encoder batch: the rows each window keeps come
    out of the row-trimmed encoder exactly where the full-window encoder has them."""
    enc = _small_whisper(1)
    wave = _speech_like(75 * 16000, seed=2)
    full_fn = lambda mel: _transformers_stack(enc, mel)  # noqa: E731  (no rows= support)
    expect = A.stacked_hidden_states(full_fn, wave, window_batch=2)
    got = A.stacked_hidden_states(A.whisper_encoder_fn(enc), wave, window_batch=2)
    assert got.shape == expect.shape == (75 * 50, 4, 64)
    assert (got - expect).abs().max() / expect.std() < 1e-5


def test_frame_windows_gather_matches_indexing():
    hidden = torch.randn(321, 3, 8)
    for fps in (25, 30000 / 1001, 12.5):
        n = A.frame_count(321 * 320, fps)
        win = A.frame_windows(hidden, fps, n)
        units = math.ceil(50 / fps)
        padded = torch.cat([torch.zeros(2 * units, 3, 8), hidden, torch.zeros(400, 3, 8)])
        starts = np.floor(np.arange(n) * 50 / fps + 1e-9).astype(np.int64)
        expect = torch.stack([padded[s:s + 10].reshape(-1, 8) for s in starts])
        assert torch.equal(win, expect)
