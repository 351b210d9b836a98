"""One display-name prefix and one category root for every node of the pack."""
from ..pipelines.core.choices import DTYPES
NODE_CLASS_MAPPINGS: dict = {}
NODE_DISPLAY_NAME_MAPPINGS: dict = {}

PREFIX = "THS"            # class-name prefix: node ids are global across all packs
DISPLAY_PREFIX = "TalkingHead"
CATEGORY = "TalkingHead"


def register(display_name: str, category: str = ""):
    """Class decorator: register a node under ``THS_<ClassName>``."""

    def wrap(cls):
        node_id = f"{PREFIX}_{cls.__name__}"
        cls.CATEGORY = f"{CATEGORY}/{category}" if category else CATEGORY
        NODE_CLASS_MAPPINGS[node_id] = cls
        NODE_DISPLAY_NAME_MAPPINGS[node_id] = f"{DISPLAY_PREFIX} · {display_name}"
        return cls

    return wrap

# the pack's own value types (pipelines/types.py holds their dataclasses)
LP_MODELS = "THS_LP_MODELS"
DITTO_MODELS = "THS_DITTO_MODELS"
MUSETALK_MODELS = "THS_MUSETALK_MODELS"
JOYVASA_MODELS = "THS_JOYVASA_MODELS"
SOURCE = "THS_SOURCE"
AUDIO_FEATURES = "THS_AUDIO_FEATURES"
MOTION = "THS_MOTION"
KEYPOINTS = "THS_KEYPOINTS"
WARPED = "THS_WARPED"
AVATAR = "THS_MUSETALK_AVATAR"
EXPRESSION = "THS_EXPRESSION"  # an expression offset (pipelines.expression.ExpressionSet)

DTYPE_WIDGET = (list(DTYPES), {"default": "auto", "tooltip":
                "auto: the host's choice (bf16 or fp16 on a GPU); the CPU always runs fp32."})
