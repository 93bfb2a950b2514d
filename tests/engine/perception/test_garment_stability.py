"""Issue 14's stability target on the bundled clip: the garment on a still person (the clip is one
photograph under a moving camera) varies over time no more than twice the input, plus one grey
level (``bench/garment_stability.py`` measures the same on 32 frames)."""

from bench.garment_stability import garment_stability, synthetic_stability


def test_the_garment_stays_put_on_a_still_person():
    s = garment_stability(14)  # measured: input 2.70, garment 4.50 (30.7 on 32 frames before)
    assert s.frames == 14 and s.area > 20_000  # measured 41 000 photo pixels
    assert s.garment_std <= 2.0 * s.input_std + 1.0, s


def test_the_sleeves_do_not_jump_when_an_elbow_is_half_seen():
    """The clip's right elbow, at the frame's bottom edge, climbs from 0.18 to 0.55 confidence
    over frames 32-63: a one-frame rule (follow at 0.5) switched the sleeve to the arm at frame
    54 and the window measured 10.5 against a target of 6.8 (engine.inputs.sleeve_follow)."""
    s = garment_stability(24, start=40)
    assert s.frames == 24 and s.area > 20_000
    assert s.garment_std <= 2.0 * s.input_std + 1.0, s


def test_the_garment_stays_put_on_a_synthetic_still_person():
    """A synthetic person (known keypoints, pose-model jitter of 1.5 px, a wobbling segmenter-like
    mask, sensor noise) under the clip's camera path (bench.garment_stability.synthetic_stability;
    mediapipe does not see synthetic people). Measured: input 1.77, garment 4.06 (6.2 before the
    sleeves' on-frames rule and the outline smoother: the right elbow blinks at the frame edge)."""
    s = synthetic_stability(24)
    assert s.frames == 24 and s.area > 20_000
    assert s.garment_std <= 2.0 * s.input_std + 1.0, s
