"""CUDA graphs over the 3D network and the CLIP tower, with sizes padded to buckets.

Contract:
- :func:`bucket` rounds a row count up to a ladder of sizes (multiples of 64, each step
  ~1.25x the last), so a stream of sweeps whose voxel/point counts drift by a few percent
  reuses a handful of shapes.
- :func:`pad_net_inputs` pads every input of :meth:`PanopticNet.forward` to its bucket so
  the padded network computes, on the real rows, exactly what the unpadded one computes:
  each level's padded voxel rows point every tap at the sentinel, sentinels ``M_l`` (and the
  lifted-feature sentinel ``V``) are renumbered to the padded count, padded points read
  voxel 0 and no camera row. Padded rows never feed a real row (all gathers of real rows
  go to real rows or the zero sentinel row; batch norm, layer norm and the head are
  per-row), so slicing the outputs to ``N`` gives the unpadded result (tests: CPU, 1e-5 and
  identical classes). Pure torch on any device; the CPU path and the ONNX export never
  call it.
- :class:`GraphCache` captures one ``torch.cuda.CUDAGraph`` per input-shape key (static
  input buffers, a memory pool shared by the cache's graphs, at most ``max_graphs``, least
  recently used dropped) and replays it: inputs are copied into the static buffers, the
  outputs cloned right after the replay (so a later replay of another graph in the shared
  pool cannot overwrite what the caller holds). Autocast runs with ``cache_enabled=False``
  inside captures (torch's rule for graphs). A capture that fails disables the cache
  (eager from then on) with one warning.
- :class:`GraphedNet` / :class:`GraphedTower` put the two together for the runtime
  (:class:`~ws3d_ros.runtime.backends.TorchBackend` replays the tower's graph on CUDA
  unless ``cuda_graphs`` is False, the net's only when ``cuda_graph_net`` is True).

Measured on an H200 (bench/gpu_probe.py, docs/runtime.md): the tower's graph saves ~2 ms
per camera batch in bf16 (7.4 -> 5.4 ms); the net's graph is slower (bf16 12.6 -> 14.2
ms, fp32 18.1 -> 20.5 ms): the net is bound by its GPU work (27-tap gathers), not by
launches, so the padded rows cost more than the saved launches. It stays opt-in.
"""

from __future__ import annotations

import math
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

import torch
from torch import Tensor

from ws3d_ros.models.sparse.rulebook import SparseIndex

#: The smallest bucket and the granularity of every bucket (rows).
QUANTUM = 64
#: Growth factor between consecutive buckets.
GROWTH = 1.25


def bucket(n: int, growth: float = GROWTH, quantum: int = QUANTUM) -> int:
    """The smallest size of the ladder ``quantum, ~quantum * growth, ...`` that is ``>= n``.

    Every size is a multiple of ``quantum``; consecutive sizes differ by at most a factor
    ``growth`` (or one quantum), so padding wastes at most ~``growth - 1`` of the rows.
    """
    if n <= quantum:
        return quantum
    size = quantum
    while size < n:
        size = max(size + quantum, math.ceil(size * growth / quantum) * quantum)
    return size


def _pad_rows(
    x: Tensor,
    rows: int,
    fill: float | int,
    *,
    sentinel: int | None = None,
    new_sentinel: int | None = None,
    out: Tensor | None = None,
) -> Tensor:
    """``x`` padded with ``fill`` rows to ``rows``; values ``sentinel`` become
    ``new_sentinel``. Written into ``out`` when given (same shape and dtype)."""
    if out is None:
        out = x.new_empty((rows, *x.shape[1:]))
    m = x.shape[0]
    head = out[:m]
    head.copy_(x)
    if sentinel is not None and sentinel != new_sentinel:
        head.masked_fill_(x == sentinel, new_sentinel)
    out[m:].fill_(fill)
    return out


def net_input_order(num_stages: int) -> list[str]:
    """The forward's input names (dense inputs, then the tables)."""
    from ws3d_ros.models.network import DENSE_INPUTS

    return [*DENSE_INPUTS, *SparseIndex.input_names(num_stages)]


def padded_sizes(feeds: dict[str, Tensor], num_stages: int) -> dict[str, int]:
    """Row buckets: ``m{l}`` per level, ``n`` points, ``v`` lifted rows."""
    sizes = {f"m{l}": bucket(int(feeds[f"subm_{l}"].shape[0])) for l in range(num_stages + 1)}
    sizes["n"] = bucket(int(feeds["point_feats"].shape[0]))
    sizes["v"] = bucket(int(feeds["clip_feats"].shape[0]))
    return sizes


def pad_net_inputs(
    feeds: dict[str, Tensor],
    num_stages: int,
    sizes: dict[str, int] | None = None,
    out: Sequence[Tensor] | None = None,
) -> list[Tensor]:
    """The network's inputs (in :func:`net_input_order`) padded to ``sizes`` (default:
    :func:`padded_sizes`), written into ``out`` when given (module docstring)."""
    sizes = sizes or padded_sizes(feeds, num_stages)
    real = {f"m{l}": int(feeds[f"subm_{l}"].shape[0]) for l in range(num_stages + 1)}
    v_real = int(feeds["clip_feats"].shape[0])
    specs: dict[str, dict[str, Any]] = {
        "voxel_feats": {"rows": sizes["m0"], "fill": 0.0},
        "point_feats": {"rows": sizes["n"], "fill": 0.0},
        "point_to_voxel": {"rows": sizes["n"], "fill": 0},
        "clip_feats": {"rows": sizes["v"], "fill": 0.0},
        "clip_index": {
            "rows": sizes["n"],
            "fill": sizes["v"],
            "sentinel": v_real,
            "new_sentinel": sizes["v"],
        },
        "text_embeds": {"rows": int(feeds["text_embeds"].shape[0]), "fill": 0.0},
    }
    for l in range(num_stages + 1):
        m, b = real[f"m{l}"], sizes[f"m{l}"]
        specs[f"subm_{l}"] = {"rows": b, "fill": b, "sentinel": m, "new_sentinel": b}
    for l in range(num_stages):
        m, b = real[f"m{l}"], sizes[f"m{l}"]
        # down_l: rows at level l+1, values at level l (sentinel M_l).
        specs[f"down_{l}"] = {
            "rows": sizes[f"m{l + 1}"],
            "fill": b,
            "sentinel": m,
            "new_sentinel": b,
        }
        # up_l: rows at level l, values 8 * parent + k (parents keep their rows).
        specs[f"up_{l}"] = {"rows": b, "fill": 0}
    names = net_input_order(num_stages)
    outs = list(out) if out is not None else [None] * len(names)
    return [
        _pad_rows(feeds[name], out=o, **specs[name]) for name, o in zip(names, outs, strict=True)
    ]


class GraphCache:
    """One captured CUDA graph per key of ``fn(*static_inputs) -> tuple of tensors``."""

    def __init__(self, fn: Callable[..., Sequence[Tensor]], *, max_graphs: int = 16) -> None:
        self.fn = fn
        self.max_graphs = max_graphs
        self.enabled = True
        self.captures = 0
        self._graphs: OrderedDict[Any, tuple[Any, list[Tensor], list[Tensor]]] = OrderedDict()
        self._pool: Any = None

    def __len__(self) -> int:
        return len(self._graphs)

    def static_inputs(self, key: Any) -> list[Tensor] | None:
        """The static buffers of ``key``'s graph (None before its capture)."""
        entry = self._graphs.get(key)
        return None if entry is None else entry[1]

    def capture(self, key: Any, inputs: list[Tensor], *, warmup: int = 2) -> None:
        """Capture ``fn`` over ``inputs`` (they become the graph's static buffers)."""
        if self._pool is None:
            self._pool = torch.cuda.graph_pool_handle()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):  # lazy inits (cuBLAS handles, workspaces) off the capture
                self.fn(*inputs)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        # thread_local: CUDA calls of other threads (the node's text encoder) may go on.
        with torch.cuda.graph(graph, pool=self._pool, capture_error_mode="thread_local"):
            outputs = list(self.fn(*inputs))
        while len(self._graphs) >= self.max_graphs:
            self._graphs.popitem(last=False)
        self._graphs[key] = (graph, inputs, outputs)
        self.captures += 1

    def replay(self, key: Any) -> list[Tensor]:
        """Replay ``key``'s graph; clones of its outputs."""
        graph, _, outputs = self._graphs[key]
        self._graphs.move_to_end(key)
        graph.replay()
        return [o.clone() for o in outputs]

    def run(
        self, key: Any, fill: Callable[[list[Tensor] | None], list[Tensor]]
    ) -> list[Tensor] | None:
        """Outputs of ``key``'s graph after ``fill(static)`` wrote its inputs (``fill(None)``
        allocates them for a first capture); None once the cache is disabled."""
        if not self.enabled:
            return None
        static = self.static_inputs(key)
        if static is not None:
            fill(static)
            return self.replay(key)
        inputs = fill(None)
        try:
            self.capture(key, inputs)
        except Exception as exc:  # a non-capturable op: stay eager from now on
            self.enabled = False
            self._graphs.clear()
            warnings.warn(
                f"CUDA graph capture failed ({exc!r:.200}); running eagerly", stacklevel=2
            )
            return None
        return self.replay(key)


def _autocast(device: torch.device, dtype: torch.dtype | None) -> Any:
    if dtype is None:
        return nullcontext()
    return torch.autocast(device.type, dtype=dtype, cache_enabled=False)


class GraphedNet:
    """:meth:`PanopticNet.run_tensors` through CUDA graphs over bucket-padded inputs."""

    def __init__(self, net: Any, *, max_graphs: int = 16) -> None:
        from ws3d_ros.models.network import num_stages

        self.net = net
        self.num_stages = num_stages(net.config)
        self.autocast: torch.dtype | None = None
        self.cache = GraphCache(self._forward, max_graphs=max_graphs)

    def _forward(self, *args: Tensor) -> tuple[Tensor, ...]:
        n_dense = 6
        with _autocast(args[0].device, self.autocast):
            out = self.net.embed(*args[:5], list(args[n_dense:]))
        return self.net._outputs(out, args[5])

    def __call__(
        self, feeds: dict[str, Tensor], *, autocast: torch.dtype | None = None
    ) -> dict[str, Tensor] | None:
        """Outputs by name (``N`` rows), or None when graphs are disabled (run eagerly)."""
        from ws3d_ros.models.network import OUTPUTS

        self.net.check_devices(feeds)
        sizes = padded_sizes(feeds, self.num_stages)
        key = (
            autocast,
            tuple(sorted(sizes.items())),
            tuple(feeds["text_embeds"].shape),
            feeds["voxel_feats"].shape[1],
            feeds["point_feats"].shape[1],
        )
        self.autocast = autocast

        def fill(out: list[Tensor] | None) -> list[Tensor]:
            return pad_net_inputs(feeds, self.num_stages, sizes, out)

        with torch.inference_mode():
            outs = self.cache.run(key, fill)
        if outs is None:
            return None
        n = int(feeds["point_feats"].shape[0])
        return {name: o[:n] for name, o in zip(OUTPUTS, outs, strict=True)}


class GraphedTower:
    """The dense CLIP tower on a fixed ``(B, 3, H, W)`` batch through CUDA graphs."""

    def __init__(self, tower: Any, *, max_graphs: int = 4) -> None:
        self.tower = tower
        self.autocast: torch.dtype | None = None
        self.cache = GraphCache(self._forward, max_graphs=max_graphs)

    def _forward(self, batch: Tensor) -> tuple[Tensor]:
        with _autocast(batch.device, self.autocast):
            return (self.tower(batch).float(),)

    def __call__(self, batch: Tensor, *, autocast: torch.dtype | None = None) -> Tensor | None:
        """``(B, D, h, w)`` float32 maps, or None when graphs are disabled."""
        key = (autocast, tuple(batch.shape), batch.dtype)
        self.autocast = autocast

        def fill(out: list[Tensor] | None) -> list[Tensor]:
            if out is None:
                return [batch.clone()]
            out[0].copy_(batch)
            return out

        with torch.inference_mode():
            outs = self.cache.run(key, fill)
        return None if outs is None else outs[0]
