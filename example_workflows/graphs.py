"""What each example workflow contains (generate.py writes the files).

Inputs are upload-widget file names a person provides in ComfyUI's input folder:
portrait.png (a face photo), speech.wav (speech), driving.mp4 (a face video to copy
motion from), portrait_video.mp4 (a video of the person to lip-sync). Each node's stage
places it in the story's column: load, register, audio, motion, render, blend, write.
"""
from generate import Node

PORTRAIT, SPEECH, DRIVING, VIDEO = "portrait.png", "speech.wav", "driving.mp4", "portrait_video.mp4"


def renderer_tail(reg, motion, lp, mode="replace", region="crop"):
    """Stitch -> Warp -> Decode -> Blend (the one LivePortrait renderer every family uses)."""
    lp = lp if isinstance(lp, tuple) else (lp, 0)
    return [
        Node("stitch", "THS_Stitch", {"source": (reg, 0), "motion": (motion, 0), "models": lp}, "render"),
        Node("warp", "THS_Warp", {"source": (reg, 0), "keypoints": ("stitch", 0), "models": lp}, "render"),
        Node("decode", "THS_Decode", {"warped": ("warp", 0), "models": lp}, "render"),
        Node("blend", "THS_Blend", {"rendered": ("decode", 0), "source": (reg, 0), "keypoints": ("stitch", 0),
                                    "mode": mode, "region": region}, "blend"),
    ]


def write(frames, fps, audio, prefix, suffix="", title="", **widgets):
    return Node(f"write{suffix}", "THS_WriteVideo",
                {"frames": frames, "fps": fps, "audio": audio, "filename_prefix": prefix, **widgets},
                "write", title)


def liveportrait_video_driven():
    return [
        Node("lp", "THS_LoadLivePortraitModels", {}, "load"),
        Node("src", "THS_LoadSource", {"source": PORTRAIT}, "load"),
        Node("drv", "THS_LoadSource", {"source": DRIVING}, "load", "Load Driving Video"),
        Node("reg", "THS_FaceRegister", {"frames": ("src", 0), "fps": ("src", 1), "models": ("lp", 0)}, "register"),
        Node("motion", "THS_ExtractMotion", {"source": ("reg", 0), "driving": ("drv", 0), "models": ("lp", 0),
                                             "fps": ("drv", 1)}, "motion"),
        *renderer_tail("reg", "motion", "lp"),
        write(("blend", 0), ("drv", 1), ("drv", 2), "TalkingHead/liveportrait"),
    ]


def ditto_front(source_name, preserve=False):
    return [
        Node("ditto", "THS_LoadDittoModels", {}, "load"),
        Node("src", "THS_LoadSource", {"source": source_name}, "load"),
        Node("speech", "LoadAudio", {"audio": SPEECH}, "load"),
        Node("reg", "THS_FaceRegister", {"frames": ("src", 0), "fps": ("src", 1), "models": ("ditto", 1)},
             "register"),
        Node("feats", "THS_AudioToHubert", {"audio": ("speech", 0), "ditto": ("ditto", 0)}, "audio"),
        Node("motion", "THS_DittoMotion", {"features": ("feats", 0), "source": ("reg", 0), "ditto": ("ditto", 0),
                                           "preserve_motion": preserve, "seed": 42}, "motion"),
        Node("controls", "THS_MotionControls", {"motion": ("motion", 0)}, "motion"),
    ]


def ditto_image_speech():
    return [*ditto_front(PORTRAIT), *renderer_tail("reg", "controls", ("ditto", 1)),
            write(("blend", 0), 25.0, ("speech", 0), "TalkingHead/ditto")]


def ditto_video_preserve_motion():
    return [*ditto_front(VIDEO, preserve=True),
            *renderer_tail("reg", "controls", ("ditto", 1), region="lower_face"),
            write(("blend", 0), 25.0, ("speech", 0), "TalkingHead/ditto_video")]


def ditto_blend_modes():
    """One render, five blend modes side by side (only the Blend nodes differ)."""
    nodes = [*ditto_front(PORTRAIT), *renderer_tail("reg", "controls", ("ditto", 1))[:3]]
    for mode in ("replace", "strong", "blend", "weak", "custom"):
        nodes.append(Node(f"blend_{mode}", "THS_Blend", {
            "rendered": ("decode", 0), "source": ("reg", 0), "keypoints": ("stitch", 0), "mode": mode,
            "region": "crop" if mode == "replace" else "face", "alpha": 0.7}, "blend", f"Blend: {mode}"))
        nodes.append(write((f"blend_{mode}", 0), 25.0, ("speech", 0), f"TalkingHead/ditto_{mode}",
                           preset="veryfast", suffix=f"_{mode}", title=f"Write: {mode}"))
    return nodes


def musetalk(source_name, prefix):
    return [
        Node("mt", "THS_LoadMuseTalkModels", {}, "load"),
        Node("src", "THS_LoadSource", {"source": source_name}, "load"),
        Node("speech", "LoadAudio", {"audio": SPEECH}, "load"),
        Node("reg", "THS_FaceRegister", {"frames": ("src", 0), "fps": ("src", 1)}, "register"),
        Node("avatar", "THS_MuseTalkPrepareAvatar", {"source": ("reg", 0), "musetalk": ("mt", 0)}, "register"),
        Node("feats", "THS_AudioToWhisper", {"audio": ("speech", 0), "musetalk": ("mt", 0), "fps": ("src", 1)},
             "audio"),
        Node("gen", "THS_MuseTalkGenerate", {"avatar": ("avatar", 0), "features": ("feats", 0),
                                             "musetalk": ("mt", 0)}, "render"),
        Node("blend", "THS_MuseTalkBlend", {"avatar": ("avatar", 0), "faces": ("gen", 0)}, "blend"),
        write(("blend", 0), ("src", 1), ("speech", 0), f"TalkingHead/{prefix}"),
    ]


def musetalk_video_speech():
    return musetalk(VIDEO, "musetalk_video")


def musetalk_image_speech():
    return musetalk(PORTRAIT, "musetalk_image")


WORKFLOWS = {f.__name__: f() for f in (liveportrait_video_driven, ditto_image_speech,
                                       ditto_video_preserve_motion, ditto_blend_modes,
                                       musetalk_video_speech, musetalk_image_speech)}
