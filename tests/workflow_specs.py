"""The graphs of the example workflows (see tests/workflows.py for the file formats).

Inputs are upload-widget file names a person provides in ComfyUI's input folder:
portrait.png (a face photo), speech.wav (speech), driving.mp4 (a face video to copy
motion from), portrait_video.mp4 (a video of the person to lip-sync).
"""
from tests.workflows import Node

PORTRAIT, SPEECH, DRIVING, VIDEO = "portrait.png", "speech.wav", "driving.mp4", "portrait_video.mp4"


def _renderer_tail(src_reg, motion, lp, column, prefix, mode="replace", region="crop", title=""):
    """Stitch -> Warp -> Decode -> Blend -> Write Video (the shared LivePortrait renderer)."""
    k = prefix
    lp = lp if isinstance(lp, tuple) else (lp, 0)
    return [
        Node(f"{k}stitch", "THS_Stitch", {"source": (src_reg, 0), "motion": (motion, 0), "models": lp}, column),
        Node(f"{k}warp", "THS_Warp", {"source": (src_reg, 0), "keypoints": (f"{k}stitch", 0), "models": lp}, column + 1),
        Node(f"{k}decode", "THS_Decode", {"warped": (f"{k}warp", 0), "models": lp}, column + 1),
        Node(f"{k}blend", "THS_Blend", {"rendered": (f"{k}decode", 0), "source": (src_reg, 0),
                                        "keypoints": (f"{k}stitch", 0), "mode": mode, "region": region},
             column + 2, title),
    ]


def liveportrait_video_driven():
    return [
        Node("lp", "THS_LoadLivePortraitModels", {}, 0),
        Node("src", "THS_LoadSource", {"source": PORTRAIT}, 0),
        Node("drv", "THS_LoadSource", {"source": DRIVING}, 0, "Load Driving Video"),
        Node("reg", "THS_FaceRegister", {"frames": ("src", 0), "fps": ("src", 1), "models": ("lp", 0)}, 1),
        Node("motion", "THS_ExtractMotion", {"source": ("reg", 0), "driving": ("drv", 0), "models": ("lp", 0),
                                             "fps": ("drv", 1)}, 1),
        *_renderer_tail("reg", "motion", "lp", 2, ""),
        Node("write", "THS_WriteVideo", {"frames": ("blend", 0), "fps": ("drv", 1), "audio": ("drv", 2),
                                         "filename_prefix": "TalkingHead/liveportrait"}, 5),
    ]


def _ditto_front(source_name, preserve=False):
    return [
        Node("ditto", "THS_LoadDittoModels", {}, 0),
        Node("src", "THS_LoadSource", {"source": source_name}, 0),
        Node("speech", "LoadAudio", {"audio": SPEECH}, 0),
        Node("reg", "THS_FaceRegister", {"frames": ("src", 0), "fps": ("src", 1), "models": ("ditto", 1)}, 1),
        Node("feats", "THS_AudioToHubert", {"audio": ("speech", 0), "ditto": ("ditto", 0)}, 1),
        Node("motion", "THS_DittoMotion", {"features": ("feats", 0), "source": ("reg", 0), "ditto": ("ditto", 0),
                                           "preserve_motion": preserve, "seed": 42}, 2),
        Node("controls", "THS_MotionControls", {"motion": ("motion", 0)}, 2),
    ]


def ditto_image_speech():
    return [
        *_ditto_front(PORTRAIT),
        *_renderer_tail("reg", "controls", ("ditto", 1), 3, ""),
        Node("write", "THS_WriteVideo", {"frames": ("blend", 0), "fps": 25.0, "audio": ("speech", 0),
                                         "filename_prefix": "TalkingHead/ditto"}, 6),
    ]


def ditto_video_preserve_motion():
    return [
        *_ditto_front(VIDEO, preserve=True),
        *_renderer_tail("reg", "controls", ("ditto", 1), 3, "", region="lower_face"),
        Node("write", "THS_WriteVideo", {"frames": ("blend", 0), "fps": 25.0, "audio": ("speech", 0),
                                         "filename_prefix": "TalkingHead/ditto_video"}, 6),
    ]


def ditto_blend_modes():
    """One render, five blend modes side by side (only the Blend nodes differ)."""
    nodes = [*_ditto_front(PORTRAIT), *_renderer_tail("reg", "controls", ("ditto", 1), 3, "")[:3]]
    for i, mode in enumerate(("replace", "strong", "blend", "weak", "custom")):
        nodes.append(Node(f"blend_{mode}", "THS_Blend", {
            "rendered": ("decode", 0), "source": ("reg", 0), "keypoints": ("stitch", 0), "mode": mode,
            "region": "crop" if mode == "replace" else "face", "alpha": 0.7}, 5, f"Blend: {mode}"))
        nodes.append(Node(f"write_{mode}", "THS_WriteVideo", {
            "frames": (f"blend_{mode}", 0), "fps": 25.0, "audio": ("speech", 0),
            "filename_prefix": f"TalkingHead/ditto_{mode}", "preset": "veryfast"}, 6, f"Write: {mode}"))
    return nodes


def _musetalk(source_name, prefix):
    return [
        Node("mt", "THS_LoadMuseTalkModels", {}, 0),
        Node("src", "THS_LoadSource", {"source": source_name}, 0),
        Node("speech", "LoadAudio", {"audio": SPEECH}, 0),
        Node("reg", "THS_FaceRegister", {"frames": ("src", 0), "fps": ("src", 1)}, 1),
        Node("feats", "THS_AudioToWhisper", {"audio": ("speech", 0), "musetalk": ("mt", 0), "fps": ("src", 1)}, 1),
        Node("avatar", "THS_MuseTalkPrepareAvatar", {"source": ("reg", 0), "musetalk": ("mt", 0)}, 2),
        Node("gen", "THS_MuseTalkGenerate", {"avatar": ("avatar", 0), "features": ("feats", 0),
                                             "musetalk": ("mt", 0)}, 3),
        Node("blend", "THS_MuseTalkBlend", {"avatar": ("avatar", 0), "faces": ("gen", 0)}, 4),
        Node("write", "THS_WriteVideo", {"frames": ("blend", 0), "fps": ("src", 1), "audio": ("speech", 0),
                                         "filename_prefix": f"TalkingHead/{prefix}"}, 5),
    ]


def musetalk_video_speech():
    return _musetalk(VIDEO, "musetalk_video")


def musetalk_image_speech():
    return _musetalk(PORTRAIT, "musetalk_image")


WORKFLOWS = {f.__name__: f() for f in (liveportrait_video_driven, ditto_image_speech,
                                       ditto_video_preserve_motion, ditto_blend_modes,
                                       musetalk_video_speech, musetalk_image_speech)}
