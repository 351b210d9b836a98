"""The default detector: MediaPipe Tasks (no compiler, no insightface).

FaceLandmarker (``face_landmarker_v2_with_blendshapes.task``, 478 points) runs on the
image first: a face it finds there costs nothing more. Its built-in detector is
short-range BlazeFace at 128x128, so small, masked or stylized faces are missed; then the
stand-alone BlazeFace (``blaze_face_short_range.tflite``) searches the image and tiles of
it, and the landmarker looks again at views around the boxes it found
(:mod:`.search`: which boxes, what views, when a result is believed). When even that
fails, BlazeFace's eye keypoints are returned alone (eye-only alignment).

Only ``mediapipe.tasks.python.vision`` is used: it exists in mediapipe 0.10.14 ... 1.2.2
(the legacy ``mp.solutions`` is gone in new releases). Images are always handed over as
contiguous 3-channel RGB uint8 (a 1- or 4-channel image crashes the graph).
"""
from __future__ import annotations

import os
from typing import Optional

import numpy as np

from ..core.errors import MissingWeightsError, TalkingHeadError
from .detect import FaceObservation
from .schemes import MEDIAPIPE478, eye_centres
from .search import SearchSettings, search_face

LANDMARKER_FILE = "face_landmarker_v2_with_blendshapes.task"
DETECTOR_FILE = "blaze_face_short_range.tflite"
DOWNLOAD_HINTS = {
    LANDMARKER_FILE: "https://storage.googleapis.com/mediapipe-models/face_landmarker/"
                     "face_landmarker/float16/latest/face_landmarker.task (save it under "
                     "this name), or the copy in Kijai's ComfyUI-LivePortraitKJ media_pipe/mp_models",
    DETECTOR_FILE: "https://storage.googleapis.com/mediapipe-models/face_detector/"
                   "blaze_face_short_range/float16/latest/blaze_face_short_range.tflite",
}


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
                 min_confidence: float = 0.5, max_faces: int = 3,
                 search: SearchSettings = SearchSettings()):
        mp, vision, BaseOptions = _vision()
        self._mp = mp
        self.search = search
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
        return search_face(image, self.landmarks, self._boxes, self.search)

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

    def _boxes(self, image: np.ndarray, offset=(0, 0)) -> list:
        """BlazeFace on ``image``: [(box, eyes, score)] shifted by ``offset``."""
        h, w = image.shape[:2]
        found = []
        for det in self._detector.detect(self._image(image)).detections:
            b = det.bounding_box
            box = np.array([b.origin_x, b.origin_y, b.origin_x + b.width,
                            b.origin_y + b.height], np.float64) + np.tile(offset, 2)
            # BlazeFace keypoints 0/1 are the subject's right/left eye (image left/right)
            eyes = np.array([[k.x * w - 0.5, k.y * h - 0.5] for k in det.keypoints[:2]])
            found.append((box, eyes + offset, float(det.categories[0].score)))
        return found
