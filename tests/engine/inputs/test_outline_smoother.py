"""The body outline smoothed over a stream, in the body's own frame."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from engine.errors import InputError
from engine.inputs.body_outline import body_outline
from engine.inputs.frame_inputs import frame_inputs
from engine.inputs.outline_smoother import OutlineSmoother
from engine.training.synthetic import make_clip

H, W = 256, 192


def _person():
    clip = make_clip(10, frames=1, height=H, width=W)
    kp = clip.keypoints[0].clone()
    return kp, body_outline(clip.person_mask[0, 0], kp, H, W)


def _similarity(angle_deg: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    c, s = math.cos(math.radians(angle_deg)) * scale, math.sin(math.radians(angle_deg)) * scale
    return np.array([[c, -s, shift[0]], [s, c, shift[1]]])


def _moved(kp, outline, a):
    def move(p):
        q = p.double().numpy()
        return torch.from_numpy(q @ a[:, :2].T + a[:, 2]).float()

    kp = kp.clone()
    kp[:, :2] = move(kp[:, :2])
    moved = dataclasses.replace(
        outline,
        edges=move(outline.edges.reshape(8, 2)).reshape(4, 2, 2),
        shoulder_tops=move(outline.shoulder_tops),
        arm_width=outline.arm_width * float(np.sqrt(abs(np.linalg.det(a[:, :2])))),
    )
    return kp, moved


def test_the_body_moving_is_followed_at_once():
    """The whole body moving (or the camera) moves the body frame: nothing lags."""
    kp, outline = _person()
    smoother = OutlineSmoother()
    for i in range(12):
        a = _similarity(3.0 * i, 1.0 + 0.03 * i, (4.0 * i, -2.0 * i))
        kp_i, outline_i = _moved(kp, outline, a)
        out = smoother(outline_i, kp_i, H, i / 30)
        torch.testing.assert_close(out.edges, outline_i.edges, atol=2e-3, rtol=0)
        torch.testing.assert_close(out.shoulder_tops, outline_i.shoulder_tops, atol=2e-3, rtol=0)
        torch.testing.assert_close(out.arm_width, outline_i.arm_width, atol=2e-3, rtol=0)


def test_a_wobbling_outline_on_a_still_body_is_steadied():
    kp, outline = _person()
    rng = np.random.default_rng(0)
    smoother = OutlineSmoother()
    raw, smooth = [], []
    for i in range(60):
        noisy = dataclasses.replace(
            outline, edges=outline.edges + torch.from_numpy(rng.normal(0, 1.0, (4, 2, 2))).float()
        )
        raw.append(noisy.edges.numpy())
        smooth.append(smoother(noisy, kp, H, i / 30).edges.numpy())
    raw_std = np.stack(raw[20:]).std(0).mean()
    smooth_std = np.stack(smooth[20:]).std(0).mean()
    assert smooth_std < 0.4 * raw_std, (smooth_std, raw_std)  # measured about 0.2
    assert np.abs(np.stack(smooth[20:]).mean(0) - outline.edges.numpy()).max() < 0.5  # unbiased
    # Confidence and status are the frame's own.
    last = smoother(outline, kp, H, 2.0)
    assert last.status == outline.status and torch.equal(last.confidence, outline.confidence)


def test_no_person_passes_and_restarts():
    kp, outline = _person()
    smoother = OutlineSmoother()
    smoother(outline, kp, H, 0.0)
    nobody = body_outline(None, torch.zeros(18, 3), H, W)
    assert smoother(nobody, torch.zeros(18, 3), H, 1 / 30) is nobody
    far = dataclasses.replace(outline, edges=outline.edges + 5.0)
    torch.testing.assert_close(smoother(far, kp, H, 2 / 30).edges, far.edges)  # a fresh start


@pytest.mark.parametrize(
    ("args", "name"),
    [(("x", None, H, 0.0), "outline"), ((None, torch.zeros(5, 3), H, 0.0), "keypoints"),
     ((None, None, 0, 0.0), "height"), ((None, None, H, "0"), "timestamp_s")],
)  # fmt: skip
def test_bad_arguments(args, name):
    kp, outline = _person()
    filled = [outline if args[0] is None else args[0], kp if args[1] is None else args[1],
              *args[2:]]  # fmt: skip
    with pytest.raises(InputError, match=name):
        OutlineSmoother()(*filled)
    with pytest.raises(InputError, match="min_cutoff"):
        OutlineSmoother(min_cutoff=0.0)


def test_frame_inputs_uses_the_outlines_it_is_given():
    clip = make_clip(10, frames=1, height=H, width=W)
    kp, outline = _person()
    kw = {"person_mask": clip.person_mask}
    measured = frame_inputs(clip.frames, kp[None], clip.garment, **kw)
    given = frame_inputs(clip.frames, kp[None], clip.garment, outlines=[outline], **kw)
    assert torch.equal(measured["cloth"], given["cloth"])  # the same outline as measured there
    wider = dataclasses.replace(outline, edges=outline.edges + torch.tensor([[-6.0, 0], [6.0, 0]]))
    moved = frame_inputs(clip.frames, kp[None], clip.garment, outlines=[wider], **kw)
    assert float(moved["cloth"][:, 3].sum()) > float(measured["cloth"][:, 3].sum())  # wider
    with pytest.raises(InputError, match="outlines"):
        frame_inputs(clip.frames, kp[None], clip.garment, outlines=[outline, outline], **kw)
    with pytest.raises(InputError, match="outlines"):
        frame_inputs(clip.frames, kp[None], clip.garment, outlines=["x"], **kw)
