"""Fake checkpoints for tests: keyed weights (../shared/fidelity/keyed_init.py) written in
the official file layouts, so the real loading code runs end to end without real files.

Manifests come in two shapes (a list of {key, shape, dtype} under "state_dict", or a dict
key -> {shape, dtype} under "state_dict" or "keys"); :func:`manifest_entries` reads both.
"""
from __future__ import annotations

import glob
import json
import os
import sys
from typing import Callable, Mapping, Optional

import torch

from .paths import SHARED, require_shared

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "float64": torch.float64,
           "int64": torch.int64, "int32": torch.int32, "bool": torch.bool}


def keyed_init_module():
    """Import ../shared/fidelity/keyed_init.py (skips the test when ../shared is absent)."""
    require_shared()
    path = os.path.join(SHARED, "fidelity")
    if path not in sys.path:
        sys.path.insert(0, path)
    import keyed_init

    return keyed_init


def find_manifest(name: str) -> str:
    """A manifest by file name, in spec/manifests or fidelity/<family>/manifests (looked up
    by path, so symlinked folders work)."""
    require_shared()
    if os.path.isfile(name):
        return name
    folders = [os.path.join(SHARED, "spec", "manifests")] + sorted(
        glob.glob(os.path.join(SHARED, "fidelity", "*", "manifests")))
    for folder in folders:
        if os.path.isfile(os.path.join(folder, name)):
            return os.path.join(folder, name)
    raise FileNotFoundError(f"no manifest named {name} under {SHARED} (set TALKING_HEAD_SHARED)")


def manifest_entries(name: str) -> dict:
    """{key: (shape tuple, torch dtype)} in the manifest's order."""
    with open(find_manifest(name)) as fh:
        data = json.load(fh)
    sd = data.get("state_dict") if "state_dict" in data else data.get("keys")
    out = {}
    if isinstance(sd, list):
        for e in sd:
            out[e["key"]] = (tuple(e["shape"]), _DTYPES[e.get("dtype", "float32")])
    else:
        for k, e in sd.items():
            out[k] = (tuple(e["shape"]), _DTYPES[e.get("dtype", "float32")])
    return out


def keyed_state_dict(entries: Mapping[str, tuple], keep: Optional[Mapping[str, torch.Tensor]] = None,
                     key_for_seed: Callable[[str], str] = lambda k: k,
                     base_seed: Optional[int] = None) -> dict:
    """Keyed tensors for every entry; ``keep`` supplies constant buffers verbatim.

    ``key_for_seed`` maps a file key to the key whose name seeds it (for layouts whose
    file keys carry prefixes that the fidelity recipe does not). ``base_seed``: a golden
    set's own seed (``tests.goldens.GoldenSet.keyed`` passes it); None = the recipe's
    default, for fake models that only need plausible weights.
    """
    ki = keyed_init_module()
    seed = ki.BASE_SEED if base_seed is None else int(base_seed)
    keep = dict(keep or {})
    out = {}
    for key, (shape, dtype) in entries.items():
        if key in keep:
            out[key] = keep[key].clone().to(dtype)
        elif dtype in (torch.int64, torch.int32) and not key.endswith("num_batches_tracked"):
            out[key] = torch.zeros(shape, dtype=dtype)
        elif dtype == torch.bool:
            out[key] = torch.ones(shape, dtype=dtype)
        else:
            out[key] = ki.keyed_tensor(key_for_seed(key), shape, dtype, seed)
    return out


def save(obj, path: str) -> str:
    """Write ``obj`` the way the official file is written (.safetensors or torch.save)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    if path.endswith(".safetensors"):
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in obj.items()}, path)
    else:
        torch.save(obj, path)
    return path


def write_fake(manifest: str, path: str, wrap: Optional[str] = None, prefix: str = "",
               keep: Optional[Mapping[str, torch.Tensor]] = None,
               entries: Optional[Mapping[str, tuple]] = None, base_seed: Optional[int] = None) -> str:
    """Write keyed weights for ``manifest`` to ``path``.

    wrap: put the state dict under this key ({wrap: sd}), as Ditto's LMDM and stitch files do.
    prefix: prepend to every key (e.g. DDP's "module."); seeds still use the bare key.
    entries: override the manifest (e.g. a tiny config's own state dict shapes).
    """
    entries = dict(entries) if entries is not None else manifest_entries(manifest)
    sd = keyed_state_dict(entries, keep=keep, base_seed=base_seed)
    sd = {prefix + k: v for k, v in sd.items()}
    return save({wrap: sd} if wrap else sd, path)


def entries_of(module: torch.nn.Module) -> dict:
    """{key: (shape, dtype)} of a module's state dict (for tiny configs)."""
    return {k: (tuple(v.shape), v.dtype) for k, v in module.state_dict().items()}


def seeded_init_(nets, seed: int = 0):
    """Fill every tensor of ``nets`` (a module or a dict of modules) from one seeded
    generator with unit-variance-ish values (the keyed recipe's ranges, without keys):
    for tests and benches that need plausible weights fast."""
    import math

    g = torch.Generator().manual_seed(seed)
    modules = nets.values() if isinstance(nets, dict) else [nets]
    with torch.no_grad():
        for net in modules:
            for name, t in net.state_dict().items():
                if name.endswith("num_batches_tracked"):
                    t.zero_()
                elif name.endswith("running_var"):
                    t.copy_(0.5 + torch.rand(t.shape, generator=g))
                elif t.dim() >= 2:
                    t.copy_((2 * torch.rand(t.shape, generator=g) - 1) * math.sqrt(3 / t[0].numel()))
                else:
                    t.copy_(0.1 * (2 * torch.rand(t.shape, generator=g) - 1)
                            + (1.0 if name.endswith(("weight", "gamma")) else 0.0))
    return nets
