"""The ``tryon`` command line.

Verbs:
    tryon doctor [--json]          report the install (torch/CUDA, Triton, TensorRT, onnxruntime)
    tryon aot [--cc ...] [--json]  compile every Triton kernel for GPUs (PTX + cubin, no GPU needed)

Each verb is a function ``_cmd_<verb>(args) -> int`` returning the process exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from engine import __version__

__all__ = ["main", "build_parser"]


def _cmd_doctor(args: argparse.Namespace) -> int:
    from engine import doctor

    checks = doctor.run_checks()
    if args.json:
        print(
            json.dumps({"checks": doctor.as_dicts(checks), "exit_code": doctor.exit_code(checks)})
        )
    else:
        print(doctor.format_report(checks))
    return doctor.exit_code(checks)


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

    aot = verbs.add_parser(
        "aot",
        help="compile every Triton kernel for GPUs (no GPU needed); exit 1 if one is "
        "not registered for compilation",
    )
    aot.add_argument("--cc", type=int, nargs="+", default=[80, 90], help="compute capabilities")
    aot.add_argument("--json", action="store_true", help="print one JSON object instead")
    aot.set_defaults(run=_cmd_aot)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tryon`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
