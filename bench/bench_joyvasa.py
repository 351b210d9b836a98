"""JoyVASA audio -> motion timings with the full-size network on one device.

    python bench/bench_joyvasa.py [--device cpu|cuda] [--audio WAV] [--threads N]
                                  [--cfg-scale 2.8] [--steps-note]

Weights: seeded random full-size weights (bench/pack.py) written as the released .pt
container and loaded by the pack's loader (the load time is reported too). Timing does
not depend on the values. The motion template is a synthetic one.

Figures:
* load: .pt -> ready network (restricted unpickling, strict key checks);
* first window: HuBERT on the first 4 s window + the 50-step sampler on it, i.e. the
  time until the first 100 motion frames exist (JoyVASA is offline: a window needs its
  whole 4 s of audio);
* total: the whole clip (all windows, de-normalisation, smoothing), as motion frames per
  second of compute and as a real-time factor;
* peak RSS of the process.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import wave

import numpy as np
import torch

from pack import ROOT, import_pack, motion_template, seeded_init_, write_released_pt

DEFAULT_AUDIO = os.path.join(os.path.dirname(ROOT), "shared", "fixtures", "speech_16k.wav")


def read_wav(path: str) -> tuple:
    with wave.open(path) as w:
        rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        raw = w.readframes(w.getnframes())
    if width != 2:
        sys.exit(f"{path}: only 16-bit PCM WAV is read by this bench")
    data = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    return data.reshape(-1, channels).mean(axis=1), rate


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def build_checkpoint(folder: str) -> str:
    """The released container with seeded full-size weights."""
    path = os.path.join(folder, "motion_generator_hubert_chinese.pt")
    from talking_head.pipelines.joyvasa import OFFICIAL, DitTalkingHead

    model = DitTalkingHead(OFFICIAL)
    keep = {k: v.clone() for k, v in model.state_dict().items()
            if k.startswith("diffusion_sched.") or k.endswith((".pe", "mask"))}
    sd = {**seeded_init_(model).state_dict(), **keep}
    args = {"motion_feat_dim": 70, "n_motions": 100, "n_prev_motions": 25, "feature_dim": 256,
            "audio_model": "hubert_zh", "n_diff_steps": 50, "fps": 25, "pad_mode": "zero"}
    write_released_pt(path, sd, args)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--audio", default=DEFAULT_AUDIO)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--cfg-scale", type=float, default=2.8)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import_pack()
    from talking_head.pipelines.core.runtime import RunContext
    from talking_head.pipelines.joyvasa import (
        JoyVASASettings, MotionTemplate, NoiseSource, coefficients_to_motion, load_motion_generator,
        sample_window)

    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    wav, rate = read_wav(args.audio)
    if rate != 16000:
        sys.exit(f"{args.audio}: the bench reads 16 kHz audio (got {rate} Hz)")
    seconds = len(wav) / rate
    print(f"audio {os.path.basename(args.audio)}: {seconds:.2f} s; device {device}; "
          f"threads {torch.get_num_threads()}; torch {torch.__version__}")

    with tempfile.TemporaryDirectory() as folder:
        path = build_checkpoint(folder)
        rss_before = peak_rss_mb()
        t0 = time.perf_counter()
        model = load_motion_generator(path, device)
        load_s = time.perf_counter() - t0
    print(f"load            {load_s:7.2f} s (peak RSS {peak_rss_mb():.0f} MB; "
          f"{rss_before:.0f} MB before, with the seeded weights built)")

    settings = JoyVASASettings(cfg_scale=args.cfg_scale, seed=0)
    ctx = RunContext(device=device, dtype=torch.float32, interrupt=None)
    template = MotionTemplate.from_mapping(motion_template(0))
    cfg = model.cfg
    x = torch.from_numpy(wav)

    # warm-up: one encoder call and two sampler steps on silence (kernels, allocator)
    with torch.inference_mode():
        feat = model.extract_audio_feature(torch.zeros(1, cfg.window_samples, device=device))
        model.guided_prediction(torch.zeros(1, cfg.n_motions, cfg.motion_feat_dim, device=device),
                                feat, model.start_motion_feat, model.start_audio_feat, 1,
                                settings.cfg_scale)
    sync()

    # first window: the audio of window 0 (with the leading silence) -> 100 frames
    from talking_head.pipelines.joyvasa.generate import LEAD_SILENCE
    first_audio = torch.nn.functional.pad(x, (LEAD_SILENCE, 0))[:cfg.window_samples]
    first_audio = torch.nn.functional.pad(first_audio, (0, cfg.window_samples - first_audio.numel()))
    noise = NoiseSource(0)
    t0 = time.perf_counter()
    with torch.inference_mode():
        feat = model.extract_audio_feature(first_audio[None].to(device))
        sync()
        hubert_s = time.perf_counter() - t0
        sample_window(model, feat, None, None, noise.initial((1, cfg.n_motions, cfg.motion_feat_dim)),
                      noise, settings.guidance, ctx)
    sync()
    first_s = time.perf_counter() - t0
    print(f"first window    {first_s:7.2f} s = HuBERT {hubert_s:.2f} s + {cfg.n_diff_steps} "
          f"guided steps {first_s - hubert_s:.2f} s ({1000 * (first_s - hubert_s) / cfg.n_diff_steps:.0f} "
          f"ms/step) for {cfg.n_motions} frames")

    from talking_head.pipelines.joyvasa import generate_coefficients
    t0 = time.perf_counter()
    coef = generate_coefficients(model, x, settings.guidance, NoiseSource(0), ctx)
    motion = coefficients_to_motion(coef.motion, template, settings, n_audio=len(wav))
    sync()
    total_s = time.perf_counter() - t0
    print(f"whole clip      {total_s:7.2f} s for {len(motion)} frames at {motion.fps:g} fps "
          f"({coef.plan.n_windows} windows) = {len(motion) / total_s:.1f} motion frames/s, "
          f"real-time factor {total_s / seconds:.2f}")
    print(f"peak RSS        {peak_rss_mb():7.0f} MB")


if __name__ == "__main__":
    main()
