"""Per-thread work arrays of the CPU paste-back, reused between calls: fresh multi-MB
arrays would cost more in page faults than the work done in them."""
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
