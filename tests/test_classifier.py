"""The training loop (Lightning Fabric): validation F1, early stopping, precision, batches
and DDP sharding as the DataLoader and Lightning's Trainer gave them."""

from itertools import pairwise
from typing import Any

import pytest
import torch
from sklearn.metrics import f1_score
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from topoxai.classifier import Batches, Classifier, MacroF1, predict_proba, train_network
from topoxai.params import ParamsError


def test_val_f1_is_macro_f1_over_every_class():
    """Class 2 is never seen nor predicted: it still counts, as a 0 (sklearn's labels=...)."""
    y = torch.tensor([0, 0, 0, 0, 0, 1, 1, 0, 1, 1, 0, 1])
    pred = torch.tensor([0, 0, 0, 0, 1, 1, 0, 0, 1, 0, 0, 1])
    metric = MacroF1(3)
    for batch in range(3):  # counts add up over updates
        metric.update(pred[4 * batch : 4 * batch + 4], y[4 * batch : 4 * batch + 4])
    # class 0: tp 6, 8 predicted + 7 true -> 12/15; class 1: tp 3, 4 + 5 -> 6/9; class 2: 0
    assert metric.compute().item() == pytest.approx((12 / 15 + 6 / 9 + 0) / 3)
    expected = f1_score(y, pred, labels=[0, 1, 2], average="macro", zero_division=0)
    assert metric.compute().item() == pytest.approx(expected)

    # One class only, every row right: the absent class still counts.
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


def test_epoch_train_loss_is_the_mean_over_every_training_row():
    """Known answer: with a learning rate of 0 the weights never move, so the epoch's loss,
    batch means weighted by batch size, is the initial network's loss over all the rows;
    and the validation loss is that network's on the validation rows."""
    torch.manual_seed(0)
    module = Classifier(4, (8,), 2, lr=0.0, momentum=0.0)
    train, val = _toy(100, 1), _toy(20, 2)
    with torch.no_grad():
        expected = [module.loss(module(x), y).item() for x, y in (train, val)]
    logged: list[dict[str, float]] = []
    train_network(
        module, train, val, batch_size=32, max_epochs=3, patience=5, seed=0,
        on_epoch=lambda epoch, metrics: logged.append(metrics),
        trainer_options={"accelerator": "cpu", "devices": 1},
    )  # fmt: skip
    assert len(logged) == 3
    for metrics in logged:
        assert metrics["train_loss"] == pytest.approx(expected[0], abs=1e-6)
        assert metrics["val_loss"] == pytest.approx(expected[1], abs=1e-6)


def test_early_stopping_waits_patience_epochs_and_keeps_the_best():
    """A large learning rate: the validation loss improves, worsens, improves again (the
    wait starts over), then worsens `patience` times; the best epoch's weights are kept."""
    torch.manual_seed(0)
    module = Classifier(4, (8,), 2, optimizer="sgd", lr=1.0, momentum=0.0)
    states: list[dict[str, torch.Tensor]] = []
    losses: list[float] = []

    def record(epoch: int, metrics: dict[str, float]) -> None:
        losses.append(metrics["val_loss"])
        states.append({k: v.clone() for k, v in module.net.state_dict().items()})

    fitted = train_network(
        module, _toy(64, 1), _toy(32, 2), batch_size=8, max_epochs=20, patience=2, seed=0,
        on_epoch=record, trainer_options={"accelerator": "cpu", "devices": 1},
    )  # fmt: skip
    best = losses.index(min(losses))
    assert any(a < b for a, b in pairwise(losses[: best + 1]))  # a worse epoch before it
    assert fitted.best_epoch == best
    assert fitted.epochs == len(losses) < 20
    assert all(loss >= losses[best] for loss in losses[best + 1 :])
    assert len(losses) - 1 - best == 2  # patience epochs after the best, then stop
    for name, value in fitted.net.state_dict().items():
        assert torch.equal(value, states[best][name]), name


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


@pytest.mark.parametrize(("rows", "batch_size"), [(23, 5), (20, 5), (522, 64)])
def test_training_batches_are_those_of_a_shuffled_dataloader(rows, batch_size):
    """Known answer: the batches, their order and the generator's state after each epoch are
    those of DataLoader(TensorDataset, shuffle=True), which Batches replaced (same weights)."""
    x = torch.arange(rows * 2.0).reshape(rows, 2)
    y = torch.arange(rows) % 3
    generator = torch.Generator().manual_seed(7)
    reference = DataLoader(TensorDataset(x, y), batch_size, shuffle=True, generator=generator)
    batches = Batches((x, y), batch_size, seed=7)
    assert len(batches) == len(reference)
    for epoch in range(3):
        expected = [(bx.tolist(), by.tolist()) for bx, by in reference]
        assert [(bx.tolist(), by.tolist()) for bx, by in batches.epoch(epoch)] == expected
        assert batches.generator is not None
        assert torch.equal(batches.generator.get_state(), generator.get_state())


def test_batches_shard_training_rows_across_ranks():
    """Under DDP each rank trains on its own half of every epoch's shuffle, the rows that
    DataLoader(sampler=DistributedSampler) gave it, and draws its loader's base seed from
    torch's global generator as that loader did."""
    x, y = torch.arange(10.0).reshape(10, 1), torch.zeros(10, dtype=torch.long)

    def rows(batches: Any) -> list[int]:
        return [int(v) for batch, _ in batches for v in batch.flatten()]

    epochs: list[list[list[int]]] = [[], []]
    for rank in (0, 1):
        batches = Batches((x, y), 3, seed=0, world_size=2, rank=rank)
        sampler: DistributedSampler[Any] = DistributedSampler(
            TensorDataset(x, y), 2, rank, shuffle=True, seed=0
        )
        reference = DataLoader(TensorDataset(x, y), 3, sampler=sampler)
        for epoch in (0, 1):
            sampler.set_epoch(epoch)  # what Lightning did at every epoch start
            torch.manual_seed(5)
            expected = rows(reference)
            after_reference = torch.get_rng_state()
            torch.manual_seed(5)
            assert rows(batches.epoch(epoch)) == expected
            assert torch.equal(torch.get_rng_state(), after_reference)
            epochs[epoch].append(expected)
    for ranks in epochs:
        assert len(ranks[0]) == len(ranks[1]) == 5
        assert sorted(ranks[0] + ranks[1]) == list(range(10))  # disjoint, together all rows
    assert epochs[1][0] != epochs[0][0]  # a new shuffle each epoch
