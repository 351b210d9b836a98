"""install.py (run by ComfyUI-Manager): installs only what is missing, never torch or
numpy, and adds the optional numba only beside the host's numpy as it is."""
import os

import numpy as np
import pytest

from talking_head import install


@pytest.fixture
def pip_calls(monkeypatch):
    """Every pip command install.py runs (none really runs), with the constraints each
    was held to; ``calls.rc`` is what pip answers."""
    calls = []
    calls_rc = {"rc": 0}

    def call(cmd):
        held = None
        if "-c" in cmd:
            path = cmd[cmd.index("-c") + 1]
            with open(path) as f:
                held = (path, f.read())
        calls.append((cmd, held))
        return calls_rc["rc"]

    monkeypatch.setattr(install.subprocess, "call", call)
    return calls, calls_rc


def _missing_only(monkeypatch, *modules):
    monkeypatch.setattr(install, "missing", lambda module: module in modules)


def test_numba_is_installed_from_wheels_with_numpy_held(monkeypatch, pip_calls):
    calls, _ = pip_calls
    _missing_only(monkeypatch, "numba")
    install.main()
    assert len(calls) == 1
    cmd, held = calls[0]
    assert any(a.startswith("numba") for a in cmd)
    assert "--only-binary=numba,llvmlite" in cmd
    path, text = held
    assert text.strip() == f"numpy=={np.__version__}"
    assert not os.path.exists(path)  # the constraints file is removed afterwards


def test_a_numba_that_does_not_fit_is_reported_not_raised(monkeypatch, pip_calls, capsys):
    calls, rc = pip_calls
    rc["rc"] = 1
    _missing_only(monkeypatch, "numba")
    install.main()
    out = capsys.readouterr().out
    assert "numba could not be installed" in out and "cv2 path" in out


def test_nothing_is_installed_when_nothing_is_missing(monkeypatch, pip_calls):
    calls, _ = pip_calls
    _missing_only(monkeypatch)
    install.main()
    assert calls == []


def test_the_host_packages_are_never_installed(monkeypatch, pip_calls):
    calls, _ = pip_calls
    monkeypatch.setattr(install, "missing", lambda module: True)
    install.main()
    packages = [name for cmd, _ in calls for name in _packages(cmd)]
    assert "numba" in packages and "onnxruntime" in "".join(packages)
    for host in ("torch", "torchvision", "torchaudio", "numpy"):
        assert host not in packages


def _packages(cmd):
    """The package names a pip install command asks for (options and their values out)."""
    args = cmd[cmd.index("only-if-needed") + 1:]
    names, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a == "-c":
            skip = True
        elif not a.startswith("-"):
            names.append(a.split("=")[0].split(">")[0].split("<")[0])
    return names
