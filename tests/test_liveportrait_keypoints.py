"""LivePortrait keypoint maths beyond the golden case 3: hull volume, animation regions,
absolute mode, single driving image, video sources, retargeting, multiplier, smoothing.
Expectations are written independently of the implementation (closed forms, exact copies).
"""
import itertools
import math

import numpy as np
import pytest
import torch

from talking_head.pipelines.core.errors import ShapeError
from talking_head.pipelines.liveportrait import keypoints as K
from talking_head.pipelines.liveportrait import stitching as S
from talking_head.pipelines.liveportrait.hull import convex_hull_volume
from talking_head.pipelines.core.types import MotionInfo


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _rot(g):
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))
    return q * torch.sign(torch.det(q))


# ---------------------------------------------------------------------------------------
# hull


def test_hull_volume_closed_forms():
    rng = np.random.default_rng(0)
    cube = np.array(list(itertools.product([0, 1], repeat=3)), float)
    assert convex_hull_volume(cube) == pytest.approx(1.0, abs=1e-12)
    # interior points and points on a face (coplanar facets) change nothing
    extra = np.vstack([rng.random((30, 3)), np.c_[rng.random((8, 2)), np.ones(8)]])
    assert convex_hull_volume(np.vstack([cube, extra])) == pytest.approx(1.0, abs=1e-12)
    tetra = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], float)
    assert convex_hull_volume(tetra) == pytest.approx(1 / 6, abs=1e-12)
    octa = np.vstack([np.eye(3), -np.eye(3)])
    rot = _rot(_gen(1)).numpy()
    pts = np.vstack([octa, 0.3 * rng.random((10, 3)) - 0.15]) @ rot.T * 2.5 + [3, -1, 2]
    assert convex_hull_volume(pts) == pytest.approx(4 / 3 * 2.5 ** 3, rel=1e-10)
    assert convex_hull_volume(np.c_[rng.random((21, 2)), np.zeros(21)]) == 0.0
    assert convex_hull_volume(cube[:3]) == 0.0
    perm = rng.permutation(len(pts))
    assert convex_hull_volume(pts[perm]) == pytest.approx(convex_hull_volume(pts), rel=1e-12)


def test_expression_friendly_multiplier_is_volume_ratio():
    x = torch.randn(21, 3, generator=_gen(2))
    # vol scales with s^3, the multiplier is sqrt(vol_s / vol_d) = s^-1.5
    assert K.expression_friendly_multiplier(x, 1.2 * x + 0.3) == pytest.approx(1.2 ** -1.5, rel=1e-6)


# ---------------------------------------------------------------------------------------
# composition


def _pose_exp(seed, n=1) -> K.PoseExp:
    g = _gen(seed)
    deg = (torch.rand(n, 3, generator=g) - 0.5) * 40
    return K.PoseExp(K.rotation_matrix(deg[:, 0], deg[:, 1], deg[:, 2]),
                     torch.randn(n, 21, 3, generator=g) * 0.05,
                     0.4 + 0.1 * torch.rand(n, 1, generator=g), torch.randn(n, 3, generator=g) * 0.1)


def _flat_t(t):
    return torch.cat([t[:, :2], torch.zeros_like(t[:, 2:])], 1)


def test_expression_masks():
    counts = {r: int(K.expression_mask(r).sum()) for r in K.REGIONS}
    # 13 full rows (39) + rows 3,4 y + row 5 z + row 8 z + row 9 y,z = 45
    assert counts == {"all": 45, "exp": 45, "pose": 0, "lip": 18, "eyes": 15}
    assert K.expression_mask("lip")[list(K.LIP_KP)].all()


def test_relative_regions():
    src, drv, drv0 = _pose_exp(1), _pose_exp(2), _pose_exp(3)
    rel_R = drv.R @ drv0.R.transpose(1, 2) @ src.R
    moved = src.exp + (drv.exp - drv0.exp)
    allr = K.compose_driving(src, drv, drv0, K.DriveOptions(region="all"))
    torch.testing.assert_close(allr.R, rel_R)
    torch.testing.assert_close(allr.exp, moved)
    torch.testing.assert_close(allr.scale, src.scale * drv.scale / drv0.scale)
    torch.testing.assert_close(allr.t, _flat_t(src.t + drv.t - drv0.t))

    pose = K.compose_driving(src, drv, drv0, K.DriveOptions(region="pose"))
    assert torch.equal(pose.exp, src.exp) and torch.equal(pose.scale, src.scale)
    torch.testing.assert_close(pose.R, rel_R)
    torch.testing.assert_close(pose.t, allr.t)

    exp = K.compose_driving(src, drv, drv0, K.DriveOptions(region="exp"))
    assert torch.equal(exp.R, src.R) and torch.equal(exp.t, _flat_t(src.t))
    torch.testing.assert_close(exp.exp, moved)

    for region, rows in (("lip", K.LIP_KP), ("eyes", K.EYE_KP)):
        out = K.compose_driving(src, drv, drv0, K.DriveOptions(region=region))
        others = [i for i in range(21) if i not in rows]
        assert torch.equal(out.exp[:, others], src.exp[:, others])
        torch.testing.assert_close(out.exp[:, list(rows)], moved[:, list(rows)])
        assert torch.equal(out.R, src.R) and torch.equal(out.scale, src.scale)

    same = K.compose_driving(src, drv0, drv0, K.DriveOptions())
    torch.testing.assert_close(same.R, src.R)
    torch.testing.assert_close(same.exp, src.exp)

    with pytest.raises(ShapeError):
        K.DriveOptions(region="mouth")


def test_absolute_single_image_and_video_source():
    src, drv, drv0 = _pose_exp(4), _pose_exp(5), _pose_exp(6)
    mask = K.expression_mask("all")
    absolute = K.compose_driving(src, drv, None, K.DriveOptions(relative=False))
    assert torch.equal(absolute.R, drv.R) and torch.equal(absolute.scale, src.scale)
    assert torch.equal(absolute.t, _flat_t(drv.t))
    assert torch.equal(absolute.exp[:, mask], drv.exp[:, mask])
    assert torch.equal(absolute.exp[:, ~mask], src.exp[:, ~mask])

    image = K.compose_driving(src, drv, drv, K.DriveOptions(driver_is_image=True))
    lip_array = torch.tensor(K.LIP_ARRAY, dtype=torch.float32)
    torch.testing.assert_close(image.exp, src.exp + drv.exp - lip_array)
    assert torch.equal(image.R, src.R) and torch.equal(image.scale, src.scale)

    video = K.compose_driving(src, drv, drv0, K.DriveOptions(), source_is_video=True)
    assert torch.equal(video.scale, src.scale) and torch.equal(video.t, _flat_t(src.t))
    assert torch.equal(video.exp[:, ~mask], src.exp[:, ~mask])
    torch.testing.assert_close(video.exp[:, mask], (src.exp + drv.exp - drv0.exp)[:, mask])


# ---------------------------------------------------------------------------------------
# drive_keypoints


def _info(seed, n) -> MotionInfo:
    g = _gen(seed)
    return MotionInfo(pitch=torch.randn(n, 66, generator=g), yaw=torch.randn(n, 66, generator=g),
                      roll=torch.randn(n, 66, generator=g), t=torch.randn(n, 3, generator=g) * 0.1,
                      exp=torch.randn(n, 63, generator=g) * 0.05,
                      scale=0.4 + 0.1 * torch.rand(n, 1, generator=g),
                      kp=torch.randn(n, 63, generator=g) * 0.5)


def _nets(seed=0):
    g, nets = _gen(seed), {}
    for _outer, (role, cfg) in S.ENTRIES.items():
        net = nets[role] = S.StitchingMLP(cfg).eval()
        with torch.no_grad():
            for p in net.parameters():
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[-1]))
    return nets


def _motion(n=4, **kw):
    return K.motion_from_info(_info(11, n), fps=25.0).replace(**kw)


def test_multiplier_expression_friendly_and_stitching():
    src, motion = _info(10, 1), _motion()
    plain = K.drive_keypoints(src, motion, K.DriveOptions(stitching=False, expression_friendly=False))
    x_s, x_d = plain.x_s, plain.x_d
    assert x_s.shape == x_d.shape == (4, 21, 3) and torch.equal(x_s[0], x_s[3])
    torch.testing.assert_close(x_s[0:1], _posed(src.as_dict()))
    for m in (0.0, 2.5):
        out = K.drive_keypoints(src, motion, K.DriveOptions(stitching=False, expression_friendly=False,
                                                            driving_multiplier=m))
        torch.testing.assert_close(out.x_d, x_s + (x_d - x_s) * m)
    ef = K.drive_keypoints(src, motion, K.DriveOptions(stitching=False))
    mult = K.expression_friendly_multiplier(x_s[0], x_d[0])
    torch.testing.assert_close(ef.x_d, x_s + (x_d - x_d[0:1]) * mult)
    torch.testing.assert_close(ef.x_d[0], x_s[0])

    nets = _nets()
    st = K.drive_keypoints(src, motion, K.DriveOptions(), nets)
    torch.testing.assert_close(st.x_d, S.stitch(nets["stitching"], x_s, ef.x_d).detach())
    with pytest.raises(ShapeError, match="stitching"):
        K.drive_keypoints(src, motion, K.DriveOptions(), nets={})


def test_retargeting_and_lip_normalisation():
    src, nets = _info(12, 1), _nets(1)
    g = _gen(13)
    eye, lip = torch.rand(4, 3, generator=g) * 0.4, torch.rand(4, 2, generator=g) * 0.3
    motion = _motion(eye_ratio=eye, lip_ratio=lip)
    opts = K.DriveOptions(eye_retargeting=True, lip_retargeting=True)
    out = K.drive_keypoints(src, motion, opts, nets)
    x_s = out.x_s
    with torch.no_grad():
        want = x_s + S.retarget_eye(nets["retarget_eye"], x_s, eye) + S.retarget_lip(nets["retarget_lip"], x_s, lip)
        want = S.stitch(nets["stitching"], x_s, want)
    torch.testing.assert_close(out.x_d, want)
    with pytest.raises(ShapeError, match="eye_ratio"):
        K.drive_keypoints(src, _motion(), opts, nets)

    base = K.drive_keypoints(src, motion, K.DriveOptions(), nets)
    closed = K.drive_keypoints(src, motion, K.DriveOptions(normalize_lip=True), nets,
                               source_lip_ratio=0.01)  # under the 0.03 threshold: no change
    assert torch.equal(closed.x_d, base.x_d)
    opened = K.drive_keypoints(src, motion, K.DriveOptions(normalize_lip=True), nets,
                               source_lip_ratio=0.2)
    with torch.no_grad():
        delta = S.retarget_lip(nets["retarget_lip"], x_s, torch.tensor([[0.2, 0.0]]).expand(4, 2))
    torch.testing.assert_close(opened.x_d, base.x_d + delta)


def test_video_source_follows_source_index():
    src = _info(20, 3)
    motion = _motion(source_index=torch.tensor([2, 0, 1, 2]))
    out = K.drive_keypoints(src, motion, K.DriveOptions(stitching=False))
    per_frame = _posed(src.as_dict())
    torch.testing.assert_close(out.x_s, per_frame[[2, 0, 1, 2]])
    assert out.source_index.tolist() == [2, 0, 1, 2]


# ---------------------------------------------------------------------------------------
# smoothing


def _posterior_mean(z: np.ndarray, q: float, r: float) -> np.ndarray:
    """Exact posterior mean of a random walk x (x_0 ~ N(z_0, 1), steps N(0, q)) seen
    through z_t = x_t + N(0, r): solve the tridiagonal precision system."""
    n = len(z)
    P = np.zeros((n, n))
    b = z / r
    P[np.arange(n), np.arange(n)] = 1 / r
    P[0, 0] += 1.0
    b = b.copy()
    b[0] += z[0]
    for i in range(1, n):
        P[i, i] += 1 / q
        P[i - 1, i - 1] += 1 / q
        P[i, i - 1] -= 1 / q
        P[i - 1, i] -= 1 / q
    return np.linalg.solve(P, b)


def test_rts_smoother_is_the_exact_posterior_mean():
    g = _gen(40)
    x = torch.cumsum(torch.randn(30, 4, generator=g, dtype=torch.float64) * 0.01, 0)
    x = x + torch.randn(30, 4, generator=g, dtype=torch.float64) * 0.003
    for r in (3e-7, 1e-4):
        got = K.rts_smooth(x, r)
        want = np.stack([_posterior_mean(x[:, d].numpy(), 1e-5, r) for d in range(4)], 1)
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-9, atol=1e-12)
    const = torch.full((5, 2), 0.7, dtype=torch.float64)
    torch.testing.assert_close(K.rts_smooth(const, 1e-3), const)
    assert math.isclose(float(K.rts_smooth(x[:1], 1e-3)[0, 0]), float(x[0, 0]))


def _posed(info: dict):
    """x = scale * (kp @ R + exp) + t (xy): the source keypoints from a motion-extractor dict."""
    kp, pe, _ = K.decode_info(MotionInfo(**info))
    return K.compose_keypoints(kp, pe.R, pe.exp, pe.scale, pe.t)
