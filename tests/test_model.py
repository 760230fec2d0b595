"""The network, its training wrapper, the saved model folder and the metrics."""

import json
import math
from types import SimpleNamespace

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
from helpers import Repo
from sklearn.metrics import f1_score
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from topoxai.artifacts import ModelError, architecture, load_initial, load_model, save_model
from topoxai.classifier import Classifier, MacroF1, Splits, predict_proba, train_network
from topoxai.features import fit_preprocessor
from topoxai.metrics import classification_metrics, precision_recall_points, roc_points
from topoxai.model import MLP
from topoxai.params import ParamsError


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


def test_val_f1_is_macro_f1_over_every_batch_and_every_class():
    """Three validation batches; class 1 is absent from the first, class 2 from all of them."""
    module = Classifier(3, (3,), 3)
    # Identity layers: each row is predicted as its largest column.
    eye, zero = torch.eye(3), torch.zeros(3)
    module.net.load_state_dict(
        {"hidden.0.weight": eye, "hidden.0.bias": zero, "output.weight": eye, "output.bias": zero}
    )
    y = torch.tensor([0, 0, 0, 0, 0, 1, 1, 0, 1, 1, 0, 1])
    pred = torch.tensor([0, 0, 0, 0, 1, 1, 0, 0, 1, 0, 0, 1])
    x = torch.nn.functional.one_hot(pred, 3).float()
    trainer = L.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.validate(module, DataLoader(TensorDataset(x, y), batch_size=4), verbose=False)
    logged = trainer.callback_metrics["val_f1"].item()

    # class 0: tp 6, 8 predicted + 7 true -> 12/15; class 1: tp 3, 4 + 5 -> 6/9; class 2: 0
    assert logged == pytest.approx((12 / 15 + 6 / 9 + 0) / 3)
    expected = f1_score(y, pred, labels=[0, 1, 2], average="macro", zero_division=0)
    assert logged == pytest.approx(expected)

    # One class only, every row right: the absent class still counts (sklearn's labels=...).
    metric = MacroF1(2)
    metric.update(torch.zeros(5, dtype=torch.long), torch.zeros(5, dtype=torch.long))
    assert metric.compute().item() == pytest.approx(0.5)


def _toy(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return x, (x[:, 0] + x[:, 1] > 0).long()


def test_train_network_learns_separable_data_and_keeps_best_epoch():
    torch.manual_seed(0)
    module = Classifier(4, (16,), 2, optimizer="adam", lr=0.05)
    epochs: list[int] = []
    fitted = train_network(
        module, _toy(256, 1), _toy(64, 2), batch_size=32, max_epochs=15, patience=3, seed=0,
        on_epoch=lambda epoch, metrics: epochs.append(epoch),
        trainer_options={"accelerator": "cpu", "devices": 1},
    )  # fmt: skip
    assert epochs == list(range(fitted.epochs))
    assert 0 <= fitted.best_epoch < fitted.epochs
    x, y = _toy(200, 3)
    accuracy = (predict_proba(fitted.net, x).argmax(1) == y).float().mean().item()
    assert accuracy > 0.9


def test_model_folder_round_trip_and_tamper_checks(tmp_path):
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "c": ["x", "y", "x"], "t": [0, 1, 0]})
    spec = fit_preprocessor(frame, target="t", categorical=["c"], source_sha256="s")
    start = MLP(len(spec.feature_names), (5,), 2)
    net = MLP(len(spec.feature_names), (5,), 2).eval()
    card = {"architecture": architecture(net), "feature_names": spec.feature_names}
    save_model(tmp_path / "m", net, spec, card, initial=start.state_dict())

    model = load_model(tmp_path / "m")
    x = torch.as_tensor(spec.transform(frame), dtype=torch.float32)
    assert torch.equal(model.net(x), net(x))
    assert model.spec == spec
    initial = load_initial(tmp_path / "m", model.card)
    assert torch.equal(initial(x), start(x))
    assert not initial.training
    assert {p.name for p in (tmp_path / "m").iterdir()} == {
        "model.json",
        "model.safetensors",
        "initial.safetensors",
        "preprocess.json",
    }

    # Another run's (valid) initial weights: refused by the hash, but predicting is unaffected.
    other = tmp_path / "other"
    save_model(other, net, spec, card, initial=MLP(len(spec.feature_names), (5,), 2).state_dict())
    (tmp_path / "m" / "initial.safetensors").write_bytes(
        (other / "initial.safetensors").read_bytes()
    )
    with pytest.raises(ModelError, match=r"initial.safetensors: sha256 does not match"):
        load_initial(tmp_path / "m", load_model(tmp_path / "m").card)

    (tmp_path / "m" / "model.safetensors").write_bytes(b"junk")
    with pytest.raises(ModelError, match=r"model.safetensors: sha256 does not match"):
        load_model(tmp_path / "m")
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "nowhere")


def test_model_folder_without_initial_weights_still_predicts(tmp_path):
    """A folder from before initial.safetensors: load_model works, load_initial says rerun."""
    frame = pd.DataFrame({"a": [1.0, 2.0], "t": [0, 1]})
    spec = fit_preprocessor(frame, target="t", categorical=[], source_sha256="s")
    net = MLP(1, (2,), 2)
    card = {"architecture": architecture(net), "feature_names": ["a"]}
    folder = tmp_path / "m"
    full = save_model(folder, net, spec, card, initial=net.state_dict())
    del full["files"]["initial.safetensors"]
    (folder / "model.json").write_text(json.dumps(full))
    (folder / "initial.safetensors").unlink()

    model = load_model(folder)
    with pytest.raises(ModelError, match=r"model.json: lists no initial.safetensors") as err:
        load_initial(folder, model.card)
    assert "rerun the train stage" in str(err.value) and "\n" not in str(err.value)


def test_initial_weights_must_fit_the_network(tmp_path):
    frame = pd.DataFrame({"a": [1.0, 2.0], "t": [0, 1]})
    spec = fit_preprocessor(frame, target="t", categorical=[], source_sha256="s")
    net = MLP(1, (2,), 2)
    card = {"architecture": architecture(net), "feature_names": ["a"]}
    with pytest.raises(ValueError, match="initial weights do not fit"):
        save_model(tmp_path / "m", net, spec, card, initial=MLP(1, (3,), 2).state_dict())
    assert not (tmp_path / "m").exists()


def test_train_stage_saves_the_weights_it_started_from(trained: Repo):
    """Known answer: the saved initial weights are a fresh MLP built under the card's seed."""
    folder = trained.path / "models"
    model = load_model(folder)
    initial = load_initial(folder, model.card)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(model.card["training"]["seed"])
        fresh = MLP.from_architecture(model.card["architecture"])
    for name, tensor in fresh.state_dict().items():
        assert torch.equal(initial.state_dict()[name], tensor), name
    trained_weight, fresh_weight = (n.state_dict()["hidden.0.weight"] for n in (model.net, fresh))
    assert not torch.equal(trained_weight, fresh_weight)  # it trained


def test_classification_metrics_known_answer():
    y = np.array([0, 0, 1, 1])
    perfect = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.1, 0.9]])
    assert classification_metrics(y, perfect) == {
        "f1": 1.0, "precision": 1.0, "recall": 1.0, "accuracy": 1.0, "roc_auc": 1.0,
    }  # fmt: skip
    one_wrong = perfect[[0, 2, 2, 3]]
    scores = classification_metrics(y, one_wrong)
    assert scores["accuracy"] == 0.75


def test_curves_are_strict_json():
    """DVCLive's sklearn ROC writes Infinity; ours must parse with a strict reader."""
    y = np.array([0, 1, 0, 1, 1])
    score = np.array([0.1, 0.8, 0.4, 0.35, 0.9], dtype=np.float32)
    for points in (roc_points(y, score), precision_recall_points(y, score)):
        text = json.dumps(points, allow_nan=False)
        assert all(math.isfinite(v) for row in json.loads(text) for v in row.values())
    roc = roc_points(y, score)
    assert (roc[0]["fpr"], roc[0]["tpr"]) == (0.0, 0.0)
    assert (roc[-1]["fpr"], roc[-1]["tpr"]) == (1.0, 1.0)


@pytest.mark.parametrize(
    "card",
    ["[1]", '{"format_version": 1}', "\udcff".encode("utf-8", "surrogateescape").decode("latin-1")],
)
def test_malformed_card_is_a_model_error(tmp_path, card):
    frame = pd.DataFrame({"a": [1.0, 2.0], "t": [0, 1]})
    spec = fit_preprocessor(frame, target="t", categorical=[], source_sha256="s")
    net = MLP(1, (2,), 2)
    good = {"architecture": architecture(net), "feature_names": ["a"]}
    save_model(tmp_path / "m", net, spec, good, initial=net.state_dict())
    (tmp_path / "m" / "model.json").write_bytes(card.encode("latin-1"))
    with pytest.raises(ModelError, match=r"model\.json"):
        load_model(tmp_path / "m")


def test_half_precision_training_returns_a_float32_network():
    torch.manual_seed(0)
    module = Classifier(4, (8,), 2, optimizer="adam", lr=0.05)
    fitted = train_network(
        module, _toy(64, 1), _toy(32, 2), batch_size=32, max_epochs=2, patience=2, seed=0,
        on_epoch=lambda epoch, metrics: None,
        trainer_options={"accelerator": "cpu", "devices": 1, "precision": "bf16-true"},
    )  # fmt: skip
    assert {p.dtype for p in fitted.net.parameters()} == {torch.float32}
    assert predict_proba(fitted.net, _toy(4, 3)[0]).dtype == torch.float64


def test_trainer_option_typo_is_a_params_error():
    with pytest.raises(ParamsError, match=r"train\.precision"):
        train_network(
            Classifier(4, (8,), 2), _toy(8, 1), _toy(8, 2), batch_size=4, max_epochs=1, patience=1,
            seed=0, on_epoch=lambda epoch, metrics: None, trainer_options={"precision": "17-fake"},
        )  # fmt: skip


def test_splits_shard_training_rows_across_ranks_but_not_validation():
    """Under DDP each rank trains on its own half of every epoch's shuffle; all validate on all."""
    x, y = torch.arange(10.0).reshape(10, 1), torch.zeros(10, dtype=torch.long)

    def rows(loader: DataLoader) -> list[int]:
        return [int(v) for batch, _ in loader for v in batch.flatten()]

    epoch0, epoch1, val = [], [], []
    for rank in (0, 1):
        splits = Splits((x, y), (x, y), batch_size=3, seed=0)
        splits.trainer = SimpleNamespace(world_size=2, global_rank=rank)  # type: ignore[assignment]
        loader = splits.train_dataloader()
        epoch0.append(rows(loader))
        assert isinstance(loader.sampler, DistributedSampler)
        loader.sampler.set_epoch(1)  # Lightning does this at every epoch start
        epoch1.append(rows(loader))
        val.append(rows(splits.val_dataloader()))
    assert len(epoch0[0]) == len(epoch0[1]) == 5
    assert sorted(epoch0[0] + epoch0[1]) == list(range(10))  # disjoint, together all rows
    assert sorted(epoch1[0] + epoch1[1]) == list(range(10))
    assert epoch1[0] != epoch0[0]  # a new shuffle each epoch
    assert val[0] == val[1] == list(range(10))
