"""Inference backends behind one interface: ``torch``, ``onnxruntime``, ``tensorrt``.

Contract: a :class:`Backend` exposes
- ``clip_features(images)``: RGB uint8 ``(H, W, 3)`` images -> dense CLIP maps
  ``(h, w, D)`` float32 (unit vectors), after resizing to ``config.clip.image_size``;
- ``run_net(feeds)``: the 3D network on the ``{name: array}`` inputs of
  :func:`ws3d_ros.models.inputs.feeds` -> ``class_index, score, offsets, embedding``;
- ``encode_text(names, templates)``: ``(C, D)`` float32 unit text embeddings (the CLIP
  text tower in torch on every backend; it runs only for names not seen before);
- ``embed_dim``, ``temperature``, ``has_net``, ``config``, ``name``;
- the device-resident runtime's entries: ``clip_maps_t(images, staging)`` -> one
  ``(h, w, D)`` float32 map per image on ``staging.device``, and ``run_net_t(feeds)`` on
  ``{name: tensor}`` -> ``{name: tensor}`` on the same device. The torch backend runs both
  on its device (images are uploaded as uint8 and resized/normalised there) in the
  precision set by ``set_precision`` (``fp32 | fp16 | bf16``, autocast); on CUDA it
  replays a CUDA graph of the image tower unless its ``cuda_graphs`` attribute is False,
  and one of the 3D net (inputs padded to size buckets,
  :mod:`ws3d_ros.models.device.graphs`; same results on the real rows) only when
  ``cuda_graph_net`` is True: measured on an H200 the net is GPU-bound, so the padding
  costs more than the saved launches (docs/runtime.md). The others go through their
  numpy entries (zero-copy on CPU).
:func:`create_backend` builds one from a model directory (``ws3d export``: ONNX graphs,
``model.json`` and the checkpoint) or a checkpoint file (torch only). Every file
``model.json`` names is checked against its SHA-256 before it is read
(:mod:`ws3d_ros.runtime.integrity`), checkpoints load weights-only, and a graph ONNX
Runtime cannot load is a one-line :class:`BackendError`. A backend that
cannot load raises :class:`BackendError` naming the fallback (``onnxruntime`` on CPU).
TensorRT lives in :mod:`ws3d_ros.runtime.tensorrt_backend` and is imported only when
asked for.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ws3d_ros.errors import Ws3dError
from ws3d_ros.models.config import ModelConfig
from ws3d_ros.runtime.integrity import ModelIntegrityError, verify_model_dir

BACKENDS = ("torch", "onnxruntime", "tensorrt")
MODEL_JSON = "model.json"
MODEL_FORMAT = "ws3d-model/1"


class BackendError(Ws3dError):
    """A backend cannot be created here (missing library, device, or model files)."""


def read_model_json(model_dir: Path) -> dict[str, Any]:
    path = model_dir / MODEL_JSON
    if not path.is_file():
        raise BackendError(
            f"{model_dir} is not an exported model directory (no {MODEL_JSON}); "
            "run `ws3d export --checkpoint CKPT --out DIR` first"
        )
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BackendError(f"{path} cannot be read: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != MODEL_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise BackendError(f"{path}: unknown format {found!r}, expected {MODEL_FORMAT}")
    try:
        verify_model_dir(model_dir, meta)
    except ModelIntegrityError as exc:
        raise BackendError(str(exc)) from exc
    return meta


def onnx_session(path: Path, opts: Any, providers: list[str]) -> Any:
    """An ONNX Runtime session over ``path``; a file it cannot load is a one-line
    :class:`BackendError`."""
    import onnxruntime as ort

    try:
        return ort.InferenceSession(str(path), opts, providers=providers)
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
        detail = " ".join(str(exc).split())[:200]
        raise BackendError(f"{path}: ONNX Runtime cannot load it: {detail}") from exc


def checkpoint_path(path: Path) -> Path:
    """The checkpoint of a model directory, or ``path`` itself when it is a file."""
    if path.is_dir():
        return path / read_model_json(path)["checkpoint"]
    return path


class Backend(ABC):
    """Common part: the torch model (text tower always; image tower/net for torch)."""

    name = "base"

    def __init__(self, loaded: Any, device: str = "cpu") -> None:
        from ws3d_ros.models.clip.text import TextEncoder

        self.loaded = loaded
        self.config: ModelConfig = loaded.config
        self.embed_dim: int = loaded.embed_dim
        self.device = device
        self._text = TextEncoder(loaded.clip.model, loaded.clip.tokenizer, device=device)
        self.image_size = tuple(int(v) for v in self.config.clip["image_size"])

    @property
    def has_net(self) -> bool:
        return self.loaded.net is not None

    @property
    def temperature(self) -> float:
        if self.loaded.net is not None:
            return float(self.loaded.net.head.temperature.detach())
        return float(self.config.head["temperature"])

    def encode_text(self, names: Sequence[str], templates: Sequence[str]) -> np.ndarray:
        return self._text.encode_numpy(list(names), list(templates))

    def preprocess(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """``(B, 3, H, W)`` float32 normalised batch at ``config.clip.image_size``."""
        from ws3d_ros.models.clip.dense import preprocess

        norm = self.loaded.clip.norm
        return np.stack(
            [preprocess(im, self.image_size, mean=norm.mean, std=norm.std).numpy() for im in images]
        )

    def clip_features(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        if not images:
            return []
        maps = self._dense(self.preprocess(images))  # (B, D, h, w)
        return [np.ascontiguousarray(m.transpose(1, 2, 0)) for m in maps]

    @abstractmethod
    def _dense(self, batch: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def run_net(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def set_precision(self, precision: str) -> None:
        """Only the torch backend runs in other precisions than float32."""
        if precision != "fp32":
            raise BackendError(
                f"precision {precision} needs backend torch ({self.name} runs fp32 here)"
            )

    def clip_maps_t(self, images: Sequence[np.ndarray], staging: Any) -> list[Any]:
        import torch

        return [torch.from_numpy(m).to(staging.device) for m in self.clip_features(images)]

    def run_net_t(self, feeds: dict[str, Any]) -> dict[str, Any]:
        import torch

        out = self.run_net({k: v.cpu().numpy() for k, v in feeds.items()})
        device = feeds["voxel_feats"].device
        return {k: torch.from_numpy(np.ascontiguousarray(v)).to(device) for k, v in out.items()}


class TorchBackend(Backend):
    """The reference: eager PyTorch (training, parity checks)."""

    name = "torch"

    def __init__(self, loaded: Any, device: str = "cpu") -> None:
        from ws3d_ros.models.clip.dense import ClipDenseEncoder

        super().__init__(loaded, device)
        self.dense = ClipDenseEncoder.from_clip(loaded.clip.model).to(device).eval()
        stride = self.dense.stride
        if any(v % stride for v in self.image_size):
            raise BackendError(
                f"clip.image_size {list(self.image_size)} must be multiples of the image "
                f"tower's patch size {stride}"
            )

    @classmethod
    def from_checkpoint(cls, path: Path, *, device: str = "cpu") -> TorchBackend:
        from ws3d_ros.models.checkpoint import load_model

        return cls(load_model(path, device=device), device)

    @classmethod
    def clip_only(cls, config: ModelConfig, *, device: str = "cpu") -> TorchBackend:
        from ws3d_ros.models.checkpoint import build_model

        return cls(build_model(config, device=device, with_net=False), device)

    autocast: Any = None  # torch dtype of set_precision, None for float32
    #: Replay a CUDA graph of the image tower on a CUDA device (eager when False).
    cuda_graphs: bool = True
    #: Also replay bucket-padded CUDA graphs of the 3D net (off: slower on an H200).
    cuda_graph_net: bool = False
    _graphed_net: Any = None
    _graphed_tower: Any = None

    def _graphs_on(self) -> bool:
        return self.cuda_graphs and str(self.device).startswith("cuda")

    def _dense(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.dense(torch.from_numpy(batch).to(self.device)).float().cpu().numpy()

    def run_net(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.loaded.net is None:
            raise BackendError("this model has no 3D network (CLIP only)")
        return self.loaded.net.run(feeds)

    def set_precision(self, precision: str) -> None:
        from ws3d_ros.models.device.precision import autocast_dtype

        self.autocast = autocast_dtype(precision)

    def clip_maps_t(self, images: Sequence[np.ndarray], staging: Any) -> list[Any]:
        """Upload uint8 images, resize/normalise and run the tower on the device."""
        import torch

        from ws3d_ros.models.device.images import preprocess_t

        norm = self.loaded.clip.norm
        batch = torch.stack(
            [
                preprocess_t(staging.upload(im, f"image{k}"), self.image_size, norm.mean, norm.std)
                for k, im in enumerate(images)
            ]
        )
        dt = self.autocast
        maps = None
        if self._graphs_on() and batch.is_cuda:
            from ws3d_ros.models.device.graphs import GraphedTower

            if self._graphed_tower is None:
                self._graphed_tower = GraphedTower(self.dense)
            maps = self._graphed_tower(batch, autocast=dt)
        if maps is None:
            with (
                torch.inference_mode(),
                torch.autocast(
                    batch.device.type, dtype=dt or torch.float32, enabled=dt is not None
                ),
            ):
                maps = self.dense(batch).float()  # (B, D, h, w) unit vectors
        return list(maps.permute(0, 2, 3, 1).contiguous())

    def run_net_t(self, feeds: dict[str, Any]) -> dict[str, Any]:
        net = self.loaded.net
        if net is None:
            raise BackendError("this model has no 3D network (CLIP only)")
        if self.cuda_graph_net and self._graphs_on() and feeds["voxel_feats"].is_cuda:
            from ws3d_ros.models.device.graphs import GraphedNet

            if self._graphed_net is None:
                self._graphed_net = GraphedNet(net)
            out = self._graphed_net(feeds, autocast=self.autocast)
            if out is not None:
                return out
        return net.run_tensors(feeds, autocast=self.autocast)


class OnnxRuntimeBackend(Backend):
    """ONNX Runtime over the exported graphs (CPU robots, CI; CUDA provider if asked)."""

    name = "onnxruntime"

    def __init__(self, model_dir: Path, *, device: str = "cpu", threads: int = 0) -> None:
        from ws3d_ros.models.checkpoint import load_model

        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendError(
                "onnxruntime is not installed (pip install onnxruntime); fallback: backend torch"
            ) from exc
        meta = read_model_json(model_dir)
        super().__init__(load_model(model_dir / meta["checkpoint"]), "cpu")
        self.meta = meta
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise BackendError(
                    "onnxruntime has no CUDA provider here (install onnxruntime-gpu); "
                    "fallback: device cpu"
                )
            providers.insert(0, "CUDAExecutionProvider")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._net = onnx_session(model_dir / meta["net_onnx"], opts, providers)
        self._clip = onnx_session(model_dir / meta["clip_onnx"], opts, providers)
        self._net_inputs = [i.name for i in self._net.get_inputs()]
        self._clip_input = self._clip.get_inputs()[0].name

    def _dense(self, batch: np.ndarray) -> np.ndarray:
        return self._clip.run(None, {self._clip_input: batch.astype(np.float32)})[0]

    def run_net(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outs = self._net.run(list(self.meta["outputs"]), {k: feeds[k] for k in self._net_inputs})
        return dict(zip(self.meta["outputs"], outs, strict=True))


def create_backend(name: str, path: Path, *, device: str = "cpu", fp16: bool = False) -> Backend:
    """Backend ``name`` over a model directory or (torch only) a checkpoint file."""
    if name not in BACKENDS:
        raise BackendError(f"backend must be one of {BACKENDS}, found {name!r}")
    if not path.exists():
        raise BackendError(f"model {path} does not exist")
    if name == "torch":
        return TorchBackend.from_checkpoint(checkpoint_path(path), device=device)
    if not path.is_dir():
        raise BackendError(
            f"backend {name} needs an exported model directory; {path} is a file "
            "(run `ws3d export --checkpoint FILE --out DIR`, or use backend torch)"
        )
    if name == "onnxruntime":
        return OnnxRuntimeBackend(path, device=device)
    from ws3d_ros.runtime.tensorrt_backend import TensorRTBackend

    return TensorRTBackend(path, device=device, fp16=fp16)
