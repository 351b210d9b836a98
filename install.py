"""Run by ComfyUI-Manager after requirements.txt (cwd = this folder).

Installs what is missing and never touches torch, torchvision, torchaudio or numpy
(the host owns them). onnxruntime is optional (Ditto's HuBERT features need it); the
GPU build is chosen when the host's torch sees CUDA.
"""
import importlib.util
import subprocess
import sys


def missing(module: str) -> bool:
    return importlib.util.find_spec(module) is None


def pip(*packages: str) -> int:
    cmd = [sys.executable, "-m", "pip", "install", "--upgrade-strategy", "only-if-needed",
           *packages]
    print("[talking-head-studio] " + " ".join(cmd))
    return subprocess.call(cmd)


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


if __name__ == "__main__":
    main()
