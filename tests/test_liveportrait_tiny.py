"""Tiny-config LivePortrait renderer end to end (F, M, keypoints, W, G) on 8 frames:
chunking must not change results, progress and interruption work, outputs are CPU tensors
of the documented shapes and dtypes. Needs no shared files."""
import ast
import inspect

import pytest
import torch

from talking_head.pipelines.core.errors import ShapeError
from talking_head.pipelines.liveportrait import loader as L
from talking_head.pipelines.liveportrait import render as R
from talking_head.pipelines.liveportrait.keypoints import (
    DriveOptions, drive_keypoints, motion_from_info)
from talking_head.pipelines.core.runtime import RunContext
from talking_head.pipelines.core.types import ModelBundle, Source
from tests.fakes import seeded_init_

T = 8


pytestmark = pytest.mark.usefixtures("one_thread")


def test_cpu_warp_and_decode_take_one_frame_per_pass(run):
    # the tests batch tiny networks on the CPU (conftest sets the module value); the pack
    # as written ships one frame per pass
    shipped = [ast.literal_eval(node.value) for node in ast.parse(inspect.getsource(R)).body
               if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "CPU_FRAMES_PER_PASS"]
    assert shipped == [1]
    saved, R.CPU_FRAMES_PER_PASS = R.CPU_FRAMES_PER_PASS, 1
    try:
        seen = []
        out = R.decode(run["bundle"], run["warped"][:3], RunContext(progress=lambda d, t: seen.append(d)),
                       batch_size=4)
        assert seen == [1, 2, 3]
        torch.testing.assert_close(out, run["frames"][:3], rtol=0, atol=1e-5)
    finally:
        R.CPU_FRAMES_PER_PASS = saved


def seeded_bundle(seed: int = 0) -> ModelBundle:
    """Tiny networks with weights drawn from one seeded generator (unit-variance-ish)."""
    nets = seeded_init_(L.build_networks(L.TINY_RENDERER), seed)
    return ModelBundle("liveportrait", nets, torch.device("cpu"), torch.float32)


@pytest.fixture(scope="module")
def run():
    bundle = seeded_bundle()
    imgs = torch.rand(T + 1, 3, 256, 256, generator=torch.Generator().manual_seed(1))
    calls = []
    ctx = RunContext(progress=lambda done, total: calls.append((done, total)))
    f_s = R.extract_appearance(bundle, imgs[:1])
    src = R.extract_motion(bundle, imgs[:1])
    drv = R.extract_motion(bundle, imgs[1:], ctx, batch_size=3)
    kp = drive_keypoints(src, motion_from_info(drv, fps=25.0), DriveOptions(), bundle)
    warped = R.warp_features(bundle, f_s, kp.x_s, kp.x_d, ctx, batch_size=3)
    frames = R.decode(bundle, warped, ctx, batch_size=3)
    return dict(bundle=bundle, imgs=imgs, f_s=f_s, drv=drv, kp=kp, warped=warped,
                frames=frames, calls=calls)


def test_end_to_end_shapes_dtypes_and_progress(run):
    assert run["f_s"].shape == (1, 4, 4, 64, 64) and run["f_s"].dtype == torch.float16
    assert len(run["drv"]) == T and run["drv"].pitch.shape == (T, 66)
    assert run["kp"].x_d.shape == (T, 21, 3)
    assert run["warped"].shape == (T, 16, 64, 64) and run["warped"].dtype == torch.float16
    frames = run["frames"]
    assert frames.shape == (T, 512, 512, 3) and frames.dtype == torch.float32
    assert frames.device.type == "cpu" and 0 <= frames.min() and frames.max() <= 1
    assert frames.std() > 1e-3 and (frames[1] - frames[T - 1]).abs().max() > 1e-4
    assert run["calls"] == [(3, 8), (6, 8), (8, 8)] * 3


def test_chunking_does_not_change_results(run):
    bundle = run["bundle"]
    drv1 = R.extract_motion(bundle, run["imgs"][1:], batch_size=T)
    for k, v in run["drv"].as_dict().items():
        torch.testing.assert_close(getattr(drv1, k), v, rtol=1e-4, atol=1e-5)
    kp = run["kp"]
    whole = R.warp_features(bundle, run["f_s"], kp.x_s, kp.x_d, batch_size=T, out_dtype=torch.float32)
    torch.testing.assert_close(whole.half(), run["warped"], rtol=1e-3, atol=1e-3)
    dec = R.decode(bundle, run["warped"][[0, 5]], batch_size=1)
    torch.testing.assert_close(dec, run["frames"][[0, 5]], rtol=0, atol=1e-5)
    # one source feature per frame, picked by index, gives the same as broadcasting one
    per_frame = torch.cat([torch.zeros_like(run["f_s"]), run["f_s"]]).float()
    again = R.warp_features(bundle, per_frame, kp.x_s[:2], kp.x_d[:2],
                            source_index=torch.tensor([1, 1]), out_dtype=torch.float32)
    torch.testing.assert_close(again, whole[:2], rtol=0, atol=1e-5)
    zero = R.warp_features(bundle, per_frame, kp.x_s[:2], kp.x_d[:2],
                           source_index=torch.tensor([0, 1]), out_dtype=torch.float32)
    assert (zero[0] - whole[0]).abs().max() > 1e-3  # the index really picks the features
    torch.testing.assert_close(zero[1], whole[1], rtol=0, atol=1e-5)


def test_render_streams_warp_and_decode(run):
    bundle, kp = run["bundle"], run["kp"]
    source = Source(frames=torch.zeros(1, 8, 8, 3, dtype=torch.uint8), fps=25.0,
                    crops=torch.zeros(1, 512, 512, 3, dtype=torch.uint8),
                    crop_to_frame=torch.eye(3, dtype=torch.float64)[None], landmarks=torch.zeros(1, 478, 2),
                    landmark_scheme="mediapipe478", face_found=torch.ones(1, dtype=torch.bool),
                    appearance=run["f_s"])
    out = R.render(bundle, source, kp, slice(0, 4), batch_size=2)
    warped = R.warp_features(bundle, run["f_s"], kp.x_s[:4], kp.x_d[:4], out_dtype=torch.float32)
    torch.testing.assert_close(out, R.decode(bundle, warped), rtol=0, atol=5e-5)
    # the stored fp16 warped features cost little next to fp32 ones
    assert (out - run["frames"][:4]).abs().max() < 2e-2


def test_interrupt_stops_between_chunks(run):
    class Stop(Exception):
        pass

    seen = []

    def check():
        if len(seen) >= 1:
            raise Stop

    with pytest.raises(Stop):
        R.decode(run["bundle"], run["warped"], RunContext(progress=lambda d, t: seen.append(d), interrupt=check),
                 batch_size=2)
    assert seen == [2]


def test_bad_inputs_raise_shape_errors(run):
    bundle = run["bundle"]
    with pytest.raises(ShapeError, match=r"\(B,3,256,256\)"):
        R.extract_appearance(bundle, torch.rand(1, 256, 256, 3))
    with pytest.raises(ShapeError, match="source_index"):
        R.warp_features(bundle, run["f_s"].expand(3, -1, -1, -1, -1), run["kp"].x_s, run["kp"].x_d)
    with pytest.raises(ShapeError, match="no 'retarget_eye'"):
        ModelBundle("liveportrait", {}, torch.device("cpu"), torch.float32)["retarget_eye"]


def test_networks_run_under_autocast(run):
    """The mixed-precision path (autocast over fp32 weights, as on a GPU) keeps flows and
    masks in fp32 and stays close to fp32; checked with CPU bf16 autocast."""
    bundle, kp = run["bundle"], run["kp"]
    f_s = run["f_s"][:1].float()
    with torch.inference_mode():
        ref = bundle["warping"](f_s, kp.x_s[:1], kp.x_d[:1])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = bundle["warping"](f_s, kp.x_s[:1], kp.x_d[:1])
            img = bundle["decoder"](half["out"])
            mot = bundle["motion"](run["imgs"][:2])
    assert half["deformation"].dtype == torch.float32 and half["mask"].dtype == torch.float32
    assert (half["deformation"] - ref["deformation"]).abs().max() < 0.05
    assert (half["out"].float() - ref["out"]).abs().max() < 0.1 * ref["out"].abs().max()
    assert img.shape == (1, 3, 512, 512) and torch.isfinite(img.float()).all()
    assert all(torch.isfinite(v.float()).all() for v in mot.values())


def test_overlapped_stream_gives_the_same_video(run):
    """Pasting chunk k in a thread while chunk k+1 renders changes nothing in the frames."""
    from talking_head.pipelines.liveportrait.video import stream_video

    bundle, kp = run["bundle"], run["kp"]
    g = torch.Generator().manual_seed(4)
    source = Source(frames=torch.randint(0, 256, (1, 300, 400, 3), dtype=torch.uint8, generator=g), fps=25.0,
                    crops=torch.zeros(1, 512, 512, 3, dtype=torch.uint8),
                    crop_to_frame=torch.tensor([[[0.4, 0.0, 90.0], [0.0, 0.4, 40.0], [0.0, 0.0, 1.0]]],
                                               dtype=torch.float64),
                    landmarks=torch.zeros(1, 478, 2), landmark_scheme="mediapipe478",
                    face_found=torch.ones(1, dtype=torch.bool), appearance=run["f_s"])
    plain = list(stream_video(bundle, source, kp, chunk=3, overlap=False))
    both = list(stream_video(bundle, source, kp, chunk=3, overlap=True))
    assert [c.shape[0] for c in both] == [3, 3, 2]
    for a, b in zip(plain, both):
        assert (a == b).all()
    assert (plain[0][0] != source.frames[0].numpy()).any()
