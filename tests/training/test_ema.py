"""training.ema: the exponential moving average of a network's weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from training.ema import WeightAverage


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))


def test_average_follows_the_ramped_decay_and_copies_integer_buffers() -> None:
    net = _net()
    ema = WeightAverage(net, 0.5)
    w0 = net[0].weight.detach().clone()
    with torch.no_grad():
        net[0].weight.add_(1.0)
    net(torch.randn(8, 3))  # BatchNorm statistics and num_batches_tracked move
    ema.update(net)  # first update: d = min(0.5, 1 / 10) = 0.1
    expected = 0.1 * w0 + 0.9 * net[0].weight.detach()
    assert torch.allclose(ema.shadow["0.weight"], expected)
    assert int(ema.shadow["1.num_batches_tracked"]) == 1
    for _ in range(20):
        ema.update(net)  # converges to the (now constant) weights
    assert torch.allclose(ema.shadow["0.weight"], net[0].weight.detach(), atol=1e-5)


def test_swapped_loads_the_average_and_restores_the_weights() -> None:
    net = _net()
    ema = WeightAverage(net, 0.9)
    trained = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        for v in ema.shadow.values():
            if v.dtype.is_floating_point:
                v.add_(3.0)
    with ema.swapped(net) as swapped:
        assert swapped is net
        assert torch.equal(net[0].bias, trained["0.bias"] + 3.0)
    for k, v in net.state_dict().items():
        assert torch.equal(v, trained[k]), k


def test_state_round_trip_and_bad_decay() -> None:
    net = _net()
    a = WeightAverage(net, 0.9)
    with torch.no_grad():
        net[0].weight.mul_(2.0)
    a.update(net)
    b = WeightAverage(_net(), 0.9)
    b.load_state_dict(a.state_dict())
    assert b.updates == 1 and torch.equal(b.shadow["0.weight"], a.shadow["0.weight"])
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="decay"):
            WeightAverage(net, bad)
