"""The default detector: MediaPipe Tasks (no compiler, no insightface).

FaceLandmarker (``face_landmarker_v2_with_blendshapes.task``, 478 points) runs on the
image first. Its built-in detector is short-range BlazeFace at 128x128, so small faces
are missed; then the stand-alone BlazeFace (``blaze_face_short_range.tflite``) searches
the image and overlapping tiles of it, and the landmarker is run again on an enlarged
square around the box it found. When even that fails, BlazeFace's eye keypoints are
returned alone (eye-only alignment).

Only ``mediapipe.tasks.python.vision`` is used: it exists in mediapipe 0.10.14 ... 1.2.2
(the legacy ``mp.solutions`` is gone in new releases). Images are always handed over as
contiguous 3-channel RGB uint8 (a 1- or 4-channel image crashes the graph).
"""
from __future__ import annotations

import os
from typing import Optional

import numpy as np

from ..core.errors import MissingWeightsError, TalkingHeadError
from .crop import warp_crop
from .detect import FaceObservation, square_region
from .schemes import MEDIAPIPE478, eye_centres

LANDMARKER_FILE = "face_landmarker_v2_with_blendshapes.task"
DETECTOR_FILE = "blaze_face_short_range.tflite"
DOWNLOAD_HINTS = {
    LANDMARKER_FILE: "https://storage.googleapis.com/mediapipe-models/face_landmarker/"
                     "face_landmarker/float16/latest/face_landmarker.task (save it under "
                     "this name), or the copy in Kijai's ComfyUI-LivePortraitKJ media_pipe/mp_models",
    DETECTOR_FILE: "https://storage.googleapis.com/mediapipe-models/face_detector/"
                   "blaze_face_short_range/float16/latest/blaze_face_short_range.tflite",
}

# the enlarged square around a BlazeFace box that the landmarker is shown again
BOX_TO_LANDMARKER_REGION = 2.2
# BlazeFace alone (no landmarks on its box) is trusted for eye-only alignment only when
# it is confident and its eyes look like eyes: it reports faces in pure noise at 0.5-0.7
EYES_ONLY_MIN_SCORE = 0.75
EYES_ONLY_MAX_ROLL_DEG = 50.0
EYES_ONLY_EYE_DISTANCE_PER_BOX = (0.25, 0.7)
# When BlazeFace finds nothing on the whole image, it searches square tiles (overlapping
# by half) of these sides, as fractions of the image's long side: its 128x128 input
# needs the face to cover about a fifth of what it is shown.
TILE_FRACTIONS = (0.6, 0.4, 0.25, 0.15)
MIN_TILE = 96
# how many BlazeFace boxes (largest first) get a landmarker run before giving up
MAX_BOXES_TO_LANDMARK = 3


def mediapipe_model_paths(folder: str) -> dict:
    """{"landmarker": path, "detector": path} in ``folder``; MissingWeightsError naming
    the file and the folder when one is absent."""
    paths = {"landmarker": os.path.join(folder, LANDMARKER_FILE),
             "detector": os.path.join(folder, DETECTOR_FILE)}
    for path in paths.values():
        if not os.path.isfile(path):
            name = os.path.basename(path)
            raise MissingWeightsError(
                f"MediaPipe model '{name}' is missing from {folder}. Put the file in that "
                f"folder (download: {DOWNLOAD_HINTS[name]}).")
    return paths


def _vision():
    try:
        from mediapipe.tasks.python import BaseOptions, vision
        import mediapipe as mp
    except ImportError as err:  # pragma: no cover - depends on the install
        raise TalkingHeadError(
            f"the MediaPipe face detector needs the 'mediapipe' package ({err}); install it "
            "with: pip install mediapipe") from err
    return mp, vision, BaseOptions


class MediaPipeFaceDetector:
    """FaceLandmarker + BlazeFace (see the module doc). ``detector_path`` may be None
    (then small or hard faces are not searched for)."""

    scheme = MEDIAPIPE478.name

    def __init__(self, landmarker_path: str, detector_path: Optional[str] = None,
                 min_confidence: float = 0.5, max_faces: int = 3):
        mp, vision, BaseOptions = _vision()
        self._mp = mp
        for path in (landmarker_path, detector_path):
            if path is not None and not os.path.isfile(path):
                raise MissingWeightsError(
                    f"MediaPipe model '{os.path.basename(path)}' is missing from "
                    f"{os.path.dirname(path) or '.'}")
        self._landmarker = vision.FaceLandmarker.create_from_options(
            vision.FaceLandmarkerOptions(
                base_options=BaseOptions(model_asset_path=landmarker_path),
                running_mode=vision.RunningMode.IMAGE, num_faces=max_faces,
                min_face_detection_confidence=min_confidence,
                min_face_presence_confidence=min_confidence,
                output_face_blendshapes=False, output_facial_transformation_matrixes=False))
        self._detector = None
        if detector_path is not None:
            self._detector = vision.FaceDetector.create_from_options(
                vision.FaceDetectorOptions(
                    base_options=BaseOptions(model_asset_path=detector_path),
                    running_mode=vision.RunningMode.IMAGE,
                    min_detection_confidence=min_confidence))

    @classmethod
    def from_folder(cls, folder: str, **kwargs) -> "MediaPipeFaceDetector":
        paths = mediapipe_model_paths(folder)
        return cls(paths["landmarker"], paths["detector"], **kwargs)

    # -- the FaceDetector interface ------------------------------------------------------

    def detect(self, image: np.ndarray) -> Optional[FaceObservation]:
        found = self.landmarks(image)
        if found is not None or self._detector is None:
            return found
        candidates = self._find_boxes(image)
        for box, _, _ in candidates[:MAX_BOXES_TO_LANDMARK]:
            centre = (box[:2] + box[2:]) / 2
            side = float(max(box[2:] - box[:2])) * BOX_TO_LANDMARKER_REGION
            x0, y0, _, _ = square_region(centre, side)
            s = 256.0 / side
            m = np.array([[s, 0, -s * x0], [0, s, -s * y0], [0, 0, 1.0]])
            found = self.landmarks(np.ascontiguousarray(warp_crop(image, m, 256)))
            if found is not None:
                return found.transformed(np.linalg.inv(m))
        for box, eyes, score in sorted(candidates, key=lambda c: -c[2]):
            if _plausible_eyes(eyes, box, score):
                return FaceObservation("eyes", None, eyes.astype(np.float32),
                                       box.astype(np.float32), score)
        return None

    def close(self) -> None:
        for task in (self._landmarker, self._detector):
            if task is not None:
                task.close()
        self._landmarker = self._detector = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the two models ------------------------------------------------------------------

    def _image(self, rgb: np.ndarray):
        rgb = np.ascontiguousarray(rgb[..., :3], dtype=np.uint8)
        return self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=rgb)

    def landmarks(self, image: np.ndarray) -> Optional[FaceObservation]:
        """FaceLandmarker alone: the largest face's 478 points in pixels, or None."""
        result = self._landmarker.detect(self._image(image))
        if not result.face_landmarks:
            return None
        h, w = image.shape[:2]
        best = None
        for face in result.face_landmarks:
            p = np.array([[q.x, q.y, q.z] for q in face], np.float64)
            # normalised coordinates span the pixel edges; z uses the x scale
            xy = p[:, :2] * (w, h) - 0.5
            extent = float(np.prod(xy.max(0) - xy.min(0)))
            if best is None or extent > best[0]:
                best = (extent, xy, p[:, 2] * w)
        _, xy, z = best
        box = np.concatenate([xy.min(0), xy.max(0)]).astype(np.float32)
        return FaceObservation(MEDIAPIPE478.name, xy.astype(np.float32),
                               eye_centres(xy, MEDIAPIPE478).astype(np.float32), box,
                               1.0, z.astype(np.float32))

    def _boxes(self, image: np.ndarray, offset=(0, 0)):
        h, w = image.shape[:2]
        for det in self._detector.detect(self._image(image)).detections:
            b = det.bounding_box
            box = np.array([b.origin_x, b.origin_y, b.origin_x + b.width,
                            b.origin_y + b.height], np.float64) + np.tile(offset, 2)
            # BlazeFace keypoints 0/1 are the subject's right/left eye (image left/right)
            eyes = np.array([[k.x * w - 0.5, k.y * h - 0.5] for k in det.keypoints[:2]])
            yield box, eyes + offset, float(det.categories[0].score)

    def _find_boxes(self, image: np.ndarray) -> list:
        """BlazeFace boxes (largest first) on the whole image, else on the first tile
        size that finds any."""
        h, w = image.shape[:2]
        found = list(self._boxes(image))
        for fraction in TILE_FRACTIONS:
            if found:
                break
            side = max(int(max(h, w) * fraction), MIN_TILE)
            for ty in _tile_starts(h, side):
                for tx in _tile_starts(w, side):
                    tile = np.ascontiguousarray(image[ty:ty + side, tx:tx + side])
                    found.extend(self._boxes(tile, (tx, ty)))
        return sorted(found, key=lambda f: -(f[0][2] - f[0][0]) * (f[0][3] - f[0][1]))


def _plausible_eyes(eyes: np.ndarray, box: np.ndarray, score: float) -> bool:
    d = eyes[1] - eyes[0]
    distance = float(np.hypot(*d))
    roll = abs(np.degrees(np.arctan2(d[1], d[0])))
    low, high = EYES_ONLY_EYE_DISTANCE_PER_BOX
    return (score >= EYES_ONLY_MIN_SCORE and roll <= EYES_ONLY_MAX_ROLL_DEG
            and low <= distance / max(float(box[2] - box[0]), 1.0) <= high)


def _tile_starts(length: int, side: int):
    if length <= side:
        return [0]
    count = int(np.ceil((length - side) / (side / 2))) + 1
    return np.linspace(0, length - side, count).round().astype(int)
