"""The checkpoint registry: lookups, the offline error, downloads into the models folder."""
import os

import pytest

from talking_head.pipelines.core import weights
from talking_head.pipelines.core.errors import MissingWeightsError


def test_registry_covers_every_family():
    roles = {(w.family, w.group): {x.role for x in weights.entries(w.family, w.group)}
             for w in weights.REGISTRY if not w.optional}
    assert {"appearance", "motion", "warping", "decoder", "stitching", "lmdm", "hubert", "cfg"} <= roles[("ditto", "pytorch")]
    assert {"appearance", "motion", "warping", "decoder", "stitching"} <= roles[("liveportrait", "official")]
    assert {"appearance", "motion", "warping", "decoder", "stitching"} <= roles[("liveportrait", "safetensors")]
    assert {"unet", "unet_config", "vae", "whisper", "parsing"} <= roles[("musetalk", "v15")]
    assert {"face_landmarker", "face_detector"} <= roles[("aux", "mediapipe")]
    for w in weights.REGISTRY:
        assert w.repo_id or w.url, w
        assert not os.path.isabs(w.local) and ".." not in w.local


def test_offline_error_names_file_folder_and_command(tmp_path):
    roots = {"ditto": [str(tmp_path / "ditto")]}
    with pytest.raises(MissingWeightsError) as err:
        weights.resolve("ditto", "pytorch", roots)
    msg = str(err.value)
    assert "lmdm_v0.4_hubert.pth" in msg
    assert str(tmp_path / "ditto" / "ditto_pytorch" / "models") in msg
    assert "python -m pipelines download ditto --group pytorch" in msg


def test_resolve_finds_files_in_any_folder(tmp_path):
    roots = {"liveportrait": [str(tmp_path / "a"), str(tmp_path / "b")]}
    for w in weights.entries("liveportrait", "safetensors"):
        p = tmp_path / "b" / w.local
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"data")
    found = weights.resolve("liveportrait", "safetensors", roots)
    assert set(found) == {"appearance", "motion", "warping", "decoder", "stitching"}
    assert all(p.startswith(str(tmp_path / "b")) for p in found.values())


def test_download_lands_in_models_folder_not_only_hub_cache(tmp_path, monkeypatch):
    import huggingface_hub

    calls = []

    def fake_download(repo_id, filename, local_dir):
        calls.append((repo_id, filename))
        path = os.path.join(local_dir, filename)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "wb").write(b"weights")
        return path

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    roots = {"musetalk": [str(tmp_path / "musetalk")]}
    found = weights.resolve("musetalk", "v15", roots, download=True)
    assert ("openai/whisper-tiny", "model.safetensors") in calls
    assert found["whisper"] == str(tmp_path / "musetalk" / "whisper" / "model.safetensors")
    assert open(found["whisper"], "rb").read() == b"weights"
    assert not any(n.startswith(".download") for n in os.listdir(tmp_path / "musetalk"))


def test_failed_download_is_an_actionable_error(tmp_path, monkeypatch):
    import huggingface_hub

    def offline(*a, **k):
        raise OSError("no network")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(MissingWeightsError, match="(?s)Could not download .*no network.*needs a network") as err:
        weights.resolve("liveportrait", "official", {"liveportrait": [str(tmp_path)]}, download=True)
    # offline, it does not suggest the download command that just failed; nothing is left behind
    assert "python -m pipelines download" not in str(err.value)
    assert os.listdir(tmp_path) == []


def test_registry_and_renderer_loader_agree_on_file_names():
    """The download registry and the LivePortrait loader's layouts name the same files, so a
    download lands where the loader looks."""
    from talking_head.pipelines.liveportrait.loader import LAYOUTS

    for layout, (family, group, prefix) in {"official": ("liveportrait", "official", "liveportrait/"),
                                            "safetensors": ("liveportrait", "safetensors", ""),
                                            "ditto": ("ditto", "pytorch", "ditto_pytorch/")}.items():
        registry = {w.role: w.local for w in weights.entries(family, group)}
        for role, rel in LAYOUTS[layout].items():
            assert registry[role] == prefix + rel, (layout, role)
