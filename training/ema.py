"""Exponential moving average of a network's weights (the model a run saves).

Polyak averaging of the iterates (Polyak & Juditsky, 1992) in its exponential form, as
in Mean Teacher (Tarvainen & Valpola, NeurIPS 2017) and timm's ``ModelEmaV2``: after
every optimiser step ``ema <- d * ema + (1 - d) * w`` for every floating-point tensor of
the network's ``state_dict`` (parameters and BatchNorm running statistics); integer
buffers (BatchNorm's ``num_batches_tracked``) are copied. ``d`` ramps up as
``min(decay, (1 + n) / (10 + n))`` after ``n`` updates so the first steps' random
weights do not linger. With few steps per frame the last iterate depends on the last
frames drawn; the average does not, and it is a little better on unseen sweeps.

Contract:
- :class:`WeightAverage` ``(net, decay)``; :meth:`update` after each optimiser step;
  :meth:`swapped` a context manager that loads the averaged weights into ``net`` and
  restores the trained ones on exit (saving or evaluating the average).
- :meth:`state_dict` / :meth:`load_state_dict` for ``--resume``.
- ``decay`` must be in ``(0, 1)``; the trainer builds one only for
  ``optim.ema_decay > 0``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn


class WeightAverage:
    """Exponential moving average of ``net``'s ``state_dict`` (module docstring)."""

    def __init__(self, net: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema decay must be in (0, 1), found {decay}")
        self.decay = float(decay)
        self.updates = 0
        self.shadow = {k: v.detach().clone() for k, v in net.state_dict().items()}

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        d = min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
        for k, v in net.state_dict().items():
            avg = self.shadow[k]
            if avg.dtype.is_floating_point:
                avg.mul_(d).add_(v.detach().to(avg.dtype), alpha=1.0 - d)
            else:
                avg.copy_(v)
        self.updates += 1

    @contextmanager
    def swapped(self, net: nn.Module) -> Iterator[nn.Module]:
        trained = {k: v.detach().clone() for k, v in net.state_dict().items()}
        net.load_state_dict(self.shadow)
        try:
            yield net
        finally:
            net.load_state_dict(trained)

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "updates": self.updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updates = int(state["updates"])
        for k, v in state["shadow"].items():
            self.shadow[k].copy_(v)
