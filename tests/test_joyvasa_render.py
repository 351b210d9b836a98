"""JoyVASA end to end: the CLI and the node graph render the fixture photo + speech with
ceil(seconds x fps) frames on the fake released checkpoints (tiny sizes, real loaders);
seeds repeat; fewer denoising steps; Mix Motion takes the pose from one motion and the
lips from the other."""
import math
import os
import shutil

import numpy as np
import pytest
import torch

from talking_head.pipelines.core import media
from tests import fake_models
from tests.graph_runner import GraphRunner, load
from tests.paths import FIXTURES, ROOT, needs_shared
from tests.test_end_to_end import check_mp4, run_cli, synthetic_face_video

pytestmark = needs_shared

PHOTO = os.path.join(FIXTURES, "astronaut.png")
SPEECH = os.path.join(FIXTURES, "speech_16k.wav")
API = os.path.join(ROOT, "example_workflows", "api")


@pytest.fixture(scope="module")
def models_root(tmp_path_factory):
    return fake_models.write_all(str(tmp_path_factory.mktemp("jv") / "models"),
                                 ("aux", "liveportrait", "joyvasa"))


@pytest.fixture(scope="module")
def speech_seconds():
    return len(media.read_audio(SPEECH)) / 16000.0     # 10.28225 s: the header's 10.28 is rounded


@pytest.fixture
def host_dirs(models_root, tmp_path, monkeypatch):
    fake_models.use(monkeypatch, models_root)
    inputs = tmp_path / "input"
    inputs.mkdir()
    shutil.copy(PHOTO, inputs / "portrait.png")
    shutil.copy(SPEECH, inputs / "speech.wav")
    media.write_audio(str(inputs / "short.wav"), _speech(1.6), 16000)
    monkeypatch.setenv("TALKING_HEAD_INPUT", str(inputs))
    monkeypatch.setenv("TALKING_HEAD_OUTPUT", str(tmp_path / "output"))
    return tmp_path


def _bundle():
    from talking_head.pipelines.app import models

    return models.load_joyvasa_bundle(None, False)


def _speech(seconds=None):
    wav = media.read_audio(SPEECH)
    return wav if seconds is None else wav[:int(seconds * 16000)]


# ---------------------------------------------------------------------------------------
# the command line


def test_cli_renders_photo_and_speech_with_exact_frame_count(models_root, tmp_path, speech_seconds):
    out = str(tmp_path / "full.mp4")
    run_cli(models_root, "joyvasa", "--source", PHOTO, "--audio", SPEECH, "--out", out, "--seed", "3")
    frames = math.ceil(speech_seconds * 25)
    assert frames == 258                                 # ceil(10.28 x 25), the figure
    decoded = check_mp4(out, speech_seconds, 25, frames)
    assert np.abs(decoded[0].astype(int) - decoded[frames // 2]).mean() > 0.5   # it moves


def test_cli_same_seed_same_frames_other_seed_differs(models_root, tmp_path):
    clip = str(tmp_path / "clip.wav")
    media.write_audio(clip, _speech(1.0), 16000)
    decoded = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        out = str(tmp_path / f"{name}.mp4")
        run_cli(models_root, "joyvasa", "--source", PHOTO, "--audio", clip, "--out", out,
                "--seed", str(seed), "--smoothing", "0")
        decoded[name] = np.stack(check_mp4(out, 1.0, 25, 25))
    assert np.array_equal(decoded["a"], decoded["b"])
    assert np.abs(decoded["a"].astype(int) - decoded["c"]).mean() > 0.2


# ---------------------------------------------------------------------------------------
# motion


def test_same_seed_same_motion_other_seed_differs(host_dirs):
    from talking_head.pipelines.joyvasa import JoyVASASettings, audio_features, motion_from_features

    bundle = _bundle()
    feats = audio_features(bundle, _speech(4.1), 16000)
    a = motion_from_features(bundle, feats, JoyVASASettings(seed=5))
    b = motion_from_features(bundle, feats, JoyVASASettings(seed=5))
    c = motion_from_features(bundle, feats, JoyVASASettings(seed=6))
    assert len(a) == math.ceil(4.1 * 25)
    for k in ("exp", "pitch", "t"):
        assert torch.equal(getattr(a, k), getattr(b, k))
    assert (a.exp - c.exp).abs().max() > 1e-4


@pytest.mark.parametrize("fps,seconds", [(30.0, 4.1), (29.97, 3.3), (12.5, 2.0)])
def test_frames_follow_any_output_rate(host_dirs, fps, seconds):
    from talking_head.pipelines.joyvasa import JoyVASASettings, audio_features, motion_from_features

    bundle = _bundle()
    motion = motion_from_features(bundle, audio_features(bundle, _speech(seconds), 16000),
                                  JoyVASASettings(fps=fps)).to_motion()
    assert len(motion) == math.ceil(round(seconds * fps, 6)) and motion.fps == fps


def test_fewer_steps_run_fewer_network_calls(host_dirs):
    from talking_head.pipelines.joyvasa import JoyVASASettings, audio_features, motion_from_features

    bundle = _bundle()
    net = bundle["generator"].denoising_net
    calls = []
    hook = net.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        feats = audio_features(bundle, _speech(2.0), 16000)
        full = motion_from_features(bundle, feats, JoyVASASettings(seed=1))
        n_full = len(calls)
        calls.clear()
        fast = motion_from_features(bundle, feats, JoyVASASettings(seed=1, steps=4))
    finally:
        hook.remove()
    steps = bundle["generator"].diffusion_sched.n_steps
    windows = n_full // steps                 # guidance runs in the same call
    assert n_full == windows * steps and len(calls) == 4 * windows
    assert torch.isfinite(fast.exp).all() and (fast.exp - full.exp).abs().max() > 0


def test_bad_features_and_settings_are_refused(host_dirs):
    from talking_head.pipelines.core.errors import TalkingHeadError
    from talking_head.pipelines.core.types import AudioFeatures
    from talking_head.pipelines.joyvasa import JoyVASASettings, motion_from_features

    bundle = _bundle()
    with pytest.raises(TalkingHeadError, match="Audio to JoyVASA Features"):
        motion_from_features(bundle, AudioFeatures(torch.zeros(10, 1024), "hubert", 25.0, 0.4))
    with pytest.raises(TalkingHeadError, match="steps"):
        JoyVASASettings(steps=-1).guidance


# ---------------------------------------------------------------------------------------
# the node graph


def _run_graph(name, tmp_dirs, **changes):
    prompt = load(os.path.join(API, name + ".json"))
    for node_id, widgets in changes.items():
        prompt[node_id]["inputs"].update(widgets)
    runner = GraphRunner()
    results = runner.run(prompt)
    write = [k for k, v in prompt.items() if v["class_type"] == "THS_WriteVideo"][0]
    return prompt, results, results[write][0]


def test_graph_renders_photo_and_speech(host_dirs, speech_seconds):
    prompt, results, path = _run_graph("joyvasa_image_speech", host_dirs)
    decoded = check_mp4(path, speech_seconds, 25, 258)
    assert np.abs(decoded[0].astype(int) - decoded[129]).mean() > 0.5
    motion_node = [k for k, v in prompt.items() if v["class_type"] == "THS_JoyVASAMotion"][0]
    assert len(results[motion_node][0]) == 258


def test_mix_workflow_renders_video_pose_with_joyvasa_lips(host_dirs):
    synthetic_face_video(str(host_dirs / "input" / "driving.mp4"), 1.2, 25, size=320)
    prompt = load(os.path.join(API, "joyvasa_video_pose_lips.json"))
    speech = [k for k, v in prompt.items() if v["class_type"] == "LoadAudio"][0]
    prompt[speech]["inputs"]["audio"] = "short.wav"
    results = GraphRunner().run(prompt)
    write = [k for k, v in prompt.items() if v["class_type"] == "THS_WriteVideo"][0]
    decoded = check_mp4(results[write][0], 1.6, 25, 40)          # the speech sets the length
    mix = [k for k, v in prompt.items() if v["class_type"] == "THS_MixMotion"][0]
    assert results[mix][0].origin == "mix" and len(results[mix][0]) == 40
    assert np.abs(decoded[0].astype(int) - decoded[20]).mean() > 0.5


def test_mix_takes_pose_from_one_motion_and_lips_from_the_other(host_dirs, tmp_path):
    """A driving video's motion gives the head, JoyVASA's the lips: the mixed angles and
    translation are the resolved pose motion's, the lip rows the resolved JoyVASA rows,
    every other expression row the pose motion's."""
    from talking_head.nodes.joyvasa_nodes import AudioToJoyVASA, JoyVASAMotion
    from talking_head.nodes.motion_nodes import MixMotion
    from talking_head.nodes.convert import numpy_to_audio
    from talking_head.pipelines.app import models, steps
    from talking_head.pipelines.core.timeline import frame_order
    from talking_head.pipelines.face import TrackSettings
    from talking_head.pipelines.liveportrait import keypoints as kpm
    from talking_head.pipelines.liveportrait.mix import resolve

    renderer = models.load_liveportrait("auto", None, False)
    detector = models.detector("mediapipe", None, False)
    portrait = media.read_image(PHOTO)[None]
    source = steps.register(portrait, 25.0, detector, renderer, TrackSettings())
    drv_path = synthetic_face_video(str(tmp_path / "drv.mp4"), 1.2, 25, size=320, audio=False)
    drv = np.stack(list(media.iter_frames(drv_path)))
    pose, _ = steps.driving_motion(drv, 25.0, 1, detector, renderer, steps.DrivingOptions())
    joy = _bundle()
    feats = AudioToJoyVASA().encode(numpy_to_audio(_speech(2.0)[None], 16000), joy)[0]
    lips = JoyVASAMotion().generate(feats, joy, seed=2, smoothing=0.0)[0]

    mixed = MixMotion().mix(source, pose, lips, part="lips", weight=1.0)[0]
    assert len(mixed) == len(lips) == 50 and mixed.kind == "absolute"
    order = torch.from_numpy(frame_order(len(pose), 50, "ping-pong"))
    p_angles, p_scale, p_t, p_exp = resolve(source, pose.select(order))
    l_angles, _, _, l_exp = resolve(source, lips)
    for got, want in zip((mixed.pitch, mixed.yaw, mixed.roll), p_angles):
        assert torch.allclose(got, want, atol=1e-4)
    assert torch.allclose(mixed.t, p_t) and torch.allclose(mixed.scale, p_scale)
    rows = list(kpm.LIP_KP)
    others = [i for i in range(21) if i not in rows]
    assert torch.allclose(mixed.exp[:, rows], l_exp[:, rows], atol=1e-6)
    assert torch.allclose(mixed.exp[:, others], p_exp[:, others], atol=1e-6)
    # the two inputs really differ where the mix takes from each
    assert (l_exp[:, rows] - p_exp[:, rows]).abs().max() > 1e-3
    assert max((a - b).abs().max() for a, b in zip(p_angles, l_angles)) > 0.05
    half = MixMotion().mix(source, pose, lips, part="lips", weight=0.5)[0]
    assert torch.allclose(half.exp[:, rows], (p_exp[:, rows] + l_exp[:, rows]) / 2, atol=1e-6)


def test_mix_refuses_motions_at_other_rates(host_dirs):
    from talking_head.pipelines.core.errors import TalkingHeadError
    from talking_head.pipelines.core.motion import Motion
    from talking_head.pipelines.liveportrait.mix import mix_motions

    def still(n, fps):
        z = torch.zeros(n)
        return Motion(scale=torch.ones(n, 1), pitch=z, yaw=z, roll=z, t=torch.zeros(n, 3),
                      exp=torch.zeros(n, 21, 3), fps=fps, source_index=torch.zeros(n, dtype=torch.long),
                      kind="absolute", origin="test")

    class Src:
        motion = object()

        def __len__(self):
            return 1

    with pytest.raises(TalkingHeadError, match="30 fps.*25 fps"):
        mix_motions(Src(), still(5, 30.0), still(5, 25.0))


def test_angles_from_matrix_round_trip():
    from talking_head.pipelines.liveportrait.keypoints import angles_from_matrix, rotation_matrix

    g = torch.Generator().manual_seed(0)
    p, y, r = (torch.rand(64, generator=g, dtype=torch.float64) * 160 - 80 for _ in range(3))
    back = angles_from_matrix(rotation_matrix(p, y, r))
    for a, b in zip(back, (p, y, r)):
        assert torch.allclose(a, b, atol=1e-9)
