"""Tracking rules with a scripted stand-in detector (no models, no ../shared needed)."""
import numpy as np
import pytest

from talking_head.pipelines.core.runtime import RunContext
from talking_head.pipelines.face import TrackSettings
from talking_head.pipelines.core.errors import MediaError, MissingWeightsError, NoFaceError
from talking_head.pipelines.face import (
    FaceObservation, centered_moving_average, mediapipe_model_paths, rect_from_landmarks,
    register_faces)
from talking_head.pipelines.face.schemes import IBUG68

# a 68-point face: eyes at y=100 (x 80/120 corners 70..90, 110..130), mouth corners at y=150
FACE68 = np.zeros((68, 2), np.float32)
FACE68[:17] = np.stack([np.linspace(50, 150, 17), 100 + 70 * np.sin(np.linspace(0, np.pi, 17))], 1)
FACE68[17:27] = np.stack([np.linspace(60, 140, 10), np.full(10, 85)], 1)
FACE68[27:36] = np.stack([np.full(9, 100), np.linspace(100, 130, 9)], 1)
FACE68[36:42] = [[70, 100], [75, 97], [85, 97], [90, 100], [85, 103], [75, 103]]
FACE68[42:48] = [[110, 100], [115, 97], [125, 97], [130, 100], [125, 103], [115, 103]]
FACE68[48:68] = np.stack([np.linspace(80, 120, 20), np.full(20, 150)], 1)
FACE68[[48, 54]] = [[80, 150], [120, 150]]


class ScriptedDetector:
    """Returns, per call, the next entry of ``script`` (a shift of FACE68, "eyes", or None)."""

    scheme = "ibug68"

    def __init__(self, script):
        self.script, self.calls = list(script), 0

    def detect(self, image):
        entry = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        if entry is None:
            return None
        if isinstance(entry, tuple) and entry[0] == "eyes":
            eyes = np.array([[80, 100], [120, 100]], np.float32) + entry[1]
            return FaceObservation("eyes", None, eyes, np.array([60, 80, 140, 170], np.float32))
        pts = FACE68 + np.asarray(entry, np.float32)
        return FaceObservation("ibug68", pts, np.array([[80, 100], [120, 100]], np.float32) + entry,
                               np.concatenate([pts.min(0), pts.max(0)]))

    def close(self):
        pass


def _frames(n, size=320):  # 256..1280: detectors see the frame unscaled
    return np.zeros((n, size, size, 3), np.uint8)


def test_leading_and_middle_misses_reuse_the_nearest_good_frame():
    script = [None, None, (0, 0), (2, 0), None, (6, 0)]
    det = ScriptedDetector(script)
    # track_regions off so every frame costs exactly one call, in order
    track = register_faces(_frames(6), det, settings=TrackSettings(smooth_window=1, track_regions=False))
    assert track.kinds == ["reused", "reused", "detected", "detected", "reused", "detected"]
    assert track.face_found.tolist() == [False, False, True, True, False, True]
    cx = track.rects[:, 0]
    assert cx[0] == cx[1] == cx[2] and cx[4] == cx[3] and cx[5] - cx[3] == pytest.approx(4)
    assert np.array_equal(track.landmarks[0], FACE68) and np.array_equal(track.landmarks[4], FACE68 + (2, 0))
    expected = rect_from_landmarks(FACE68, IBUG68)
    np.testing.assert_allclose(track.rects[2, :2], expected.center, atol=1e-4)


def test_smoothing_follows_linear_motion_without_lag_and_removes_jitter():
    rng = np.random.default_rng(3)
    n = 21
    jitter = rng.normal(0, 1.0, (n, 2))
    jitter[[0, -1]] = 0
    det = ScriptedDetector([(3.0 * i + jitter[i, 0], jitter[i, 1]) for i in range(n)])
    raw = register_faces(_frames(n), det, settings=TrackSettings(smooth_window=1, track_regions=False)).rects
    det = ScriptedDetector([(3.0 * i + jitter[i, 0], jitter[i, 1]) for i in range(n)])
    smooth = register_faces(_frames(n), det, settings=TrackSettings(smooth_window=7, track_regions=False)).rects
    truth = raw[0, 0] + 3.0 * np.arange(n)
    raw_err, smooth_err = np.abs(raw[:, 0] - truth), np.abs(smooth[:, 0] - truth)
    assert smooth_err.max() < 2.0 and smooth_err.mean() < 0.6 * raw_err.mean()
    assert np.abs(np.diff(smooth[:, 1])).max() < np.abs(np.diff(raw[:, 1])).max()


def test_ditto_style_moving_average_truncates_at_the_ends():
    x = np.arange(10, dtype=np.float32)[:, None]
    out = centered_moving_average(x, 5)
    assert out[0, 0] == pytest.approx(1.0) and out[5, 0] == pytest.approx(5.0)  # mean(0,1,2)
    out = centered_moving_average(x, 5, shrink_at_ends=True)
    assert np.allclose(out[:, 0], x[:, 0])  # a straight line is left as it is


def test_stray_eye_only_detection_is_ignored():
    det = ScriptedDetector([(0, 0), ("eyes", (150, 100)), (0, 0)])
    track = register_faces(_frames(3, 400), det, settings=TrackSettings(smooth_window=1, track_regions=False))
    assert track.kinds == ["detected", "reused", "detected"]
    assert any("eye-only" in note for note in track.notes)
    det = ScriptedDetector([(0, 0), ("eyes", (1, 0)), (0, 0)])
    track = register_faces(_frames(3, 400), det, settings=TrackSettings(smooth_window=1, track_regions=False))
    assert track.kinds == ["detected", "eyes", "detected"] and track.face_found.all()


def test_progress_interrupt_and_manual_input_checks():
    calls = []
    track = register_faces(_frames(3), None, TrackSettings(manual_box=[(50, 60, 100, 110)] * 3),
                           RunContext(progress=lambda d, t: calls.append((d, t))))
    assert calls == [(1, 3), (2, 3), (3, 3)] and track.kinds == ["manual"] * 3

    class Stop(Exception):
        pass

    def interrupt():
        raise Stop()

    with pytest.raises(Stop):
        register_faces(_frames(2), None, TrackSettings(manual_box=(50, 60, 100, 110)), RunContext(interrupt=interrupt))
    with pytest.raises(MediaError, match="manual_box"):
        register_faces(_frames(2), None, settings=TrackSettings(manual_box=(50, 60, 100)))
    with pytest.raises(MediaError, match="outside"):
        register_faces(_frames(2), None, settings=TrackSettings(manual_box=(500, 60, 100, 110)))
    with pytest.raises(NoFaceError, match="manual_box"):
        register_faces(_frames(2), ScriptedDetector([None]))


def test_missing_mediapipe_models_name_file_and_folder(tmp_path):
    with pytest.raises(MissingWeightsError) as err:
        mediapipe_model_paths(str(tmp_path))
    assert "face_landmarker_v2_with_blendshapes.task" in str(err.value)
    assert str(tmp_path) in str(err.value)
