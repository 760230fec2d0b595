"""Training the MLP with Lightning Fabric on in-memory tensors: early stopping, best weights.

Fabric, not the Trainer: the Trainer's hooks, loops and logging cost about 0.5 ms per
step, more than a small network's whole step (benchmarks/train_loop.py), while Fabric keeps
what users rely on: `accelerator`, `devices`, `strategy` (ddp) and `precision`.
"""

import copy
import logging
import math
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import DistributedSampler
from torchmetrics.classification import MulticlassF1Score

from topoxai.model import MLP, chunked_logits
from topoxai.params import ParamsError, TrainParams
from topoxai.progress import bar


class Classifier(nn.Module):
    """The MLP with what trains it: cross-entropy and the optimizer the train params name."""

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
        self.net = MLP(in_features, hidden, out_features, dropout)
        self.loss = nn.CrossEntropyLoss()
        self.optimizer, self.lr, self.momentum = optimizer, lr, momentum
        self.weight_decay = weight_decay

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def configure_optimizer(self) -> torch.optim.Optimizer:
        if self.optimizer == "sgd":
            return torch.optim.SGD(
                self.parameters(),
                lr=self.lr,
                momentum=self.momentum,
                weight_decay=self.weight_decay,
            )
        optimizers = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
        return optimizers[self.optimizer](
            self.parameters(), lr=self.lr, weight_decay=self.weight_decay
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


class Batches:
    """One rank's training batches, epoch by epoch: exactly those, in the order, of
    DataLoader(TensorDataset(x, y), batch_size, shuffle=True, generator=...) (or, under DDP,
    of DataLoader(..., sampler=DistributedSampler(..., seed=seed)) on that rank).

    Those fetch and collate row by row, about 380k rows/s, and even a loader of whole
    batches costs tens of microseconds a step: most of an epoch of a small network. Slicing
    the tensors with each batch's indices gives the same batches at millions of rows/s, and
    the same batches (and the same draws around them) mean the same weights.
    """

    def __init__(
        self,
        train: tuple[torch.Tensor, torch.Tensor],
        batch_size: int,
        *,
        seed: int,
        world_size: int = 1,
        rank: int = 0,
    ) -> None:
        self.x, self.y = train
        self.batch_size = batch_size
        rows = len(self.x)
        if world_size == 1:
            self.generator: torch.Generator | None = torch.Generator().manual_seed(seed)
            self.shard: DistributedSampler[int] | None = None
        else:  # batch_size is per device, as in Lightning
            self.generator = None
            self.shard = DistributedSampler(
                range(rows),  # type: ignore[arg-type]
                num_replicas=world_size,
                rank=rank,
                shuffle=True,
                seed=seed,
            )

    def __len__(self) -> int:
        rows = len(self.x) if self.shard is None else len(self.shard)
        return -(-rows // self.batch_size)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        # A DataLoader's first draw of every epoch: its workers' base seed, from its generator
        # (torch's global one under DDP). Drawn here too, so that the shuffles and dropout
        # masks after it stay the loader's.
        torch.empty((), dtype=torch.int64).random_(generator=self.generator)
        if self.shard is not None:
            self.shard.set_epoch(epoch)  # a new shuffle per epoch
            order = torch.tensor(list(self.shard), dtype=torch.int64)
        else:
            # RandomSampler's draws: one permutation per epoch, then (drawn once it is
            # exhausted) another for the num_samples % rows rows beyond whole passes, of which
            # it keeps none. Drawn here too, or every later epoch's order would differ.
            order = torch.randperm(len(self.x), generator=self.generator)
            torch.randperm(len(self.x), generator=self.generator)
        for index in order.split(self.batch_size):
            yield self.x[index], self.y[index]


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
    progress: bool = False,
) -> Fitted:
    """The training procedure: what the train stage ships and every evaluate fold repeats,
    so that cross-validation estimates the procedure that made the shipped model.

    Threads, seeds, the network and the loop all come from `params` and `seed`.
    `one_device` trains on one device without DDP, whatever `params` asks (evaluate's folds
    run inside a process, and under ddp Lightning would re-run the whole calling script).
    `progress` shows each epoch's batches on a terminal (`topoxai.progress`; rank 0 only).
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
            progress=progress,
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
    progress: bool = False,
) -> Fitted:
    """Train with early stopping on the validation loss; return the network with the best
    epoch's weights (kept in memory: no checkpoint files).

    Each epoch: the training batches, the epoch's mean training loss (averaged over ranks),
    then the whole validation split in one batch on every rank (not sharded, so its loss
    and the best epoch are those of a single-device evaluation and the same on all ranks).
    Training stops once `patience` epochs in a row bring no lower validation loss, or at a
    loss that is not finite. `on_epoch` gets train_loss, val_loss and val_f1 (rank 0 only).

    Under `strategy: ddp` Lightning re-runs the calling script once per extra device, so
    every rank returns here; only the one with `is_global_zero` should go on to write outputs.
    """
    initial = copy.deepcopy(module.net.state_dict())  # training updates it in place
    try:
        fabric = L.Fabric(**trainer_options)
    except (ValueError, MisconfigurationException) as err:  # an accelerator/precision typo
        keys = ", ".join(f"train.{k}" for k in trainer_options)
        raise ParamsError(f"{keys}: {' '.join(str(err).split())}") from None  # one line
    fabric.launch()
    _deterministic()
    model, optimizer = fabric.setup(module, module.configure_optimizer())
    # The wrapper's work on every call (converting inputs and outputs, and a backward hook
    # that only warns when loss.backward() is called instead of fabric.backward()) is a
    # third of a small network's step: training steps call the module it wraps (DDP's
    # wrapper under ddp) in the precision's forward context, on inputs converted once.
    precision, forward = fabric.strategy.precision, model._forward_module
    batches = Batches(
        precision.convert_input(tuple(t.to(fabric.device) for t in train)),
        batch_size,
        seed=seed,
        world_size=fabric.world_size,
        rank=fabric.global_rank,
    )
    x_val, y_val = precision.convert_input(tuple(t.to(fabric.device) for t in val))
    f1 = MacroF1(module.net.output.out_features).to(fabric.device)
    best_loss, best_epoch, best_state, waited, epoch = math.inf, -1, None, 0, 0
    shard = math.ceil(len(train[1]) / fabric.world_size)  # each rank's rows per epoch
    for epoch in range(max_epochs):
        model.train()
        loss_sum, rows = torch.zeros((), device=fabric.device), 0
        shown = bar(shard, f"epoch {epoch}", "rows", show=progress and fabric.is_global_zero)
        for x, y in batches.epoch(epoch):
            with precision.forward_context():
                loss = module.loss(forward(x), y)
            optimizer.zero_grad()
            fabric.backward(loss)
            optimizer.step()
            # The epoch's mean loss, summed in float32 (or wider): loss times batch size.
            value = loss.detach().to(torch.promote_types(loss.dtype, torch.float32))
            loss_sum, rows = loss_sum + value * len(y), rows + len(y)
            shown.update(len(y))
        shown.close()
        # Each rank's mean, averaged over ranks (each trains on an equal shard).
        train_loss = fabric.all_reduce(loss_sum / rows, reduce_op="mean")
        assert isinstance(train_loss, torch.Tensor)
        # The Trainer's validation loader drew its base seed from torch's global generator:
        # drawn here too, so that the next epoch's dropout masks stay the ones it gave.
        torch.empty((), dtype=torch.int64).random_()
        model.eval()
        # As the training steps run, so that the loss is in the precision they train in.
        with torch.no_grad(), precision.forward_context():
            logits = chunked_logits(forward, x_val)
            val_loss = float(module.loss(logits, y_val))
        f1.reset()
        f1.update(logits.argmax(dim=1), y_val)
        metrics = {
            "train_loss": float(train_loss),
            "val_loss": val_loss,
            "val_f1": float(f1.compute()),
        }
        if fabric.is_global_zero:
            on_epoch(epoch, metrics)
        if val_loss < best_loss:
            best_loss, best_epoch, waited = val_loss, epoch, 0
            best_state = copy.deepcopy(module.state_dict())
        else:
            waited += 1
        stop = waited >= patience or not math.isfinite(val_loss)
        # Every rank must leave the loop at the same epoch, or the others wait for it forever.
        if fabric.strategy.reduce_boolean_decision(stop, all=False):
            break
    if best_state is None:
        raise RuntimeError("no epoch had a finite validation loss")
    module.load_state_dict(best_state)
    module.net.eval()
    # float(): a bf16/16-true run leaves the weights in half precision; evaluate and save fp32.
    net = module.net.float().cpu()
    return Fitted(net, initial, best_epoch, epoch + 1, fabric.is_global_zero)


def _deterministic() -> None:
    # What Trainer(deterministic=True) sets: deterministic kernels (cuBLAS needs the
    # workspace setting for them), no cuDNN autotuning.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False


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
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).addFilter(_NoTips())
    warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
