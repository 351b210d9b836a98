"""MuseTalk face box and crop: golden case 5 (exact), bbox_shift in v1.5, partial landmarks."""
import os

import numpy as np
import pytest

from talking_head.pipelines.core.errors import ShapeError
from talking_head.pipelines.musetalk import crop as C
from tests.paths import FIDELITY, needs_shared

HW = (512, 512)


@pytest.fixture(scope="module")
def g5():
    from safetensors.numpy import load_file

    return load_file(os.path.join(FIDELITY, "musetalk", "case5_crop.safetensors"))


@needs_shared
def test_case5_boxes_exact(g5):
    lm = g5["landmarks_float"]
    assert np.array_equal(np.trunc(lm).astype(np.int32), g5["landmarks_int"])
    assert C.landmark_box(lm) == tuple(g5["box_v15_landmark"])
    assert C.face_box(lm, HW) == tuple(g5["box_v15"])                       # +10 px margin
    assert C.face_box(lm, HW, -7, extra_margin=0) == tuple(g5["box_v1_shift_m7"])
    assert C.face_box(lm, HW, 7, extra_margin=0) == tuple(g5["box_v1_shift_p7"])
    s3fd = g5["s3fd_box"]
    assert C.face_box(g5["edge_clamp_landmarks_float"], HW, 0, 0, s3fd) == tuple(g5["edge_clamp_box"])
    assert C.face_box(g5["edge_fallback_landmarks_float"], HW, 0, 0, s3fd) == tuple(g5["edge_fallback_box"])
    assert C.bbox_shift_range(lm[None]) == (-8, 8)  # the reference's printed hint


@needs_shared
@pytest.mark.parametrize("box,crop", [("box_v15", "crop_v15_bgr_u8"),
                                      ("box_v1_shift_m7", "crop_v1_m7_bgr_u8"),
                                      ("box_v1_shift_p7", "crop_v1_p7_bgr_u8")])
def test_case5_crops_exact(g5, box, crop):
    assert np.array_equal(C.crop_face(g5["frame_bgr_u8"], g5[box]), g5[crop])


@needs_shared
@pytest.mark.parametrize("shift", [-7, 7])
def test_bbox_shift_is_honoured_in_v15(g5, shift):
    """v1.5 with bbox_shift b = v1's box for b plus the margin: the top moves by 2b, the
    bottom stays, so the masked-half boundary (crop centre row) moves by b."""
    lm = g5["landmarks_float"]
    base = C.face_box(lm, HW, 0, 10)
    moved = C.face_box(lm, HW, shift, 10)
    v1 = g5["box_v1_shift_m7" if shift < 0 else "box_v1_shift_p7"]
    assert moved == (v1[0], v1[1], v1[2], v1[3] + 10)
    assert moved[1] - base[1] == 2 * shift and moved[3] == base[3]
    assert (moved[1] + moved[3]) / 2 - (base[1] + base[3]) / 2 == shift
    boxes, found = C.face_boxes(np.stack([lm, lm]), HW, bbox_shift=shift)
    assert found.all() and tuple(boxes[0]) == moved


@needs_shared
def test_partial_landmarks_still_give_a_box(g5):
    lm = g5["landmarks_float"].copy()
    full = C.face_box(lm, HW)
    # lm29 unreliable: anchored on the midpoint of lm28 / lm30 (within 1 px here)
    no29 = lm.copy()
    no29[29] = np.nan
    box = C.face_box(no29, HW)
    assert box is not None and abs(box[1] - full[1]) <= 2 and box[3] == full[3]
    # a masked lower face: only points above the mouth flagged reliable
    reliable = np.zeros(68, bool)
    reliable[17:48] = True
    box = C.face_box(lm, HW, reliable=reliable)
    lower = int(np.trunc(lm[17:48, 1]).max())
    assert box is not None and box[3] == lower + 10
    # nothing left of the nose bridge: no box unless a detector box is given
    none = lm.copy()
    none[27:31] = np.nan
    assert C.face_box(none, HW) is None
    assert C.face_box(none, HW, fallback_box=g5["s3fd_box"]) == tuple(g5["s3fd_box"][:3]) + (201,)


def test_faceless_input_is_not_an_error():
    lms = np.full((3, 68, 2), np.nan)
    boxes, found = C.face_boxes(lms, HW)
    assert not found.any() and not boxes.any()
    assert C.bbox_shift_range(lms) == (0, 0)  # the reference divided by zero here


def test_face_found_and_fallback_per_frame():
    lm = np.stack([np.linspace(100, 200, 68), np.linspace(100, 220, 68)], axis=1)
    lm[29] = (150, 150)
    lms = np.stack([lm, lm, lm - (130, 0)])  # third frame pokes out on the left
    fb = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [10, 100, 90, 230]])
    boxes, found = C.face_boxes(lms, HW, face_found=[True, False, True], fallback_boxes=fb)
    assert found.tolist() == [True, False, True]
    assert tuple(boxes[0]) == (100, 80, 200, 230) and tuple(boxes[2]) == (10, 100, 90, 240)
    # without a detector box the left overhang is clipped instead
    boxes, found = C.face_boxes(lms[2:], HW)
    assert found[0] and boxes[0, 0] == 0


def test_bad_landmark_shape():
    with pytest.raises(ShapeError):
        C.face_boxes(np.zeros((2, 5, 2)), HW)
