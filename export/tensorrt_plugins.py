"""The Triton kernels as TensorRT plugins: ``tryon::patch_attention`` and ``tryon::composite``.

Quickly deployable plugins (``tensorrt.plugin``, TensorRT 10.8+) with an ahead-of-time
implementation: at engine build time each plugin node's Triton kernel is compiled to PTX, and
TensorRT embeds it in the engine with its launch parameters, so no Python runs at inference.

The plugins graph (:mod:`export.plugin_graph`) has one node per attention *head* (op type
``patch_attention``) and one per composite (``composite``), domain and ``plugin_namespace``
``tryon``, attribute ``aot = 1`` (TensorRT's ONNX parser maps op type + ``plugin_namespace`` to the
registered plugin, and ``aot`` to its AOT implementation). One node per head because an AOT plugin
launches exactly one kernel: :mod:`kernels.patch_attention_plugin` does a head in one launch;
a standard ``Concat`` joins the heads.

TensorRT's AOT launch passes the kernel's arguments in this order: input pointers, the extra
int32 scalars (``SymIntExprs``), output pointers; nothing else. So:

- the kernels take their arguments in that order and no float scalars (the softmax scale is a
  ``constexpr``); strides and sizes are int32 scalars computed from the (static) shapes;
- Triton (3.3+) appends two hidden pointer parameters to every kernel (global and profile
  scratch). TensorRT does not pass them, so :func:`plugin_ptx` removes them from the PTX
  ``.entry`` after checking the kernel uses neither (scratch sizes 0, parameters unreferenced);
  a kernel that needs scratch is refused.

Everything except the registration is a plain function, tested on CPU (``triton.compile`` with a
``GPUTarget`` needs no GPU): :func:`patch_attention_launch` / :func:`composite_launch` (grid,
scalars, constexprs from shapes), :func:`plugin_ptx` (PTX, kernel name, shared memory, warps),
:func:`plugin_source_hash` (part of the engine cache key). :func:`register_plugins` imports
``tensorrt.plugin`` lazily and registers both plugins once; the engine builder calls it before
parsing a graph.
"""

# No ``from __future__ import annotations`` here: ``tensorrt.plugin`` reads the annotations of
# the registered functions as objects.

import functools
import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import ExportError, InputError

__all__ = [
    "PLUGIN_NAMESPACE",
    "PATCH_ATTENTION_OP",
    "COMPOSITE_OP",
    "PluginLaunch",
    "PluginKernel",
    "patch_attention_launch",
    "composite_launch",
    "plugin_ptx",
    "plugin_source_hash",
    "register_plugins",
]

PLUGIN_NAMESPACE = "tryon"
"""Plugin namespace, ONNX domain and the ``plugin_namespace`` attribute of the plugin nodes."""
PATCH_ATTENTION_OP = "patch_attention"
COMPOSITE_OP = "composite"
DTYPES = ("fp32", "fp16")


@dataclass(frozen=True)
class PluginLaunch:
    """One kernel launch, all in plain values (what an AOT implementation returns, unwrapped).

    Attributes:
        kernel: the ``@triton.jit`` function.
        signature: argument name -> Triton type (``"*fp16"``, ``"i32"``, ``"constexpr"``), in the
            kernel's argument order: input pointers, int32 scalars, output pointers, constexprs.
        constexprs: constexpr name -> value.
        scalars: the int32 scalar arguments, in signature order.
        grid: (x, y, z) programs.
        num_warps: warps per program (the block is ``num_warps * 32`` threads).
    """

    kernel: Any
    signature: dict[str, str]
    constexprs: dict[str, Any]
    scalars: tuple[int, ...]
    grid: tuple[int, int, int]
    num_warps: int


@dataclass(frozen=True)
class PluginKernel:
    """A compiled plugin kernel: entry name, PTX text, static shared memory (bytes), warps and
    the number of ``.entry`` parameters TensorRT will pass."""

    name: str
    ptx: str
    shared_mem: int
    num_warps: int
    params: int


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _check_dtype(dtype: object) -> str:
    if dtype not in DTYPES:
        raise InputError("dtype", "'fp32' or 'fp16'", dtype)
    return dtype


def _check_shape(name: str, shape: object, rank: int) -> tuple[int, ...]:
    if (
        not isinstance(shape, Sequence)
        or len(shape) != rank
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape)
    ):
        raise InputError(name, f"{rank} static dimensions >= 1", shape)
    return tuple(shape)


def _contiguous_strides(shape: Sequence[int]) -> tuple[int, ...]:
    strides, step = [], 1
    for d in reversed(shape):
        strides.append(step)
        step *= d
    return tuple(reversed(strides))


def patch_attention_launch(
    q_shape: Sequence[int],
    *,
    patch_h: int,
    patch_w: int,
    channel_offset: int,
    head_channels: int,
    dtype: str,
) -> PluginLaunch:
    """Launch of one ``tryon::patch_attention`` node: head channels ``[channel_offset,
    channel_offset + head_channels)`` of contiguous (B, T, C, H, W) ``q``, ``k``, ``v``, a
    (B, T, 1, H, W) key mask of the same dtype, into a (B, T, head_channels, H, W) output.

    Raises:
        InputError: shapes that do not tile, a head outside C, too many tokens, a bad dtype.
    """
    from kernels.patch_attention_plugin import MAX_TOKENS, aot_signature, plugin_blocks

    b, t, c, h, w = _check_shape("q_shape", q_shape, 5)
    dtype = _check_dtype(dtype)
    for name, value in (("patch_h", patch_h), ("patch_w", patch_w), ("head_channels",
                        head_channels), ("channel_offset", channel_offset + 1)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(name, "an int >= 1 (channel_offset >= 0)", value)
    if h % patch_h or w % patch_w:
        raise InputError("patch_h/patch_w", f"a patch that tiles {h}x{w}", (patch_h, patch_w))
    if channel_offset + head_channels > c:
        raise InputError("head_channels", f"a head inside the {c} channels",
                         (channel_offset, head_channels))  # fmt: skip
    n_tokens = t * (h // patch_h) * (w // patch_w)
    if n_tokens > MAX_TOKENS:
        raise InputError("q_shape", f"at most {MAX_TOKENS} tokens per head", n_tokens)
    blocks = plugin_blocks(n_tokens, patch_h * patch_w)
    num_warps = blocks.pop("num_warps")
    qkv = _contiguous_strides((b, t, c, h, w))
    mask = _contiguous_strides((b, t, 1, h, w))
    mask = (mask[0], mask[1], mask[3], mask[4])  # (b, t, h, w): the channel axis has size 1
    out = _contiguous_strides((b, t, head_channels, h, w))
    constexprs = {
        "PH": patch_h, "PW": patch_w, "CN": head_channels,
        "SCALE": 1.0 / math.sqrt(head_channels * patch_h * patch_w),
        "HAS_MASK": True, "IEEE": dtype == "fp32", **blocks,
    }  # fmt: skip
    return PluginLaunch(
        kernel=_kernel("patch_attention"),
        signature=aot_signature(dtype),
        constexprs=constexprs,
        scalars=(*qkv, *qkv, *qkv, *mask, *out, t, h, w, channel_offset),
        grid=(_cdiv(n_tokens, blocks["BLOCK_M"]), b, 1),
        num_warps=num_warps,
    )


def composite_launch(image_shape: Sequence[int], *, dtype: str) -> PluginLaunch:
    """Launch of one ``tryon::composite`` node: contiguous (N, 3, H, W) cloth, rendered and
    background, (N, 1, H, W) masks, all of ``dtype``, into an (N, 3, H, W) output."""
    from kernels.composite_plugin import aot_signature, plugin_block

    n, c, h, w = _check_shape("image_shape", image_shape, 4)
    if c != 3:
        raise InputError("image_shape", "(N, 3, H, W)", tuple(image_shape))
    dtype = _check_dtype(dtype)
    block, num_warps = plugin_block(h * w)
    image = _contiguous_strides((n, 3, h, w))
    mask = _contiguous_strides((n, 1, h, w))
    mask = (mask[0], mask[2], mask[3])  # (n, h, w)
    return PluginLaunch(
        kernel=_kernel("composite"),
        signature=aot_signature(dtype),
        constexprs={"BLOCK": block},
        scalars=(*image, *image, *mask, *image, *mask, *image, h, w),
        grid=(_cdiv(h * w, block), n, 1),
        num_warps=num_warps,
    )


def _kernel(op: str) -> Any:
    if op == "patch_attention":
        from kernels.patch_attention_plugin import PLUGIN_KERNEL as kernel
    else:
        from kernels.composite_plugin import PLUGIN_KERNEL as kernel
    return kernel


_PTX_CACHE: dict[tuple, PluginKernel] = {}
_ENTRY = re.compile(r"\.entry\s+(\w+)\s*\((.*?)\)", re.DOTALL)


def plugin_ptx(launch: PluginLaunch, *, cc: int) -> PluginKernel:
    """Compile ``launch``'s kernel for compute capability ``cc`` (e.g. 90) to PTX whose entry
    takes exactly TensorRT's arguments (inputs, int32 scalars, outputs). No GPU needed; must
    run without ``TRITON_INTERPRET=1``. Cached per (kernel, signature, constexprs, cc, warps).

    Raises:
        ExportError: under the Triton interpreter, or the kernel needs scratch memory.
    """
    from kernels.triton_mode import interpreter_requested

    if isinstance(cc, bool) or not isinstance(cc, int) or cc < 50:
        raise InputError("cc", "a compute capability as an int, e.g. 90", cc)
    if interpreter_requested():
        raise ExportError("plugin PTX needs TRITON_INTERPRET unset (the interpreter compiles "
                          "nothing)")  # fmt: skip
    fn = getattr(launch.kernel, "fn", launch.kernel)
    key = (fn.__module__, fn.__name__, tuple(launch.signature.items()),
           tuple(sorted(launch.constexprs.items())), cc, launch.num_warps)  # fmt: skip
    if key in _PTX_CACHE:
        return _PTX_CACHE[key]
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    source = ASTSource(fn=launch.kernel, signature=launch.signature, constexprs=launch.constexprs)
    compiled = triton.compile(source, target=GPUTarget("cuda", cc, 32),
                              options={"num_warps": launch.num_warps})  # fmt: skip
    meta = compiled.metadata
    runtime_args = sum(1 for t in launch.signature.values() if t != "constexpr")
    ptx = _strip_scratch_params(compiled.asm["ptx"], meta, runtime_args)
    kernel = PluginKernel(meta.name, ptx, int(meta.shared), int(meta.num_warps), runtime_args)
    _PTX_CACHE[key] = kernel
    return kernel


def _strip_scratch_params(ptx: str, meta: Any, runtime_args: int) -> str:
    """Remove Triton's trailing global/profile scratch pointers from the ``.entry`` when unused."""
    match = _ENTRY.search(ptx)
    if match is None or match.group(1) != meta.name:
        raise ExportError(f"no .entry {meta.name} in the PTX Triton produced")
    params = [p.strip() for p in match.group(2).split(",") if p.strip()]
    if len(params) == runtime_args:
        return ptx
    extra = len(params) - runtime_args
    scratch = (getattr(meta, "global_scratch_size", 0) or 0, getattr(meta, "profile_scratch_size",
               0) or 0)  # fmt: skip
    names = [p.split()[-1] for p in params[runtime_args:]]
    used = [n for n in names if len(re.findall(rf"\b{re.escape(n)}\b", ptx)) > 1]
    if extra != 2 or any(scratch) or used:
        raise ExportError(
            f"{meta.name}: {len(params)} PTX parameters for {runtime_args} arguments (scratch "
            f"{scratch}, used {used}); TensorRT AOT plugins pass only inputs, scalars, outputs"
        )
    kept = ",\n\t".join(params[:runtime_args])
    start, end = match.span(2)
    return ptx[:start] + "\n\t" + kept + "\n" + ptx[end:]


def plugin_source_hash() -> str:
    """sha256 of everything that shapes the plugin kernels: their sources, this module's launch
    maths and the Triton version (part of the TensorRT engine cache key)."""
    import importlib

    import triton

    digest = hashlib.sha256(triton.__version__.encode())
    for name in ("kernels.patch_attention", "kernels.patch_attention_plugin",
                 "kernels.composite_plugin"):  # fmt: skip
        digest.update(Path(importlib.import_module(name).__file__).read_bytes())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()


def _static_dims(desc: Any) -> tuple[int, ...]:
    dims = []
    for expr in desc.shape_expr:
        if not expr.is_constant:
            raise ExportError("tryon plugins need static shapes (export with static T, H, W)")
        dims.append(int(expr.constant_value()))
    return tuple(dims)


def _dtype_name(trt: Any, dtype: Any) -> str:
    if dtype == trt.float16:
        return "fp16"
    if dtype == trt.float32:
        return "fp32"
    raise ExportError(f"tryon plugins run on float32 or float16 tensors, got {dtype}")


def _device_cc() -> int:
    import torch

    major, minor = torch.cuda.get_device_capability()
    return 10 * major + minor


def _aot_result(trtp: Any, launch: PluginLaunch) -> tuple[bytes, bytes, Any, Any]:
    import torch

    kernel = plugin_ptx(launch, cc=_device_cc())
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    limit = props.shared_memory_per_block_optin
    if kernel.shared_mem > limit:
        raise ExportError(f"{kernel.name} needs {kernel.shared_mem} B of shared memory, this GPU "
                          f"has {limit} B per block (fewer tokens per head, or fp16)")  # fmt: skip
    params = trtp.KernelLaunchParams()
    params.grid_x, params.grid_y, params.grid_z = launch.grid
    params.block_x = kernel.num_warps * 32
    params.shared_mem = kernel.shared_mem
    extra = trtp.SymIntExprs.from_tuple([trtp.SymInt32(s) for s in launch.scalars])
    return kernel.name.encode(), kernel.ptx.encode(), params, extra


@functools.cache
def register_plugins() -> None:
    """Register ``tryon::patch_attention`` and ``tryon::composite`` with ``tensorrt.plugin``
    (shape/dtype descriptor, type combinations, AOT implementation); once per process.

    Raises:
        BackendUnavailableError: TensorRT is not installed (saying how to get it).
    """
    from engine.packages import import_tensorrt

    trt = import_tensorrt()
    import tensorrt.plugin as trtp

    types = "FP32|FP16"

    @trtp.register(f"{PLUGIN_NAMESPACE}::{PATCH_ATTENTION_OP}")
    def _patch_attention_desc(
        q: trtp.TensorDesc,
        k: trtp.TensorDesc,
        v: trtp.TensorDesc,
        key_mask: trtp.TensorDesc,
        patch_h: int,
        patch_w: int,
        channel_offset: int,
        head_channels: int,
    ) -> trtp.TensorDesc:
        s = q.shape_expr  # (B, T, C, H, W) -> (B, T, head_channels, H, W)
        return trtp.from_shape_expr((s[0], s[1], head_channels, s[3], s[4]), dtype=q.dtype)

    # The AOT and autotune functions carry no type hints (optional; TensorRT checks any given
    # against the registered signature): they mirror the descriptors.
    @trtp.autotune(f"{PLUGIN_NAMESPACE}::{PATCH_ATTENTION_OP}")
    def _patch_attention_tune(q, k, v, key_mask, outputs):
        return [trtp.AutoTuneCombination(", ".join([types] * 5), "LINEAR")]

    @trtp.aot_impl(f"{PLUGIN_NAMESPACE}::{PATCH_ATTENTION_OP}")
    def _patch_attention_aot(
        q, k, v, key_mask, patch_h, patch_w, channel_offset, head_channels, outputs
    ):  # -> (kernel name, PTX, KernelLaunchParams, SymIntExprs of the int32 scalars)
        launch = patch_attention_launch(
            _static_dims(q), patch_h=patch_h, patch_w=patch_w, channel_offset=channel_offset,
            head_channels=head_channels, dtype=_dtype_name(trt, q.dtype),
        )  # fmt: skip
        return _aot_result(trtp, launch)

    @trtp.register(f"{PLUGIN_NAMESPACE}::{COMPOSITE_OP}")
    def _composite_desc(
        cloth: trtp.TensorDesc,
        rendered: trtp.TensorDesc,
        cloth_mask: trtp.TensorDesc,
        background: trtp.TensorDesc,
        background_mask: trtp.TensorDesc,
    ) -> trtp.TensorDesc:
        return rendered.like()  # (N, 3, H, W)

    @trtp.autotune(f"{PLUGIN_NAMESPACE}::{COMPOSITE_OP}")
    def _composite_tune(cloth, rendered, cloth_mask, background, background_mask, outputs):
        return [trtp.AutoTuneCombination(", ".join([types] * 6), "LINEAR")]

    @trtp.aot_impl(f"{PLUGIN_NAMESPACE}::{COMPOSITE_OP}")
    def _composite_aot(cloth, rendered, cloth_mask, background, background_mask, outputs):
        launch = composite_launch(_static_dims(rendered), dtype=_dtype_name(trt, rendered.dtype))
        return _aot_result(trtp, launch)
