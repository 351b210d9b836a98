"""The host bridge: standalone fallbacks, and the ComfyUI path with stand-in modules."""
import os
import sys
import types

import pytest
import torch

from talking_head.pipelines.core.errors import TalkingHeadError

from talking_head.nodes import host
from talking_head.pipelines.core import runtime, weights


@pytest.fixture
def standalone(monkeypatch, tmp_path):
    for name in ("folder_paths", "comfy", "comfy.model_management", "comfy.utils"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setenv("TALKING_HEAD_STANDALONE", "1")
    monkeypatch.setenv("TALKING_HEAD_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("TALKING_HEAD_OUTPUT", str(tmp_path / "out"))
    return tmp_path


def test_standalone_folders_device_dtype(standalone):
    assert host.model_dirs("ditto") == [str(standalone / "models" / "ditto")]
    assert host.model_dirs("aux") == [str(standalone / "models" / "talking_head_aux")]
    assert host.output_dir() == str(standalone / "out")
    assert host.torch_device() == runtime.pick_device("auto")
    assert host.torch_dtype("fp16", torch.device("cpu")) == torch.float32  # CPU falls back to fp32
    assert host.torch_dtype("auto", torch.device("cpu")) == torch.float32


def test_standalone_interrupt(standalone):
    runtime.request_interrupt()
    with pytest.raises(runtime.InterruptedRender):
        host.check_interrupt()
    host.check_interrupt()  # cleared after raising once


def test_dtype_policy_on_gpu_devices():
    cuda = torch.device("cuda")
    assert runtime.resolve_dtype("fp32", cuda) == torch.float32
    assert runtime.resolve_dtype("fp16", cuda) == torch.float16
    assert runtime.resolve_dtype("auto", cuda, half_ok=False) == torch.float32
    assert runtime.resolve_dtype("fp16", torch.device("cpu")) == torch.float32
    bf16 = torch.cuda.is_bf16_supported()
    # bf16 when the GPU has it (asked for, or auto), else fp16
    assert runtime.resolve_dtype("bf16", cuda) == (torch.bfloat16 if bf16 else torch.float16)
    assert runtime.resolve_dtype("auto", cuda) == (torch.bfloat16 if bf16 else torch.float16)
    with pytest.raises(TalkingHeadError, match="fp32, fp16"):
        runtime.resolve_dtype("int8", cuda)


def test_run_context_parts_share_one_progress_scale():
    seen = []
    ctx = runtime.RunContext(progress=lambda d, t: seen.append((d, t)))
    ctx.part(0, 2).report(5, 10)
    ctx.part(1, 2).report(10, 10)
    assert [d / t for d, t in seen] == [0.25, 1.0]
    stop = runtime.RunContext(interrupt=lambda: (_ for _ in ()).throw(runtime.InterruptedRender("x")))
    with pytest.raises(runtime.InterruptedRender):
        stop.check()


@pytest.fixture
def fake_comfy(monkeypatch, tmp_path):
    """Small stand-ins for ComfyUI's folder_paths / comfy.* that record how they are used."""
    calls = []
    fp = types.ModuleType("folder_paths")
    fp.models_dir = str(tmp_path / "ComfyUI" / "models")
    fp.folder_names_and_paths = {"liveportrait": ([str(tmp_path / "elsewhere" / "lp")], {".safetensors"})}
    fp.get_folder_paths = lambda name: list(fp.folder_names_and_paths[name][0])
    fp.get_output_directory = lambda: str(tmp_path / "ComfyUI" / "output")
    fp.get_temp_directory = lambda: str(tmp_path / "ComfyUI" / "temp")
    fp.get_input_directory = lambda: str(tmp_path / "ComfyUI" / "input")
    mm = types.ModuleType("comfy.model_management")
    mm.get_torch_device = lambda: torch.device("cpu")
    mm.should_use_fp16 = lambda device=None: calls.append("fp16?") or True

    class Interrupted(Exception):
        pass

    mm.InterruptProcessingException = Interrupted
    mm.interrupted = False

    def throw():
        calls.append("interrupt?")
        if mm.interrupted:
            raise Interrupted()

    mm.throw_exception_if_processing_interrupted = throw
    utils = types.ModuleType("comfy.utils")

    class ProgressBar:
        def __init__(self, total):
            calls.append(("bar", total))

        def update_absolute(self, value, total=None, preview=None):
            calls.append(("at", value))

    utils.ProgressBar = ProgressBar
    comfy = types.ModuleType("comfy")
    comfy.model_management, comfy.utils = mm, utils
    monkeypatch.delenv("TALKING_HEAD_STANDALONE", raising=False)
    for name, mod in {"folder_paths": fp, "comfy": comfy, "comfy.model_management": mm,
                      "comfy.utils": utils}.items():
        monkeypatch.setitem(sys.modules, name, mod)
    return types.SimpleNamespace(fp=fp, mm=mm, calls=calls, root=tmp_path)


def test_host_path_uses_comfyui(fake_comfy):
    host.register_model_folders()
    names = fake_comfy.fp.folder_names_and_paths
    for family, folder in host.MODEL_FOLDERS.items():
        paths, exts = names[folder]
        assert os.path.join(fake_comfy.fp.models_dir, folder) in paths
        assert {".pth", ".safetensors", ".onnx"} <= exts and ".txt" not in exts
    # an existing (extra_model_paths.yaml) folder is kept and searched first
    assert host.model_dirs("liveportrait")[0] == str(fake_comfy.root / "elsewhere" / "lp")
    assert host.output_dir() == str(fake_comfy.root / "ComfyUI" / "output")
    assert host.input_dir() == str(fake_comfy.root / "ComfyUI" / "input")


def test_host_device_dtype_progress_interrupt(fake_comfy):
    assert host.torch_dtype("auto", torch.device("cuda")) == torch.float16
    assert "fp16?" in fake_comfy.calls
    bar = host.Progress("test")
    bar(1, 4)
    bar(3, 4)
    assert ("bar", 4) in fake_comfy.calls and ("at", 1) in fake_comfy.calls and ("at", 3) in fake_comfy.calls
    ctx = host.context("test")
    assert ctx.interrupt is host.check_interrupt and isinstance(ctx.progress, host.Progress)
    host.check_interrupt()
    fake_comfy.mm.interrupted = True
    with pytest.raises(fake_comfy.mm.InterruptProcessingException):
        host.check_interrupt()


def test_weights_found_through_host_folders(fake_comfy):
    host.register_model_folders()
    roots = host.model_roots()
    entry = weights.entries("liveportrait", "safetensors")[0]
    target = os.path.join(roots["liveportrait"][0], entry.local)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    open(target, "wb").write(b"x")
    assert weights.find(entry, roots) == target
