"""Optional parity path: InsightFace SCRFD + 106 landmarks + LivePortrait's 203-point
refiner, through onnxruntime (no ``pip install insightface``).

Files (any of them may be absent; :func:`insightface_model_paths` says which):
  det_10g.onnx     SCRFD-10G face boxes (spec ditto §3.2.1)
  2d106det.onnx    106 landmarks on a 192x192 box crop (§3.2.2)
  landmark.onnx    LivePortrait's 203 points on the 224 crop (Ditto: landmark203.onnx)

Channel order: the reference feeds these networks RGB as seen by insightface (a BGR
image through ``swapRB``). Ditto hands them an RGB image, so its networks see BGR;
``ditto_channel_quirk=True`` reproduces that.
Licence: the InsightFace models are for non-commercial research only.
"""
from __future__ import annotations

import os
from typing import Optional

import cv2
import numpy as np

from ..core.errors import MissingWeightsError, TalkingHeadError
from .crop import LMK203_DSIZE, LMK203_SCALE, LMK203_VY, crop_matrices, rect_from_landmarks
from .crop import RENDER_DSIZE, RENDER_SCALE, RENDER_VY, transform_points, warp_crop
from .detect import FaceObservation
from .schemes import INSIGHTFACE106, LP203, eye_centres

DET_FILE, LMK106_FILE = "det_10g.onnx", "2d106det.onnx"
LMK203_FILES = ("landmark.onnx", "landmark203.onnx")
DET_SIZE, LMK106_SIZE = 512, 192
SCRFD_STRIDES, SCRFD_ANCHORS = (8, 16, 32), 2


def insightface_model_paths(folder: str) -> dict:
    """{"det", "lmk106", "lmk203" (None if absent)}; MissingWeightsError when the two
    InsightFace files are not in ``folder``."""
    paths = {"det": os.path.join(folder, DET_FILE), "lmk106": os.path.join(folder, LMK106_FILE)}
    missing = [os.path.basename(p) for p in paths.values() if not os.path.isfile(p)]
    if missing:
        raise MissingWeightsError(
            f"InsightFace model(s) {', '.join(missing)} missing from {folder}. They come from "
            "insightface's buffalo_l pack (non-commercial licence); put them in that folder "
            "or use the default MediaPipe detector.")
    paths["lmk203"] = next((os.path.join(folder, f) for f in LMK203_FILES
                            if os.path.isfile(os.path.join(folder, f))), None)
    return paths


def _session(path: str, providers=None):
    try:
        import onnxruntime as ort
    except ImportError as err:  # pragma: no cover - depends on the install
        raise TalkingHeadError("the InsightFace detector needs onnxruntime "
                                  "(pip install onnxruntime)") from err
    return ort.InferenceSession(path, providers=providers or ["CPUExecutionProvider"])


def _nchw(image: np.ndarray, bgr: bool) -> np.ndarray:
    x = image[..., ::-1] if bgr else image
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


# -- SCRFD --------------------------------------------------------------------------------


def scrfd_input(image: np.ndarray, bgr: bool = False, size: int = DET_SIZE):
    """Letterbox into a top-left anchored size x size canvas; (blob, det_scale)."""
    h, w = image.shape[:2]
    if h / w > 1.0:
        new_h, new_w = size, int(size * w / h)
    else:
        new_w, new_h = size, int(size * h / w)
    canvas = np.zeros((size, size, 3), np.uint8)
    canvas[:new_h, :new_w] = cv2.resize(image, (new_w, new_h))
    blob = (_nchw(canvas, bgr) - 127.5) / 128.0
    return blob.astype(np.float32), new_h / h


def decode_scrfd(outputs, det_scale: float, threshold: float = 0.5, nms_iou: float = 0.4,
                 size: int = DET_SIZE):
    """SCRFD's 9 outputs (scores, boxes, keypoints per stride 8/16/32) -> (M,5) boxes
    x0,y0,x1,y1,score and (M,5,2) keypoints in input-image pixels, best first."""
    n = len(SCRFD_STRIDES)
    all_boxes, all_kps = [], []
    for k, stride in enumerate(SCRFD_STRIDES):
        scores = np.asarray(outputs[k]).reshape(-1)
        dist = np.asarray(outputs[k + n]).reshape(-1, 4) * stride
        kps = np.asarray(outputs[k + 2 * n]).reshape(-1, 5, 2) * stride
        side = size // stride
        ys, xs = np.mgrid[:side, :side]
        centres = np.stack([xs, ys], -1).reshape(-1, 2).astype(np.float32) * stride
        centres = np.repeat(centres, SCRFD_ANCHORS, axis=0)
        keep = scores >= threshold
        c = centres[keep]
        boxes = np.concatenate([c - dist[keep, :2], c + dist[keep, 2:]], 1)
        all_boxes.append(np.concatenate([boxes, scores[keep, None]], 1))
        all_kps.append(c[:, None] + kps[keep])
    boxes = np.concatenate(all_boxes)
    kps = np.concatenate(all_kps)
    boxes[:, :4] /= det_scale
    kps /= det_scale
    order = np.argsort(-boxes[:, 4], kind="stable")
    keep = nms(boxes[order], nms_iou)
    return boxes[order][keep], kps[order][keep]


def nms(dets: np.ndarray, iou: float) -> list:
    """Greedy NMS over score-sorted boxes, with insightface's +1 pixel areas."""
    x0, y0, x1, y1 = dets[:, 0], dets[:, 1], dets[:, 2], dets[:, 3]
    areas = (x1 - x0 + 1) * (y1 - y0 + 1)
    remaining, keep = np.arange(len(dets)), []
    while remaining.size:
        i, rest = remaining[0], remaining[1:]
        keep.append(int(i))
        w = np.maximum(0.0, np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]) + 1)
        inter = w * h
        remaining = rest[inter / (areas[i] + areas[rest] - inter) <= iou]
    return keep


# -- 106 landmarks --------------------------------------------------------------------------


def landmark106_affine(box) -> np.ndarray:
    """2x3 map of the box (scaled so 1.5 x its long side fills 192 px) onto 192x192."""
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    s = LMK106_SIZE / (1.5 * max(x1 - x0, y1 - y0))
    half = LMK106_SIZE / 2
    return np.array([[s, 0, half - s * (x0 + x1) / 2], [0, s, half - s * (y0 + y1) / 2]])


def decode_landmark106(output, affine: np.ndarray) -> np.ndarray:
    """The network's last 106 (x, y) pairs in [-1, 1] -> image pixels."""
    pts = (np.asarray(output, np.float64).reshape(-1, 2)[-106:] + 1) * (LMK106_SIZE / 2)
    return transform_points(pts, cv2.invertAffineTransform(affine)).astype(np.float32)


class InsightFaceDetector:
    """SCRFD box -> 106 points -> (if landmark.onnx is given) 203 points. ``mesh`` is an
    optional MediaPipeFaceDetector run on the 512 render crop for Ditto's eye features."""

    def __init__(self, det_path: str, lmk106_path: str, lmk203_path: Optional[str] = None,
                 threshold: float = 0.5, ditto_channel_quirk: bool = False,
                 providers=None, mesh=None):
        self._det = _session(det_path, providers)
        self._lmk106 = _session(lmk106_path, providers)
        self._lmk203 = _session(lmk203_path, providers) if lmk203_path else None
        self.threshold, self.bgr, self.mesh = threshold, ditto_channel_quirk, mesh
        self.scheme = (LP203 if self._lmk203 is not None else INSIGHTFACE106).name

    @classmethod
    def from_folder(cls, folder: str, **kwargs) -> "InsightFaceDetector":
        p = insightface_model_paths(folder)
        return cls(p["det"], p["lmk106"], p["lmk203"], **kwargs)

    def _run(self, session, blob):
        return session.run(None, {session.get_inputs()[0].name: blob})

    def detect(self, image: np.ndarray) -> Optional[FaceObservation]:
        blob, det_scale = scrfd_input(image, self.bgr)
        boxes, _ = decode_scrfd(self._run(self._det, blob), det_scale, self.threshold)
        if not len(boxes):
            return None
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        box = boxes[int(np.argmax(areas))]  # Ditto and LivePortrait take the largest
        affine = landmark106_affine(box)
        patch = cv2.warpAffine(image, affine, (LMK106_SIZE, LMK106_SIZE), borderValue=0.0)
        landmarks, scheme = decode_landmark106(self._run(self._lmk106, _nchw(patch, self.bgr))[0],
                                               affine), INSIGHTFACE106
        if self._lmk203 is not None:
            landmarks, scheme = self.refine203(image, landmarks, INSIGHTFACE106), LP203
        mesh = self._mesh478(image, landmarks, scheme) if self.mesh is not None else None
        return FaceObservation(scheme.name, landmarks, eye_centres(landmarks, scheme),
                               box[:4].astype(np.float32), float(box[4]), mesh478=mesh)

    def refine203(self, image, landmarks, scheme) -> np.ndarray:
        """landmark.onnx on the 224 crop (scale 1.5, vy -0.1) placed by ``landmarks``."""
        o2c, c2o = crop_matrices(rect_from_landmarks(landmarks, scheme, LMK203_SCALE, 0.0,
                                                     LMK203_VY), LMK203_DSIZE)
        crop = warp_crop(image, o2c, LMK203_DSIZE, antialias=False)
        out = self._run(self._lmk203, _nchw(crop, False) / 255.0)
        pts = np.asarray(out[2], np.float32).reshape(-1, 2) * LMK203_DSIZE
        return transform_points(pts, c2o).astype(np.float32)

    def _mesh478(self, image, landmarks, scheme):
        o2c, c2o = crop_matrices(rect_from_landmarks(landmarks, scheme, RENDER_SCALE, 0.0,
                                                     RENDER_VY))
        found = self.mesh.landmarks(warp_crop(image, o2c, RENDER_DSIZE))
        if found is None:
            return None
        back = np.sqrt(abs(np.linalg.det(c2o[:2, :2].astype(np.float64))))
        return np.concatenate([transform_points(found.landmarks, c2o),
                               found.depth[:, None] * back], 1).astype(np.float32)

    def close(self) -> None:
        self._det = self._lmk106 = self._lmk203 = None
