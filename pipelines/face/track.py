"""Face registration of an image or a video: one crop per frame, never giving up on a frame.

Per frame the detector is run (inside the previous frame's crop first, then on the whole
frame; only inside the manual box when one is given). Frames then get a crop rectangle:

  detected  landmarks found: the official landmark crop
  eyes      only the eyes were found (or given): eye-only alignment
  reused    nothing found: the nearest good frame's crop (the previous one; the next one
            for leading misses)
  manual    no face in any frame: the user's ``manual_box`` (rotated by ``manual_eyes``)
  fallback  no face anywhere, no box, ``whole_image_fallback``: a centred square

A video's rectangles are then smoothed over time (centred moving average of centre, log
side and angle), so the crop does not jitter. Only a source without a usable face in any
frame and without a manual box is an error (NoFaceError).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..core.errors import MediaError, NoFaceError
from ..core.runtime import CPU, RunContext
from .crop import (
    RENDER_DSIZE, RENDER_SCALE, RENDER_VY, CropRect, crop_matrices, rect_from_box, rect_from_eyes,
    rect_from_landmarks, transform_points, warp_crop, whole_image_rect)
from .detect import FaceDetector, FaceObservation, detect_in_frame, square_region
from .frames import FrameReader
from .schemes import MEDIAPIPE478, SCHEMES, crop_points, to_ibug68
from .smoothing import smooth_rects

KINDS = ("detected", "eyes", "reused", "manual", "fallback")
# the search region around a manual box, in box sides, and around manual eyes, in eye
# distances
MANUAL_BOX_SEARCH = 2.0
MANUAL_EYES_SEARCH = 4.0

# MediaPipe's 478 points of a frontal face in normalised render-crop coordinates
# (x, y, z; the format Ditto's eye features read). Measured once on the fixture
# portrait; it stands in for landmarks on frames whose crop came from eyes, a manual box
# or the fallback, so every frame carries a plausible face.
TEMPLATE_FILE = os.path.join(os.path.dirname(__file__), "data", "mediapipe478_template.npy")


def template478() -> np.ndarray:
    return np.load(TEMPLATE_FILE).astype(np.float32)


@dataclass
class FaceTrack:
    """Registration result of N frames (H x W). Matrices are float32 3x3 (golden layout);
    ``crop_to_frame`` maps 512-crop pixel centres to frame pixels."""

    frame_size: tuple            # (H, W)
    scheme: str                  # layout of ``landmarks``
    landmarks: np.ndarray        # (N,K,2) float32 frame pixels (NaN where unknown)
    rects: np.ndarray            # (N,4) centre x, centre y, side, angle (after smoothing)
    frame_to_crop: np.ndarray    # (N,3,3)
    crop_to_frame: np.ndarray    # (N,3,3)
    crops512: np.ndarray         # (N,512,512,3) uint8
    face_found: np.ndarray       # (N,) bool: the detector saw the face in this frame
    kinds: list                  # per frame, one of KINDS
    mesh478_crop: Optional[np.ndarray] = None  # (N,478,3) normalised crop coords
    notes: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.kinds)

    def landmarks68(self) -> np.ndarray:
        """(N,68,2) iBUG points in frame pixels (MuseTalk's box)."""
        return to_ibug68(self.landmarks, self.scheme)



@dataclass(frozen=True)
class TrackSettings:
    """How faces are found and cropped.

    smooth_window: frames averaged for a video's crop (1 = off).
    manual_box: (x, y, w, h) pixels around the face (brows to chin), or (N,4) per frame;
        detection is then only tried inside it, and it places the crop when no frame has a
        detectable face. manual_eyes: ((x, y) image-left eye, (x, y) image-right eye), or
        (N,2,2); rotates the manual crop, or alone gives an eye-only crop.
    scale / vx_ratio / vy_ratio: the crop's size and offset (LivePortrait's defaults).
    whole_image_fallback: no face anywhere and no box: a centred square instead of an error.
    track_regions: search the previous frame's crop first (videos).
    """

    smooth_window: int = 5
    manual_box: object = None
    manual_eyes: object = None
    scale: float = RENDER_SCALE
    vx_ratio: float = 0.0
    vy_ratio: float = RENDER_VY
    rotate: bool = True
    whole_image_fallback: bool = False
    track_regions: bool = True


def register_faces(frames, detector: Optional[FaceDetector],
                   settings: TrackSettings = TrackSettings(), ctx: RunContext = CPU) -> FaceTrack:
    """Register the face in every frame of ``frames`` ((N,H,W,3) float 0..1 or uint8).
    ``ctx`` is checked and told the progress once per frame."""
    st = settings
    images = FrameReader(frames)  # converts frame by frame: no full uint8 copy of a video
    n, (h, w) = len(images), images.size
    boxes = _per_frame(st.manual_box, n, (4,), "manual_box", "(x, y, w, h)")
    eyes = _per_frame(st.manual_eyes, n, (2, 2), "manual_eyes", "((x, y), (x, y))")
    _check_boxes(boxes, h, w)
    scheme = detector.scheme if detector is not None else MEDIAPIPE478.name
    crop_kw = dict(scale=st.scale, vx_ratio=st.vx_ratio, vy_ratio=st.vy_ratio)

    found: list = [None] * n
    rects: list = [None] * n
    kinds = ["reused"] * n
    for i in range(n):
        ctx.check()
        if detector is not None:
            found[i] = _detect(detector, images[i], rects[i - 1] if i else None,
                               None if boxes is None else boxes[i],
                               None if eyes is None else eyes[i], st.track_regions)
        if found[i] is not None:
            rects[i], kinds[i] = _rect_of(found[i], crop_kw)
        ctx.report(i + 1, n)

    notes: list = []
    _drop_stray_eye_frames(rects, kinds, found, notes)
    good = [i for i in range(n) if rects[i] is not None]
    if not good:
        rects, kinds = _without_detection(n, h, w, boxes, eyes, st.whole_image_fallback,
                                          crop_kw, notes)
    else:
        source_of = _fill_gaps(rects, kinds)
        missing = sum(k == "reused" for k in kinds)
        if missing:
            notes.append(f"no face in {missing} of {n} frames; reused the nearest "
                         "detected frame's crop there")
    if "eyes" in kinds:
        notes.append(f"{kinds.count('eyes')} frame(s) aligned on the eyes only")

    table = np.stack([r.as_array() for r in rects])
    if n > 1 and st.smooth_window > 1:
        table = smooth_rects(table, st.smooth_window)
    mats = [crop_matrices(CropRect(np.float32(t[:2]), np.float32(t[2]), float(t[3])),
                          RENDER_DSIZE, st.rotate) for t in table]
    o2c = np.stack([m[0] for m in mats])
    c2o = np.stack([m[1] for m in mats])
    crops = np.stack([warp_crop(images[i], o2c[i]) for i in range(n)])

    source = {i: i for i in range(n)} if not good else source_of
    landmarks, mesh = _landmarks(found, source, kinds, o2c, c2o, scheme)
    face_found = np.array([found[i] is not None for i in range(n)], bool)
    return FaceTrack((h, w), scheme, landmarks, table.astype(np.float32), o2c, c2o, crops,
                     face_found, kinds, mesh, notes)


# ---------------------------------------------------------------------------------------


def _per_frame(value, n, shape, name, form):
    if value is None:
        return None
    arr = np.asarray(value, np.float64)
    if arr.shape == shape:
        arr = np.broadcast_to(arr, (n,) + shape)
    if arr.shape != (n,) + shape or not np.isfinite(arr).all():
        raise MediaError(f"{name} must be {form} in pixels (or one per frame, {n} of them); "
                         f"got shape {np.shape(value)}")
    return arr


def _check_boxes(boxes, h, w):
    if boxes is None:
        return
    for x, y, bw, bh in boxes:
        if bw <= 1 or bh <= 1 or x >= w or y >= h or x + bw <= 0 or y + bh <= 0:
            raise MediaError(f"manual_box ({x:g}, {y:g}, {bw:g}, {bh:g}) is empty or outside "
                             f"the {w}x{h} frame; give x, y, width, height in pixels")


def _detect(detector, image, previous: Optional[CropRect], box, eyes, track_regions):
    if box is not None:  # search only where the user pointed
        centre = box[:2] + box[2:] / 2
        return detect_in_frame(detector, image,
                               square_region(centre, max(box[2:]) * MANUAL_BOX_SEARCH))
    if eyes is not None:
        side = np.linalg.norm(eyes[1] - eyes[0]) * MANUAL_EYES_SEARCH
        return detect_in_frame(detector, image, square_region(eyes.mean(0), side))
    if track_regions and previous is not None:
        # the previous crop (about 2.3 face sizes) is a good, small search window
        found = detect_in_frame(detector, image, square_region(previous.center, previous.size))
        if found is not None:
            return found
    return detect_in_frame(detector, image)


def _rect_of(found: FaceObservation, crop_kw):
    if found.landmarks is None:
        return rect_from_eyes(found.eyes, **crop_kw), "eyes"
    pts, scheme = crop_points(found.landmarks, SCHEMES[found.scheme])
    return rect_from_landmarks(pts, scheme, **crop_kw), "detected"


def _drop_stray_eye_frames(rects, kinds, found, notes):
    """An eye-only result far from the nearest landmark frame's crop (centre off by half
    a side, or side off by 1.5x) is a detector false positive: treat it as a miss."""
    anchors = [i for i, k in enumerate(kinds) if k == "detected"]
    dropped = 0
    for i, kind in enumerate(kinds):
        if kind != "eyes" or not anchors:
            continue
        near = rects[min(anchors, key=lambda j: abs(j - i))]
        ratio = float(rects[i].size / near.size)
        if (np.linalg.norm(rects[i].center - near.center) > 0.5 * near.size
                or not 2 / 3 < ratio < 1.5):
            rects[i], found[i], kinds[i] = None, None, "reused"
            dropped += 1
    if dropped:
        notes.append(f"ignored {dropped} eye-only detection(s) far from the face track")


def _fill_gaps(rects, kinds) -> dict:
    """Frames without a rectangle take the previous good one (the next for leading
    misses). Returns frame -> frame whose observation it shows."""
    n = len(rects)
    source, last = {}, None
    first = next(i for i in range(n) if rects[i] is not None)
    for i in range(n):
        if rects[i] is not None:
            last = i
        src = last if last is not None else first
        source[i] = src
        if rects[i] is None:
            rects[i] = rects[src]
    return source


def _without_detection(n, h, w, boxes, eyes, whole_image_fallback, crop_kw, notes):
    if boxes is not None:
        notes.append("no face detected; the crop follows the manual box")
        return ([rect_from_box(boxes[i], eyes=None if eyes is None else eyes[i], **crop_kw)
                 for i in range(n)], ["manual"] * n)
    if eyes is not None:
        notes.append("no face detected; the crop is aligned on the manual eye points")
        return [rect_from_eyes(eyes[i], **crop_kw) for i in range(n)], ["eyes"] * n
    if whole_image_fallback:
        notes.append("WARNING: no face found in any frame; using the whole image as the face "
                     "crop (results will be poor; draw a manual_box instead)")
        return [whole_image_rect(h, w)] * n, ["fallback"] * n
    raise NoFaceError(
        f"no face was found in any of the {n} frame(s) ({w}x{h}). Draw a box around the "
        "face with the Face Register node's `manual_box` input (x, y, width, height in "
        "pixels, eyebrows to chin), optionally with `manual_eyes`, or crop the image "
        "closer to the face.")


def _landmarks(found, source, kinds, o2c, c2o, scheme):
    """Per-frame landmarks in frame pixels and the MediaPipe mesh in crop coordinates."""
    n = len(kinds)
    count = SCHEMES[scheme].count if scheme in SCHEMES else 0
    have_template = scheme == MEDIAPIPE478.name
    template = template478() if have_template else None
    landmarks = np.full((n, count, 2), np.nan, np.float32)
    mesh = np.zeros((n, 478, 3), np.float32)
    mesh_known = np.zeros(n, bool)
    for i in range(n):
        obs = found[source[i]]
        if obs is not None and obs.landmarks is not None and kinds[i] in ("detected", "reused"):
            landmarks[i] = obs.landmarks[:, :2]
        elif template is not None:
            landmarks[i] = transform_points(template[:, :2] * RENDER_DSIZE - 0.5, c2o[i])
        frame_mesh = _frame_mesh(obs) if kinds[i] in ("detected", "reused", "eyes") else None
        if frame_mesh is not None:
            crop_scale = np.sqrt(abs(np.linalg.det(o2c[i][:2, :2].astype(np.float64))))
            mesh[i, :, :2] = (transform_points(frame_mesh[:, :2], o2c[i]) + 0.5) / RENDER_DSIZE
            mesh[i, :, 2] = frame_mesh[:, 2] * crop_scale / RENDER_DSIZE
            mesh_known[i] = True
        elif template is not None:
            mesh[i], mesh_known[i] = template, True
    return landmarks, (mesh if mesh_known.all() else None)


def _frame_mesh(obs: Optional[FaceObservation]):
    if obs is None or (obs.landmarks is None and obs.mesh478 is None):
        return None
    if obs.mesh478 is not None:
        return obs.mesh478
    if obs.scheme == MEDIAPIPE478.name:
        depth = obs.depth if obs.depth is not None else np.zeros(len(obs.landmarks))
        return np.concatenate([obs.landmarks[:, :2], depth[:, None]], 1)
    return None
