"""One display-name prefix and one category root for every node of the pack."""
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
