import math

import pytest
import torch

from engine.errors import InputError
from kernels.composite import FEATHER_RADIUS_SIGMAS, composite, composite_ref, feather_ksize
from kernels.gaussian_weights import gaussian_weights
from kernels.triton_mode import interpreter_requested

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
# Interpreted, the kernel performs the reference's fp32 operations in the same order: bit-exact.
# Compiled, fused multiply-adds may move the last bits (and a uint8 byte by 1 at a tie).
EXACT = DEVICE == "cpu"
needs_triton = pytest.mark.skipif(
    DEVICE == "cpu" and not interpreter_requested(), reason="no CUDA and TRITON_INTERPRET != 1"
)

F16, F32, U8, BOOL = torch.float16, torch.float32, torch.uint8, torch.bool
NAMES = ("cloth", "rendered", "cloth_mask", "background", "background_mask")
# rule 7: max|out - fp64| <= 2 * max|torch in out dtype - fp64| + ATOL[out dtype]
ATOL = {F32: 1e-5, F16: 5e-4}


def _make(n, h, w, channels, dtype, layout, gen):
    """(n, channels, h, w) test tensor in [0, 1] (masks include exact 0s and 1s) in ``layout``."""
    if layout == "strided":  # every other row, shifted columns, of a bigger tensor
        base = torch.rand(n, channels, 2 * h, w + 3, generator=gen, dtype=torch.float64)
        x = base[:, :, ::2, 1 : w + 1]
    elif layout == "bcast":  # one frame expanded over the batch (stride 0)
        x = torch.rand(1, channels, h, w, generator=gen, dtype=torch.float64).expand(n, -1, -1, -1)
    else:
        x = torch.rand(n, channels, h, w, generator=gen, dtype=torch.float64)
    if channels == 1:
        x = torch.where(x < 0.15, 0.0, torch.where(x > 0.85, 1.0, x))
    if dtype == BOOL:
        x = x > 0.5
    elif layout in ("strided", "bcast"):
        x = x.to(dtype)  # keeps the strides
    else:
        x = x.to(dtype)
        if layout == "cl":
            x = x.contiguous(memory_format=torch.channels_last)
    return x.to(DEVICE)


def _inputs(n, h, w, dtypes, layouts, seed=0):
    gen = torch.Generator().manual_seed(seed)
    channels = (3, 3, 1, 3, 1)
    return tuple(
        _make(n, h, w, c, d, lay, gen) for c, d, lay in zip(channels, dtypes, layouts, strict=True)
    )


def _reflect(i, n):
    """Reflect-101 by bouncing, written independently of kernels.border."""
    if n == 1:
        return 0
    while i < 0 or i >= n:
        i = -i if i < 0 else 2 * (n - 1) - i
    return i


def _blur_matrix(n, feather):
    """(n, n) float64 matrix A with (A @ x) = reflect-101 Gaussian of x along that axis."""
    a = torch.zeros(n, n, dtype=torch.float64)
    if feather == 0:
        return torch.eye(n, dtype=torch.float64)
    taps = gaussian_weights(feather_ksize(feather), feather)
    r = len(taps) // 2
    for row in range(n):
        for j, t in enumerate(taps):
            a[row, _reflect(row + j - r, n)] += t
    return a


def _seed(inputs, feather, dtype):
    """The seed formula evaluated by plain torch in ``dtype`` (masks feathered in float64)."""
    cl, rd, cm, bg, bm = (x.cpu().to(torch.float64) for x in inputs)
    h, w = cl.shape[2:]
    ah, aw = _blur_matrix(h, feather), _blur_matrix(w, feather)
    cm, bm = (ah @ m @ aw.T for m in (cm, bm))
    cl, rd, cm, bg, bm = (x.to(dtype) for x in (cl, rd, cm, bg, bm))
    return (1 - bm) * (cm * cl + (1 - cm) * rd) + bm * bg  # (N, 3, H, W)


def _as_nchw(out, out_layout):
    return out.permute(0, 3, 1, 2) if out_layout == "nhwc" else out


ALL16, ALL32 = (F16,) * 5, (F32,) * 5
CONTIG = ("contig",) * 5
CASES = {
    # name: ((N, H, W), dtypes, layouts, feather, out_dtype, out_layout)
    "1x1-fp32": ((1, 1, 1), ALL32, CONTIG, 0.0, None, "nchw"),
    "odd-fp16": ((2, 5, 7), ALL16, CONTIG, 0.0, None, "nchw"),
    "h1-cl-feather": ((1, 1, 23), ALL32, ("cl", "contig", "cl", "cl", "contig"), 0.8, F32, "nhwc"),
    "w1-feather-u8": ((2, 17, 1), ALL16, CONTIG, 1.5, U8, "nhwc"),
    "mixed-dtypes-strided": (
        (2, 9, 13),
        (F32, F16, F16, F32, F32),
        ("strided", "cl", "bcast", "contig", "strided"),
        1.0,
        U8,
        "nhwc",
    ),
    "kernel-wider-than-image": ((1, 3, 2), ALL32, CONTIG, 2.0, F16, "nchw"),
    "bool-masks": ((2, 6, 11), (F16, F32, BOOL, F16, BOOL), ("cl",) * 5, 0.5, U8, "nchw"),
    "cl-u8-nhwc": ((1, 16, 16), ALL16, ("cl",) * 5, 0.0, U8, "nhwc"),
    "fp16-in-fp32-out": ((2, 4, 9), ALL16, ("strided",) * 5, 0.0, F32, "nchw"),
}


@needs_triton
@pytest.mark.parametrize("case", list(CASES))
def test_triton_matches_ref(case):
    (n, h, w), dtypes, layouts, feather, out_dtype, out_layout = CASES[case]
    inputs = _inputs(n, h, w, dtypes, layouts)
    kw = dict(feather=feather, out_dtype=out_dtype, out_layout=out_layout)
    out = composite(*inputs, **kw, impl="triton")
    ref = composite_ref(*inputs, **kw)
    assert out.shape == ref.shape and out.dtype == ref.dtype and out.is_contiguous()
    if EXACT:
        assert torch.equal(out, ref)
    else:
        atol = 1 if out.dtype == U8 else 1e-5 if out.dtype == F32 else 1e-3
        torch.testing.assert_close(out.float(), ref.float(), rtol=0, atol=atol)


@pytest.mark.parametrize("impl", ["torch", pytest.param("triton", marks=needs_triton)])
@pytest.mark.parametrize("case", list(CASES))
def test_matches_float64_seed(case, impl):
    (n, h, w), dtypes, layouts, feather, out_dtype, out_layout = CASES[case]
    inputs = _inputs(n, h, w, dtypes, layouts, seed=1)
    out = composite(*inputs, feather=feather, out_dtype=out_dtype, out_layout=out_layout, impl=impl)
    out = _as_nchw(out, out_layout).cpu()
    ref64 = _seed(inputs, feather, torch.float64)
    if out.dtype == U8:
        expected = torch.floor(ref64.clamp(0, 1) * 255 + 0.5)
        assert (out.double() - expected).abs().max() <= 1
        return
    torch_err = (_seed(inputs, feather, out.dtype).double() - ref64).abs().max()
    err = (out.double() - ref64).abs().max()
    assert err <= 2 * torch_err + ATOL[out.dtype], (err, torch_err)


@pytest.mark.parametrize("impl", ["torch", pytest.param("triton", marks=needs_triton)])
@pytest.mark.parametrize("out_layout", ["nchw", "nhwc"])
@pytest.mark.parametrize("out_dtype", [None, F16, F32, U8])
def test_output_shape_dtype_layout_and_fresh(out_dtype, out_layout, impl):
    inputs = _inputs(2, 3, 5, (F32, F16, F32, F32, F32), CONTIG)
    out = composite(*inputs, out_dtype=out_dtype, out_layout=out_layout, impl=impl)
    assert out.shape == ((2, 3, 3, 5) if out_layout == "nchw" else (2, 3, 5, 3))
    assert out.dtype == (F16 if out_dtype is None else out_dtype)  # None -> rendered's dtype
    assert out.is_contiguous()
    for x in inputs:
        assert out.untyped_storage().data_ptr() != x.untyped_storage().data_ptr()
    nchw = composite(*inputs, out_dtype=out_dtype, impl=impl)
    assert torch.equal(_as_nchw(out, out_layout), nchw)


@pytest.mark.parametrize("impl", ["torch", pytest.param("triton", marks=needs_triton)])
def test_masks_select_sources(impl):
    """Exact 0/1 masks pick exactly one source (no feathering)."""
    cl, rd, cm, bg, bm = _inputs(1, 4, 6, ALL32, CONTIG)
    ones, zeros = torch.ones_like(cm), torch.zeros_like(cm)
    assert torch.equal(composite(cl, rd, ones, bg, zeros, impl=impl), cl)
    assert torch.equal(composite(cl, rd, zeros, bg, zeros, impl=impl), rd)
    assert torch.equal(composite(cl, rd, cm, bg, ones, impl=impl), bg)


@pytest.mark.parametrize("impl", ["torch", pytest.param("triton", marks=needs_triton)])
def test_uint8_rounds_half_up_and_clamps(impl):
    values = torch.tensor([-0.5, 0.0, 0.5 / 255, 1.5 / 255, 2.5 / 255, 0.5, 1.0, 1.5])
    img = values.reshape(1, 1, 1, 8).expand(1, 3, 1, 8).to(DEVICE)
    zeros = torch.zeros(1, 1, 1, 8, device=DEVICE)
    out = composite(img, img, zeros, img, zeros, out_dtype=U8, impl=impl)
    expected = torch.floor(values * 255 + 0.5).clamp(0, 255).to(U8)
    assert torch.equal(out[0, 0, 0].cpu(), expected)


def test_feather_kernel_size():
    assert feather_ksize(1.0) == 2 * math.ceil(FEATHER_RADIUS_SIGMAS * 1.0) + 1 == 7
    assert feather_ksize(0.1) == 3
    assert feather_ksize(2.0) == 13


@pytest.mark.parametrize("impl", ["torch", pytest.param("triton", marks=needs_triton)])
def test_auto_matches_explicit(impl):
    inputs = _inputs(1, 5, 4, ALL16, CONTIG)
    auto = composite(*inputs, feather=0.7, out_dtype=U8, out_layout="nhwc")
    explicit = composite(*inputs, feather=0.7, out_dtype=U8, out_layout="nhwc", impl=impl)
    # auto is OpenCV on CPU and the Triton kernel on CUDA: within one uint8 step of either
    torch.testing.assert_close(auto.float(), explicit.float(), rtol=0, atol=1)


@pytest.mark.skipif(DEVICE != "cpu", reason="the OpenCV path takes CPU tensors")
@pytest.mark.parametrize(
    "n,h,w,feather",
    [(1, 1, 1, 0.0), (1, 1, 7, 0.8), (2, 5, 4, 0.7), (1, 9, 13, 2.0), (3, 17, 11, 1.3),
     (1, 4, 40, 3.0), (1, 31, 24, 0.0)],
)  # fmt: skip
@pytest.mark.parametrize("layouts", [CONTIG, ("cl", "contig", "strided", "cl", "bcast")])
def test_opencv_path_matches_reference(n, h, w, feather, layouts):
    """OpenCV feathers the masks (its own summation order), the blend is the reference's:
    floats within a few fp32 ulps, uint8 bytes within one step, and nearly all equal."""
    for seed, dtypes in enumerate([(F32, F32, F32, F32, F32), (F16, F32, BOOL, F16, F32)]):
        inputs = _inputs(n, h, w, dtypes, layouts, seed=seed)
        ref = composite(*inputs, feather=feather, out_dtype=F32, impl="torch")
        got = composite(*inputs, feather=feather, out_dtype=F32, impl="opencv")
        torch.testing.assert_close(got, ref, rtol=0, atol=2e-6)
        ref8 = composite(*inputs, feather=feather, out_dtype=U8, out_layout="nhwc", impl="torch")
        got8 = composite(*inputs, feather=feather, out_dtype=U8, out_layout="nhwc", impl="opencv")
        diff = (got8.int() - ref8.int()).abs()
        assert int(diff.max()) <= 1 and float((diff > 0).float().mean()) < 0.02


def test_custom_op_matches_composite():
    inputs = _inputs(2, 3, 4, (F32, F16, F32, F16, BOOL), ("cl", "contig", "strided", "cl", "cl"))
    kw = dict(feather=0.6, out_dtype=U8, out_layout="nhwc", impl="torch")
    out = torch.ops.tryon.composite(*inputs, **kw)
    assert torch.equal(out, composite(*inputs, **kw))
    torch.library.opcheck(torch.ops.tryon.composite.default, inputs, kw)


@needs_triton
def test_custom_op_triton_path():
    inputs = _inputs(1, 3, 5, ALL16, CONTIG)
    kw = dict(feather=0.5, out_dtype=F32, out_layout="nchw")
    out = torch.ops.tryon.composite(*inputs, **kw, impl="triton")
    assert torch.equal(out, composite(*inputs, **kw, impl="triton"))


def _good():
    return dict(zip(NAMES, _inputs(2, 3, 4, ALL32, CONTIG), strict=True))


def _set(name, value):
    def mutate(args, kw):
        if name in args:
            args[name] = value(args) if callable(value) else value
        else:
            kw[name] = value

    return mutate


def _mask_with(value):
    def make(args):
        m = torch.full((2, 1, 3, 4), 0.5, device=DEVICE)
        m[1, 0, 2, 3] = value
        return m

    return make


BAD = {
    "cloth-not-tensor": ("cloth", _set("cloth", [[0.5]])),
    "cloth-rank3": ("cloth", _set("cloth", lambda a: a["cloth"][0])),
    "cloth-4-channels": ("cloth", _set("cloth", torch.rand(2, 4, 3, 4, device=DEVICE))),
    "cloth-empty": ("cloth", _set("cloth", torch.rand(2, 3, 0, 4, device=DEVICE))),
    "rendered-uint8": ("rendered", _set("rendered", torch.zeros(2, 3, 3, 4, dtype=U8))),
    "rendered-float64": ("rendered", _set("rendered", lambda a: a["rendered"].double())),
    "background-height": ("background", _set("background", torch.rand(2, 3, 4, 4))),
    "background-device": (
        "background",
        _set("background", torch.empty(2, 3, 3, 4, device="meta")),
    ),
    "cloth-mask-3-channels": ("cloth_mask", _set("cloth_mask", torch.rand(2, 3, 3, 4))),
    "cloth-mask-int": ("cloth_mask", _set("cloth_mask", torch.zeros(2, 1, 3, 4, dtype=U8))),
    "cloth-mask-above-1": ("cloth_mask", _set("cloth_mask", _mask_with(1.5))),
    "background-mask-negative": ("background_mask", _set("background_mask", _mask_with(-0.1))),
    "background-mask-nan": ("background_mask", _set("background_mask", _mask_with(math.nan))),
    "background-mask-batch": ("background_mask", _set("background_mask", torch.rand(1, 1, 3, 4))),
    "feather-negative": ("feather", _set("feather", -1.0)),
    "feather-nan": ("feather", _set("feather", math.nan)),
    "feather-inf": ("feather", _set("feather", math.inf)),
    "feather-str": ("feather", _set("feather", "1")),
    "feather-bool": ("feather", _set("feather", True)),
    "feather-too-wide": ("feather", _set("feather", 100.0)),
    "out-dtype-float64": ("out_dtype", _set("out_dtype", torch.float64)),
    "out-dtype-str": ("out_dtype", _set("out_dtype", "uint8")),
    "out-layout-upper": ("out_layout", _set("out_layout", "NHWC")),
    "out-layout-chw": ("out_layout", _set("out_layout", "chw")),
    "impl-unknown": ("impl", _set("impl", "cuda")),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_raises_naming_argument(case):
    argument, mutate = BAD[case]
    args, kw = _good(), {}
    mutate(args, kw)
    with pytest.raises(InputError) as info:
        composite(*args.values(), **kw)
    assert info.value.argument == argument
    assert str(info.value).startswith(f"{argument}: expected")


@pytest.mark.skipif(DEVICE != "cuda", reason="needs CUDA tensors")
def test_opencv_impl_rejected_for_cuda_tensors():
    with pytest.raises(InputError, match="impl"):
        composite(*_good().values(), impl="opencv")
