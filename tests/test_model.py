"""The network: shapes, activations and parameter names."""

import torch

from topoxai.model import MLP


def test_mlp_shapes_and_activations():
    net = MLP(21, (8, 4), 2)
    x = torch.randn(5, 21)
    assert net(x).shape == (5, 2)
    acts = net.activations(x)
    assert [a.shape[1] for a in acts] == [8, 4, 2]
    assert all((a >= 0).all() for a in acts[:-1])  # after ReLU
    assert torch.equal(acts[-1], net(x))
    assert list(net.state_dict()) == [
        "hidden.0.weight", "hidden.0.bias", "hidden.1.weight", "hidden.1.bias",
        "output.weight", "output.bias",
    ]  # fmt: skip
