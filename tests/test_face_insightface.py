"""The optional InsightFace / landmark-203 path.

The real det_10g.onnx, 2d106det.onnx and landmark.onnx are not on this machine, so the
plumbing is checked with stand-in ONNX graphs that emit fixed outputs encoding a known
face (the golden's hand-placed 106/203 landmarks): decoding, the 106 affine, the 224
refinement crop and the final render crop must reproduce LivePortrait case 7's crop203.
"""
import os

import numpy as np
import pytest
from safetensors.numpy import load_file

from talking_head.pipelines.core.errors import MissingWeightsError
from talking_head.pipelines.face import (
    InsightFaceDetector, crop_matrices, insightface_model_paths, rect_from_landmarks,
    register_faces, transform_points)
from talking_head.pipelines.face.insightface_backend import (
    decode_scrfd, landmark106_affine, nms, scrfd_input)
from talking_head.pipelines.face.schemes import INSIGHTFACE106
from tests.paths import FIDELITY, SHARED, needs_shared

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

LP = os.path.join(FIDELITY, "liveportrait")
REAL_MODELS = os.path.join(SHARED, "models", "insightface")
FACE_BOX = (112.0, 128.0, 208.0, 272.0)  # encoded at stride 16, anchor cell (10, 12)


def _scrfd_outputs(score=0.9):
    outs = {}
    for k, stride in enumerate((8, 16, 32)):
        count = (512 // stride) ** 2 * 2
        scores = np.zeros((count, 1), np.float32)
        boxes = np.zeros((count, 4), np.float32)
        kps = np.zeros((count, 10), np.float32)
        if stride == 16:
            index = (12 * 32 + 10) * 2  # cell x=10, y=12 -> centre (160, 192), anchor 0
            scores[index] = score
            boxes[index] = np.array([48, 64, 48, 80], np.float32) / stride  # l, t, r, b
            kps[index] = np.array([-20, -20, 20, -20, 0, 0, -15, 30, 15, 30], np.float32) / stride
            scores[index + 1] = score - 0.1  # the same face from the second anchor: NMS drops it
            boxes[index + 1] = boxes[index] * 1.05
        outs[f"score_{stride}"], outs[f"bbox_{stride}"], outs[f"kps_{stride}"] = scores, boxes, kps
    order = [f"{kind}_{s}" for kind in ("score", "bbox", "kps") for s in (8, 16, 32)]
    return [outs[name] for name in order], order


def test_scrfd_decoding_and_nms():
    outputs, _ = _scrfd_outputs()
    boxes, kps = decode_scrfd(outputs, det_scale=0.5)
    assert boxes.shape == (1, 5)  # the overlapping second anchor is suppressed
    np.testing.assert_allclose(boxes[0, :4], np.array(FACE_BOX) / 0.5, atol=1e-4)
    np.testing.assert_allclose(kps[0, 0], np.array([140, 172]) / 0.5, atol=1e-4)
    dets = np.array([[0, 0, 10, 10, 0.9], [1, 1, 11, 11, 0.8], [20, 20, 30, 30, 0.7]])
    assert nms(dets, 0.4) == [0, 2]


def test_scrfd_letterbox():
    image = np.zeros((256, 384, 3), np.uint8)
    image[..., 0] = 255  # pure red
    blob, det_scale = scrfd_input(image)
    assert blob.shape == (1, 3, 512, 512) and det_scale == pytest.approx(341 / 256)
    assert blob[0, 0, 0, 0] == pytest.approx((255 - 127.5) / 128)  # RGB order by default
    assert blob[0, 0, 400, 0] == pytest.approx(-127.5 / 128)  # zero padding below
    bgr_blob, _ = scrfd_input(image, bgr=True)  # Ditto's quirk: the network sees BGR
    assert bgr_blob[0, 2, 0, 0] == pytest.approx((255 - 127.5) / 128)


def _const_model(path, input_name, input_shape, outputs):
    nodes = [helper.make_node("Constant", [], [name], value=numpy_helper.from_array(arr))
             for name, arr in outputs]
    graph = helper.make_graph(
        nodes, "stand_in", [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, arr.shape) for name, arr in outputs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)


@needs_shared
def test_stand_in_models_reproduce_the_golden_203_crop(tmp_path):
    inputs = load_file(os.path.join(LP, "inputs.safetensors"))
    gold = load_file(os.path.join(LP, "case7_crop_pasteback.safetensors"))
    lmk106, lmk203 = inputs["lmk106"], inputs["lmk203"]

    outputs, names = _scrfd_outputs()
    _const_model(str(tmp_path / "det_10g.onnx"), "input.1", [1, 3, 512, 512],
                 list(zip(names, outputs)))
    # 2d106det emits points in [-1, 1] of its 192 box crop
    affine = landmark106_affine(FACE_BOX)
    fc1 = (transform_points(lmk106, affine) / 96 - 1).astype(np.float32).reshape(1, -1)
    _const_model(str(tmp_path / "2d106det.onnx"), "data", [1, 3, 192, 192], [("fc1", fc1)])
    # landmark.onnx emits 203 points in [0, 1] of the 224 crop placed by the 106 points
    o2c, _ = crop_matrices(rect_from_landmarks(lmk106, INSIGHTFACE106, 1.5, 0.0, -0.1), 224)
    pts = (transform_points(lmk203, o2c) / 224).astype(np.float32).reshape(1, -1)
    dummy = np.zeros((1, 2), np.float32)
    _const_model(str(tmp_path / "landmark.onnx"), "input", [1, 3, 224, 224],
                 [("out0", dummy), ("out1", dummy + 1), ("landmarks", pts)])

    paths = insightface_model_paths(str(tmp_path))
    assert paths["lmk203"].endswith("landmark.onnx")
    detector = InsightFaceDetector.from_folder(str(tmp_path))
    assert detector.scheme == "lp203"
    track = register_faces(inputs["image_rgb_u8"], detector)
    assert track.kinds == ["detected"] and track.scheme == "lp203"
    np.testing.assert_allclose(track.landmarks[0], lmk203, atol=2e-3)
    c2o = track.crop_to_frame[0]
    assert np.abs(c2o[:2, :2] - gold["crop203.M_c2o"][:2, :2]).max() <= 1e-5
    assert np.abs(c2o[:2, 2] - gold["crop203.M_c2o"][:2, 2]).max() <= 1e-3
    assert track.mesh478_crop is None  # no MediaPipe landmarker attached


def test_missing_insightface_files_are_named(tmp_path):
    with pytest.raises(MissingWeightsError, match="det_10g.onnx.*2d106det.onnx"):
        insightface_model_paths(str(tmp_path))


@pytest.mark.skipif(not os.path.isfile(os.path.join(REAL_MODELS, "det_10g.onnx")),
                    reason="real InsightFace models absent: the MediaPipe vs InsightFace parity check "
                           "needs det_10g.onnx, 2d106det.onnx, landmark.onnx in "
                           "$TALKING_HEAD_SHARED/models/insightface")
def test_parity_with_mediapipe_on_the_portrait():  # pragma: no cover - needs the real files
    import cv2

    from talking_head.pipelines.face import MediaPipeFaceDetector
    from tests.paths import FIXTURES

    image = cv2.cvtColor(cv2.imread(os.path.join(FIXTURES, "astronaut.png")), cv2.COLOR_BGR2RGB)
    insight = register_faces(image, InsightFaceDetector.from_folder(REAL_MODELS))
    with MediaPipeFaceDetector.from_folder(os.path.join(SHARED, "models", "mediapipe")) as mp:
        media = register_faces(image, mp)
    a, b = insight.rects[0], media.rects[0]
    assert np.hypot(*(a[:2] - b[:2])) < 0.05 * a[2] and abs(b[2] / a[2] - 1) < 0.12
