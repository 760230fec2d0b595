"""Lightning training of the MLP on in-memory tensors, with early stopping and best weights."""

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from topoxai.model import MLP
from topoxai.params import ParamsError

MONITOR = "val_loss"


class Classifier(L.LightningModule):
    """Cross-entropy training of an MLP; logs train_loss, val_loss and val_f1 per epoch."""

    def __init__(
        self,
        in_features: int,
        hidden: tuple[int, ...],
        out_features: int,
        dropout: float = 0.0,
        optimizer: str = "sgd",
        lr: float = 0.01,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = MLP(in_features, hidden, out_features, dropout)
        self.loss = nn.CrossEntropyLoss()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, y = batch
        loss = self.loss(self(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(y))
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.log("val_loss", self.loss(logits, y), batch_size=len(y))
        self.log("val_f1", macro_f1(logits.argmax(dim=1), y, logits.shape[1]), batch_size=len(y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        hp = self.hparams
        if hp["optimizer"] == "sgd":
            return torch.optim.SGD(
                self.parameters(),
                lr=hp["lr"],
                momentum=hp["momentum"],
                weight_decay=hp["weight_decay"],
            )
        optimizers = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
        return optimizers[hp["optimizer"]](
            self.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"]
        )


def macro_f1(pred: torch.Tensor, target: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Unweighted mean of per-class F1 (a class never seen nor predicted counts as 0)."""
    scores = []
    for c in range(n_classes):
        tp = ((pred == c) & (target == c)).sum()
        denom = (pred == c).sum() + (target == c).sum()
        scores.append(2 * tp / denom if denom > 0 else torch.tensor(0.0))
    return torch.stack(scores).float().mean()


class KeepBest(Callback):
    """Hold a copy of the weights from the epoch with the lowest val_loss, in memory.

    Lightning's ModelCheckpoint would write files (and folders) we do not want as outputs.
    """

    def __init__(self) -> None:
        self.best_loss = float("inf")
        self.best_epoch = -1
        self.state: dict[str, torch.Tensor] | None = None

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        loss = float(trainer.callback_metrics[MONITOR])
        if loss < self.best_loss:
            self.best_loss, self.best_epoch = loss, trainer.current_epoch
            self.state = copy.deepcopy(module.state_dict())


class EpochLog(Callback):
    """Hand each epoch's metrics to `sink` (DVCLive, a printer, ...) once validation is done."""

    def __init__(self, sink: Callable[[int, dict[str, float]], None]) -> None:
        self.sink = sink

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        self.sink(trainer.current_epoch, metrics)


@dataclass(frozen=True)
class Fitted:
    net: MLP
    best_epoch: int
    epochs: int


def fit(
    module: Classifier,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    *,
    batch_size: int,
    max_epochs: int,
    patience: int,
    seed: int,
    on_epoch: Callable[[int, dict[str, float]], None],
    trainer_options: dict[str, Any],
) -> Fitted:
    """Train with early stopping on val_loss; return the network with the best epoch's weights."""
    shuffle = torch.Generator().manual_seed(seed)
    train_loader = DataLoader(
        TensorDataset(*train), batch_size=batch_size, shuffle=True, generator=shuffle
    )
    # The validation split is small: one batch, one metric value per epoch.
    val_loader = DataLoader(TensorDataset(*val), batch_size=len(val[1]))
    best = KeepBest()
    try:
        trainer = L.Trainer(
            max_epochs=max_epochs,
            callbacks=[
                EarlyStopping(MONITOR, patience=patience, mode="min"),
                best,
                EpochLog(on_epoch),
            ],
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            deterministic=True,
            **trainer_options,
        )
    except (ValueError, MisconfigurationException) as err:  # an accelerator/precision typo
        keys = ", ".join(f"train.{k}" for k in trainer_options)
        raise ParamsError(f"{keys}: {str(err).splitlines()[0]}") from None
    trainer.fit(module, train_loader, val_loader)
    if best.state is None:
        raise RuntimeError("training ran no validation epoch")
    module.load_state_dict(best.state)
    module.net.eval()
    # float(): a bf16/16-true run leaves the weights in half precision; evaluate and save fp32.
    return Fitted(module.net.float().cpu(), best.best_epoch, trainer.current_epoch)


@torch.no_grad()
def predict_proba(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Class probabilities in float64 (precision-recall curves need float64 scores)."""
    net.eval()
    return torch.softmax(net(x).double(), dim=1)
