"""ComfyUI adapters. Importing a node module registers its classes in
``NODE_CLASS_MAPPINGS``/``NODE_DISPLAY_NAME_MAPPINGS`` (see :mod:`.registry`)."""
from . import host
from . import (blend_nodes, ditto_nodes, face_nodes, io_nodes, joyvasa_nodes, liveportrait_nodes,
               motion_nodes, musetalk_nodes)
from . import expression_nodes
from .registry import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

host.register_model_folders()

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
