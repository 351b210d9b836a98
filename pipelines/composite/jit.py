"""The paste-back's blend as one compiled loop, when numba is installed (optional).

The cv2 / numpy blend (:mod:`.paste`) needs five to seven passes over the pixels it
blends: nothing there multiplies a 3-channel image by a 1-channel weight, or adds two
products and truncates, in one call (cv2.accumulateProduct fuses the multiply-add and
rounds differently). With numba the reference's formula runs in one pass over the ROI,
as Ditto's Cython ``blend_images_cy`` does, and still rounds as the reference:
    out = uint8(trunc(clip(w * a + (1 - w) * b, 0, 255)))
each product and the sum rounded to float32 on their own. numba compiles without
fast-math flags, so LLVM may not fuse them into FMA; the paste tests run both paths
against the references bit for bit.

numba is not a requirement: it caps numpy's version, and the host owns numpy. install.py
adds it only where it fits the host's numpy. TALKING_HEAD_JIT=0 turns it off.
"""
from __future__ import annotations

import logging
import os
import threading
from typing import Callable, Optional

import numpy as np

log = logging.getLogger("talking_head")

# read by blend_kernel on every call: tests and benches switch it to compare the paths
ENABLED = os.environ.get("TALKING_HEAD_JIT", "1") != "0"

_lock = threading.Lock()
_kernel: list = []  # [kernel or None] once numba was tried


def blend_kernel() -> Optional[Callable]:
    """The compiled :func:`blend_roi`, or None (numba missing, or turned off)."""
    if not ENABLED:
        return None
    if not _kernel:
        with _lock:
            if not _kernel:
                _kernel.append(_compile())
    return _kernel[0]


def blend(warped, frame, out, weight, y0: int, x0: int) -> bool:
    """:func:`blend_roi` compiled; False when there is no compiled kernel, or it failed
    (numba compiles on first use: an LLVM or typing error there turns it off for the
    process, with a warning, and the caller blends with cv2 instead)."""
    kernel = blend_kernel()
    if kernel is None:
        return False
    try:
        kernel(warped, frame, out, weight, y0, x0)
        return True
    except Exception as exc:
        log.warning("the compiled paste-back blend failed (%s: %s); using the cv2 blend "
                    "from now on", type(exc).__name__, exc)
        with _lock:
            _kernel[:] = [None]
        return False


def _compile() -> Optional[Callable]:
    try:
        import numba
    except Exception:  # not installed, or built for another numpy: the cv2 path
        return None
    # nogil: the render's paste stage may run beside the networks in another thread.
    # No on-disk cache (about a second of compiling per process instead): numba's cache
    # names the module, and this one is imported under the host's folder name, as
    # "pipelines" by the command line, or as "talking_head" by the tests.
    return numba.njit(nogil=True)(blend_roi)


def blend_roi(warped, frame, out, weight, y0, x0):
    """out[y0:y0+h, x0:x0+n] = trunc(clip(w * warped + (1 - w) * frame, 0, 255)) over the
    (h, n) ``weight``, on the frame's pixels at (y0, x0) (also the warp's: the warp
    starts at the frame's top-left corner). warped: float32 or uint8 (rows, cols, 3);
    frame, out: uint8 (H, W, 3), ``out`` may be ``frame``.

    Plain Python, compiled by :func:`blend_kernel`. Each row's weights are first
    repeated per channel into a short buffer, so that the blend itself is one flat loop
    over the row's values, which LLVM vectorises."""
    h, n = weight.shape
    one, lo, hi = np.float32(1.0), np.float32(0.0), np.float32(255.0)
    w3 = np.empty(3 * n, np.float32)
    for r in range(h):
        row = weight[r]
        for c in range(n):
            w3[3 * c] = row[c]
            w3[3 * c + 1] = row[c]
            w3[3 * c + 2] = row[c]
        a = warped[y0 + r].reshape(-1)[3 * x0:3 * (x0 + n)]
        b = frame[y0 + r].reshape(-1)[3 * x0:3 * (x0 + n)]
        o = out[y0 + r].reshape(-1)[3 * x0:3 * (x0 + n)]
        for i in range(3 * n):
            wv = w3[i]
            v = np.float32(a[i]) * wv + np.float32(b[i]) * (one - wv)
            v = v if v > lo else lo  # first: NaN -> 0, as numpy's cast gives on x86
            v = v if v < hi else hi
            o[i] = np.uint8(np.int32(v))
