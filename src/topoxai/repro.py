"""`dvc repro` as `make run` runs it: without DVC's closing hint to `dvc push` when there is
no remote to push to.

DVC prints "Use `dvc push` to send your updates to remote storage." after every run that
ran a stage (dvc/commands/repro.py), remote or not; a newcomer then goes looking for a
remote this project does not need. Filtering the command's output through a pipe would
take away the terminal from the stages (their progress bars) and buffer their lines, so
the hint is dropped here, in DVC's own process, where it is written: the stages' output
never passes through this stream.
"""

import sys
from typing import Any, TextIO

from topoxai.errors import UserError

HINT = "Use `dvc push` to send your updates to remote storage."


class _Without:
    """A text stream that drops one message written whole, and the line end after it."""

    def __init__(self, stream: TextIO, message: str) -> None:
        self._stream, self._message, self._dropped = stream, message, False

    def write(self, text: str) -> int:
        dropped, self._dropped = self._dropped, text == self._message
        if self._dropped or (dropped and text == "\n"):
            return len(text)
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:  # isatty, flush, fileno, encoding...
        return getattr(self._stream, name)


def repro(args: list[str]) -> int:
    """Run `dvc repro ARGS` in this process; its exit status."""
    try:
        from dvc.cli import main
        from dvc.exceptions import NotDvcRepoError
        from dvc.repo import Repo
    except ImportError:
        raise UserError("topoxai repro needs DVC: in a clone, make install") from None
    try:
        with Repo() as repo:
            remotes = repo.config["remote"]
    except NotDvcRepoError:
        raise UserError("topoxai repro: not inside a DVC project (run it in the clone)") from None
    if remotes:
        return main(["repro", *args])
    stdout = sys.stdout
    sys.stdout = _Without(stdout, HINT)
    try:
        return main(["repro", *args])
    finally:
        sys.stdout = stdout
