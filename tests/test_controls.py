"""topoxai.controls: untrained networks drawn as the train stage draws its initialisation."""

import math

import lightning
import numpy as np
import torch
from scipy import stats

from topoxai.artifacts import architecture
from topoxai.classifier import Classifier
from topoxai.controls import control_seeds, untrained


def test_control_seeds_are_derived_and_distinct():
    seeds = control_seeds(42, 3)
    assert len(set(seeds)) == 3 and seeds == control_seeds(42, 3)
    assert control_seeds(43, 3) != seeds


def test_a_control_has_the_distribution_of_the_train_stages_initialisation():
    arch = architecture(Classifier(50, (200, 30), 2).net)
    (control,) = untrained(arch, [7])
    state = torch.random.get_rng_state()
    lightning.seed_everything(7, workers=True, verbose=False)  # as topoxai.train does
    started = Classifier(50, (200, 30), 2).net  # the train stage's own initialisation
    lightning.seed_everything(0, verbose=False)
    torch.random.set_rng_state(state)
    for name, tensor in started.state_dict().items():
        ours = control.state_dict()[name].numpy()
        assert ours.dtype == np.float64 and ours.shape == tuple(tensor.shape)
        theirs = tensor.double().numpy().ravel()
        layer = started.get_submodule(name.rsplit(".", 1)[0])
        assert isinstance(layer, torch.nn.Linear)
        bound = 1 / math.sqrt(layer.in_features)
        assert np.abs(ours).max() <= bound and np.abs(theirs).max() <= bound
        if ours.size >= 200:  # the same uniform distribution (not the same draws)
            assert stats.ks_2samp(ours.ravel(), theirs).pvalue > 0.01, name
            assert not np.array_equal(ours.ravel(), theirs)


def test_controls_are_seeded_and_leave_torchs_generator_alone():
    arch = architecture(Classifier(5, (7, 3), 2).net)
    state = torch.random.get_rng_state()
    first, second = untrained(arch, [1, 2])
    assert torch.equal(torch.random.get_rng_state(), state)
    (again,) = untrained(arch, [1])
    weight = {name: net.state_dict()["hidden.0.weight"] for name, net in
              (("first", first), ("second", second), ("again", again))}  # fmt: skip
    assert torch.equal(weight["again"], weight["first"])
    assert not torch.equal(weight["second"], weight["first"])
