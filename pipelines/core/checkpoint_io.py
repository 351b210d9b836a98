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


def require_file(path, what: str, repo: str, repo_path: str, folder: str) -> str:
    """``path`` as a string when it names a file, else a MissingWeightsError that says
    where the file comes from: ``what`` (e.g. "Ditto lmdm"), the HuggingFace ``repo`` and
    the file's path in it, and the models sub-folder to download it into."""
    if path is None or not os.path.isfile(os.fspath(path)):
        raise MissingWeightsError(
            f"{what} file not found: {path}. Download {repo_path} from the HuggingFace repo "
            f"{repo} (e.g. `huggingface-cli download {repo} {repo_path} --local-dir "
            f"<models>/{folder}`) and point to it, or let the loader download it.")
    return os.fspath(path)


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


# ---------------------------------------------------------------------------------------
# restricted reading of torch.save archives that pickle a few plain Python objects
#
# Some official checkpoints (JoyVASA's motion generator) pickle an argparse.Namespace or a
# pathlib path next to the state dict, which ``torch.load(weights_only=True)`` refuses.
# :func:`load_torch_archive` reads the zip archive itself: tensors are rebuilt from the
# stored bytes, and the pickle may name only torch's tensor-rebuild functions and storage
# types, ``collections.OrderedDict`` and the globals the caller lists. Nothing else is
# ever imported or called.

from collections import OrderedDict  # noqa: E402

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16, "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64, "IntStorage": torch.int32, "ShortStorage": torch.int16,
    "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
}


class _StorageType:
    """Stands for ``torch.<X>Storage`` in the pickle: only its dtype is used."""

    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    # a view into the flat storage, as torch._utils._rebuild_tensor_v2 makes it
    return storage.as_strided(tuple(size), tuple(stride), int(offset))


def _rebuild_parameter(data, requires_grad=False, hooks=None, state=None):
    return data  # plain tensors: the loader copies values into its own parameters


_TENSOR_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("collections", "OrderedDict"): OrderedDict,
}


class _ArchiveUnpickler(pickle.Unpickler):
    def __init__(self, fh, archive, prefix: str, allowed: Mapping):
        super().__init__(fh)
        self._archive = archive
        self._prefix = prefix
        self._allowed = dict(allowed)
        self._storages: dict = {}

    def find_class(self, module: str, name: str):
        if (module, name) in self._allowed:
            return self._allowed[(module, name)]
        if (module, name) in _TENSOR_GLOBALS:
            return _TENSOR_GLOBALS[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        raise UnsafePickleError(
            f"refusing to unpickle '{module}.{name}': this checkpoint may hold only tensors "
            f"and {', '.join(sorted(f'{m}.{n}' for m, n in self._allowed)) or 'plain data'}")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise CheckpointError(f"unknown record {pid!r:.80} in the checkpoint archive")
        key = str(pid[2])
        if key not in self._storages:
            self._storages[key] = self._read_storage(key, pid[1].dtype)
        return self._storages[key]

    def _read_storage(self, key: str, dtype: torch.dtype) -> torch.Tensor:
        name = f"{self._prefix}data/{key}"
        size = self._archive.getinfo(name).file_size
        buf = bytearray(size)
        view = memoryview(buf)
        with self._archive.open(name) as fh:
            done = 0
            while done < size:
                n = fh.readinto(view[done:])
                if not n:
                    raise CheckpointError(f"storage {key} is truncated")
                done += n
        if size == 0:
            return torch.empty(0, dtype=dtype)
        return torch.frombuffer(buf, dtype=dtype)


def load_torch_archive(path, allowed: Mapping = None) -> object:
    """Unpickle a ``torch.save`` zip archive without ``torch.load``'s full unpickler.

    ``allowed`` maps ``(module, name)`` as written in the pickle to the object to use for
    it (e.g. ``{("argparse", "Namespace"): argparse.Namespace}``; a name may map to a safer
    stand-in). Any other global raises :class:`UnsafePickleError` naming it, before
    anything of it is imported or called. Tensors come back on the CPU, whatever device
    they were saved from.
    """
    import zipfile

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MissingWeightsError(f"Checkpoint file not found: {path}")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"{path} is not a torch.save archive (not a zip file; legacy or truncated). "
            "Download the official file again.")
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
            if len(pickles) != 1:
                raise CheckpointError(f"{path} is not a torch.save archive (no data.pkl)")
            prefix = pickles[0][: -len("data.pkl")]
            order = f"{prefix}byteorder"
            if order in archive.namelist() and archive.read(order).strip() not in (b"little", b""):
                raise CheckpointError(f"{path} was saved on a big-endian machine, which this "
                                      "pack does not read; re-save it on a PC")
            with archive.open(pickles[0]) as fh:
                return _ArchiveUnpickler(fh, archive, prefix, allowed or {}).load()
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{path}: {exc}") from None
    except CheckpointError:
        raise
    except Exception as exc:  # corrupt zip entries, odd pickles
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint "
                              f"({type(exc).__name__}: {exc}). It may be truncated: delete it "
                              "and download it again.") from None
