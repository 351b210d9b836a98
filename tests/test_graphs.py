"""The example workflows run through the node classes in graph order, as the host runs
them, on fake tiny checkpoints: LivePortrait video driving, Ditto and MuseTalk."""
import os
import shutil

import numpy as np
import pytest
import torch

from talking_head.pipelines.core import media
from tests import fake_models
from tests.graph_runner import GraphRunner, load
from tests.paths import FIXTURES, ROOT, needs_shared
from tests.test_end_to_end import synthetic_face_video

OUT = os.path.join(ROOT, "example_workflows", "api")

pytestmark = needs_shared


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("graphs")
    fake_models.write_all(str(root / "models"))
    inputs = root / "input"
    inputs.mkdir()
    shutil.copy(os.path.join(FIXTURES, "astronaut.png"), inputs / "portrait.png")
    shutil.copy(os.path.join(FIXTURES, "speech_16k.wav"), inputs / "speech.wav")
    synthetic_face_video(str(inputs / "driving.mp4"), 2.0, 25, size=320)
    synthetic_face_video(str(inputs / "portrait_video.mp4"), 0.8, 25, size=320)
    speech = media.read_audio(os.path.join(FIXTURES, "speech_16k.wav"))
    media.write_audio(str(inputs / "short.wav"), speech[:19200], 16000)            # 1.2 s
    media.write_audio(str(inputs / "short_b.wav"), speech[32000:44800], 16000)     # 0.8 s
    return root


@pytest.fixture
def host_dirs(env, monkeypatch):
    fake_models.use(monkeypatch, str(env / "models"))
    monkeypatch.setenv("TALKING_HEAD_INPUT", str(env / "input"))
    monkeypatch.setenv("TALKING_HEAD_OUTPUT", str(env / "output"))
    return env


def _nodes(prompt, cls):
    return [k for k, v in prompt.items() if v["class_type"] == cls]


def test_liveportrait_graph_and_blend_only_reruns(host_dirs):
    prompt = load(os.path.join(OUT, "liveportrait_video_driven.json"))
    runner = GraphRunner()
    results = runner.run(prompt)
    write = _nodes(prompt, "THS_WriteVideo")[0]
    info = media.probe(results[write][0])
    assert (info.video_codec, info.audio_codec) == ("h264", "aac") and abs(info.duration - 2.0) < 0.05
    blend = _nodes(prompt, "THS_Blend")[0]
    frames_a, mask_a = results[blend]
    assert frames_a.shape == (50, 512, 512, 3) and mask_a.shape == (50, 512, 512)
    assert runner.ui[blend]["images"][0]["type"] == "temp"

    # change only the blend mode: upstream values are reused, only Blend and Write re-run
    prompt[blend]["inputs"].update(mode="blend", region="face")
    results = runner.run(prompt)
    assert sorted(runner.executed) == sorted([blend, write])
    frames_b, mask_b = results[blend]
    assert not torch.equal(frames_a, frames_b)
    assert float(mask_b.max()) == pytest.approx(0.5) and float(mask_a.max()) == pytest.approx(1.0)


def test_ditto_graph_speech_to_mp4(host_dirs):
    """ceil(seconds x 25) frames for the speech clip (the full 10.28 s clip is a bench)."""
    prompt = load(os.path.join(OUT, "ditto_image_speech.json"))
    prompt[_nodes(prompt, "LoadAudio")[0]]["inputs"]["audio"] = "short.wav"
    results = GraphRunner().run(prompt)
    path = results[_nodes(prompt, "THS_WriteVideo")[0]][0]
    seconds = len(media.read_audio(str(host_dirs / "input" / "short.wav"))) / 16000
    info = media.probe(path)
    assert (info.video_codec, info.pix_fmt, info.audio_codec) == ("h264", "yuv420p", "aac")
    assert abs(info.duration - seconds) <= 0.04
    assert sum(1 for _ in media.iter_frames(path, info)) == int(np.ceil(seconds * 25))


def test_ditto_seed_repeatable_and_seed_dependent(host_dirs):
    prompt = load(os.path.join(OUT, "ditto_image_speech.json"))
    prompt[_nodes(prompt, "LoadAudio")[0]]["inputs"]["audio"] = "short.wav"
    blend = _nodes(prompt, "THS_Blend")[0]
    motion = _nodes(prompt, "THS_DittoMotion")[0]
    a = GraphRunner().run(prompt)[blend][0]
    b = GraphRunner().run(prompt)[blend][0]          # fresh caches: everything recomputed
    assert a.shape[0] == 30 and torch.equal(a, b)
    prompt[motion]["inputs"]["seed"] = 7
    c = GraphRunner().run(prompt)[blend][0]
    assert not torch.equal(a, c)


def test_ditto_video_source_preserving_motion(host_dirs):
    prompt = load(os.path.join(OUT, "ditto_video_preserve_motion.json"))
    prompt[_nodes(prompt, "LoadAudio")[0]]["inputs"]["audio"] = "short.wav"
    results = GraphRunner().run(prompt)
    stitch = _nodes(prompt, "THS_Stitch")[0]
    keypoints = results[stitch][0]
    # 30 output frames walk the 20 source frames forward then back (ping-pong)
    assert keypoints.source_index.tolist() == list(range(20)) + list(range(19, 9, -1))
    frames, mask = results[_nodes(prompt, "THS_Blend")[0]]
    assert frames.shape == (30, 320, 320, 3) and float(mask.max()) == 1.0
    source = results[_nodes(prompt, "THS_FaceRegister")[0]][0]
    eyes_y = source.landmarks[:, [33, 263], 1].mean(dim=1)       # MediaPipe outer eye corners
    for t, s in enumerate(keypoints.source_index.tolist()):       # lower face: nothing above the eyes
        assert float(mask[t, : int(eyes_y[s])].max()) == 0.0


def test_musetalk_image_graph(host_dirs):
    prompt = load(os.path.join(OUT, "musetalk_image_speech.json"))
    prompt[_nodes(prompt, "LoadAudio")[0]]["inputs"]["audio"] = "short.wav"
    runner = GraphRunner()
    results = runner.run(prompt)
    frames, mask = results[_nodes(prompt, "THS_MuseTalkBlend")[0]]
    assert frames.shape == (30, 512, 512, 3) and mask.shape == (30, 512, 512)
    # outside the blend mask the frames are the portrait itself
    portrait = torch.from_numpy(media.read_image(os.path.join(FIXTURES, "astronaut.png")))
    outside = (mask == 0)
    assert outside.float().mean() > 0.5
    assert (frames[outside] - portrait.expand_as(frames)[outside]).abs().max() <= 1 / 255 + 1e-6
    # where the mask is full the generated face shows (the fake parser labels skin)
    inside = mask > 0.99
    assert inside.float().mean() > 0.005
    assert (frames[inside] - portrait.expand_as(frames)[inside]).abs().mean() > 0.05
    path = results[_nodes(prompt, "THS_WriteVideo")[0]][0]
    assert media.probe(path).audio_codec == "aac"
    # a new audio clip reuses the prepared avatar (no VAE encode, no parsing again)
    prompt[_nodes(prompt, "LoadAudio")[0]]["inputs"]["audio"] = "short_b.wav"
    runner.run(prompt)
    avatar = _nodes(prompt, "THS_MuseTalkPrepareAvatar")[0]
    assert avatar not in runner.executed and _nodes(prompt, "THS_MuseTalkGenerate")[0] in runner.executed


# ---------------------------------------------------------------------------------------
# expression editing (AdvancedLivePortrait parity)


def _expression_graph(name):
    prompt = load(os.path.join(OUT, f"{name}.json"))
    prompt[_nodes(prompt, "LoadAudio")[0]]["inputs"]["audio"] = "short.wav"     # 1.2 s
    return prompt


def _check_h264(path, frames):
    info = media.probe(path)
    assert (info.video_codec, info.pix_fmt, info.audio_codec) == ("h264", "yuv420p", "aac")
    assert sum(1 for _ in media.iter_frames(path, info)) == frames


def test_expression_edit_graph_and_a_slider_change_reruns_only_the_edit(host_dirs):
    prompt = _expression_graph("expression_edit_portrait")
    runner = GraphRunner()
    results = runner.run(prompt)
    blend, write = _nodes(prompt, "THS_Blend")[0], _nodes(prompt, "THS_WriteVideo")[0]
    _check_h264(results[write][0], 30)                       # the still, looped to the audio
    edited, mask = results[blend]
    assert edited.shape[0] == 1
    # undo the edit: the Face Register and the preset are reused, the edit and what
    # follows re-run, and the picture changes inside the paste-back mask only
    edit = _nodes(prompt, "THS_ExpressionEdit")[0]
    prompt[edit]["inputs"].update(smile=0.0, eyebrow=0.0)
    del prompt[edit]["inputs"]["add_expression"]
    plain = runner.run(prompt)[blend][0]
    assert sorted(runner.executed) == sorted([edit, *_nodes(prompt, "THS_Stitch"), *_nodes(prompt, "THS_Warp"),
                                              *_nodes(prompt, "THS_Decode"), blend, write])
    change = (edited - plain).abs().amax(dim=-1)[0]
    assert float(change.max()) > 0.05
    assert float(change[mask[0] == 0].max()) == 0.0


def test_expression_script_graph_moves_only_where_the_script_says(host_dirs):
    prompt = _expression_graph("expression_animate_script")
    results = GraphRunner().run(prompt)
    _check_h264(results[_nodes(prompt, "THS_WriteVideo")[0]][0], 40)      # the script's length
    crops = results[_nodes(prompt, "THS_Decode")[0]][0]
    assert crops.shape[0] == 40
    # "1 = 8 : 6 / 2 = 8 : 6 / 0 = 8 : 4": targets reached on frames 7, 21, 35, then held
    for reached, held_until in ((7, 14), (21, 28), (35, 40)):
        for i in range(reached + 1, held_until):
            assert torch.allclose(crops[i], crops[reached], atol=1e-5), i
    for a, b in ((0, 7), (7, 21), (21, 35), (14, 15)):     # the tiny decoder moves little
        assert float((crops[a] - crops[b]).abs().max()) > 1e-3, (a, b)


def test_expression_on_ditto_graph_adds_the_expression_to_every_frame(host_dirs):
    from talking_head.pipelines.expression import Sliders, build_expression

    prompt = _expression_graph("expression_on_ditto")
    results = GraphRunner().run(prompt)
    _check_h264(results[_nodes(prompt, "THS_WriteVideo")[0]][0], 30)
    ditto = results[_nodes(prompt, "THS_MotionControls")[0]][0]
    edited = results[_nodes(prompt, "THS_ExpressionEdit")[0]][0]
    preset = results[_nodes(prompt, "THS_LoadExpressionPreset")[0]][0]
    offset = (build_expression(Sliders(eyebrow=4.0)) + preset).e
    assert len(edited) == len(ditto) == 30
    assert torch.allclose(edited.exp - ditto.exp, offset.expand(30, 21, 3), atol=1e-7)
    assert torch.equal(edited.yaw, ditto.yaw) and torch.equal(edited.t, ditto.t)
