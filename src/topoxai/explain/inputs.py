"""The two networks the explain stage analyses, the rows it analyses them on, and their layers."""

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from topoxai.artifacts import load_initial, load_model
from topoxai.errors import DataError
from topoxai.explain.sample import Sample
from topoxai.features import SPEC_FILE
from topoxai.model import MLP
from topoxai.params import ParamsError

NETWORKS = ("trained", "control")


@dataclass(frozen=True)
class Inputs:
    """The two networks and the rows each part analyses (sampled, so cost is bounded)."""

    trained: MLP
    control: MLP  # the same architecture with the weights training started from (saved)
    rows: Sample  # drawn by `sample.draw` from data of the model's own preprocessing


def load_inputs(model_dir: Path, rows: Sample) -> Inputs:
    """The trained model and its untrained control, with the rows `sample.draw` drew for it
    (from data the model's own preprocessing produced: checked here)."""
    model = load_model(model_dir)
    if rows.spec != model.spec:
        raise DataError(
            f"{rows.folder / SPEC_FILE}: not the preprocessing {model_dir} was trained with; "
            "rerun the pipeline"
        )
    return Inputs(trained=model.net, control=load_initial(model_dir, model.card), rows=rows)


def in_float64(inputs: Inputs) -> Inputs:
    """The networks in float64, as the rows already are, for every analysis of this stage.

    A float32 forward pass differs in its last bits between CPUs (and between torch's
    AVX2, AVX-512 and plain kernels), enough to flip the sixth digit of a written number and
    so the outputs' hash in dvc.lock. In float64 that noise sits ten digits below anything
    written; at this stage's sizes the cost is negligible.
    """
    return dataclasses.replace(
        inputs,
        trained=copy.deepcopy(inputs.trained).double(),
        control=copy.deepcopy(inputs.control).double(),
    )


def layer_names(requested: tuple[str, ...], n_hidden: int) -> list[str]:
    """Expand `hidden` to every hidden layer and order the names from input to logits."""
    order = ["input", *(f"hidden{i}" for i in range(1, n_hidden + 1)), "logits"]
    chosen = set()
    for name in requested:
        if name == "hidden":
            chosen.update(order[1:-1])
        elif name in order:
            chosen.add(name)
        else:
            raise ParamsError(
                f"explain.layers: the model has no layer {name} (it has hidden1..hidden{n_hidden})"
            )
    return [name for name in order if name in chosen]


@torch.no_grad()
def representations(net: MLP, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every representation of the rows `x`: input, each hidden layer after its activation
    (ReLU in the pipeline's MLP), logits."""
    outputs = net.eval().activations(torch.as_tensor(x))
    names = [*(f"hidden{i}" for i in range(1, len(outputs))), "logits"]
    layers = {name: out.double().numpy() for name, out in zip(names, outputs)}
    return {"input": x.astype(np.float64), **layers}
