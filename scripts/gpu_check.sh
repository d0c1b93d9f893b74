#!/usr/bin/env bash
# Validate the TensorRT backend on a GPU machine: engines, parity with torch, latency.
# Needs CUDA torch, spconv-cuXXX and tensorrt installed (README: GPU set).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
export HF_HUB_OFFLINE=1
"$PY" -m pytest -q -p no:cacheprovider tests/runtime/test_export.py -k tensorrt
exec "$PY" scripts/gpu_check.py "$@"
