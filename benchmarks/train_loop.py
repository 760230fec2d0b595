"""One training epoch: our Lightning (Fabric) loop against a plain PyTorch loop on the same tensors.

(a) is `classifier.train_network` with the train stage's device options, one epoch;
(b) is the loop Lightning saves us from writing: the same initial weights, SGD (momentum 0.9,
lr 0.01), batch 64 and threads, `torch.randperm` + slicing, no Lightning, no DataLoader.
Both on synthetic float32 rows of 21 features (the default table's, one-hot included):

    python benchmarks/train_loop.py [--rows 1000000] [--hidden 64,64 --hidden 1000,1000]
    python benchmarks/train_loop.py --progress-overhead [--rows ...] [--hidden ...]

`--progress-overhead` times (a) with the terminal progress bar forced on (TOPOXAI_PROGRESS=1,
drawn on stderr) against off instead, alternating, the fastest of each counting.

An epoch costs the same per row at any row count once the per-epoch setup is paid, so a
large network can be timed on fewer rows (2x1000 runs at about 1 ms per row on one core).
`compare()` is importable (benchmarks/scale.py).
"""

import argparse
import time
from typing import Any

import lightning
import torch
from threadpoolctl import threadpool_limits
from torch import nn

from topoxai.classifier import Classifier, quiet_lightning, train_network
from topoxai.model import MLP

FEATURES = 21
# The train stage's Fabric options at the defaults of params.yaml.
TRAINER = {"accelerator": "cpu", "devices": 1, "strategy": "auto", "precision": "32-true"}


def synthetic(rows: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Standard-normal features and a noisy linear label: something to learn, nothing more."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, FEATURES, generator=g)
    noise = torch.randn(rows, generator=g)
    return x, (x[:, 0] + 0.5 * x[:, 1] + noise > 0).long()


def lightning_epoch(
    x: torch.Tensor,
    y: torch.Tensor,
    hidden: tuple[int, ...],
    *,
    batch_size: int,
    seed: int,
    progress: bool = False,
) -> float:
    """Seconds for one epoch of train_network, as the train stage calls it (validation on a
    1,000-row split, so that the time is the training epoch's)."""
    lightning.seed_everything(seed, workers=True, verbose=False)
    module = Classifier(FEATURES, hidden, 2, lr=0.01, momentum=0.9)
    val = synthetic(1000, seed + 1)
    start = time.perf_counter()
    train_network(
        module, (x, y), val, batch_size=batch_size, max_epochs=1, patience=1, seed=seed,
        on_epoch=lambda epoch, metrics: None, trainer_options=TRAINER, progress=progress,
    )  # fmt: skip
    return time.perf_counter() - start


def plain_epoch(
    x: torch.Tensor, y: torch.Tensor, hidden: tuple[int, ...], *, batch_size: int, seed: int
) -> float:
    """Seconds for one epoch of the shortest correct PyTorch loop."""
    torch.manual_seed(seed)
    net = MLP(FEATURES, hidden, 2)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    shuffle = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    net.train()
    for index in torch.randperm(len(x), generator=shuffle).split(batch_size):
        optimizer.zero_grad()
        loss_fn(net(x[index]), y[index]).backward()
        optimizer.step()
    return time.perf_counter() - start


def compare(
    rows: int,
    hidden: tuple[int, ...],
    *,
    threads: int = 1,
    batch_size: int = 64,
    seed: int = 0,
    repeats: int = 3,
) -> dict[str, Any]:
    """Rows per second of one training epoch: Lightning, plain PyTorch, and their ratio.

    Each is timed `repeats` times, the two alternating, and the fastest run counts: on a
    shared or virtual machine a single epoch is often slowed by a neighbour.
    """
    quiet_lightning()
    x, y = synthetic(rows, seed)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    plain, ours = float("inf"), float("inf")
    try:
        with threadpool_limits(limits=threads):
            for _ in range(repeats):
                plain = min(plain, plain_epoch(x, y, hidden, batch_size=batch_size, seed=seed))
                ours = min(ours, lightning_epoch(x, y, hidden, batch_size=batch_size, seed=seed))
    finally:
        torch.set_num_threads(previous)
    return {
        "rows": rows,
        "hidden": list(hidden),
        "lightning_rows_per_s": rows / ours,
        "plain_rows_per_s": rows / plain,
        "ratio": plain / ours,
    }


def progress_overhead(
    rows: int, hidden: tuple[int, ...], *, threads: int = 1, repeats: int = 3, seed: int = 0
) -> tuple[float, float]:
    """(seconds of the fastest epoch without the progress bar, with it)."""
    import os

    quiet_lightning()
    x, y = synthetic(rows, seed)
    torch.set_num_threads(threads)
    os.environ["TOPOXAI_PROGRESS"] = "1"  # drawn even though stderr is no terminal here
    off, on = float("inf"), float("inf")
    with threadpool_limits(limits=threads):
        for _ in range(repeats):
            off = min(off, lightning_epoch(x, y, hidden, batch_size=64, seed=seed))
            on = min(on, lightning_epoch(x, y, hidden, batch_size=64, seed=seed, progress=True))
    return off, on


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--hidden", action="append", metavar="N,N", help="hidden sizes (repeatable; default: "
        "64,64 and 1000,1000)",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--repeats", type=int, default=3, help="epochs timed each; the fastest counts"
    )
    parser.add_argument("--progress-overhead", action="store_true")
    args = parser.parse_args()
    if args.progress_overhead:
        for text in args.hidden or ["64,64", "1000,1000"]:
            hidden = tuple(int(n) for n in text.split(","))
            off, on = progress_overhead(
                args.rows, hidden, threads=args.threads, repeats=args.repeats
            )
            print(
                f"hidden {text:>9}  {args.rows:,} rows  progress off {off:.2f} s  on {on:.2f} s "
                f"({on / off - 1:+.1%})",
                flush=True,
            )
        return
    for text in args.hidden or ["64,64", "1000,1000"]:
        hidden = tuple(int(n) for n in text.split(","))
        r = compare(args.rows, hidden, threads=args.threads, repeats=args.repeats)
        print(
            f"hidden {text:>9}  {args.rows:,} rows  lightning {r['lightning_rows_per_s']:>9,.0f} "
            f"rows/s  plain {r['plain_rows_per_s']:>9,.0f} rows/s  ratio {r['ratio']:.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
