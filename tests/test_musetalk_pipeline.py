"""MuseTalk end to end with tiny networks written as fake checkpoints in the official
layouts: audio -> features -> avatar -> generate -> blend, avatar reuse across clips,
faceless frames passing through, deterministic latents."""
import json
import math

import cv2
import numpy as np
import pytest
import torch

from talking_head.pipelines.core.errors import NoFaceError
from talking_head.pipelines.musetalk import (
    AvatarSettings, blend, face_boxes, frame_schedule, generate, load_musetalk, placed_frames,
    positional_encoding, prepare_avatar, whisper_features, with_blend_settings)
from talking_head.pipelines.musetalk.models import TINY_CONFIGS
from talking_head.pipelines.musetalk import blending as B
from tests.fakes import entries_of, write_fake

H, W = 176, 144


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import WhisperConfig, WhisperModel

    from talking_head.pipelines.musetalk.bisenet import BiSeNet, BiSeNetConfig

    d = tmp_path_factory.mktemp("musetalk")
    unet = write_fake(None, str(d / "musetalkV15" / "unet.pth"),
                      entries=entries_of(UNet2DConditionModel(**TINY_CONFIGS["unet"])))
    # the released VAE .bin names its mid-block attention query/key/value/proj_attn
    vae_entries = {}
    for k, v in entries_of(AutoencoderKL(**TINY_CONFIGS["vae"])).items():
        for new, old in (("to_q", "query"), ("to_k", "key"), ("to_v", "value"), ("to_out.0", "proj_attn")):
            k = k.replace(f".attentions.0.{new}.", f".attentions.0.{old}.")
        vae_entries[k] = v
    vae = write_fake(None, str(d / "sd-vae" / "diffusion_pytorch_model.bin"), entries=vae_entries)
    # whisper: an HF folder (config.json + WhisperForConditionalGeneration-style keys)
    wcfg = dict(TINY_CONFIGS["whisper"], model_type="whisper", architectures=["WhisperForConditionalGeneration"])
    wdir = d / "whisper"
    write_fake(None, str(wdir / "pytorch_model.bin"), prefix="model.",
               entries=entries_of(WhisperModel(WhisperConfig(**TINY_CONFIGS["whisper"]))))
    (wdir / "config.json").write_text(json.dumps(wcfg))
    parsing = write_fake(None, str(d / "face-parse-bisent" / "79999_iter.pth"),
                         entries=entries_of(BiSeNet(BiSeNetConfig(**TINY_CONFIGS["parsing"]))))
    configs = {k: TINY_CONFIGS[k] for k in ("unet", "vae", "parsing")}
    return load_musetalk({"unet": unet, "vae": vae, "whisper": str(wdir), "parsing": parsing},
                         "cpu", torch.float32, configs=configs)


def _landmarks(cx, cy, rx, ry):
    """Synthetic 68 iBUG points: a jaw arc and inner points, lm29 at (cx, cy)."""
    lm = np.zeros((68, 2))
    th = np.linspace(0, math.pi, 17)
    lm[:17] = np.stack([cx - rx * np.cos(th), cy + ry * np.sin(th)], 1)  # jaw, chin at bottom
    rng = np.random.default_rng(0)
    lm[17:] = np.stack([cx + rx * 0.7 * (rng.random(51) - 0.5) * 2, cy + ry * (rng.random(51) - 0.9)], 1)
    lm[27:31] = [[cx, cy - 24], [cx, cy - 12], [cx, cy], [cx, cy + 12]]
    return lm


@pytest.fixture(scope="module")
def source():
    yy, xx = np.mgrid[0:H, 0:W]
    frames = []
    for i in range(3):
        img = np.stack([(xx * 255 / W), (yy * 255 / H), np.full_like(xx, 60 * i)], -1)
        frames.append(img.astype(np.float32) / 255.0)
    frames = np.stack(frames)
    lms = np.stack([_landmarks(72, 80, 40, 50), np.full((68, 2), np.nan), _landmarks(70, 82, 38, 50)])
    boxes, found = face_boxes(lms, (H, W), bbox_shift=0, extra_margin=10)
    return frames, boxes, found


def _speech(seconds, seed):
    g = torch.Generator().manual_seed(seed)
    n = int(seconds * 16000)
    t = torch.arange(n) / 16000
    return 0.2 * torch.sin(2 * math.pi * 180 * t) * torch.rand(n, generator=g)


def test_tiny_end_to_end(bundle, source):
    frames, boxes, found = source
    assert found.tolist() == [True, False, True]
    feats = whisper_features(bundle, _speech(0.7, 0), fps=25)
    assert feats.features.shape == (17, 50, 32)  # floor(0.7*25) frames, 10 steps x 5 states

    avatar = prepare_avatar(bundle, frames, boxes, found, settings=AvatarSettings(parsing_mode="jaw"), batch_size=2)
    # independent latent check: crop, black lower half, VAE posterior mode, x 0.18215
    vae = bundle["vae"]
    u8 = np.rint(frames[0] * 255).astype(np.uint8)
    x1, y1, x2, y2 = boxes[0]
    crop = cv2.resize(u8[y1:y2, x1:x2], (256, 256), interpolation=cv2.INTER_LANCZOS4)
    x = torch.from_numpy(crop).permute(2, 0, 1)[None].contiguous().float() / 255
    xm = x.clone()
    xm[:, :, 128:] = 0
    with torch.no_grad():
        lat = torch.cat([vae.encode(xm * 2 - 1).latent_dist.mode(), vae.encode(x * 2 - 1).latent_dist.mode()], 1)
    assert torch.allclose(avatar.latents[0], 0.18215 * lat[0], atol=1e-5)

    faces = generate(bundle, avatar, feats, batch_size=5)
    assert faces.shape == (17, 256, 256, 3) and faces.dtype == torch.uint8
    sched = frame_schedule(3, 17)
    assert sched[:8].tolist() == [0, 1, 2, 2, 1, 0, 0, 1]
    # independent single-frame check through the raw diffusers modules
    t = 5  # source frame 0
    ctx = feats.features[t:t + 1] + positional_encoding(50, 32)[None]
    with torch.no_grad():
        pred = bundle["unet"](avatar.latents[0:1], torch.tensor([0]), encoder_hidden_states=ctx).sample
        img = vae.decode(pred / 0.18215).sample
    ref = ((img / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1) * 255).round().to(torch.uint8)[0]
    assert (faces[t].int() - ref.int()).abs().max() <= 1
    assert torch.equal(faces[1], torch.zeros(256, 256, 3, dtype=torch.uint8))  # faceless slot

    # blend with a synthetic "all skin" parsing so the mask is non-trivial
    avatar.parsing[:] = B.SKIN
    avatar = with_blend_settings(avatar, AvatarSettings(parsing_mode="raw"))
    out, masks = blend(avatar, faces, return_masks=True)
    assert out.shape == (17, H, W, 3) and masks.shape == (17, H, W)
    src = torch.from_numpy(np.rint(frames * 255).astype(np.uint8))[torch.from_numpy(sched)]
    faceless = torch.from_numpy(sched == 1)
    assert torch.equal(out[faceless], src[faceless])                 # passes through unchanged
    assert float(masks[faceless].abs().max()) == 0.0
    outside = masks == 0
    assert torch.equal(out[outside], src[outside])
    assert (masks == 1).sum() > 1000                                  # the mask covers the mouth
    placed = placed_frames(avatar, faces)
    inside = masks == 1
    assert torch.equal(out[inside], placed[inside])
    # a generic blend node gets the same result from placed frames + masks
    a = torch.round(masks * 255).to(torch.uint8).numpy()
    assert np.array_equal(B.pil_blend(src.numpy(), placed.numpy(), a), out.numpy())
    # the lower half only: rows above the box centre (less the feather radius) stay
    x1, y1, x2, y2 = avatar.boxes[0]
    xs, ys, xe, ye = avatar.crop_boxes[0]
    k = B.blur_kernel_size(xe - xs, 0.05)
    assert float(masks[0, : (y1 + y2) // 2 - k // 2].max()) == 0.0
    assert float(masks[0, (y1 + y2) // 2 + k // 2 + 1].max()) == 1.0


def test_avatar_is_reused_across_audio_clips(bundle, source):
    frames, boxes, found = source
    vae, parser = bundle["vae"], bundle["parsing"]
    counts = {"encode": 0, "decode": 0, "parse": 0}
    enc, dec, fwd = vae.encode, vae.decode, parser.forward

    def count(key, fn, n_of):
        def wrapped(x, *a, **k):
            counts[key] += n_of(x)
            return fn(x, *a, **k)
        return wrapped

    vae.encode = count("encode", enc, lambda x: x.shape[0])
    vae.decode = count("decode", dec, lambda x: x.shape[0])
    parser.forward = count("parse", fwd, lambda x: x.shape[0])
    try:
        avatar = prepare_avatar(bundle, frames, boxes, found, batch_size=8)
        assert counts == {"encode": 4, "decode": 0, "parse": 2}  # 2 faces x (masked, ref)
        clip_a = whisper_features(bundle, _speech(0.3, 1), fps=25)
        clip_b = whisper_features(bundle, _speech(0.2, 2), fps=30000 / 1001)
        faces_a = generate(bundle, avatar, clip_a, batch_size=4)
        faces_b = generate(bundle, avatar, clip_b, batch_size=4)
        again = generate(bundle, avatar, clip_a, batch_size=4)
        rebatched = generate(bundle, avatar, clip_a, batch_size=3)
        with_blend_settings(avatar, AvatarSettings(parsing_mode="raw", blur_ratio=0.1))
    finally:
        del vae.encode, vae.decode, parser.forward
    assert counts["encode"] == 4 and counts["parse"] == 2               # nothing recomputed
    n_face = lambda t: int(found[frame_schedule(3, t)].sum())         # noqa: E731
    assert len(clip_b.features) == math.floor(0.2 * 30000 / 1001)
    assert counts["decode"] == 3 * n_face(7) + n_face(len(clip_b.features))
    assert torch.equal(faces_a, again)  # deterministic
    assert (faces_a.int() - rebatched.int()).abs().max() <= 1  # batching: rounding only
    assert faces_b.shape[0] == len(clip_b.features)


def test_seeded_latents_are_reproducible_and_batch_independent(bundle, source):
    frames, boxes, found = source
    mean = prepare_avatar(bundle, frames, boxes, found).latents
    a = prepare_avatar(bundle, frames, boxes, found, settings=AvatarSettings(seed=7), batch_size=1).latents
    b = prepare_avatar(bundle, frames, boxes, found, settings=AvatarSettings(seed=7), batch_size=8).latents
    assert torch.allclose(a, b, atol=1e-6)
    assert not torch.allclose(a[0], mean[0])
    assert torch.equal(a[1], torch.zeros_like(a[1]))  # faceless frames are not encoded


def test_no_face_anywhere_is_an_actionable_error(bundle, source):
    frames, boxes, _found = source
    with pytest.raises(NoFaceError, match="no face"):
        prepare_avatar(bundle, frames, boxes, [False, False, False])


def test_prepare_from_landmarks_with_bbox_shift(bundle, source):
    frames, boxes, found = source
    lms = np.stack([_landmarks(72, 80, 40, 50), np.full((68, 2), np.nan), _landmarks(70, 82, 38, 50)])
    avatar = prepare_avatar(bundle, frames, landmarks=lms, settings=AvatarSettings(bbox_shift=3))
    assert avatar.face_found.tolist() == found.tolist()
    assert np.array_equal(avatar.boxes[found, 1], boxes[found, 1] + 6)   # top moves by 2*shift
    assert np.array_equal(avatar.boxes[found, 3], boxes[found, 3])       # chin + margin stays
