"""TensorRT backend: engines built from the exported ONNX graphs, cached on disk.

Contract:
- Engines are built with the TensorRT Python API (``tensorrt`` >= 10) from ``net.onnx``
  and ``clip_image.onnx`` of a model directory, FP32 or FP16 (``fp16=True``), with one
  optimisation profile covering the dynamic point/voxel/class counts and image sizes in
  :data:`PROFILE` (override per model in ``model.json`` ``tensorrt_profile``).
- Cache: ``<model_dir>/engines/<graph>-<key>.engine`` where ``key`` hashes the ONNX
  SHA-256, the TensorRT version, the GPU name and the precision. A cached engine that
  fails to deserialise (corrupt, stale TensorRT) is deleted and rebuilt, never trusted.
- I/O buffers are torch CUDA tensors on one stream; inputs are cast to the dtype the
  engine declares (TensorRT may narrow int64 indices to int32).
- No GPU, no ``tensorrt`` or no CUDA torch -> :class:`BackendError` naming the fallback
  (``onnxruntime``). Validated on a GPU by ``scripts/gpu_check.sh``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ws3d_ros.runtime.backends import Backend, BackendError, read_model_json

log = logging.getLogger(__name__)

# Dynamic dimension ranges (min, opt, max) by exported dim name.
PROFILE: dict[str, tuple[int, int, int]] = {
    "N": (1, 120_000, 260_000),  # points kept in range
    "V": (0, 25_000, 260_000),  # points a camera sees
    "C": (1, 20, 512),  # classes in the vocabulary
    "M0": (1, 90_000, 260_000),  # voxels per level
    "M1": (1, 50_000, 200_000),
    "M2": (1, 20_000, 120_000),
    "M3": (1, 8_000, 60_000),
    "M4": (1, 3_000, 30_000),
    "M5": (1, 1_500, 15_000),
    "B": (1, 1, 6),  # images per batch
    "H": (224, 384, 928),  # replaced by the model's clip.image_size at load
    "W": (224, 1248, 1600),
}


def _dims_of(name: str, n_stages: int) -> list[str]:
    """Symbolic dim names of one exported input (first axis; images: B, 3, H, W)."""
    if name in ("image", "images"):
        return ["B", "", "H", "W"]
    table = {
        "voxel_feats": "M0",
        "point_feats": "N",
        "point_to_voxel": "N",
        "clip_feats": "V",
        "clip_index": "N",
        "text_embeds": "C",
    }
    if name in table:
        return [table[name]]
    kind, level = name.rsplit("_", 1)
    level_i = int(level) + (1 if kind == "down" else 0)
    return [f"M{level_i}"]


class TensorRTBackend(Backend):
    """Engines + torch CUDA buffers (see the module docstring)."""

    name = "tensorrt"

    def __init__(self, model_dir: Path, *, device: str = "cuda", fp16: bool = False) -> None:
        try:
            import tensorrt as trt
        except ImportError as exc:
            raise BackendError(
                "TensorRT is not installed (pip install tensorrt, on a machine with an NVIDIA "
                "GPU); fallback: backend onnxruntime"
            ) from exc
        import torch

        if not torch.cuda.is_available():
            raise BackendError("no CUDA GPU visible to torch; fallback: backend onnxruntime")
        from ws3d_ros.models.checkpoint import load_model

        meta = read_model_json(model_dir)
        self.meta = meta
        dev = device if device.startswith("cuda") else "cuda"
        super().__init__(load_model(model_dir / meta["checkpoint"]), "cpu")
        self.trt = trt
        self.cuda = torch.device(dev)
        self.fp16 = fp16
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        self.n_stages = sum(1 for n in meta["inputs"] if n.startswith("down_"))
        profile = dict(PROFILE)
        # The pipeline always resizes images to clip.image_size: one exact H x W.
        h, w = (int(v) for v in meta["clip"]["image_size"])
        profile["H"], profile["W"] = (h, h, h), (w, w, w)
        profile.update({k: tuple(v) for k, v in meta.get("tensorrt_profile", {}).items()})
        self.profile = profile
        self.stream = torch.cuda.Stream(device=self.cuda)
        self._net = self._engine(model_dir, meta["net_onnx"])
        self._clip = self._engine(model_dir, meta["clip_onnx"])
        self._net_ctx = self._net.create_execution_context()
        self._clip_ctx = self._clip.create_execution_context()

    # ----------------------------------------------------------------- engines
    def cache_key(self, onnx_path: Path) -> str:
        import torch

        parts = [
            hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
            self.trt.__version__,
            torch.cuda.get_device_name(self.cuda),
            "fp16" if self.fp16 else "fp32",
        ]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]

    def _engine(self, model_dir: Path, onnx_name: str) -> Any:
        onnx_path = model_dir / onnx_name
        cache = model_dir / "engines"
        cache.mkdir(exist_ok=True)
        key = self.cache_key(onnx_path)
        engine_path = cache / f"{Path(onnx_name).stem}-{key}.engine"
        if engine_path.is_file():
            engine = self.runtime.deserialize_cuda_engine(engine_path.read_bytes())
            if engine is not None:
                return engine
            log.warning("cached engine %s is unreadable: rebuilding", engine_path)
            engine_path.unlink()
        blob = self._build(onnx_path)
        tmp = engine_path.with_suffix(".tmp")
        tmp.write_bytes(blob)
        tmp.replace(engine_path)
        (cache / f"{engine_path.stem}.json").write_text(
            json.dumps({"onnx": onnx_name, "key": key, "fp16": self.fp16})
        )
        engine = self.runtime.deserialize_cuda_engine(blob)
        if engine is None:
            raise BackendError(f"TensorRT could not load the engine it built from {onnx_path}")
        return engine

    def _build(self, onnx_path: Path) -> bytes:
        trt = self.trt
        builder = trt.Builder(self.logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse_from_file(str(onnx_path)):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise BackendError(f"TensorRT cannot parse {onnx_path}: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 4 << 30)
        if self.fp16:
            config.set_flag(trt.BuilderFlag.FP16)
        profile = builder.create_optimization_profile()
        for i in range(network.num_inputs):
            tensor = network.get_input(i)
            shape = list(tensor.shape)
            dims = _dims_of(tensor.name, self.n_stages)
            lo, opt, hi = list(shape), list(shape), list(shape)
            for axis, dim in enumerate(dims):
                if dim and shape[axis] == -1:
                    lo[axis], opt[axis], hi[axis] = self.profile[dim]
            profile.set_shape(tensor.name, lo, opt, hi)
        config.add_optimization_profile(profile)
        log.info("building TensorRT engine from %s (minutes on first use)", onnx_path.name)
        blob = builder.build_serialized_network(network, config)
        if blob is None:
            raise BackendError(f"TensorRT failed to build an engine from {onnx_path}")
        return bytes(blob)

    # ---------------------------------------------------------------- inference
    def _torch_dtype(self, trt_dtype: Any) -> Any:
        import torch

        return torch.from_numpy(np.empty(0, dtype=self.trt.nptype(trt_dtype))).dtype

    def _run(self, engine: Any, ctx: Any, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        trt = self.trt
        keep: list[torch.Tensor] = []
        outputs: dict[str, torch.Tensor] = {}
        with torch.cuda.stream(self.stream):
            for i in range(engine.num_io_tensors):
                name = engine.get_tensor_name(i)
                if engine.get_tensor_mode(name) != trt.TensorIOMode.INPUT:
                    continue
                want = self._torch_dtype(engine.get_tensor_dtype(name))
                arr = np.ascontiguousarray(feeds[name])
                t = torch.from_numpy(arr).to(self.cuda, non_blocking=True).to(want)
                keep.append(t)
                ctx.set_input_shape(name, tuple(t.shape))
                ctx.set_tensor_address(name, t.data_ptr())
            for i in range(engine.num_io_tensors):
                name = engine.get_tensor_name(i)
                if engine.get_tensor_mode(name) != trt.TensorIOMode.OUTPUT:
                    continue
                shape = tuple(ctx.get_tensor_shape(name))
                dtype = self._torch_dtype(engine.get_tensor_dtype(name))
                out = torch.empty(shape, dtype=dtype, device=self.cuda)
                outputs[name] = out
                ctx.set_tensor_address(name, out.data_ptr())
            if not ctx.execute_async_v3(self.stream.cuda_stream):
                raise BackendError("TensorRT execution failed")
        self.stream.synchronize()
        return {k: v.cpu().numpy() for k, v in outputs.items()}

    def _dense(self, batch: np.ndarray) -> np.ndarray:
        name = self._clip.get_tensor_name(0)
        return next(iter(self._run(self._clip, self._clip_ctx, {name: batch}).values()))

    def run_net(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = self._run(self._net, self._net_ctx, feeds)
        out["class_index"] = out["class_index"].astype(np.int64)
        return out
