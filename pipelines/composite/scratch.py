"""Per-thread work arrays of the CPU paste-back, reused between calls (fresh multi-MB
arrays would cost more in page faults than the work done in them), and the cache
warming of its warps' sources."""
from __future__ import annotations

import math
import threading

import numpy as np

_pool = threading.local()
_MAX_BYTES = 64 << 20  # larger work arrays (4K float warps) are not kept


def work_array(name: str, shape: tuple, dtype) -> np.ndarray:
    """The calling thread's work array ``name`` as ``shape`` (grown when too small). Its
    values are left over from earlier calls: write it in full before reading it."""
    pool = _pool.__dict__.setdefault("arrays", {})
    size = math.prod(shape)
    flat = pool.get((name, dtype))  # dtype as given: a numpy type or dtype, both hash
    if flat is None or flat.size < size:
        flat = np.empty(size, dtype)
        if flat.nbytes <= _MAX_BYTES:
            pool[(name, dtype)] = flat
    return flat[:size].reshape(shape)


# bytes per CPU cache line (64 on x86-64 and most ARM cores; a larger line only means
# some lines are read twice)
_LINE = 64


def warm(array: np.ndarray) -> None:
    """Read one byte of each cache line of the C-contiguous ``array``, in order.

    cv2.warpAffine reads its source along the crop's rotated rows, a pattern the CPU's
    prefetchers do not follow: from a source that is not in the caches nearly every read
    waits for memory. One ordered pass first (a sixteenth of a full read) brings the
    source in; on 512x512 frames it saves more than the whole blend costs (see
    bench/bench_paste_back.py)."""
    if array.size and array.flags.c_contiguous:
        array.reshape(-1).view(np.uint8)[::_LINE].max()
