"""Safe reading of checkpoint files and strict loading into modules.

* ``.pth``/``.pt``/``.bin`` go through ``torch.load(weights_only=True)``, which refuses
  arbitrary pickled objects.
* ``.safetensors`` are read with safetensors.
* pickled configs (``.pkl``) go through :class:`RestrictedUnpickler`, which admits only
  plain containers, numbers, strings and NumPy arrays.
* :func:`load_state_dict_strict` loads with ``strict=True`` semantics and, on mismatch,
  raises a :class:`CheckpointError` that lists the missing, unexpected and mis-shaped keys.
"""
from __future__ import annotations

import io
import os
import pickle
from typing import Iterable, Mapping

import torch

from .errors import CheckpointError, MissingWeightsError, UnsafePickleError

_MAX_LISTED = 12


def read_state_dict(path: str, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint file into a (possibly nested) dict of tensors."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MissingWeightsError(f"Checkpoint file not found: {path}")
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        try:
            return load_file(path, device=str(map_location))
        except Exception as exc:  # corrupt header, truncated download
            raise CheckpointError(
                f"{path} is not a readable safetensors file ({exc}). "
                "Delete it and download it again."
            ) from None
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path} holds pickled objects other than tensors, which this pack does not "
            f"load for safety ({str(exc).splitlines()[0]}). Use the official checkpoint file."
        ) from None
    except Exception as exc:
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__}: {exc}). "
            "It may be truncated: delete it and download it again."
        ) from None
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path} does not hold a state dict (found {type(obj).__name__}).")
    return dict(obj)


def strip_prefix(sd: Mapping[str, torch.Tensor], prefix: str) -> dict:
    """Remove ``prefix`` from every key that starts with it (e.g. DDP's ``module.``)."""
    n = len(prefix)
    return {(k[n:] if k.startswith(prefix) else k): v for k, v in sd.items()}


def select_prefix(sd: Mapping[str, torch.Tensor], prefix: str) -> dict:
    """Keep only the keys under ``prefix`` and strip it."""
    n = len(prefix)
    return {k[n:]: v for k, v in sd.items() if k.startswith(prefix)}


def _listing(keys: Iterable[str]) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:_MAX_LISTED])
    more = f" (+{len(keys) - _MAX_LISTED} more)" if len(keys) > _MAX_LISTED else ""
    return shown + more


def mismatch_report(module: torch.nn.Module, sd: Mapping[str, torch.Tensor]) -> str:
    """Describe how ``sd`` differs from ``module.state_dict()``; empty when it fits."""
    own = module.state_dict()
    missing = set(own) - set(sd)
    unexpected = set(sd) - set(own)
    shapes = [
        f"{k}: checkpoint {tuple(sd[k].shape)} vs network {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(sd))
        if tuple(sd[k].shape) != tuple(own[k].shape)
    ]
    parts = []
    if missing:
        parts.append(f"missing keys ({len(missing)}): {_listing(missing)}")
    if unexpected:
        parts.append(f"unexpected keys ({len(unexpected)}): {_listing(unexpected)}")
    if shapes:
        more = f" (+{len(shapes) - _MAX_LISTED} more)" if len(shapes) > _MAX_LISTED else ""
        parts.append("shape mismatches: " + "; ".join(shapes[:_MAX_LISTED]) + more)
    return "\n".join(parts)


def load_state_dict_strict(module: torch.nn.Module, sd: Mapping[str, torch.Tensor], what: str):
    """``module.load_state_dict(sd, strict=True)`` with a readable error on mismatch.

    ``what`` names the checkpoint in the message (a file path or a description).
    """
    report = mismatch_report(module, sd)
    if report:
        raise CheckpointError(
            f"{what} does not match the {type(module).__name__} network:\n{report}\n"
            "The file is probably a different model or version; download the official file."
        )
    module.load_state_dict(sd, strict=True)
    return module


# ---------------------------------------------------------------------------------------
# restricted unpickling for config pickles (Ditto's cfg .pkl, LivePortrait templates)

_ALLOWED_GLOBALS = {
    ("builtins", "dict"), ("builtins", "list"), ("builtins", "tuple"), ("builtins", "set"),
    ("builtins", "frozenset"), ("builtins", "int"), ("builtins", "float"),
    ("builtins", "complex"), ("builtins", "str"), ("builtins", "bytes"),
    ("builtins", "bytearray"), ("builtins", "bool"), ("builtins", "slice"),
    ("collections", "OrderedDict"),
    # NumPy arrays and scalars pickle through these reconstructors
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds only plain data: no functions, no arbitrary classes."""

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED_GLOBALS:
            import importlib

            return getattr(importlib.import_module(module), name)
        if module in ("numpy", "numpy.dtypes") and name.endswith("DType"):
            import numpy.dtypes as npd  # numpy>=1.25 pickles dtypes by class

            return getattr(npd, name)
        raise UnsafePickleError(
            f"refusing to unpickle '{module}.{name}': only plain containers, numbers, "
            "strings and NumPy arrays are allowed in config files"
        )


def load_pickle_safe(path_or_bytes) -> object:
    """Unpickle a config file, admitting only plain data (see :class:`RestrictedUnpickler`)."""
    if isinstance(path_or_bytes, (bytes, bytearray)):
        return RestrictedUnpickler(io.BytesIO(path_or_bytes)).load()
    path = os.fspath(path_or_bytes)
    if not os.path.isfile(path):
        raise MissingWeightsError(f"Config file not found: {path}")
    with open(path, "rb") as fh:
        try:
            return RestrictedUnpickler(fh).load()
        except UnsafePickleError as exc:
            raise UnsafePickleError(f"{path}: {exc}") from None
        except Exception as exc:
            raise CheckpointError(f"{path} is not a readable pickle ({exc}).") from None
