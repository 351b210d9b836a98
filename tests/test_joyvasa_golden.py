"""JoyVASA goldens (../shared/fidelity/joyvasa): audio_encoder, denoiser_forward (both
positional-encoding versions), sample_window, sample_long and to_liveportrait.

The keyed full-size weights (the set's base seed, its kept buffers) are written as the
released container ({'args': Namespace with a PosixPath, 'model': sd}) and loaded by the
pack's own loader; the fingerprints of cases.json must match before anything runs.
Seeds, inputs, shapes and tolerances all come from the set's cases.json.
"""
import hashlib

import numpy as np
import pytest
import torch

from talking_head.pipelines.joyvasa import (
    Guidance, JoyVASAConfig, NoiseSource, ReferenceDrive, denormalize, generate_coefficients,
    load_motion_generator, reference_keypoints, sample_window)
from talking_head.pipelines.joyvasa.controls import smooth_parts
from talking_head.pipelines.joyvasa.denoiser import alignment_mask, sinusoidal_table
from talking_head.pipelines.joyvasa.generate import plan_windows, window_indicator
from talking_head.pipelines.joyvasa.loader import align_weight_norm
from talking_head.pipelines.joyvasa.schedule import DiffusionSchedule
from talking_head.pipelines.joyvasa.template import MotionTemplate
from talking_head.pipelines.liveportrait.keypoints import PoseExp, rotation_matrix
from tests.goldens import golden
from tests.paths import needs_shared

# one thread: the denoiser is many small ops, which two busy-waiting threads slow down
# several times on a shared 2-core machine (1 vs 2 threads is bit-identical here)
pytestmark = [needs_shared, pytest.mark.usefixtures("one_thread")]


@pytest.fixture(scope="module")
def gs():
    return golden("joyvasa")


@pytest.fixture(scope="module")
def model(gs, tmp_path_factory):
    from tests.fake_joyvasa import golden_state_dict, write_released_pt

    path = tmp_path_factory.mktemp("joyvasa") / "motion_generator_hubert_chinese.pt"
    sd = golden_state_dict(gs)
    write_released_pt(path, sd, gs.data["checkpoint_args"])
    del sd
    net = load_motion_generator(path, "cpu", audio=gs.data["audio_encoder_config"])
    path.unlink()
    return net


def _check(case, outputs: dict, golden_tensors: dict, report: dict = None):
    tol = case["tolerance"]["suggested"]["atol_per_output"]
    spec = case["outputs"]
    for name, value in outputs.items():
        gold = golden_tensors[spec[name]["key"]]
        ours = np.asarray(torch.as_tensor(value).detach().double().reshape(gold.shape))
        err = float(np.abs(ours - gold.double().numpy()).max())
        if report is not None:
            report[name] = (err, tol[name])
        print(f"GOLDEN {case['name']} {name} max_err={err:.3g} atol={tol[name]}")
        assert err <= tol[name], f"{case['name']} {name}: {err:.3g} > atol {tol[name]}"


def _inputs(gs, case):
    files = gs.tensors(case["file"].rsplit(".", 1)[0])
    return files, {k: files[v["key"]] for k, v in case["inputs"].items()}


# ---------------------------------------------------------------------------------------
# weights


def test_keyed_weights_match_the_reference_fingerprints(model, gs):
    from tests.fake_joyvasa import MANIFEST
    from tests.fakes import manifest_entries

    w = gs.data["weights"]
    # hash under the checkpoint's key names (the weight-norm names may differ in memory)
    sd = align_weight_norm(model.state_dict(), manifest_entries(MANIFEST))
    assert len(sd) == w["num_keys"]

    def sha(keys):
        h = hashlib.sha256()
        for k in sorted(keys):
            h.update(k.encode())
            h.update(sd[k].contiguous().numpy().tobytes())
        return h.hexdigest()

    sums = w["sha256_sorted_keys"]
    assert sha(sd) == sums["all"]
    assert sha([k for k in sd if not k.startswith("audio_encoder.")]) == sums["dit_without_audio_encoder"]
    assert sha([k for k in sd if k.startswith("audio_encoder.")]) == sums["audio_encoder"]
    for key, total in w["fingerprints_sum_abs"].items():
        assert abs(float(sd[key].double().abs().sum()) - total) <= 1e-6 * max(1.0, total)
        assert sd[key].reshape(-1)[:3].tolist() == pytest.approx(w["probe_first3"][key], abs=0)


def test_constant_tables_are_rebuilt_exactly(gs):
    """TE.pe (dropped from the file like the reference does), PE.pe, the alignment mask
    and the cosine schedule, rebuilt by the pack, equal the reference's stored buffers."""
    keep = gs.tensors("weights_keep")
    te, pe = keep["denoising_net.TE.pe"], keep["denoising_net.PE.pe"]
    assert torch.equal(sinusoidal_table(te.shape[1], te.shape[2]), te)
    assert torch.equal(sinusoidal_table(pe.shape[1], pe.shape[2]), pe)
    mask = keep["denoising_net.alignment_mask"]
    assert torch.equal(alignment_mask(mask.shape[0], 1), mask)
    steps = int(gs.data["checkpoint_args"]["n_diff_steps"])
    sched = DiffusionSchedule(steps, gs.data["checkpoint_args"]["diff_schedule"])
    for name in ("betas", "alphas", "alpha_bars", "sigmas_flex", "sigmas_inflex"):
        ours, ref = getattr(sched, name), keep[f"diffusion_sched.{name}"]
        assert torch.allclose(ours, ref, rtol=0, atol=1e-7), name


# ---------------------------------------------------------------------------------------
# a: audio encoder


@torch.inference_mode()
def test_audio_encoder_golden(model, gs):
    case = gs.case("audio_encoder")
    files, inp = _inputs(gs, case)
    outputs = {}
    for frames in case["params"]["frame_nums"]:
        trace = {}
        model.extract_audio_feature(inp["wav"][None], frame_num=frames, trace=trace)
        outputs.update({f"F{frames}.{k}": trace[k][0] for k in
                        ("interp_2L", "proj_2L", "hidden_2L", "hidden_L", "audio_feat")})
        outputs["padded"], outputs["cnn_features"] = trace["padded"][0], trace["cnn_features"][0]
    assert set(outputs) == set(case["outputs"])
    _check(case, outputs, files)


# ---------------------------------------------------------------------------------------
# b: one denoiser call on the guidance batch


@torch.inference_mode()
def test_denoiser_forward_golden(model, gs):
    case = gs.case("denoiser_forward")
    files, inp = _inputs(gs, case)
    cfg_scale = case["params"]["cfg_scale"]
    outputs = {}
    for pe_mode in case["params"]["pe_modes"]:
        for prev in ("start", "given"):
            pm = model.start_motion_feat if prev == "start" else inp["prev_motion"]
            pa = model.start_audio_feat if prev == "start" else inp["prev_audio"]
            for t in case["params"]["timesteps"]:
                trace = {}
                x0 = model.guided_prediction(inp["x_t"], inp["audio_feat"], pm, pa, t, cfg_scale,
                                             pe_mode, trace=trace)
                name = f"{pe_mode}.{prev}.t{t}"
                outputs[f"{name}.out_null"] = trace["out_null"][0]
                outputs[f"{name}.out_audio"] = trace["out_audio"][0]
                outputs[f"{name}.x0_cfg"] = x0[0]
    assert set(outputs) == set(case["outputs"])
    _check(case, outputs, files)
    # the two encodings really differ (the fix changes the network's input)
    assert not torch.allclose(outputs["fixed.start.t37.x0_cfg"], outputs["prefix.start.t37.x0_cfg"])


# ---------------------------------------------------------------------------------------
# c: one whole window


def test_sample_window_golden(model, gs):
    case = gs.case("sample_window")
    files, inp = _inputs(gs, case)
    assert model.diffusion_sched.n_steps == case["params"]["n_diff_steps"]
    outputs = {}
    for pe_mode in case["params"]["pe_modes"]:
        traj = [] if f"{pe_mode}.traj" in case["outputs"] else None
        noise = NoiseSource(None, x_T=inp["x_T"], z=inp["z"])
        x = sample_window(model, inp["audio_feat"], None, None, noise.initial(inp["x_T"].shape), noise,
                          Guidance(case["params"]["cfg_scale"], pe_mode), trajectory=traj)
        assert noise.used == len(inp["z"])          # every injected step noise consumed
        outputs[f"{pe_mode}.motion"] = x[0]
        if traj is not None:
            outputs[f"{pe_mode}.traj"] = torch.cat(traj)
    assert set(outputs) == set(case["outputs"])
    _check(case, outputs, files)


# ---------------------------------------------------------------------------------------
# d: long audio, two windows


def test_sample_long_golden(model, gs):
    case = gs.case("sample_long")
    files, inp = _inputs(gs, case)
    noise = NoiseSource(None, x_T=inp["x_T"], z=inp["z"])
    coef = generate_coefficients(model, inp["wav"], Guidance(case["params"]["cfg_scale"], "fixed"), noise)
    assert coef.plan.n_windows == case["params"]["n_windows"]
    assert coef.plan.clip_len == case["params"]["n_frames"]
    assert noise.used == len(inp["z"])
    outputs = {
        "window_motion": coef.window_motion,
        "window_audio_feat": coef.window_audio_feat,
        "window_prev_motion_in": coef.prev_motion_in[-1],
        "window_prev_audio_in": coef.prev_audio_in[-1],
        "indicator_last": window_indicator(coef.plan, model.cfg)[-1],
        "motion_coef": coef.motion,
    }
    assert set(outputs) == set(case["outputs"])
    _check(case, outputs, files)


# ---------------------------------------------------------------------------------------
# e: de-normalisation, smoothing and the reference's driving keypoints


def _config_drive(name: str) -> ReferenceDrive:
    """The set's driving configs: cli_<region> = the CLI defaults with that region;
    relative_expression_friendly = relative on, expression-friendly, multiplier 1, all."""
    if name.startswith("cli_"):
        return ReferenceDrive(region=name[4:])
    if name == "relative_expression_friendly":
        return ReferenceDrive(region="all", relative=True, expression_friendly=True,
                              driving_multiplier=1.0)
    raise KeyError(name)


def test_to_liveportrait_golden(gs):
    case = gs.case("to_liveportrait")
    files, inp = _inputs(gs, case)
    template = MotionTemplate.from_mapping({k[len("template."):]: v.numpy() for k, v in inp.items()
                                            if k.startswith("template.")})
    args = gs.data["checkpoint_args"]
    cfg = JoyVASAConfig(n_motions=args["n_motions"], n_prev_motions=args["n_prev_motions"],
                        fps=args["fps"])
    plan = plan_windows(int(inp["wav_len"][0]), cfg)
    coef = inp["window_motion"].reshape(-1, inp["window_motion"].shape[-1])[:plan.clip_len]
    raw = denormalize(coef, template)
    smooth = smooth_parts(raw, 0.99)
    outputs = {}
    for tag, parts in (("raw", raw), ("smooth", smooth)):
        for key in ("exp", "scale", "t", "pitch", "yaw", "roll"):
            if f"{tag}.{key}" in case["outputs"]:
                outputs[f"{tag}.{key}"] = parts[key]
        outputs[f"{tag}.R"] = rotation_matrix(parts["pitch"], parts["yaw"], parts["roll"])
    src_info = {k[len("x_s_info."):]: v for k, v in inp.items() if k.startswith("x_s_info.")}
    src = PoseExp(rotation_matrix(src_info["pitch"], src_info["yaw"], src_info["roll"]),
                  src_info["exp"], src_info["scale"], src_info["t"])
    drv = PoseExp(outputs["smooth.R"], smooth["exp"], smooth["scale"], smooth["t"])
    multipliers = {}
    for name in case["params"]["configs"]:
        x_s, kp, mult = reference_keypoints(src_info["kp"], src, drv, _config_drive(name))
        outputs[f"kp_driving.{name}"] = kp
        outputs["x_s"] = x_s[0]
        if f"motion_multiplier.{name}" in case["outputs"]:
            outputs[f"motion_multiplier.{name}"] = torch.tensor([mult])
            multipliers[name] = mult
    assert set(outputs) == set(case["outputs"])
    _check(case, outputs, files)
    for name, mult in multipliers.items():
        exact = case["exact_values"][f"motion_multiplier.{name}"]
        assert abs(mult - exact) <= case["tolerance"]["suggested"]["atol_per_output"][f"motion_multiplier.{name}"]
