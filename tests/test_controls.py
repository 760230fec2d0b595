"""topoxai.explain.controls: untrained networks drawn as the train stage draws its initialisation."""

import math
import subprocess
import sys

import lightning
import numpy as np
import pytest
import torch
from scipy import stats

from topoxai.artifacts import architecture
from topoxai.classifier import Classifier
from topoxai.errors import DataError
from topoxai.explain.controls import (
    control_persistence,
    control_seeds,
    initial_layers,
    last_hidden,
    start,
)
from topoxai.explain.topology import knn_persistence
from topoxai.model import MLP
from topoxai.pool import Pool


def test_control_seeds_are_derived_and_distinct():
    seeds = control_seeds(42, 3)
    assert len(set(seeds)) == 3 and seeds == control_seeds(42, 3)
    assert control_seeds(43, 3) != seeds


def _state(layers: list) -> dict[str, np.ndarray]:
    """A control's draw under the names of the MLP's state_dict."""
    names = [*(f"hidden.{i}" for i in range(len(layers) - 1)), "output"]
    return {f"{name}.{kind}": array for name, (weight, bias) in zip(names, layers, strict=True)
            for kind, array in (("weight", weight), ("bias", bias))}  # fmt: skip


def test_a_control_has_the_distribution_of_the_train_stages_initialisation():
    arch = architecture(Classifier(50, (200, 30), 2).net)
    control = _state(initial_layers(arch, 7))
    state = torch.random.get_rng_state()
    lightning.seed_everything(7, workers=True, verbose=False)  # as topoxai.train does
    started = Classifier(50, (200, 30), 2).net  # the train stage's own initialisation
    lightning.seed_everything(0, verbose=False)
    torch.random.set_rng_state(state)
    assert list(control) == list(started.state_dict())
    for name, tensor in started.state_dict().items():
        ours = control[name]
        assert ours.dtype == np.float64 and ours.shape == tuple(tensor.shape)
        theirs = tensor.double().numpy().ravel()
        layer = started.get_submodule(name.rsplit(".", 1)[0])
        assert isinstance(layer, torch.nn.Linear)
        bound = 1 / math.sqrt(layer.in_features)
        assert np.abs(ours).max() <= bound and np.abs(theirs).max() <= bound
        if ours.size >= 200:  # the same uniform distribution (not the same draws)
            assert stats.ks_2samp(ours.ravel(), theirs).pvalue > 0.01, name
            assert not np.array_equal(ours.ravel(), theirs)


def test_controls_are_seeded():
    arch = architecture(Classifier(5, (7, 3), 2).net)
    first, second, again = (initial_layers(arch, seed)[0][0] for seed in (1, 2, 1))
    assert np.array_equal(again, first)
    assert not np.array_equal(second, first)


def test_a_controls_last_hidden_layer_is_the_mlps_in_numpy():
    """The workers run a control in numpy (no torch there): the same activations as the
    MLP built from the same draw, and its diagrams are knn_persistence of them per class."""
    arch = architecture(Classifier(6, (40, 30), 2).net)
    x = np.random.default_rng(0).normal(size=(50, 6))
    net = MLP.from_architecture(arch).double()
    net.load_state_dict(
        {name: torch.from_numpy(a) for name, a in _state(initial_layers(arch, 11)).items()}
    )
    with torch.no_grad():
        expected = net.activations(torch.from_numpy(x))[-2].numpy()
    ours = last_hidden(initial_layers(arch, 11), x)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-12)
    groups = [np.arange(25), np.arange(25, 50)]
    diagrams = control_persistence(arch, 11, x, groups, 4, 6.0)
    for rows, diagram in zip(groups, diagrams, strict=True):
        for dim in (0, 1):
            np.testing.assert_array_equal(diagram[dim], knn_persistence(ours[rows], 4, 6.0)[dim])


def test_starting_controls_checks_the_class_sizes_first():
    labels = np.repeat([0, 1], [30, 9])
    with Pool(1, 1) as pool, pytest.raises(DataError, match=r"explain.k = 4 needs more than 9"):
        start(pool, {"in_features": 2, "hidden": [3], "out_features": 2},
              np.zeros((39, 2)), labels, seed=0, count=2, k=4, max_scale=1.0)  # fmt: skip


def test_the_explain_stage_draws_its_rows_and_starts_controls_without_torch():
    """What the stage does before importing torch (so that its workers compute meanwhile)."""
    code = "import sys, topoxai.explain.sample, topoxai.explain.controls, topoxai.artifacts, topoxai.pool; "
    code += "print(sorted({'torch', 'lightning', 'kmapper'} & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout == "[]\n"
