import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import engine.inputs.garment as garment_module
from engine.errors import InputError
from engine.inputs.garment import (
    GARMENT_POINTS,
    body_anchor_points,
    garment_keypoints,
    garment_mask,
    tps_grid,
    warp_garment,
)

HG = WG = 128
H, W = 256, 192

# A t-shirt, person's right on the image left: (x, y) polygon vertices.
TSHIRT = {
    "collar_right": (52, 10), "neck": (64, 18), "collar_left": (76, 10),
    "shoulder_left": (92, 16), "cuff_left_top": (120, 40), "cuff_left_bottom": (110, 52),
    "armpit_left": (92, 44), "hem_left": (92, 120), "hem_right": (36, 120),
    "armpit_right": (36, 44), "cuff_right_bottom": (18, 52), "cuff_right_top": (8, 40),
    "shoulder_right": (36, 16),
}  # fmt: skip
EXPECTED = {
    **{k: v for k, v in TSHIRT.items() if k in GARMENT_POINTS},
    "sleeve_right": (13, 46),  # cuff centres
    "sleeve_left": (115, 46),
}
# A sleeveless top: straps and armholes.
TANK = [(50, 10), (64, 26), (78, 10), (86, 10), (86, 30), (96, 44), (96, 120), (32, 120), (32, 44),
        (42, 30), (42, 10)]  # fmt: skip


def _silhouette(poly) -> np.ndarray:
    mask = np.zeros((HG, WG), np.uint8)
    cv2.fillPoly(mask, [np.array(poly, np.int32)], 1)
    return mask


def _rgba(mask: np.ndarray, color=(0.8, 0.2, 0.3)) -> torch.Tensor:
    alpha = torch.from_numpy(mask).float()
    rgb = torch.tensor(color)[:, None, None] * alpha
    return torch.cat([rgb, alpha[None]])


def _on_white(mask: np.ndarray, color=(0.2, 0.3, 0.7)) -> torch.Tensor:
    inside = torch.from_numpy(mask).bool()
    rgb = torch.ones(3, HG, WG)
    for c in range(3):
        rgb[c][inside] = color[c]
    return torch.cat([rgb, torch.ones(1, HG, WG)])


def _pose(points: dict[int, tuple[float, float]]) -> torch.Tensor:
    kp = torch.zeros(18, 3)
    for k, (x, y) in points.items():
        kp[k] = torch.tensor([x, y, 1.0])
    return kp


BODY = {0: (96, 40), 1: (96, 60), 2: (76, 62), 3: (70, 100), 4: (66, 135), 5: (116, 62),
        6: (122, 100), 7: (126, 135), 8: (82, 150), 11: (110, 150)}  # fmt: skip
FULL = _pose(BODY)
TSHIRT_MASK = _silhouette(list(TSHIRT.values()))


@pytest.mark.parametrize("make", [_rgba, _on_white], ids=["alpha", "rgb-on-white"])
def test_garment_keypoints_on_tshirt(make):
    pts = garment_keypoints(make(TSHIRT_MASK))
    assert pts.shape == (len(GARMENT_POINTS), 2) and pts.dtype == torch.float32
    for name, (x, y) in EXPECTED.items():
        found = pts[GARMENT_POINTS.index(name)]
        dist = float(torch.linalg.vector_norm(found - torch.tensor([x + 0.5, y + 0.5])))
        assert dist <= 2.5, (name, found.tolist(), (x, y))


def test_garment_keypoints_mirror_symmetric():
    pts = garment_keypoints(_rgba(TSHIRT_MASK))
    flipped = garment_keypoints(_rgba(np.ascontiguousarray(TSHIRT_MASK[:, ::-1])))
    other = {"right": "left", "left": "right"}
    swap = [GARMENT_POINTS.index(n.rsplit("_", 1)[0] + "_" + other[n.rsplit("_", 1)[1]])
            for n in GARMENT_POINTS]  # fmt: skip
    mirrored = flipped[swap]
    mirrored[:, 0] = WG - mirrored[:, 0]
    assert torch.allclose(mirrored, pts, atol=1.5)


def test_garment_keypoints_sleeveless():
    pts = garment_keypoints(_rgba(_silhouette(TANK)))
    p = dict(zip(GARMENT_POINTS, pts.tolist(), strict=True))
    assert abs(p["hem_right"][0] - 32.5) < 2.5 and abs(p["hem_left"][0] - 96.5) < 2.5
    assert abs(p["hem_right"][1] - 120.5) < 2.5
    # Shoulders on the straps, armpits in the armholes, sleeve ends at the sleeve roots.
    assert abs(p["shoulder_right"][0] - 42.5) < 2.5 and abs(p["shoulder_left"][0] - 86.5) < 2.5
    assert p["shoulder_right"][1] < 14 and p["shoulder_left"][1] < 14
    assert 25 < p["armpit_right"][1] < 48 and 25 < p["armpit_left"][1] < 48
    for side in ("right", "left"):
        root = np.add(p[f"shoulder_{side}"], p[f"armpit_{side}"]) / 2
        assert np.allclose(p[f"sleeve_{side}"], root, atol=1e-4)


def test_garment_mask_from_background_colour():
    mask = garment_mask(_on_white(TSHIRT_MASK))
    assert torch.equal(mask, torch.from_numpy(TSHIRT_MASK).float())
    assert torch.equal(garment_mask(_rgba(TSHIRT_MASK)), torch.from_numpy(TSHIRT_MASK).float())
    assert torch.equal(garment_mask(_on_white(TSHIRT_MASK)[:3]), mask)  # RGB input


@pytest.mark.parametrize(
    "garment",
    [torch.zeros(4, HG, WG), torch.ones(4, HG, WG), torch.ones(3, 16, 16)],
    ids=["alpha-empty", "plain-white", "rgb-plain"],
)
def test_garment_keypoints_empty_raises(garment):
    with pytest.raises(InputError) as info:
        garment_keypoints(garment)
    assert info.value.argument == "garment"


def test_body_anchor_points():
    pts, conf = body_anchor_points(FULL)
    assert pts.shape == (10, 2) and conf.shape == (10,)
    assert pts.dtype == conf.dtype == torch.float32
    assert (conf == 1.0).all()
    p = dict(zip(GARMENT_POINTS, pts.tolist(), strict=True))
    # Person's right is the image left; shoulders near the keypoints; hem near the hips.
    assert p["shoulder_right"][0] < p["collar_right"][0] < p["collar_left"][0]
    assert p["collar_left"][0] < p["shoulder_left"][0]
    assert abs(p["shoulder_right"][0] - 76) < 4 and abs(p["hem_left"][1] - 150) < 1
    assert 62 < p["armpit_right"][1] < 100
    # No elbows: sleeves have confidence 0; no hips: extrapolated with lower confidence.
    kp = FULL.clone()
    kp[[3, 6, 8, 11], 2] = 0.0
    pts2, conf2 = body_anchor_points(kp, height=H)
    assert conf2[4] == 0 and conf2[5] == 0 and 0 < conf2[8] < 1
    assert pts2[8, 1] == pytest.approx(62 + 1.6 * 40)
    # Batched, and no person.
    pts3, conf3 = body_anchor_points(torch.stack([FULL, torch.zeros(18, 3)]))
    assert pts3.shape == (2, 10, 2) and torch.equal(pts3[0], pts)
    assert not conf3[1].any()


def test_tps_grid_identity():
    pts = torch.tensor([[10.0, 12.0], [100.0, 20.0], [50.0, 90.0], [120.0, 120.0], [30.0, 60.0]])
    grid = tps_grid(pts, pts, HG, WG, HG, WG)
    ident = F.affine_grid(torch.eye(2, 3)[None], [1, 1, HG, WG], align_corners=False)
    assert grid.shape == (1, HG, WG, 2) and grid.dtype == torch.float32
    assert torch.allclose(grid, ident, atol=1e-5)
    image = torch.rand(1, 3, HG, WG)
    warped = F.grid_sample(image, grid, mode="bilinear", align_corners=False)
    assert torch.allclose(warped, image, atol=1e-3)


def test_tps_grid_maps_targets_onto_sources():
    src = garment_keypoints(_rgba(TSHIRT_MASK))
    tgt, _ = body_anchor_points(FULL)
    tgt = tgt.floor() + 0.5  # pixel centres, so the grid holds f(target) exactly
    grid = tps_grid(src, tgt, H, W, HG, WG, regularization=0.0)
    ij = tgt.floor().long()
    at = grid[0, ij[:, 1], ij[:, 0]]  # (10, 2), normalized source coordinates
    src_px = (at + 1) / 2 * torch.tensor([WG, HG])
    assert torch.allclose(src_px, src, atol=1e-2)


def _coordinate_garment() -> torch.Tensor:
    """RGBA whose red/green encode the pixel's own x/y, alpha = the t-shirt."""
    ys, xs = torch.meshgrid(torch.arange(HG) + 0.5, torch.arange(WG) + 0.5, indexing="ij")
    rgb = torch.stack([xs / WG, ys / HG, torch.zeros_like(xs)])
    return torch.cat([rgb, torch.from_numpy(TSHIRT_MASK).float()[None]])


def test_warp_garment_maps_landmarks_onto_anchors():
    garment = _coordinate_garment()
    gp = garment_keypoints(garment)
    cloth, cloth_mask = warp_garment(garment, gp, FULL, H, W)
    assert cloth.shape == (3, H, W) and cloth_mask.shape == (1, H, W)
    assert cloth.dtype == cloth_mask.dtype == torch.float32
    assert float(cloth.min()) >= 0 and float(cloth.max()) <= 1 and float(cloth_mask.max()) <= 1
    anchors, conf = body_anchor_points(FULL, height=H)
    for k, ((x, y), c) in enumerate(zip(anchors.tolist(), conf.tolist(), strict=True)):
        assert c > 0
        a = float(cloth_mask[0, int(y), int(x)])
        assert a > 0.1, GARMENT_POINTS[k]  # the landmark lands inside the warped garment
        decoded = cloth[:2, int(y), int(x)] / a * torch.tensor([WG, HG])
        assert float(torch.linalg.vector_norm(decoded - gp[k])) < 3.0, GARMENT_POINTS[k]
    # The warped garment sits on the torso.
    m = cloth_mask[0]
    ys, xs = torch.nonzero(m > 0.5, as_tuple=True)
    assert 82 < float(xs.float().mean()) < 110 and 62 < float(ys.float().mean()) < 150
    assert not m[:40].any() and not m[170:].any()


def test_warp_garment_rgb_on_white_uses_derived_mask():
    garment = _on_white(TSHIRT_MASK)
    gp = garment_keypoints(garment)
    cloth, cloth_mask = warp_garment(garment, gp, FULL, H, W)
    ref_cloth, ref_mask = warp_garment(_rgba(TSHIRT_MASK, (0.2, 0.3, 0.7)), gp, FULL, H, W)
    assert torch.allclose(cloth_mask, ref_mask, atol=1e-6)
    assert torch.allclose(cloth, ref_cloth, atol=1e-6)


def test_warp_garment_without_elbows_and_without_person():
    garment = _rgba(TSHIRT_MASK)
    gp = garment_keypoints(garment)
    kp = FULL.clone()
    kp[[3, 6], 2] = 0.0
    _, mask = warp_garment(garment, gp, kp, H, W)
    assert mask.any()
    cloth, mask = warp_garment(garment, gp, _pose({0: (96, 40)}), H, W)
    assert not cloth.any() and not mask.any()


G = _rgba(TSHIRT_MASK)
GP = torch.zeros(10, 2) + torch.arange(10.0)[:, None] * torch.tensor([3.0, 7.0])


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda: garment_keypoints(G.numpy()), "garment"),
        (lambda: garment_keypoints(G[:2]), "garment"),
        (lambda: garment_keypoints(G[None]), "garment"),
        (lambda: garment_keypoints((G * 255).to(torch.uint8)), "garment"),
        (lambda: body_anchor_points(FULL[:, :2]), "keypoints"),
        (lambda: body_anchor_points(FULL, height=0), "height"),
        (lambda: warp_garment(G[:2], GP, FULL, H, W), "garment"),
        (lambda: warp_garment(G, GP[:9], FULL, H, W), "garment_points"),
        (lambda: warp_garment(G, GP.long(), FULL, H, W), "garment_points"),
        (lambda: warp_garment(G, GP, FULL[None], H, W), "keypoints"),
        (lambda: warp_garment(G, GP, FULL, 0, W), "height"),
        (lambda: warp_garment(G, GP, FULL, H, -2), "width"),
        (lambda: tps_grid(GP, GP[:9], H, W, HG, WG), "target_points"),
        (lambda: tps_grid(GP[:2], GP[:2], H, W, HG, WG), "source_points"),
        (lambda: tps_grid(GP, GP, H, W, 0, WG), "src_height"),
        (lambda: tps_grid(GP, GP, H, W, HG, WG, regularization=-1.0), "regularization"),
    ],
)
def test_bad_input_raises(call, argument):
    with pytest.raises(InputError) as info:
        call()
    assert info.value.argument == argument


def _hanging_arms_body(elbow_dx: int):
    """A 256 x 192 person, arms hanging ``elbow_dx`` px out from the shoulders (negative: in
    front of the torso): grey frame, (18, 3) keypoints, (1, 1, H, W) silhouette."""
    from engine.keypoints import KEYPOINT_INDEX

    pts = {"nose": (96, 40), "neck": (96, 66), "right_eye": (90, 34), "left_eye": (102, 34),
           "right_shoulder": (66, 70), "left_shoulder": (126, 70),
           "right_elbow": (66 - elbow_dx, 130), "left_elbow": (126 + elbow_dx, 130),
           "right_wrist": (66 - elbow_dx, 185), "left_wrist": (126 + elbow_dx, 185),
           "right_hip": (76, 175), "left_hip": (116, 175)}  # fmt: skip
    kp = torch.zeros(18, 3)
    for name, (x, y) in pts.items():
        kp[KEYPOINT_INDEX[name]] = torch.tensor([x, y, 1.0])
    mask = np.zeros((256, 192), np.uint8)
    cv2.fillPoly(mask, [np.array([[62, 68], [130, 68], [122, 180], [70, 180]], np.int32)], 1)
    for side in ("right", "left"):
        s, e, w = (pts[f"{side}_{j}"] for j in ("shoulder", "elbow", "wrist"))
        cv2.line(mask, s, e, 1, 18)
        cv2.line(mask, e, w, 1, 14)
    cv2.circle(mask, pts["nose"], 18, 1, -1)
    cv2.rectangle(mask, (86, 50), (106, 70), 1, -1)
    person = torch.from_numpy(mask.astype(np.float32))[None, None]
    return torch.full((1, 3, 256, 192), 0.5), kp, person


def _folded_fraction(elbow_dx: int) -> float:
    """Fraction of the warped garment's pixels (alpha > 0.5, eroded) where the thin-plate warp
    folds over (its Jacobian determinant is not positive)."""
    from engine.inputs.frame_inputs import frame_inputs
    from engine.inputs.garment_image import load_garment_image
    from engine.sample_media import read_sample_garment

    garment = load_garment_image(read_sample_garment())
    frame, kp, person = _hanging_arms_body(elbow_dx)
    out = frame_inputs(frame, kp[None], garment.rgba, garment_points=garment.points,
                       person_mask=person)  # fmt: skip
    grid = out["garment_grid"][0].numpy().astype(np.float64)
    (gx_r, gx_c), (gy_r, gy_c) = np.gradient(grid[..., 0]), np.gradient(grid[..., 1])
    det = gx_c * gy_r - gx_r * gy_c
    alpha = (out["cloth"][0, 3].numpy() > 0.5).astype(np.uint8)
    inside = cv2.erode(alpha, np.ones((5, 5), np.uint8)).astype(bool)
    assert inside.sum() > 3000  # the garment is on the body
    return float((det[inside] <= 0).mean())


@pytest.mark.parametrize("elbow_dx", [-8, 0, 5])
def test_sleeves_of_hanging_arms_flare_instead_of_folding(elbow_dx, monkeypatch):
    # An arm hanging along the body (or in front of it) would put the sleeve's inner edge on
    # the garment's own side seam; the sleeve flares out at SLEEVE_MIN_ANGLE_DEG instead.
    flared = _folded_fraction(elbow_dx)
    monkeypatch.setattr(garment_module, "SLEEVE_MIN_ANGLE_DEG", 0.0)
    along_the_arm = _folded_fraction(elbow_dx)
    assert flared < 0.003 and along_the_arm > 3 * max(flared, 0.002), (flared, along_the_arm)
