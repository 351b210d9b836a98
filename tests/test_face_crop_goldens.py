"""Crop maths against the reference goldens (no detector needed).

LivePortrait case 7 (crop106.*, crop203.*): M_c2o linear part 1e-5, translation 1e-3 px;
img_crop_u8 <= 2 levels with <= 5e-3 / 2e-3 of values differing (cases.json).
Ditto resize_crop_helpers: exact with the set's OpenCV build (cases.json), else its stated
allowance for another sampler.
"""
import os

import cv2
import numpy as np
import pytest
from safetensors.numpy import load_file

from talking_head.pipelines.core.errors import MediaError
from talking_head.pipelines.face import (
    as_uint8_frames, check_resize, crop_inputs_256, crop_matrices, load_image, mirror_index,
    rect_from_landmarks, smooth_motion_info, transform_points, warp_crop)
from talking_head.pipelines.face.schemes import INSIGHTFACE106, LP203
from tests.goldens import assert_uint8_within, golden, uint8_allowance
from tests.paths import FIDELITY, needs_shared

LP = os.path.join(FIDELITY, "liveportrait")
DITTO = os.path.join(FIDELITY, "ditto")


def _case(folder, name):
    return golden(os.path.basename(folder)).case(name)


def _uint8_diff(ours, golden):
    d = np.abs(ours.astype(np.int32) - golden.astype(np.int32))
    return int(d.max()), float((d > 0).mean())


@needs_shared
@pytest.mark.parametrize("which,scheme", [("106", INSIGHTFACE106), ("203", LP203)])
def test_liveportrait_case7_crop(which, scheme):
    inputs = load_file(os.path.join(LP, "inputs.safetensors"))
    gold = load_file(os.path.join(LP, "case7_crop_pasteback.safetensors"))
    tol = _case(LP, "case7_crop_and_pasteback")["tolerance"]
    key = f"crop{which}"
    rect = rect_from_landmarks(inputs[f"lmk{which}"], scheme, 2.3, 0.0, -0.125)
    o2c, c2o = crop_matrices(rect, 512)

    m_tol = tol[f"{key}.M_c2o"]
    assert np.abs(c2o[:2, :2] - gold[f"{key}.M_c2o"][:2, :2]).max() <= m_tol["suggested_linear_atol"]
    assert np.abs(c2o[:2, 2] - gold[f"{key}.M_c2o"][:2, 2]).max() <= m_tol["suggested_translation_atol_px"]
    assert np.abs(o2c - gold[f"{key}.M_o2c"]).max() <= 1e-5 * np.abs(gold[f"{key}.M_o2c"]).max()
    np.testing.assert_allclose(transform_points(inputs[f"lmk{which}"], o2c),
                               gold[f"{key}.pt_crop"], atol=1e-3)

    crop = warp_crop(inputs["image_rgb_u8"], o2c, 512)
    levels, frac = _uint8_diff(crop, gold[f"{key}.img_crop_u8"])
    c_tol = tol[f"{key}.img_crop_u8"]
    assert levels <= c_tol["suggested_max_abs_levels"]
    assert frac <= c_tol["suggested_max_frac_differing"]

    if which == "106":  # the 256 network input of the source
        x = crop_inputs_256(crop[None]).numpy()
        assert x.shape == (1, 3, 256, 256) and x.dtype == np.float32
        small = np.rint(x[0].transpose(1, 2, 0) * 255)
        assert _uint8_diff(small, gold["crop106.img_crop_256_u8"])[0] <= 1
        assert np.abs(x - inputs["source"]).max() <= 1.5 / 255


@needs_shared
def test_vx_ratio_is_honoured():
    """The originals drop vx_ratio; here it moves the centre along the face's x axis."""
    lmk = load_file(os.path.join(LP, "inputs.safetensors"))["lmk203"]
    base = rect_from_landmarks(lmk, LP203, 2.3, 0.0, -0.125)
    moved = rect_from_landmarks(lmk, LP203, 2.3, 0.1, -0.125)
    ux = np.array([np.cos(base.angle), np.sin(base.angle)])
    np.testing.assert_allclose(moved.center - base.center, 0.1 * base.size * ux, atol=1e-3)
    assert moved.size == base.size and moved.angle == base.angle


@needs_shared
def test_ditto_resize_crop_helpers(tmp_path):
    g = load_file(os.path.join(DITTO, "resize_crop.safetensors"))
    for h, w, max_dim, new_h, new_w, flag in g["check_resize_table"]:
        assert check_resize(int(h), int(w), int(max_dim)) == (new_h, new_w, bool(flag))

    # stated: cv2 outputs exact with the set's OpenCV build (another build: the set's
    # allowance for another sampler), matrices within 1e-6 relative
    gs = golden("ditto")
    allow = uint8_allowance(gs, gs.case("resize_crop_helpers"))
    png = str(tmp_path / "image.png")
    cv2.imwrite(png, cv2.cvtColor(g["image_301x451"], cv2.COLOR_RGB2BGR))
    assert_uint8_within(load_image(png, 1920), g["load_image.max1920"], allow, "load_image 1920")
    assert_uint8_within(load_image(png, 200), g["load_image.max200"], allow, "load_image 200")

    for dsize, scale, vy in ((512, 2.3, -0.125), (224, 1.5, -0.1)):
        rect = rect_from_landmarks(g["lmk203"], LP203, scale, 0.0, vy)
        o2c, c2o = crop_matrices(rect, dsize)
        for ours, key in ((o2c, f"crop{dsize}.M_o2c"), (c2o, f"crop{dsize}.M_c2o")):
            assert np.abs(ours - g[key]).max() <= 1e-6 * np.abs(g[key]).max(), key
        crop = warp_crop(g["crop_frame_rgb"], o2c, dsize)
        assert_uint8_within(crop, g[f"crop{dsize}.img_crop"], allow, f"crop{dsize}")
        if dsize == 512:
            x = crop_inputs_256(crop[None]).numpy()
            assert_uint8_within(np.rint(x * 255), np.rint(g["rgb256_bchw"] * 255), allow, "rgb256")

    keys = ("pitch", "yaw", "roll", "t", "exp", "scale", "kp")
    smoothed = smooth_motion_info({k: g[f"smooth.in.{k}"] for k in keys}, 13)
    for k in keys:
        assert np.abs(smoothed[k] - g[f"smooth.out.{k}"]).max() <= 1e-7, k

    for i, n, result in g["mirror_index_table"]:
        assert mirror_index(int(i), int(n)) == result


def test_frame_validation_messages():
    rgb = np.zeros((2, 8, 8, 3), np.float32)
    rgb[0, 0, 0] = 0.2
    out = as_uint8_frames(rgb)
    assert out.dtype == np.uint8 and out[0, 0, 0, 0] == 51  # 0.2*255 rounds, not truncates
    for bad, word in ((np.zeros((1, 8, 8), np.float32), "grayscale"),
                      (np.zeros((1, 8, 8, 1), np.float32), "grayscale"),
                      (np.zeros((1, 8, 8, 4), np.float32), "RGBA"),
                      (np.zeros((1, 8, 8, 3), np.uint16), "uint16"),
                      (np.full((1, 8, 8, 3), 255.0, np.float32), "0..1"),
                      (np.zeros((0, 8, 8, 3), np.uint8), "empty")):
        with pytest.raises(MediaError, match=word):
            as_uint8_frames(bad)
