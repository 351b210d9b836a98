"""MuseTalk v1.5: lip-sync a portrait video (or image) to speech.

    python -m pipelines render musetalk --source clip.mp4 --audio speech.wav --out out.mp4
"""
from __future__ import annotations

import numpy as np

from ..core import audio as audio_ops
from . import common as cli_common, models
from ..core import media, runtime
from . import sources as source_ops


def add_arguments(p) -> None:
    cli_common.add_source_args(p)
    p.add_argument("--audio", required=True, help="speech audio (or a video with sound)")
    p.add_argument("--bbox-shift", type=int, default=0, help="move the mouth region (+ lower, - higher)")
    p.add_argument("--extra-margin", type=int, default=10)
    p.add_argument("--parsing-mode", default="jaw", choices=("jaw", "raw", "neck"))
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seed", type=int, default=None,
                   help="sample the VAE latents with this seed (default: the posterior mean, deterministic)")


def _chunks(avatar, bundle, feats, batch: int, check_interrupt):
    """Generate and blend a few frames at a time, so memory does not grow with length.
    Each chunk gets the avatar frames its output frames use (the source's back-and-forth
    cycle continues across chunks)."""
    from ..musetalk import blend, generate
    from ..musetalk.avatar import frame_schedule

    schedule = frame_schedule(len(avatar), len(feats))
    step = max(8, batch)
    for s in range(0, len(feats), step):
        part = type(feats)(feats.features[s:s + step], feats.kind, feats.fps, feats.seconds)
        sub = _subset(avatar, schedule[s:s + step])
        faces = generate(bundle, sub, part, batch_size=batch, check_interrupt=check_interrupt)
        yield np.asarray(blend(sub, faces))


def _subset(avatar, schedule):
    """An avatar whose frames are ``schedule`` in order (so its own cycle is the identity)."""
    import dataclasses

    s = np.asarray(schedule)
    return dataclasses.replace(
        avatar, frames=avatar.frames[s], boxes=avatar.boxes[s], face_found=avatar.face_found[s],
        crops=avatar.crops[s], latents=avatar.latents[s], crop_boxes=avatar.crop_boxes[s],
        parsing=avatar.parsing[s], alphas=[avatar.alphas[i] for i in s])


def run(args) -> int:
    from ..musetalk import avatar_from_source, whisper_features

    roots = cli_common.roots(args)
    device, dtype = cli_common.device_dtype(args)
    bundle = models.load_musetalk_bundle(roots, args.download, device, dtype)
    detector = source_ops.make_detector("mediapipe", roots, args.download)
    frames, fps, _, _ = cli_common.read_source(args.source, args.max_frames)
    source = source_ops.register_source(frames, fps, detector, None,
                                        manual_box=source_ops.parse_box(args.manual_box),
                                        progress=cli_common.progress("faces"),
                                        check_interrupt=runtime.check_interrupt)
    avatar = avatar_from_source(bundle, source, parsing_mode=args.parsing_mode, bbox_shift=args.bbox_shift,
                                extra_margin=args.extra_margin, seed=args.seed, batch_size=args.batch_size,
                                progress=cli_common.progress("avatar"), check_interrupt=runtime.check_interrupt)
    speech = cli_common.read_speech(args.audio, 16000)
    seconds = len(speech) / 16000
    n_frames = media.frames_for_duration(seconds, fps)
    feats = whisper_features(bundle, speech, fps, n_frames=n_frames, check_interrupt=runtime.check_interrupt)
    info = media.probe(args.audio)
    rate = info.sample_rate or 16000
    audio = media.read_audio(args.audio, sample_rate=rate, mono=False)
    bar = cli_common.progress("lip-sync")
    done = {"n": 0}

    def frames_out():
        for block in _chunks(avatar, bundle, feats, args.batch_size, runtime.check_interrupt):
            done["n"] += len(block)
            bar(done["n"], n_frames)
            yield block

    media.write_video(args.out, frames_out(), fps, audio_ops.fit_length(audio, len(speech) * rate // 16000),
                      rate, crf=args.crf, preset=args.preset, check_interrupt=runtime.check_interrupt)
    print(args.out)
    return 0
