"""Face registration: detection, landmarks, similarity crops and their inverses, tracking.

Typical use (what the Face Register node does)::

    detector = MediaPipeFaceDetector.from_folder(models_dir)   # or InsightFaceDetector
    track = register_faces(frames, detector, smooth_window=5, manual_box=None)
    x256 = crop_inputs_256(track.crops512)                     # (N,3,256,256) for F and M

The backends import mediapipe / onnxruntime only when constructed.
"""
from .crop import (
    CropRect, crop_inputs_256, crop_matrices, rect_from_box, rect_from_eyes, rect_from_landmarks,
    transform_points, warp_crop)
from .detect import FaceDetector, FaceObservation, detect_in_frame
from ..core.timeline import mirror_index
from .frames import as_uint8_frames, check_resize, load_image, resize_to_limit
from .mediapipe_backend import MediaPipeFaceDetector, mediapipe_model_paths
from .insightface_backend import InsightFaceDetector, insightface_model_paths
from .preview import draw_preview
from .schemes import SCHEMES, crop_points, to_ibug68
from .smoothing import centered_moving_average, smooth_motion_info
from .track import KINDS, FaceTrack, TrackSettings, register_faces

__all__ = [
    "CropRect", "crop_inputs_256", "crop_matrices", "rect_from_box", "rect_from_eyes",
    "rect_from_landmarks", "transform_points", "warp_crop", "FaceDetector",
    "FaceObservation", "detect_in_frame", "as_uint8_frames", "check_resize", "load_image",
    "mirror_index", "resize_to_limit", "MediaPipeFaceDetector", "mediapipe_model_paths",
    "InsightFaceDetector", "insightface_model_paths", "draw_preview", "SCHEMES",
    "crop_points", "to_ibug68", "centered_moving_average",
    "smooth_motion_info", "KINDS", "FaceTrack", "TrackSettings", "register_faces",
]
