"""MuseTalk face parsing and paste-back: golden cases 4 (BiSeNet) and 6 (masks, composite)."""
import json
import os

import numpy as np
import pytest
import torch

from talking_head.pipelines.musetalk import blending as B
from talking_head.pipelines.musetalk.bisenet import BiSeNet
from talking_head.pipelines.musetalk.models import build_parsing
from tests.fakes import keyed_state_dict, manifest_entries, write_fake
from tests.goldens import golden
from tests.paths import FIDELITY, needs_shared

CASES = os.path.join(FIDELITY, "musetalk")


def _load(name):
    from safetensors.numpy import load_file

    return load_file(os.path.join(CASES, name))


@pytest.fixture(scope="module")
def g6():
    return _load("case6_blend.safetensors")


def _rgb(bgr):
    return np.ascontiguousarray(bgr[..., ::-1])


def _same(ours, gold):
    assert ours.shape == gold.shape and ours.dtype == gold.dtype
    diff = np.abs(ours.astype(np.int32) - gold.astype(np.int32))
    assert diff.max() == 0, f"{(diff > 0).sum()} values differ (max {diff.max()})"


@needs_shared
def test_case6_constants_and_crop_box(g6):
    _same(np.array(B.blend_crop_box(g6["box"]), np.int32), g6["crop_box"])
    _same(B.jaw_dilate_kernel(), g6["jaw_dilate_kernel"])
    _same(B.jaw_erode_kernel(), g6["jaw_erode_kernel"])
    _same(B.cheek_mask(90, 90), g6["jaw_cheek_mask"])
    assert B.blur_kernel_size(206, 0.05) == 11 and B.blur_kernel_size(206, 0.1) == 21


@needs_shared
@pytest.mark.parametrize("mode", ["jaw", "raw"])
def test_case6_masks_and_frames_exact(g6, mode):
    stages = {}
    m512 = B.mode_mask(g6["parsing"], mode, 90, 90, stages=stages)
    _same(m512, g6[f"{mode}_mask512"])
    if mode == "jaw":
        _same(stages["dilated"], g6["jaw_dilated512"])
        _same(stages["eroded"], g6["jaw_eroded512"])
    box, crop_box = g6["box"], g6["crop_box"]
    stages = {}
    alpha = B.feathered_mask(m512, box, crop_box, 0.5, 0.05, stages=stages)
    _same(stages["crop"], g6[f"{mode}_mask_crop"])
    _same(stages["boundary"], g6[f"{mode}_mask_boundary"])
    _same(alpha, g6[f"{mode}_mask_blurred"])
    out = B.composite(_rgb(g6["frame_bgr_u8"]), _rgb(g6["gen_face_bgr_u8"]), box, crop_box, alpha)
    _same(out[..., ::-1], g6[f"{mode}_frame_bgr_u8"])


@needs_shared
def test_case6_resized_face_and_realtime_path(g6):
    box, crop_box = g6["box"], g6["crop_box"]
    placed = B.place_face(_rgb(g6["frame_bgr_u8"]), _rgb(g6["gen_face_bgr_u8"]), box)
    x1, y1, x2, y2 = box
    _same(placed[y1:y2, x1:x2][..., ::-1], g6["res_face_bgr_u8"])
    alpha = B.feathered_mask(B.mode_mask(g6["parsing"], "jaw"), box, crop_box, 0.5, 0.1)
    _same(alpha, g6["rt_jaw_mask_blurred"])
    frame = _rgb(g6["frame_bgr_u8"])
    out = B.composite(frame, _rgb(g6["gen_face_bgr_u8"]), box, crop_box, alpha)
    _same(out[..., ::-1], g6["rt_jaw_frame_bgr_u8"])
    # the generic path: placed frame + full-frame mask through the same blend rule
    full = B.full_frame_alpha(alpha, crop_box, frame.shape[:2])
    _same(B.pil_blend(frame, placed, full), out)


def test_crop_box_leaving_the_frame_is_clipped():
    frame = np.full((64, 64, 3), 100, np.uint8)
    face = np.full((256, 256, 3), 200, np.uint8)
    box = (0, 20, 30, 64)
    crop_box = B.blend_crop_box(box)
    assert crop_box[0] < 0 and crop_box[3] > 64
    alpha = np.full((crop_box[3] - crop_box[1], crop_box[2] - crop_box[0]), 255, np.uint8)
    out = B.composite(frame, face, box, crop_box, alpha)
    assert (out[20:64, 0:30] == 200).all() and (out[:, 40:] == 100).all()


def _tolerance(key):
    with open(os.path.join(CASES, "cases.json")) as fh:
        cases = {c["name"]: c for c in json.load(fh)["cases"]}
    tol = cases["case4_bisenet_face_parsing"]["tolerance"][key]
    return tol["suggested"] if isinstance(tol.get("suggested"), dict) else tol


@needs_shared
def test_case4_bisenet_golden(tmp_path):
    g4 = _load("case4_bisenet.safetensors")
    g5 = _load("case5_crop.safetensors")
    g6 = _load("case6_blend.safetensors")
    # the parser sees the blending square of the original frame (case 5 frame, case 6 box)
    large = B.crop_padded(_rgb(g5["frame_bgr_u8"]), g6["crop_box"])
    _same(large, g4["face_large_rgb_u8"])
    img, x = B.parsing_input(large)
    _same(img, g4["input_rgb_u8"])
    gin = torch.from_numpy(g4["input"])
    assert float((x[None] - gin).abs().max() / gin.std()) <= _tolerance("input")["suggested_max_rel"]

    path = write_fake("musetalk_manifest_bisenet.json", str(tmp_path / "79999_iter.pth"),
                      base_seed=golden("musetalk").base_seed)
    net = build_parsing(path)
    with torch.inference_mode():
        low = net.logits_lowres(gin)
        full = net(gin)
    for name, ours in (("logits_lowres", low), ("logits_sub4", full[:, :, ::4, ::4]),
                       ("logits_patch", full[:, :, 200:328, 136:264])):
        gold = torch.from_numpy(g4[name])
        err = float((ours - gold).abs().max() / gold.std())
        print(f"case4 {name} rel {err:.2e}")
        assert err <= _tolerance(name)["suggested_max_rel"]

    parsing = B.parse_faces(net, [large])[0]
    flips = float((parsing != g4["parsing"]).mean())
    print(f"case4 parsing flips {flips:.2e}")
    assert flips <= _tolerance("parsing")["max_frac_differing"]
    _same(B.mode_mask(parsing, "jaw", 90, 90), g4["jaw_mask_512"])
    raw_diff = float((B.mode_mask(parsing, "raw") != g4["raw_mask_512"]).mean())
    assert raw_diff <= _tolerance("raw_mask_512")["max_frac_differing"]


@needs_shared
def test_bisenet_keys_match_the_released_checkpoint():
    entries = manifest_entries("musetalk_manifest_bisenet.json")
    own = {k: tuple(v.shape) for k, v in BiSeNet().state_dict().items()}
    assert own == {k: shape for k, (shape, _dt) in entries.items()}
    # a wrong file fails with a readable message naming the keys
    sd = keyed_state_dict(entries)
    sd.pop("ffm.conv1.weight")
    from talking_head.pipelines.core.errors import CheckpointError

    with pytest.raises(CheckpointError, match="ffm.conv1.weight"):
        build_parsing(sd)
