"""The Lightning wrapper: validation F1, early stopping, precision, DDP sharding."""

from types import SimpleNamespace
from typing import Any

import lightning as L
import pytest
import torch
from lightning.fabric.utilities.data import _set_sampler_epoch
from sklearn.metrics import f1_score
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from topoxai.classifier import Classifier, MacroF1, Splits, predict_proba, train_network
from topoxai.params import ParamsError


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


def test_epoch_train_loss_is_what_lightning_averages_from_every_step():
    """Known answer: Classifier logs train_loss once per epoch; the value is the one that
    logging every step with on_epoch=True (Lightning's batch-size weighted mean) gave."""

    class EveryStep(Classifier):
        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = self.loss(self(x), y)
            self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(y))
            return loss

    def losses(cls: type[Classifier]) -> list[float]:
        torch.manual_seed(0)
        values: list[float] = []
        train_network(
            cls(4, (8,), 2), _toy(100, 1), _toy(20, 2), batch_size=32, max_epochs=3,
            patience=3, seed=0, on_epoch=lambda epoch, metrics: values.append(metrics["train_loss"]),
            trainer_options={"accelerator": "cpu", "devices": 1},
        )  # fmt: skip
        return values

    logged = {cls: losses(cls) for cls in (Classifier, EveryStep)}
    assert len(logged[Classifier]) == 3
    assert logged[Classifier] == logged[EveryStep]  # exactly: the same float32 sums


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
    those of DataLoader(TensorDataset, shuffle=True), which Splits replaced (same weights)."""
    x = torch.arange(rows * 2.0).reshape(rows, 2)
    y = torch.arange(rows) % 3
    generator = torch.Generator().manual_seed(7)
    reference = DataLoader(TensorDataset(x, y), batch_size, shuffle=True, generator=generator)
    loader = Splits((x, y), (x, y), batch_size=batch_size, seed=7).train_dataloader()
    assert len(loader) == len(reference)
    for _ in range(3):
        expected = [(bx.tolist(), by.tolist()) for bx, by in reference]
        assert [(bx.tolist(), by.tolist()) for bx, by in loader] == expected


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
        # What Splits replaced: DistributedSampler's rows, collated row by row.
        sampler: DistributedSampler[Any] = DistributedSampler(
            TensorDataset(x, y), 2, rank, shuffle=True, seed=0
        )
        reference = DataLoader(TensorDataset(x, y), 3, sampler=sampler)
        epoch0.append(rows(loader))
        assert epoch0[-1] == rows(reference)
        for dataloader in (loader, reference):
            _set_sampler_epoch(dataloader, 1)  # what Lightning does at every epoch start
        epoch1.append(rows(loader))
        assert epoch1[-1] == rows(reference)
        val.append(rows(splits.val_dataloader()))
    assert len(epoch0[0]) == len(epoch0[1]) == 5
    assert sorted(epoch0[0] + epoch0[1]) == list(range(10))  # disjoint, together all rows
    assert sorted(epoch1[0] + epoch1[1]) == list(range(10))
    assert epoch1[0] != epoch0[0]  # a new shuffle each epoch
    assert val[0] == val[1] == list(range(10))
    assert len(list(splits.val_dataloader())) == 1  # the whole split in one batch
