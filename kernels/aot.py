"""Ahead-of-time compilation of every Triton kernel in ``kernels/`` for real GPUs.

Each kernel module registers, right after its ``@triton.jit`` kernel, one or more
:class:`AotSpec` (a concrete signature and constexprs) with :func:`register_aot`. ``tryon aot``
imports every module of the package, refuses kernels that registered nothing, and compiles
every spec with ``triton.compile(ASTSource(...), target=GPUTarget("cuda", cc, 32))``
(PTX and cubin, on any host: no GPU needed), printing shared memory and registers per kernel.

This must run *without* ``TRITON_INTERPRET=1``: the interpreter replaces ``@triton.jit`` kernels
with Python functions that cannot be compiled. The tests run it in a subprocess for that reason.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["AotSpec", "register_aot", "registered_specs", "unregistered_kernels", "compile_all"]


@dataclass(frozen=True)
class AotSpec:
    """One concrete instantiation of a kernel to compile.

    Attributes:
        name: readable id, ``"<module>.<kernel>[variant]"``.
        kernel: the ``@triton.jit`` function.
        signature: argument name -> Triton type (``"*fp32"``, ``"*u8"``, ``"i32"``, ``"i64"``, ...).
        constexprs: constexpr argument name -> value.
        num_warps: warps per program.
        enable_fp_fusion: whether the compiler may contract mul + add into FMA (kernels that
            promise bit-identical results to their reference launch with it off).
    """

    name: str
    kernel: Any
    signature: dict[str, str]
    constexprs: dict[str, Any] = field(default_factory=dict)
    num_warps: int = 4
    enable_fp_fusion: bool = True


_REGISTRY: list[AotSpec] = []


def register_aot(
    kernel: Any,
    signature: dict[str, str],
    constexprs: dict[str, Any] | None = None,
    *,
    variant: str = "",
    num_warps: int = 4,
    enable_fp_fusion: bool = True,
) -> None:
    """Register one compile spec for ``kernel`` (call at import time of the kernel's module)."""
    fn = getattr(kernel, "fn", kernel)
    name = f"{fn.__module__}.{fn.__name__}" + (f"[{variant}]" if variant else "")
    _REGISTRY.append(
        AotSpec(name, kernel, dict(signature), dict(constexprs or {}), num_warps, enable_fp_fusion)
    )


def _import_all_kernel_modules() -> list[Any]:
    # The package's folder, not ``import kernels``: the package imports the kernel modules,
    # which import this one (a cycle).
    modules = []
    for info in pkgutil.iter_modules([str(Path(__file__).resolve().parent)], prefix="kernels."):
        if info.name != "kernels.aot":
            modules.append(importlib.import_module(info.name))
    return modules


def registered_specs() -> list[AotSpec]:
    """Every spec registered by the modules of ``kernels`` (imports them all)."""
    _import_all_kernel_modules()
    return list(_REGISTRY)


def unregistered_kernels() -> list[str]:
    """Names of ``@triton.jit`` kernels defined in ``kernels`` that registered no spec.

    Kernels (launched from the host) are the jit functions whose name ends in ``_kernel``; other
    jit functions are device helpers inlined into kernels and compiled with them.
    """
    from triton.runtime.jit import JITFunction

    registered = {id(getattr(s.kernel, "fn", s.kernel)) for s in registered_specs()}
    missing = []
    for module in _import_all_kernel_modules():
        for attr, obj in vars(module).items():
            fn = getattr(obj, "fn", None)
            if (
                isinstance(obj, JITFunction)
                and attr.endswith("_kernel")
                and fn.__module__ == module.__name__
                and id(fn) not in registered
            ):
                missing.append(f"{module.__name__}.{attr}")
    return missing


def compile_all(ccs: tuple[int, ...] = (80, 90)) -> list[dict[str, Any]]:
    """Compile every registered spec for each compute capability; one record per compile.

    Raises:
        RuntimeError: under ``TRITON_INTERPRET=1`` (nothing can be compiled there).
    """
    from kernels.triton_mode import interpreter_requested

    if interpreter_requested():
        raise RuntimeError("AOT compilation needs TRITON_INTERPRET unset (or 0)")
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    records = []
    for spec in registered_specs():
        for cc in ccs:
            source = ASTSource(fn=spec.kernel, signature=spec.signature, constexprs=spec.constexprs)
            compiled = triton.compile(
                source,
                target=GPUTarget("cuda", cc, 32),
                options={"num_warps": spec.num_warps, "enable_fp_fusion": spec.enable_fp_fusion},
            )
            records.append(
                {
                    "kernel": spec.name,
                    "cc": cc,
                    "num_warps": compiled.metadata.num_warps,
                    "shared_bytes": compiled.metadata.shared,
                    "ptx_chars": len(compiled.asm["ptx"]),
                    "cubin_bytes": len(compiled.asm["cubin"]),
                }
            )
    return records
