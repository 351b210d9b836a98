"""Blend modes x regions: the masks they document, and the torch paste-back.

Expectations are built independently of the code under test: region hulls rasterised
with cv2.fillPoly and feathered with cv2.distanceTransform, the crop square from the
cv2 reference paste-back, the nose line from the synthetic face's construction.
"""
import math

import cv2
import numpy as np
import pytest
import torch

from talking_head.pipelines import composite as C
from talking_head.pipelines.composite import regions as R
from talking_head.pipelines.core.errors import ShapeError, TalkingHeadError

H, W = 360, 480
SCALE, ANGLE = 0.6, math.radians(8.0)
FACE_C, FACE_AX = np.array([256.0, 270.0]), np.array([95.0, 125.0])  # crop px
NOSE_Y, MOUTH_C, EYE_Y = 290.0, np.array([256.0, 330.0]), 240.0
FEATHER = 10.0


def _crop_to_frame(scale=SCALE, angle=ANGLE, centre=(240.0, 175.0)):
    c, s = scale * math.cos(angle), scale * math.sin(angle)
    lin = np.array([[c, -s], [s, c]])
    t = np.asarray(centre) - lin @ np.array([255.5, 255.5])
    return np.array([[lin[0, 0], lin[0, 1], t[0]], [lin[1, 0], lin[1, 1], t[1]], [0, 0, 1]])


M = _crop_to_frame()


def _to_frame(pts, m=M):
    return np.asarray(pts, np.float64) @ m[:2, :2].T + m[:2, 2]


def _to_crop(pts, m=M):
    inv = np.linalg.inv(m)
    return np.asarray(pts, np.float64) @ inv[:2, :2].T + inv[:2, 2]


def _ellipse(n, centre, axes, phase=0.0):
    a = phase + np.linspace(0, 2 * np.pi, n, endpoint=False)
    return centre + np.stack([axes[0] * np.sin(a), -axes[1] * np.cos(a)], axis=1)


def _mediapipe_face(seed=0):
    """478 MediaPipe-like points in crop px: oval, eyes, nose tip, lips at known places,
    the rest scattered inside the oval."""
    rng = np.random.default_rng(seed)
    pts = _ellipse(478, FACE_C, FACE_AX * 0.8, phase=rng.uniform(0, 2 * np.pi))
    pts = FACE_C + (pts - FACE_C) * rng.uniform(0.0, 1.0, (478, 1))
    pts[list(R.MP_FACE_OVAL)] = _ellipse(len(R.MP_FACE_OVAL), FACE_C, FACE_AX)
    pts[list(R.MP_LIPS_OUTER)] = _ellipse(len(R.MP_LIPS_OUTER), MOUTH_C, (40.0, 15.0))
    pts[[33, 133, 362, 263]] = [[200, EYE_Y], [235, EYE_Y], [277, EYE_Y], [312, EYE_Y]]
    pts[1] = [256.0, NOSE_Y]
    return pts


def _hard_mask(poly_frame, extra=None):
    """Independent raster of a convex polygon (frame px), optionally AND-ed."""
    img = np.zeros((H, W), np.uint8)
    hull = cv2.convexHull(np.round(poly_frame * 16).astype(np.int32))
    cv2.fillConvexPoly(img, hull, 1, lineType=cv2.LINE_8, shift=4)
    return img.astype(bool) if extra is None else img.astype(bool) & extra


def _crop_coords():
    ys, xs = np.mgrid[0:H, 0:W]
    return _to_crop(np.stack([xs, ys], -1).reshape(-1, 2)).reshape(H, W, 2)


def _expected(hard, alpha, feather):
    dist = cv2.distanceTransform(hard.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return alpha * np.clip((dist - 0.5) / feather, 0, 1), dist


def _at(mask, pt):
    x, y = np.round(_to_frame([pt])[0]).astype(int)
    return float(mask[y, x])


def build(region, hw, ctf, landmarks=None, scheme="mediapipe478", feather=None, alpha=1.0,
          crop_template="liveportrait"):
    """build_masks for a region at a plain render weight ``alpha`` (mode custom)."""
    spec = C.BlendSpec("custom", alpha, region, feather, "off", crop_template)
    return C.build_masks(spec, hw, ctf, landmarks, scheme)


def paste(rendered, frames, ctf, mask, source_index=None, color_match="off", batch_size=8,
          check_interrupt=None, progress=None):
    from talking_head.pipelines.core.runtime import RunContext

    return C.paste_torch(rendered, frames, ctf, mask, source_index, color_match,
                         RunContext(progress=progress, interrupt=check_interrupt), batch_size)


def _masks(region, alpha, landmarks=None, scheme="mediapipe478", feather=FEATHER, **kw):
    lm = None if landmarks is None else torch.from_numpy(_to_frame(landmarks))[None]
    return build(region, (H, W), M[None], lm, scheme, feather, alpha, **kw)[0].numpy()


MODE_ALPHAS = [("replace", None), ("strong", None), ("blend", None), ("weak", None),
               ("custom", 0.7)]


# ---------------------------------------------------------------------------------------
# modes


def test_modes_and_alpha_resolution():
    assert C.MODES == {"replace": 1.0, "strong": 0.9, "blend": 0.5, "weak": 0.25, "custom": None}
    assert C.REGIONS == ("crop", "face", "lower_face")
    assert C.BlendSpec("strong").weight == 0.9
    assert C.BlendSpec("custom", 0.3).weight == 0.3
    for bad in [None, -0.1, 1.5]:
        with pytest.raises(TalkingHeadError):
            C.BlendSpec("custom", bad)
    with pytest.raises(TalkingHeadError):
        C.BlendSpec("soft")


# ---------------------------------------------------------------------------------------
# regions


@pytest.mark.parametrize("mode,custom", MODE_ALPHAS)
def test_crop_region_is_the_official_mask_times_alpha(mode, custom):
    from talking_head.pipelines.composite import lp_prepare_paste_back

    alpha = C.BlendSpec(mode, custom).weight
    mask = _masks("crop", alpha, feather=None)
    official = lp_prepare_paste_back(M, (H, W))[..., 0]
    assert np.abs(mask - alpha * official).max() <= 2 / 255
    assert _at(mask, (255.5, 255.5)) == pytest.approx(alpha, abs=1e-6)
    crop = _crop_coords()
    outside = (crop < -1).any(-1) | (crop > 512).any(-1)
    assert outside.any() and mask[outside].max() == 0.0


def test_crop_feather_widens_the_official_ramp_inward():
    base = _masks("crop", 1.0, feather=None)
    soft = _masks("crop", 1.0, feather=20.0)
    assert (soft <= base + 1e-6).all()
    crop = _crop_coords()
    inset = np.minimum(crop - 16.0, 496.0 - crop).min(-1) * SCALE  # frame px into the flat
    deep = inset > 21
    np.testing.assert_allclose(soft[deep], base[deep], atol=1e-6)
    band = (inset > 1) & (inset < 19)
    assert ((soft[band] > 0) & (soft[band] < 1)).all()
    np.testing.assert_allclose(soft[band], np.clip(inset[band] / 20.0, 0, 1), atol=0.06)


@pytest.mark.parametrize("mode,custom", MODE_ALPHAS)
def test_face_region_is_the_feathered_oval_hull(mode, custom):
    alpha = C.BlendSpec(mode, custom).weight
    face = _mediapipe_face()
    mask = _masks("face", alpha, face)
    hard = _hard_mask(_to_frame(face[list(R.MP_FACE_OVAL)]))
    expected, dist = _expected(hard, alpha, FEATHER)
    assert _at(mask, FACE_C) == pytest.approx(alpha, abs=1e-6)
    assert mask[~hard].max() <= alpha * 0.06  # outside: 0 up to the raster's 1/2 px
    assert np.abs(mask - expected).max() <= alpha * 1.2 / FEATHER
    ramp = hard & (dist > 1.5) & (dist < FEATHER - 1)
    assert ((mask[ramp] > 0) & (mask[ramp] < alpha)).all()
    np.testing.assert_allclose(mask[dist > FEATHER + 1], alpha, atol=alpha * 0.01)
    # points 5 % outside the oval are exactly 0: no square on plain backgrounds
    ring = _ellipse(40, FACE_C, FACE_AX * 1.05)
    assert max(_at(mask, p) for p in ring) == 0.0


@pytest.mark.parametrize("mode,custom", MODE_ALPHAS)
def test_lower_face_is_below_the_nose_line(mode, custom):
    alpha = C.BlendSpec(mode, custom).weight
    face = _mediapipe_face(seed=1)
    mask = _masks("lower_face", alpha, face)
    crop = _crop_coords()
    below = crop[..., 1] >= NOSE_Y  # the synthetic face is upright in crop space
    hard = _hard_mask(_to_frame(face[list(R.MP_FACE_OVAL)]), below)
    expected, dist = _expected(hard, alpha, FEATHER)
    assert mask[crop[..., 1] < NOSE_Y].max() == 0.0  # zero above the nose line
    assert _at(mask, MOUTH_C) == pytest.approx(alpha, abs=1e-6)
    for eye in ([217, EYE_Y], [295, EYE_Y], FACE_C - [0, 100]):
        assert _at(mask, eye) == 0.0
    assert mask[~hard].max() <= alpha * 0.06
    assert np.abs(mask - expected).max() <= alpha * 1.2 / FEATHER
    ramp = hard & (dist > 1.5) & (dist < FEATHER - 1)
    assert ((mask[ramp] > 0) & (mask[ramp] < alpha)).all()


def test_automatic_feather_is_16_crop_pixels():
    face = _mediapipe_face()
    auto = _masks("face", 1.0, face, feather=None)
    fixed = _masks("face", 1.0, face, feather=16 * SCALE)
    np.testing.assert_allclose(auto, fixed, atol=1e-5)


def test_a_frames_mask_does_not_depend_on_its_batch():
    """Masks made for a whole video and for one chunk of it are equal bit for bit (the
    Blend node and the render's own paste-back make them in different batches)."""
    face = _to_frame(_mediapipe_face())
    ctf = np.stack([_crop_to_frame(centre=(150.0 + 40 * i, 120.0 + 25 * i)) for i in range(4)])
    shift = ctf[:, :2, 2] - M[:2, 2]
    lm = torch.from_numpy(np.stack([face + d for d in shift]))
    for region, feather in (("crop", FEATHER), ("face", None), ("lower_face", 6.0)):
        every = build(region, (H, W), ctf, lm, feather=feather)
        for part in ([2, 3], [1], [0, 3]):
            alone = build(region, (H, W), ctf[part], lm[part], feather=feather)
            assert torch.equal(every[part], alone), (region, part)


def test_generic_scheme_uses_the_hull_and_a_mid_cut():
    rng = np.random.default_rng(3)
    pts = _ellipse(68, FACE_C, FACE_AX * 0.9)  # any K: outline + inner points
    pts = np.concatenate([pts, FACE_C + rng.normal(0, 20, (12, 2))])
    face = _masks("face", 1.0, pts, scheme="whatever80")
    hard = _hard_mask(_to_frame(pts))
    assert _at(face, FACE_C) == 1.0 and face[~hard].max() <= 0.06
    lower = _masks("lower_face", 1.0, pts, scheme="whatever80")
    ys = pts[:, 1]
    cut = ys.min() + R.GENERIC_CUT_FRACTION * (ys.max() - ys.min())
    crop = _crop_coords()
    assert lower[crop[..., 1] < cut - 0.5].max() == 0.0
    assert _at(lower, (FACE_C[0], cut + FEATHER / SCALE + 5)) == 1.0


def test_lmk203_cuts_between_eyes_and_mouth():
    pts = np.concatenate([_ellipse(203, FACE_C, FACE_AX)])
    for group, x in zip(R.LMK203_EYES, (215.0, 297.0)):
        pts[list(group)] = [x, EYE_Y]
    pts[list(R.LMK203_MOUTH)] = [[226.0, MOUTH_C[1]], [286.0, MOUTH_C[1]]]
    mask = _masks("lower_face", 1.0, pts, scheme="lp203")
    cut = EYE_Y + R.NOSE_LINE_FRACTION * (MOUTH_C[1] - EYE_Y)
    crop = _crop_coords()
    assert mask[crop[..., 1] < cut - 0.5].max() == 0.0
    assert _at(mask, (256.0, cut + FEATHER / SCALE + 5)) == 1.0


def test_frames_without_usable_landmarks_keep_the_original():
    face = _to_frame(_mediapipe_face())
    lm = np.stack([face, np.full_like(face, np.nan)])
    masks = build("face", (H, W), np.stack([M, M]), lm, feather=FEATHER).numpy()
    assert masks[0].max() == 1.0 and masks[1].max() == 0.0


def test_mask_errors_are_actionable():
    with pytest.raises(TalkingHeadError, match="landmarks"):
        build("face", (H, W), M[None])
    with pytest.raises(TalkingHeadError, match="region"):
        build("square", (H, W), M[None])
    with pytest.raises(ShapeError):
        build("face", (H, W), M[None], np.zeros((2, 478, 2)))
    with pytest.raises(TalkingHeadError, match="feather"):
        build("crop", (H, W), M[None], feather=-1)
    with pytest.raises(TalkingHeadError, match="alpha"):
        build("crop", (H, W), M[None], alpha=1.5)
    # the 2x3 form cv2 uses is accepted as well
    np.testing.assert_array_equal(build("crop", (H, W), M[:2]),
                                  build("crop", (H, W), M[None]))


# ---------------------------------------------------------------------------------------
# torch paste-back


def _smooth_image(size, seed, channels=3):
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.uniform(0, 1, (size // 16, size // 16, channels)).astype(np.float32),
                     (size, size), interpolation=cv2.INTER_CUBIC)
    return np.clip(img, 0, 1)


@pytest.mark.parametrize("scale,angle", [(0.6, 8.0), (1.7, -23.0)])
def test_torch_path_agrees_with_cv2(scale, angle):
    """<= 2 levels on 99.9 % of values, on a downscaled and an upscaled crop."""
    m = _crop_to_frame(scale, math.radians(angle), centre=(250.0, 170.0))
    render = _smooth_image(512, 5) * 255.0
    frame = (_smooth_image(480, 6)[:H] * 255).astype(np.uint8)
    golden = C.ditto_put_back(frame, render, m).astype(np.float64)
    mask = build("crop", (H, W), m[None], crop_template="ditto")
    out = paste(torch.from_numpy(render / 255.0)[None].float(),
                torch.from_numpy(frame / 255.0)[None].float(), m[None], mask)[0].numpy() * 255.0
    diff = np.abs(out - golden)
    assert np.quantile(diff, 0.999) <= 2.0 and diff.max() <= 3.0, (diff.max(),)
    # the LivePortrait template is 15/255 on its last column: its whole support counts
    lp_mask = build("crop", (H, W), m[None])[0].numpy()
    official = C.lp_prepare_paste_back(m, (H, W))[..., 0]
    assert np.abs(lp_mask - official).max() <= 2 / 255
    warped = C.warp_to_frame(render.astype(np.float32), m, (H, W))
    from talking_head.pipelines.composite.warp import crop_roi, warp_crops

    mt = torch.from_numpy(m)[None]
    roi = crop_roi(mt, 512, (H, W))
    ours = warp_crops(torch.from_numpy(render).float().permute(2, 0, 1)[None], mt, roi)
    ref = warped[roi.y0:roi.y1, roi.x0:roi.x1].transpose(2, 0, 1)
    assert np.quantile(np.abs(ours[0].numpy() - ref), 0.999) <= 2.0


def test_upscaled_crop_mask_keeps_its_whole_support():
    """Upscaled 3x, the template's last column (15/255) spreads ~3 frame px past the
    crop's last pixel centre; the sampled box must include all of it."""
    m = _crop_to_frame(3.0, 0.0, centre=(-500.3, 150.0))  # only the right edge is in view
    ours = build("crop", (300, 400), m[None])[0].numpy()
    official = C.lp_prepare_paste_back(m, (300, 400))[..., 0]
    assert official[:, 268:].max() > 0  # support beyond the last pixel centre (x ~ 267.7)
    assert np.abs(ours - official).max() <= 2 / 255
    assert (ours[official > 0] > 0).all()


def _scene(n_src=2, n_out=3, seed=0):
    frames = torch.stack([torch.full((H, W, 3), 0.2 + 0.5 * i) for i in range(n_src)])
    rendered = torch.from_numpy(np.stack([_smooth_image(512, seed + i) for i in range(n_out)]))
    ctf = np.stack([_crop_to_frame(SCALE, ANGLE + 0.05 * i) for i in range(n_src)])
    return frames, rendered, ctf


@pytest.mark.parametrize("mode,custom", MODE_ALPHAS)
def test_alpha_blends_render_and_frame_at_the_centre(mode, custom):
    alpha = C.BlendSpec(mode, custom).weight
    frames, rendered, ctf = _scene(1, 1)
    mask = build("face", (H, W), ctf, torch.from_numpy(_to_frame(_mediapipe_face()))[None],
                         alpha=alpha)
    out = paste(rendered, frames, ctf, mask)[0].numpy()
    x, y = np.round(_to_frame([FACE_C])[0]).astype(int)
    warped = C.warp_to_frame(rendered[0].numpy(), ctf[0], (H, W))[y, x]
    np.testing.assert_allclose(out[y, x], alpha * warped + (1 - alpha) * 0.2, atol=2e-3)
    assert np.allclose(out[5, 5], 0.2)  # outside the region: the original frame


def test_source_index_batches_and_progress():
    frames, rendered, ctf = _scene(2, 3)
    mask = build("crop", (H, W), ctf)
    calls = []
    idx = torch.tensor([1, 0, 1])
    out = paste(rendered, frames, ctf, mask, source_index=idx, batch_size=2,
                progress=lambda done, total: calls.append((done, total)))
    assert calls == [(2, 3), (3, 3)]
    for t, s in enumerate(idx.tolist()):
        assert torch.allclose(out[t, 2, 2], frames[s, 2, 2])  # corner: outside the crop
        x, y = np.round(_to_frame([[255.5, 255.5]], ctf[s])[0]).astype(int)
        warped = C.warp_to_frame(rendered[t].numpy(), ctf[s], (H, W))[y, x]
        np.testing.assert_allclose(out[t, y, x].numpy(), warped, atol=2e-3)
    one_batch = paste(rendered, frames, ctf, mask, source_index=idx, batch_size=8)
    assert torch.equal(out, one_batch)


def test_interrupt_stops_the_loop():
    frames, rendered, ctf = _scene(1, 3)
    mask = build("crop", (H, W), ctf)
    seen = []

    def check():
        seen.append(1)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        paste(rendered, frames, ctf, mask, batch_size=1, check_interrupt=check)
    assert len(seen) == 2


def test_user_mask_beyond_the_crop_keeps_the_frame():
    frames, rendered, ctf = _scene(1, 1)
    out = paste(rendered, frames, ctf, torch.ones(1, H, W))[0]
    assert torch.allclose(out[0, 0], frames[0, 0, 0])
    assert torch.allclose(out[H - 1, W - 1], frames[0, 0, 0])


def _tint(rgb, space):
    """A per-channel gain + offset in the matching space: what matching should undo."""
    from talking_head.pipelines.composite.color import lab_to_rgb, rgb_to_lab

    if space == "rgb":
        return np.clip(rgb * [0.8, 1.0, 1.15] + [0.08, -0.05, 0.02], 0, 1).astype(np.float32)
    lab = rgb_to_lab(torch.from_numpy(rgb).double())
    lab = lab * torch.tensor([0.9, 1.1, 0.9], dtype=torch.float64) + torch.tensor(
        [4.0, 2.0, -3.0], dtype=torch.float64)
    return lab_to_rgb(lab).clamp(0, 1).float().numpy()


@pytest.mark.parametrize("space", ["rgb", "lab"])
def test_color_match_undoes_a_tint(space):
    rng = np.random.default_rng(7)
    frame = cv2.resize(rng.uniform(0.2, 0.8, (24, 32, 3)).astype(np.float32), (W, H),
                       interpolation=cv2.INTER_CUBIC)
    inv = np.linalg.inv(M)
    crop = cv2.warpAffine(frame, inv[:2], (512, 512), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT)
    tinted = _tint(crop, space)
    face = torch.from_numpy(_to_frame(_mediapipe_face()))[None]
    mask = build("face", (H, W), M[None], face)
    args = (torch.from_numpy(tinted)[None], torch.from_numpy(frame)[None], M[None], mask)
    plain = paste(*args)[0].numpy()
    matched = paste(*args, color_match=space)[0].numpy()
    inside = mask[0].numpy() > 0.99
    err_plain = np.abs(plain - frame)[inside].mean()
    err_matched = np.abs(matched - frame)[inside].mean()
    assert err_matched < 0.25 * err_plain, (err_matched, err_plain)
    outside = mask[0].numpy() == 0
    np.testing.assert_array_equal(matched[outside], frame[outside])


def test_lab_round_trip():
    from talking_head.pipelines.composite.color import lab_to_rgb, rgb_to_lab

    rgb = torch.rand(1000, 3, dtype=torch.float64)
    np.testing.assert_allclose(lab_to_rgb(rgb_to_lab(rgb)).numpy(), rgb.numpy(), atol=1e-6)
    white = rgb_to_lab(torch.ones(1, 3, dtype=torch.float64))[0]
    np.testing.assert_allclose(white.numpy(), [100, 0, 0], atol=1e-3)


def test_composite_shape_errors():
    frames, rendered, ctf = _scene(2, 3)
    mask = build("crop", (H, W), ctf)
    with pytest.raises(ShapeError, match="source_index"):
        paste(rendered, frames, ctf, mask)
    with pytest.raises(ShapeError):
        paste(rendered, frames, ctf, mask[:, :10], source_index=[0, 1, 1])
    with pytest.raises(TalkingHeadError, match="color_match"):
        paste(rendered, frames, ctf, mask, source_index=[0, 1, 1], color_match="hsv")


def test_every_mode_and_region_is_documented():
    assert set(C.MODE_HELP) == set(C.MODES) and set(C.REGION_HELP) == set(C.REGIONS)
    for name in list(C.MODES) + list(C.REGIONS):
        assert f"``{name}``" in C.__doc__
