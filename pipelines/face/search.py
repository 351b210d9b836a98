"""The wider search for faces the landmarker misses on the whole image: small, masked
(cloth over nose and mouth, a hood over the forehead) or stylized faces.

FaceLandmarker runs its own short-range BlazeFace on a 128x128 copy of the image: a face
that fills less than about a fifth of it, or that wears a mask, is not found, although
the landmark model itself places the eyes of a masked face well once it is shown a view
where the face is large (up to ~6 eye distances across). So the search

1. collects BlazeFace boxes on the whole image, then on overlapping square tiles of
   decreasing size (each scale searched only while nothing is confirmed: a plain small
   face costs what it did before);
2. shows the landmarker a view around each box, largest box first (a talking-head source
   has one dominant face; false boxes are mostly small), at two region sizes;
3. accepts a landmark face only when it agrees with the box: same size, and the two
   models put the eyes at the same place. The landmarker alone invents faces in small
   textured patches (a badge, a cloth fold), and BlazeFace alone reports faces in pure
   noise at 0.5-0.7, but the two seldom agree on a false face;
4. looks again at an upright view: a visible face's mesh barely moves (<= 1.2 % of its
   size), and that look is kept. A masked face's mesh moves 3-14 %: the landmarker
   guesses the hidden chin anew in every view, 4-16 px of a 512 crop (placed from the
   whole mesh), more when the face is rolled; then the meshes of four upright views of
   different sizes are averaged, which stays within ~9 px;
5. falls back to BlazeFace's eye keypoints alone (eye-only alignment) when the
   landmarker never agrees but one box is confident and has plausible eyes.

Only pure functions of the image and two callables, so the rules are testable without
models.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Iterator, List, Optional, Tuple

import cv2
import numpy as np

from .detect import FaceObservation

# (box (x0, y0, x1, y1), eyes (2,2) image-left/right, score), in image pixels
Candidate = Tuple[np.ndarray, np.ndarray, float]
Landmarker = Callable[[np.ndarray], Optional[FaceObservation]]
BoxFinder = Callable[[np.ndarray, Tuple[int, int]], List[Candidate]]


@dataclass(frozen=True)
class SearchSettings:
    """How far the search goes (see the module doc for why each rule exists).

    tile_fractions: tile sides as fractions of the image's long side; BlazeFace's 128x128
        input needs the face to cover about a fifth of what it is shown.
    region_scales: landmarker views around a box, in box sides (the box spans brows to
        chin; views over ~3 box sides are too wide for a masked face).
    max_tries: boxes shown to the landmarker per image at most (each view ~10 ms).
    face_per_box: accepted ratio of the landmark face's extent to the box side.
    eye_agreement: largest accepted distance between the landmarker's and BlazeFace's
        eyes, in box sides (true faces: ~0.03; invented ones: 0.25 and more).
    refine_scales: the upright views (in box sides) whose meshes are averaged; the first
        alone when it moves less than ``steady`` x the face's size from the first look.
    eyes_only_*: when BlazeFace's eyes alone are trusted (it reports faces in pure noise
        at 0.5-0.7; its eyes on a real face are 0.25-0.7 box sides apart and near level).
    """

    tile_fractions: Tuple[float, ...] = (0.6, 0.4, 0.25, 0.15)
    min_tile: int = 96
    region_scales: Tuple[float, ...] = (2.2, 1.6)
    view_side: int = 256
    max_tries: int = 8
    nms_iou: float = 0.4
    face_per_box: Tuple[float, float] = (0.6, 1.7)
    eye_agreement: float = 0.15
    refine_scales: Tuple[float, ...] = (1.6, 1.9, 2.2, 2.6)
    steady: float = 0.02
    eyes_only_min_score: float = 0.75
    eyes_only_max_roll_deg: float = 50.0
    eyes_only_distance_per_box: Tuple[float, float] = (0.25, 0.7)


def search_face(image: np.ndarray, landmarks: Landmarker, boxes: BoxFinder,
                settings: SearchSettings = SearchSettings()) -> Optional[FaceObservation]:
    """The largest face that BlazeFace boxes and the landmarker agree on, else an
    eye-only observation from a confident box, else None. ``landmarks(view)`` is the
    landmarker on a contiguous RGB uint8 image; ``boxes(tile, (x, y))`` BlazeFace on a
    tile, returning candidates already shifted by the tile's origin."""
    st = settings
    seen: List[Candidate] = []
    tried: List[np.ndarray] = []
    for tiles in _scales(image.shape[:2], st):
        if len(tried) >= st.max_tries:
            break
        found: List[Candidate] = []
        for x, y, side in tiles:
            found.extend(boxes(np.ascontiguousarray(image[y:y + side, x:x + side]), (x, y)))
        seen.extend(found)
        for box, eyes, score in _largest_first(_suppress(found, st.nms_iou)):
            if len(tried) >= st.max_tries:
                break
            if any(_iou(box, other) > st.nms_iou for other in tried):
                continue
            tried.append(box)
            face = _confirm(image, box, eyes, landmarks, st)
            if face is not None:
                return _refine(image, face, box, landmarks, st)
    return _eyes_only(seen, st)


# -- where to look ---------------------------------------------------------------------


def _scales(shape, st: SearchSettings) -> Iterator[List[Tuple[int, int, int]]]:
    """Per scale, the square tiles (x, y, side): first the whole image, then tiles
    overlapping by half, largest first."""
    h, w = shape
    yield [(0, 0, max(h, w))]
    for fraction in st.tile_fractions:
        side = max(int(max(h, w) * fraction), st.min_tile)
        if side >= max(h, w):
            continue
        yield [(int(x), int(y), side) for y in _starts(h, side) for x in _starts(w, side)]


def _starts(length: int, side: int):
    if length <= side:
        return [0]
    count = int(np.ceil((length - side) / (side / 2))) + 1
    return np.linspace(0, length - side, count).round().astype(int)


def _area(box) -> float:
    return float(max(box[2] - box[0], 0) * max(box[3] - box[1], 0))


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = _area(a) + _area(b) - inter
    return inter / union if union > 0 else 0.0


def _suppress(cands: List[Candidate], iou: float) -> List[Candidate]:
    """Non-maximum suppression by score: overlapping tiles report one face many times."""
    kept: List[Candidate] = []
    for cand in sorted(cands, key=lambda c: -c[2]):
        if all(_iou(cand[0], k[0]) <= iou for k in kept):
            kept.append(cand)
    return kept


def _largest_first(cands: List[Candidate]) -> List[Candidate]:
    return sorted(cands, key=lambda c: -_area(c[0]))


# -- confirming a box ------------------------------------------------------------------


def _view_matrix(centre, side: float, out: int, angle: float = 0.0) -> np.ndarray:
    """3x3 map from image pixels to an ``out`` x ``out`` view of the square of ``side``
    around ``centre``, turned by ``angle`` radians (the view shows it upright)."""
    s = out / side
    c, n = math.cos(angle) * s, math.sin(angle) * s
    cx, cy = float(centre[0]), float(centre[1])
    half = (out - 1) / 2
    return np.array([[c, n, half - c * cx - n * cy],
                     [-n, c, half + n * cx - c * cy],
                     [0, 0, 1.0]])


def _look(image, landmarks: Landmarker, m: np.ndarray, out: int) -> Optional[FaceObservation]:
    view = cv2.warpAffine(image, m[:2], (out, out), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT)
    found = landmarks(np.ascontiguousarray(view))
    return None if found is None else found.transformed(np.linalg.inv(m))


def _extent(face: FaceObservation) -> float:
    """Side of the landmark face measured along its own eye line (roll-independent)."""
    d = face.eyes[1] - face.eyes[0]
    angle = math.atan2(float(d[1]), float(d[0]))
    c, s = math.cos(angle), math.sin(angle)
    p = face.landmarks[:, :2] @ np.array([[c, -s], [s, c]])
    return float(max(np.ptp(p[:, 0]), np.ptp(p[:, 1])))


def _agrees(face: FaceObservation, box, eyes, st: SearchSettings) -> bool:
    side = float(max(box[2] - box[0], box[3] - box[1], 1.0))
    low, high = st.face_per_box
    return (low <= _extent(face) / side <= high
            and float(np.abs(face.eyes - eyes).max()) <= st.eye_agreement * side)


def _confirm(image, box, eyes, landmarks: Landmarker, st: SearchSettings):
    centre = (box[:2] + box[2:]) / 2
    for scale in st.region_scales:
        side = float(max(box[2:] - box[:2])) * scale
        face = _look(image, landmarks, _view_matrix(centre, side, st.view_side), st.view_side)
        if face is not None and face.landmarks is not None and _agrees(face, box, eyes, st):
            return face
    return None


def _roll(eyes) -> float:
    d = np.asarray(eyes[1], np.float64) - eyes[0]
    return math.atan2(d[1], d[0])


def _refine(image, face: FaceObservation, box, landmarks: Landmarker, st: SearchSettings):
    """The mesh seen on an upright view when it matches the first look (a visible
    face); else the mean over upright views of ``refine_scales`` box sides (those that
    agree with the box); the first look if none does."""
    roll = _roll(face.eyes)
    centre = (box[:2] + box[2:]) / 2
    side = float(max(box[2:] - box[:2]))
    looks = []
    for scale in st.refine_scales:
        again = _look(image, landmarks, _view_matrix(centre, side * scale, st.view_side, roll),
                      st.view_side)
        if again is None or again.landmarks is None or not _agrees(again, box, face.eyes, st):
            continue
        looks.append(again)
        moved = float(np.abs(again.landmarks - face.landmarks).max())
        if len(looks) == 1 and moved <= st.steady * _extent(face):
            break
    return _average(looks) if looks else face


def _average(faces: List[FaceObservation]) -> FaceObservation:
    """One observation from several of the same face (same landmark layout)."""
    points = np.mean([f.landmarks for f in faces], 0).astype(np.float32)
    depth = None
    if all(f.depth is not None for f in faces):
        depth = np.mean([f.depth for f in faces], 0).astype(np.float32)
    # eyes are means of landmark subsets, so the mean of the eyes is the eyes of the mean
    return replace(faces[0], landmarks=points, depth=depth,
                   eyes=np.mean([f.eyes for f in faces], 0).astype(np.float32),
                   box=np.concatenate([points.min(0), points.max(0)]).astype(np.float32))


def _eyes_only(cands: List[Candidate], st: SearchSettings) -> Optional[FaceObservation]:
    for box, eyes, score in sorted(cands, key=lambda c: -c[2]):
        if _plausible_eyes(eyes, box, score, st):
            return FaceObservation("eyes", None, eyes.astype(np.float32),
                                   box.astype(np.float32), score)
    return None


def _plausible_eyes(eyes, box, score: float, st: SearchSettings) -> bool:
    d = eyes[1] - eyes[0]
    distance = float(np.hypot(*d))
    roll = abs(math.degrees(math.atan2(d[1], d[0])))
    low, high = st.eyes_only_distance_per_box
    return (score >= st.eyes_only_min_score and roll <= st.eyes_only_max_roll_deg
            and low <= distance / max(float(box[2] - box[0]), 1.0) <= high)
