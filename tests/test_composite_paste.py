"""composite.paste: the planned CPU paste-back is bit-exact with the cv2 reference paths
(goldens, random geometry, frame sizes from tiny to 4K) and keeps the frame wherever
the render has no weight or cannot reach. Every test runs on both blends: cv2 / numpy
passes, and numba's compiled loop (skipped where numba is not installed)."""
import cv2
import numpy as np
import pytest

from talking_head.pipelines.composite import jit
from talking_head.pipelines.composite import paste as P
from talking_head.pipelines.composite import paste_plan as PP
from talking_head.pipelines.composite import reference as R
from talking_head.pipelines.core.errors import ShapeError, TalkingHeadError
from tests.goldens import assert_uint8_within, golden, uint8_allowance, uint8_levels
from tests.paths import needs_shared


def _matrix(rng, hw, scale=None, angle=None, centre=None, shear=0.0, size=512):
    """crop -> frame (3, 3): the crop rotated by ``angle``, ``scale`` frame px per crop
    px, its centre at ``centre`` (default: anywhere, also partly off the frame)."""
    h, w = hw
    s = rng.uniform(0.1, 3.0) * max(h, w) / 512 if scale is None else scale
    a = rng.uniform(-np.pi, np.pi) if angle is None else angle
    m = np.eye(3)
    m[:2, :2] = s * np.array([[np.cos(a), -np.sin(a) + shear], [np.sin(a), np.cos(a)]])
    c = np.array([rng.uniform(-0.2, 1.2) * w, rng.uniform(-0.2, 1.2) * h]) if centre is None \
        else np.asarray(centre, np.float64)
    m[:2, 2] = c - m[:2, :2] @ [size / 2, size / 2]
    return m


@pytest.fixture(autouse=True, params=["cv2", "jit"])
def blend(request, monkeypatch):
    """Which blend paste runs: "cv2" (numba or not) or "jit" (numba's compiled loop)."""
    monkeypatch.setattr(jit, "ENABLED", request.param == "jit")
    if request.param == "jit" and jit.blend_kernel() is None:
        pytest.skip("numba is not installed (optional): the compiled blend is not used")
    return request.param


def _twice(frame, crop, plan):
    """A plan's first paste blends the whole ROI (dense); later ones blend only the band
    (uint8 crops: split) or reuse kept weights (float crops), or (compiled blend) the
    whole ROI again in one pass: all give the same frame."""
    first = P.paste(frame, crop, plan)
    assert "split" not in plan.memo and "w3" not in plan.memo
    second = P.paste(frame, crop, plan)
    kept = ("split" if crop.dtype == np.uint8 else "w3") in plan.memo
    if not plan.empty:
        assert kept != jit.ENABLED, "the compiled blend is not what paste ran"
    np.testing.assert_array_equal(first, second, err_msg="first and later pastes differ")
    return second


def _lp(frame, crop, m):
    mask = R.lp_prepare_paste_back(m, frame.shape[:2])
    return _twice(frame, crop, P.plan_paste(m, mask)), R.lp_paste_back(crop, m, frame, mask)


def _ditto(frame, render, m):
    plan = P.plan_paste(m, R.ditto_warped_mask(m, frame.shape[:2]))
    return _twice(frame, render, plan), R.ditto_put_back(frame, render, m)


# ---------------------------------------------------------------------------------------
# goldens: the same output as the reference functions, so the same levels vs the golden


@needs_shared
@pytest.mark.parametrize("crop_key,case,key", [
    ("case7.paste_in_crop_u8", "case7_crop_and_pasteback", "pasted_u8"),
    ("case8.I_p", "case8_end_to_end_frame", "pasted_u8")])
def test_liveportrait_goldens(crop_key, case, key):
    gs = golden("liveportrait")
    c7, c8 = gs.tensors("case7_crop_pasteback", "numpy"), gs.tensors("case8_end_to_end", "numpy")
    image, m = gs.tensors("inputs", "numpy")["image_rgb_u8"], c7["crop106.M_c2o"]
    crop = c7["paste_in_crop_u8"] if crop_key.startswith("case7") else \
        R.lp_render_to_u8(c8["G.image"][0].transpose(1, 2, 0))
    gold = c7[key] if crop_key.startswith("case7") else c8[key]
    ours, ref = _lp(image, crop, m)
    np.testing.assert_array_equal(ours, ref)
    levels, frac = uint8_levels(ours, gold)
    print(f"liveportrait {case}: {levels:.0f} levels on {frac:.2e} of values")
    assert_uint8_within(ours, gold, uint8_allowance(gs, gs.case(case), key), key)


@needs_shared
@pytest.mark.parametrize("case", ["a_upscale_partly_outside", "b_downscale_inside"])
def test_ditto_putback_goldens(case):
    gs = golden("ditto")
    d = gs.tensors("putback", "numpy")
    ours, ref = _ditto(d["frame_rgb"], d["render_image"], d["M_c2o." + case])
    np.testing.assert_array_equal(ours, ref)
    levels, frac = uint8_levels(ours, d["out." + case])
    print(f"ditto putback {case}: {levels:.0f} levels on {frac:.2e} of values")
    assert_uint8_within(ours, d["out." + case], uint8_allowance(gs, gs.case("putback")),
                        "putback out")


# ---------------------------------------------------------------------------------------
# random geometry: bit-exact with the reference functions


SIZES = [(17, 23), (333, 517), (512, 512), (400, 560), (1080, 1920), (1920, 1080)]


@pytest.mark.parametrize("hw", SIZES)
@pytest.mark.parametrize("kind", ["liveportrait", "ditto"])
def test_random_geometry_is_bit_exact(hw, kind):
    rng = np.random.default_rng(hw[0] * 7919 + hw[1] + (kind == "ditto"))
    for trial in range(4):
        m = _matrix(rng, hw, shear=0.2 * (trial == 3))
        if trial % 2:
            m = m.astype(np.float32)  # the originals' matrices are float32
        frame = rng.integers(0, 256, hw + (3,), np.uint8)
        if kind == "liveportrait":
            ours, ref = _lp(frame, rng.integers(0, 256, (512, 512, 3), np.uint8), m)
        else:  # unrounded render, a little out of range, some exact integers
            render = rng.uniform(-2.0, 257.0, (512, 512, 3)).astype(np.float32)
            render[::7] = np.round(render[::7])
            ours, ref = _ditto(frame, render, m)
        np.testing.assert_array_equal(ours, ref, err_msg=f"trial {trial}, matrix {m.tolist()}")


def test_4k_frame_and_crop_larger_than_the_frame():
    rng = np.random.default_rng(4)
    hw = (2160, 3840)
    frame = rng.integers(0, 256, hw + (3,), np.uint8)
    render = rng.uniform(0, 255, (512, 512, 3)).astype(np.float32)
    for m in (_matrix(rng, hw, scale=2.2, angle=0.3, centre=(3500, 1900)),   # bottom right
              _matrix(rng, hw, scale=12.0, angle=-0.2, centre=(1900, 1000))):  # covers all
        ours, ref = _ditto(frame, render, m)
        np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize("m", [
    [[1, 0, 100], [0, 1, 50]],            # pixel-aligned copy
    [[2, 0, -3], [0, 2, 7]],              # exact upscale
    [[0.5, 0, 10.5], [0, 0.5, 3.25]],     # exact downscale, half-pixel offsets
    [[0, -1, 600], [1, 0, 20]],           # 90 degrees
    [[-1, 0, 511], [0, -1, 511]],         # 180 degrees, crop == frame
    [[1, 0, -256], [0, 1, -256]],         # three quarters off the frame
])
def test_special_matrices_are_bit_exact(m):
    rng = np.random.default_rng(1)
    m = np.array(m, np.float64)
    frame = rng.integers(0, 256, (512, 700, 3), np.uint8)
    np.testing.assert_array_equal(*_lp(frame, rng.integers(0, 256, (512, 512, 3), np.uint8), m))
    render = np.round(rng.uniform(0, 255, (512, 512, 3))).astype(np.float32)  # integers
    np.testing.assert_array_equal(*_ditto(frame, render, m))


# ---------------------------------------------------------------------------------------
# any weight: the reference's blend where the crop reaches, the frame elsewhere


def _cover(m, hw, size=512):
    return R.warp_to_frame(np.ones((size, size), np.float32), m, hw) > 0


@pytest.mark.parametrize("weight_kind", ["random", "half", "mostly_one"])
def test_any_weight_blends_where_the_crop_reaches_and_keeps_the_frame_elsewhere(weight_kind):
    rng = np.random.default_rng(2)
    hw = (300, 420)
    for trial in range(3):
        m = _matrix(rng, hw, scale=rng.uniform(0.3, 0.8))
        frame = rng.integers(0, 256, hw + (3,), np.uint8)
        crop = rng.integers(0, 256, (512, 512, 3), np.uint8)
        w = {"random": rng.uniform(-0.3, 1.3, hw),
             "half": np.full(hw, 0.5),
             "mostly_one": np.where(rng.uniform(size=hw) < 0.7, 1.0, rng.uniform(size=hw))
             }[weight_kind].astype(np.float32)
        ours = _twice(frame, crop, P.plan_paste(m, w))
        cover = _cover(m, hw)
        wc = np.clip(w, 0, 1)[..., None]
        blend = np.clip(wc * R.warp_to_frame(crop, m, hw) + (1 - wc) * frame, 0, 255)
        np.testing.assert_array_equal(ours[cover], blend.astype(np.uint8)[cover])
        # a pixel away from every covered one is the frame's, whatever its weight
        far = ~cv2.dilate(cover.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        assert far.any()
        np.testing.assert_array_equal(ours[far], frame[far])


def test_footprint_holds_every_pixel_cv2_can_reach():
    """The analytic footprint may only be wider than cv2's coverage, never narrower:
    a reference mask is > 0 exactly where cv2 covers, so nothing of it may be cut."""
    rng = np.random.default_rng(3)
    for hw in [(1080, 1920), (2160, 3840), (64, 64)]:
        for _ in range(6):
            m = _matrix(rng, hw)[:2]
            box = PP._crop_box(m, 512, hw)
            if box[1] <= box[0] or box[3] <= box[2]:
                continue
            reach = PP._footprint(m, 512, box)
            cover = _cover(m, hw)
            assert not (cover[box[0]:box[1], box[2]:box[3]] & ~reach).any()
            assert cover.sum() == cover[box[0]:box[1], box[2]:box[3]].sum()  # box holds it
            assert (reach & ~cover[box[0]:box[1], box[2]:box[3]]).sum() <= 4 * reach.shape[0]


def test_plan_splits_the_weight_into_interior_and_band():
    rng = np.random.default_rng(5)
    hw = (400, 560)
    m = _matrix(rng, hw, scale=0.6, angle=0.1, centre=(280, 200))
    w = R.ditto_warped_mask(m, hw)
    plan = P.plan_paste(m, w)
    y0, y1, x0, x1 = plan.roi
    split = plan.split()
    assert plan.split() is split  # built once
    assert (w > 0).sum() == split.interior.sum() + split.band_pixels
    assert (w[y0:y1, x0:x1][split.interior.astype(bool)] == 1).all()
    np.testing.assert_array_equal(plan.weight, w[y0:y1, x0:x1])
    assert not (w > 0)[:y0].any() and not (w > 0)[:, x1:].any()  # ROI holds every weight
    assert plan.warp_hw[0] == y1 and plan.warp_hw[1] >= x1
    assert plan.warp_hw[1] % 64 == 0 or plan.warp_hw[1] == hw[1]


def _core_weight(plan):
    r0, r1, c0, c1 = plan.core
    return plan.weight[r0:r1, c0:c1]


def test_core_is_a_large_box_of_full_weight_and_pastes_exactly():
    """The core (copied / truncated without blending) holds only w == 1 pixels; it covers
    most of a Ditto mask's inside, steps around a hole, and is the whole ROI for an
    upright crop with weight 1 everywhere. The paste stays bit-exact with the
    reference's blend in every case."""
    rng = np.random.default_rng(8)
    hw = (400, 560)
    tilted = _matrix(rng, hw, scale=0.6, angle=0.1, centre=(280, 200))
    upright = _matrix(rng, hw, scale=0.6, angle=0.0, centre=(280.3, 200.6))
    frame = rng.integers(0, 256, hw + (3,), np.uint8)
    render = rng.uniform(-5, 260, (512, 512, 3)).astype(np.float32)  # clipped as the ref
    ditto = R.ditto_warped_mask(tilted, hw)
    holed = ditto.copy()
    holed[190:210, 270:290] = 0.5
    ones = np.ones(hw, np.float32)
    # (matrix, weight, least share of the w == 1 pixels in the core); a hole splits the
    # inside, so the core is the larger part above or below it
    cases = {"ditto": (tilted, ditto, 0.6), "holed": (tilted, holed, 0.3),
             "tilted ones": (tilted, ones, 0.6), "upright ones": (upright, ones, 1.0)}
    for name, (m, w, share) in cases.items():
        plan = P.plan_paste(m, w)
        core = _core_weight(plan)
        assert core.size and (core == 1).all(), name
        assert core.size >= share * (plan.weight == 1).sum(), name
        wc = np.clip(w, 0, 1)[..., None]
        warped = R.warp_to_frame(render, m, hw)
        expect = np.clip(wc * warped + (np.float32(1) - wc) * frame, 0, 255).astype(np.uint8)
        cover = _cover(m, hw)
        ours = _twice(frame, render, plan)
        np.testing.assert_array_equal(ours[cover], expect[cover], err_msg=name)
    y0, _, x0, _ = P.plan_paste(tilted, holed).roi
    r0, r1, c0, c1 = P.plan_paste(tilted, holed).core
    assert not (r0 + y0 < 210 and r1 + y0 > 190 and c0 + x0 < 290 and c1 + x0 > 270)


# ---------------------------------------------------------------------------------------
# template plans: a video source's per-frame plan, without a frame-size mask


def _mask_plan(m, template, hw, alpha=1.0):
    """The plan of the frame-size mask as ChunkMasks makes it (torch scales it)."""
    import torch

    mask = torch.from_numpy(R.warped_crop_mask(template, m, hw)) * float(alpha)
    return P.plan_paste(m, mask.numpy())


def _template_reference(frame, crop, m, template, alpha):
    if alpha == 1.0:
        return _lp(frame, crop, m)[1] if template == "liveportrait" else R.ditto_put_back(frame, crop, m)
    w = (R.warped_crop_mask(template, m, frame.shape[:2]) * np.float32(alpha))[..., None]
    warped = R.warp_to_frame(crop, m, frame.shape[:2])
    return np.clip(w * warped + (np.float32(1) - w) * frame, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("template", ["liveportrait", "ditto"])
def test_template_plan_is_the_mask_plan_and_pastes_exactly(template):
    rng = np.random.default_rng(21 + (template == "ditto"))
    for hw in ((333, 517), (512, 512), (1080, 1920)):
        frame = rng.integers(0, 256, hw + (3,), np.uint8)
        if template == "liveportrait":
            crop = rng.integers(0, 256, (512, 512, 3), np.uint8)
        else:
            crop = rng.uniform(-2.0, 257.0, (512, 512, 3)).astype(np.float32)
        for trial in range(3):
            m = _matrix(rng, hw, shear=0.2 * (trial == 2))
            for alpha in (1.0, 0.6):
                plan, ref = P.plan_template(m, template, hw, alpha=alpha), _mask_plan(m, template, hw, alpha)
                assert (plan.roi, plan.warp_hw) == (ref.roi, ref.warp_hw), (hw, trial, alpha)
                np.testing.assert_array_equal(plan.weight, ref.weight)
                np.testing.assert_array_equal(_twice(frame, crop, plan),
                                              _template_reference(frame, crop, m, template, alpha),
                                              err_msg=f"{hw}, trial {trial}, alpha {alpha}")


@pytest.mark.parametrize("template", ["liveportrait", "ditto"])
def test_template_core_comes_from_the_flat_square(template):
    """A template plan knows its core before any paste: only w == 1 pixels, nearly as
    large as a search over the weights finds; none with alpha < 1."""
    rng = np.random.default_rng(5 + (template == "ditto"))
    for hw, scale in (((400, 560), 0.6), ((512, 512), 0.95), ((1080, 1920), 1.4)):
        for trial in range(4):
            m = _matrix(rng, hw, scale=scale, angle=rng.uniform(-0.6, 0.6),
                        centre=(hw[1] * rng.uniform(0.4, 0.6), hw[0] * rng.uniform(0.4, 0.6)))
            plan = P.plan_template(m, template, hw)
            assert plan.core_is_cheap and "core" not in plan.memo  # made when asked
            core = _core_weight(plan)
            assert core.size and (core == 1).all(), (hw, trial)
            r0, r1, c0, c1 = PP._core_box(plan.weight)
            assert core.size >= 0.85 * (r1 - r0) * (c1 - c0), (hw, trial, plan.core, (r0, r1, c0, c1))
        assert P.plan_template(m, template, hw, alpha=0.6).core == (0, 0, 0, 0)
    off = _matrix(rng, hw, scale=0.5, angle=0.0, centre=(-400, -400))
    frame = rng.integers(0, 256, hw + (3,), np.uint8)
    for plan in (P.plan_template(off, template, hw), P.plan_template(m, template, hw, alpha=0.0)):
        assert plan.empty
        np.testing.assert_array_equal(P.paste(frame, np.zeros((512, 512, 3), np.uint8), plan), frame)
    with pytest.raises(ShapeError):
        P.plan_template(m, template, hw, alpha=1.5)


def test_truncation_is_the_reference_at_the_range_edges():
    """The last step of every blend (and the whole of it in the core) casts without a
    clip when every value is in (-1, 256) (the cast truncates those exactly as
    clip-then-truncate) and clips otherwise."""
    edge = np.array([-0.99, -0.5, -1e-7, 0.0, 0.3, 254.9999, 255.0, 255.99], np.float32)
    for far in ([], [256.5], [-1.0], [-7.5, 300.0, np.inf, -np.inf]):
        values = np.concatenate([edge, np.float32(far)])
        warped = np.resize(values, (40, 64, 3)).astype(np.float32)[:, 5:60]  # a view
        out = np.zeros(warped.shape, np.uint8)
        P._truncate(warped, out)
        np.testing.assert_array_equal(out, np.clip(warped, 0, 255).astype(np.uint8))


def test_no_core_when_no_weight_is_one():
    rng = np.random.default_rng(9)
    hw = (200, 240)
    m = _matrix(rng, hw, scale=0.3, angle=0.2, centre=(120, 100))
    plan = P.plan_paste(m, np.full(hw, 0.7, np.float32))
    assert plan.core == (0, 0, 0, 0)
    assert P._strips(plan) == [(0,) + (plan.weight.shape[0],) + (0, plan.weight.shape[1])]


# ---------------------------------------------------------------------------------------
# nothing to paste, out=, batches, errors


def test_nothing_to_paste_returns_the_frame():
    rng = np.random.default_rng(6)
    frame = rng.integers(0, 256, (100, 120, 3), np.uint8)
    crop = rng.integers(0, 256, (512, 512, 3), np.uint8)
    off = np.array([[0.1, 0, 500], [0, 0.1, 500], [0, 0, 1.0]])  # entirely off the frame
    plan = P.plan_paste(off, np.ones((100, 120), np.float32))
    assert plan.empty
    np.testing.assert_array_equal(P.paste(frame, crop, plan), frame)
    on = np.array([[0.1, 0, 10], [0, 0.1, 10], [0, 0, 1.0]])
    plan = P.plan_paste(on, np.zeros((100, 120), np.float32))
    assert plan.empty
    np.testing.assert_array_equal(P.paste(frame, crop, plan), frame)
    for collapsed in (np.zeros((2, 3)), np.array([[1, 2, 5], [2, 4, 4.0]])):  # singular
        for plan in (P.plan_paste(collapsed, np.ones((100, 120), np.float32)),
                     P.plan_template(collapsed, "ditto", (100, 120))):
            assert plan.empty
            np.testing.assert_array_equal(P.paste(frame, crop, plan), frame)


def test_out_and_in_place():
    rng = np.random.default_rng(7)
    frame = rng.integers(0, 256, (200, 260, 3), np.uint8)
    crop = rng.integers(0, 256, (512, 512, 3), np.uint8)
    m = _matrix(rng, (200, 260), scale=0.4, angle=0.2, centre=(130, 100))
    ref = R.lp_paste_back(crop, m, frame, R.lp_prepare_paste_back(m, (200, 260)))
    plan = P.plan_paste(m, R.lp_prepare_paste_back(m, (200, 260)))
    out = np.zeros_like(frame)
    assert P.paste(frame, crop, plan, out=out) is out
    np.testing.assert_array_equal(out, ref)
    for _ in range(2):  # dense, then split
        same = frame.copy()
        P.paste(same, crop, plan, out=same)
        np.testing.assert_array_equal(same, ref)


def test_a_failing_compiled_blend_hands_over_to_cv2(monkeypatch, caplog):
    """numba compiles on first use: if that (or a call) fails, the frame is still the
    reference's, a warning says so, and the compiled blend stays off."""
    rng = np.random.default_rng(8)
    frame = rng.integers(0, 256, (400, 500, 3), np.uint8)
    render = rng.uniform(0, 255, (512, 512, 3)).astype(np.float32)
    m = _matrix(rng, (400, 500), scale=0.5, angle=0.3, centre=(250, 200))
    calls = []

    def broken(warped, frame, out, weight, y0, x0):
        calls.append(1)
        out[y0:y0 + len(weight), x0:x0 + weight.shape[1]] = 7  # a half-written ROI
        raise RuntimeError("LLVM could not compile")

    monkeypatch.setattr(jit, "ENABLED", True)
    monkeypatch.setattr(jit, "_kernel", [broken])
    plan = P.plan_template(m, "ditto", frame.shape[:2])
    with caplog.at_level("WARNING", logger="talking_head"):
        np.testing.assert_array_equal(P.paste(frame, render, plan), R.ditto_put_back(frame, render, m))
    assert calls == [1] and "cv2 blend" in caplog.text
    assert jit.blend_kernel() is None
    np.testing.assert_array_equal(P.paste(frame, render, plan), R.ditto_put_back(frame, render, m))
    assert calls == [1]


def test_paste_frames_image_and_video_sources():
    rng = np.random.default_rng(8)
    hw = (240, 320)
    frames = rng.integers(0, 256, (3,) + hw + (3,), np.uint8)
    ms = np.stack([_matrix(rng, hw, scale=0.4, angle=0.1 * i, centre=(160, 120))
                   for i in range(3)])
    plans = P.plan_frames(ms, [R.ditto_warped_mask(m, hw) for m in ms])
    crops = rng.uniform(0, 255, (5, 512, 512, 3)).astype(np.float32)
    index = [2, 0, 1, 1, 2]
    out = P.paste_frames(frames, crops, plans, index)
    assert out.shape == (5,) + hw + (3,) and out.dtype == np.uint8
    for t, s in enumerate(index):
        np.testing.assert_array_equal(out[t], R.ditto_put_back(frames[s], crops[t], ms[s]))
    one = P.paste_frames(frames[:1], crops[:2], plans[:1])  # an image source: frame 0
    np.testing.assert_array_equal(one[1], R.ditto_put_back(frames[0], crops[1], ms[0]))


def test_errors_say_what_to_pass():
    rng = np.random.default_rng(9)
    frame = rng.integers(0, 256, (100, 120, 3), np.uint8)
    m = _matrix(rng, (100, 120), scale=0.1, angle=0.0, centre=(60, 50))
    plan = P.plan_paste(m, np.ones((100, 120), np.float32))
    crop = np.zeros((512, 512, 3), np.uint8)
    bad = [lambda: P.paste(frame[:50], crop, plan),
           lambda: P.paste(frame.astype(np.float32), crop, plan),
           lambda: P.paste(frame, crop[:256, :256], plan),
           lambda: P.paste(frame, crop.astype(np.int32), plan),
           lambda: P.paste(frame, crop, plan, out=np.zeros((100, 120, 3), np.float32)),
           lambda: P.plan_paste(np.eye(4), np.ones((100, 120), np.float32)),
           lambda: P.plan_paste(np.full((3, 3), np.nan), np.ones((100, 120), np.float32)),
           lambda: P.plan_paste(m, np.ones((100, 120, 2), np.float32)),
           lambda: P.paste_frames(frame[None], crop[None], [plan, plan]),
           lambda: P.paste_frames(np.stack([frame] * 2), np.stack([crop] * 3), [plan] * 2),
           lambda: P.paste_frames(frame[None], crop[None], [plan], index=[1])]
    for call in bad:
        with pytest.raises(ShapeError) as err:
            call()
        assert isinstance(err.value, TalkingHeadError) and len(str(err.value)) > 20
