#!/usr/bin/env bash
# One-shot GPU check from a bare checkout: bash bench/device_check.sh OUT_DIR
# Needs only python, torch and triton on the machine (see bench/device_check.py); compiled
# Triton (TRITON_INTERPRET unset), results in OUT_DIR/device_check.json. At most ~8 minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${1:?usage: bench/device_check.sh OUT_DIR}"
unset TRITON_INTERPRET
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
timeout 480 python bench/device_check.py "$OUT"
