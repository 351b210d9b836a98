"""Ditto's cfg pickle (``ditto_cfg/v0.4_hubert_cfg_*.pkl``) as a typed config.

The released pkl is a plain dict (spec ditto.md §6.3)::

    {"base_cfg": {"<module>_cfg": {"model_path": ..., ...}, ...},
     "audio2motion_cfg": {"motion_feat_dim": 265, "audio_feat_dim": 1103, "seq_frames": 80,
                          "use_emo": True, "use_sc": True, "use_eye_open": True,
                          "use_eye_ball": True, "w2f_type": "hubert", ...},
     "default_kwargs": {setup kwargs of spec §5.1: "emo" (600,8), "delta_eye_arr" (15,63),
                        "v_min_max_for_clip" (4,265), "ch_info" {...}, "overlap_v2", ...}}

It is read only through the restricted unpickler. Its ``default_kwargs`` drive the
defaults here (the arrays cannot be derived any other way); code defaults fill the
rest. A value the user passes always wins: the reference let the pickle silently
override the caller's ``emo`` (issues #26/#89), :meth:`DittoConfig.resolve` does not.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from ..core.checkpoint_io import load_pickle_safe
from ..core.errors import CheckpointError
from ..core.errors import TalkingHeadError


@dataclass
class DittoConfig:
    # audio2motion_cfg (the LMDM's interface)
    motion_feat_dim: int = 265
    audio_feat_dim: int = 1103
    seq_frames: int = 80
    use_emo: bool = True
    use_sc: bool = True
    use_eye_open: bool = True
    use_eye_ball: bool = True
    w2f_type: str = "hubert"
    # generation (default_kwargs; code defaults of the offline SDK)
    online_mode: bool = False
    overlap_v2: int = 10
    sampling_timesteps: int = 50
    fix_kp_cond: int = 0
    fix_kp_cond_dim: Optional[tuple] = None
    smo_k_d: int = 3
    v_min_max_for_clip: Optional[np.ndarray] = None     # (>=2,265): rows 0/1 = min/max
    # condition
    emo: Any = 4                                        # int, list, or (m,8) table
    eye_f0_mode: bool = False
    ch_info: Optional[dict] = None                      # reference identity (see conditions)
    # motion stitch
    use_d_keys: Any = None
    relative_d: bool = True
    drive_eye: Optional[bool] = None
    delta_eye_arr: Optional[np.ndarray] = None          # (15,63) blink template
    delta_eye_open_n: Any = 0
    fade_type: str = ""
    fade_out_keys: tuple = ("exp",)
    flag_stitching: bool = True
    overall_ctrl_info: dict = field(default_factory=dict)
    # source registration (used by the face/registration stage)
    max_size: int = 1920
    template_n_frames: int = -1
    crop_scale: float = 2.3
    crop_vx_ratio: float = 0.0
    crop_vy_ratio: float = -0.125
    crop_flag_do_rot: bool = True
    smo_k_s: int = 13
    # everything else the pkl held, kept for inspection
    model_paths: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.v_min_max_for_clip is not None:
            v = np.asarray(self.v_min_max_for_clip, dtype=np.float32)
            if v.ndim != 2 or v.shape[0] < 2 or v.shape[1] != self.motion_feat_dim:
                raise CheckpointError(f"cfg v_min_max_for_clip has shape {v.shape}, "
                                      f"expected (>=2, {self.motion_feat_dim})")
            self.v_min_max_for_clip = v
        if self.delta_eye_arr is not None:
            d = np.asarray(self.delta_eye_arr, dtype=np.float32)
            if d.ndim != 2 or d.shape[1] != 63:
                raise CheckpointError(f"cfg delta_eye_arr has shape {d.shape}, expected (k,63)")
            self.delta_eye_arr = d
        if isinstance(self.emo, np.ndarray) and (self.emo.ndim != 2 or self.emo.shape[1] != 8):
            raise CheckpointError(f"cfg emo table has shape {self.emo.shape}, expected (m,8)")
        if self.fix_kp_cond_dim is not None:
            self.fix_kp_cond_dim = tuple(int(v) for v in self.fix_kp_cond_dim)
        self.fade_out_keys = tuple(self.fade_out_keys)
        self.overall_ctrl_info = dict(self.overall_ctrl_info or {})

    @property
    def clip_min_max(self) -> Optional[tuple]:
        v = self.v_min_max_for_clip
        return None if v is None else (v[0], v[1])

    def resolve(self, **overrides) -> "DittoConfig":
        """A copy with every override that is not None applied (user values win)."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = set(overrides) - names
        if unknown:
            raise TalkingHeadError(f"unknown Ditto setting(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})

    @classmethod
    def from_dict(cls, cfg: dict) -> "DittoConfig":
        if not isinstance(cfg, dict):
            raise CheckpointError(f"a Ditto cfg must be a dict, found {type(cfg).__name__}")
        names = {f.name for f in dataclasses.fields(cls)} - {"model_paths", "extra"}
        kw, extra = {}, {}
        a2m = dict(cfg.get("audio2motion_cfg") or {})
        for k, v in a2m.items():
            (kw if k in names else extra.setdefault("audio2motion_cfg", {}))[k] = v
        for k, v in dict(cfg.get("default_kwargs") or {}).items():
            if k in names:
                kw[k] = v
            else:
                extra.setdefault("default_kwargs", {})[k] = v
        paths = {name: dict(sub) for name, sub in dict(cfg.get("base_cfg") or {}).items()
                 if isinstance(sub, dict)}
        for k in cfg:
            if k not in ("audio2motion_cfg", "default_kwargs", "base_cfg"):
                extra[k] = cfg[k]
        if "model_path" in a2m:
            paths["audio2motion_cfg"] = {"model_path": a2m["model_path"]}
        return cls(**kw, model_paths=paths, extra=extra)

    @classmethod
    def from_pickle(cls, path) -> "DittoConfig":
        return cls.from_dict(load_pickle_safe(path))
