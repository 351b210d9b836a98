"""What every bench script shares, so that ``bench/`` runs on its own (no ``tests``):

* :func:`import_pack`: the checkout imported as package ``talking_head`` (the name the
  tests use), so bench scripts run ``pipelines/`` with its relative imports;
* :func:`seeded_init_`: plausible random weights, fast and reproducible (speed benches do
  not depend on the values);
* :func:`write_models`: a models folder in the released file layouts, written from the
  networks' own state dicts at the tiny sizes, so the real loaders and the command line
  run end to end;
* the command line at those tiny sizes: ``python bench/pack.py render ditto ...`` runs
  exactly ``python -m pipelines render ditto ...`` and prints its peak RSS on stderr.
"""
import math
import os
import resource
import shutil
import sys
import types

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("TALKING_HEAD_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
FIXTURES = os.path.join(SHARED, "fixtures")
PEAK_TAG = "PEAK_RSS_MIB"


def import_pack():
    """The checkout as package ``talking_head`` without running its ``__init__``: benches
    use ``talking_head.pipelines`` only, not the ComfyUI node modules it would import."""
    if "talking_head" not in sys.modules:
        package = types.ModuleType("talking_head")
        package.__path__ = [ROOT]
        sys.modules["talking_head"] = package
    return sys.modules["talking_head"]


def module_from_git(rev: str, path: str, name: str):
    """``path`` as it was at git revision ``rev``, executed as module ``name`` (name it as a
    sibling of the current module, e.g. ``talking_head.pipelines.composite._old_blend``, so
    its relative imports resolve inside the pack): the previous code, for side-by-side figures."""
    import importlib.util
    import subprocess

    src = subprocess.run(["git", "-C", ROOT, "show", f"{rev}:{path}"], check=True,
                         capture_output=True, text=True).stdout
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = name.rpartition(".")[0]
    sys.modules[name] = module
    exec(compile(src, f"{rev}:{path}", "exec"), module.__dict__)
    return module


def fixture(name: str) -> str:
    """A file of ../shared/fixtures (the photo, the speech clip), or a clear exit."""
    path = os.path.join(FIXTURES, name)
    if not os.path.isfile(path):
        raise SystemExit(f"{path} not found: this bench needs ../shared beside the checkout "
                         "(or TALKING_HEAD_SHARED pointing at it)")
    return path


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # KiB on Linux


# ---------------------------------------------------------------------------------------
# weights


def seeded_init_(nets, seed: int = 0):
    """Fill the weights of ``nets`` (a module or a dict of modules) from one seeded
    generator: uniform with fan-in scaling (activations stay in range through deep stacks),
    norm scales near 1, BN variances in 0.5..1.5. Other buffers (constant tables such as
    rotary frequencies) keep the values the network was built with. Returns ``nets``."""
    import torch

    g = torch.Generator().manual_seed(seed)
    modules = nets.values() if isinstance(nets, dict) else [nets]
    with torch.no_grad():
        for net in modules:
            for name, t in _weights(net):
                if t.is_floating_point():
                    t.copy_(_seeded_like(name, t, g))
                else:
                    t.zero_()           # counters (num_batches_tracked)
    return nets


def _weights(net):
    """Parameters and BatchNorm statistics: what a checkpoint would set."""
    yield from net.named_parameters()
    for name, t in net.named_buffers():
        if name.endswith(("running_mean", "running_var", "num_batches_tracked")):
            yield name, t


def _seeded_like(name: str, t, g):
    import torch

    if name.endswith("running_var"):
        return 0.5 + torch.rand(t.shape, generator=g)
    if t.dim() >= 2:
        return (2 * torch.rand(t.shape, generator=g) - 1) * math.sqrt(3 / t[0].numel())
    centre = 1.0 if name.endswith(("weight", "gamma")) else 0.0
    return centre + 0.1 * (2 * torch.rand(t.shape, generator=g) - 1)


def _save(obj, path: str) -> str:
    import torch

    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(obj, path)
    return path


def write_released_pt(path: str, state_dict: dict, args: dict) -> str:
    """JoyVASA's released container: ``{'args': Namespace(..., data_root=PosixPath),
    'model': state_dict}``, as its train.py pickles it (the loader's restricted unpickler
    must accept exactly these types)."""
    import argparse
    import pathlib
    from collections import OrderedDict

    namespace = argparse.Namespace(**args, data_root=pathlib.PosixPath("data/"))
    return _save({"args": namespace, "model": OrderedDict(state_dict)}, path)


def motion_template(seed: int = 0) -> dict:
    """A synthetic JoyVASA motion template (motion_template.pkl's statistics): expression
    mean/std, and min/max of scale, translation and the angles in LivePortrait's ranges."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = {"mean_exp": 0.02 * rng.standard_normal(63), "std_exp": 0.01 + 0.02 * rng.random(63)}
    ranges = (("scale", 1, 1.0, 0.3), ("t", 3, 0.0, 0.05), ("pitch", 1, 0.0, 25.0),
              ("yaw", 1, 0.0, 35.0), ("roll", 1, 0.0, 20.0))     # part, size, centre, half-range
    for part, n, centre, half in ranges:
        mean = centre + 0.1 * half * rng.standard_normal(n)
        out[f"min_{part}"], out[f"max_{part}"] = mean - half, mean + half
    return {k: np.asarray(v, np.float32) for k, v in out.items()}


# ---------------------------------------------------------------------------------------
# a models folder in the released layouts (tiny sizes)


def write_models(root: str, families=("aux", "ditto"), full: bool = False) -> str:
    """Write ``families`` (aux, ditto) under ``root``, the layout of $TALKING_HEAD_MODELS;
    tiny networks, or with ``full`` the released sizes (for speed figures: the LMDM and
    the renderer; HuBERT stays a stand-in)."""
    import torch

    import_pack()
    torch.manual_seed(0)       # PyTorch's default init, reproducibly
    for family in families:
        if family == "aux":
            _write_aux(root)
        else:
            _write_ditto(root, full)
    return root


def _family_path(root: str, family: str, local: str) -> str:
    from talking_head.pipelines.core import weights

    return os.path.join(root, weights.FOLDERS[family], local)


def _write_aux(root: str) -> None:
    """MediaPipe's detector and landmarker: real graphs (no fake can stand in for them),
    copied from ../shared/models/mediapipe."""
    from talking_head.pipelines.core import weights

    for entry in weights.entries("aux", "mediapipe"):
        src = os.path.join(SHARED, "models", "mediapipe", os.path.basename(entry.local))
        if not os.path.isfile(src):
            raise SystemExit(f"{src} not found: the MediaPipe face models come from ../shared")
        dst = _family_path(root, "aux", entry.local)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(src, dst)   # not its read-only mode: the folder is removed after


def _write_ditto(root: str, full: bool = False) -> None:
    """Ditto's release: LMDM ``{'model_state_dict': sd}``, the cfg pickle, a stand-in
    HuBERT ONNX with the released input/output names, and Ditto's renderer copies."""
    from talking_head.pipelines.ditto.lmdm import TINY, MotionDecoder
    from talking_head.pipelines.liveportrait.loader import TINY_RENDERER, RendererConfig

    path = lambda local: _family_path(root, "ditto", local)  # noqa: E731
    lmdm = MotionDecoder() if full else MotionDecoder(TINY)
    _save({"model_state_dict": lmdm.state_dict()}, path("ditto_pytorch/models/lmdm_v0.4_hubert.pth"))
    _write_ditto_cfg(path("ditto_cfg/v0.4_hubert_cfg_pytorch.pkl"))
    _export_hubert_standin(path("ditto_pytorch/aux_models/hubert_streaming_fix_kv.onnx"))
    _write_renderer(path("ditto_pytorch"), RendererConfig() if full else TINY_RENDERER)


def _write_ditto_cfg(path: str) -> None:
    """The released cfg's structure with the offline SDK's settings. No reference identity
    (``ch_info``): the LMDM is then conditioned on the portrait the render registers, so
    no made-up reference face is needed."""
    import pickle

    cfg = {"audio2motion_cfg": {"motion_feat_dim": 265, "audio_feat_dim": 1103, "seq_frames": 80,
                                "use_emo": True, "use_sc": True, "use_eye_open": True,
                                "use_eye_ball": True, "w2f_type": "hubert"},
           "default_kwargs": {"online_mode": False, "overlap_v2": 10, "sampling_timesteps": 50,
                              "smo_k_d": 3, "emo": 4}}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump(cfg, fh)


def _export_hubert_standin(path: str) -> None:
    """A strided conv with the released HuBERT ONNX's interface: input_values (1, L) ->
    encoding_out (T, 1024), 20 rows per 6480-sample chunk (the real one is 1.46 GB)."""
    import warnings

    import torch

    class Standin(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv1d(1, 1024, 400, stride=320)

        def forward(self, input_values):
            return self.conv(input_values[:, None])[0].transpose(0, 1)

    os.makedirs(os.path.dirname(path), exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Standin().eval(), (torch.zeros(1, 6480),), path, dynamo=False,
                          input_names=["input_values"], output_names=["encoding_out"],
                          dynamic_axes={"input_values": {1: "L"}})


def _write_renderer(folder: str, config) -> None:
    """LivePortrait's networks in Ditto's layout (``models/*.pth``) at ``config``'s sizes."""
    from talking_head.pipelines.liveportrait import loader as L

    nets = L.build_networks(config, init=True)
    files = {role: os.path.join(folder, rel) for role, rel in L.LAYOUTS["ditto"].items()}
    for role in ("appearance", "motion", "warping"):
        _save(nets[role].state_dict(), files[role])
    _save(_spectral_norm_state(nets["decoder"]), files["decoder"])
    stitch = {f"module.{k}": v for k, v in nets["stitching"].state_dict().items()}
    _save({"retarget_shoulder": stitch}, files["stitching"])


def _spectral_norm_state(decoder) -> dict:
    """The decoder's state dict as the release stores it: every spectral-norm conv as
    weight_orig + weight_u/weight_v (its top singular vectors, as after training)."""
    import torch

    sn = set(decoder.spectral_norm_convs())
    out = {}
    for key, value in decoder.state_dict().items():
        prefix, _, leaf = key.rpartition(".")
        if prefix not in sn or leaf != "weight":
            out[key] = value
            continue
        flat = value.reshape(value.shape[0], -1).double()
        u, _s, vh = torch.linalg.svd(flat, full_matrices=False)
        out[f"{prefix}.weight_orig"] = value
        out[f"{prefix}.weight_u"], out[f"{prefix}.weight_v"] = u[:, 0].float(), vh[0].float()
    return out


# ---------------------------------------------------------------------------------------
# the command line at the tiny sizes


def tiny_cli(argv) -> int:
    """``python -m pipelines <argv>`` with the loaders at the tiny sizes. The pack is
    imported as top-level ``pipelines`` here, as ``python -m pipelines`` does, because the
    batch command's Ray workers import it under that name."""
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    from pipelines.app import cli, models
    from pipelines.ditto.lmdm import TINY
    from pipelines.liveportrait.loader import TINY_RENDERER

    models.SIZES.update(liveportrait=TINY_RENDERER, ditto=TINY)   # what write_models writes
    return cli.main(argv)


if __name__ == "__main__":
    try:
        code = tiny_cli(sys.argv[1:])
    except SystemExit as exc:           # argparse's exits report the peak too
        code = exc.code
    print(PEAK_TAG, f"{peak_rss_mib():.1f}", file=sys.stderr)
    sys.exit(code)
