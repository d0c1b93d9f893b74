"""Checkpoint -> exported model directory (ONNX graphs + metadata) with a parity report.

Contract: :func:`export_model` writes into ``out_dir``
- ``net.onnx``: LiDAR encoder + fusion + head, inputs :func:`ws3d_ros.models.network.input_names`
  (every point/voxel/text count dynamic), outputs ``class_index, score, offsets, embedding``;
- ``clip_image.onnx``: the dense CLIP image tower, input ``(B, 3, H, W)`` with dynamic B/H/W;
- ``checkpoint.pt``: the checkpoint (text tower, config, torch reference weights);
- ``model.json``: format, file names, input/output names, image size and normalisation,
  embed dim, SHA-256 of each file;
- ``parity.json``: torch vs ONNX Runtime on the given sweep (max |diff| of embeddings,
  label agreement %, point count), the same numbers :func:`export_model` returns.
Optionally (``tensorrt=True``) it builds the TensorRT engines into the engine cache.
The graphs are scatter-free (gather/matmul), so ONNX Runtime with several threads matches.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ws3d_ros.data.frame import Frame
from ws3d_ros.errors import Ws3dError
from ws3d_ros.runtime.backends import MODEL_FORMAT, MODEL_JSON

log = logging.getLogger(__name__)


@dataclass
class ParityReport:
    points: int
    visible_points: int
    classes: int
    max_abs_diff_embedding: float
    max_abs_diff_offsets: float
    label_agreement_pct: float
    torch_ms: float
    onnxruntime_ms: float


def _export_net(net: Any, example: dict[str, np.ndarray], names: list[str], path: Path) -> None:
    import torch
    from torch.export import Dim

    from ws3d_ros.models.network import OUTPUTS

    args = tuple(torch.from_numpy(np.ascontiguousarray(example[n])) for n in names)
    n_stages = sum(1 for n in names if n.startswith("down_"))
    levels = [Dim(f"M{level}", min=1) for level in range(n_stages + 1)]
    points, visible, classes = Dim("N", min=1), Dim("V", min=0), Dim("C", min=1)
    dims: dict[str, dict[int, Any]] = {
        "voxel_feats": {0: levels[0]},
        "point_feats": {0: points},
        "point_to_voxel": {0: points},
        "clip_feats": {0: visible},
        "clip_index": {0: points},
        "text_embeds": {0: classes},
    }
    for level in range(n_stages + 1):
        dims[f"subm_{level}"] = {0: levels[level]}
    for level in range(n_stages):
        dims[f"down_{level}"] = {0: levels[level + 1]}
        dims[f"up_{level}"] = {0: levels[level]}
    # forward(*dense, *sparse): the varargs take one nested tuple of specs.
    n_dense = names.index("subm_0")
    shapes = (*(dims[n] for n in names[:n_dense]), tuple(dims[n] for n in names[n_dense:]))
    net = net.eval()
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        # Axes sharing one Dim keep one name; the exporter warns about each: expected.
        warnings.filterwarnings("ignore", message="# The axis name")
        program = torch.onnx.export(
            net,
            args,
            dynamic_shapes=shapes,
            input_names=names,
            output_names=list(OUTPUTS),
            dynamo=True,
            optimize=True,
            verbose=False,
        )
    program.save(str(path))


def export_model(
    checkpoint: str | Path,
    out_dir: str | Path,
    *,
    frame: Frame,
    classes: list[str] | None = None,
    tensorrt: bool = False,
    fp16: bool = False,
    progress: bool = True,
) -> ParityReport:
    """Export ``checkpoint`` into ``out_dir`` (see the module docstring); ``frame`` is the
    example input and parity data (``ws3d export`` passes a simulated sweep:
    :func:`ws3d_ros.sim.rig.sample_frame`)."""
    from ws3d_ros.models.checkpoint import file_hash, load_model
    from ws3d_ros.models.clip.dense import ClipDenseEncoder
    from ws3d_ros.models.clip.export import export_dense_onnx
    from ws3d_ros.models.network import OUTPUTS, input_names

    checkpoint = Path(checkpoint)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    loaded = load_model(checkpoint)
    if loaded.net is None:
        raise Ws3dError(f"{checkpoint} holds no 3D network; nothing to export")
    config = loaded.config
    names = input_names(config)
    classes = classes or list(loaded.meta.get("classes") or ["road", "car", "building", "tree"])

    from ws3d_ros.runtime.backends import TorchBackend
    from ws3d_ros.runtime.pipeline import Pipeline

    ref = Pipeline(config, TorchBackend(loaded), classes=classes)
    example = _example_feeds(ref, frame)

    t = time.perf_counter()
    _export_net(loaded.net, example, names, out / "net.onnx")
    log.info("exported net.onnx in %.1f s", time.perf_counter() - t)
    t = time.perf_counter()
    h, w = (int(v) for v in config.clip["image_size"])
    export_dense_onnx(
        ClipDenseEncoder.from_clip(loaded.clip.model).eval(), out / "clip_image.onnx", (h, w)
    )
    log.info("exported clip_image.onnx in %.1f s", time.perf_counter() - t)
    if checkpoint.resolve() != (out / "checkpoint.pt").resolve():
        shutil.copyfile(checkpoint, out / "checkpoint.pt")
    norm = loaded.clip.norm
    meta = {
        "format": MODEL_FORMAT,
        "checkpoint": "checkpoint.pt",
        "net_onnx": "net.onnx",
        "clip_onnx": "clip_image.onnx",
        "inputs": names,
        "outputs": list(OUTPUTS),
        "clip": {
            "model": config.clip["model"],
            "pretrained": config.clip["pretrained"],
            "image_size": [h, w],
            "mean": list(norm.mean),
            "std": list(norm.std),
        },
        "embed_dim": loaded.embed_dim,
        "sha256": {f: file_hash(out / f) for f in ("net.onnx", "clip_image.onnx", "checkpoint.pt")},
    }
    (out / MODEL_JSON).write_text(json.dumps(meta, indent=2))

    report = parity(out, frame, classes, reference=ref)
    (out / "parity.json").write_text(json.dumps(asdict(report), indent=2))
    if tensorrt:
        from ws3d_ros.runtime.tensorrt_backend import TensorRTBackend

        TensorRTBackend(out, fp16=fp16)  # builds and caches the engines
    return report


def _example_feeds(pipeline: Any, frame: Frame) -> dict[str, np.ndarray]:
    from ws3d_ros.models.inputs import camera_hits_for, camera_inputs, feeds, prepare_geometry

    geom = prepare_geometry(frame.points, pipeline.config)
    views = [v for v in frame.views if v.image is not None]
    hits = camera_hits_for(geom, views)
    maps = pipeline.backend.clip_features([v.image for v in views])
    sizes = [(v.image.shape[0], v.image.shape[1]) for v in views]
    cam = camera_inputs(geom, hits, maps, sizes, pipeline.backend.embed_dim)
    return feeds(geom, cam, pipeline._state.text)


def parity(
    model_dir: Path, frame: Frame, classes: list[str], *, reference: Any = None
) -> ParityReport:
    """torch vs ONNX Runtime on ``frame``: embeddings, offsets and labels."""
    from ws3d_ros.runtime.backends import OnnxRuntimeBackend, TorchBackend
    from ws3d_ros.runtime.pipeline import Pipeline

    if reference is None:
        torch_backend = TorchBackend.from_checkpoint(model_dir / "checkpoint.pt")
        reference = Pipeline(torch_backend.config, torch_backend, classes=classes)
    ref = reference
    ort_backend = OnnxRuntimeBackend(model_dir)
    feeds = _example_feeds(ref, frame)
    t = time.perf_counter()
    a = ref.backend.run_net(feeds)
    t_torch = (time.perf_counter() - t) * 1e3
    t = time.perf_counter()
    b = ort_backend.run_net(feeds)
    t_ort = (time.perf_counter() - t) * 1e3
    return ParityReport(
        points=len(feeds["point_feats"]),
        visible_points=len(feeds["clip_feats"]),
        classes=len(classes),
        max_abs_diff_embedding=float(np.abs(a["embedding"] - b["embedding"]).max()),
        max_abs_diff_offsets=float(np.abs(a["offsets"] - b["offsets"]).max()),
        label_agreement_pct=float((a["class_index"] == b["class_index"]).mean() * 100),
        torch_ms=t_torch,
        onnxruntime_ms=t_ort,
    )
