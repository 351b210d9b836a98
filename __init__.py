"""Talking Head Studio: ComfyUI nodes for talking-head video (Ditto, MuseTalk v1.5,
LivePortrait), one node per pipeline stage.

ComfyUI imports this folder as a package and reads the three names below. The node
classes import their heavy dependencies lazily, so startup stays fast.
"""
from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

WEB_DIRECTORY = "./web/js"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
