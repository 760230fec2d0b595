"""topoxai.controls: untrained networks drawn exactly as the train stage draws them."""

import lightning
import torch

from topoxai.artifacts import architecture
from topoxai.classifier import Classifier
from topoxai.controls import control_seeds, untrained


def test_an_untrained_control_is_the_train_stages_initialisation_under_its_seed():
    seeds = control_seeds(42, 3)
    assert len(set(seeds)) == 3 and seeds == control_seeds(42, 3)
    assert control_seeds(43, 3) != seeds
    state = torch.random.get_rng_state()
    for seed, control in zip(seeds, untrained(architecture(Classifier(5, (7, 3), 2).net), seeds)):
        lightning.seed_everything(seed, workers=True, verbose=False)  # as topoxai.train does
        started = Classifier(5, (7, 3), 2).net
        for name, tensor in started.state_dict().items():
            assert torch.equal(control.state_dict()[name], tensor.double()), name
    lightning.seed_everything(0, verbose=False)
    torch.random.set_rng_state(state)
