"""Per-stage CPU latency of the runtime on a simulated 64-beam sweep: ONNX Runtime vs torch.

Run: ``.venv/bin/python bench/bench_pipeline.py [--clip ViT-B-16] [--cameras 1] [--frames 4]``.
Not a test. The same as ``ws3d bench`` (code in :mod:`ws3d_ros.runtime.benchmark`): a model
from ``config/model.yaml`` with random weights (no weights can be downloaded here; latency
does not depend on the values) is exported, then the same sweeps run through the
``onnxruntime`` and ``torch`` backends in fusion and LiDAR-only modes, and the median
milliseconds of every stage, end-to-end Hz and the torch/ORT ratios are printed.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ws3d_ros.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
