"""Run by ComfyUI-Manager after requirements.txt (cwd = this folder).

Installs what is missing and never touches torch, torchvision, torchaudio or numpy
(the host owns them). Optional, each skipped with a message when it cannot be installed:
- onnxruntime (Ditto's HuBERT features need it), the GPU build when the host's torch sees
  CUDA;
- numba, which compiles the CPU paste-back's blend into one loop (same frames, faster).
  numba caps numpy's version, so it is installed only as a build that works with the
  host's numpy as it is (pip is held to that version) and only from wheels.
"""
import importlib.util
import os
import subprocess
import sys
import tempfile


def missing(module: str) -> bool:
    return importlib.util.find_spec(module) is None


def pip(*args: str) -> int:
    cmd = [sys.executable, "-m", "pip", "install", "--upgrade-strategy", "only-if-needed",
           *args]
    print("[talking-head-studio] " + " ".join(cmd))
    return subprocess.call(cmd)


def numpy_version() -> str:
    """The host's numpy version, or "" when numpy is not installed."""
    try:
        from importlib.metadata import version

        return version("numpy")
    except Exception:
        return ""


def pip_holding_numpy(*args: str) -> int:
    """pip install with numpy held at the host's version (a constraints file)."""
    held = numpy_version()
    if not held:
        return pip(*args)
    fd, path = tempfile.mkstemp(prefix="talking_head_numpy_", suffix=".txt")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(f"numpy=={held}\n")
        return pip("-c", path, *args)
    finally:
        os.unlink(path)


def main() -> None:
    wanted = {"safetensors": "safetensors", "huggingface_hub": "huggingface-hub",
              "imageio_ffmpeg": "imageio-ffmpeg", "mediapipe": "mediapipe", "diffusers": "diffusers",
              "transformers": "transformers", "PIL": "Pillow"}
    todo = [pkg for mod, pkg in wanted.items() if missing(mod)]
    if todo:
        pip(*todo)
    if missing("onnxruntime"):
        try:
            import torch

            gpu = torch.cuda.is_available()
        except Exception:
            gpu = False
        if pip("onnxruntime-gpu" if gpu else "onnxruntime") != 0:
            print("[talking-head-studio] onnxruntime could not be installed; Ditto's audio "
                  "features need it (`pip install onnxruntime`). MuseTalk and LivePortrait work without it.")
    if missing("numba"):
        # >= 0.61: the first with numpy 2 (and a short search when none fits)
        if pip_holding_numpy("--only-binary=numba,llvmlite", "numba>=0.61") != 0:
            print(f"[talking-head-studio] numba could not be installed beside numpy "
                  f"{numpy_version() or '?'} (see pip's message above); the paste-back "
                  "runs its cv2 path: the same frames, somewhat slower on the CPU. Nothing "
                  "else needs numba.")


if __name__ == "__main__":
    main()
