"""Lightning training of the MLP on in-memory tensors, with early stopping and best weights."""

import copy
import logging
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, Sampler, TensorDataset
from torchmetrics.classification import MulticlassF1Score

from topoxai.model import MLP, chunked_logits
from topoxai.params import ParamsError, TrainParams

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
        self.val_f1 = MacroF1(out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def on_train_epoch_start(self) -> None:
        self._loss_sum, self._rows = torch.tensor(0.0), torch.tensor(0)

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, y = batch
        loss = self.loss(self(x), y)
        # The epoch's mean loss, summed as Lightning sums an on_epoch value (in float32 or
        # wider, loss times batch size, batch after batch) but logged once, at the last batch:
        # self.log on every step cost a third of a small network's step.
        value = loss.detach().to(torch.promote_types(loss.dtype, torch.float32))
        self._loss_sum = self._loss_sum.to(value.device) + value * len(y)
        self._rows = self._rows + len(y)
        if batch_idx == self.trainer.num_training_batches - 1:
            # sync_dist: under DDP each rank sees its own shard (all of one size); the epoch
            # value averages them.
            mean = self._loss_sum / self._rows.to(value.device)
            self.log("train_loss", mean, on_step=False, on_epoch=True, batch_size=1, sync_dist=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = chunked_logits(self, x)  # the whole split is one batch
        # Every rank scores the whole split (Splits.val_dataloader), so the values already agree;
        # sync_dist keeps them one number per epoch for early stopping on every rank.
        self.log("val_loss", self.loss(logits, y), batch_size=len(y), sync_dist=True)
        # A metric object: counts add up over the epoch's batches, and it syncs itself under DDP
        # (every rank's counts summed: the same ratios, since each rank scores the whole split).
        self.val_f1.update(logits.argmax(dim=1), y)
        self.log("val_f1", self.val_f1)

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


class MacroF1(MulticlassF1Score):
    """Unweighted mean of per-class F1 over every class; one never seen nor predicted scores 0.

    torchmetrics' own average="macro" leaves such a class out of the mean (a validation
    split of one class, all predicted right, would score 1.0); sklearn's
    f1_score(labels=range(n), average="macro", zero_division=0) counts it as 0, as we do.
    """

    def __init__(self, num_classes: int) -> None:
        super().__init__(num_classes, average="none", zero_division=0)

    def compute(self) -> torch.Tensor:
        return super().compute().mean()


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
    """Hand each epoch's metrics to `sink` once validation is done (rank 0 only under DDP)."""

    def __init__(self, sink: Callable[[int, dict[str, float]], None]) -> None:
        self.sink = sink

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
            self.sink(trainer.current_epoch, metrics)


class Batches(Sampler[torch.Tensor]):
    """Each training batch's row indices as one tensor, in exactly the order that
    DataLoader(TensorDataset, batch_size, shuffle=True, generator=...) gives them (or, under
    DDP, DataLoader(..., sampler=DistributedSampler)).

    Those fetch and collate row by row, about 380k rows/s: most of an epoch of a small
    network. Slicing the tensors with a batch's indices gives the same batches at millions
    of rows/s, and the same batches mean the same weights.
    """

    def __init__(
        self,
        rows: int,
        batch_size: int,
        *,
        generator: torch.Generator | None = None,
        shard: DistributedSampler[Any] | None = None,
    ) -> None:
        self.rows, self.batch_size = rows, batch_size
        self.generator, self.sampler = generator, shard  # `sampler`: Lightning's set_epoch

    def __len__(self) -> int:
        rows = self.rows if self.sampler is None else len(self.sampler)
        return -(-rows // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        # Lightning calls this at every epoch start: a new shuffle per epoch under DDP.
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[torch.Tensor]:
        if self.sampler is not None:
            order = torch.tensor(list(self.sampler), dtype=torch.int64)
        else:
            # RandomSampler's draws: one permutation per epoch, then (drawn once it is
            # exhausted) another for the num_samples % rows rows beyond whole passes, of which
            # it keeps none. Drawn here too, or every later epoch's order would differ.
            order = torch.randperm(self.rows, generator=self.generator)
            torch.randperm(self.rows, generator=self.generator)
        yield from order.split(self.batch_size)


class Splits(L.LightningDataModule):
    """Train and validation tensors as loaders, built once Lightning knows the ranks."""

    def __init__(
        self,
        train: tuple[torch.Tensor, torch.Tensor],
        val: tuple[torch.Tensor, torch.Tensor],
        *,
        batch_size: int,
        seed: int,
    ) -> None:
        super().__init__()
        self.train_set, self.val_set = TensorDataset(*train), TensorDataset(*val)
        self.batch_size, self.seed = batch_size, seed

    def train_dataloader(self) -> DataLoader:
        # batch_size=None: the sampler yields whole batches of indices, and TensorDataset
        # slices its tensors with them. Still a DataLoader: it draws its base seed from the
        # same generator as before (or from torch's global one under DDP), so the draws that
        # follow, the shuffles and dropout masks, stay those of the row-by-row loader.
        rows = len(self.train_set)
        if self.trainer is None or self.trainer.world_size == 1:
            shuffle = torch.Generator().manual_seed(self.seed)
            batches = Batches(rows, self.batch_size, generator=shuffle)
            return DataLoader(self.train_set, batch_size=None, sampler=batches, generator=shuffle)
        # DDP: each rank trains on its own shard of every epoch's shuffle (Lightning calls
        # set_epoch); batch_size is per device, as in Lightning.
        shard: DistributedSampler[Any] = DistributedSampler(
            self.train_set,
            num_replicas=self.trainer.world_size,
            rank=self.trainer.global_rank,
            shuffle=True,
            seed=self.seed,
        )
        batches = Batches(rows, self.batch_size, shard=shard)
        return DataLoader(self.train_set, batch_size=None, sampler=batches)

    def val_dataloader(self) -> DataLoader:
        # The whole split in one batch (one slice, no row-by-row collation), on every rank:
        # not sharded, so val_loss and the best epoch are those of a single-device evaluation
        # and the same on all ranks.
        return DataLoader(self.val_set, batch_size=None, sampler=[slice(None)])


@dataclass(frozen=True)
class Fitted:
    net: MLP
    initial: dict[str, torch.Tensor]  # the weights training started from
    best_epoch: int
    epochs: int
    is_global_zero: bool  # False on the other DDP ranks, which must not write outputs


def fit_network(
    params: TrainParams,
    *,
    seed: int,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    classes: int,
    on_epoch: Callable[[int, dict[str, float]], None] = lambda epoch, metrics: None,
    one_device: bool = False,
) -> Fitted:
    """The training procedure: what the train stage ships and every evaluate fold repeats,
    so that cross-validation estimates the procedure that made the shipped model.

    Threads, seeds, the network and Lightning's loop all come from `params` and `seed`.
    `one_device` trains on one device without DDP, whatever `params` asks (evaluate's folds
    run inside a process, and under ddp Lightning would re-run the whole calling script).
    """
    from threadpoolctl import threadpool_limits

    quiet_lightning()
    # Float sums, and so the weights, change with the thread count: fixed by the params.
    torch.set_num_threads(params.threads)
    # Seeds torch, numpy and random: the initialisation draws from torch's RNG.
    L.seed_everything(seed, workers=True, verbose=False)
    module = Classifier(
        in_features=train[0].shape[1],
        hidden=params.hidden,
        out_features=classes,
        dropout=params.dropout,
        optimizer=params.optimizer,
        lr=params.lr,
        momentum=params.momentum,
        weight_decay=params.weight_decay,
    )
    with threadpool_limits(limits=params.threads):
        return train_network(
            module,
            train,
            val,
            batch_size=params.batch_size,
            max_epochs=params.max_epochs,
            patience=params.patience,
            seed=seed,
            on_epoch=on_epoch,
            trainer_options={
                "accelerator": params.accelerator,
                "devices": 1 if one_device else params.devices,
                "strategy": "auto" if one_device else params.strategy,
                "precision": params.precision,
            },
        )


def train_network(
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
    """Train with early stopping on val_loss; return the network with the best epoch's weights.

    Under `strategy: ddp` Lightning re-runs the calling script once per extra device, so every
    rank returns here; only the one with `is_global_zero` should go on to write outputs.
    """
    # A copy: training updates the parameters in place.
    initial = copy.deepcopy(module.net.state_dict())
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
            use_distributed_sampler=False,  # Splits shards the training data itself
            **trainer_options,
        )
    except (ValueError, MisconfigurationException) as err:  # an accelerator/precision typo
        keys = ", ".join(f"train.{k}" for k in trainer_options)
        raise ParamsError(f"{keys}: {' '.join(str(err).split())}") from None  # one line
    trainer.fit(module, datamodule=Splits(train, val, batch_size=batch_size, seed=seed))
    if best.state is None:
        raise RuntimeError("training ran no validation epoch")
    module.load_state_dict(best.state)
    module.net.eval()
    # float(): a bf16/16-true run leaves the weights in half precision; evaluate and save fp32.
    net = module.net.float().cpu()
    return Fitted(net, initial, best.best_epoch, trainer.current_epoch, trainer.is_global_zero)


@torch.no_grad()
def predict_proba(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Class probabilities in float64 (precision-recall curves need float64 scores)."""
    net.eval()
    return torch.softmax(chunked_logits(net, x).double(), dim=1)


class _NoTips(logging.Filter):
    # The cloud-logger advert, and the device inventory ("GPU available: False, used: False",
    # "TPU available: ..."), which only repeats train.accelerator on every run.
    NOISE = ("💡", "GPU available:", "TPU available:")

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.NOISE)


def quiet_lightning() -> None:
    # Lightning advertises cloud loggers and lists the devices on every run, and its own
    # pytree code trips a torch FutureWarning; none of it is ours to act on.
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_NoTips())
    warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
