"""Where the shared research material lives, and a skip when it is absent."""
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("TALKING_HEAD_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
FIDELITY = os.path.join(SHARED, "fidelity")
FIXTURES = os.path.join(SHARED, "fixtures")
HAVE_SHARED = os.path.isdir(FIDELITY)
SKIP_REASON = (f"../shared (golden vectors, manifests, fixtures) not found at {SHARED}; "
               "set TALKING_HEAD_SHARED to run these tests")


def require_shared():
    if not HAVE_SHARED:
        pytest.skip(SKIP_REASON)


needs_shared = pytest.mark.skipif(not HAVE_SHARED, reason=SKIP_REASON)
