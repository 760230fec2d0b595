"""The train stage's work: what it saves beside the trained weights."""

from pathlib import Path

import pandas as pd
import torch

from topoxai.artifacts import load_initial, load_model
from topoxai.model import MLP


def test_train_saves_the_weights_it_started_from(small_run: Path):
    """Known answer: the saved initial weights are a fresh MLP built under the card's seed."""
    folder = small_run / "models"
    model = load_model(folder)
    initial = load_initial(folder, model.card)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(model.card["training"]["seed"])
        fresh = MLP.from_architecture(model.card["architecture"])
    for name, tensor in fresh.state_dict().items():
        assert torch.equal(initial.state_dict()[name], tensor), name
    trained_weight, fresh_weight = (n.state_dict()["hidden.0.weight"] for n in (model.net, fresh))
    assert not torch.equal(trained_weight, fresh_weight)  # it trained


def test_train_writes_the_test_predictions_and_live_folder(small_run: Path):
    live = small_run / "reports/train"
    predictions = pd.read_csv(live / "test_predictions.csv")
    test = pd.read_parquet(small_run / "data/processed/test.parquet")
    assert predictions["row"].tolist() == test["row"].tolist()
    assert predictions["probability"].between(0, 1).all()
    assert (live / "metrics.json").is_file()
    assert (live / "plots/custom/roc.json").is_file()
