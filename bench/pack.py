"""The checkout imported as package ``talking_head`` (as ComfyUI and the tests import it),
so bench scripts run the pack's own code with its relative imports."""
import importlib.util
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def import_pack():
    if "talking_head" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "talking_head", os.path.join(ROOT, "__init__.py"), submodule_search_locations=[ROOT])
        module = importlib.util.module_from_spec(spec)
        sys.modules["talking_head"] = module
        spec.loader.exec_module(module)
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)   # for ``tests.*`` helpers (fake checkpoints)
    return sys.modules["talking_head"]
