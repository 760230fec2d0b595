"""Progress a person at a terminal can see; nothing where a log is read.

Shown when stderr is a terminal, or when TOPOXAI_PROGRESS=1 forces it; TOPOXAI_PROGRESS=0
turns it off. A bar rewrites its line, which a log (CI, `dvc queue logs`, a redirected
file) would keep as noise, so it is off there and the one line per epoch or stage stays
as it was.
"""

import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
VARIABLE = "TOPOXAI_PROGRESS"


def enabled() -> bool:
    setting = os.environ.get(VARIABLE, "").strip()
    if setting in ("0", "1"):
        return setting == "1"
    return sys.stderr.isatty()


def bar(total: int | None, desc: str, unit: str = "it", *, show: bool = True) -> Any:
    """A tqdm bar on stderr, or a disabled one (whose update costs next to nothing).

    `leave=False`: the bar is erased when done, so what stays on the terminal is what a log
    gets. Redrawn at most twice a second, whatever the rate of updates.
    """
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        unit_scale=unit == "rows",  # 1.2M rows, but 3/25 folds
        leave=False,
        file=sys.stderr,
        mininterval=0.5,
        dynamic_ncols=True,
        disable=not (show and enabled()),
    )


def iterate(items: Iterable[T], total: int | None, desc: str, unit: str = "it") -> Iterator[T]:
    """`items`, advancing a bar as each arrives."""
    with bar(total, desc, unit) as shown:
        for item in items:
            yield item
            shown.update(1)
