"""kernels.paste: every path against the float64 paste_ref, in place, strided, bad input, sharpness.

Tolerance: the paths compute in float32, the reference in float64, so a uint8 byte may differ by
1 where the float32 value lands on the other side of a rounding boundary; never by more.
"""

import importlib

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import kernels
from engine.errors import InputError
from kernels.paste import paste, paste_ref
from kernels.triton_mode import interpreter_requested

paste_module = importlib.import_module("kernels.paste")  # ``kernels.paste`` is the op itself

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
needs_triton = pytest.mark.skipif(
    DEVICE == "cpu" and not interpreter_requested(), reason="no CUDA and TRITON_INTERPRET != 1"
)
IMPLS = [
    "torch",
    pytest.param("opencv", marks=pytest.mark.skipif(DEVICE != "cpu", reason="OpenCV: CPU only")),
    pytest.param("triton", marks=needs_triton),
]


def _frame(height, width, gen, layout="contig"):
    """(H, W, 3) uint8 frame: contiguous, a slice of a bigger numpy array, or a planar buffer
    seen as HWC (channel stride H * W)."""
    if layout == "slice":
        big = torch.randint(0, 256, (height + 5, width + 7, 3), generator=gen, dtype=torch.uint8)
        frame = torch.from_numpy(big.numpy())[2 : 2 + height, 3 : 3 + width]
    elif layout == "planar":
        planes = torch.randint(0, 256, (3, height, width), generator=gen, dtype=torch.uint8)
        frame = planes.permute(1, 2, 0)
    else:
        frame = torch.randint(0, 256, (height, width, 3), generator=gen, dtype=torch.uint8)
    return frame.to(DEVICE)


def _inputs(frame_hw, model_hw, garment_hw, *, seed=0, layout="contig"):
    """frame, rendered, cloth_mask, keep_mask, garment, grid; masks include exact 0s and 1s,
    the grid reaches past the garment (zero padding) on every side."""
    gen = torch.Generator().manual_seed(seed)
    (H, W), (h, w), (hg, wg) = frame_hw, model_hw, garment_hw
    frame = _frame(H, W, gen, "slice" if layout == "strided" else "contig")

    def mask():
        m = torch.rand(1, 1, h, w, generator=gen)
        return torch.where(m < 0.15, 0.0, torch.where(m > 0.85, 1.0, m))

    rendered = torch.rand(1, 3, h, w, generator=gen)
    cloth_mask, keep_mask = mask(), mask()
    garment = torch.rand(4, hg, wg, generator=gen)
    garment[:3] *= garment[3:]  # premultiplied
    grid = torch.rand(1, h, w, 2, generator=gen) * 2.6 - 1.3
    if layout == "strided":  # channels-last images, strided masks, planar grid, HWC garment
        rendered = rendered.contiguous(memory_format=torch.channels_last)
        cloth_mask = torch.cat((cloth_mask, cloth_mask), dim=3)[..., ::2]
        keep_mask = keep_mask.contiguous(memory_format=torch.channels_last)
        grid = grid.permute(0, 3, 1, 2).contiguous().permute(0, 2, 3, 1)
        garment = garment.permute(1, 2, 0).contiguous().permute(2, 0, 1)
    return frame, *(x.to(DEVICE) for x in (rendered, cloth_mask, keep_mask, garment, grid))


def _outside(frame, box):
    """Bool (H, W) mask of the pixels outside the box."""
    x0, y0, bw, bh = box
    H, W = frame.shape[:2]
    ys, xs = torch.arange(H)[:, None], torch.arange(W)[None, :]
    return ~((ys >= y0) & (ys < y0 + bh) & (xs >= x0) & (xs < x0 + bw))


CASES = {
    # name: (frame (H, W), box (x0, y0, bw, bh), model (h, w), garment (Hg, Wg), layout)
    "inside-upsample": ((24, 31), (4, 3, 22, 17), (7, 5), (13, 9), "contig"),
    "odd-downsample": ((19, 23), (2, 1, 9, 7), (11, 13), (5, 7), "contig"),
    "past-left-top": ((20, 26), (-9, -6, 21, 17), (6, 8), (30, 22), "contig"),
    "past-right-bottom": ((20, 26), (15, 11, 21, 17), (6, 8), (4, 3), "contig"),
    "past-every-side": ((13, 17), (-5, -4, 29, 23), (9, 7), (11, 11), "contig"),
    "far-above-below": ((12, 40), (3, -60, 20, 140), (8, 6), (9, 9), "contig"),
    "far-left-right": ((40, 12), (-70, 5, 160, 18), (6, 8), (9, 9), "contig"),
    "one-pixel-box": ((9, 11), (4, 6, 1, 1), (5, 4), (7, 6), "contig"),
    "one-pixel-visible": ((9, 11), (-2, -2, 3, 3), (5, 4), (7, 6), "contig"),
    "one-column-visible": ((9, 11), (-20, -15, 21, 30), (5, 4), (7, 6), "contig"),
    "one-row-visible": ((9, 11), (-3, -20, 10, 21), (5, 4), (7, 6), "contig"),
    "several-strips": ((200, 260), (-12, -40, 251, 303), (16, 12), (41, 29), "contig"),
    "model-1x1": ((10, 12), (1, 2, 8, 6), (1, 1), (1, 1), "contig"),
    "strided-channels-last": ((21, 25), (-3, 5, 19, 20), (6, 7), (8, 10), "strided"),
    "fully-left": ((10, 12), (-8, 2, 8, 5), (4, 4), (5, 5), "contig"),
    "fully-right": ((10, 12), (12, 2, 8, 5), (4, 4), (5, 5), "contig"),
    "fully-above": ((10, 12), (2, -5, 8, 5), (4, 4), (5, 5), "contig"),
    "fully-below": ((10, 12), (2, 10, 8, 5), (4, 4), (5, 5), "contig"),
}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", list(CASES))
def test_matches_ref_in_place_and_outside_untouched(case, impl):
    frame_hw, box, model_hw, garment_hw, layout = CASES[case]
    frame, *rest = _inputs(frame_hw, model_hw, garment_hw, layout=layout)
    before = frame.clone()
    ref = paste_ref(frame, box, *rest)
    assert torch.equal(frame, before)  # the reference returns a new frame
    out = paste(frame, box, *rest, impl=impl)
    assert out is frame
    diff = (out.cpu().int() - ref.cpu().int()).abs()
    assert diff.max() <= 1, f"max diff {diff.max()}"
    outside = _outside(before.cpu(), box)
    assert torch.equal(out.cpu()[outside], before.cpu()[outside])  # bit for bit
    if outside.all():
        assert torch.equal(out.cpu(), before.cpu())
    else:  # the case pastes something (a vacuous test would pass the checks above)
        assert not torch.equal(ref.cpu()[~outside], before.cpu()[~outside])


@pytest.mark.parametrize("impl", IMPLS)
def test_planar_frame_view_is_written_through_its_strides(impl):
    gen = torch.Generator().manual_seed(3)
    frame = _frame(14, 18, gen, "planar")
    _, *rest = _inputs((14, 18), (5, 6), (9, 8), seed=3)
    ref = paste_ref(frame, (2, -1, 13, 12), *rest)
    storage = frame.permute(2, 0, 1)  # the planar buffer behind the view
    paste(frame, (2, -1, 13, 12), *rest, impl=impl)
    assert (storage.permute(1, 2, 0).int() - ref.int()).abs().max() <= 1


def test_ref_matches_torch_grid_sample_formulation():
    # An independent check of the reference itself: F.interpolate of the model maps to the whole
    # box, then F.grid_sample of the garment, blended in float64.
    frame, rendered, cm, km, garment, grid = _inputs((16, 20), (6, 5), (10, 7), seed=5)
    box = (-3, 2, 17, 13)
    ref = paste_ref(frame, box, rendered, cm, km, garment, grid)
    maps = torch.cat((rendered, cm, km, grid.permute(0, 3, 1, 2)), dim=1).double()
    up = F.interpolate(maps, size=(13, 17), mode="bilinear", align_corners=False)[0]
    where = up[5:7].permute(1, 2, 0)[None]  # (1, 13, 17, 2)
    cloth = F.grid_sample(garment[None, :3].double(), where, align_corners=False)[0]
    bg = frame[2:15, 0:14].permute(2, 0, 1).double() / 255
    up, cloth = up[:, :, 3:], cloth[:, :, 3:]  # the box columns inside the frame
    out = (1 - up[4:5]) * (up[3:4] * cloth + (1 - up[3:4]) * up[:3]) + up[4:5] * bg
    expected = torch.floor(out * 255 + 0.5).clamp(0, 255).permute(1, 2, 0)
    assert (ref[2:15, 0:14].double() - expected).abs().max() <= 1


def test_opencv_resize_orders_all_match_the_full_resize(monkeypatch):
    # The OpenCV path resizes the whole box, or one axis first when the cut is large: each order
    # must agree with the reference (the cases above), and each must actually be taken.
    sizes = []
    real_resize = cv2.resize
    monkeypatch.setattr(cv2, "resize", lambda src, dsize, **k: sizes.append(dsize) or
                        real_resize(src, dsize, **k))  # fmt: skip
    model = (8, 6)
    for box, frame_hw in (((3, 2, 20, 14), (24, 30)), ((3, -60, 20, 140), (12, 40)),
                          ((-70, 5, 160, 18), (40, 12))):  # fmt: skip
        frame, *rest = _inputs(frame_hw, model, (9, 9), seed=7)
        ref = paste_ref(frame, box, *rest)
        paste(frame, box, *rest, impl="opencv")
        assert (frame.int() - ref.int()).abs().max() <= 1
    # full box (20, 14); rows first: (w, bh) = (6, 140); columns first: (bw, h) = (160, 8)
    assert (20, 14) in sizes and (6, 140) in sizes and (160, 8) in sizes


@pytest.mark.parametrize(
    "box, frame_hw",
    [((3, 2, 20, 14), (24, 30)), ((3, -60, 20, 140), (12, 40)), ((-70, 5, 160, 18), (40, 12))],
    ids=["full", "rows-first", "columns-first"],
)
@pytest.mark.parametrize("shaded", [False, True], ids=["plain", "shaded"])
def test_opencv_strips_are_bit_identical_to_one_pass(monkeypatch, box, frame_hw, shaded):
    # The OpenCV path works through the box in strips of rows (the last one shorter); one row
    # per strip must give the very bytes of one strip for the whole box, in every resize order.
    frame, *rest = _inputs(frame_hw, (8, 6), (9, 9), seed=17)
    gen = torch.Generator().manual_seed(18)
    shading = torch.rand(1, 1, 8, 6, generator=gen) * 0.8 + 0.6 if shaded else None
    ref = paste_ref(frame, box, *rest, shading=shading)
    out = []
    for pixels in (1, 3 * box[2] + 5, 2**30):  # a row per strip, 3 or more, every row
        monkeypatch.setattr(paste_module, "_STRIP_PIXELS", pixels)
        out.append(paste(frame.clone(), box, *rest, shading=shading, impl="opencv"))
    assert torch.equal(out[0], out[2]) and torch.equal(out[1], out[2])
    assert (out[0].int() - ref.int()).abs().max() <= 1


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("garment_hw", [(1, 1), (2, 3), (9, 7)])
def test_positions_far_outside_the_garment_sample_zeros(impl, garment_hw):
    # A grid reaching far past the texture on every side (positions clamped by the OpenCV
    # path), and exactly onto its edges: the taps outside are 0, as grid_sample's zero padding.
    frame, rendered, cm, km, garment, _ = _inputs((14, 16), (6, 5), garment_hw, seed=19)
    gen = torch.Generator().manual_seed(20)
    grid = torch.rand(1, 6, 5, 2, generator=gen) * 12 - 6
    grid[0, 0, :, 0], grid[0, 1, :, 1] = -1.0, 1.0  # the texture's outer edges
    grid[0, 2, :2] = torch.tensor([[-1 - 1 / garment_hw[1], 1 + 1 / garment_hw[0]]] * 2)
    cm, km = torch.ones_like(cm), torch.zeros_like(km)  # all garment: the taps decide
    args = [x.to(DEVICE) for x in (rendered, cm, km, garment, grid)]
    ref = paste_ref(frame, (-2, 1, 17, 12), *args)
    out = paste(frame.clone(), (-2, 1, 17, 12), *args, impl=impl)
    assert (out.cpu().int() - ref.cpu().int()).abs().max() <= 1


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    "box, blob",
    [
        ((3, 2, 31, 25), (3, 5, 2, 4)),  # upsampled: a blob of keep < 1 inside the model grid
        ((-6, -4, 31, 25), (0, 2, 0, 1)),  # at the model's top-left corner, box past the frame
        ((3, 2, 31, 25), (8, 9, 5, 6)),  # at the bottom-right corner (clamped taps)
        ((2, 3, 7, 5), (4, 5, 2, 3)),  # downsampled (box smaller than the model)
    ],
)
def test_pixels_whose_keep_taps_are_all_one_stay_bit_identical(impl, box, blob):
    # The OpenCV path only computes where the upsampled keep mask can be below 1: everywhere
    # else the frame must stay exactly as it was (the reference gives frame there), and inside
    # the reach of the blob the result must still match the reference.
    frame, rendered, cm, km, garment, grid = _inputs((30, 36), (9, 6), (8, 7), seed=11)
    r0, r1, c0, c1 = blob
    km = torch.ones_like(km)
    km[..., r0 : r1 + 1, c0 : c1 + 1] = 0.25
    before = frame.clone()
    ref = paste_ref(frame, box, rendered, cm, km, garment, grid)
    paste(frame, box, rendered, cm, km, garment, grid, impl=impl)
    assert (frame.cpu().int() - ref.cpu().int()).abs().max() <= 1
    same = (ref.cpu() == before.cpu()).all(-1)
    assert torch.equal(frame.cpu()[same], before.cpu()[same])
    assert not same.all()  # the blob changed something


@pytest.mark.parametrize("impl", IMPLS)
def test_keep_everywhere_leaves_the_frame_alone(impl):
    frame, rendered, cm, km, garment, grid = _inputs((20, 24), (6, 5), (8, 7), seed=12)
    before = frame.clone()
    paste(frame, (-3, 2, 22, 15), rendered, cm, torch.ones_like(km), garment, grid, impl=impl)
    assert torch.equal(frame, before)


def test_opencv_garment_changed_in_place_is_sampled_anew():
    # The OpenCV path keeps the garment's padded texture between calls: an in-place change of
    # the same tensor (or another tensor) must be seen.
    frame, rendered, cm, km, garment, grid = _inputs((16, 18), (5, 6), (9, 8), seed=13)
    cm = torch.ones_like(cm)
    km = torch.zeros_like(km)
    box = (1, 2, 14, 12)
    for change in (None, "in-place", "new tensor"):
        if change == "in-place":
            garment[:3] = 1.0 - garment[:3]
        elif change == "new tensor":
            garment = garment.flip(2).contiguous()
        out = frame.clone()
        paste(out, box, rendered, cm, km, garment, grid, impl="opencv")
        ref = paste_ref(frame, box, rendered, cm, km, garment, grid)
        assert (out.int() - ref.int()).abs().max() <= 1, change


def test_auto_is_opencv_on_cpu_and_agrees():
    frame, *rest = _inputs((16, 16), (5, 5), (6, 6), seed=2)
    a, b = frame.clone(), frame.clone()
    paste(a, (1, 1, 12, 13), *rest)
    paste(b, (1, 1, 12, 13), *rest, impl="torch" if DEVICE == "cuda" else "opencv")
    assert torch.equal(a, b) if DEVICE == "cpu" else (a.int() - b.int()).abs().max() <= 1


def test_registered_op_mutates_the_frame():
    frame, *rest = _inputs((12, 14), (4, 5), (6, 6), seed=4)
    ref = paste_ref(frame, (2, 1, 9, 10), *rest)
    assert torch.ops.tryon.paste(frame, [2, 1, 9, 10], *rest, impl="torch") is None
    assert (frame.int() - ref.int()).abs().max() <= 1
    assert kernels.paste is paste and kernels.paste_ref is paste_ref
    op, args = torch.ops.tryon.paste.default, (frame, [2, 1, 9, 10], *rest)
    checks = ("test_schema", "test_faketensor")
    torch.library.opcheck(op, args, {"impl": "torch"}, test_utils=checks)


BAD = [
    ("frame", lambda a: a["frame"].float()),
    ("frame", lambda a: a["frame"][..., :2]),
    ("frame", lambda a: a["frame"][0]),
    ("frame", lambda a: a["frame"][:1, :1].expand(4, 4, 3)),
    ("box", lambda a: (1, 2, 3)),
    ("box", lambda a: (1, 2, 0, 4)),
    ("box", lambda a: (1, 2, 4, -1)),
    ("box", lambda a: (1.0, 2, 4, 4)),
    ("box", lambda a: (True, 2, 4, 4)),
    ("box", lambda a: "1234"),
    ("box", lambda a: (2**31, 0, 4, 4)),
    ("rendered", lambda a: a["rendered"].double()),
    ("rendered", lambda a: a["rendered"][:, :2]),
    ("rendered", lambda a: torch.cat((a["rendered"], a["rendered"]))),
    ("cloth_mask", lambda a: a["cloth_mask"][..., :-1]),
    ("cloth_mask", lambda a: a["cloth_mask"] * 2),
    ("keep_mask", lambda a: a["keep_mask"].half()),
    ("keep_mask", lambda a: a["keep_mask"] - 1),
    ("keep_mask", lambda a: a["keep_mask"] * float("nan")),
    ("garment", lambda a: a["garment"][:3]),
    ("garment", lambda a: a["garment"][None]),
    ("garment", lambda a: a["garment"][:, :0]),
    ("grid", lambda a: a["grid"][..., :1]),
    ("grid", lambda a: a["grid"].permute(0, 2, 1, 3)),
    ("grid", lambda a: a["grid"].to("meta")),
    ("impl", lambda a: "cuda"),
]


@pytest.mark.parametrize("name, make", BAD, ids=[f"{n}-{i}" for i, (n, _) in enumerate(BAD)])
def test_bad_arguments_raise_before_the_frame_changes(name, make):
    frame, rendered, cm, km, garment, grid = _inputs((10, 12), (5, 4), (6, 6), seed=9)
    args = dict(frame=frame, box=(1, 1, 8, 7), rendered=rendered, cloth_mask=cm, keep_mask=km,
                garment=garment, grid=grid, impl="auto")  # fmt: skip
    before = frame.clone()
    args[name] = make(args)
    with pytest.raises(InputError) as info:
        paste(**args)
    assert info.value.argument == name
    assert torch.equal(frame, before)


def _laplacian_variance(region):
    gray = cv2.cvtColor(np.ascontiguousarray(region), cv2.COLOR_RGB2GRAY)
    return cv2.Laplacian(gray.astype(np.float64), cv2.CV_64F).var()


@pytest.mark.parametrize("impl", IMPLS)
def test_full_resolution_garment_is_sharper_than_upsampling_the_model_size_warp(impl):
    # Stripes 2 garment pixels wide; the model is 32 x 24, the box 4x that (128 x 96), the
    # garment texture as large as the box. Today's paste warps the garment at model size and
    # upsamples the result with cv2.resize: the stripes are gone.
    h, w, hg, wg = 32, 24, 128, 96
    garment = torch.zeros(4, hg, wg)
    garment[3] = 1.0
    garment[:3, :, (torch.arange(wg) // 2) % 2 == 0] = 1.0  # vertical stripes, 2 px
    ys, xs = torch.meshgrid(torch.linspace(-0.95, 0.95, h), torch.linspace(-0.95, 0.95, w),
                            indexing="ij")  # fmt: skip
    grid = torch.stack((xs + 0.02 * torch.sin(3 * ys), ys), dim=-1)[None]  # (1, h, w, 2)
    rendered = torch.full((1, 3, h, w), 0.5)
    cloth_mask, keep_mask = torch.ones(1, 1, h, w), torch.zeros(1, 1, h, w)
    frame = torch.zeros(140, 110, 3, dtype=torch.uint8)
    box = (5, 6, 4 * w, 4 * h)
    args = [x.to(DEVICE) for x in (rendered, cloth_mask, keep_mask, garment, grid)]
    sharp = paste(frame.to(DEVICE), box, *args, impl=impl).cpu().numpy()[6:134, 5:101]

    # (3, h, w): the garment warped at model size
    warped = F.grid_sample(garment[None, :3], grid, mode="bilinear", align_corners=False)[0]
    today = cv2.resize(warped.permute(1, 2, 0).numpy(), (4 * w, 4 * h),
                       interpolation=cv2.INTER_LINEAR)  # fmt: skip
    today = np.clip(np.floor(today * 255 + 0.5), 0, 255).astype(np.uint8)
    assert _laplacian_variance(sharp) >= 2 * _laplacian_variance(today)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", ["inside-upsample", "past-left-top", "strided-channels-last"])
def test_shading_matches_ref_and_darkens_the_garment(case, impl):
    frame_hw, box, model_hw, garment_hw, layout = CASES[case]
    frame, *rest = _inputs(frame_hw, model_hw, garment_hw, layout=layout)
    h, w = model_hw
    gen = torch.Generator().manual_seed(9)
    shading = (torch.rand(1, 1, h, w, generator=gen) * 0.8 + 0.6).to(DEVICE)  # [0.6, 1.4]
    if layout == "strided":
        shading = torch.cat((shading, shading), dim=3)[..., ::2]
    ref = paste_ref(frame, box, *rest, shading=shading)
    out = paste(frame.clone(), box, *rest, shading=shading, impl=impl)
    assert (out.cpu().int() - ref.cpu().int()).abs().max() <= 1
    # a uniform 0.5 shading on an all-garment paste halves the garment (oracle by hand)
    frame2 = torch.zeros(8, 8, 3, dtype=torch.uint8, device=DEVICE)
    ones = torch.ones(1, 1, 2, 2, device=DEVICE)
    garment = torch.ones(4, 4, 4, device=DEVICE)  # white, opaque
    grid = torch.zeros(1, 2, 2, 2, device=DEVICE)  # the garment's centre everywhere
    half = paste(frame2, (0, 0, 8, 8), torch.zeros(1, 3, 2, 2, device=DEVICE), ones, ones * 0,
                 garment, grid, shading=ones * 0.5, impl=impl)  # fmt: skip
    assert (half.cpu() == 128).all()  # floor(0.5 * 255 + 0.5)


def test_bad_shading_is_named():
    frame, *rest = _inputs((20, 30), (8, 6), (10, 10))
    for bad in (
        torch.ones(1, 1, 8, 5),
        torch.full((1, 1, 8, 6), 9.0),
        torch.ones(1, 1, 8, 6).double(),
    ):
        with pytest.raises(InputError) as info:
            paste(frame, (0, 0, 10, 10), *rest, shading=bad.to(DEVICE))
        assert info.value.argument == "shading"
