"""The network: a plain ReLU MLP, kept apart from the Lightning training wrapper."""

import itertools
from typing import Any

import torch
from torch import nn

# Rows per forward call when scoring a whole split or file: the 1000-wide activations stay in
# cache (measured 2x faster than one batch) and memory stays flat however many rows there are
# (a 134k-row validation split in one call took 1.5 GB at the default size).
CHUNK = 1024


class MLP(nn.Module):
    """Linear -> ReLU (-> dropout) per hidden layer, then a linear layer to class logits."""

    def __init__(
        self, in_features: int, hidden: tuple[int, ...], out_features: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        sizes = [in_features, *hidden]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        self.output = nn.Linear(sizes[-1], out_features)
        self.dropout = nn.Dropout(dropout)

    @classmethod
    def from_architecture(cls, arch: dict[str, Any]) -> "MLP":
        """The network a model card's `architecture` entry describes (untrained)."""
        return cls(
            arch["in_features"], tuple(arch["hidden"]), arch["out_features"], arch["dropout"]
        )

    def activate(self, x: torch.Tensor) -> torch.Tensor:
        """The hidden layers' activation: ReLU (explain.naitzat's networks swap it)."""
        return torch.relu(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.hidden:
            x = self.dropout(self.activate(layer(x)))
        return self.output(x)

    def activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each hidden layer's output after its activation, then the logits (for topological
        analysis)."""
        out = []
        for layer in self.hidden:
            x = self.activate(layer(x))
            out.append(x)
        out.append(self.output(x))
        return out


def chunked_logits(net: nn.Module, x: torch.Tensor, *, progress: bool = False) -> torch.Tensor:
    """net(x), computed CHUNK rows at a time; up to CHUNK rows, exactly one call of net.
    `progress` shows the rows on a terminal (`topoxai.progress`)."""
    from topoxai.progress import bar

    with bar(len(x), "scoring", "rows", show=progress) as shown:
        out = []
        for chunk in x.split(CHUNK):
            out.append(net(chunk))
            shown.update(len(chunk))
    return torch.cat(out)
