"""Avatars (MuseTalk's realtime path, spec §1.5) and the per-clip generate / blend steps.

:func:`prepare_avatar` does everything that depends only on the source frames, once:
crop boxes, 256 crops, the 8-channel VAE latents (masked | reference), the BiSeNet
parsing maps and the feathered blend masks. Any number of audio clips then reuse it:
:func:`generate` runs only UNet + VAE decode per output frame, :func:`blend` only resizes
and composites. :func:`with_blend_settings` re-derives the masks from the cached parsing
maps (new mode / cheek widths / boundary / feathering) without running a network.

Output frame ``t`` uses source frame ``schedule[t]``, the reference's ping-pong cycle
``0..N-1, N-1..0`` repeated, so a short video covers long audio without a jump.
Source frames without a face (bug B2 in the reference drops or desynchronises them)
keep their slot: they are neither encoded nor generated and come out unchanged.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from ..core.choices import PARSING_MODES
from ..core.errors import NoFaceError, ShapeError, TalkingHeadError
from ..core.runtime import CPU, RunContext
from ..core.timeline import mirror_indices
from ..core.types import AudioFeatures, ModelBundle
from ..face import to_ibug68
from . import blending as B
from .crop import CROP_SIZE, crop_face, face_boxes
from .latents import decode_latents, encode_latents, unet_step



@dataclass
class Avatar:
    """Cached per-source-frame material (CPU). See the module docstring.

    frames (N,H,W,3) uint8 RGB; boxes (N,4) int32 incl. extra_margin; face_found (N,);
    crops (N,256,256,3) uint8; latents (N,8,32,32) float32; crop_boxes (N,4) int32;
    parsing (N,512,512) uint8 class maps; alphas: per frame a (crop_h, crop_w) uint8
    feathered mask over its crop box (None where no face); settings: the mask options.
    """

    frames: np.ndarray
    boxes: np.ndarray
    face_found: np.ndarray
    crops: np.ndarray
    latents: torch.Tensor
    crop_boxes: np.ndarray
    parsing: np.ndarray
    alphas: list
    settings: "AvatarSettings" = None

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    def __repr__(self) -> str:
        h, w = self.frames.shape[1:3]
        return (f"Avatar({len(self)} frames {w}x{h}, {int(self.face_found.sum())} with a face, "
                f"{self.settings.parsing_mode if self.settings else ''})")


def frame_schedule(n_source: int, n_out: int) -> np.ndarray:
    """Source frame per output frame: the ping-pong cycle of the reference."""
    return mirror_indices(np.arange(n_out), n_source)


def as_uint8_frames(frames) -> np.ndarray:
    """(N,H,W,3) float 0..1 (ComfyUI IMAGE) or uint8 -> uint8 numpy."""
    x = frames.detach().cpu().numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ShapeError(f"frames must be (N, H, W, 3) RGB images, got shape {x.shape}")
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    return np.clip(np.rint(x.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class AvatarSettings:
    """MuseTalk's source-side choices.

    parsing_mode: which parsed regions are regenerated (jaw: mouth and jaw, v1.5's
    default; raw: the parsed face; neck: adds the neck). left/right_cheek_width: pixels
    of the 512 parsing map, from its centre, where the jaw mask keeps its full width.
    upper_boundary_ratio: rows of the blend square above this fraction stay the original.
    blur_ratio: feathering (Gaussian kernel) relative to the blend square. expand: blend
    square size relative to the face box. bbox_shift / extra_margin: move the mouth region
    (+ lower, - higher) / extend the box below the chin (pixels). seed: sample the VAE
    posterior with this seed instead of using its mean (None: the mean, deterministic).
    """

    parsing_mode: str = "jaw"
    left_cheek_width: int = 90
    right_cheek_width: int = 90
    upper_boundary_ratio: float = 0.5
    blur_ratio: float = 0.05
    expand: float = 1.5
    bbox_shift: int = 0
    extra_margin: int = 10
    seed: Optional[int] = None

    def __post_init__(self):
        if self.parsing_mode not in PARSING_MODES:
            raise TalkingHeadError(f"unknown parsing mode {self.parsing_mode!r}; choose one of "
                                   f"{', '.join(PARSING_MODES)}")
        for name in ("upper_boundary_ratio", "blur_ratio"):
            value = float(getattr(self, name))
            if not 0.0 <= value <= 1.0:
                raise TalkingHeadError(f"{name} must be between 0 and 1, got {value}")


def _masks(avatar_parsing, boxes, crop_boxes, found, st: AvatarSettings) -> list:
    out = []
    for i in range(len(found)):
        if not found[i]:
            out.append(None)
            continue
        m512 = B.mode_mask(avatar_parsing[i], st.parsing_mode, st.left_cheek_width,
                           st.right_cheek_width)
        out.append(B.feathered_mask(m512, boxes[i], crop_boxes[i], st.upper_boundary_ratio,
                                    st.blur_ratio))
    return out


def prepare_avatar(bundle: ModelBundle, frames, boxes=None, face_found=None, landmarks=None,
                   settings: AvatarSettings = AvatarSettings(), ctx: RunContext = CPU,
                   batch_size: int = 8) -> Avatar:
    """Everything that depends only on the source frames, computed once.

    frames: (N,H,W,3) float 0..1 or uint8 RGB; boxes: (N,4) from :func:`crop.face_boxes`,
    or pass ``landmarks`` (N,68,2) instead (boxes then use the settings' bbox_shift and
    extra_margin); face_found: (N,) bool (frames without a face pass through).
    """
    st = settings
    frames = as_uint8_frames(frames)
    n = frames.shape[0]
    if boxes is None:
        if landmarks is None:
            raise ShapeError("prepare_avatar needs face boxes or 68-point landmarks")
        boxes, face_found = face_boxes(landmarks, frames.shape[1:3], st.bbox_shift, st.extra_margin,
                                       face_found=face_found)
    boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4).copy()
    if boxes.shape[0] != n:
        raise ShapeError(f"got {boxes.shape[0]} face boxes for {n} frames")
    h, w = frames.shape[1:3]  # manual boxes may overhang: paste-back needs them inside
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
    found = np.ones(n, bool) if face_found is None else np.asarray(face_found, bool).copy()
    found &= (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    if not found.any():
        raise NoFaceError("MuseTalk found no face in any source frame. Use a portrait where "
                          "the face is visible and frontal, or draw a manual face box.")
    crops = np.zeros((n, CROP_SIZE, CROP_SIZE, 3), np.uint8)
    crop_boxes = np.zeros((n, 4), np.int32)
    latents = torch.zeros((n, 8, CROP_SIZE // 8, CROP_SIZE // 8))
    parsing = np.zeros((n, B.PARSE_SIZE, B.PARSE_SIZE), np.uint8)
    idx = np.flatnonzero(found)
    gen = torch.Generator().manual_seed(int(st.seed)) if st.seed is not None else None
    for i in idx:
        crops[i] = crop_face(frames[i], boxes[i])
        crop_boxes[i] = B.blend_crop_box(boxes[i], st.expand)
    vae, parser = bundle["vae"], bundle["parsing"]
    for done in range(0, len(idx), batch_size):
        ctx.check()
        sel = idx[done:done + batch_size]
        with ctx.inside(getattr(vae, "encoder", vae), parser):
            latents[sel] = encode_latents(vae, crops[sel], generator=gen)
            large = [B.crop_padded(frames[i], crop_boxes[i]) for i in sel]
            parsing[sel] = B.parse_faces(parser, large, batch_size=len(sel))
        ctx.report(min(done + batch_size, len(idx)), len(idx))
    alphas = _masks(parsing, boxes, crop_boxes, found, st)
    return Avatar(frames=frames, boxes=boxes.astype(np.int32), face_found=found, crops=crops,
                  latents=latents, crop_boxes=crop_boxes, parsing=parsing, alphas=alphas,
                  settings=st)


def avatar_from_source(bundle: ModelBundle, source, settings: AvatarSettings = AvatarSettings(),
                       ctx: RunContext = CPU, batch_size: int = 8) -> Avatar:
    """:func:`prepare_avatar` for a registered SOURCE: its landmarks as iBUG 68 points; frames
    whose crop was only reused from a neighbour (no face seen there) pass through unchanged."""
    lm68 = to_ibug68(source.landmarks.numpy(), source.landmark_scheme)
    seen = np.array([k != "reused" for k in (source.kinds or ["detected"] * len(source))])
    return prepare_avatar(bundle, source.frames, landmarks=lm68, face_found=seen,
                          settings=settings, ctx=ctx, batch_size=batch_size)


def with_blend_settings(avatar: Avatar, settings: AvatarSettings) -> Avatar:
    """A copy of ``avatar`` with masks rebuilt from the cached parsing (no networks) for
    new mask ``settings`` (parsing mode, cheek widths, boundary, blur)."""
    alphas = _masks(avatar.parsing, avatar.boxes, avatar.crop_boxes, avatar.face_found, settings)
    return dataclasses.replace(avatar, alphas=alphas, settings=settings)


def _feature_tensor(features) -> torch.Tensor:
    f = features.features if isinstance(features, AudioFeatures) else torch.as_tensor(features)
    if f.dim() != 3:
        raise ShapeError(f"MuseTalk needs whisper features (T, tokens, D), got {tuple(f.shape)}; "
                         "use the MuseTalk audio-features node")
    return f


def generate(bundle: ModelBundle, avatar: Avatar, features, ctx: RunContext = CPU,
             batch_size: int = 8) -> torch.Tensor:
    """Generated 256x256 faces (T,256,256,3) uint8 RGB, one per audio frame.

    Only UNet + VAE decode run. Faceless source slots return the source crop (zeros).
    """
    feats = _feature_tensor(features)
    t_out = feats.shape[0]
    schedule = frame_schedule(len(avatar), t_out)
    faces = torch.from_numpy(avatar.crops[schedule].copy())
    todo = np.flatnonzero(avatar.face_found[schedule])
    unet, vae = bundle["unet"], bundle["vae"]
    for done in range(0, len(todo), max(1, int(batch_size))):
        ctx.check()
        ts = todo[done:done + batch_size]
        with ctx.inside(unet, getattr(vae, "decoder", vae)):
            pred = unet_step(unet, avatar.latents[schedule[ts]], feats[ts])
            faces[ts] = decode_latents(vae, pred)
        ctx.report(min(done + batch_size, len(todo)), len(todo))
    return faces


def blend(avatar: Avatar, faces, return_masks: bool = False, ctx: RunContext = CPU):
    """Composite generated faces into the source frames -> (T,H,W,3) uint8 RGB tensor.

    With ``return_masks`` also the full-frame alphas (T,H,W) float32 0..1, so a generic
    blend node can redo the composite from :func:`placed_frames` and these masks.
    """
    faces = as_uint8_frames(faces)
    schedule = frame_schedule(len(avatar), faces.shape[0])
    out = np.empty((faces.shape[0],) + avatar.frames.shape[1:], np.uint8)
    for t, s in enumerate(schedule):
        if t % 8 == 0:
            ctx.check()
        if avatar.face_found[s]:
            out[t] = B.composite(avatar.frames[s], faces[t], avatar.boxes[s],
                                 avatar.crop_boxes[s], avatar.alphas[s])
        else:
            out[t] = avatar.frames[s]
    frames = torch.from_numpy(out)
    return (frames, blend_masks(avatar, faces.shape[0])) if return_masks else frames


def blend_masks(avatar: Avatar, n_out: int) -> torch.Tensor:
    """Full-frame feathered alphas (T,H,W) float32 0..1 for output frames 0..T-1."""
    h, w = avatar.frames.shape[1:3]
    schedule = frame_schedule(len(avatar), n_out)
    masks = torch.zeros((n_out, h, w))
    for t, s in enumerate(schedule):
        if avatar.face_found[s]:
            a = B.full_frame_alpha(avatar.alphas[s], avatar.crop_boxes[s], (h, w))
            masks[t] = torch.from_numpy(a).float() / 255.0
    return masks


def placed_frames(avatar: Avatar, faces) -> torch.Tensor:
    """Source frames with the generated faces resized hard into their boxes (no alpha)."""
    faces = as_uint8_frames(faces)
    schedule = frame_schedule(len(avatar), faces.shape[0])
    out = np.stack([B.place_face(avatar.frames[s], faces[t], avatar.boxes[s])
                    if avatar.face_found[s] else avatar.frames[s]
                    for t, s in enumerate(schedule)])
    return torch.from_numpy(out)
