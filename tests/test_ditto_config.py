"""Ditto's cfg pickle -> DittoConfig, with a synthetic pkl of the documented structure."""
import os
import pickle

import numpy as np
import pytest
import torch

from talking_head.pipelines.core.checkpoint_io import load_pickle_safe
from talking_head.pipelines.ditto import (
    ConditionSource, DittoConfig, MotionDecoder, load_ditto)
from talking_head.pipelines.ditto.lmdm import TINY
from talking_head.pipelines.core.errors import (
    CheckpointError, MissingWeightsError, TalkingHeadError, UnsafePickleError)


def synthetic_cfg(online=True):
    rng = np.random.default_rng(3)
    x_s_info = {"pitch": rng.standard_normal((1, 66)).astype(np.float32),
                "yaw": rng.standard_normal((1, 66)).astype(np.float32),
                "roll": rng.standard_normal((1, 66)).astype(np.float32),
                "t": rng.standard_normal((1, 3)).astype(np.float32),
                "exp": rng.standard_normal((1, 63)).astype(np.float32),
                "scale": np.array([[1.3]], np.float32),
                "kp": rng.standard_normal((1, 63)).astype(np.float32)}
    return {
        "base_cfg": {
            "hubert_cfg": {"model_path": "aux_models/hubert_streaming_fix_kv.onnx",
                           "device": "cuda", "force_ori_type": True},
            "stitch_network_cfg": {"model_path": "models/stitch_network.pth", "device": "cuda"},
        },
        "audio2motion_cfg": {"model_path": "models/lmdm_v0.4_hubert.pth", "device": "cuda",
                             "motion_feat_dim": 265, "audio_feat_dim": 1103, "seq_frames": 80,
                             "use_emo": True, "use_sc": True, "use_eye_open": True,
                             "use_eye_ball": True, "w2f_type": "hubert"},
        "default_kwargs": {
            "online_mode": online, "overlap_v2": 70, "fix_kp_cond": 1, "fix_kp_cond_dim": [0, 202],
            "sampling_timesteps": 10, "smo_k_d": 3, "smo_k_s": 13, "max_size": 1920,
            "emo": rng.random((600, 8)).astype(np.float32),
            "delta_eye_arr": rng.standard_normal((15, 63)).astype(np.float32),
            "delta_eye_open_n": 0,
            "v_min_max_for_clip": np.stack([-np.ones(265), np.ones(265), np.zeros(265),
                                            np.ones(265)]).astype(np.float32),
            "ch_info": {"x_s_info_lst": [x_s_info], "sc": x_s_info["kp"].reshape(-1),
                        "eye_open_lst": [np.array([[0.3, 0.31]], np.float32)],
                        "eye_ball_lst": [np.zeros((1, 6), np.float32)]},
            "fade_type": "d0", "fade_out_keys": ["exp"], "flag_stitching": True,
            "overall_ctrl_info": {"delta_pitch": 2}, "N_d": -1, "use_d_keys": None,
        },
    }


@pytest.fixture
def cfg_path(tmp_path):
    p = tmp_path / "v0.4_hubert_cfg_trt_online.pkl"
    with open(p, "wb") as fh:
        pickle.dump(synthetic_cfg(), fh)
    return p


def test_pickle_drives_defaults(cfg_path):
    cfg = DittoConfig.from_pickle(cfg_path)
    assert cfg.online_mode is True and cfg.overlap_v2 == 70 and cfg.sampling_timesteps == 10
    assert cfg.fix_kp_cond == 1 and cfg.fix_kp_cond_dim == (0, 202)
    assert cfg.emo.shape == (600, 8) and cfg.delta_eye_arr.shape == (15, 63)
    lo, hi = cfg.clip_min_max
    assert lo.shape == (265,) and float(hi[0]) == 1.0
    assert cfg.fade_type == "d0" and cfg.fade_out_keys == ("exp",)
    assert cfg.overall_ctrl_info == {"delta_pitch": 2}
    assert cfg.model_paths["hubert_cfg"]["model_path"].endswith(".onnx")
    assert cfg.model_paths["audio2motion_cfg"]["model_path"].endswith("lmdm_v0.4_hubert.pth")
    assert cfg.extra["default_kwargs"]["N_d"] == -1
    # code defaults fill what the pkl lacks
    assert cfg.crop_scale == 2.3 and cfg.relative_d is True
    # the reference identity parses into a condition source
    src = ConditionSource.from_ch_info(cfg.ch_info)
    assert src.sc.shape == (63,) and src.eye_open.shape == (1, 2)
    assert src.kp_cond[0] == pytest.approx(0.3)


def test_user_values_win_over_the_pickle(cfg_path):
    cfg = DittoConfig.from_pickle(cfg_path)
    mine = cfg.resolve(emo=3, sampling_timesteps=None, overlap_v2=None)
    assert mine.emo == 3                                   # the reference kept the pkl's table
    assert mine.sampling_timesteps == 10 and mine.overlap_v2 == 70    # None = not given
    assert isinstance(cfg.emo, np.ndarray)                 # the original is untouched
    with pytest.raises(TalkingHeadError, match="unknown"):
        cfg.resolve(emotion=3)


def test_code_defaults_without_a_pickle():
    cfg = DittoConfig()
    assert (cfg.overlap_v2, cfg.sampling_timesteps, cfg.fix_kp_cond, cfg.emo) == (10, 50, 0, 4)
    assert cfg.v_min_max_for_clip is None and cfg.clip_min_max is None and cfg.ch_info is None


def test_bad_arrays_and_unsafe_pickles_are_refused(tmp_path):
    bad = synthetic_cfg()
    bad["default_kwargs"]["v_min_max_for_clip"] = np.zeros((4, 264), np.float32)
    with pytest.raises(CheckpointError, match="v_min_max_for_clip"):
        DittoConfig.from_dict(bad)
    evil = tmp_path / "evil.pkl"
    with open(evil, "wb") as fh:
        pickle.dump({"default_kwargs": {"x": os.system}}, fh)
    with pytest.raises(UnsafePickleError):
        DittoConfig.from_pickle(evil)
    with pytest.raises(MissingWeightsError):
        DittoConfig.from_pickle(tmp_path / "absent.pkl")
    assert isinstance(load_pickle_safe(pickle.dumps(synthetic_cfg())), dict)


def _tiny_lmdm_file(path):
    g = torch.Generator().manual_seed(0)
    m = MotionDecoder(TINY)
    sd = {k: (v if k.endswith("freqs") else torch.randn(v.shape, generator=g) * 0.05)
          for k, v in m.state_dict().items()}
    torch.save({"model_state_dict": sd}, path)
    return sd


def test_load_ditto_with_cfg_file(cfg_path, tmp_path):
    sd = _tiny_lmdm_file(tmp_path / "lmdm.pth")
    bundle = load_ditto({"lmdm": tmp_path / "lmdm.pth", "cfg": cfg_path}, "cpu",
                        lmdm_config=TINY)
    assert bundle.family == "ditto" and bundle["cfg"].overlap_v2 == 70
    assert torch.equal(bundle["lmdm"].state_dict()["final_layer.bias"], sd["final_layer.bias"])
    assert bundle.nets["hubert"] is None and bundle.nets["stitch"] is None
    with pytest.raises(MissingWeightsError, match="lmdm_v0.4_hubert.pth"):
        load_ditto({"lmdm": tmp_path / "nope.pth"})
    broken = dict(sd)
    broken.pop("final_layer.bias")
    torch.save({"model_state_dict": broken}, tmp_path / "broken.pth")
    with pytest.raises(CheckpointError, match="final_layer.bias"):
        load_ditto({"lmdm": tmp_path / "broken.pth"}, lmdm_config=TINY)
