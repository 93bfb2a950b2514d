"""The ``tryon`` command line.

Verbs:
    tryon demo [--out DIR]         try-on of the bundled clip and garment: video, preview, FPS
    tryon run --garment G --source 0|video|dir [--output out.mp4] [--show] [--virtual-camera]
                                   try-on of a stream (Ctrl-C: stop, keep the video, exit 130)
    tryon doctor [--json]          report the install (torch/CUDA, Triton, TensorRT, onnxruntime)
    tryon aot [--cc ...] [--json]  compile every Triton kernel for GPUs (PTX + cubin, no GPU needed)
    tryon bench [--report] [--quick]   run `pytest bench/`; --report: bench/results/<machine>.*
    tryon train --config lite --steps N --out DIR [--fit outline|keypoints] [--init demo|FILE]
                [--exact-masks]
                                   train (or fine-tune) a generator on synthetic clips
    tryon eval --model demo [--fit outline|keypoints] [--exact-masks] [--json]   score it
    tryon serve [--host H] [--port P] [--token T] [--max-sessions N]   try-on in the browser
                [--cluster [ADDRESS] [--workers N] [--streams-per-worker S] [--reopen]]
                                   ... with the peers' streams on Ray stream workers
    tryon export --model demo --format onnx|tensorrt --out DIR [--frames T] [--size HxW]
                 [--precision fp32|fp16]   standard + plugins graphs (and the TensorRT engine)
                 [--triton-repository DIR [--triton-max-batch B]]   + a Triton model repository

Each verb is a function ``_cmd_<verb>(args) -> int`` returning the process exit code: 0, 1 for
an engine error (one line "error: ..."), 130 when stopped by Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from engine import __version__

__all__ = ["main", "build_parser"]

EXIT_INTERRUPTED = 130
"""Exit code after Ctrl-C (128 + SIGINT, as shells report it)."""


def _cmd_doctor(args: argparse.Namespace) -> int:
    from engine.cli import doctor

    checks = doctor.run_checks()
    if args.json:
        print(
            json.dumps({"checks": doctor.as_dicts(checks), "exit_code": doctor.exit_code(checks)})
        )
    else:
        print(doctor.format_report(checks))
    return doctor.exit_code(checks)


def _source(value: str) -> int | str:
    """A webcam index ("0") or a path."""
    return int(value) if value.isdigit() else value


_RUN_FLAGS = {"output": "--output", "show": "--show", "virtual_camera": "--virtual-camera"}


@contextlib.contextmanager
def _as_flags() -> Iterator[None]:
    """Name run_video's destination arguments as the command-line flags that set them."""
    from engine.errors import InputError

    try:
        yield
    except InputError as exc:
        if exc.argument not in _RUN_FLAGS:
            raise
        raise InputError(_RUN_FLAGS[exc.argument], exc.expected, exc.got) from None


def _cmd_run(args: argparse.Namespace) -> int:
    from engine.runtime.session import TryOnSession
    from engine.runtime.video_run import INTERRUPTED, check_sinks, format_stats, run_video

    sinks = dict(output=args.output, show=args.show, virtual_camera=args.virtual_camera)
    with _as_flags():
        check_sinks(**sinks)  # before the model, the garment and any frame
    with TryOnSession(args.model, backend=args.backend, window=args.window,
                      mode=args.mode, paste=args.paste) as session:  # fmt: skip
        session.set_garment(args.garment)
        print(f"backend: {session.backend} ({session.backend_reason})", file=sys.stderr)
        with _as_flags():
            stats = run_video(session, _source(args.source), max_frames=args.max_frames,
                              **sinks)  # fmt: skip
    print(format_stats(stats))
    print(f"stream ended: {stats['end_reason']}")
    if args.output:
        print(f"wrote {args.output}")
    return EXIT_INTERRUPTED if stats["end_reason"] == INTERRUPTED else 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from engine.runtime.video_run import format_stats, run_demo

    stats = run_demo(args.out, backend=args.backend, max_frames=args.max_frames)
    print(format_stats(stats))
    print(f"wrote {stats['video']}" + (f" and {stats['preview']}" if stats["preview"] else ""))
    return 0


def _cmd_aot(args: argparse.Namespace) -> int:
    from kernels.aot import compile_all, unregistered_kernels
    from kernels.triton_mode import interpreter_requested

    if interpreter_requested():
        print(
            "tryon aot: unset TRITON_INTERPRET (kernels cannot be compiled under the interpreter)"
        )
        return 2
    missing = unregistered_kernels()
    records = compile_all(tuple(args.cc))
    if args.json:
        print(json.dumps({"records": records, "unregistered": missing}))
    else:
        for r in records:
            print(
                f"sm_{r['cc']}  {r['kernel']:<58} warps={r['num_warps']} "
                f"shared={r['shared_bytes']} B  cubin={r['cubin_bytes']} B"
            )
        for name in missing:
            print(f"UNREGISTERED: {name} (call kernels.aot.register_aot after defining it)")
    return 1 if missing else 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from engine.cli.bench_report import run_bench

    return run_bench(report=args.report, quick=args.quick, keyword=args.k, json_out=args.json)


def _cmd_train(args: argparse.Namespace) -> int:
    from engine.training.train import TrainConfig, train

    cfg = TrainConfig(model=args.config, steps=args.steps, batch=args.batch, pool=args.pool,
                      lr=args.lr, seed=args.seed, temporal_weight=args.temporal_weight,
                      init=args.init, fit=args.fit,
                      mask_noise=not args.exact_masks)  # fmt: skip
    train(cfg, args.out)
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from engine.model.weights import load_generator
    from engine.training.evaluate import evaluate

    model = load_generator(args.model)
    results = evaluate(model, clips=args.clips, fit=args.fit, mask_noise=not args.exact_masks)
    if args.json:
        print(json.dumps(results))
        return 0
    print(f"{'':<10} " + " ".join(f"{m:>12}" for m in next(iter(results.values()))))
    for name, scores in results.items():
        print(f"{name:<10} " + " ".join(f"{v:>12.4f}" for v in scores.values()))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    import re

    from engine.errors import BackendUnavailableError, InputError
    from engine.model.weights import load_generator
    from engine.packages import import_tensorrt
    from export.onnx_export import (
        FP16_MAX_REL_ERROR,
        FP32_MAX_REL_ERROR,
        OPSET,
        export_graphs,
        with_size,
    )

    size = None
    if args.size is not None:  # every argument is checked before any work
        match = re.fullmatch(r"(\d+)x(\d+)", args.size)
        if match is None:
            raise InputError("--size", "HEIGHTxWIDTH in pixels, e.g. 256x192", args.size)
        size = (int(match[1]), int(match[2]))
    triton = getattr(args, "triton_repository", None)
    max_batch = 8 if args.triton_max_batch is None else args.triton_max_batch
    if triton is not None:
        if Path(triton).exists() and not Path(triton).is_dir():
            raise InputError("--triton-repository", "a directory (or a path to create one at)",
                             triton)  # fmt: skip
        if max_batch < 1:
            raise InputError("--triton-max-batch", "an int >= 1", max_batch)
    elif args.triton_max_batch is not None:
        raise InputError("--triton-max-batch", "to be used with --triton-repository",
                         args.triton_max_batch)  # fmt: skip
    if args.format == "tensorrt":
        import torch

        import_tensorrt()  # BackendUnavailableError naming how to install it
        if not torch.cuda.is_available():
            raise BackendUnavailableError("tensorrt", "engines are built on an NVIDIA GPU and "
                                          "torch sees none")  # fmt: skip
    model = load_generator(args.model)
    report = export_graphs(model, args.out, frames=args.frames, size=size,
                           precision=args.precision)  # fmt: skip
    what = f"opset {OPSET}, T={report.frames}, {report.height}x{report.width}, {report.precision}"
    for graph in (report.standard, report.plugins):
        plugins = {op: n for op, n in graph.ops.items() if op.startswith("tryon::")}
        detail = ", ".join(f"{n} {op}" for op, n in plugins.items()) or "standard ops only"
        print(f"wrote {graph.path} ({graph.bytes / 2**20:.2f} MiB, {sum(graph.ops.values())} "
              f"nodes: {detail}; {what}; float32 inputs and outputs)")  # fmt: skip
    print("onnx.checker (full): ok for both graphs; TensorRT operator audit: ok (tryon plugin "
          "nodes only in the plugins graph)")  # fmt: skip
    limit = FP32_MAX_REL_ERROR if report.precision == "fp32" else FP16_MAX_REL_ERROR
    rule = "must be" if report.precision == "fp32" else "reported; sanity bound"
    print(f"parity vs PyTorch float32 on seeded inputs, max abs / max rel ({rule} < {limit:.0e}):")
    for label, graph in (("standard, onnxruntime CPU", report.standard),
                         ("plugins, onnxruntime + kernel refs", report.plugins)):  # fmt: skip
        errors = graph.parity
        cells = [f"{n} {errors.max_abs[n]:.2e} / {errors.max_rel[n]:.2e}" for n in errors.max_rel]
        print(f"  {label:<36} {'  '.join(cells)}")
    if args.format == "tensorrt":
        from export.tensorrt_engine import load_or_build_engine

        out = Path(args.out)
        engine = load_or_build_engine(report.plugins.path, out, precision=report.precision)
        print(f"TensorRT engine in {out} ({len(engine) / 2**20:.1f} MiB; cached by ONNX bytes, "
              "TensorRT version, GPU, precision, profile and plugin sources)")  # fmt: skip
    if triton is not None:
        from export.triton_repository import TRTEXEC_FILE, write_triton_repository

        sized = with_size(model, *size) if size is not None else model
        repo = write_triton_repository(triton, sized, frames=report.frames,
                                       precision=report.precision,
                                       max_batch=max_batch)  # fmt: skip
        print(f"Triton model repository in {repo.directory} (max_batch_size {max_batch}): "
              + ", ".join(repo.models))  # fmt: skip
        for name, error in repo.parity.items():
            print(f"  {name}/1/model.onnx: onnxruntime vs PyTorch float32 at batch 2, max rel "
                  f"{error:.2e}; a TensorRT plan of it: {name}/{TRTEXEC_FILE}")  # fmt: skip
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``tryon`` with one sub-parser per verb."""
    parser = argparse.ArgumentParser(
        prog="tryon", description="Optimized inference engine for video virtual try-on."
    )
    parser.add_argument("--version", action="version", version=f"tryon-engine {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    doctor = verbs.add_parser(
        "doctor", help="report what this install can run; exit 1 if a required part is broken"
    )
    doctor.add_argument("--json", action="store_true", help="print one JSON object instead")
    doctor.set_defaults(run=_cmd_doctor)

    demo = verbs.add_parser("demo", help="try the bundled garment on the bundled sample clip")
    demo.add_argument("--out", default="tryon-demo", help="output directory (default ./tryon-demo)")
    demo.add_argument("--backend", default="auto", help="auto | onnxruntime | torch")
    demo.add_argument("--max-frames", type=int, default=None, help="stop after N frames")
    demo.set_defaults(run=_cmd_demo)

    run = verbs.add_parser("run", help="try a garment on a webcam, a video or a frames directory")
    run.add_argument(
        "--garment", required=True, help="garment image (RGBA, or on a plain background)"
    )
    run.add_argument("--source", required=True, help="webcam index (0), video file or directory")
    run.add_argument("--output", default=None, help="write the result video here (.mp4/.avi)")
    run.add_argument("--show", action="store_true", help="show the result in a window")
    run.add_argument("--virtual-camera", action="store_true",
                     help="send the result to a virtual camera (pyvirtualcam: pip install "
                     "'tryon-engine[virtualcam]'; v4l2loopback on Linux, OBS on "
                     "Windows/macOS)")  # fmt: skip
    run.add_argument("--backend", default="auto", help="auto | onnxruntime | torch")
    run.add_argument("--model", default="demo", help="'demo' or a weights file")
    run.add_argument("--window", type=int, default=4, help="frames T per generator call")
    run.add_argument("--mode", default="latency", choices=["latency", "throughput"],
                     help="latency: causal window, throughput: blocks of T (files)")  # fmt: skip
    run.add_argument("--paste", default="garment", choices=["garment", "region"],
                     help="replace the garment area or the whole try-on region")  # fmt: skip
    run.add_argument("--max-frames", type=int, default=None, help="stop after N frames")
    run.set_defaults(run=_cmd_run)

    aot = verbs.add_parser(
        "aot",
        help="compile every Triton kernel for GPUs (no GPU needed); exit 1 if one is "
        "not registered for compilation",
    )
    aot.add_argument("--cc", type=int, nargs="+", default=[80, 90], help="compute capabilities")
    aot.add_argument("--json", action="store_true", help="print one JSON object instead")
    aot.set_defaults(run=_cmd_aot)

    bench = verbs.add_parser(
        "bench", help="run the benchmark suite (pytest bench/, from the source tree)"
    )
    bench.add_argument("--report", action="store_true",
                       help="write bench/results/<machine>.json and .md")  # fmt: skip
    bench.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    bench.add_argument("-k", default=None, metavar="EXPR", help="only benchmarks matching EXPR")
    bench.add_argument("--json", default=None, metavar="FILE",
                       help="also keep pytest-benchmark's raw JSON here")  # fmt: skip
    bench.set_defaults(run=_cmd_bench)

    train = verbs.add_parser("train", help="train an MPDT generator on synthetic clips (CPU)")
    train.add_argument("--config", default="lite", help="preset: lite | base")
    train.add_argument("--steps", type=int, default=2000, help="optimizer steps")
    train.add_argument("--out", required=True, help="output directory (resumes if it holds a "
                       "checkpoint)")  # fmt: skip
    train.add_argument("--batch", type=int, default=2, help="clips per step")
    train.add_argument("--pool", type=int, default=256, help="synthetic training clips")
    train.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    train.add_argument("--seed", type=int, default=0, help="seed of init and sampling")
    train.add_argument("--temporal-weight", type=float, default=0.5,
                       help="weight of the temporal-consistency loss term (0: off)")  # fmt: skip
    train.add_argument("--init", default=None,
                       help="weights to fine-tune from: 'demo' or a weights file (new layers "
                       "start fresh)")  # fmt: skip
    train.add_argument("--fit", choices=["outline", "keypoints"], default="outline",
                       help="garment fit of the inputs: outline (the runtime's and the demo's: "
                       "seams on the silhouette) or keypoints (skeleton anchors)")  # fmt: skip
    train.add_argument("--exact-masks", action="store_true",
                       help="train on the clips' exact person masks (default: masks made to "
                       "look like the live segmenter's)")  # fmt: skip
    train.set_defaults(run=_cmd_train)

    evaluate = verbs.add_parser(
        "eval", help="score a generator and two baselines on held-out clips"
    )
    evaluate.add_argument("--model", default="demo", help="'demo' or a weights file")
    evaluate.add_argument("--clips", type=int, default=16, help="held-out clips to score")
    evaluate.add_argument("--fit", choices=["outline", "keypoints"], default="outline",
                          help="garment fit of the clips' inputs: outline (the runtime's and "
                          "the demo's) or keypoints (skeleton anchors)")  # fmt: skip
    evaluate.add_argument("--exact-masks", action="store_true",
                          help="score on the clips' exact person masks (default: masks made to "
                          "look like the live segmenter's)")  # fmt: skip
    evaluate.add_argument("--json", action="store_true", help="print one JSON line")
    evaluate.set_defaults(run=_cmd_eval)

    export = verbs.add_parser(
        "export", help="export a generator to validated ONNX graphs (and a TensorRT engine)"
    )
    export.add_argument("--model", default="demo", help="'demo' or a weights file")
    export.add_argument("--format", choices=["onnx", "tensorrt"], default="onnx",
                        help="onnx: standard.onnx (onnxruntime) and plugins.onnx (TensorRT, "
                        "tryon plugins); tensorrt: both, then the engine (needs TensorRT and an "
                        "NVIDIA GPU)")  # fmt: skip
    export.add_argument("--out", required=True, help="output directory")
    export.add_argument("--frames", type=int, default=None, help="T (default: the model's)")
    export.add_argument("--size", default=None, metavar="HxW",
                        help="input size, e.g. 256x192 (default: the model's; multiples of "
                        "4 x the largest head divisor)")  # fmt: skip
    export.add_argument("--precision", choices=["fp32", "fp16"], default="fp32",
                        help="fp16: strongly typed fp16 graphs, fp32 where numerics need "
                        "it")  # fmt: skip
    export.add_argument("--triton-repository", default=None, metavar="DIR",
                        help="also write an NVIDIA Triton Inference Server model repository of "
                        "the streaming graphs here: tryon_encoder (dynamic batching), "
                        "tryon_window (sequence batcher, implicit state), tryon_stream "
                        "(ensemble)")  # fmt: skip
    export.add_argument("--triton-max-batch", type=int, default=None, metavar="B",
                        help="with --triton-repository: max_batch_size, streams per batch "
                        "(default 8)")  # fmt: skip
    export.set_defaults(run=_cmd_export)
    from engine.serve.cli import add_serve_parser, run_serve  # argparse only; aiohttp on run

    add_serve_parser(verbs).set_defaults(run=run_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tryon`` console script; returns the exit code."""
    from engine.errors import TryOnError

    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except TryOnError as exc:  # a clear message, no traceback, for every known failure
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C outside a stream (which stops cleanly by itself)
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
