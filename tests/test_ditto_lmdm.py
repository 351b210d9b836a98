"""Full-size LMDM goldens: lmdm_forward, ddim_window, audio2motion_offline and
audio2motion_online, with keyed weights written in the official checkpoint container and
loaded strictly by load_ditto. The heavy part of the Ditto tests (~450 guided steps)."""
import hashlib
import json
import os

import numpy as np
import pytest
import torch

from talking_head.pipelines.ditto import (
    ConditionHandler, ConditionSource, DDIMSampler, NoiseSource, load_ditto)
from talking_head.pipelines.ditto.audio2motion import (
    OnlineAudio2Motion, WindowFuser, audio2motion_offline, clip_motion)
from talking_head.pipelines.ditto.sampler import cosine_schedule, step_coefficients
from tests.goldens import golden
from tests.paths import FIDELITY, needs_shared

DITTO = os.path.join(FIDELITY, "ditto")
pytestmark = [needs_shared, pytest.mark.usefixtures("one_thread")]


@pytest.fixture(scope="module")
def cases():
    with open(os.path.join(DITTO, "cases.json")) as fh:
        data = json.load(fh)
    return {c["name"]: c for c in data["cases"]}, data["weights"]


@pytest.fixture(scope="module")
def lmdm(tmp_path_factory):
    from safetensors.torch import load_file
    from tests.fakes import manifest_entries, write_fake
    freqs = load_file(os.path.join(DITTO, "weights_keep.safetensors"))["lmdm.rotary.freqs"]
    entries = manifest_entries("ditto_manifest_lmdm_v0.4_hubert.json")
    keep = {k: freqs for k in entries if k.endswith("rotary.freqs")}
    path = tmp_path_factory.mktemp("ditto") / "lmdm_v0.4_hubert.pth"
    write_fake("ditto_manifest_lmdm_v0.4_hubert.json", str(path), wrap="model_state_dict", keep=keep,
               base_seed=golden("ditto").base_seed)
    model = load_ditto({"lmdm": path}, "cpu")["lmdm"]
    os.remove(path)
    return model


@pytest.fixture(scope="module")
def sampling():
    from safetensors.numpy import load_file
    return load_file(os.path.join(DITTO, "lmdm_sampling.safetensors"))


def _err(a, b):
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())


def _check(case, outputs, golden, report=None):
    tol = case["tolerance"]["suggested"]
    for key, value in outputs.items():
        err = _err(value, golden[key])
        atol = tol["atol_per_output"][key]
        print(f"GOLDEN {case['name']} {key} max_err={err:.3g} atol={atol}")
        assert err <= atol, f"{case['name']} {key}: {err} > {atol}"
        if "rtol_to_range" in tol:
            assert err <= tol["rtol_to_range"] * np.abs(golden[key]).max() + atol


def test_keyed_weights_match_the_reference_fingerprint(lmdm, cases):
    sd = lmdm.state_dict()
    h = hashlib.sha256()
    for k in sorted(sd):
        h.update(k.encode())
        h.update(sd[k].contiguous().numpy().tobytes())
    assert h.hexdigest() == cases[1]["lmdm_v0.4_hubert"]["sha256_sorted_keys"]
    assert len(sd) == 249


@torch.no_grad()
def test_lmdm_forward_golden(lmdm, cases):
    from safetensors.torch import load_file
    g = load_file(os.path.join(DITTO, "lmdm_forward.safetensors"))
    sched = cosine_schedule()
    enc = lmdm.encode_condition(g["cond"])
    out = {}
    for t in g["timesteps"].tolist():
        tt = torch.tensor([t])
        out[f"x0_cond.t{t}"] = lmdm.denoise(g["x_t"], g["cond_frame"], enc, tt, torch.tensor([True]))
        out[f"x0_uncond.t{t}"] = lmdm.denoise(g["x_t"], g["cond_frame"], enc, tt, torch.tensor([False]))
        cfg = lmdm.guided(g["x_t"], g["cond_frame"], enc, tt, 2.0)
        out[f"x0_cfg.t{t}"] = cfg
        out[f"pred_noise.t{t}"] = sched.sqrt_recip1m_alphas_cumprod[t] * g["x_t"] \
            - cfg / sched.sqrt_recipm1_alphas_cumprod[t]
    # the plain forward (official signature) is the conditional branch
    out_fwd = lmdm(g["x_t"], g["cond_frame"], g["cond"], torch.tensor([99]))
    assert torch.allclose(out_fwd, out["x0_cond.t99"], atol=1e-4)
    _check(cases[0]["lmdm_forward"], {k: v.numpy() for k, v in out.items()},
           {k: v.numpy() for k, v in g.items()})


def test_ddim_window_golden(lmdm, sampling, cases):
    g = sampling
    sched = cosine_schedule()
    out = {f"schedule.{k}": getattr(sched, k).numpy() for k in
           ("alphas_cumprod", "sqrt_recipm1_alphas_cumprod", "sqrt_recip1m_alphas_cumprod")}
    for S in (50, 10):
        co = step_coefficients(sched, S)
        out[f"schedule.S{S}.time_pairs"] = np.array([[c.t, c.t_next] for c in co])
        for k in ("sigma", "c", "alpha_next_sqrt"):
            out[f"schedule.S{S}.{k}"] = torch.stack([getattr(c, k) for c in co[:-1]]).numpy()
        noise = NoiseSource((80, 265), S, step_noises=torch.from_numpy(g[f"step_noise.S{S}"]),
                            window_x_T=torch.from_numpy(g["x_T"]))
        traj = []
        sample = DDIMSampler(lmdm, S).sample(torch.from_numpy(g["kp_cond"]),
                                             torch.from_numpy(g["cond80"]), noise, traj)
        out[f"ddim.S{S}.sample"] = sample.numpy()
        if S == 10:
            out["ddim.S10.traj_x_in"] = torch.cat([a for a, _ in traj]).numpy()
            out["ddim.S10.traj_x0"] = torch.cat([b for _, b in traj]).numpy()
    _check(cases[0]["ddim_window"], out, g)


def _setup(g, steps, x_T):
    info = {k: g[f"x_s_info.{k}"] for k in ("pitch", "yaw", "roll", "t", "exp", "scale", "kp")}
    src = ConditionSource(info, g["eye_open"], g["eye_ball"])
    handler = ConditionHandler(src, g["emo_table"])
    noise = NoiseSource((80, 265), steps, step_noises=torch.from_numpy(g[f"step_noise.S{steps}"]),
                        window_x_T=torch.from_numpy(x_T))
    return src, handler, noise


def test_audio2motion_offline_golden(lmdm, sampling, cases):
    g = sampling
    src, handler, noise = _setup(g, 50, g["offline.window_x_T"])
    assert np.array_equal(handler(g["aud_feat"], 0), g["cond_all"])
    sampler = DDIMSampler(lmdm, 50)
    sample = lambda kp, c: sampler.sample(torch.from_numpy(kp), torch.from_numpy(c), noise)[0].numpy()  # noqa
    kps, preds = [], []
    fuser = WindowFuser(src.kp_cond, 80, overlap=10, online=False, smooth_k=3)
    res = audio2motion_offline(sample, handler, g["aud_feat"], fuser,
                               on_window=lambda w, k, p: (kps.append(k), preds.append(p)))
    vmm = g["v_min_max_for_clip"]
    rows = clip_motion(res, (vmm[0], vmm[1]))
    rows[:, 0] += 1                         # x_d_rows hold the scale itself
    _check(cases[0]["audio2motion_offline"], {
        "offline.window_kp_cond": np.stack(kps), "offline.window_pred": np.stack(preds),
        "offline.motion_unclipped": res, "offline.x_d_rows": rows}, g)


def test_audio2motion_online_golden(lmdm, sampling, cases):
    g = sampling
    src, handler, noise = _setup(g, 10, g["online.window_x_T"])
    sampler = DDIMSampler(lmdm, 10)
    sample = lambda kp, c: sampler.sample(torch.from_numpy(kp), torch.from_numpy(c), noise)[0].numpy()  # noqa
    kps, preds = [], []
    fuser = WindowFuser(src.kp_cond, 80, overlap=70, online=True, smooth_k=3, fix_kp_cond=1,
                        fix_kp_cond_dim=(0, 202))
    vmm = g["v_min_max_for_clip"]
    stream = OnlineAudio2Motion(sample, handler, fuser, g["online.silence_feats"], (vmm[0], vmm[1]),
                                on_window=lambda w, k, p: (kps.append(k), preds.append(p)))
    stream.keep_unclipped = True
    out = [stream.push(g["aud_feat"][i:i + 5]) for i in range(0, 200, 5)]   # 40 HuBERT chunks
    out.append(stream.finish())
    rows = np.concatenate(out)
    assert rows.shape == (210, 265) and len(kps) == 21
    rows[:, 0] += 1
    d0 = stream.d0.copy()
    d0[0] += 1
    _check(cases[0]["audio2motion_online"], {
        "online.window_kp_cond": np.stack(kps), "online.window_pred_first3": np.stack(preds[:3]),
        "online.motion_unclipped": np.concatenate(stream.unclipped), "online.x_d_rows": rows,
        "online.d0_row": d0}, g)
