"""Safe loading: weights_only torch.load, restricted unpickling, strict key reports."""
import os
import pickle

import numpy as np
import pytest
import torch

from talking_head.pipelines.core import checkpoint_io as cio
from talking_head.pipelines.core.errors import (
    CheckpointError, MissingWeightsError, UnsafePickleError)


class _Boom:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/talking_head_pwned",))


def test_malicious_pickle_is_refused(tmp_path):
    path = tmp_path / "cfg.pkl"
    path.write_bytes(pickle.dumps({"ok": 1, "evil": _Boom()}))
    with pytest.raises(UnsafePickleError, match="posix.system|os.system|refusing"):
        cio.load_pickle_safe(str(path))
    assert not os.path.exists("/tmp/talking_head_pwned")


def test_plain_config_pickle_loads(tmp_path):
    cfg = {"emo": np.eye(8, dtype=np.float32), "clip": [(-1.0, 1.0)], "name": "x", "n": 3,
           "nested": {"a": np.arange(3), "t": (1, 2.5)}}
    path = tmp_path / "cfg.pkl"
    path.write_bytes(pickle.dumps(cfg, protocol=4))
    out = cio.load_pickle_safe(str(path))
    assert np.array_equal(out["emo"], cfg["emo"]) and out["nested"]["t"] == (1, 2.5)


def test_torch_load_refuses_pickled_objects(tmp_path):
    path = tmp_path / "model.pth"
    torch.save({"w": torch.ones(2), "obj": _Boom()}, path)
    with pytest.raises(CheckpointError, match="pickled objects"):
        cio.read_state_dict(str(path))


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(MissingWeightsError, match="nothere.pth"):
        cio.read_state_dict(str(tmp_path / "nothere.pth"))


def test_strict_load_lists_missing_unexpected_and_shapes():
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    sd = {k: v.clone() for k, v in net.state_dict().items()}
    sd["0.wieght"] = sd.pop("0.weight")          # misnamed
    sd["1.bias"] = torch.zeros(5)                 # wrong shape
    with pytest.raises(CheckpointError) as err:
        cio.load_state_dict_strict(net, sd, "test.pth")
    msg = str(err.value)
    assert "missing keys (1): 0.weight" in msg and "unexpected keys (1): 0.wieght" in msg
    assert "1.bias: checkpoint (5,) vs network (2,)" in msg and "test.pth" in msg


def test_prefix_helpers():
    sd = {"module.a": 1, "module.b": 2, "c": 3}
    assert cio.strip_prefix(sd, "module.") == {"a": 1, "b": 2, "c": 3}
    assert cio.select_prefix(sd, "module.") == {"a": 1, "b": 2}
