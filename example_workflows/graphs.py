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


def joyvasa_front(source_name, fps=25.0):
    return [
        Node("jv", "THS_LoadJoyVASAModels", {}, "load"),
        Node("lp", "THS_LoadLivePortraitModels", {}, "load"),
        Node("src", "THS_LoadSource", {"source": source_name}, "load"),
        Node("speech", "LoadAudio", {"audio": SPEECH}, "load"),
        Node("reg", "THS_FaceRegister", {"frames": ("src", 0), "fps": ("src", 1), "models": ("lp", 0)}, "register"),
        Node("feats", "THS_AudioToJoyVASA", {"audio": ("speech", 0), "joyvasa": ("jv", 0)}, "audio"),
        Node("motion", "THS_JoyVASAMotion", {"features": ("feats", 0), "joyvasa": ("jv", 0), "seed": 42,
                                              "fps": fps}, "motion"),
    ]


def joyvasa_image_speech():
    return [*joyvasa_front(PORTRAIT), *renderer_tail("reg", "motion", "lp"),
            write(("blend", 0), 25.0, ("speech", 0), "TalkingHead/joyvasa")]


def joyvasa_video_pose_lips():
    """A driving video moves the head, JoyVASA moves the lips (Mix Motion)."""
    return [
        *joyvasa_front(PORTRAIT, fps=("drv", 1)),   # lips at the video's rate
        Node("drv", "THS_LoadSource", {"source": DRIVING}, "load", "Load Driving Video"),
        Node("pose", "THS_ExtractMotion", {"source": ("reg", 0), "driving": ("drv", 0), "models": ("lp", 0),
                                           "fps": ("drv", 1)}, "motion", "Head pose from the video"),
        Node("mix", "THS_MixMotion", {"source": ("reg", 0), "pose": ("pose", 0), "expression": ("motion", 0),
                                      "part": "lips"}, "motion"),
        *renderer_tail("reg", "mix", "lp"),
        write(("blend", 0), ("drv", 1), ("speech", 0), "TalkingHead/joyvasa_mix"),
    ]


def expression_edit_portrait():
    """AdvancedLivePortrait's Expression Editor: sliders plus a shipped preset on a photo."""
    return [
        Node("lp", "THS_LoadLivePortraitModels", {}, "load"),
        Node("src", "THS_LoadSource", {"source": PORTRAIT}, "load"),
        Node("speech", "LoadAudio", {"audio": SPEECH}, "load"),
        Node("preset", "THS_LoadExpressionPreset", {"preset": "wink", "amount": 0.6}, "load"),
        Node("reg", "THS_FaceRegister", {"frames": ("src", 0), "fps": ("src", 1), "models": ("lp", 0)}, "register"),
        Node("edit", "THS_ExpressionEdit", {"source": ("reg", 0), "models": ("lp", 0), "smile": 0.8,
                                            "eyebrow": 5.0, "add_expression": ("preset", 0)}, "motion"),
        *renderer_tail("reg", "edit", "lp"),
        write(("blend", 0), 25.0, ("speech", 0), "TalkingHead/expression_edit"),
    ]


ANIMATION_SCRIPT = "1 = 8 : 6\n2 = 8 : 6\n0 = 8 : 4"


def expression_animate_script():
    """A portrait animated by a command script over a chain of expressions, no driver."""
    return [
        Node("lp", "THS_LoadLivePortraitModels", {}, "load"),
        Node("src", "THS_LoadSource", {"source": PORTRAIT}, "load"),
        Node("speech", "LoadAudio", {"audio": SPEECH}, "load"),
        Node("smile", "THS_LoadExpressionPreset", {"preset": "smile"}, "load", "Expression 1: smile"),
        Node("surprise", "THS_LoadExpressionPreset", {"preset": "surprise"}, "load", "Expression 2: surprise"),
        Node("reg", "THS_FaceRegister", {"frames": ("src", 0), "fps": ("src", 1), "models": ("lp", 0)}, "register"),
        Node("anim", "THS_AnimateExpressions", {"source": ("reg", 0), "script": ANIMATION_SCRIPT,
                                                "easing": "ease-in-out", "expression_1": ("smile", 0),
                                                "expression_2": ("surprise", 0)}, "motion"),
        *renderer_tail("reg", "anim", "lp"),
        write(("blend", 0), 25.0, ("speech", 0), "TalkingHead/expression_script",
              length="match frames (cut or pad audio)"),
    ]


def expression_on_ditto():
    """Ditto's lip-synced motion with a smile preset and raised brows on every frame."""
    return [
        *ditto_front(PORTRAIT),
        Node("preset", "THS_LoadExpressionPreset", {"preset": "smile", "amount": 0.8}, "load"),
        Node("edit", "THS_ExpressionEdit", {"source": ("reg", 0), "models": ("ditto", 1), "eyebrow": 4.0,
                                            "add_expression": ("preset", 0), "motion": ("controls", 0)}, "motion"),
        *renderer_tail("reg", "edit", ("ditto", 1)),
        write(("blend", 0), 25.0, ("speech", 0), "TalkingHead/expression_ditto"),
    ]


WORKFLOWS = {f.__name__: f() for f in (liveportrait_video_driven, ditto_image_speech,
                                       ditto_video_preserve_motion, ditto_blend_modes,
                                       musetalk_video_speech, musetalk_image_speech,
                                       joyvasa_image_speech, joyvasa_video_pose_lips,
                                       expression_edit_portrait, expression_animate_script,
                                       expression_on_ditto)}
