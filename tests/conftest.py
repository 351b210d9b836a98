"""Import the pack the way ComfyUI does: the checkout folder as one package.

ComfyUI imports a custom node folder as a package named after the folder; tests do the
same under the fixed name ``talking_head`` so that ``talking_head.pipelines`` and
``talking_head.nodes`` resolve their relative imports exactly as in the host.
"""
import importlib.util
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "talking_head"

if PACKAGE not in sys.modules:
    spec = importlib.util.spec_from_file_location(
        PACKAGE, os.path.join(ROOT, "__init__.py"), submodule_search_locations=[ROOT])
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    spec.loader.exec_module(module)

import torch  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

from talking_head.pipelines.liveportrait import render as _render  # noqa: E402

# The CPU warps and decodes one frame per pass so that a stop request at full size is
# honoured within a second; the tests' tiny networks finish a whole batch far sooner, and
# the per-pass overhead would dominate their renders. test_liveportrait_tiny pins the
# shipped value and the one-frame path.
_render.CPU_FRAMES_PER_PASS = 64


@pytest.fixture
def shared():
    from tests.paths import SHARED, require_shared

    require_shared()
    return SHARED


@pytest.fixture(scope="module")
def one_thread():
    """Tiny or heavily sequential modules: one thread is as fast and immune to busy
    neighbours (2 threads busy-wait on a loaded 2-core machine). Use with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
