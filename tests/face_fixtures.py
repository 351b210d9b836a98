"""Fixtures shared by the face tests: the MediaPipe detector on ../shared's model files
and the fixture portrait as RGB. Import them into a test module to use them."""
import os

import cv2
import pytest

from talking_head.pipelines.face import MediaPipeFaceDetector
from tests.paths import FIXTURES, SHARED

MEDIAPIPE_MODELS = os.path.join(SHARED, "models", "mediapipe")


@pytest.fixture(scope="module")
def detector():
    pytest.importorskip("mediapipe")
    if not os.path.isfile(os.path.join(MEDIAPIPE_MODELS, "face_landmarker_v2_with_blendshapes.task")):
        pytest.skip(f"MediaPipe models not found in {MEDIAPIPE_MODELS}")
    det = MediaPipeFaceDetector.from_folder(MEDIAPIPE_MODELS)
    yield det
    det.close()


@pytest.fixture(scope="module")
def portrait():
    return cv2.cvtColor(cv2.imread(os.path.join(FIXTURES, "astronaut.png")), cv2.COLOR_BGR2RGB)
