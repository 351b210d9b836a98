"""LivePortrait renderer checkpoints: key sets vs the official manifests, the three released
layouts (official .pth, Ditto .pth, Kijai safetensors), strict errors, file discovery.

The layout writers here are also used by the golden tests (full size, official layout).
"""
import json
import os

import pytest
import torch

from talking_head.pipelines.core.errors import CheckpointError, MissingWeightsError
from talking_head.pipelines.liveportrait import loader as L
from talking_head.pipelines.liveportrait import render as R
from talking_head.pipelines.liveportrait.decoder import fold_spectral_norm, official_key_shapes
from talking_head.pipelines.liveportrait.keypoints import (
    DriveOptions, drive_keypoints, motion_from_info)
from talking_head.pipelines.liveportrait.stitching import ENTRIES
from tests.fakes import find_manifest, keyed_state_dict, manifest_entries, save, write_fake
from tests.paths import needs_shared

LP_NAMES = {"appearance": "appearance_feature_extractor", "motion": "motion_extractor",
            "warping": "warping_module", "decoder": "spade_generator"}
DITTO_NAMES = {"appearance": "appearance_extractor", "motion": "motion_extractor",
               "warping": "warp_network", "decoder": "decoder"}


pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------------------------------
# fake checkpoints in the released layouts


def stitching_entries() -> dict:
    """{official entry: {bare key: (shape, dtype)}} from the LivePortrait manifest."""
    with open(find_manifest("lp_manifest_stitching_retargeting_module.json")) as fh:
        subs = json.load(fh)["submodules"]
    return {outer: {k: (tuple(e["shape"]), torch.float32)
                    for k, e in sub["state_dict_keys_after_module_strip"].items()}
            for outer, sub in subs.items()}


def stitching_state(base_seed=None) -> dict:
    """Keyed stitching tensors seeded by '<outer>.<key>' (the golden README's recipe)."""
    return {outer: keyed_state_dict(ent, key_for_seed=lambda k, o=outer: f"{o}.{k}", base_seed=base_seed)
            for outer, ent in stitching_entries().items()}


def _tiny_entries(config: L.RendererConfig) -> dict:
    nets = L.build_networks(config)
    out = {role: {k: (tuple(v.shape), v.dtype) for k, v in nets[role].state_dict().items()}
           for role in ("appearance", "motion", "warping")}
    out["decoder"] = {k: (s, torch.float32) for k, s in official_key_shapes(nets["decoder"]).items()}
    return out


def _converged_sn(sd: dict) -> dict:
    """weight_u/weight_v = top singular vectors of each keyed weight_orig (tiny configs),
    so that sigma = u.(W v) is the largest singular value, as in a trained checkpoint."""
    keep = {}
    for key in [k for k in sd if k.endswith(".weight_orig")]:
        w = sd[key].double().reshape(sd[key].shape[0], -1)
        u, _s, vh = torch.linalg.svd(w, full_matrices=False)
        prefix = key[: -len(".weight_orig")]
        keep[f"{prefix}.weight_u"], keep[f"{prefix}.weight_v"] = u[:, 0].float(), vh[0].float()
    return keep


def write_layout(layout: str, root: str, config: L.RendererConfig = None,
                 decoder_keep: dict = None, base_seed=None) -> str:
    """Write keyed fake renderer checkpoints in ``layout`` under ``root``.

    config None: official sizes from the manifests (``decoder_keep`` = the spectral-norm
    vectors to store); else that (tiny) config's own shapes. ``base_seed``: a golden
    set's seed (None = the keyed recipe's default).
    """
    files = {role: os.path.join(root, rel) for role, rel in L.LAYOUTS[layout].items()}
    names = DITTO_NAMES if layout == "ditto" else LP_NAMES
    prefix = "ditto" if layout == "ditto" else "lp"
    tiny = _tiny_entries(config) if config is not None else {}
    for role in ("appearance", "motion", "warping", "decoder"):
        manifest = f"{prefix}_manifest_{names[role]}.json"
        keep = decoder_keep if role == "decoder" else None
        if role == "decoder" and config is not None:
            keep = _converged_sn(keyed_state_dict(tiny["decoder"]))
        write_fake(manifest, files[role], keep=keep, entries=tiny.get(role), base_seed=base_seed)
    stitch = stitching_state(base_seed)
    if layout == "official":
        save({o: {f"module.{k}": v for k, v in sd.items()} for o, sd in stitch.items()},
             files["stitching"])
    elif layout == "ditto":
        save({"retarget_shoulder": {f"module.{k}": v
                                    for k, v in stitch["retarget_shoulder"].items()}},
             files["stitching"])
    else:
        save({f"{o}_module.{k}": v for o, sd in stitch.items() for k, v in sd.items()},
             files["stitching"])
    return root


# ---------------------------------------------------------------------------------------
# key sets


@needs_shared
@pytest.mark.parametrize("role", list(LP_NAMES))
def test_network_keys_equal_official_and_ditto_manifests(role):
    net = L.build_networks(device="meta")[role]
    ours = (official_key_shapes(net) if role == "decoder"
            else {k: tuple(v.shape) for k, v in net.state_dict().items()})
    for manifest in (f"lp_manifest_{LP_NAMES[role]}.json", f"ditto_manifest_{DITTO_NAMES[role]}.json"):
        theirs = {k: s for k, (s, _d) in manifest_entries(manifest).items()}
        assert ours == theirs, manifest


@needs_shared
def test_stitching_keys_equal_manifests_and_kijai_names():
    with open(find_manifest("lp_manifest_stitching_retargeting_module.json")) as fh:
        subs = json.load(fh)["submodules"]
    nets = L.build_networks(device="meta")
    for outer, sub in subs.items():
        role, _cfg = ENTRIES[outer]
        ours = {k: tuple(v.shape) for k, v in nets[role].state_dict().items()}
        assert ours == {k: tuple(e["shape"]) for k, e in sub["state_dict_keys_after_module_strip"].items()}
        # Kijai's flattened names split back into exactly these keys
        flat = {k: torch.zeros(1) for k in sub["kijai_flat_safetensors_keys"]}
        assert set(L.split_stitching(flat, "kijai")[outer]) == set(ours)
    ditto = {k: s for k, (s, _d) in manifest_entries("ditto_manifest_stitch_network.json").items()}
    assert ditto == {k: tuple(v.shape) for k, v in nets["stitching"].state_dict().items()}


def test_fold_equals_torch_spectral_norm_in_eval_mode():
    g = torch.Generator().manual_seed(3)
    conv = torch.nn.Conv2d(6, 5, 3, padding=1)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=g))
    sn = torch.nn.utils.spectral_norm(conv, n_power_iterations=3)
    sn.train()
    sn(torch.zeros(1, 6, 4, 4))  # a few power iterations so u, v are not the initial guess
    sn.eval()
    x = torch.randn(2, 6, 8, 8, generator=g)
    with torch.no_grad():
        want = sn(x)
        folded = fold_spectral_norm(sn.state_dict())
        assert set(folded) == {"weight", "bias"}
        plain = torch.nn.Conv2d(6, 5, 3, padding=1)
        plain.load_state_dict(folded)
        torch.testing.assert_close(plain(x), want, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------
# layouts end to end (tiny sizes: the layout logic is size-independent; the full-size
# official layout is loaded and rendered by the golden tests)


def _render_one_frame(bundle):
    g = torch.Generator().manual_seed(7)
    imgs = torch.rand(3, 3, 256, 256, generator=g)
    f_s = R.extract_appearance(bundle, imgs[:1], out_dtype=torch.float32)
    src = R.extract_motion(bundle, imgs[:1])
    drv = R.extract_motion(bundle, imgs[1:])
    kp = drive_keypoints(src, motion_from_info(drv, fps=25.0), DriveOptions(), bundle)
    # two frames: batched 3-D convs take oneDNN's fast path even at these tiny widths
    warped = R.warp_features(bundle, f_s, kp.x_s, kp.x_d, out_dtype=torch.float32)
    return R.decode(bundle, warped)


@pytest.fixture(scope="module")
def tiny_layouts(tmp_path_factory):
    out = {}
    for layout in L.LAYOUTS:
        root = write_layout(layout, str(tmp_path_factory.mktemp(layout)), L.TINY_RENDERER)
        files = L.find_renderer_files(root, layout)
        bundle = L.load_renderer(files, "cpu", torch.float32, config=L.TINY_RENDERER)
        out[layout] = (root, bundle, _render_one_frame(bundle))
    return out


@needs_shared
def test_layouts_load_strictly_and_render_identically(tiny_layouts):
    ref = tiny_layouts["official"][2]
    assert ref.shape == (2, 512, 512, 3) and ref.dtype == torch.float32
    assert 0 <= ref.min() and ref.max() <= 1 and ref.std() > 1e-3
    for layout, (root, bundle, img) in tiny_layouts.items():
        assert L.find_renderer_files(root) == bundle.files  # auto finds the same layout
        assert bundle.family == "liveportrait"
        want = {"appearance", "motion", "warping", "decoder", "stitching"}
        if layout != "ditto":  # Ditto's stitch file holds S alone
            want |= {"retarget_eye", "retarget_lip"}
        assert set(bundle.nets) == want
        torch.testing.assert_close(img, ref, rtol=0, atol=0)


@needs_shared
def test_layout_loader_puts_each_tensor_in_its_place(tiny_layouts):
    """Loaded weights equal the keyed tensors of the same (official) keys."""
    bundle = tiny_layouts["safetensors"][1]
    entries = _tiny_entries(L.TINY_RENDERER)
    for role in ("appearance", "motion", "warping"):
        want = keyed_state_dict(entries[role])
        got = bundle[role].state_dict()
        for k, v in want.items():
            torch.testing.assert_close(got[k], v, rtol=0, atol=0, msg=f"{role}.{k}")
    for outer, sd in stitching_state().items():
        got = bundle[ENTRIES[outer][0]].state_dict()
        for k, v in sd.items():
            torch.testing.assert_close(got[k], v, rtol=0, atol=0)
    # the decoder's folded weight is weight_orig / sigma
    sd = keyed_state_dict(entries["decoder"])
    sd.update(_converged_sn(sd))
    w, u, v = (sd[f"up_1.conv_0.{n}"] for n in ("weight_orig", "weight_u", "weight_v"))
    sigma = u @ (w.reshape(w.shape[0], -1) @ v)
    torch.testing.assert_close(bundle["decoder"].up_1.conv_0.weight, w / sigma)


# ---------------------------------------------------------------------------------------
# strict errors and discovery


@pytest.fixture
def official_tiny(tmp_path):
    return L.find_renderer_files(write_layout("official", str(tmp_path), L.TINY_RENDERER), "official")


def _edit(path, fn):
    from talking_head.pipelines.core.checkpoint_io import read_state_dict

    sd = read_state_dict(path)
    fn(sd)
    save(sd, path)


def _load_error(files) -> str:
    with pytest.raises(CheckpointError) as err:
        L.load_renderer(files, config=L.TINY_RENDERER)
    return str(err.value)


@needs_shared
def test_missing_and_misnamed_keys_are_listed(official_tiny):
    files = official_tiny
    _edit(files["appearance"], lambda sd: sd.pop("second.bias"))
    msg = _load_error(files)
    assert "missing keys (1): second.bias" in msg and files["appearance"] in msg

    write_layout("official", os.path.dirname(os.path.dirname(files["appearance"])), L.TINY_RENDERER)
    _edit(files["warping"], lambda sd: sd.__setitem__("third.conv.weights", sd.pop("third.conv.weight")))
    msg = _load_error(files)
    assert "missing keys (1): third.conv.weight" in msg
    assert "unexpected keys (1): third.conv.weights" in msg


@needs_shared
def test_decoder_checked_against_the_spectral_norm_key_set(official_tiny):
    files = official_tiny
    _edit(files["decoder"], lambda sd: sd.pop("up_0.conv_s.weight_u"))
    assert "missing keys (1): up_0.conv_s.weight_u" in _load_error(files)

    def already_folded(sd):  # a plain conv weight instead of the spectral-norm triplet
        w = sd.pop("up_1.conv_1.weight_orig")
        sd.pop("up_1.conv_1.weight_u"), sd.pop("up_1.conv_1.weight_v")
        sd["up_1.conv_1.weight"] = w
    write_layout("official", os.path.dirname(os.path.dirname(files["appearance"])), L.TINY_RENDERER)
    _edit(files["decoder"], already_folded)
    msg = _load_error(files)
    assert "missing keys (3): up_1.conv_1.weight_orig, up_1.conv_1.weight_u, up_1.conv_1.weight_v" in msg
    assert "unexpected keys (1): up_1.conv_1.weight" in msg


@needs_shared
def test_stitching_file_errors_name_the_entry_and_keys(tmp_path):
    root = write_layout("official", str(tmp_path), L.TINY_RENDERER)
    files = L.find_renderer_files(root, "official")
    obj = torch.load(files["stitching"], weights_only=True)
    obj["retarget_eye"].pop("module.mlp.10.bias")
    save(obj, files["stitching"])
    msg = _load_error(files)
    assert "[retarget_eye]" in msg and "mlp.10.bias" in msg

    flat = str(tmp_path / "flat.safetensors")
    sd = {f"{o}_module.{k}": v for o, s in stitching_state().items() for k, v in s.items()}
    sd["retarget_mouth_module.mlp.9.weight"] = sd.pop("retarget_mouth_module.mlp.6.weight")
    save(sd, flat)
    msg = _load_error(dict(files, stitching=flat))
    assert "[retarget_mouth]" in msg and "mlp.6.weight" in msg and "mlp.9.weight" in msg

    save({"retarget_mouth": {}}, files["stitching"])
    assert "retarget_shoulder" in _load_error(files)


@needs_shared
def test_find_names_the_missing_file_and_the_download(tmp_path):
    root = write_layout("ditto", str(tmp_path / "ditto_pytorch"), L.TINY_RENDERER)
    assert L.find_renderer_files(str(tmp_path))["decoder"] == os.path.join(root, "models/decoder.pth")
    os.remove(os.path.join(root, "models", "warp_network.pth"))
    with pytest.raises(MissingWeightsError) as err:
        L.find_renderer_files(str(tmp_path))
    msg = str(err.value)
    assert "models/warp_network.pth" in msg and "ditto layout" in msg and "huggingface-cli" in msg
    assert "appearance_extractor" not in msg.split("missing:")[1].split("Download")[0]

    with pytest.raises(MissingWeightsError) as err:
        L.find_renderer_files(str(tmp_path / "empty"))
    for name in ("base_models/warping_module.pth", "models/warp_network.pth",
                 "warping_module.safetensors"):
        assert name in str(err.value)


@needs_shared
def test_half_precision_falls_back_to_fp32_on_cpu(official_tiny):
    bundle = L.load_renderer(official_tiny, "cpu", torch.float16, config=L.TINY_RENDERER)
    assert bundle.dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in bundle["decoder"].parameters())
