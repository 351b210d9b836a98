"""Talking Head Studio: ComfyUI nodes for talking-head video (Ditto, MuseTalk v1.5,
LivePortrait), one node per pipeline stage.

ComfyUI imports this folder as a package and reads the three names below. The node
classes import their heavy dependencies lazily, so startup stays fast.
"""
WEB_DIRECTORY = "./web/js"

# ComfyUI always imports this file as a package. Tools that walk folders (pytest, for
# one) import it as a plain module when the folder's name is not a Python identifier
# (a clone named "talking-head-studio"): there the relative import cannot work, and
# nothing needs the nodes, so only the package import loads them.
if __package__:
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
else:
    NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = {}, {}

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
