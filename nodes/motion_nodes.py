"""Nodes that work on any MOTION: pose and keyframe controls, and mixing two motions."""
from __future__ import annotations

from ..pipelines.core import choices, controls
from .registry import MOTION, SOURCE, register


@register("Motion Controls", "motion")
class MotionControls:
    DESCRIPTION = (
        "Edit MOTION: head-pose offsets in degrees (they change the angle itself), and per-frame "
        "keyframes as JSON, e.g. {\"0\": {\"delta_yaw\": 10}, \"75\": {\"delta_yaw\": -10}} or "
        "[{\"frame\": 0, \"delta_pitch\": 5}], interpolated between keyframes when 'interpolate' is "
        "on. Controls: delta_pitch/yaw/roll, alpha_pitch/yaw/roll (scale the angle), delta_exp "
        "(63 numbers); on Ditto motion also vad_alpha (lip strength) and fade_alpha, plus blinks "
        "and fades (Ditto re-stitches its motion with them).")
    RETURN_TYPES = (MOTION,)
    RETURN_NAMES = ("motion",)
    FUNCTION = "apply"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "motion": (MOTION,),
                "delta_pitch": ("FLOAT", {"default": 0.0, "min": -90.0, "max": 90.0, "step": 0.5,
                                          "tooltip": "Degrees added to the head's pitch (nod)."}),
                "delta_yaw": ("FLOAT", {"default": 0.0, "min": -90.0, "max": 90.0, "step": 0.5,
                                        "tooltip": "Degrees added to the head's yaw (turn)."}),
                "delta_roll": ("FLOAT", {"default": 0.0, "min": -90.0, "max": 90.0, "step": 0.5,
                                         "tooltip": "Degrees added to the head's roll (tilt)."}),
                "interpolate": ("BOOLEAN", {"default": True, "tooltip":
                                "Ramp between keyframes (off: a control applies on its keyframe only)."}),
                "fade_in": ("INT", {"default": 0, "min": 0, "max": 250, "tooltip": "Ditto motion: frames easing in."}),
                "fade_out": ("INT", {"default": 0, "min": 0, "max": 250, "tooltip": "Ditto motion: frames easing out."}),
            },
            "optional": {
                "keyframes": ("STRING", {"default": "", "multiline": True, "tooltip":
                              "Per-frame controls as JSON, e.g. {\"0\": {\"delta_yaw\": 10}, \"75\": {\"delta_yaw\": -10}}."}),
            },
        }

    def apply(self, motion, delta_pitch=0.0, delta_yaw=0.0, delta_roll=0.0, interpolate=True,
              fade_in=0, fade_out=0, keyframes=""):
        overall = {f"delta_{a}": v for a, v in (("pitch", delta_pitch), ("yaw", delta_yaw),
                                                ("roll", delta_roll)) if v}
        edit = controls.edit_from(overall, keyframes, interpolate, len(motion), fade_in, fade_out)
        return (controls.apply(motion, edit),)


@register("Mix Motion", "motion")
class MixMotion:
    DESCRIPTION = (
        "Two MOTIONs on one SOURCE: head pose from 'pose' (e.g. a driving video), the lips, eyes or "
        "whole expression from 'expression' (e.g. JoyVASA or Ditto). Each is first resolved to what "
        "it means for this source, so motions of any producer mix. weight 0 keeps the pose "
        "motion's own part, 1 takes the expression motion's. length: which one sets the clip's "
        "length; the other is walked to it by 'fit'.")
    RETURN_TYPES = (MOTION,)
    RETURN_NAMES = ("motion",)
    FUNCTION = "mix"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "source": (SOURCE,),
                "pose": (MOTION, {"tooltip": "Gives the head pose (and the rest of the expression)."}),
                "expression": (MOTION, {"tooltip": "Gives the chosen part of the expression."}),
                "part": (list(choices.MIX_PARTS), {"default": "lips", "tooltip":
                         "What the expression motion gives: lips, eyes or the whole expression."}),
                "weight": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.05, "tooltip":
                           "0 = the pose motion's own, 1 = all of the expression motion's."}),
                "length": (list(choices.MIX_LENGTHS), {"default": "expression motion", "tooltip":
                           "Which motion sets the length (speech: the expression motion)."}),
                "fit": (list(choices.FRAME_ORDERS), {"default": "ping-pong", "tooltip":
                        "How the other motion is walked to that length: ping-pong, cycle, or hold "
                        "its last frame."}),
            },
        }

    def mix(self, source, pose, expression, part="lips", weight=1.0, length="expression motion",
            fit="ping-pong"):
        from ..pipelines.liveportrait.mix import MixSettings, mix_motions

        return (mix_motions(source, pose, expression, MixSettings(part, weight, length, fit)),)
