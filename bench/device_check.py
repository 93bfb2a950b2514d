"""One-shot GPU check: compiled Triton kernels against their references, kernel bandwidth, and
the streaming generator step in fp16, written to one JSON file.

Made for a lent GPU machine that has only Python, torch and triton (no internet, no TensorRT,
maybe no OpenCV or mediapipe): run it from the checkout with ``PYTHONPATH``::

    bash bench/device_check.sh OUT_DIR        # or: python bench/device_check.py OUT_DIR

Sections (each reports ``ok``, ``failed`` with the error, or ``skipped`` with the reason, and
never stops the others):

1. ``environment``: Python, torch, triton, CUDA device and capability.
2. ``kernels``: every public op's Triton path on CUDA tensors (compiled, not interpreted)
   against its plain-PyTorch ``_ref`` on several shapes, dtypes and a non-contiguous input:
   max abs error and pass/fail against a per-dtype tolerance.
3. ``kernel_bandwidth``: the elementwise/filter kernels on a 1080p frame: median ms over
   repeats after warm-up (device synchronized before every clock read), GB/s from the bytes each
   op must read and write, and the fraction of the device's measured copy bandwidth.
4. ``generator``: the bundled generator's streaming step (torch backend) in fp32 and fp16, eager
   and replayed as a CUDA graph: median ms per step and steps/s.

On a machine without CUDA (``--cpu``, used by the CPU tests) the same functions run on CPU
tensors with small sizes; only the device and the sizes differ.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch

REPEATS = 20
TOLERANCE = {torch.float32: 1e-4, torch.float16: 2e-2, torch.uint8: 1.0}
"""Max abs error of a Triton path against its reference (uint8: one level of rounding)."""


def _repeats(device: torch.device) -> int:
    return REPEATS if device.type == "cuda" else 3  # CPU: the tests' smoke run


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _section(fn: Callable[[], object]) -> dict:
    """Run one section; an exception becomes ``failed`` with its traceback tail."""
    try:
        return {"status": "ok", "result": fn()}
    except ImportError as exc:
        return {"status": "skipped", "reason": f"missing module: {exc.name or exc}"}
    except Exception as exc:  # one failing section never hides the others
        tail = traceback.format_exc().splitlines()[-6:]
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "traceback": tail}


def environment() -> dict:
    import triton

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "triton": triton.__version__,
        "cuda_available": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        info["device"] = torch.cuda.get_device_name(0)
        info["capability"] = ".".join(map(str, torch.cuda.get_device_capability(0)))
    return info


def _image(n, c, h, w, dtype, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((n, c, h, w), generator=g)
    x = (x * 255).round().to(torch.uint8) if dtype == torch.uint8 else x.to(dtype)
    return x.to(device)


def kernel_cases(device: torch.device, small: bool) -> list[tuple[str, Callable, Callable, object]]:
    """``(name, triton_call, ref_call, dtype)`` for every public op: one entry per shape and
    dtype; the last shape of each op is a non-contiguous (sliced) input."""
    import kernels

    sizes = [(1, 1, 1), (2, 9, 13)] if small else [(1, 1, 1), (2, 67, 129), (1, 1080, 1920)]
    cases = []
    for n, h, w in sizes:
        for dtype in (torch.uint8, torch.float32, torch.float16):
            x = _image(n, 3, h, w, dtype, device)
            if h > 1:
                x = _image(n, 4, h, w, dtype, device)[:, 1:]  # non-contiguous channel slice
            tag = f"{n}x3x{h}x{w} {str(dtype).removeprefix('torch.')}"
            cases.append((f"gaussian_blur {tag}",
                          lambda x=x: kernels.gaussian_blur(x, 5, impl="triton"),
                          lambda x=x: kernels.gaussian_blur_ref(x, 5), dtype))  # fmt: skip
            cases.append((f"box_blur {tag}", lambda x=x: kernels.box_blur(x, 3, impl="triton"),
                          lambda x=x: kernels.box_blur_ref(x, 3), dtype))  # fmt: skip
            cases.append((f"rgb_to_ycbcr {tag}", lambda x=x: kernels.rgb_to_ycbcr(x, impl="triton"),
                          lambda x=x: kernels.rgb_to_ycbcr_ref(x), dtype))  # fmt: skip
            cases.append((f"skin_mask {tag}", lambda x=x: kernels.skin_mask(x, impl="triton"),
                          lambda x=x: kernels.skin_mask_ref(x), torch.uint8))  # fmt: skip
            if dtype != torch.float16:
                cases.append((f"rgb_to_hsi {tag}", lambda x=x: kernels.rgb_to_hsi(x, impl="triton"),
                              lambda x=x: kernels.rgb_to_hsi_ref(x), torch.float32))  # fmt: skip
        gray = _image(n, 1, h, w, torch.float32, device, seed=5)
        cases.append((f"gradient_map {n}x1x{h}x{w} float32",
                      lambda g=gray: kernels.gradient_map(g, 3, 5, impl="triton"),
                      lambda g=gray: kernels.gradient_map_ref(g, 3, 5), torch.float32))  # fmt: skip
        for dtype in (torch.float32, torch.float16):
            imgs = [_image(n, 3, h, w, dtype, device, seed=s) for s in range(3)]
            masks = [_image(n, 1, h, w, dtype, device, seed=s) for s in (3, 4)]
            args = (imgs[0], imgs[1], masks[0], imgs[2], masks[1])
            tag = f"{n}x3x{h}x{w} {str(dtype).removeprefix('torch.')}"
            cases.append((f"composite {tag}", lambda a=args: kernels.composite(*a, impl="triton"),
                          lambda a=args: kernels.composite_ref(*a), dtype))  # fmt: skip
    attention = (
        [((1, 2, 4, 8, 6), [(8, 6), (4, 3)])]
        if small
        else [
            ((1, 4, 32, 32, 24), [(32, 24), (16, 12), (8, 6), (4, 3)]),  # the demo's MPDT heads
            ((1, 3, 8, 9, 10), [(3, 5), (9, 10)]),
        ]
    )
    for shape, heads in attention:
        for dtype in (torch.float32, torch.float16):
            g = torch.Generator().manual_seed(7)
            q, k, v = (torch.randn(shape, generator=g).to(dtype).to(device) for _ in range(3))
            tag = f"{'x'.join(map(str, shape))} {str(dtype).removeprefix('torch.')}"
            cases.append((f"patch_attention {tag}",
                          lambda q=q, k=k, v=v, h=heads: kernels.patch_attention(q, k, v, h,
                                                                                 impl="triton"),
                          lambda q=q, k=k, v=v, h=heads: kernels.patch_attention_ref(q, k, v, h),
                          dtype))  # fmt: skip
    return cases


def check_kernels(device: torch.device, small: bool = False) -> dict:
    """Every case of :func:`kernel_cases`: max abs error vs the reference, pass/fail."""
    results, failures = {}, 0
    for name, run, ref, dtype in kernel_cases(device, small):
        try:
            got, want = run(), ref()
            _sync(device)
            err = float((got.double() - want.double()).abs().max()) if got.numel() else 0.0
            ok = got.shape == want.shape and err <= TOLERANCE[dtype]
            results[name] = {"max_abs_error": err, "ok": ok}
        except Exception as exc:
            results[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        failures += not results[name]["ok"]
    return {"cases": len(results), "failures": failures, "results": results}


def _median_ms(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def copy_bandwidth(device: torch.device, mib: int) -> float:
    """GB/s of a large device copy (read + write), the practical peak."""
    src = torch.ones(mib * 2**18, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    ms = _median_ms(lambda: dst.copy_(src), device, _repeats(device))
    return 2 * src.numel() * 4 / (ms * 1e-3) / 1e9


def kernel_bandwidth(device: torch.device, small: bool = False) -> dict:
    """Filters, colour ops and the composite on one frame: ms, GB/s, fraction of the copy."""
    import kernels

    h, w = (9, 16) if small else (1080, 1920)
    peak = copy_bandwidth(device, 16 if small else 1024)
    x = _image(1, 3, h, w, torch.uint8, device)
    f = _image(1, 3, h, w, torch.float16, device)
    m = _image(1, 1, h, w, torch.float16, device)
    px = h * w
    ops = {  # name -> (call, bytes read + written)
        "gaussian_blur u8 k5": (lambda: kernels.gaussian_blur(x, 5, impl="triton"), 6 * px),
        "box_blur u8 k3": (lambda: kernels.box_blur(x, 3, impl="triton"), 6 * px),
        "rgb_to_ycbcr u8": (lambda: kernels.rgb_to_ycbcr(x, impl="triton"), 6 * px),
        "skin_mask u8": (lambda: kernels.skin_mask(x, impl="triton"), 4 * px),
        "composite f16": (lambda: kernels.composite(f, f, m, f, m, impl="triton"), 2 * 14 * px),
    }
    out = {"copy_GB_per_s": peak, "frame": f"{w}x{h}"}
    for name, (call, nbytes) in ops.items():
        ms = _median_ms(call, device, _repeats(device))
        gbs = nbytes / (ms * 1e-3) / 1e9
        out[name] = {"median_ms": ms, "GB_per_s": gbs, "fraction_of_copy": gbs / peak}
    return out


def generator_step(device: torch.device, model=None) -> dict:
    """Median ms of the streaming step (torch backend), fp32 and (CUDA) fp16, eager and with
    the step captured in a CUDA graph."""
    from engine.backends.selection import BackendChoice
    from engine.backends.streaming_runner import make_streaming_runner
    from engine.model.weights import load_generator

    model = load_generator("demo") if model is None else model
    cfg = model.config
    g = torch.Generator().manual_seed(0)
    inputs = {n: torch.rand((1, c, cfg.height, cfg.width), generator=g).to(device)
              for n, c in cfg.input_channels.items()}  # fmt: skip
    choice = BackendChoice("torch", device.type, "device check")
    results = {}
    for precision in ("fp32", "fp16") if device.type == "cuda" else ("fp32",):
        runner = make_streaming_runner(model, frames=cfg.frames, choice=choice,
                                       precision=precision)  # fmt: skip
        ms = _median_ms(lambda r=runner: r.step(inputs), device, _repeats(device))
        results[f"{precision} eager"] = {"median_ms": ms, "steps_per_s": 1e3 / ms}
        if device.type == "cuda":
            graph = torch.cuda.CUDAGraph()
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):
                    runner.step(inputs)  # warm up on the side stream
            torch.cuda.current_stream().wait_stream(side)
            runner.seen = cfg.frames  # steady state: the capture records a full-window step
            with torch.cuda.graph(graph):
                runner.step(inputs)
            ms = _median_ms(graph.replay, device, REPEATS)
            results[f"{precision} cuda graph"] = {"median_ms": ms, "steps_per_s": 1e3 / ms}
    return results


def run(out_dir: Path, *, cpu: bool = False, model=None) -> Path:
    """Every section into ``out_dir/device_check.json``; returns its path."""
    device = torch.device("cpu" if cpu or not torch.cuda.is_available() else "cuda")
    small = device.type == "cpu"
    started = time.time()
    report = {
        "environment": _section(environment),
        "kernels": _section(lambda: check_kernels(device, small)),
        "kernel_bandwidth": _section(lambda: kernel_bandwidth(device, small)),
        "generator": _section(lambda: generator_step(device, model)),
    }
    report["device"] = device.type
    report["wall_s"] = time.time() - started
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "device_check.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--cpu", action="store_true", help="run on CPU tensors (small sizes)")
    args = parser.parse_args(argv)
    path = run(args.out_dir, cpu=args.cpu)
    report = json.loads(path.read_text())
    for name in ("environment", "kernels", "kernel_bandwidth", "generator"):
        section = report[name]
        detail = section.get("reason") or section.get("error") or ""
        if name == "kernels" and section["status"] == "ok":
            detail = f"{section['result']['failures']} failures in {section['result']['cases']}"
        print(f"{name:<17} {section['status']:<8} {detail}")
    print(f"wrote {path}")
    bad = report["kernels"]["status"] != "ok" or report["kernels"]["result"]["failures"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
