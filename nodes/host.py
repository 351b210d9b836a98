"""The ONE bridge to ComfyUI. Nothing else in the pack imports ComfyUI modules.

When ComfyUI is present (its ``folder_paths`` and ``comfy`` modules import), this uses:
the models folder and ``extra_model_paths.yaml`` remaps (``folder_paths``), the
input/output/temp folders, the torch device and fp16 policy (``comfy.model_management``),
the node progress bar (``comfy.utils.ProgressBar``) and the interruption check
(``throw_exception_if_processing_interrupted``). Without ComfyUI each has a standalone
fallback, so tests, the command line and library users need no host.

Modules are looked up at call time (not import time) so a host that finishes loading
after this pack, or a test that injects stand-ins, is honoured.
"""
from __future__ import annotations

import importlib
import os
import re
import sys
from fractions import Fraction
from typing import Optional

import torch

from ..pipelines.core import images, media, runtime, weights
from ..pipelines.core.errors import MediaError

MODEL_FOLDERS = weights.FOLDERS
MODEL_EXTENSIONS = {".pth", ".pt", ".bin", ".safetensors", ".onnx", ".pkl", ".json", ".task",
                    ".tflite"}


def _module(name: str):
    """The host module if ComfyUI is loaded (or a stand-in was injected), else None."""
    mod = sys.modules.get(name)
    if mod is not None:
        return mod
    if os.environ.get("TALKING_HEAD_STANDALONE") == "1":
        return None
    try:
        return importlib.import_module(name)
    except Exception:  # not installed, or a broken host install: fall back
        return None



# ---------------------------------------------------------------------------------------
# folders


def register_model_folders() -> None:
    """Register one models folder per family with explicit extensions (a new name would
    otherwise get an empty filter and list every file, notes.txt included)."""
    fp = _module("folder_paths")
    if fp is None:
        return
    for name in MODEL_FOLDERS.values():
        default = os.path.join(fp.models_dir, name)
        entry = fp.folder_names_and_paths.get(name)
        if entry is None:
            fp.folder_names_and_paths[name] = ([default], set(MODEL_EXTENSIONS))
        else:
            paths, exts = entry
            if default not in paths:
                paths.append(default)
            fp.folder_names_and_paths[name] = (paths, set(exts) | MODEL_EXTENSIONS)


def model_dirs(family: str) -> list:
    """Folders searched for ``family``'s files, the download target first."""
    fp = _module("folder_paths")
    if fp is None:
        return weights.folders(family)
    register_model_folders()
    return list(fp.get_folder_paths(MODEL_FOLDERS[family]))


def model_roots() -> dict:
    """{family: [folders]} for every family, for the weights registry."""
    return {family: model_dirs(family) for family in MODEL_FOLDERS}


def output_dir() -> str:
    fp = _module("folder_paths")
    path = fp.get_output_directory() if fp else os.environ.get(
        "TALKING_HEAD_OUTPUT", os.path.join(os.getcwd(), "output"))
    os.makedirs(path, exist_ok=True)
    return path


def temp_dir() -> str:
    fp = _module("folder_paths")
    if fp is not None:
        path = fp.get_temp_directory()
    else:
        import tempfile

        path = os.path.join(tempfile.gettempdir(), "talking_head")
    os.makedirs(path, exist_ok=True)
    return path


PRESETS_FOLDER = "talking_head_presets"


def presets_dir() -> str:
    """Where users' expression presets live: ``<models>/talking_head_presets`` (ComfyUI's
    models folder when hosted, else $TALKING_HEAD_MODELS or the pack's models folder).
    A models sub-folder because people already know, back up and share that folder; it
    is made on the first save, not here (listing must not create folders)."""
    fp = _module("folder_paths")
    root = fp.models_dir if fp is not None else weights.default_models_root()
    return os.path.join(root, PRESETS_FOLDER)


def input_dir() -> str:
    fp = _module("folder_paths")
    return fp.get_input_directory() if fp else os.environ.get(
        "TALKING_HEAD_INPUT", os.path.join(os.getcwd(), "input"))


def input_files(exts) -> list:
    """Files in the input folder (recursively, relative paths) with one of ``exts``."""
    root = input_dir()
    if not os.path.isdir(root):
        return []
    out = []
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            if os.path.splitext(f)[1].lower() in exts:
                out.append(os.path.relpath(os.path.join(dirpath, f), root).replace(os.sep, "/"))
    return sorted(out)


ABSOLUTE_PATHS_ENV = "TALKING_HEAD_ALLOW_ABSOLUTE_PATHS"
_ANNOTATION = re.compile(r"^(.*?)\s*\[(input|output|temp)\]$")


def _folder(kind: str) -> str:
    return {"input": input_dir, "output": output_dir, "temp": temp_dir}[kind]()


def resolve_input(name: str) -> str:
    """A file widget's value -> the file's path, inside ComfyUI's input folder (or the
    output / temp folder for annotated names such as 'clip.mp4 [output]', as core nodes
    accept). Names that leave the folder are refused; absolute paths only when the server
    operator sets TALKING_HEAD_ALLOW_ABSOLUTE_PATHS=1 (a server reachable over its API would
    otherwise read any image or video on its disk for whoever queues a prompt). Messages
    never show the server's own folders."""
    text = (name or "").strip()
    if not text:
        raise MediaError("No file chosen: upload an image or video, or pick one from the list.")
    match = _ANNOTATION.match(text)
    rel, kind = (match.group(1), match.group(2)) if match else (text, "input")
    if os.path.isabs(rel) or re.match(r"^[A-Za-z]:[\\/]", rel) or rel.startswith("\\\\"):
        if os.environ.get(ABSOLUTE_PATHS_ENV) != "1":
            raise MediaError(f"'{os.path.basename(rel)}' is given as an absolute path, which this "
                             f"server does not allow: put the file in ComfyUI's {kind} folder (or "
                             f"upload it), or set {ABSOLUTE_PATHS_ENV}=1 on the server to allow paths.")
        return rel
    base = os.path.abspath(_folder(kind))
    path = os.path.abspath(os.path.join(base, rel))
    if os.path.commonpath([path, base]) != base:
        raise MediaError(f"'{text}' points outside ComfyUI's {kind} folder; choose a file inside it.")
    return path


def check_input_file(name: str):
    """VALIDATE_INPUTS' answer for a file widget: True, or what is wrong (no server path)."""
    try:
        path = resolve_input(name)
    except MediaError as exc:
        return str(exc)
    if not os.path.isfile(path):
        return f"File not found: '{name}'. Upload an image or video, or pick one from the list."
    return True


# ---------------------------------------------------------------------------------------
# core VIDEO values


class FileVideo:
    """Standalone stand-in for ComfyUI's VideoFromFile (same methods the pack and core
    Save Video use), for hosts without core VIDEO and for tests."""

    def __init__(self, path: str):
        self._path = path

    def get_stream_source(self) -> str:
        return self._path

    def get_dimensions(self) -> tuple:
        info = media.probe(self._path)
        return info.width, info.height

    def get_components(self):
        import types

        import numpy as np

        video = media.read_video(self._path)
        audio = None
        if video.audio is not None:
            audio = {"waveform": torch.from_numpy(np.ascontiguousarray(video.audio))[None],
                     "sample_rate": int(video.sample_rate)}
        return types.SimpleNamespace(images=torch.from_numpy(video.frames).float() / 255.0,
                                     frame_rate=video.fps, audio=audio, metadata=None)


def video_from_file(path: str):
    """A core VIDEO value for a written file (ComfyUI's VideoFromFile when the host has it)."""
    impl = _module("comfy_api.input_impl")
    cls = getattr(impl, "VideoFromFile", None) if impl is not None else None
    return cls(path) if cls is not None else FileVideo(path)


def read_video_value(video, max_frames: int = 0, every_nth: int = 1):
    """A core VIDEO value -> (frames (N,H,W,3) uint8, fps, AUDIO dict or None). A video that
    is a file is decoded by the pack's own reader (exact fps, streamed); others give their
    components (decoded by the host)."""
    import numpy as np

    source = video.get_stream_source() if hasattr(video, "get_stream_source") else None
    if isinstance(source, str) and os.path.isfile(source):
        v = media.read_video(source, max_frames=max_frames or None, every_nth=every_nth)
        audio = None
        if v.audio is not None:
            audio = {"waveform": torch.from_numpy(np.ascontiguousarray(v.audio))[None],
                     "sample_rate": int(v.sample_rate)}
        return v.frames, v.fps, audio
    if not hasattr(video, "get_components"):
        raise MediaError("The video input is not a ComfyUI VIDEO value; connect a Load Video output.")
    parts = video.get_components()
    frames = images.to_uint8(torch.as_tensor(parts.images)[::max(1, every_nth)])
    frames = frames[:max_frames] if max_frames else frames
    fps = Fraction(parts.frame_rate) / max(1, every_nth)
    return frames.numpy(), fps, parts.audio


# ---------------------------------------------------------------------------------------
# device, dtype


def torch_device() -> torch.device:
    mm = _module("comfy.model_management")
    if mm is not None:
        return mm.get_torch_device()
    return runtime.pick_device("auto")


def torch_dtype(preference: str = "auto", device: Optional[torch.device] = None) -> torch.dtype:
    """auto/fp32/fp16/bf16 -> a dtype for ``device``; 'auto' follows the host's fp16 policy."""
    device = device or torch_device()
    if preference == "auto":
        mm = _module("comfy.model_management")
        if mm is not None and hasattr(mm, "should_use_fp16"):
            try:
                use_half = bool(mm.should_use_fp16(device))
            except TypeError:
                use_half = bool(mm.should_use_fp16())
            return runtime.resolve_dtype("auto", device, half_ok=use_half)
    return runtime.resolve_dtype(preference, device)


# ---------------------------------------------------------------------------------------
# progress and interruption


def check_interrupt() -> None:
    """Raise if the user pressed Cancel (ComfyUI) or an interrupt was requested."""
    mm = _module("comfy.model_management")
    if mm is not None:
        mm.throw_exception_if_processing_interrupted()
    runtime.check_interrupt()


class Progress:
    """Node progress bar: ComfyUI's ProgressBar when hosted, a terminal bar otherwise.
    Called as ``progress(done, total)`` (a RunContext's progress sink); the bar is made on
    the first call, with that call's total."""

    def __init__(self, desc: str = ""):
        self.desc = desc
        self._bar = None
        self.total = 0

    def __call__(self, value: int, total: int) -> None:
        total = max(1, int(total))
        if self._bar is None or total != self.total:
            utils = _module("comfy.utils")
            self._bar = (utils.ProgressBar(total) if utils is not None and hasattr(utils, "ProgressBar")
                         else runtime.TerminalProgress(total, self.desc))
            self.total = total
        value = min(total, int(value))
        try:
            self._bar.update_absolute(value, total)
        except TypeError:
            self._bar.update_absolute(value)


def context(desc: str = "", dtype: str = "auto") -> runtime.RunContext:
    """The run context of a node: the host's device and dtype policy, its progress bar
    (labelled ``desc``) and its Cancel button."""
    device = torch_device()
    return runtime.RunContext(device, torch_dtype(dtype, device), Progress(desc), check_interrupt)
