"""Every user-facing choice list, defined once and importable without torch.

Nodes (their combo widgets), the command line (argparse choices, so ``--help`` and a
wrong choice answer at once, before anything heavy loads) and the pipelines (their
checks) all read these. Plain data only: no imports.
"""

DTYPES = ("auto", "fp32", "fp16", "bf16")
DEVICES_HELP = "auto, cpu, cuda, cuda:1, mps"

# paste-back (composite/): the render's weight inside the region per blend mode
BLEND_MODES = {"replace": 1.0, "strong": 0.9, "blend": 0.5, "weak": 0.25, "custom": None}
BLEND_REGIONS = ("crop", "face", "lower_face")
COLOR_MATCH = ("off", "rgb", "lab")
CROP_EDGES = ("liveportrait", "ditto")
MODE_HELP = {
    "replace": "render only inside the region (alpha 1.0); with region crop this is the "
               "original LivePortrait/Ditto paste-back",
    "strong": "90% render: hides the original's smile and teeth, keeps a trace of its texture",
    "blend": "50% render, 50% original inside the region, smooth edges",
    "weak": "25% render: a subtle change over the original",
    "custom": "your own alpha: 0 = original only, 1 = render only",
}
REGION_HELP = {
    "crop": "the whole crop square with the official feathered edge (original behaviour)",
    "face": "the face outline from the landmarks, feathered: no square on plain backgrounds",
    "lower_face": "mouth and jaw below the nose line: lip-sync over a moving source video",
}

# LivePortrait
LP_LAYOUTS = ("auto", "official", "safetensors", "ditto")
ANIMATION_REGIONS = ("all", "pose", "exp", "lip", "eyes")
LENGTH_MODES = ("hold last source frame", "cycle", "ping-pong", "cut")
DETECTORS = ("mediapipe", "insightface")
# how a shorter sequence is walked to a longer length (core/timeline.py)
FRAME_ORDERS = ("ping-pong", "cycle", "hold")
# Mix Motion: what the second motion gives, and which motion sets the mix's length
MIX_PARTS = ("lips", "expression", "eyes")
MIX_LENGTHS = ("expression motion", "pose motion", "shorter")
# JoyVASA: what follows the audio (the rest stays the portrait's)
JOYVASA_REGIONS = ("all", "expression", "pose", "lips", "eyes")
# JoyVASA's positional encoding: "prefix" is what the released weights were trained with
JOYVASA_PE_MODES = ("prefix", "fixed")

# Ditto's eight emotion labels (the LMDM's emotion condition, in its order)
EMOTIONS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise", "contempt")

# MuseTalk's face-parsing masks
PARSING_MODES = ("jaw", "raw", "neck")

# Expression editing (AdvancedLivePortrait parity): "reference" reproduces that pack's
# maths exactly, "default" fixes its defects (pipelines/expression/modes.py lists them)
EXPRESSION_MODES = ("default", "reference")
# script/keyframe transition curves (pipelines/expression/ramps.py says what each does)
EASINGS = ("linear", "ease-in", "ease-out", "ease-in-out", "hold")
# what a sample face lends the Expression Editor
SAMPLE_PARTS = ("OnlyExpression", "OnlyRotation", "OnlyMouth", "OnlyEyes", "All")
