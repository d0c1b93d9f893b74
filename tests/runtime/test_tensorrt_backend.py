"""TensorRT backend parts that run without a GPU (the fallback: tests/runtime/test_export.py)."""

from __future__ import annotations

import json

from ws3d_ros.runtime.tensorrt_backend import PROFILE, _dims_of


def test_every_exported_input_has_a_profile_range(tiny_model_dir) -> None:
    meta = json.loads((tiny_model_dir / "model.json").read_text())
    n_stages = sum(1 for n in meta["inputs"] if n.startswith("down_"))
    for name in meta["inputs"]:
        (dim,) = _dims_of(name, n_stages)
        lo, opt, hi = PROFILE[dim]
        assert lo <= opt <= hi, name
    assert _dims_of("down_0", n_stages) == ["M1"]  # down_l lists level l+1 voxels
    assert _dims_of("up_0", n_stages) == ["M0"]
    assert _dims_of("image", n_stages) == ["B", "", "H", "W"]
