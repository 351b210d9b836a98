"""Every checkpoint file the pack uses: where it comes from, where it goes, how to get it.

Files are looked up in the family's model folders (ComfyUI's ``models/<folder>`` and any
``extra_model_paths.yaml`` remaps, passed in by the host bridge; standalone:
$TALKING_HEAD_MODELS or ``<pack>/models``). Downloads go into the first folder, keeping
the hub's relative path, never only into the hub cache, so a person can see and move them.
"""
from __future__ import annotations

import os
import shutil
import sys
import urllib.request
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

from .errors import MissingWeightsError
from .errors import ShapeError

PACK_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def default_models_root() -> str:
    return os.environ.get("TALKING_HEAD_MODELS", os.path.join(PACK_ROOT, "models"))


@dataclass(frozen=True)
class WeightFile:
    family: str          # ditto | liveportrait | musetalk | aux
    group: str           # a set of files used together ("pytorch", "official", "safetensors", ...)
    role: str            # what the code calls it ("warping", "unet", ...)
    local: str           # path under the family's folder
    repo_id: str = ""    # Hugging Face repo (or "" when ``url`` is used)
    filename: str = ""   # path inside the repo (defaults to ``local``)
    url: str = ""        # direct download (MediaPipe models live on Google storage)
    size_mb: float = 0.0
    optional: bool = False

    @property
    def source(self) -> str:
        return self.url or f"https://huggingface.co/{self.repo_id}/blob/main/{self.filename or self.local}"


def _files(family, group, repo, entries, prefix=""):
    return [WeightFile(family, group, role, local, repo, prefix + local if prefix else local,
                       size_mb=mb, optional=opt) for role, local, mb, opt in entries]


DITTO_REPO = "digital-avatar/ditto-talkinghead"
LP_REPO = "KwaiVGI/LivePortrait"
LP_ST_REPO = "Kijai/LivePortrait_safetensors"

REGISTRY: list = [
    # Ditto: PyTorch models + cfg + streaming HuBERT (spec ditto.md §6)
    *_files("ditto", "pytorch", DITTO_REPO, [
        ("appearance", "ditto_pytorch/models/appearance_extractor.pth", 3.4, False),
        ("motion", "ditto_pytorch/models/motion_extractor.pth", 113, False),
        ("warping", "ditto_pytorch/models/warp_network.pth", 182, False),
        ("decoder", "ditto_pytorch/models/decoder.pth", 222, False),
        ("stitching", "ditto_pytorch/models/stitch_network.pth", 2.4, False),
        ("lmdm", "ditto_pytorch/models/lmdm_v0.4_hubert.pth", 191, False),
        ("hubert", "ditto_pytorch/aux_models/hubert_streaming_fix_kv.onnx", 1460, False),
        ("cfg", "ditto_cfg/v0.4_hubert_cfg_pytorch.pkl", 0.03, False),
    ]),
    # LivePortrait official release (spec liveportrait.md §2.1)
    *_files("liveportrait", "official", LP_REPO, [
        ("appearance", "liveportrait/base_models/appearance_feature_extractor.pth", 3.4, False),
        ("motion", "liveportrait/base_models/motion_extractor.pth", 113, False),
        ("warping", "liveportrait/base_models/warping_module.pth", 182, False),
        ("decoder", "liveportrait/base_models/spade_generator.pth", 222, False),
        ("stitching", "liveportrait/retargeting_models/stitching_retargeting_module.pth", 0.9, False),
    ]),
    # Kijai's single-file safetensors re-packaging (spec liveportrait.md §2.3)
    *_files("liveportrait", "safetensors", LP_ST_REPO, [
        ("appearance", "appearance_feature_extractor.safetensors", 3.4, False),
        ("motion", "motion_extractor.safetensors", 112, False),
        ("warping", "warping_module.safetensors", 182, False),
        ("decoder", "spade_generator.safetensors", 222, False),
        ("stitching", "stitching_retargeting_module.safetensors", 0.9, False),
    ]),
    # MuseTalk v1.5 (spec musetalk.md §2)
    WeightFile("musetalk", "v15", "unet", "musetalkV15/unet.pth", "TMElyralab/MuseTalk", size_mb=3400),
    WeightFile("musetalk", "v15", "unet_config", "musetalkV15/musetalk.json", "TMElyralab/MuseTalk", size_mb=0.01),
    WeightFile("musetalk", "v15", "vae", "sd-vae/diffusion_pytorch_model.safetensors",
               "stabilityai/sd-vae-ft-mse", "diffusion_pytorch_model.safetensors", size_mb=335),
    WeightFile("musetalk", "v15", "vae_config", "sd-vae/config.json", "stabilityai/sd-vae-ft-mse",
               "config.json", size_mb=0.01),
    WeightFile("musetalk", "v15", "whisper", "whisper/model.safetensors", "openai/whisper-tiny",
               "model.safetensors", size_mb=151),
    WeightFile("musetalk", "v15", "whisper_config", "whisper/config.json", "openai/whisper-tiny",
               "config.json", size_mb=0.01),
    WeightFile("musetalk", "v15", "whisper_preprocessor", "whisper/preprocessor_config.json",
               "openai/whisper-tiny", "preprocessor_config.json", size_mb=0.01),
    WeightFile("musetalk", "v15", "parsing", "face-parse-bisent/79999_iter.pth",
               "ManyOtherFunctions/face-parse-bisent", "79999_iter.pth", size_mb=53),
    # JoyVASA (jdh-algo/JoyVASA, MIT): the motion generator holds its HuBERT too
    WeightFile("joyvasa", "hubert_chinese", "motion_generator",
               "motion_generator/motion_generator_hubert_chinese.pt", "jdh-algo/JoyVASA", size_mb=414),
    WeightFile("joyvasa", "hubert_chinese", "template", "motion_template/motion_template.pkl",
               "jdh-algo/JoyVASA", size_mb=0.01),
    # shared face models (MediaPipe Tasks; Apache-2.0, hosted by Google)
    WeightFile("aux", "mediapipe", "face_landmarker", "mediapipe/face_landmarker_v2_with_blendshapes.task",
               url="https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/"
                   "float16/1/face_landmarker.task", size_mb=3.8),
    WeightFile("aux", "mediapipe", "face_detector", "mediapipe/blaze_face_short_range.tflite",
               url="https://storage.googleapis.com/mediapipe-models/face_detector/"
                   "blaze_face_short_range/float16/1/blaze_face_short_range.tflite", size_mb=0.23),
    # optional insightface/LivePortrait landmark path (non-commercial licence; never auto-downloaded)
    *[WeightFile("aux", "insightface", role, local, LP_REPO, filename, size_mb=mb, optional=True)
      for role, local, filename, mb in [
          ("insight_detector", "insightface/det_10g.onnx", "insightface/models/buffalo_l/det_10g.onnx", 16.9),
          ("insight_landmark106", "insightface/2d106det.onnx", "insightface/models/buffalo_l/2d106det.onnx", 5.0),
          ("landmark203", "insightface/landmark.onnx", "liveportrait/landmark.onnx", 115),
      ]],
]

FAMILIES = ("ditto", "liveportrait", "musetalk", "joyvasa", "aux")
# what each family needs besides its own files (the face models are shared; JoyVASA
# renders through LivePortrait's networks)
NEEDS = {"ditto": ("aux",), "liveportrait": ("aux",), "musetalk": ("aux",),
         "joyvasa": ("liveportrait", "aux"), "aux": ()}


def entries(family: str, group: Optional[str] = None, include_optional: bool = False) -> list:
    if family not in FAMILIES:
        raise ShapeError(f"unknown model family {family!r}; choose one of {', '.join(FAMILIES)}")
    return [w for w in REGISTRY if w.family == family and (group is None or w.group == group)
            and (include_optional or not w.optional)]


# folder of each family under the models root (ComfyUI's models/ or the standalone root);
# "liveportrait" is shared with LivePortraitKJ on purpose, so its downloads are reused
FOLDERS = {"ditto": "ditto", "liveportrait": "liveportrait", "musetalk": "musetalk",
           "joyvasa": "joyvasa", "aux": "talking_head_aux"}


def folders(family: str, roots: Optional[dict] = None) -> list:
    """Folders searched for ``family``'s files, the download target first: ``roots`` (from
    the host) when it names the family, else the standalone default."""
    if roots and roots.get(family):
        return list(roots[family])
    return [os.path.join(default_models_root(), FOLDERS[family])]


def find(entry: WeightFile, roots: Optional[dict] = None) -> Optional[str]:
    """Path of ``entry`` in one of its family folders, or None."""
    for folder in folders(entry.family, roots):
        path = os.path.join(folder, entry.local)
        if os.path.isfile(path) and os.path.getsize(path) > 0:
            return path
    return None


def download_command(family: str, group: Optional[str] = None) -> str:
    g = f" --group {group}" if group else ""
    return f"python -m pipelines download {family}{g}"


def missing_message(missing: Iterable[WeightFile], roots: Optional[dict] = None,
                    offline: bool = False) -> str:
    """What is missing, where each file goes and where it comes from; then how to get them:
    the download command, or (``offline``: the download itself failed) how to place them."""
    missing = list(missing)
    lines = ["Model files are missing:"]
    for w in missing:
        folder = folders(w.family, roots)[0]
        lines.append(f"  - {w.local}  (~{w.size_mb:g} MB) -> put it in {os.path.join(folder, os.path.dirname(w.local))}"
                     f"  [source: {w.source}]")
    if offline:
        lines.append("Downloading needs a network connection, which this machine does not have "
                     "(or the source refused it). Copy the files above from their source on a "
                     "machine that has one, into the folders shown, and run again.")
        return "\n".join(lines)
    fams = sorted({(w.family, w.group) for w in missing})
    cmds = "; ".join(download_command(f, g) for f, g in fams)
    lines.append(f"Download them with: {cmds}  (run in the pack's folder), or enable "
                 "auto-download on the loader node.")
    return "\n".join(lines)


def absent_files(groups: Iterable[tuple], roots: Optional[dict] = None) -> list:
    """The required files of every (family, group) in ``groups`` that are not installed."""
    return [w for family, group in groups for w in entries(family, group) if find(w, roots) is None]


def require(groups: Iterable[tuple], roots: Optional[dict] = None) -> None:
    """Raise one MissingWeightsError naming every missing file of ``groups`` at once (so a
    person learns the whole list before anything loads)."""
    absent = absent_files(groups, roots)
    if absent:
        raise MissingWeightsError(missing_message(absent, roots))


def resolve(family: str, group: str, roots: Optional[dict] = None, download: bool = False,
            progress: Optional[Callable[[str], None]] = None) -> dict:
    """{role: path} for every file of ``family``/``group``; downloads what is missing when
    ``download`` is True, else raises :class:`MissingWeightsError` naming each file, the
    folder it belongs in and the command that downloads it."""
    wanted = entries(family, group)
    found = {w.role: find(w, roots) for w in wanted}
    absent = [w for w in wanted if found[w.role] is None]
    if absent and download:
        for i, w in enumerate(absent):
            try:
                found[w.role] = fetch(w, roots, progress=progress)
            except MissingWeightsError as exc:
                # name every file still missing, not only the one that failed
                first = str(exc).split("\n", 1)[0]
                raise MissingWeightsError(first + "\n" + missing_message(absent[i:], roots, offline=True)) from None
        absent = []
    if absent:
        raise MissingWeightsError(missing_message(absent, roots))
    return found


def fetch(entry: WeightFile, roots: Optional[dict] = None,
          progress: Optional[Callable[[str], None]] = None) -> str:
    """Download one file into the first folder of its family; returns its path."""
    folder = folders(entry.family, roots)[0]
    target = os.path.join(folder, entry.local)
    if progress:
        progress(f"downloading {entry.local} (~{entry.size_mb:g} MB) into {folder}")
    try:
        if entry.url:
            _download_url(entry.url, target)
        else:
            _download_hub(entry, target)
    except MissingWeightsError:
        raise
    except Exception as exc:
        raise MissingWeightsError(
            f"Could not download {entry.local} from {entry.source} ({type(exc).__name__}: {exc}).\n"
            + missing_message([entry], roots, offline=True)) from None
    return target


def _download_hub(entry: WeightFile, target: str) -> None:
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise MissingWeightsError("huggingface-hub is not installed: `pip install huggingface-hub`.") from None
    tmp_dir = _scratch(target)
    try:
        # local_dir keeps the repo-relative path; the file then moves to our layout's name
        path = hf_hub_download(entry.repo_id, entry.filename or entry.local, local_dir=tmp_dir)
        _place(path, target)
    finally:   # success or failure: no half-downloaded folder, cache or lock file stays
        shutil.rmtree(tmp_dir, ignore_errors=True)


def _scratch(target: str) -> str:
    """A private download folder beside the models folder's files (removed afterwards);
    the target's own sub-folders are made only once a file has arrived."""
    root = os.path.dirname(target)
    while not os.path.isdir(root) and os.path.dirname(root) != root:
        root = os.path.dirname(root)
    return os.path.join(root, f".download-{os.getpid()}")


def _place(path: str, target: str) -> None:
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.move(path, target)


def _download_url(url: str, target: str) -> None:
    tmp_dir = _scratch(target)
    try:
        os.makedirs(tmp_dir, exist_ok=True)
        tmp = os.path.join(tmp_dir, os.path.basename(target))
        _copy_url(url, tmp)
        _place(tmp, target)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def _copy_url(url: str, tmp: str) -> None:
    with urllib.request.urlopen(url, timeout=60) as resp, open(tmp, "wb") as out:
        total = int(resp.headers.get("Content-Length") or 0)
        done = 0
        while True:
            chunk = resp.read(1 << 20)
            if not chunk:
                break
            out.write(chunk)
            done += len(chunk)
            if total:
                sys.stderr.write(f"\r  {done / total:5.1%} of {total / 1e6:.1f} MB")
        sys.stderr.write("\n")


def status(roots: Optional[dict] = None) -> list:
    """[(entry, path or None)] for every registered file (for `doctor`)."""
    return [(w, find(w, roots)) for w in REGISTRY]
