"""Seeded synthetic webcam-like video try-on clips, for training and evaluating the generator.

``make_clip(seed)`` draws one clip: a front-facing, articulated 2D person in webcam framing
(head with hair and face, neck, torso, arms with elbows and hands, hips and legs often below the
frame) wearing a procedurally textured upper-body garment, in front of a procedural room-like
background, moving smoothly over ``frames`` frames. Everything is drawn with numpy and OpenCV on
the CPU from ``np.random.default_rng(seed)`` only, so one seed gives the same clip bit for bit.

The garment is defined once, flat, in its own coordinate frame (``Clip.garment``, a catalogue-like
front view): landmarks collar, shoulders, armpits, hem corners and sleeve ends. The worn garment is
rendered by mapping every body-frame pixel back to flat-garment coordinates, piecewise affinely
(a triangle fan over the torso, one or two quads per sleeve along the upper arm and forearm),
plus a smooth, slowly changing displacement (wrinkles), shading towards the torso sides and
sleeve edges, and low-frequency fold shading. The flat landmarks correspond to the body
keypoints (collar to neck, shoulders to shoulders, sleeves along the arms, hem to the hips), so a
thin-plate-spline warp of the flat garment driven by the keypoints approximates the worn garment
well but not exactly; the residual is what a try-on model learns.

Conventions: keypoints are the engine's OpenPose-18 format (see :mod:`engine.keypoints`); pixel
coordinates have their origin at the top-left pixel's corner, so pixel ``(i, j)`` covers
``[j, j + 1) x [i, i + 1)``. A keypoint is "in frame" when ``0 <= x < W`` and ``0 <= y < H``.

Seeds: :func:`clip_seeds` hands out disjoint seed ranges, train from 0 and eval from 10**6.

Cost (2-core CPU, measured when written): about 40 ms for a 4-frame 128x96 clip and about 75 ms
for a 4-frame 256x192 one (median of 20 seeds).
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from engine.errors import InputError
from engine.keypoints import NUM_KEYPOINTS

__all__ = [
    "Clip",
    "make_clip",
    "clip_seeds",
    "TRAIN_SEED_START",
    "EVAL_SEED_START",
    "MIN_SIZE",
    "MAX_SIZE",
]

TRAIN_SEED_START = 0
EVAL_SEED_START = 10**6
MIN_SIZE = 32  # smallest height and width a clip can be drawn at
MAX_SIZE = 4096

_SHIFT = 4  # sub-pixel bits for OpenCV drawing
_ONE = 1 << _SHIFT
_SKIN_LABEL = 254  # label raster: an opaque non-garment part drawn in front
_NO_LABEL = 255  # label raster: nothing drawn (background)


@dataclass(frozen=True)
class Clip:
    """One synthetic try-on clip of T frames of size H x W.

    Attributes:
        frames: (T, 3, H, W) float32 in [0, 1], RGB: the person wearing the garment (ground truth).
        keypoints: (T, 18, 3) float32 detector-like keypoints (x px, y px, confidence): per-frame
            jitter of 1-2 % of the shoulder width, occasional dropped points, confidence 0 for
            points out of frame.
        clean_keypoints: (T, 18, 3) float32, the exact keypoints the frames were drawn from;
            confidence 1 in frame, 0 out of frame.
        person_mask: (T, 1, H, W) float32 in {0, 1}: the person's silhouette (garment included).
        garment_mask: (T, 1, H, W) float32 in {0, 1}: where the worn garment is visible (forearms,
            hands and other parts in front of it excluded). Always inside ``person_mask``.
        garment: (4, H, W) float32 RGBA in [0, 1]: the flat front view of the same garment;
            alpha in {0, 1} is its silhouette, RGB is 0 outside it.
    """

    frames: torch.Tensor
    keypoints: torch.Tensor
    clean_keypoints: torch.Tensor
    person_mask: torch.Tensor
    garment_mask: torch.Tensor
    garment: torch.Tensor


def clip_seeds(split: str, count: int) -> list[int]:
    """The first ``count`` seeds of a split: "train" is ``0, 1, ...``, "eval" is ``10**6, ...``.

    The ranges are disjoint as long as fewer than 10**6 training clips are drawn.
    """
    starts = {"train": TRAIN_SEED_START, "eval": EVAL_SEED_START}
    if split not in starts:
        raise InputError("split", "'train' or 'eval'", split)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise InputError("count", "an int >= 0", count)
    if split == "train" and count > EVAL_SEED_START:
        raise InputError("count", f"at most {EVAL_SEED_START} training seeds", count)
    return list(range(starts[split], starts[split] + count))


# --------------------------------------------------------------------------------------------
# small helpers


def _check_int(name: str, value: object, low: int, high: int | None = None) -> int:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not ok or value < low or (high is not None and value > high):
        rng = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise InputError(name, f"an int {rng}", value)
    return int(value)


def _hsv(h: float, s: float, v: float) -> tuple[float, float, float]:
    return colorsys.hsv_to_rgb(h % 1.0, s, v)


def _rand_color(rng: np.random.Generator, s=(0.15, 0.9), v=(0.25, 0.95)) -> np.ndarray:
    return np.array(_hsv(rng.random(), rng.uniform(*s), rng.uniform(*v)), np.float32)


def _pts(points) -> np.ndarray:
    """Keypoint-convention float points -> OpenCV fixed-point int32 pixel-centre points."""
    a = (np.asarray(points, np.float64).reshape(-1, 2) - 0.5) * _ONE
    return np.round(a).astype(np.int32)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int, channels: int = 1):
    """Low-frequency noise in about [-1, 1], (h, w) or (h, w, channels) float32."""
    gh = max(2, round(cells * h / max(h, w)) + 1)
    gw = max(2, round(cells * w / max(h, w)) + 1)
    grid = rng.standard_normal((gh, gw, channels)).astype(np.float32)
    out = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    return out.reshape(h, w, channels) if channels > 1 else out.reshape(h, w)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.hypot(v[0], v[1])), 1e-6)


class _Canvas:
    """Paints opaque parts onto the image, the person mask and the depth-ordered label raster."""

    def __init__(self, image: np.ndarray, label: np.ndarray, person: np.ndarray) -> None:
        self.image, self.label, self.person = image, label, person

    def poly(self, points, color, label: int = _SKIN_LABEL) -> None:
        p = [_pts(points)]
        if label == _SKIN_LABEL:
            cv2.fillPoly(self.image, p, tuple(map(float, color)), cv2.LINE_8, _SHIFT)
            cv2.fillPoly(self.person, p, 1, cv2.LINE_8, _SHIFT)
        cv2.fillPoly(self.label, p, label, cv2.LINE_8, _SHIFT)

    def line(self, a, b, radius: float, color) -> None:
        # Thick OpenCV lines take an integer thickness and have round caps.
        (pa, pb) = _pts([a, b])
        t = max(1, round(2 * radius))
        for img, c in ((self.image, tuple(map(float, color))), (self.person, 1)):
            cv2.line(img, tuple(pa), tuple(pb), c, t, cv2.LINE_8, _SHIFT)
        cv2.line(self.label, tuple(pa), tuple(pb), _SKIN_LABEL, t, cv2.LINE_8, _SHIFT)

    def ellipse(self, center, axes, angle_deg, color, start=0.0, end=360.0, mask=True) -> None:
        c = tuple(_pts([center])[0])
        ax = (max(1, round(axes[0] * _ONE)), max(1, round(axes[1] * _ONE)))
        args = (c, ax, float(angle_deg), float(start), float(end))
        cv2.ellipse(self.image, *args, tuple(map(float, color)), -1, cv2.LINE_8, _SHIFT)
        if mask:
            cv2.ellipse(self.person, *args, 1, -1, cv2.LINE_8, _SHIFT)
            cv2.ellipse(self.label, *args, _SKIN_LABEL, -1, cv2.LINE_8, _SHIFT)


# --------------------------------------------------------------------------------------------
# background


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A static (h, w, 3) float32 scene: gradient, room with furniture, or blocks, plus noise."""
    ys = (np.arange(h, dtype=np.float32)[:, None] + 0.5) / h
    xs = (np.arange(w, dtype=np.float32)[None, :] + 0.5) / w
    kind = rng.choice(["gradient", "room", "blocks"], p=[0.25, 0.5, 0.25])
    c1 = _rand_color(rng, s=(0.0, 0.5), v=(0.35, 0.95))
    c2 = _rand_color(rng, s=(0.0, 0.5), v=(0.2, 0.9))
    ang = rng.uniform(0, 2 * math.pi)
    t = np.clip(0.5 + (np.cos(ang) * (xs - 0.5) + np.sin(ang) * (ys - 0.5)), 0, 1)[..., None]
    img = (c1 * (1 - t) + c2 * t).astype(np.float32)
    scale = min(h, w)
    if kind == "room":
        wall = _rand_color(rng, s=(0.0, 0.35), v=(0.5, 0.95))
        img = wall * (0.85 + 0.25 * (1 - ys[..., None])) * np.ones((1, w, 1), np.float32)
        horizon = rng.uniform(0.55, 0.85)
        floor = _rand_color(rng, s=(0.1, 0.6), v=(0.2, 0.6))
        img[int(horizon * h) :] = floor * (0.8 + 0.3 * ys[int(horizon * h) :, :, None])
        corner = rng.uniform(-0.2, 1.2)
        if 0 < corner < 1:  # a room corner: the other wall a bit darker
            side = slice(int(corner * w), None) if rng.random() < 0.5 else slice(0, int(corner * w))
            img[: int(horizon * h), side] *= rng.uniform(0.7, 0.9)
        for _ in range(rng.integers(1, 4)):  # doors, windows, frames, shelves
            x0, y0 = rng.uniform(-0.1, 0.9) * w, rng.uniform(0.0, 0.6) * h
            x1, y1 = x0 + rng.uniform(0.1, 0.5) * w, y0 + rng.uniform(0.1, 0.6) * h
            col = _rand_color(rng, v=(0.2, 1.0))
            if rng.random() < 0.3:  # a bright window
                col = np.float32([0.9, 0.93, 0.97]) * rng.uniform(0.9, 1.1)
            p0, p1 = _pts([(x0, y0)])[0], _pts([(x1, y1)])[0]
            cv2.rectangle(img, tuple(p0), tuple(p1), tuple(map(float, col)), -1, cv2.LINE_8, 4)
            frame_col = tuple(map(float, col * 0.6))
            th = max(1, round(0.015 * scale))
            cv2.rectangle(img, tuple(p0), tuple(p1), frame_col, th, cv2.LINE_8, _SHIFT)
    elif kind == "blocks":
        for _ in range(rng.integers(3, 9)):
            x0, y0 = rng.uniform(-0.2, 1.0) * w, rng.uniform(-0.2, 1.0) * h
            x1, y1 = x0 + rng.uniform(0.1, 0.6) * w, y0 + rng.uniform(0.1, 0.6) * h
            col = tuple(map(float, _rand_color(rng, v=(0.15, 0.95))))
            p0, p1 = _pts([(x0, y0)])[0], _pts([(x1, y1)])[0]
            cv2.rectangle(img, tuple(p0), tuple(p1), col, -1, cv2.LINE_8, _SHIFT)
    img = img * (1 + rng.uniform(0.03, 0.12) * _smooth_noise(rng, h, w, 4, 3))
    img = img + rng.uniform(0.0, 0.02) * rng.standard_normal((h, w, 3)).astype(np.float32)
    sigma = rng.uniform(0.3, 1.5) * scale / 128  # out of focus behind the person
    img = cv2.GaussianBlur(img, (0, 0), sigma)
    return np.clip(img, 0, 1).astype(np.float32)


# --------------------------------------------------------------------------------------------
# the person: per-clip shape and motion, per-frame skeleton


@dataclass(frozen=True)
class _Motion:
    """A smooth per-frame signal ``base + amp * sin(omega * t + phase)``."""

    base: float
    amp: float
    omega: float
    phase: float

    def __call__(self, t: float) -> float:
        return self.base + self.amp * math.sin(self.omega * t + self.phase)


def _motion(rng: np.random.Generator, base: float, amp: float, max_step: float) -> _Motion:
    """Amplitude ``amp`` at up to 0.45 rad/frame, slowed so one frame moves at most ``max_step``."""
    omega = rng.uniform(0.12, 0.45)
    if amp * omega > max_step:
        omega = max_step / max(amp, 1e-9)
    return _Motion(base, amp, omega, rng.uniform(0, 2 * math.pi))


_ARM_MODES = {  # (abduction deg range, medial elbow bend deg range)
    "rest": ((6.0, 30.0), (0.0, 45.0)),
    "crossed": ((4.0, 16.0), (100.0, 128.0)),
    "hip": ((32.0, 48.0), (70.0, 95.0)),
    "raise": ((35.0, 70.0), (-75.0, -20.0)),
}


def _person(rng: np.random.Generator, h: int, w: int) -> dict:
    base = min(w, 0.75 * h)
    hips_visible = bool(rng.random() < 0.5)
    ratio = rng.uniform(1.25, 1.45)  # neck to mid-hip over shoulder width
    if hips_visible:
        sw = base * rng.uniform(0.34, 0.44)
        hip_y = h * rng.uniform(0.74, 0.88)
        neck_y = max(hip_y - ratio * sw, 0.8 * sw)
    else:
        sw = base * rng.uniform(0.5, 0.62)
        neck_y = max(h * rng.uniform(0.38, 0.46), 1.1 * h - ratio * sw)
    torso = ratio * sw
    r = rng.random()
    if r < 0.3:
        modes = ("crossed", "crossed")
    elif r < 0.42:
        modes = ("crossed", "rest") if rng.random() < 0.5 else ("rest", "crossed")
    else:
        modes = tuple(rng.choice(["rest", "hip", "raise"], p=[0.6, 0.2, 0.2]) for _ in range(2))
    arms = []
    for mode in modes:
        (a0, a1), (b0, b1) = _ARM_MODES[mode]
        arms.append(
            {
                "abd": _motion(rng, math.radians(rng.uniform(a0, a1)), math.radians(4.0), 0.05),
                "bend": _motion(
                    rng, math.radians(rng.uniform(b0, b1)), math.radians(rng.uniform(2, 12)), 0.07
                ),
            }
        )
    tone = rng.random()
    skin = np.float32([0.96, 0.8, 0.68]) * (1 - tone) + np.float32([0.36, 0.23, 0.15]) * tone
    skin = np.clip(skin * rng.uniform(0.92, 1.08, 3), 0, 1).astype(np.float32)
    hair_palette = [(0.08, 0.06, 0.05), (0.3, 0.18, 0.1), (0.55, 0.4, 0.22), (0.85, 0.7, 0.45)]
    hair_palette += [(0.5, 0.2, 0.08), (0.6, 0.6, 0.6)]
    hair = np.float32(hair_palette[rng.integers(len(hair_palette))]) * rng.uniform(0.8, 1.1)
    rx = sw * rng.uniform(0.2, 0.25)
    return {
        "sw": sw,
        "torso": torso,
        "ratio": ratio,
        "hips_visible": hips_visible,
        "hip0": np.array([w * 0.5 + rng.uniform(-0.08, 0.08) * w, neck_y + torso]),
        "hipw": rng.uniform(0.5, 0.64),
        "waist": rng.uniform(0.38, 0.46),
        "neck_len": rng.uniform(0.14, 0.24),
        "neck_r": rng.uniform(0.13, 0.17),
        "rx": rx,
        "ry": rx * rng.uniform(1.18, 1.34),
        "ua": rng.uniform(0.6, 0.72),
        "fa": rng.uniform(0.55, 0.65),
        "r_ua": rng.uniform(0.1, 0.13),
        "thigh": rng.uniform(0.8, 0.9) * ratio,
        "leg_spread": math.radians(rng.uniform(2, 8)),
        "skin": skin,
        "hair": np.clip(hair, 0, 1).astype(np.float32),
        "long_hair": bool(rng.random() < 0.35),
        "pants": _rand_color(rng, s=(0.1, 0.6), v=(0.12, 0.55)),
        "eye": np.float32([0.1, 0.08, 0.07]) + rng.uniform(0, 0.15),
        "lips": np.clip(skin * np.float32([0.85, 0.55, 0.55]), 0, 1).astype(np.float32),
        "arms": arms,
        "arm_modes": modes,
        "sway": _motion(rng, math.radians(rng.uniform(-4, 4)), math.radians(3.0), 0.012),
        "roll": _motion(rng, math.radians(rng.uniform(-5, 5)), math.radians(4.0), 0.03),
        "yaw": _motion(rng, rng.uniform(-0.25, 0.25), rng.uniform(0.0, 0.25), 0.06),
        "tx": _motion(rng, 0.0, rng.uniform(0, 0.05) * sw, 0.012 * sw),
        "ty": _motion(rng, 0.0, rng.uniform(0, 0.03) * sw, 0.008 * sw),
        "scale": _motion(rng, 1.0, rng.uniform(0, 0.05), 0.008),
    }


def _skeleton(b: dict, t: float) -> dict:
    """Joint positions (keypoint convention, px) and body axes at time ``t`` (frames)."""
    k = b["scale"](t)
    sw = b["sw"] * k
    th = b["sway"](t)
    d = np.array([math.sin(th), math.cos(th)])  # torso down
    p = np.array([math.cos(th), -math.sin(th)])  # image right = the person's left
    hip_c = b["hip0"] + np.array([b["tx"](t), b["ty"](t)])
    neck = hip_c - d * b["torso"] * k
    j = {"sw": sw, "d": d, "p": p, "neck": neck, "hip_c": hip_c}
    for name, s in (("r", -1.0), ("l", 1.0)):
        sho = neck + s * p * sw / 2
        arm = b["arms"][0 if s < 0 else 1]
        a, bend = arm["abd"](t), arm["bend"](t)
        u = math.cos(a) * d + math.sin(a) * s * p
        f = math.cos(a - bend) * d + math.sin(a - bend) * s * p
        elb = sho + u * b["ua"] * sw
        wri = elb + f * b["fa"] * sw
        hip = hip_c + s * p * b["hipw"] * sw / 2
        leg = math.cos(b["leg_spread"]) * d + math.sin(b["leg_spread"]) * s * p
        knee = hip + leg * b["thigh"] * sw
        ankle = knee + d * b["thigh"] * 0.95 * sw
        j.update({f"{name}_sho": sho, f"{name}_elb": elb, f"{name}_wri": wri, f"{name}_u": u})
        j.update({f"{name}_f": f, f"{name}_a": a, f"{name}_b": bend})
        j.update({f"{name}_hip": hip, f"{name}_knee": knee, f"{name}_ank": ankle})
    roll = th + b["roll"](t)
    hd = np.array([math.sin(roll), math.cos(roll)])
    hp = np.array([math.cos(roll), -math.sin(roll)])
    rx, ry = b["rx"] * k, b["ry"] * k
    head = neck - hd * (b["neck_len"] * sw + ry)
    yaw = b["yaw"](t)
    j.update({"head": head, "hd": hd, "hp": hp, "rx": rx, "ry": ry, "yaw": yaw, "roll": roll})
    j["nose"] = head + hd * 0.22 * ry + hp * yaw * 0.45 * rx
    for name, s in (("r", -1.0), ("l", 1.0)):
        j[f"{name}_eye"] = head - hd * 0.06 * ry + hp * (s * 0.38 + yaw * 0.35) * rx
        j[f"{name}_ear"] = head - hd * 0.02 * ry + hp * (s * 0.97 + yaw * 0.12) * rx
    return j


_KP_ORDER = (
    "nose", "neck", "r_sho", "r_elb", "r_wri", "l_sho", "l_elb", "l_wri", "r_hip", "r_knee",
    "r_ank", "l_hip", "l_knee", "l_ank", "r_eye", "l_eye", "r_ear", "l_ear",
)  # fmt: skip
assert len(_KP_ORDER) == NUM_KEYPOINTS


# --------------------------------------------------------------------------------------------
# the garment: flat layout, texture, and its correspondence to the body


def _garment(rng: np.random.Generator, b: dict, h: int, w: int) -> dict:
    """Flat garment geometry (units of the shoulder width, origin at the back-collar point)."""
    kind = rng.choice(["tshirt", "long", "sleeveless"], p=[0.45, 0.3, 0.25])
    g = {"kind": str(kind)}
    sdrop = rng.uniform(0.05, 0.1)
    ad = rng.uniform(0.36, 0.45)
    hem_drop = rng.uniform(-0.05, 0.18)
    length = b["ratio"] + hem_drop
    g.update({"sdrop": sdrop, "ad": ad, "hem_drop": hem_drop, "length": length})
    g["aw"] = 0.5 * rng.uniform(0.9, 1.0)
    g["hh"] = float(np.clip(b["hipw"] / 2 + rng.uniform(0.12, 0.25), 0.4, 0.55))
    g["strap"] = rng.uniform(0.28, 0.38)
    g["neck_w"] = rng.uniform(0.14, 0.2)
    g["vneck"] = bool(rng.random() < 0.3)
    g["neck_d"] = rng.uniform(0.2, 0.34) if g["vneck"] else rng.uniform(0.08, 0.18)
    if kind == "tshirt":
        g["phi"] = math.radians(rng.uniform(20, 40))
        g["sleeve"] = rng.uniform(0.28, 0.42)
        g["sleeve_w"] = rng.uniform(0.15, 0.2)
    elif kind == "long":
        g["phi"] = math.radians(rng.uniform(50, 68))
        g["sleeve"] = b["ua"] + b["fa"] - 0.05
        g["sleeve_w"] = rng.uniform(0.1, 0.13)
        g["elbow_w"] = g["sleeve_w"] * 1.2
    # flat landmarks, in units
    lm = {"N": np.array([0.0, 0.0]), "C": np.array([0.0, 0.45 * length])}
    for name, s in (("r", -1.0), ("l", 1.0)):
        if kind == "sleeveless":
            lm[f"S{name}"] = np.array([s * g["strap"], sdrop * 0.6])
            lm[f"A{name}"] = np.array([s * g["aw"], ad + 0.06])
        else:
            lm[f"S{name}"] = np.array([s * 0.5, sdrop])
            lm[f"A{name}"] = np.array([s * g["aw"], ad])
        lm[f"H{name}"] = np.array([s * g["hh"], length])
        if kind != "sleeveless":
            dirf = np.array([s * math.cos(g["phi"]), math.sin(g["phi"])])
            nout = np.array([s * math.sin(g["phi"]), -math.cos(g["phi"])])
            mid = (lm[f"S{name}"] + lm[f"A{name}"]) / 2
            end = mid + dirf * g["sleeve"]
            lm[f"Eo{name}"] = end + nout * g["sleeve_w"]
            lm[f"Ei{name}"] = end - nout * g["sleeve_w"]
            if kind == "long":
                frac = b["ua"] / (b["ua"] + b["fa"])
                el = mid + dirf * g["sleeve"] * frac
                lm[f"Lo{name}"] = el + nout * g["elbow_w"]
                lm[f"Li{name}"] = el - nout * g["elbow_w"]
            lm[f"dir{name}"], lm[f"nout{name}"], lm[f"mid{name}"] = dirf, nout, mid
    g["lm"] = lm
    # fit the flat layout into the (h, w) canvas
    keys = [k for k in lm if k[0] in "NCSAHEL"]
    pts = np.stack([lm[k] for k in keys])
    lo, hi = pts.min(0), pts.max(0)
    scale = min(0.92 * w / (hi[0] - lo[0]), 0.88 * h / (hi[1] - lo[1]))
    origin = np.array([w / 2, h / 2]) - scale * (lo + hi) / 2
    origin[0] = w / 2
    g["scale"], g["origin"] = scale, origin
    g["px"] = {k: origin + scale * v for k, v in lm.items() if k in keys}
    return g


def _pattern(rng: np.random.Generator, g: dict, h: int, w: int) -> np.ndarray:
    """The garment's (h, w, 3) float32 texture over the whole flat canvas."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    u = (xs - g["origin"][0]) / g["scale"]
    v = (ys - g["origin"][1]) / g["scale"]
    base = _rand_color(rng, s=(0.1, 0.9), v=(0.3, 0.95))
    second = _rand_color(rng, s=(0.1, 0.9), v=(0.15, 0.98))
    if rng.random() < 0.3:  # white or dark second colour, common for stripes and dots
        second = np.float32([0.95, 0.95, 0.93]) if rng.random() < 0.6 else np.float32([0.1] * 3)
    kind = rng.choice(["solid", "stripes", "checks", "dots", "print"], p=[0.1, 0.3, 0.2, 0.2, 0.2])
    mix = np.zeros((h, w), np.float32)
    if kind == "stripes":
        ang = 0.0 if rng.random() < 0.5 else rng.uniform(0, math.pi)
        period, duty = rng.uniform(0.07, 0.3), rng.uniform(0.2, 0.6)
        coord = (np.sin(ang) * u + np.cos(ang) * v) / period + rng.random()
        mix = (coord % 1.0 < duty).astype(np.float32)
        if rng.random() < 0.3:  # a third colour in every other stripe
            third = _rand_color(rng)
            alt = (np.floor(coord) % 2 == 1) & (mix > 0)
            second = np.where(alt[..., None], third, second)
    elif kind == "checks":
        period, duty = rng.uniform(0.08, 0.25), rng.uniform(0.3, 0.55)
        a = ((u / period + rng.random()) % 1.0 < duty).astype(np.float32)
        c = ((v / period + rng.random()) % 1.0 < duty).astype(np.float32)
        mix = 0.5 * (a + c)
    elif kind == "dots":
        period, radius = rng.uniform(0.08, 0.22), rng.uniform(0.15, 0.35)
        uu, vv = u / period, v / period
        uu = uu + 0.5 * (np.floor(vv) % 2)
        du, dv = uu - np.floor(uu) - 0.5, vv - np.floor(vv) - 0.5
        mix = (du * du + dv * dv < radius * radius).astype(np.float32)
    elif kind == "print":
        n = _smooth_noise(rng, h, w, int(rng.integers(4, 10)))
        mix = (n > rng.uniform(0.2, 0.7)).astype(np.float32)
        if rng.random() < 0.5:
            mix = np.maximum(mix, 0.6 * (n < -rng.uniform(0.3, 0.8)))
    tex = base * (1 - mix[..., None]) + second * mix[..., None]
    if rng.random() < 0.6:  # a logo on the chest
        c = g["origin"] + g["scale"] * np.array([rng.uniform(-0.12, 0.12), 0.45 * g["length"]])
        c[1] -= g["scale"] * rng.uniform(0.0, 0.2)
        size = g["scale"] * rng.uniform(0.08, 0.16)
        col = tuple(map(float, _rand_color(rng, s=(0.3, 1.0), v=(0.3, 1.0))))
        shape = rng.integers(4)
        if shape == 0:
            cv2.circle(tex, tuple(_pts([c])[0]), round(size * _ONE), col, -1, cv2.LINE_AA, _SHIFT)
        elif shape == 1:
            r = round(size * _ONE)
            cv2.circle(tex, tuple(_pts([c])[0]), r, col, max(1, round(size / 3)), 16, _SHIFT)
        else:
            n_pts = 3 if shape == 2 else 10
            ang = np.arange(n_pts) * 2 * math.pi / n_pts - math.pi / 2
            rad = size * (np.where(np.arange(n_pts) % 2 == 1, 0.45, 1.0) if n_pts == 10 else 1.0)
            poly = c + np.stack([np.cos(ang) * rad, np.sin(ang) * rad], 1)
            cv2.fillPoly(tex, [_pts(poly)], col, cv2.LINE_AA, _SHIFT)
        if rng.random() < 0.5:  # "lettering" under the logo
            y = c[1] + 1.5 * size
            for i in range(int(rng.integers(3, 6))):
                x = c[0] + (i - 2) * 0.55 * size
                p0, p1 = _pts([(x - 0.2 * size, y), (x + 0.2 * size, y + 0.5 * size)])
                cv2.rectangle(tex, tuple(p0), tuple(p1), col, -1, cv2.LINE_8, _SHIFT)
    tex = tex * (1 + 0.03 * rng.standard_normal((h, w, 1)).astype(np.float32))  # weave
    return np.clip(tex, 0, 1).astype(np.float32)


def _flat_garment(rng: np.random.Generator, g: dict, h: int, w: int):
    """Flat RGB texture, alpha and shading (all over the (h, w) canvas)."""
    px = g["px"]
    tex = _pattern(rng, g, h, w)
    alpha = np.zeros((h, w), np.uint8)
    torso = [px["Sr"], px["N"], px["Sl"], px["Al"], px["Hl"], px["Hr"], px["Ar"]]
    cv2.fillPoly(alpha, [_pts(torso)], 1, cv2.LINE_8, _SHIFT)
    sleeve_mask = np.zeros((h, w), np.uint8)
    sleeves = []
    if g["kind"] != "sleeveless":
        for n in "rl":
            quad = [px[f"S{n}"], px[f"Eo{n}"], px[f"Ei{n}"], px[f"A{n}"]]
            if g["kind"] == "long":
                quad = [px[f"S{n}"], px[f"Lo{n}"], px[f"Eo{n}"], px[f"Ei{n}"], px[f"Li{n}"]]
                quad.append(px[f"A{n}"])
            sleeves.append(quad)
            cv2.fillPoly(sleeve_mask, [_pts(quad)], 1, cv2.LINE_8, _SHIFT)
    alpha |= sleeve_mask
    # neckline cut-out (crew: ellipse, V: triangle), with a ribbed trim
    s = g["scale"]
    nw, nd = g["neck_w"] * s, g["neck_d"] * s
    n0 = px["N"]
    trim = tex[int(np.clip(n0[1] + nd + 0.3 * s, 0, h - 1)), int(np.clip(n0[0], 0, w - 1))]
    trim = tuple(map(float, trim * rng.uniform(0.6, 0.9)))
    band = max(1, round(0.045 * s))
    if g["vneck"]:
        tri = [n0 + (-nw, -0.05 * s), n0 + (nw, -0.05 * s), n0 + (0, nd)]
        cv2.polylines(tex, [_pts(tri)], True, trim, 2 * band, cv2.LINE_8, _SHIFT)
        cv2.fillPoly(alpha, [_pts(tri)], 0, cv2.LINE_8, _SHIFT)
    else:
        c, ax = tuple(_pts([n0])[0]), (round(nw * _ONE), round(nd * _ONE))
        cv2.ellipse(tex, c, ax, 0, 0, 360, trim, 2 * band, cv2.LINE_8, _SHIFT)
        cv2.ellipse(alpha, c, ax, 0, 0, 360, 0, -1, cv2.LINE_8, _SHIFT)
    if g["kind"] != "sleeveless" and rng.random() < 0.5:  # cuffs
        for n in "rl":
            p0, p1 = _pts([px[f"Eo{n}"], px[f"Ei{n}"]])
            cv2.line(tex, tuple(p0), tuple(p1), trim, 2 * band, cv2.LINE_8, _SHIFT)
    # shading: darker towards the torso sides and the sleeve edges
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    u = np.abs(xs - g["origin"][0]) / (s * max(g["aw"], g["hh"]))
    shade = 1 - 0.3 * np.clip(u, 0, 1) ** 2.5
    for n, quad in zip("rl", sleeves, strict=False):
        mid, dirf = g["origin"] + s * g["lm"][f"mid{n}"], g["lm"][f"dir{n}"]
        across = np.abs((xs - mid[0]) * dirf[1] - (ys - mid[1]) * dirf[0])
        across /= s * 0.25
        one = np.zeros((h, w), np.uint8)
        cv2.fillPoly(one, [_pts(quad)], 1, cv2.LINE_8, _SHIFT)
        shade = np.where(one > 0, 0.97 - 0.22 * np.clip(across, 0, 1) ** 2, shade)
    return tex, alpha.astype(np.float32), shade.astype(np.float32)


def _garment_triangles(g: dict, b: dict, j: dict) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """(body triangle px, flat triangle px, part) for the torso fan and the sleeves, in order."""
    sw, d, p, neck = j["sw"], j["d"], j["p"], j["neck"]
    px = g["px"]
    body = {"N": neck - d * g["sdrop"] * sw, "C": neck + d * 0.45 * g["length"] * sw}
    for n, s in (("r", -1.0), ("l", 1.0)):
        sho = j[f"{n}_sho"]
        if g["kind"] == "sleeveless":
            body[f"S{n}"] = neck + s * p * g["strap"] * sw - d * g["sdrop"] * 0.6 * sw
            body[f"A{n}"] = neck + s * p * (0.5 - b["r_ua"] * 0.7) * sw + d * (g["ad"] + 0.06) * sw
        else:
            body[f"S{n}"] = sho + s * p * 0.05 * sw - d * 0.09 * sw
            body[f"A{n}"] = neck + s * p * (0.5 - b["r_ua"] * 1.15) * sw + d * g["ad"] * sw
        hem_hw = max(b["hipw"] / 2 + 0.16, b["waist"] + 0.04) * 1.04
        body[f"H{n}"] = j["hip_c"] + s * p * hem_hw * sw + d * g["hem_drop"] * sw
    fan = ["Sr", "N", "Sl", "Al", "Hl", "Hr", "Ar"]
    tris = []
    for a, c in zip(fan, fan[1:] + fan[:1], strict=True):
        tris.append((np.stack([body["C"], body[a], body[c]]), np.stack([px["C"], px[a], px[c]])))
    out = [(bt, ft, "torso") for bt, ft in tris]
    if g["kind"] == "sleeveless":
        return out
    for n, s in (("r", -1.0), ("l", 1.0)):
        u, f, a, bend = j[f"{n}_u"], j[f"{n}_f"], j[f"{n}_a"], j[f"{n}_b"]
        nu = -math.sin(a) * d + math.cos(a) * s * p  # outer side of the upper arm
        nf = -math.sin(a - bend) * d + math.cos(a - bend) * s * p
        width = b["r_ua"] * 1.4 * sw
        S, A = body[f"S{n}"], body[f"A{n}"]
        quads = []
        if g["kind"] == "tshirt":
            reach = max(g["sleeve"] + 0.12, float(np.dot(A - j[f"{n}_sho"], u)) / sw + 0.15)
            end = j[f"{n}_sho"] + u * reach * sw
            quads.append(([S, end + nu * width, end - nu * width, A], ("S", "Eo", "Ei", "A")))
        else:
            ne = _unit(nu + nf)
            el = j[f"{n}_elb"]
            ew = width * 1.05 / max(float(np.dot(ne, nu)), 0.5)
            cuff = j[f"{n}_wri"] - f * 0.06 * sw
            quads.append(([S, el + ne * ew, el - ne * ew, A], ("S", "Lo", "Li", "A")))
            cw = b["r_ua"] * 1.15 * sw
            lower = [el + ne * ew, cuff + nf * cw, cuff - nf * cw, el - ne * ew]
            quads.append((lower, ("Lo", "Eo", "Ei", "Li")))
        for pts, keys in quads:
            fq = [px[f"{k}{n}"] for k in keys]
            out += [
                (np.stack([pts[i] for i in t]), np.stack([fq[i] for i in t]), n)
                for t in _split_quad(pts, fq)
            ]
    return out


def _split_quad(body: list, flat: list) -> tuple[tuple[int, int, int], ...]:
    """Split a quad into two triangles along the diagonal that keeps the body triangles
    oriented like the flat ones (a folded quad would map part of the body outside the garment)."""

    def sign(q, t):
        a, b, c = (q[i] for i in t)
        return np.sign((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))

    for tris in (((0, 1, 2), (0, 2, 3)), ((0, 1, 3), (1, 2, 3))):
        if all(sign(body, t) == sign(flat, t) for t in tris):
            return tris
    return ((0, 1, 2), (0, 2, 3))


# --------------------------------------------------------------------------------------------
# one frame


def _draw_frame(
    b: dict,
    g: dict,
    j: dict,
    bg: np.ndarray,
    flat_rgba: np.ndarray,
    flat_shade: np.ndarray,
    wrinkle: np.ndarray,
    folds: np.ndarray,
    light: np.ndarray,
    grid: tuple[np.ndarray, np.ndarray],
):
    h, w = bg.shape[:2]
    img = bg.copy()
    label = np.full((h, w), _NO_LABEL, np.uint8)
    person = np.zeros((h, w), np.uint8)
    cv = _Canvas(img, label, person)
    sw, d, p, neck = j["sw"], j["d"], j["p"], j["neck"]
    skin, hd, hp = b["skin"], j["hd"], j["hp"]
    head, rx, ry = j["head"], j["rx"], j["ry"]
    roll_deg = -math.degrees(j["roll"])
    if b["long_hair"]:  # behind everything
        top = head - hd * 0.2 * ry
        bot = neck + d * 0.25 * sw
        cv.poly(
            [top - hp * 1.15 * rx, top + hp * 1.15 * rx, bot + hp * 1.2 * rx, bot - hp * 1.2 * rx],
            b["hair"] * 0.85,
        )
    # legs and pants
    for n in "rl":
        cv.line(j[f"{n}_hip"], j[f"{n}_knee"], 0.19 * sw, b["pants"])
        cv.line(j[f"{n}_knee"], j[f"{n}_ank"], 0.15 * sw, b["pants"])
    hc, half = j["hip_c"], (b["hipw"] / 2 + 0.15) * sw
    cv.poly(
        [hc - d * 0.2 * sw - p * half, hc - d * 0.2 * sw + p * half]
        + [hc + d * 0.3 * sw + p * half * 1.05, hc + d * 0.3 * sw - p * half * 1.05],
        b["pants"],
    )
    # torso skin (shows through necklines and around straps)
    poly = []
    for n, s in (("r", -1.0), ("l", 1.0)):
        side = [
            neck + s * p * 0.14 * sw - d * 0.1 * sw,
            j[f"{n}_sho"] + s * p * 0.02 * sw - d * 0.05 * sw,
            j[f"{n}_sho"] + s * p * 0.08 * sw + d * 0.12 * sw,
            neck + s * p * (0.5 - b["r_ua"] * 1.15) * sw + d * g["ad"] * sw,
            neck + s * p * b["waist"] * sw + d * 0.72 * b["torso"] / b["sw"] * sw,
            hc + s * p * half - d * 0.2 * sw,
        ]
        poly += side if s > 0 else side[::-1]
    cv.poly(poly, skin * 0.97)
    # neck and head
    chin = head + hd * 0.8 * ry
    cv.line(neck - d * 0.05 * sw, chin, b["neck_r"] * sw, skin * 0.9)
    hair_c = head - hd * 0.12 * ry
    cv.ellipse(hair_c, (rx * 1.1, ry * 1.0), roll_deg, b["hair"])
    for n in "rl":
        cv.ellipse(j[f"{n}_ear"], (0.09 * sw, 0.14 * sw), roll_deg, skin * 0.93)
    face_c = head + hp * j["yaw"] * 0.12 * rx
    cv.ellipse(face_c, (rx, ry), roll_deg, skin)
    fringe = head - hd * 0.28 * ry
    cv.ellipse(fringe, (rx * 1.03, ry * 0.7), roll_deg, b["hair"], 180, 360, mask=False)
    eye_r = max(0.6, 0.027 * sw)
    for n in "rl":
        cv.ellipse(j[f"{n}_eye"], (eye_r * 1.3, eye_r), roll_deg, b["eye"], mask=False)
    mouth = head + hd * 0.55 * ry + hp * j["yaw"] * 0.4 * rx
    cv.ellipse(mouth, (0.3 * rx, 0.07 * ry + 0.3), roll_deg, b["lips"], mask=False)
    # the garment's torso, then per arm: arm skin, sleeve, forearm skin, hand
    tris = _garment_triangles(g, b, j)
    affine = np.zeros((256, 6), np.float32)
    affine[:, 2] = affine[:, 5] = -1e4  # unlabeled pixels sample outside the flat garment
    ids = {"torso": [], "r": [], "l": []}
    for i, (bt, ft, part) in enumerate(tris):
        area = abs(np.cross(bt[1] - bt[0], bt[2] - bt[0]))
        if area < 0.5:
            continue
        m = cv2.getAffineTransform(bt.astype(np.float32), ft.astype(np.float32))
        affine[i] = m.reshape(6)
        ids[part].append((i, bt))
    r_ua = b["r_ua"] * sw
    for n in "rl":  # upper arms go behind the garment's shoulders
        cv.line(j[f"{n}_sho"] + j[f"{n}_u"] * 0.6 * r_ua, j[f"{n}_elb"], r_ua, skin * 0.95)
    for i, bt in ids["torso"]:
        cv.poly(bt, None, label=i)
    long_sleeves = g["kind"] == "long"
    # arms: the one whose hand is nearer the other side goes last (in front)
    order = ["r", "l"]
    if b["arm_modes"][0] == "crossed" and b["arm_modes"][1] != "crossed":
        order = ["l", "r"]
    for n in order:
        sho, elb, wri, f = j[f"{n}_sho"], j[f"{n}_elb"], j[f"{n}_wri"], j[f"{n}_f"]
        cv.line(elb + 0.25 * (sho - elb), elb, r_ua, skin * 0.95)
        if long_sleeves:
            cv.line(elb, wri, r_ua * 0.8, skin * 0.95)
        for i, bt in ids[n]:
            cv.poly(bt, None, label=i)
        if not long_sleeves:
            cv.line(elb, wri, r_ua * 0.8, skin * 0.95)
        hand = wri + f * 0.11 * sw
        ang = math.degrees(math.atan2(f[1], f[0]))  # the hand's long axis along the forearm
        cv.ellipse(hand, (0.13 * sw, 0.085 * sw), ang, skin * 0.98)
    # sample the flat garment through the piecewise-affine map (+ wrinkles)
    xs, ys = grid
    lab = label.astype(np.intp)
    a = affine[lab]  # (H, W, 6)
    mx = a[..., 0] * xs + a[..., 1] * ys + a[..., 2] + wrinkle[..., 0] - 0.5
    my = a[..., 3] * xs + a[..., 4] * ys + a[..., 5] + wrinkle[..., 1] - 0.5
    rgba = cv2.remap(flat_rgba, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    shade = cv2.remap(flat_shade, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    gmask = (label < _SKIN_LABEL) & (rgba[..., 3] > 0.5)
    worn = rgba[..., :3] * (shade * folds)[..., None]
    img = np.where(gmask[..., None], worn, img)
    person = person.astype(bool) | gmask
    img = np.where(person[..., None], img * light[..., None], img)
    return img, person, gmask


# --------------------------------------------------------------------------------------------
# keypoints


def _keypoints(rng: np.random.Generator, skel: list[dict], h: int, w: int, sw: float):
    t = len(skel)
    clean = np.zeros((t, NUM_KEYPOINTS, 3), np.float32)
    for i, j in enumerate(skel):
        clean[i, :, :2] = np.stack([j[k] for k in _KP_ORDER])
    xy = clean[..., :2]
    inside = (xy[..., 0] >= 0) & (xy[..., 0] < w) & (xy[..., 1] >= 0) & (xy[..., 1] < h)
    clean[..., 2] = inside
    sigma = rng.uniform(0.01, 0.02) * sw
    scale = np.ones(NUM_KEYPOINTS, np.float32)
    scale[[3, 4, 6, 7]] = 1.4  # elbows and wrists are the hardest
    scale[[9, 10, 12, 13]] = 1.6
    noisy = clean.copy()
    noisy[..., :2] += rng.standard_normal((t, NUM_KEYPOINTS, 2)) * sigma * scale[None, :, None]
    base = rng.uniform(0.6, 0.95, NUM_KEYPOINTS)
    base[[14, 15, 16, 17]] -= rng.uniform(0.0, 0.3, 4)
    conf = base[None] + rng.normal(0, 0.06, (t, NUM_KEYPOINTS))
    for i, j in enumerate(skel):  # the ear on the far side of a turned head is less sure
        conf[i, 16] -= max(0.0, j["yaw"]) * 1.2
        conf[i, 17] -= max(0.0, -j["yaw"]) * 1.2
    conf = np.clip(conf, 0.0, 1.0)
    dropped = (rng.random((t, NUM_KEYPOINTS)) < 0.03) | (conf < 0.15)
    conf[dropped] = 0.0
    noisy_xy = noisy[..., :2]
    noisy_in = (noisy_xy[..., 0] >= 0) & (noisy_xy[..., 0] < w)
    noisy_in &= (noisy_xy[..., 1] >= 0) & (noisy_xy[..., 1] < h)
    noisy[..., 2] = np.where(inside & noisy_in, conf, 0.0)
    return clean, noisy


# --------------------------------------------------------------------------------------------
# public entry point


def make_clip(seed: int, *, frames: int = 4, height: int = 128, width: int = 96) -> Clip:
    """Draw the synthetic clip of ``seed``: ``frames`` frames of ``height`` x ``width`` pixels.

    Deterministic: the same arguments give the same tensors, bit for bit. Raises
    :class:`~engine.errors.InputError` for a negative or non-int seed, ``frames < 1`` or a
    height or width outside ``[MIN_SIZE, MAX_SIZE]``.
    """
    seed = _check_int("seed", seed, 0)
    t = _check_int("frames", frames, 1)
    h = _check_int("height", height, MIN_SIZE, MAX_SIZE)
    w = _check_int("width", width, MIN_SIZE, MAX_SIZE)
    rng = np.random.default_rng(seed)
    bg = _background(rng, h, w)
    body = _person(rng, h, w)
    g = _garment(rng, body, h, w)
    tex, alpha, flat_shade = _flat_garment(rng, g, h, w)
    flat_rgba = np.concatenate([tex, alpha[..., None]], axis=2)
    # per-clip appearance: wrinkle warp, fold shading, light on the person, camera
    amp = rng.uniform(0.01, 0.03) * g["scale"]
    wr = [_smooth_noise(rng, h, w, 5, 2) * amp for _ in range(2)]
    fold = [_smooth_noise(rng, h, w, int(rng.integers(4, 9))) for _ in range(2)]
    fold_amp, omega = rng.uniform(0.04, 0.1), rng.uniform(0.1, 0.3)
    phase = rng.uniform(0, 2 * math.pi)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    lx, ly = rng.uniform(-0.25, 0.25, 2)
    light = (1 + lx * (xs / w - 0.5) + ly * (ys / h - 0.5)).astype(np.float32)
    gain = rng.uniform(0.75, 1.15) * np.exp(rng.normal(0, 0.06, 3)).astype(np.float32)
    flicker = 1 + rng.normal(0, 0.015, t)
    noise_sigma = rng.uniform(0.004, 0.025)
    blur = rng.uniform(0.4, 0.8) * min(h, w) / 128 if rng.random() < 0.5 else 0.0

    out_frames = np.empty((t, h, w, 3), np.float32)
    person_masks = np.empty((t, h, w), np.float32)
    garment_masks = np.empty((t, h, w), np.float32)
    skel = []
    for i in range(t):
        j = _skeleton(body, float(i))
        skel.append(j)
        c, s = math.cos(omega * i + phase), math.sin(omega * i + phase)
        wrinkle = wr[0] * c + wr[1] * s
        folds = 1 + fold_amp * (fold[0] * c + fold[1] * s)
        img, person, gmask = _draw_frame(
            body, g, j, bg, flat_rgba, flat_shade, wrinkle, folds, light, (xs, ys)
        )
        img = img * (gain * flicker[i])
        if blur > 0:
            img = cv2.GaussianBlur(img, (0, 0), blur)
        img = img + rng.standard_normal((h, w, 3), np.float32) * noise_sigma
        out_frames[i] = np.clip(img, 0, 1)
        person_masks[i] = person
        garment_masks[i] = gmask
    clean, noisy = _keypoints(rng, skel, h, w, body["sw"])
    garment = np.concatenate([tex * alpha[..., None], alpha[..., None]], axis=2)
    return Clip(
        frames=torch.from_numpy(out_frames).permute(0, 3, 1, 2).contiguous(),  # (T, 3, H, W)
        keypoints=torch.from_numpy(noisy),  # (T, 18, 3)
        clean_keypoints=torch.from_numpy(clean),  # (T, 18, 3)
        person_mask=torch.from_numpy(person_masks).unsqueeze(1),  # (T, 1, H, W)
        garment_mask=torch.from_numpy(garment_masks).unsqueeze(1),  # (T, 1, H, W)
        garment=torch.from_numpy(np.ascontiguousarray(garment.transpose(2, 0, 1))),  # (4, H, W)
    )
